#!/usr/bin/env bash
# Builds relocatable release bundles: dist/vidcls-VERSION-linux-ARCH-VARIANT.tar.gz (+ .sha256).
#
#   scripts/package.sh [cpu] [cuda] [--out DIR] [--keep]
#
# VARIANT cpu (the default) is built with --no-default-features, so it does not link
# libtorch_cuda; cuda links it and ships its NVIDIA libraries. A bundle holds one folder:
#   bin/vidcls                  rpath $ORIGIN/../lib, so the folder can live anywhere
#   lib/                        the libtorch libraries the binary loads, found with ldd (cuda:
#                               plus those libtorch_cuda opens at run time)
#   share/vidcls/{configs,models}  model configs, the built-in models and sample clips (tracked files)
#   share/man/man1/             man pages (`vidcls man --dir`)
#   share/{bash-completion,zsh,fish}/...  shell completions (`vidcls completions SHELL`)
#   README.md CHANGELOG.md licenses/   licences of vidcls and of every bundled library
# FFmpeg comes from the system (scripts/install-bundle.sh --list-debs names the packages).
# libtorch is the one cargo builds with: $LIBTORCH, else the checkout's .libtorch (scripts/setup.sh).
# The staging folder is target/package/NAME; --keep leaves it there, else only the archive stays.
# Prints each bundle's unpacked size (du -sb) and archive size.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { printf '[package] %s\n' "$*" >&2; }
die() { printf '[package] error: %s\n' "$*" >&2; exit 1; }

variants=()
out="$root/dist"
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    cpu|cuda) variants+=("$1") ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out="$2"; shift ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (usage: scripts/package.sh [cpu] [cuda] [--out DIR] [--keep])" ;;
  esac
  shift
