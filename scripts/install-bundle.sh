#!/usr/bin/env bash
# Installs a release bundle (scripts/package.sh) on Debian 12: FFmpeg's runtime libraries from
# apt, then the bundle unpacked into DEST (DEST/bin/vidcls, DEST/lib, DEST/share, ...).
# The Dockerfile runs this; the bundle tests run it with --no-apt.
#
#   scripts/install-bundle.sh [--no-apt] BUNDLE.tar.gz DEST
#   scripts/install-bundle.sh --list-debs      # the Debian packages it installs, one line
set -euo pipefail

# The packages owning the FFmpeg libraries bin/vidcls links (libavcodec.so.59, libavformat.so.59,
# libavutil.so.57, libswscale.so.6, libavfilter.so.8 on Debian 12); apt brings what they depend
# on. fonts-dejavu-core holds the font `vidcls annotate` draws labels with by default.
debs=(libavcodec59 libavformat59 libavutil57 libswscale6 libavfilter8 fonts-dejavu-core)

say() { printf '[install-bundle] %s\n' "$*" >&2; }
die() { printf '[install-bundle] error: %s\n' "$*" >&2; exit 1; }

apt=1
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --list-debs) echo "${debs[*]}"; exit 0 ;;
    --no-apt) apt=0 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) args+=("$1") ;;
  esac
  shift
done
[ ${#args[@]} -eq 2 ] || die "usage: scripts/install-bundle.sh [--no-apt] BUNDLE.tar.gz DEST"
bundle=${args[0]}
dest=${args[1]}
[ -f "$bundle" ] || die "$bundle: no such file"
case "$bundle" in *.tar.gz) ;; *) die "$bundle: not a .tar.gz bundle" ;; esac

if [ "$apt" = 1 ]; then
  say "apt-get install ${debs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null \
    || die "apt-get install ${debs[*]} failed"
  # Nothing of apt's downloads stays behind (in an image, a layer): the package lists and the
  # .deb files (debian:12-slim drops those itself, a plain Debian root does not).
  apt-get clean
  rm -rf /var/lib/apt/lists/*
fi

# The archive holds one folder, vidcls-VERSION-linux-ARCH-VARIANT/; its content goes into DEST.
list=$(tar -tzf "$bundle") || die "$bundle: cannot list the archive"
top=${list%%$'\n'*}
top=${top%%/*}
case "$top" in vidcls-*) ;; *) die "$bundle: not a vidcls bundle (top folder '$top')" ;; esac
mkdir -p "$dest"
tar -xzf "$bundle" -C "$dest" --strip-components=1 --no-same-owner \
  || die "cannot unpack $bundle into $dest"
[ -x "$dest/bin/vidcls" ] || die "$bundle has no bin/vidcls"
say "installed $top into $dest"
