#!/usr/bin/env bash
# Builds the bundle that scripts/device_check.sh runs on a CUDA machine whose PyTorch is 2.11
# (libtorch 2.11.0, which tch/torch-sys 0.24 expect) and which has no Rust, no FFmpeg and no
# network. Nothing in the main build changes: the build happens in a copy of the repository
# (target/device/src) with its own Cargo.toml/Cargo.lock and target folder (target/device/cargo).
#
#   scripts/build_device.sh [BUNDLE_DIR]        # default: target/device/bundle
#
# Steps:
#   1. PyPI's torch==2.11.0 wheel (the cu130 build: the CPU index, download.pytorch.org, is used
#      when reachable) plus the CUDA runtime and CUPTI wheels that libtorch_cpu.so links, into
#      a download cache named by their versions; from them a CPU-only libtorch folder (lib/
#      without the CUDA, NVSHMEM, NVRTC and Python libraries, include/, version.py), keyed by
#      the versions and this script's hash. The GPU machine's torch 2.11.0+cu130 has the same
#      libtorch_cpu/libc10; its libtorch_cuda.so is added there at run time (LD_PRELOAD in
#      device_check.sh), so the binary that runs there is byte for byte the one checked here.
#   2. In the copy: tch and torch-sys 0.24, `cargo build --release` with that LIBTORCH and an
#      rpath of `$ORIGIN/lib`.
#   3. The bundle: vidcls (stripped); ffmpeg-libs.tar.xz, every shared library the binary needs
#      that is not glibc/libstdc++/libgcc (Debian 12's FFmpeg 5.1 and what it pulls in) nor
#      libtorch; test videos (H.264, made with the ffmpeg CLI here); BUILD-INFO (versions,
#      hashes, sizes). It must stay under the 64 MiB a device run can carry, with the repository.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '[build_device] %s\n' "$*" >&2; }
die() { printf '[build_device] error: %s\n' "$*" >&2; exit 1; }

TORCH_VERSION=2.11.0    # the GPU machine's torch
TCH_VERSION=0.24.0      # torch-sys 0.24.0 checks for libtorch 2.11.0
CUDART_VERSION=13.0.96  # nvidia-cuda-runtime, pinned by torch 2.11.0's cuda-toolkit==13.0.2
CUPTI_VERSION=13.0.85   # nvidia-cuda-cupti, likewise
VIDEOS=${VIDEOS:-8}     # test videos in the bundle: 4 s of 320x240 H.264 each

bundle=$(realpath -m "${1:-$root/target/device/bundle}")
work=$root/target/device
py=${VIDCLS_PYTHON:-$root/.venv/bin/python}
[ -x "$py" ] || py=python3
cache="${VIDCLS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vidcls}"
for tool in cargo ffmpeg xz unzip strip ldd; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs what vidcls needs)"
done

# --- 1. libtorch 2.11.0 (CPU libraries) ------------------------------------------------------
wheels=$cache/wheels-torch-$TORCH_VERSION-cudart-$CUDART_VERSION-cupti-$CUPTI_VERSION
mkdir -p "$wheels"
pipdl() {  # pipdl SPEC [INDEX_URL]: one wheel, no dependencies, into $wheels
  local index=()
  [ -n "${2:-}" ] && index=(--index-url "$2")
  "$py" -m pip download -q --no-deps --only-binary=:all: "${index[@]}" -d "$wheels" "$1"
}
if ! ls "$wheels"/torch-"$TORCH_VERSION"*.whl >/dev/null 2>&1; then
  say "downloading torch==$TORCH_VERSION into $wheels"
  pipdl "torch==$TORCH_VERSION" https://download.pytorch.org/whl/cpu 2>/dev/null \
    || pipdl "torch==$TORCH_VERSION" || die "pip download torch==$TORCH_VERSION failed (PyPI reachable?)"
fi
ls "$wheels"/nvidia_cuda_runtime-"$CUDART_VERSION"*.whl >/dev/null 2>&1 \
  || pipdl "nvidia-cuda-runtime==$CUDART_VERSION" || die "pip download nvidia-cuda-runtime failed"
ls "$wheels"/nvidia_cuda_cupti-"$CUPTI_VERSION"*.whl >/dev/null 2>&1 \
  || pipdl "nvidia-cuda-cupti==$CUPTI_VERSION" || die "pip download nvidia-cuda-cupti failed"
torch_whl=$(ls "$wheels"/torch-"$TORCH_VERSION"*.whl | head -n 1)

