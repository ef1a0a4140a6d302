#!/usr/bin/env bash
# Builds the bundle that scripts/device_check.sh runs on a CUDA machine whose PyTorch is 2.11
# (libtorch 2.11.0, which tch/torch-sys 0.24 expect) and which has no Rust, no FFmpeg and no
# network. Nothing in the main build changes: the build happens in a copy of the repository
# (target/device/src) with its own Cargo.toml/Cargo.lock and target folder (target/device/cargo).
#
#   scripts/build_device.sh [BUNDLE_DIR]        # default: target/device/bundle
#
# Steps:
#   1. PyPI's torch==2.11.0 wheel (from the CPU index, download.pytorch.org, when reachable;
#      else the default index's cu130 build, the same as the GPU machine's) plus the CUDA runtime
#      and CUPTI wheels that libtorch_cpu.so links, into a download cache named by their
#      versions; from them a CPU-only libtorch folder (lib/ without the CUDA, NVSHMEM, NVRTC and
#      Python libraries, include/, version.py), keyed by the wheels and the recipe
#      (assemble_libtorch). Its libtorch_cuda.so is added on the GPU machine at run time
#      (LD_PRELOAD of that machine's own, in device_check.sh), so the binary that runs there is
#      byte for byte the one checked here.
#   2. In the copy: tch and torch-sys =0.24.0, `cargo build --release` with that LIBTORCH and an
#      rpath of `$ORIGIN/lib`. (The source needs no change for tch 0.24.)
#   3. The bundle: vidcls (stripped); ffmpeg-libs.tar.xz: FFmpeg's own libraries and
#      zlib/lzma/bzip2 from this Debian 12, and stubs for the other libraries they link (see
#      below); test videos (H.264, made with the ffmpeg CLI here); BUILD-INFO (versions, needs,
#      hashes). It must stay under the 64 MiB a device run can carry, with the repository.
#   4. A check on this CPU: the bundle's vidcls on libtorch 2.11 and the unpacked libraries
#      alone, against the main build's (target/release/vidcls, or MAIN_VIDCLS) probabilities.
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
for tool in cargo ffmpeg xz python3 cc strip objdump ldd; do
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

# The CPU libtorch folder, made from the wheels into $1 (the cache key hashes this function).
assemble_libtorch() {
  local dir=$1
  rm -rf "$dir" "$dir.tmp"
  mkdir -p "$dir.tmp"
  python3 - "$torch_whl" "$dir.tmp" <<'EOF_UNZIP'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith(("torch/lib/", "torch/include/")) or n == "torch/version.py"])
