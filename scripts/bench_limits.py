#!/usr/bin/env python3
"""What bounds the model's share of a clip's cost: the model alone in fp32, bf16 and int8, and how
far each agrees with fp32, next to how far fp32 agrees with itself under imperceptible noise.

For each architecture the model is built as `scripts/export_models.py --random-init --seed 0`
builds it (BatchNorm-calibrated random weights, 3D average pooling kept in float32, the spec's
layout) and traced as the exporter traces it. Then, on this CPU, batch 1 at the architecture's
default clip length:

- ms per clip of the traced graph in fp32 and in bf16 (module and input cast, as vidcls casts),
  and of an int8 version (PyTorch's FX static quantization, x86 engine: per-channel int8
  weights, activations observed on the exporter's 6 BatchNorm-calibration clips), median of
  `--runs` after one warm-up, torch using every core;
- top-1 agreement with fp32 on the 12 clips of the bf16 record (`scripts/precision_record.py`),
  for bf16, int8, and fp32 itself with one grey level of noise added (each value of the
  0..255 picture moved up or down by one, two draws per clip): a clip "holds" when both noisy
  copies keep fp32's top-1. The noise stands for the rounding that every 8-bit video carries,
  so a random-init model whose top-1 changes under it has clips where no precision can agree
  by more than chance;
- the largest logit difference from fp32 of each, median over the clips.

    python scripts/bench_limits.py [--runs N] [--write] ARCH...
With --write, the section between its markers in docs/BENCHMARKS.md is replaced (appended the
first time).
"""
from __future__ import annotations

import argparse
import copy
import io
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export_models as em  # noqa: E402
import precision_record as pr  # noqa: E402
from vbench.common import ROOT, head_commit, loadavg, write_section  # noqa: E402

BEGIN, END = "<!-- bench_limits.py: begin -->", "<!-- bench_limits.py: end -->"
SEED = 0
NOISE_DRAWS = 2
NOISY = "fp32 + 1 grey level"


def build(arch: str):
    """(eager float32 model before layout and pooling wrappers, traced graph, config, calibration batch)."""
    spec = em.SPECS[arch]
    _, crop, mean, std = em.preprocessing(spec)
    torch.manual_seed(SEED)
    model = spec.build()
    em.load_weights(arch, spec, model, argparse.Namespace(random_init=True, seed=SEED))
    model.eval()
    bare = copy.deepcopy(model)
    em.keep_float32(model)
    if spec.channels_last:
        model = em.ChannelsLast3d(model)
    model.eval()
    graph = em.compile_model(model, spec, spec.frames, crop)
    cfg = {"architecture": arch, "crop": crop, "mean": mean, "std": std}
    calib = em.calibration_clips(6, spec.frames, crop, SEED, mean, std)
    return bare, graph, cfg, calib


def int8(bare: torch.nn.Module, calib: torch.Tensor):
    """FX static quantization (x86 engine) observed on the calibration clips; (module, None) or
    (None, why it failed)."""
    from torch.ao.quantization import get_default_qconfig_mapping, quantize_fx

    torch.backends.quantized.engine = "x86"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepared = quantize_fx.prepare_fx(copy.deepcopy(bare), get_default_qconfig_mapping("x86"), (calib[:1],))
            with torch.no_grad():
                for i in range(calib.shape[0]):
                    prepared(calib[i : i + 1])
            return quantize_fx.convert_fx(prepared), None
    except Exception as e:  # noqa: BLE001 - any failure is reported in the table
        return None, str(e).strip().splitlines()[-1][:120]


def ms_per_clip(run, x: torch.Tensor, runs: int) -> list[float]:
    with torch.no_grad():
        run(x)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            run(x)
            times.append((time.perf_counter() - t) * 1e3)
    return times


