#!/usr/bin/env python3
"""Measures `vidcls train` on actions the built-in model never saw and writes docs/TRAINING-BENCH.md.

One run, side by side: the three ways to train (`--freeze`, the default, `--scratch`) and the
default with a longer schedule, on the same data (scripts/action_set.py: its six actions and the
speed_up / slow_down pair), each scored through `vidcls predict` on held-out clips
of the same style and of another style (other shapes and backgrounds), with the wall time of the
whole `vidcls train` command and the training loop's clips/s next to the bare forward + backward
(+ AdamW) throughput of the same network on random tensors, measured here with PyTorch on the
same libtorch and thread count.

    .venv/bin/python scripts/train_bench.py [--per-class 30] [--long-epochs 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIDCLS = ROOT / "target/release/vidcls"


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw)


LABELS = ("orbit_cw,orbit_ccw,diagonal_up,diagonal_down,pulse,swing,speed_up,slow_down")
SPEED = ("speed_up", "slow_down")


def make_set(out: Path, per_class: int, seed: int, style: str):
    script = ROOT / "scripts/action_set.py"
    stamp = out / ".made-by"
    key = f"{per_class} {seed} {style} {LABELS} {hash_file(script)}"
    if stamp.exists() and stamp.read_text() == key:
        return out
    run([sys.executable, script, "--out", out, "--per-class", per_class, "--seed", seed,
         "--style", style, "--labels", LABELS])
    stamp.write_text(key)
    return out


def hash_file(p: Path) -> str:
    import hashlib
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16]


def top1(model: Path, data: Path) -> tuple[float, float]:
    """Top-1 of `vidcls predict -m MODEL` (no other flags) on all of `data`, and on the speed pair."""
    out = run([VIDCLS, "predict", "-m", model, "-f", "jsonl", "-k", "1", "-q", data]).stdout
    recs = [json.loads(line) for line in out.splitlines()]
    hit = [(r["top_k"][0]["label"] == Path(r["path"]).parent.name, Path(r["path"]).parent.name)
           for r in recs]
    speed = [h for h, label in hit if label in SPEED]
    return sum(h for h, _ in hit) / len(hit), sum(speed) / max(len(speed), 1)


def bare_throughput(batch: int, frames: int, size: int, classes: int, threads: int, steps=12):
    """Forward + backward + AdamW of the built-in network on random clips (PyTorch)."""
    import torch
    torch.set_num_threads(threads)
    m = torch.jit.load(str(ROOT / "models/motion.pt"))
    p = dict(m.named_parameters())
    p["fc.weight"].data = torch.zeros(classes, p["fc.weight"].shape[1])
    p["fc.bias"].data = torch.zeros(classes)
    m.eval()  # as vidcls fine-tunes a pretrained model: normalisation statistics kept
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, frames, size, size)
    y = torch.randint(0, classes, (batch,))
    for i in range(steps + 2):
        if i == 2:
            t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--long-epochs", type=int, default=60)
    ap.add_argument("--work", type=Path, default=Path("/tmp/vidcls-train-bench"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs/TRAINING-BENCH.md")
    args = ap.parse_args()
    threads = os.cpu_count() or 1
    start_load = os.getloadavg()[0]
    commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).stdout.strip()
    dirty = run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]).stdout
    train = make_set(args.work / "train", args.per_class, 1, "a")
    same = make_set(args.work / "test-a", 15, 2, "a")
    other = make_set(args.work / "test-b", 15, 3, "b")
    rows = []
    modes = [("--freeze", ["--freeze"]), ("default", []), ("--scratch", ["--scratch"]),
             (f"--epochs {args.long_epochs}", ["--epochs", str(args.long_epochs)])]
    for i, (mode, flags) in enumerate(modes):
        model = args.work / f"model-{i}"
        t0 = time.perf_counter()
        run([VIDCLS, "train", train, "-o", model, "--force", "-q", "--threads", threads, *flags])
        wall = time.perf_counter() - t0
        m = json.loads((model / "metrics.json").read_text())
        cps = [e["clips_per_s"] for e in m["epochs"]]
        views = json.loads((model / "config.json").read_text()).get("default_views") or {}
        rows.append({
            "mode": mode, "wall_s": wall, "val": m["val_top1"], "best_epoch": m["best_epoch"],
            "probe": m.get("probe_val_top1"), "clips": views.get("clips", 1),
            "same_style": top1(model, same), "other_style": top1(model, other),
            "clips_per_s": sorted(cps)[len(cps) // 2] if cps else None,
            "decode_s": m["decode_seconds"],
        })
        print(rows[-1], flush=True)
    bare = bare_throughput(16, 8, 64, len(LABELS.split(",")), threads)
    load = os.getloadavg()[0]
    pct = lambda v: "-" if v is None else f"{v * 100:.1f}%"  # noqa: E731
    lines = [
        "# vidcls train: measured",
        "",
        f"`.venv/bin/python scripts/train_bench.py --per-class {args.per_class}"
        f" --long-epochs {args.long_epochs}` at commit {commit}{' (dirty tree)' if dirty else ''},"
        f" {threads} threads, load average {start_load:.1f} at the start and {load:.1f} at the"
        f" end. Data: scripts/action_set.py, 8 actions ({LABELS.replace(',', ', ')}),"
        f" {args.per_class} clips each (seed 1, style a), 20% held out for validation; test"
        " clips: 15 per action of the same style (seed 2) and of the other style (seed 3,"
        " other shapes and backgrounds). Held-out top-1 is `vidcls predict -m MODEL` with no"
        " other flags (so with the views train chose); the speed pair is speed_up and"
        " slow_down alone. The validation figure is the selection score (the best of the"
        " epochs, with the chosen views): optimistic.",
        "",
        "| mode | `vidcls train` wall | decode | val top-1 (best epoch) | probe val | default clips | same-style test (speed pair) | other-style test (speed pair) | loop clips/s (median epoch) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cps = f"{r['clips_per_s']:.1f}" if r["clips_per_s"] else "-"
        (same, same_speed), (other, other_speed) = r["same_style"], r["other_style"]
        lines.append(
            f"| {r['mode']} | {r['wall_s']:.0f} s | {r['decode_s']:.1f} s | {pct(r['val'])} ({r['best_epoch']}) "
            f"| {pct(r['probe'])} | {r['clips']} | {pct(same)} ({pct(same_speed)}) "
            f"| {pct(other)} ({pct(other_speed)}) | {cps} |")
    lines += [
        "",
        f"Bare forward + backward + AdamW of the same network on random 16 x 3 x 8 x 64 x 64 batches"
        f" (PyTorch, same libtorch, {threads} threads): {bare:.1f} clips/s. The training loop's"
        " clips/s above include augmentation (crop and resize of cached clips) and the loss;"
        " epoch 0 is the linear probe.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
