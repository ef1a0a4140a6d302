#!/usr/bin/env bash
# GPU check of vidcls (issue 12): one short run on a machine with one CUDA GPU.
#
# What it checks, on r2plus1d_18 (random weights, BatchNorm-calibrated by the exporter so the
# outputs are peaked) and the parity videos it makes with ffmpeg:
#   1. the same vidcls code path on --device cuda vs --device cpu, fp32: every class
#      probability within 1e-3;
#   2. --precision fp16 and bf16 on CUDA: top-1 agreement with CUDA fp32;
#   3. clips/s at batch 1, 8 and 32 (vidcls --summary-json, model loading excluded) next to
#      PyTorch eager on the same GPU and the same TorchScript file (random input, no_grad,
#      one warm-up batch).
# It prints one table and exits non-zero if check 1 fails or anything is missing.
#
# Build route (prepared, NOT yet done; nothing here has run on a GPU):
#   The lent GPU machine has torch 2.11 (+cu130), Python 3.12, nvcc, no FFmpeg development files,
#   perhaps no Rust, no network, and takes at most 64 MiB of carried files. tch 0.26 needs
#   libtorch 2.13, so the binary for it is built HERE in a temporary copy of the repository:
#     a. `pip download torch==2.11.0` (the CUDA 13 wheel) into a scratch venv and point
#        LIBTORCH at its `torch/` folder;
#     b. in the copy, set `tch = "0.24"` (torch-sys 0.24.0 expects libtorch 2.11.0) and fix
#        what the older tch API needs (check `cargo build --release`);
#     c. bundle target/release/vidcls with the FFmpeg 5.1 shared libraries it links
#        (`ldd target/release/vidcls | grep -E 'libav|libsw|...'`, about 138 MB uncompressed:
#        compress with `xz -9`, and drop libraries of codecs the check does not use until the
#        bundle fits 64 MiB), set an rpath of `$ORIGIN/lib` for them, and leave libtorch out:
#        on the GPU machine LD_LIBRARY_PATH points at the installed torch 2.11's `torch/lib`;
#     d. carry the bundle as target/device/ (vidcls, lib/).
#   The graph is exported ON the GPU machine from torchvision (a 126 MB file cannot be carried).
#
# Usage (on the GPU machine, from the repository root): scripts/device_check.sh [BUNDLE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${1:-target/device}
OUT=${OUT:-target/device-check}
mkdir -p "$OUT"
die() { echo "device_check: $*" >&2; exit 2; }

PY=${PYTHON:-python3}
"$PY" -c 'import torch, sys; assert torch.cuda.is_available(), "no CUDA"; print("torch", torch.__version__, torch.cuda.get_device_name(0))' \
    || die "torch with CUDA is needed"
"$PY" -c 'import torchvision' 2>/dev/null || die "torchvision is needed to export r2plus1d_18 here"
[ -x "$BUNDLE/vidcls" ] || die "$BUNDLE/vidcls missing: build and carry it as the header says"
command -v ffmpeg >/dev/null || [ -x "$BUNDLE/ffmpeg" ] || die "ffmpeg (or $BUNDLE/ffmpeg) is needed for the test videos"
FFMPEG=$(command -v ffmpeg || echo "$BUNDLE/ffmpeg")
TORCH_LIB=$("$PY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$BUNDLE/lib:$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
VIDCLS="$BUNDLE/vidcls"

# Model: exported here, same script and seed as the benchmark's.
[ -f "$OUT/models/configs/r2plus1d_18.json" ] \
    || "$PY" scripts/export_models.py --random-init --seed 0 --frames 16 --out-dir "$OUT/models" r2plus1d_18
CFG="$OUT/models/configs/r2plus1d_18.json"

# Videos: 16 clips of 5 s at 320x240 (H.264), as scripts/bench_defaults.py makes them.
for i in $(seq 0 15); do
    f="$OUT/clip-$i.mp4"
    [ -f "$f" ] || "$FFMPEG" -loglevel error -y -f lavfi \
        -i "testsrc2=s=320x240:r=30:d=5,noise=alls=$((10 + i)):allf=t" \
        -c:v libx264 -preset veryfast -crf 23 -g 60 -pix_fmt yuv420p "$f"
done

run() {  # run NAME ARGS...: records to $OUT/NAME.jsonl, summary to $OUT/NAME.summary
    local name=$1; shift
    "$VIDCLS" predict -m "$CFG" -f jsonl --all-scores --summary-json "$@" "$OUT"/clip-*.mp4 \
        >"$OUT/$name.jsonl" 2>"$OUT/$name.err" || { cat "$OUT/$name.err" >&2; die "vidcls $name failed"; }
    tail -n 1 "$OUT/$name.err" >"$OUT/$name.summary"
}
run cpu-fp32 --device cpu --precision fp32 -b 1
for p in fp32 fp16 bf16; do
    for b in 1 8 32; do run "cuda-$p-b$b" --device cuda --precision "$p" -b "$b"; done
done

"$PY" - "$OUT" "$CFG" <<'EOF'
import json, sys, time
from pathlib import Path
import torch
out, cfg = Path(sys.argv[1]), json.load(open(sys.argv[2]))
def records(name):
    return {r["path"]: r for r in map(json.loads, (out / f"{name}.jsonl").read_text().splitlines())}
def rate(name):
    s = json.loads((out / f"{name}.summary").read_text())
    return s["views"] / s["elapsed_s"]
cpu, gpu = records("cpu-fp32"), records("cuda-fp32-b1")
worst = max(max(abs(a - b) for a, b in zip(cpu[p]["scores"], gpu[p]["scores"])) for p in cpu)
ok = worst <= 1e-3
print(f"cuda vs cpu fp32: largest probability difference {worst:.2e} ({'ok' if ok else 'FAILS'}, limit 1e-3)")
top = lambda r: max(range(len(r["scores"])), key=r["scores"].__getitem__)
for p in ("fp16", "bf16"):
    red = records(f"cuda-{p}-b1")
    agree = sum(top(red[k]) == top(gpu[k]) for k in gpu)
    print(f"cuda {p} vs cuda fp32: top-1 agreement {agree}/{len(gpu)}")
model = torch.jit.load(str(out / "models/models" / cfg["file"]), map_location="cuda").eval()
print("\n| precision | batch | vidcls clips/s | PyTorch eager clips/s |\n|---|---:|---:|---:|")
for p, kind in (("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)):
    m = model.to(kind)
    for b in (1, 8, 32):
        x = torch.randn(b, 3, cfg["frames"], cfg["crop"], cfg["crop"], device="cuda", dtype=kind)
        with torch.no_grad():
            m(x); torch.cuda.synchronize()
            n, t0 = 0, time.monotonic()
            while n < 5 or time.monotonic() - t0 < 3:
                m(x); n += 1
            torch.cuda.synchronize()
        eager = n * b / (time.monotonic() - t0)
        print(f"| {p} | {b} | {rate(f'cuda-{p}-b{b}'):.1f} | {eager:.1f} |")
sys.exit(0 if ok else 1)
EOF
