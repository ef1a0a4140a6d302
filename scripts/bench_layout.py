#!/usr/bin/env python3
"""The model alone in the contiguous (NCTHW) and the channels-last-3d layout, fp32 and bf16.

For each model, builds the graph the way it is exported (scripts/export_models.py: traced, pooling
without a bf16 kernel kept in float32; the default motion model: models/motion.pt's weights in
scripts/train_motion.py's network, scripted), once as is and once wrapped in export_models's
`ChannelsLast3d`, loads each from its saved bytes and casts it the way vidcls does (bf16: module and
input), then times one clip per forward pass (batch 1) on a random input of the model's default
clip size, the four variants taking turns (after one warm-up pass each), and prints a Markdown
table: median, min and max milliseconds per clip over the runs, and channels-last's speed-up over
contiguous (ratio of the medians). Kinetics models use random weights: their speed does not depend
on them.

    nice -n 10 .venv/bin/python scripts/bench_layout.py [--runs 7] [--threads N] [MODEL ...]

MODEL: an architecture of export_models.py, or `motion` (default: motion r2plus1d_18 s3d i3d).
Rows are printed as each model finishes.
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export_models as em  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LAYOUTS = ("contiguous", "channels-last")
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def motion_model() -> tuple[torch.nn.Module, int, int]:
    """The default motion model as an eager module (weights from models/motion.pt)."""
    import train_motion as tm

    scripted = torch.jit.load(str(ROOT / "models/motion.pt"), map_location="cpu")
    model = tm.R2Plus1dTiny(len(tm.md.LABELS))
    model.load_state_dict(scripted.state_dict(), strict=True)
    return model.eval(), tm.DEFAULT_FRAMES, tm.SIZE


def kinetics_model(arch: str) -> tuple[torch.nn.Module, int, int]:
    spec = em.SPECS[arch]
    torch.manual_seed(0)
    model = spec.build().eval()
    em.keep_float32(model)
    _, crop, _, _ = em.preprocessing(spec)
    return model, spec.frames, crop


def graphs(name: str) -> tuple[dict[str, bytes], tuple[int, ...]]:
    """The saved TorchScript bytes of each layout, and the input shape."""
    model, frames, crop = motion_model() if name == "motion" else kinetics_model(name)
    shape = (1, 3, frames, crop, crop)
    out = {}
    for layout in LAYOUTS:
        m = em.ChannelsLast3d(model) if layout == "channels-last" else model
        m.eval()
        with torch.no_grad():
            if name == "motion" or em.SPECS[name].script:
                compiled = torch.jit.script(m)
            else:
                compiled = torch.jit.trace(m, torch.randn(shape), check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(compiled, buf)
        out[layout] = buf.getvalue()
        if layout == "channels-last":  # ChannelsLast3d converted the weights in place
            model = model.to(memory_format=torch.contiguous_format)
    return out, shape


def load(graph: bytes, dtype: torch.dtype) -> torch.jit.ScriptModule:
    m = torch.jit.load(io.BytesIO(graph), map_location="cpu")
    m.eval()
    return m.to(dtype) if dtype != torch.float32 else m


def time_clip(m, x: torch.Tensor, min_s: float) -> float:
    """Milliseconds per forward pass: passes repeated until `min_s` seconds have gone by."""
    n, t0 = 0, time.perf_counter()
    with torch.no_grad():
        while True:
            m(x)
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_s:
                return dt / n * 1e3


def bench(name: str, runs: int, min_s: float) -> list[tuple]:
    blobs, shape = graphs(name)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    variants = [(p, layout) for p in PRECISIONS for layout in LAYOUTS]
    models = {(p, layout): load(blobs[layout], PRECISIONS[p]) for p, layout in variants}
    inputs = {p: x.to(dtype) for p, dtype in PRECISIONS.items()}
    ms: dict[tuple, list[float]] = {v: [] for v in variants}
    with torch.no_grad():
        for v in variants:  # warm-up
            models[v](inputs[v[0]])
    for i in range(runs):
        order = variants if i % 2 == 0 else variants[::-1]
        for v in order:
            ms[v].append(time_clip(models[v], inputs[v[0]], min_s))
    rows = []
    for p in PRECISIONS:
        med = {layout: statistics.median(ms[(p, layout)]) for layout in LAYOUTS}
        for layout in LAYOUTS:
            t = ms[(p, layout)]
            speedup = f"{med['contiguous'] / med[layout]:.2f}x" if layout == "channels-last" else ""
            rows.append((name, "x".join(map(str, shape[2:])), p, layout, statistics.median(t), min(t), max(t), speedup))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # motion first: TorchScript cannot script ChannelsLast3d once it has traced it.
    ap.add_argument("models", nargs="*", default=["motion", "r2plus1d_18", "s3d", "i3d"])
    ap.add_argument("--runs", type=int, default=7, help="timed runs of each variant (default 7)")
    ap.add_argument("--min-seconds", type=float, default=0.5,
                    help="a run repeats the forward pass until this long has passed (default 0.5)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)
    unknown = [m for m in args.models if m != "motion" and m not in em.SPECS]
    if unknown:
        ap.error(f"unknown model(s): {', '.join(unknown)}; known: motion, {', '.join(em.SPECS)}")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    # As vidcls: the profiling executor off (every call runs the same optimised graph).
    torch._C._jit_set_profiling_mode(False)
    load0 = os.getloadavg()[0]
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    print(f"{started}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads; torch {torch.__version__}; load average (1 min) "
          f"{load0:.2f} at the start; batch 1, {args.runs} runs of each variant (each >= "
          f"{args.min_seconds:g} s of forward passes), taking turns\n")
    print("| model | T x H x W | precision | layout | ms per clip, median | min | max | channels-last speed-up |")
    print("|---|---|---|---|---:|---:|---:|---:|", flush=True)
    for m in args.models:
        for name, shape, p, layout, med, lo, hi, speedup in bench(m, args.runs, args.min_seconds):
            print(f"| {name} | {shape} | {p} | {layout} | {med:.1f} | {lo:.1f} | {hi:.1f} | {speedup} |", flush=True)
    print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