done
[ ${#variants[@]} -gt 0 ] || variants=(cpu)
for tool in cargo ldd readelf tar gzip git sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || die "no version in Cargo.toml"
license=$(sed -n 's/^license = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
arch=$(uname -m)

export LIBTORCH="${LIBTORCH:-$root/.libtorch}"
torch_lib=$(readlink -f "$LIBTORCH/lib") || true
[ -n "$torch_lib" ] && [ -f "$torch_lib/libtorch_cpu.so" ] \
  || die "no libtorch_cpu.so in $LIBTORCH/lib: run scripts/setup.sh or set LIBTORCH"

# Libraries from the system's library folders stay out of the bundle (FFmpeg, libc, libstdc++).
is_system() { case "$1" in /lib/*|/lib64/*|/usr/lib/*|/usr/lib64/*) return 0 ;; *) return 1 ;; esac; }

# The NVIDIA driver's libraries come with the driver, never with a bundle.
driver_libs='^[[:space:]]*(libcuda\.so|libnvidia-[a-z-]*\.so)'

# Resolved paths of everything FILE... loads (ldd: the whole closure). Fails on "not found",
# except for the driver's libraries.
closure() {
  local text missing
  text=$(LD_LIBRARY_PATH="$torch_lib" ldd "$@") || die "ldd $* failed"
  missing=$(grep 'not found' <<<"$text" | grep -Ev "$driver_libs" || true)
  [ -z "$missing" ] || die "unresolved libraries for $*:"$'\n'"$missing"
  grep -Ev "$driver_libs" <<<"$text" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u
}

# The wheel (site-packages/*.dist-info) that installed FILE, if any.
dist_info_of() {
  local file=$1 dir site rel
  dir=$(dirname "$file")
  while [ "$dir" != / ]; do
    if compgen -G "$dir/*.dist-info/RECORD" >/dev/null; then site=$dir; break; fi
    dir=$(dirname "$dir")
  done
  [ -n "${site:-}" ] || return 0
  rel=${file#"$site"/}
  grep -l -F "$rel," "$site"/*.dist-info/RECORD 2>/dev/null | head -n1 | xargs -r dirname
}

# Copies a wheel's licence files (its dist-info licenses/ folder, else the LICENSE/COPYING
# files its RECORD lists) into DEST. Fails if there are none.
copy_licences() { # DIST_INFO DEST
  local info=$1 dest=$2 site f
  if [ -d "$info/licenses" ]; then
    cp -r "$info/licenses" "$dest"
    return 0
  fi
  site=$(dirname "$info")
  mkdir -p "$dest"
  cut -d, -f1 "$info/RECORD" | grep -Ei '(^|/)(licen[cs]e|copying)[^/]*$' | while read -r f; do
    cp "$site/$f" "$dest/"
  done
  [ -n "$(ls -A "$dest")" ] || { rmdir "$dest"; return 1; }
}

build() { # VARIANT -> path of the built binary
  local features=()
  [ "$1" = cpu ] && features=(--no-default-features)
  say "cargo build --profile dist ${features[*]} (VIDCLS_RPATH=\$ORIGIN/../lib)"
  VIDCLS_RPATH='$ORIGIN/../lib' nice -n 10 cargo build --locked --profile dist "${features[@]}" >&2 \
    || die "cargo build failed"
  echo "$root/target/dist/vidcls"
}

package() { # VARIANT
  local variant=$1 name stage exe lib libs extra f info dest
  name="vidcls-$version-linux-$arch-$variant"
  stage="$root/target/package/$name"
  exe=$(build "$variant")
  rm -rf "$stage"
  mkdir -p "$stage/bin" "$stage/lib" "$stage/licenses"
  cp "$exe" "$stage/bin/vidcls"

  local runpath
  runpath=$(readelf -d "$stage/bin/vidcls" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
  [ "$runpath" = '$ORIGIN/../lib' ] || die "bin/vidcls has runpath '$runpath', want \$ORIGIN/../lib"
  if [ "$variant" = cpu ] && readelf -d "$stage/bin/vidcls" | grep -q 'libtorch_cuda'; then
    die "the cpu build links libtorch_cuda"
  fi

  # lib/: the non-system part of the binary's closure. The cuda bundle also needs what
  # libtorch_cuda and cuDNN open with dlopen (ldd cannot see it): libtorch_cuda_linalg,
  # libcaffe2_nvrtc, NVRTC (not its .alt builds) and cuDNN's sub-libraries, with their closures.
  libs=$(closure "$stage/bin/vidcls")
  if [ "$variant" = cuda ]; then
    grep -q '/libtorch_cuda.so$' <<<"$libs" || die "the cuda build does not load libtorch_cuda.so"
    extra=()
    for f in "$torch_lib"/libtorch_cuda_linalg.so "$torch_lib"/libcaffe2_nvrtc.so; do
      [ -f "$f" ] && extra+=("$f")
    done
    while read -r f; do
      for g in "$(dirname "$f")"/libnvrtc.so* "$(dirname "$f")"/libnvrtc-builtins.so* \
               "$(dirname "$f")"/libcudnn*.so*; do
        [ -f "$g" ] && extra+=("$g")
      done
    done < <(grep -E '/lib(nvrtc|cudnn)\.so' <<<"$libs")
    if [ ${#extra[@]} -gt 0 ]; then
      local more
      more=$(closure "${extra[@]}")
      libs=$(printf '%s\n' "$libs" "${extra[@]}" "$more" | sort -u)
    fi
  fi
  : >"$stage/licenses/LIBRARIES.txt"
  while read -r f; do
    [ -n "$f" ] || continue
    is_system "$f" && continue
    cp -L "$f" "$stage/lib/"
    info=$(dist_info_of "$(readlink -f "$f")")
    [ -n "$info" ] || die "no licence found for $f (not installed by a wheel): add one to the bundle"
    dest="$stage/licenses/$(basename "$info" .dist-info)"
    [ -d "$dest" ] || copy_licences "$info" "$dest" \
      || die "no licence found for $f in $(basename "$info"): add one to the bundle"
    printf '%s\t%s\n' "$(basename "$f")" "$(basename "$info" .dist-info)" >>"$stage/licenses/LIBRARIES.txt"
  done <<<"$libs"
  sort -u -o "$stage/licenses/LIBRARIES.txt" "$stage/licenses/LIBRARIES.txt"
  printf 'vidcls %s is licensed under %s.\n' "$version" "$license" >"$stage/licenses/vidcls.txt"

  # Models and configs: tracked files only, never weights generated in this checkout.
  git ls-files -z configs models | while IFS= read -r -d '' f; do
    install -D -m 644 "$f" "$stage/share/vidcls/$f"
  done
  [ -f "$stage/share/vidcls/models/motion.pt" ] || die "models/motion.pt is not tracked"
  cp README.md CHANGELOG.md "$stage/"

  # Man pages and completions, from the bundled binary itself (a first run of the bundle).
  local vidcls=(env -u LD_LIBRARY_PATH "$stage/bin/vidcls")
  "${vidcls[@]}" man --dir "$stage/share/man/man1" || die "the bundled vidcls does not run"
  mkdir -p "$stage/share/bash-completion/completions" "$stage/share/zsh/site-functions" \
           "$stage/share/fish/vendor_completions.d"
  "${vidcls[@]}" completions bash >"$stage/share/bash-completion/completions/vidcls"
  "${vidcls[@]}" completions zsh >"$stage/share/zsh/site-functions/_vidcls"
  "${vidcls[@]}" completions fish >"$stage/share/fish/vendor_completions.d/vidcls.fish"

  # Reproducible archive: sorted names, no owners, mtime of the last commit.
  mkdir -p "$out"
  local epoch archive
  epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
  archive="$out/$name.tar.gz"
  say "writing $archive"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
      -C "$(dirname "$stage")" -cf - "$name" | nice -n 10 gzip -6 -n >"$archive.tmp"
  mv "$archive.tmp" "$archive"
  (cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
  local unpacked packed
  unpacked=$(du -sb "$stage" | cut -f1)
  packed=$(stat -c %s "$archive")
  printf '%s\tunpacked %d MB (du -sb)\tarchive %d MB\tlib/ %s files\n' "$name" \
    $((unpacked / 1000000)) $((packed / 1000000)) "$(ls "$stage/lib" | wc -l)"
  [ "$keep" = 1 ] || rm -rf "$stage"
}

for v in "${variants[@]}"; do
  package "$v"
done