key=$({ cat "${BASH_SOURCE[0]}"; ls "$wheels"; } | sha256sum | cut -c1-12)
libtorch=$cache/libtorch-$TORCH_VERSION-cpu-$key
if [ ! -f "$libtorch/.complete" ]; then
  say "assembling a CPU libtorch $TORCH_VERSION in $libtorch"
  rm -rf "$libtorch" "$libtorch.tmp"
  mkdir -p "$libtorch.tmp"
  unzip -q "$torch_whl" 'torch/lib/*' 'torch/include/*' 'torch/version.py' -d "$libtorch.tmp"
  mv "$libtorch.tmp/torch"/* "$libtorch.tmp/" && rmdir "$libtorch.tmp/torch"
  rm -rf "$libtorch.tmp"/lib/*cuda* "$libtorch.tmp"/lib/*nvshmem* "$libtorch.tmp"/lib/*nvrtc* \
         "$libtorch.tmp"/lib/*python*
  for w in "$wheels"/nvidia_cuda_runtime-"$CUDART_VERSION"*.whl "$wheels"/nvidia_cuda_cupti-"$CUPTI_VERSION"*.whl; do
    unzip -q -j "$w" 'nvidia/cu13/lib/libcudart.so.13' 'nvidia/cu13/lib/libcupti.so.13' \
      -d "$libtorch.tmp/lib" 2>/dev/null || true
  done
  for l in libtorch_cpu.so libc10.so libcudart.so.13 libcupti.so.13; do
    [ -f "$libtorch.tmp/lib/$l" ] || die "$l missing from the assembled libtorch"
  done
  touch "$libtorch.tmp/.complete"
  mv "$libtorch.tmp" "$libtorch"
fi
say "LIBTORCH=$libtorch ($(grep -m1 "^__version__" "$libtorch/version.py"))"

# --- 2. vidcls with tch/torch-sys 0.24, in a copy ------------------------------------------
src=$work/src
say "copying the repository to $src"
rm -rf "$src"
mkdir -p "$src"
(cd "$root" && git ls-files -co --exclude-standard -z | tar --null -cf - -T -) | tar -xpf - -C "$src"
sed -i -E "s/^(tch|torch-sys) = \"[^\"]*\"/\\1 = \"=$TCH_VERSION\"/" "$src/Cargo.toml"
grep -q "^tch = \"=$TCH_VERSION\"" "$src/Cargo.toml" && grep -q "^torch-sys = \"=$TCH_VERSION\"" "$src/Cargo.toml" \
  || die "could not set tch/torch-sys $TCH_VERSION in $src/Cargo.toml"
say "building vidcls with tch $TCH_VERSION (target folder $work/cargo)"
(cd "$src" && env -u LIBTORCH_USE_PYTORCH -u LIBTORCH_BYPASS_VERSION_CHECK LIBTORCH="$libtorch" \
   VIDCLS_RPATH='$ORIGIN/lib' CARGO_TARGET_DIR="$work/cargo" cargo build --release --bin vidcls) \
  || die "cargo build with tch $TCH_VERSION failed"
bin=$work/cargo/release/vidcls
grep -A2 -E '^name = "(tch|torch-sys)"' "$src/Cargo.lock" | grep -q "version = \"$TCH_VERSION\"" \
  || die "Cargo.lock of the copy does not use tch $TCH_VERSION"

# --- 3. the bundle ----------------------------------------------------------------------------
say "packing $bundle"
rm -rf "$bundle"
mkdir -p "$bundle/videos"
cp "$bin" "$bundle/vidcls"
strip "$bundle/vidcls"
# Libraries from the system that the GPU machine may lack: all but the C/C++ runtime (the
# machine has a newer glibc and libstdc++ than Debian 12) and libtorch's own (from its torch).
core='^(ld-linux-x86-64\.so\.2|linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libutil\.so\.1|libresolv\.so\.2|libgcc_s\.so\.1|libstdc\+\+\.so\.6)$'
libs=$(mktemp -d)
trap 'rm -rf "$libs"' EXIT
mkdir "$libs/lib"
LD_LIBRARY_PATH=$libtorch/lib ldd "$bin" | awk '$2 == "=>" {print $1, $3}' | while read -r name path; do
  [ "$path" = "not" ] && die "$name does not resolve for $bin"
  [[ $name =~ $core ]] && continue
  case $path in "$libtorch"/*) continue ;; esac
  cp -L "$path" "$libs/lib/$name"
done
n_libs=$(ls "$libs/lib" | wc -l)
[ "$n_libs" -gt 10 ] && [ -f "$libs/lib/libavcodec.so.59" ] || die "only $n_libs libraries collected"
tar -C "$libs" -cf - lib | xz -9 -T1 >"$bundle/ffmpeg-libs.tar.xz"
# Test videos: distinct content per file (noise seed), as scripts/bench_defaults.py makes them.
for i in $(seq 0 $((VIDEOS - 1))); do
  ffmpeg -loglevel error -y -f lavfi -i "testsrc2=s=320x240:r=30:d=4,noise=alls=$((10 + i)):allf=t" \
    -c:v libx264 -preset veryfast -crf 30 -g 60 -pix_fmt yuv420p "$bundle/videos/clip-$i.mp4"
done
{
  echo "vidcls $(git -C "$root" describe --always --dirty) built $(date -u +%FT%TZ) by scripts/build_device.sh"
  echo "tch/torch-sys $TCH_VERSION; libtorch $(grep -m1 "^__version__" "$libtorch/version.py" | cut -d"'" -f2) from $(basename "$torch_whl")"
  echo "rpath: \$ORIGIN/lib; libtorch_cuda.so is not linked (LD_PRELOAD it from the machine's torch)"
  echo "ffmpeg-libs.tar.xz: $n_libs libraries, $(du -sb "$libs/lib" | cut -f1) bytes unpacked"
  echo "videos: $VIDEOS x 4 s 320x240 H.264"
  (cd "$bundle" && sha256sum vidcls ffmpeg-libs.tar.xz videos/*)
} >"$bundle/BUILD-INFO"
size=$(du -sb "$bundle" | cut -f1)
say "bundle: $size bytes ($(du -sh "$bundle" | cut -f1)); $n_libs libraries"
[ "$size" -lt $((56 * 1024 * 1024)) ] || die "bundle is $size bytes: over 56 MiB leaves too little of the 64 MiB for the repository"
