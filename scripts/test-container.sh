#!/usr/bin/env bash
# The container test: builds the Dockerfile and labels the sample clips inside the image.
#
#   scripts/test-container.sh BUNDLE.tar.gz     # a CPU bundle (scripts/package.sh cpu)
#
# Needs root. Every step is fatal; nothing is skipped:
#   1. debootstrap, buildah and podman from Debian where missing (one apt-get update first);
#   2. a Debian 12 root made like debian:12-slim (debootstrap --variant=minbase, then what the
#      official image sets: no docs but copyrights, no man pages, info or locales, apt's caches
#      dropped), cached as ${XDG_CACHE_HOME:-$HOME/.cache}/vidcls/debian12-slim-KEY.tar, KEY the
#      hash of the commands that make it. Base images cannot be pulled everywhere; Debian's
#      package mirror is enough;
#   3. `podman import` of that root as debian:12-slim, the Dockerfile's FROM, into a private
#      container storage (vfs driver: works on any filesystem) removed at exit;
#   4. `buildah bud --isolation chroot --pull=never` of the Dockerfile, the bundle in the build
#      context's dist/ beside scripts/install-bundle.sh (what .dockerignore lets in);
#   5. `buildah run --isolation chroot` with a data folder mounted at /data: vidcls writes CSV
#      records of the bundle's sample clips into it; each top-1 is the clip's own action and the
#      top 3 (labels and scores) equal those of the bundle run outside the image;
#   6. prints the image size (podman image inspect) and fails above VIDCLS_IMAGE_MAX_MB
#      (default 900).
# `podman run` is not used: it needs a runtime that can set rlimits, which sandboxes may deny.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '[test-container] %s\n' "$*" >&2; }
die() { printf '[test-container] error: %s\n' "$*" >&2; exit 1; }

image=localhost/vidcls-container-test:latest
max_mb=${VIDCLS_IMAGE_MAX_MB:-900}

