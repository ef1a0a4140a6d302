#!/usr/bin/env bash
# GPU check of vidcls: one short run (about 3 minutes) on a machine with one CUDA GPU and
# PyTorch 2.11, using the bundle that scripts/build_device.sh makes here (vidcls built with
# tch 0.24 against libtorch 2.11.0, Debian 12's FFmpeg libraries, test videos).
#
#   scripts/device_check.sh [BUNDLE_DIR]              # default: target/device/bundle
#   DEVICE=cpu scripts/device_check.sh [BUNDLE_DIR]   # dry run of every step on the CPU
#
# What it checks, on r2plus1d_18 (random weights, BatchNorm-calibrated by
# scripts/export_models.py, exported on the machine itself: the 126 MB file is not carried)
# and the bundle's videos (VIDEOS of them, CLIPS views each):
#   1. the same vidcls code path on --device $DEVICE vs --device cpu, fp32: every class
#      probability within 1e-3, and each record says which device and precision ran;
#   2. --precision fp16 and bf16 on $DEVICE: top-1 agreement with fp32 on $DEVICE;
#   3. clips/s at batch 1, 8 and 32: vidcls end to end (decode and preprocessing included,
#      model loading excluded: --summary-json's views / elapsed_s), and the model alone in
#      PyTorch on the same device: the same TorchScript file, and torchvision's eager module
#      with the same weights (random input, no_grad, one warm-up pass).
# It prints a markdown table for docs/BENCHMARKS.md, and exits non-zero if check 1 fails,
# a precision did not run as asked, or anything is missing.
#
# On the CPU (DEVICE=cpu) fp16 is skipped (vidcls refuses it there), the batch sizes are
# BATCHES (default "1 4"), one view per video, and the libtorch vidcls runs on is LIBTORCH_DIR
# (default: the libtorch 2.11.0 that scripts/build_device.sh assembled), since this machine's
# Python torch is another version. Environment: DEVICE, BATCHES, CLIPS, PYTHON, WORK,
# LIBTORCH_DIR, MIN_SECONDS (per PyTorch timing, default 1); STEPS=pull runs only the check of
# a model installed by `vidcls models pull` (pull_check) and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=$(realpath "${1:-target/device/bundle}")
DEVICE=${DEVICE:-cuda}
WORK=${WORK:-target/device-check}
PY=${PYTHON:-python3}
die() { echo "device_check: $*" >&2; exit 2; }
case $DEVICE in
  cuda) PRECISIONS="fp32 fp16 bf16"; BATCHES=${BATCHES:-"1 8 32"}; CLIPS=${CLIPS:-8} ;;
  cpu) PRECISIONS="fp32 bf16"; BATCHES=${BATCHES:-"1 4"}; CLIPS=${CLIPS:-1} ;;
  *) die "DEVICE must be cuda or cpu, not $DEVICE" ;;
esac
t_start=$(date +%s)
mkdir -p "$WORK"
WORK=$(realpath "$WORK")

[ -x "$BUNDLE/vidcls" ] && [ -f "$BUNDLE/ffmpeg-libs.tar.xz" ] && ls "$BUNDLE"/videos/*.mp4 >/dev/null 2>&1 \
  || die "$BUNDLE is not a bundle (vidcls, ffmpeg-libs.tar.xz, videos/): make it with scripts/build_device.sh"
want=$(sed -n 's/.*libtorch \([0-9.]*\).*/\1/p' "$BUNDLE/BUILD-INFO" | head -n 1)
"$PY" - "$DEVICE" <<'EOF' || die "$PY cannot run PyTorch on $DEVICE"
import sys, torch, torchvision
dev = sys.argv[1]
assert dev == "cpu" or torch.cuda.is_available(), "torch sees no CUDA device"
name = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
print(f"python torch {torch.__version__}, torchvision {torchvision.__version__}, {name}")
EOF