def grey_level_noise(x: torch.Tensor, std: tuple, seed: int) -> torch.Tensor:
    """x with each value moved by +-1/255 of the picture's range, in the model's normalised units."""
    g = torch.Generator().manual_seed(seed)
    sign = torch.randint(0, 2, x.shape, generator=g).float() * 2 - 1
    return x + sign / 255 / torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1, 1)


def measure(arch: str, runs: int) -> dict:
    bare, graph, cfg, calib = build(arch)
    saved = io.BytesIO()
    torch.jit.save(graph, saved)
    low = torch.jit.load(io.BytesIO(saved.getvalue()), map_location="cpu").to(torch.bfloat16).eval()
    quant, why = int8(bare, calib)
    clips = pr.calibration_clips(cfg, pr.default_clips(cfg))
    reduced = {"bf16": lambda x: low(x.to(torch.bfloat16)).float()}
    if quant is not None:
        reduced["int8"] = quant
    rows = {"fp32": {}, **{k: {"agree": 0, "err": []} for k in (*reduced, NOISY)}}
    with torch.no_grad():
        for i in range(clips.shape[0]):
            x = clips[i : i + 1]
            ref = graph(x)
            for name, run in reduced.items():
                out = run(x)
                rows[name]["agree"] += int(out.argmax() == ref.argmax())
                rows[name]["err"].append(float((out - ref).abs().max()))
            noisy = [graph(grey_level_noise(x, cfg["std"], 1000 * i + k)) for k in range(NOISE_DRAWS)]
            rows[NOISY]["agree"] += all(int(o.argmax()) == int(ref.argmax()) for o in noisy)
            rows[NOISY]["err"].append(max(float((o - ref).abs().max()) for o in noisy))
    for name, run in {"fp32": graph, **reduced}.items():
        rows[name]["ms"] = ms_per_clip(run, clips[:1], runs)
    return {"arch": arch, "clips": int(clips.shape[0]), "rows": rows, "int8_failed": why,
            "frames": em.SPECS[arch].frames, "crop": cfg["crop"]}


def render(results: list[dict], runs: int, load0, load1) -> str:
    commit = head_commit()
    lines = [
        "## What bounds the model's share (`scripts/bench_limits.py`)",
        "",
        f"Written by `scripts/bench_limits.py --write`; {os.cpu_count()} logical CPUs, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads; commit {commit}; load average "
        f"(1 min) {load0} at the start, {load1} at the end. Random-init exports (seed {SEED}), "
        f"batch 1, ms per clip: median (min-max) of {runs} after a warm-up. Agreement: top-1 "
        f"with fp32 on the bf16 record's clips; for `fp32 + 1 grey level`, the clips whose "
        f"top-1 held under both noisy copies. Logit difference: the largest over the classes, "
        f"median over the clips.",
        "",
        "| model | T x H x W | variant | ms per clip | agrees with fp32 | logit difference |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in results:
        size = f"{r['frames']}x{r['crop']}x{r['crop']}"
        for name, row in r["rows"].items():
            ms = row.get("ms")
            timing = (f"{statistics.median(ms):.0f} ({min(ms):.0f}-{max(ms):.0f})" if ms else "")
            agree = f"{row['agree']}/{r['clips']}" if "agree" in row else ""
            diff = f"{statistics.median(row['err']):.3f}" if "err" in row else ""
            lines.append(f"| {r['arch']} | {size} | {name} | {timing} | {agree} | {diff} |")
        if r["int8_failed"]:
            lines.append(f"| {r['arch']} | {size} | int8 | failed: {r['int8_failed']} | | |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("arch", nargs="+", choices=sorted(em.SPECS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    if a.runs < 1:
        ap.error("--runs must be at least 1")
    load0 = loadavg()[0]
    results = [measure(arch, a.runs) for arch in a.arch]
    text = render(results, a.runs, load0, loadavg()[0])
    print(text)
    if a.write:
        write_section(ROOT / "docs/BENCHMARKS.md", BEGIN, END, text, append=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