EOF_UNZIP
  mv "$dir.tmp/torch"/* "$dir.tmp/" && rmdir "$dir.tmp/torch"
  rm -rf "$dir.tmp"/lib/*cuda* "$dir.tmp"/lib/*nvshmem* "$dir.tmp"/lib/*nvrtc* "$dir.tmp"/lib/*python*
  for w in "$wheels"/nvidia_cuda_runtime-"$CUDART_VERSION"*.whl "$wheels"/nvidia_cuda_cupti-"$CUPTI_VERSION"*.whl; do
    python3 - "$w" "$dir.tmp/lib" <<'EOF_UNZIP'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for n in ("nvidia/cu13/lib/libcudart.so.13", "nvidia/cu13/lib/libcupti.so.13"):
    if n in z.namelist():
        open(f"{sys.argv[2]}/{n.rsplit('/', 1)[1]}", "wb").write(z.read(n))
EOF_UNZIP
  done
  for l in libtorch_cpu.so libc10.so libcudart.so.13 libcupti.so.13; do
    [ -f "$dir.tmp/lib/$l" ] || die "$l missing from the assembled libtorch"
  done
  touch "$dir.tmp/.complete"
  mv "$dir.tmp" "$dir"
}
key=$({ declare -f assemble_libtorch; ls "$wheels"; } | sha256sum | cut -c1-12)
libtorch=$cache/libtorch-$TORCH_VERSION-cpu-$key
if [ ! -f "$libtorch/.complete" ]; then
  say "assembling a CPU libtorch $TORCH_VERSION in $libtorch"
  assemble_libtorch "$libtorch"
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
[ -f "$libs/lib/libavcodec.so.59" ] || die "libavcodec.so.59 not among the libraries of $bin"
all_libs=$(ls "$libs/lib" | wc -l)
all_bytes=$(du -sb "$libs/lib" | cut -f1)
# Debian's FFmpeg links about 150 libraries (214 MB; 69 MB with xz): encoders, filters, network
# protocols, hardware APIs. Keep FFmpeg's own libraries and zlib/lzma/bzip2; replace each other
# library they link with a stub of the same soname that defines the symbols they import: a
# stub function aborts with its name if called, except the few that FFmpeg calls while it
# registers codecs or probes formats, which answer 0 ("not available", "not this format").
# So decoding (vidcls predict) works; encoding (vidcls annotate) and the external codecs,
# filters and protocols do not.
keep='^(libav|libsw|libpostproc|libz\.so|liblzma\.so|libbz2\.so)'
python3 - "$libs/lib" "$bin" "$keep" "$core" >"$libs/stubs.log" <<'EOF_STUBS'
# Replaces, in DIR, every library that the kept ones (FFmpeg's own and a few compression
# libraries) link but vidcls's decoding never calls with a stub of the same soname that
# defines the symbols they import; a stub function that is called aborts with its name.
import re, subprocess, sys
from pathlib import Path
d, binary, keep_re = Path(sys.argv[1]), sys.argv[2], re.compile(sys.argv[3])
core = re.compile(sys.argv[4])
def sh(*a): return subprocess.run(a, check=True, capture_output=True, text=True).stdout
def needed(f): return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", sh("readelf", "-d", "-W", str(f)))
def syms(f):
    for line in sh("readelf", "--dyn-syms", "-W", str(f)).splitlines():
        p = line.split()
        if len(p) >= 8 and p[0].endswith(":") and p[4] in ("GLOBAL", "WEAK"):
            yield p[3], p[6], p[4], int(p[2], 0) if p[2].startswith("0x") else int(p[2]), p[7]
def verneed(f):  # {file: [version names]}
    out, cur = {}, None
    for line in sh("readelf", "-V", "-W", str(f)).splitlines():
        m = re.search(r"File: (\S+)", line)
        if m: cur = out.setdefault(m.group(1), [])
        m = re.search(r"Name: (\S+)\s+Flags", line)
        if m and cur is not None: cur.append(m.group(1))
    return out
answers = {"gme_identify_header": '""', "openmpt_probe_file_header": "0",
           "openmpt_probe_file_header_without_filesize": "0",
           "aom_codec_version": "0", "aom_codec_av1_cx": "0", "aom_codec_get_caps": "0",
           "vpx_codec_vp9_cx": "0", "vpx_codec_vp8_cx": "0", "vpx_codec_get_caps": "0", "x265_api_get_199": "0"}
libs = {p.name for p in d.iterdir()}
kept = {n for n in libs if keep_re.search(n)}
importers = [Path(binary)] + [d / n for n in sorted(kept)]
stubbed = sorted({n for f in importers for n in needed(f) if n in libs and n not in kept and not core.search(n)})
undef = {}  # (name, version or None) needed by the kept libraries
vers = {s: set() for s in stubbed}
for f in importers:
    for kind, ndx, bind, size, name in syms(f):
        if ndx == "UND":
            n, _, v = name.partition("@")
            undef[(n, v.split(" ")[0] or None)] = True
    for file, vs in verneed(f).items():
        if file in vers: vers[file].update(vs)
for s in stubbed:
    defs = {}
    for kind, ndx, bind, size, name in syms(d / s):
        if ndx == "UND": continue
        n, _, v = name.replace("@@", "@").partition("@")
        defs[(n, v or None)] = (kind, size)
        defs.setdefault((n, None), (kind, size))
    want = sorted({(n, v) for (n, v) in undef if (n, v) in defs})
    names = {}
    for n, v in want: names.setdefault(n, set()).add(v)
    c = ['#include <stdio.h>', '#include <stdlib.h>',
         'static void gone(const char *s) { fprintf(stderr, "vidcls bundle: %s (' + s + ') is not in this bundle\\n", s); abort(); }']
    nodes = {v: [] for v in vers[s]}
    for i, (n, vs) in enumerate(sorted(names.items())):
        v = sorted(x for x in vs if x)
        v = v[0] if v else None
        kind, size = defs[(n, v)] if (n, v) in defs else defs[(n, None)]
        if kind == "OBJECT":
            c.append(f'__attribute__((aligned(16))) char o{i}[{max(size, 1)}] __asm__("{n}");')
        elif kind == "TLS":
            c.append(f'__thread char t{i}[{max(size, 1)}] __asm__("{n}");')
        elif n in answers:  # called while FFmpeg probes a file's format: answer "not mine"
            c.append(f'const void *f{i}(void) __asm__("{n}"); const void *f{i}(void) {{ return {answers[n]}; }}')
        else:
            c.append(f'void f{i}(void) __asm__("{n}"); void f{i}(void) {{ gone("{n}"); }}')
        if v: nodes.setdefault(v, []).append(n)
        elif nodes: nodes.setdefault(sorted(nodes)[0], []).append(n)
    (d / f"{s}.c").write_text("\n".join(c) + "\n")
    cmd = ["cc", "-shared", "-fPIC", "-O1", "-o", str(d / s), f"-Wl,-soname,{s}", str(d / f"{s}.c")]
    if nodes:
        (d / f"{s}.map").write_text("".join(f"{v} {{ global: {''.join(x + '; ' for x in ns)}}};\n" for v, ns in sorted(nodes.items())))
        cmd.append(f"-Wl,--version-script={d / s}.map")
    subprocess.run(cmd, check=True)
    (d / f"{s}.c").unlink(); (d / f"{s}.map").unlink(missing_ok=True)
    print(f"stub {s}: {len(names)} symbols")
for n in sorted(libs - kept - set(stubbed)):
    (d / n).unlink()
print(f"kept {len(kept)}: {' '.join(sorted(kept))}; stubbed {len(stubbed)}; dropped {len(libs - kept - set(stubbed))}")
EOF_STUBS
[ "$(LD_LIBRARY_PATH=$libs/lib:$libtorch/lib ldd "$bin" | grep -c 'not found')" = 0 ] \
  || die "libraries missing after the stubs: $(LD_LIBRARY_PATH=$libs/lib:$libtorch/lib ldd "$bin" | grep 'not found')"
n_libs=$(ls "$libs/lib" | wc -l)
tar -C "$libs" -cf - lib | xz -9 -T1 >"$bundle/ffmpeg-libs.tar.xz"
# Test videos: distinct content per file (noise seed), so that no two files decode alike.
for i in $(seq 0 $((VIDEOS - 1))); do
  ffmpeg -loglevel error -y -f lavfi -i "testsrc2=s=320x240:r=30:d=4,noise=alls=$((10 + i)):allf=t" \
    -c:v libx264 -preset veryfast -crf 30 -g 60 -pix_fmt yuv420p "$bundle/videos/clip-$i.mp4"
done
{
  echo "vidcls $(git -C "$root" describe --always --dirty) built $(date -u +%FT%TZ) by scripts/build_device.sh"
  echo "tch/torch-sys $TCH_VERSION; libtorch $(grep -m1 "^__version__" "$libtorch/version.py" | cut -d"'" -f2) from $(basename "$torch_whl")"
  echo "rpath: \$ORIGIN/lib; libtorch_cuda.so is not linked (LD_PRELOAD it from the machine's torch)"
  echo "libtorch-dir: $libtorch/lib (this machine's, for DEVICE=cpu scripts/device_check.sh)"
  echo "needs: $(for f in "$bin" "$libs"/lib/*; do objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_[0-9.]*'; done | sort -uV | tail -n 1)," \
       "$(for f in "$bin" "$libs"/lib/*; do objdump -T "$f" 2>/dev/null | grep -o 'GLIBCXX_[0-9.]*'; done | sort -uV | tail -n 1)"
  echo "ffmpeg-libs.tar.xz: $n_libs libraries, $(du -sb "$libs/lib" | cut -f1) bytes unpacked (of $all_libs, $all_bytes bytes: the others are stubs or gone)"
  echo "videos: $VIDEOS x 4 s 320x240 H.264"
  tail -n 1 "$libs/stubs.log"
  (cd "$bundle" && sha256sum vidcls ffmpeg-libs.tar.xz videos/*)
} >"$bundle/BUILD-INFO"

# --- 4. the bundle on this CPU: libtorch 2.11 and the bundle's libraries only ---------------
# Every object the process loads must come from the unpacked bundle, the libtorch 2.11 folder
# or the C/C++ runtime (LD_DEBUG lists them), and the probabilities must match the main build
# (tch 0.26, libtorch 2.13) within 1e-5, on models/samples/ with the default model.
main=${MAIN_VIDCLS:-$root/target/release/vidcls}
[ -x "$main" ] || die "$main missing: build the main binary first (cargo build --release) or set MAIN_VIDCLS"
check=$(mktemp -d)
trap 'rm -rf "$libs" "$check"' EXIT
tar -C "$check" -xJf "$bundle/ffmpeg-libs.tar.xz"
for flags in "--precision fp32" ""; do
  tag=${flags:-default}; tag=${tag// /-}
  LD_DEBUG=files LD_DEBUG_OUTPUT="$check/ld-$tag" LD_LIBRARY_PATH="$check/lib:$libtorch/lib" \
    "$bundle/vidcls" predict -f jsonl --all-scores --device cpu $flags "$root"/models/samples/*.mp4 \
    >"$check/bundle-$tag.jsonl" 2>"$check/bundle-$tag.err" || { cat "$check/bundle-$tag.err" >&2; die "the bundle's vidcls failed ($tag)"; }
  "$main" predict -f jsonl --all-scores --device cpu $flags "$root"/models/samples/*.mp4 \
    >"$check/main-$tag.jsonl" 2>/dev/null || die "$main failed ($tag)"
  outside=$(cat "$check"/ld-"$tag".* | sed -n 's/.*calling init: //p' | sort -u \
    | grep -v -e "^$check/lib/" -e "^$libtorch/lib/" -e "^$bundle/vidcls$" \
    | grep -v -E '/(ld-linux-x86-64\.so\.2|libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libutil\.so\.1|libresolv\.so\.2|libgcc_s\.so\.1|libstdc\+\+\.so\.6)$' || true)
  [ -z "$outside" ] || die "the bundle's vidcls loaded libraries from outside the bundle: $outside"
  python3 - "$check/bundle-$tag.jsonl" "$check/main-$tag.jsonl" "$tag" <<'EOF_CMP' | tee -a "$bundle/BUILD-INFO" >&2 || die "the bundle's probabilities differ from $main"
import json, sys
a, b = ([json.loads(l) for l in open(f)] for f in sys.argv[1:3])
assert len(a) == len(b) == 4 and all("scores" in r for r in a + b), "missing records"
worst = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra["scores"], rb["scores"]))
ran = sorted({r["ran"]["precision"] for r in a})
print(f"check ({sys.argv[3]}, ran {'/'.join(ran)} on the CPU, models/samples/*.mp4, default model): "
      f"largest probability difference from the main build {worst:.2e} (limit 1e-5)")
sys.exit(0 if worst <= 1e-5 else 1)
EOF_CMP
done

size=$(du -sb "$bundle" | cut -f1)
say "bundle: $size bytes ($(du -sh "$bundle" | cut -f1)); $n_libs libraries"
[ "$size" -lt $((56 * 1024 * 1024)) ] || die "bundle is $size bytes: over 56 MiB leaves too little of the 64 MiB for the repository"