# --- vidcls from the bundle on this machine's libtorch ---------------------------------------
if [ "$DEVICE" = cuda ]; then
  TORCH_LIB=$("$PY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  have=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
  [ "$have" = "$want" ] || die "the bundle's vidcls needs libtorch $want; this torch is $have"
  # The binary was linked against the CPU libraries: libtorch_cuda registers the CUDA backend
  # from its static initialisers when it is loaded, so load it first.
  PRELOAD=$TORCH_LIB/libtorch_cuda.so
  [ -f "$PRELOAD" ] || die "$PRELOAD missing: this torch has no CUDA"
else
  TORCH_LIB=${LIBTORCH_DIR:-$(sed -n 's/^libtorch-dir: \([^ ]*\).*/\1/p' "$BUNDLE/BUILD-INFO")}
  [ -f "$TORCH_LIB/libtorch_cpu.so" ] || die "no libtorch $want for the dry run: set LIBTORCH_DIR (scripts/build_device.sh makes one)"
  PRELOAD=
fi
rm -rf "$WORK/lib"
"$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$BUNDLE/ffmpeg-libs.tar.xz" "$WORK" \
  || die "cannot unpack $BUNDLE/ffmpeg-libs.tar.xz"
export LD_LIBRARY_PATH="$WORK/lib:$TORCH_LIB"
VIDCLS="$BUNDLE/vidcls"
vidcls() { LD_PRELOAD=$PRELOAD "$VIDCLS" "$@"; }
missing=$(LD_PRELOAD=$PRELOAD ldd "$VIDCLS" | grep 'not found' || true)
[ -z "$missing" ] || die "libraries not found for $VIDCLS: $missing"
echo "libraries: $(LD_PRELOAD=$PRELOAD ldd "$VIDCLS" | awk '$3 ~ /^\// {print $3}' | grep -c -e "^$WORK/lib/" -e "^$TORCH_LIB/") from the bundle and torch, the rest:"
LD_PRELOAD=$PRELOAD ldd "$VIDCLS" | awk '$3 ~ /^\// {print "  " $3}' | grep -v -e "$WORK/lib/" -e "$TORCH_LIB/" || true
vidcls version
if [ "$DEVICE" = cuda ]; then
  vidcls version | grep -q '^cuda .*available' && ! vidcls version | grep -q '^cuda *not available' \
    || die "vidcls does not see CUDA"
fi

# --- a pulled model: weight-free graph filled by `vidcls models pull`, on this libtorch -------
# Random-init r2plus1d_18 weights (tests/python/pretrained_fixture.py's, legacy .pth) installed
# offline with --from; vidcls on $DEVICE in fp32 against torchvision's eager module on the same
# device and the same dumped views, then what --precision auto runs.
pull_check() {
  local d="$WORK/pull" views="$WORK/pull/views"
  rm -rf "$d"; mkdir -p "$d"
  PYTHONPATH=scripts:tests/python "$PY" - "$d" <<'PYEOF' || die "cannot make the pull fixture"
import hashlib, json, sys
from pathlib import Path
import torch
import pretrained_fixture as pf
d = Path(sys.argv[1])
tmp = d / "w.tmp"
torch.save(pf.reference_model("r2plus1d_18").state_dict(), tmp, _use_new_zipfile_serialization=False)
sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
weights = d / f"r2plus1d_18-{sha[:8]}.pth"
tmp.replace(weights)
card = json.loads(Path("configs/r2plus1d_18.json").read_text())
card["labels"] = Path("configs/kinetics400.txt").read_text().split("\n")[:400]
del card["labels_file"]
card["pretrained"].update(url=f"http://127.0.0.1:9/{weights.name}", sha256=sha, bytes=weights.stat().st_size,
                          graph=str(Path("models/graphs/r2plus1d_18.pt").resolve()))
(d / "card.json").write_text(json.dumps(card))
print(weights)
PYEOF
  local w; w=$(ls "$d"/r2plus1d_18-*.pth)
  VIDCLS_CACHE_DIR="$d/cache" vidcls models pull "$d/card.json" --offline --from "$w" --no-precision-check \
    || die "models pull failed"
  local cfg="$d/cache/configs/r2plus1d_18.json"
  vidcls predict -m "$cfg" --device "$DEVICE" --precision fp32 -f jsonl --top-k 400 --dump-inputs "$views" \
    "${VIDEOS[@]:0:4}" >"$d/vidcls.jsonl" || die "predict with the pulled model failed"
  PYTHONPATH=scripts:tests/python "$PY" - "$d" "$DEVICE" <<'PYEOF' || die "the pulled model differs from torchvision"
import json, sys
from pathlib import Path
import numpy as np, torch
import pretrained_fixture as pf
d, dev = Path(sys.argv[1]), sys.argv[2]
model = pf.reference_model("r2plus1d_18").to(dev)
worst = 0.0
recs = [json.loads(l) for l in (d / "vidcls.jsonl").read_text().splitlines() if l.strip()]
for i, rec in enumerate(recs):
    x = torch.from_numpy(np.load(d / "views" / f"{i}.npy")).to(dev)
    with torch.no_grad():
        ref = model(x).softmax(1).mean(0).cpu().double()
    got = torch.zeros(400, dtype=torch.float64)
    for t in rec["top_k"]:
        got[t["index"]] = t["score"]
    worst = max(worst, float((got - ref).abs().max()))
print(f"pulled r2plus1d_18 on {dev}, torch {torch.__version__}: {len(recs)} videos, "
      f"max |p_vidcls - p_torchvision| = {worst:.2e}")
sys.exit(0 if worst <= 1e-4 else 1)
PYEOF
  VIDCLS_CACHE_DIR="$d/cache" vidcls predict -m r2plus1d_18 --device "$DEVICE" -v -f jsonl "${VIDEOS[@]:0:1}" \
    2>&1 >/dev/null | head -n 1 || true
}
if [ "${STEPS:-all}" = pull ]; then
  VIDEOS=("$BUNDLE"/videos/*.mp4)
  pull_check
  echo "device_check: pull check done in $(($(date +%s) - t_start)) s"
  exit 0
fi

# --- model: exported here, same script and seed as the benchmark's ---------------------------
CFG="$WORK/models/configs/r2plus1d_18.json"
if [ ! -f "$CFG" ]; then
  t0=$(date +%s)
  "$PY" scripts/export_models.py --random-init --seed 0 --frames 16 --out-dir "$WORK/models" r2plus1d_18 \
    >"$WORK/export.log" 2>&1 || { cat "$WORK/export.log" >&2; die "export of r2plus1d_18 failed"; }
  echo "exported r2plus1d_18 in $(($(date +%s) - t0)) s"
fi

# --- vidcls runs --------------------------------------------------------------------------------
VIDEOS=("$BUNDLE"/videos/*.mp4)
INPUTS=("${VIDEOS[@]}")
RUN_CFG=$CFG
run() {  # run NAME ARGS...: RUN_CFG on INPUTS; records to $WORK/NAME.jsonl, summary to $WORK/NAME.summary
  local name=$1; shift
  vidcls predict -m "$RUN_CFG" -f jsonl --all-scores --summary-json --clips "$CLIPS" "$@" "${INPUTS[@]}" \
    >"$WORK/$name.jsonl" 2>"$WORK/$name.err" || { cat "$WORK/$name.err" >&2; die "vidcls $name failed"; }
  tail -n 1 "$WORK/$name.err" >"$WORK/$name.summary"
}
run ref-cpu-fp32 --device cpu --precision fp32 -b 1
for p in $PRECISIONS; do
  for b in $BATCHES; do run "dev-$p-b$b" --device "$DEVICE" --precision "$p" -b "$b"; done
done

# --- where the end-to-end time goes: the defaults on COPIES x the videos, and decoding alone ----
# No speed flags (device, precision and batch size auto); then the same inputs with a stand-in
# model that only averages its input (the benchmark's, `vbench.defaults.stand_in`: same config
# otherwise, cached under target/bench/), so its rate is that of decoding and preprocessing alone.
mkdir -p "$WORK/many"
rm -f "$WORK/many"/*
for c in $(seq "${COPIES:-4}"); do
  for v in "${VIDEOS[@]}"; do ln -s "$v" "$WORK/many/$c-$(basename "$v")"; done
done
STAND_IN=$(PYTHONPATH=scripts "$PY" -c 'import sys; from pathlib import Path
from vbench.defaults import stand_in
print(stand_in(Path(sys.argv[1]).resolve()))' "$CFG") || die "cannot make the stand-in model"
INPUTS=("$WORK"/many/*.mp4)
run defaults --device "$DEVICE"
RUN_CFG=$STAND_IN
run decode-alone --device "$DEVICE"

# --- comparison, PyTorch on the same device, table -------------------------------------------
PYTHONUNBUFFERED=1 CLIPS=$CLIPS "$PY" - "$WORK" "$CFG" "$DEVICE" "$PRECISIONS" "$BATCHES" "${MIN_SECONDS:-1}" <<'EOF'
import json, sys, time
from pathlib import Path
import os
import torch, torchvision
CLIPS = int(os.environ["CLIPS"])
out, cfg, dev = Path(sys.argv[1]), json.load(open(sys.argv[2])), sys.argv[3]
precisions, batches, min_s = sys.argv[4].split(), [int(b) for b in sys.argv[5].split()], float(sys.argv[6])
fails = []
def records(name):
    recs = {r["path"]: r for r in map(json.loads, (out / f"{name}.jsonl").read_text().splitlines())}
    for r in recs.values():
        if "error" in r or "scores" not in r:
            fails.append(f"{name}: {r['path']}: {r.get('error', 'no scores')}")
    return recs
def rate(name):
    s = json.loads((out / f"{name}.summary").read_text())
    return s["views"] / s["elapsed_s"]
ref = records("ref-cpu-fp32")
runs = {(p, b): records(f"dev-{p}-b{b}") for p in precisions for b in batches}
for (p, b), recs in runs.items():
    for r in recs.values():
        ran = r.get("ran", {})
        if ran.get("device", "").split(":")[0] != dev or ran.get("precision") != p or ran.get("batch_size") != b:
            fails.append(f"dev-{p}-b{b}: {r['path']} ran {ran}")
dev32 = runs[("fp32", batches[0])]
worst = max(max(abs(a - b) for a, b in zip(ref[k]["scores"], dev32[k]["scores"])) for k in ref)
if worst > 1e-3:
    fails.append(f"{dev} vs cpu fp32: largest probability difference {worst:.2e} > 1e-3")
top = lambda r: max(range(len(r["scores"])), key=r["scores"].__getitem__)
agreement = {}
for p in precisions:
    red = runs[(p, batches[0])]
    agreement[p] = (sum(top(red[k]) == top(dev32[k]) for k in dev32), len(dev32))
for p, b in runs:  # batching must not change results
    d = max(max(abs(x - y) for x, y in zip(runs[(p, b)][k]["scores"], runs[(p, batches[0])][k]["scores"])) for k in dev32)
    if p == "fp32" and d > 1e-3:
        fails.append(f"{dev} fp32 batch {b} vs batch {batches[0]}: {d:.2e} > 1e-3")

name = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
pt = str(out / "models/models" / cfg["file"])
sd = torch.jit.load(pt, map_location="cpu").state_dict()
fc = next(k for k in sd if k.endswith("fc.weight"))  # the export may wrap the network
prefix = fc[: -len("fc.weight")]
sd = {k[len(prefix):]: v.float() for k, v in sd.items() if k.startswith(prefix)}
def load(which, kind):
    if which == "script":
        return torch.jit.load(pt, map_location=dev).eval().to(kind)
    m = torchvision.models.video.r2plus1d_18(num_classes=sd["fc.weight"].shape[0])
    m.load_state_dict(sd)
    return m.to(dev).eval().to(kind)
def clips_per_s(m, kind, b):
    x = torch.randn(b, 3, cfg["frames"], cfg["crop"], cfg["crop"], device=dev).to(kind)
    with torch.no_grad():
        m(x); sync()
        n, t0 = 0, time.monotonic()
        while n < 3 or time.monotonic() - t0 < min_s:
            m(x); n += 1
        sync()
    return n * b / (time.monotonic() - t0)
kinds = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
vids = len(dev32)
print(f"\nr2plus1d_18 (random init, BatchNorm-calibrated), {vids} videos, {len(next(iter(dev32.values()))['frame_times'])} clip(s) each, "
      f"{name}, torch {torch.__version__}; vidcls = scripts/device_check.sh (DEVICE={dev})\n")
print(f"{dev} vs cpu, fp32, batch {batches[0]}: largest probability difference {worst:.2e} (limit 1e-3)\n")
print(f"| precision | batch | top-1 agreement with {dev} fp32 | vidcls clips/s (end to end) | TorchScript clips/s (model alone) | PyTorch eager clips/s (model alone) |")
print("|---|---:|---:|---:|---:|---:|")
for p in precisions:
    k = kinds[p]
    s_m, e_m = load("script", k), load("eager", k)
    for b in batches:
        a, n = agreement[p]
        agree = f"{a}/{n}" if b == batches[0] else ""
        print(f"| {p} | {b} | {agree} | {rate(f'dev-{p}-b{b}'):.1f} | {clips_per_s(s_m, k, b):.1f} | {clips_per_s(e_m, k, b):.1f} |")
d = records("defaults")
ran = next(iter(d.values()))["ran"]
print(f"\nDefaults (no speed flags: ran {ran['device']}, {ran['precision']}, batch {ran['batch_size']}) on "
      f"{len(d)} inputs ({vids} videos, each {len(d) // vids} times), {CLIPS} clip(s) each:\n")
print("| vidcls run | clips/s (end to end) |")
print("|---|---:|")
print(f"| r2plus1d_18, defaults | {rate('defaults'):.1f} |")
print(f"| stand-in model that only averages its input (decoding and preprocessing alone) | {rate('decode-alone'):.1f} |")
records("decode-alone")
for f in fails:
    print("FAIL:", f, file=sys.stderr)
sys.exit(1 if fails else 0)
EOF
echo "device_check: done in $(($(date +%s) - t_start)) s"