# Installs what is missing of debootstrap, buildah and podman (Debian packages of those names).
need_tools() {
  local missing=() tool
  for tool in debootstrap buildah podman; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# A Debian 12 minbase root in DIR, set up the way the official debian:12-slim is (debuerreotype:
# dpkg excludes, apt cleaning after every run) and with the same files removed.
make_root() {
  local dir=$1
  debootstrap --variant=minbase bookworm "$dir" http://deb.debian.org/debian >&2 || return 1
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' \
    >"$dir/etc/apt/apt.conf.d/docker-autoremove-suggests"
  find "$dir/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$dir"/usr/share/{info,linda,lintian/overrides,locale,man}/*
  find "$dir/var/lib/apt/lists" "$dir/var/cache/apt" -type f -delete
}

# Prints the cached root tarball's path, making it first when the cache lacks it.
root_tarball() {
  local cache key tar tmp
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/vidcls
  key=$(declare -f make_root | sha256sum | cut -c1-16)
  tar="$cache/debian12-slim-$key.tar"
  if [ ! -f "$tar" ]; then
    say "debootstrap bookworm (cached as $tar)"
    mkdir -p "$cache"
    tmp=$(mktemp -d "$work/root.XXXXXX")
    make_root "$tmp" || die "debootstrap bookworm failed"
    tar -C "$tmp" --numeric-owner -cf "$tar.tmp" . || die "cannot write $tar.tmp"
    rm -f "$cache"/debian12-slim-*.tar
    mv "$tar.tmp" "$tar"
    rm -rf "$tmp"
  fi
  printf '%s\n' "$tar"
}

# podman and buildah on the private storage.
pm() { podman "${store[@]}" "$@"; }
bh() { buildah "${store[@]}" "$@"; }

cleanup() {
  if [ -n "${work:-}" ]; then
    bh rm --all >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
}

# Builds the image from a context holding the Dockerfile, .dockerignore, the installer and the
# bundle under dist/.
build_image() {
  local ctx=$work/context
  mkdir -p "$ctx/scripts" "$ctx/dist"
  cp "$root/Dockerfile" "$root/.dockerignore" "$ctx/"
  cp "$root/scripts/install-bundle.sh" "$ctx/scripts/"
  ln "$bundle" "$ctx/dist/" 2>/dev/null || cp "$bundle" "$ctx/dist/"
  say "buildah bud --isolation chroot --pull=never"
  bh bud --isolation chroot --pull=never -t "$image" "$ctx" >&2 || die "buildah bud failed"
  local entry
  entry=$(bh inspect --type image --format '{{.OCIv1.Config.Entrypoint}}' "$image")
  [ "$entry" = "[vidcls]" ] || die "image entrypoint is $entry, not [vidcls]"
}

# The CSV records of FILE without its first column (the path, which differs in and out).
rows() { cut -d, -f2- "$1"; }

# Labels the bundle's samples in the image (data folder at /data) and with the bundle itself.
check_labels() {
  local data=$work/data unpacked=$work/bundle c sample name top1 n=0
  "$root/scripts/install-bundle.sh" --no-apt "$bundle" "$unpacked"
  mkdir -p "$data"
  cp "$unpacked"/share/vidcls/models/samples/*.mp4 "$data/"
  local args=(predict --device cpu --precision fp32 -f csv --top-k 3)
  (cd "$data" && "$unpacked/bin/vidcls" "${args[@]}" -o "$work/bundle.csv" ./*.mp4) \
    || die "the bundle failed to label $data"
  c=$(bh from --pull=never "$image") || die "buildah from $image failed"
  say "buildah run --isolation chroot -v $data:/data"
  bh run --isolation chroot -v "$data:/data" "$c" -- \
    sh -c "cd /data && vidcls ${args[*]} -o /data/container.csv ./*.mp4" \
    || die "vidcls failed inside the image"
  [ -s "$data/container.csv" ] || die "no records in the data folder ($data/container.csv)"
  diff <(rows "$work/bundle.csv") <(rows "$data/container.csv") >&2 \
    || die "records in the image differ from the bundle's (above: < bundle, > image)"
  for sample in "$data"/*.mp4; do
    name=$(basename "$sample" .mp4)
    top1=$(awk -F, -v p="./$name.mp4" '$1 == p && $4 == 1 { print $5 }' "$data/container.csv")
    [ "$top1" = "$name" ] || die "$name.mp4: top-1 in the image is '${top1}', not $name"
    n=$((n + 1))
  done
  say "the image labels $n sample clips like the bundle (top 3, scores included)"
}

# Prints the image size and fails above the limit.
check_size() {
  local bytes mb
  bytes=$(pm image inspect --format '{{.Size}}' "$image") || die "podman image inspect failed"
  mb=$((bytes / 1000000))
  say "image size: $mb MB (podman image inspect --format '{{.Size}}'); bundle unpacked:" \
    "$(($(du -sb "$work/bundle" | cut -f1) / 1000000)) MB"
  [ "$mb" -le "$max_mb" ] || die "the image is $mb MB, over VIDCLS_IMAGE_MAX_MB=$max_mb"
}

[ $# -eq 1 ] || die "usage: scripts/test-container.sh BUNDLE.tar.gz"
bundle=$(readlink -f "$1" || true)
[ -f "$bundle" ] || die "$1: no such file"
case "$(basename "$bundle")" in
  vidcls-*-linux-x86_64-cpu.tar.gz) ;;
  *) die "$1: not a CPU bundle (the Dockerfile takes dist/vidcls-*-linux-x86_64-cpu.tar.gz)" ;;
esac
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, buildah's chroot isolation)"
need_tools
work=$(mktemp -d /var/tmp/vidcls-container.XXXXXX)
store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
trap cleanup EXIT
start=$SECONDS
tar=$(root_tarball)
pm import "$tar" debian:12-slim >/dev/null || die "podman import $tar failed"
build_image
check_labels
check_size
say "passed in $((SECONDS - start)) s"
