#!/usr/bin/env python3
"""Measures `vidcls train` on actions the built-in model never saw and writes docs/TRAINING-BENCH.md.

One run, side by side: the three ways to train (`--freeze`, the default, `--scratch`) on the same
data (scripts/action_set.py, six actions), each scored through `vidcls predict` on held-out clips
of the same style and of another style (other shapes and backgrounds), with the wall time of the
whole `vidcls train` command and the training loop's clips/s next to the bare forward + backward
(+ AdamW) throughput of the same network on random tensors, measured here with PyTorch on the
same libtorch and thread count.

    .venv/bin/python scripts/train_bench.py [--per-class 30] [--epochs 12]
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


def make_set(out: Path, per_class: int, seed: int, style: str):
    script = ROOT / "scripts/action_set.py"
    stamp = out / ".made-by"
    key = f"{per_class} {seed} {style} {hash_file(script)}"
    if stamp.exists() and stamp.read_text() == key:
        return out
    run([sys.executable, script, "--out", out, "--per-class", per_class, "--seed", seed,
         "--style", style])
    stamp.write_text(key)
    return out


def hash_file(p: Path) -> str:
    import hashlib
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16]


def top1(model: Path, data: Path) -> float:
    out = run([VIDCLS, "predict", "-m", model, "-f", "jsonl", "-k", "1", "-q", data]).stdout
    recs = [json.loads(line) for line in out.splitlines()]
    right = sum(r["top_k"][0]["label"] == Path(r["path"]).parent.name for r in recs)
    return right / len(recs)


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
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--work", type=Path, default=Path("/tmp/vidcls-train-bench"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs/TRAINING-BENCH.md")
    args = ap.parse_args()
    threads = os.cpu_count() or 1
    train = make_set(args.work / "train", args.per_class, 1, "a")
    same = make_set(args.work / "test-a", 10, 2, "a")
    other = make_set(args.work / "test-b", 10, 3, "b")
    rows = []
    for mode, flags in [("--freeze", ["--freeze"]), ("default", []), ("--scratch", ["--scratch"])]:
        model = args.work / f"model{flags[0] if flags else '-default'}"
        t0 = time.perf_counter()
        run([VIDCLS, "train", train, "-o", model, "--force", "-q", "--epochs", args.epochs,
             "--threads", threads, *flags])
        wall = time.perf_counter() - t0
        m = json.loads((model / "metrics.json").read_text())
        cps = [e["clips_per_s"] for e in m["epochs"]]
        rows.append({
            "mode": mode, "wall_s": wall, "val": m["val_top1"], "best_epoch": m["best_epoch"],
            "same_style": top1(model, same), "other_style": top1(model, other),
            "clips_per_s": sorted(cps)[len(cps) // 2] if cps else None,
            "decode_s": m["decode_seconds"],
        })
        print(rows[-1], flush=True)
    bare = bare_throughput(16, 8, 64, 6, threads)
    load = os.getloadavg()[0]
    lines = [
        "# vidcls train: measured",
        "",
        f"`.venv/bin/python scripts/train_bench.py --per-class {args.per_class} --epochs {args.epochs}`"
        f" ({threads} threads; load average {load:.1f} when it finished). Data:"
        f" scripts/action_set.py, 6 actions, {args.per_class} clips each (seed 1, style a),"
        " 20% held out for validation; test clips: 10 per action of the same style (seed 2)"
        " and of the other style (seed 3, other shapes and backgrounds). Top-1 through"
        " `vidcls predict -m MODEL`.",
        "",
        "| mode | `vidcls train` wall | decode | val top-1 (best epoch) | same-style test | other-style test | loop clips/s (median epoch) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cps = f"{r['clips_per_s']:.1f}" if r["clips_per_s"] else "-"
        lines.append(
            f"| {r['mode']} | {r['wall_s']:.0f} s | {r['decode_s']:.1f} s | {r['val'] * 100:.1f}% ({r['best_epoch']}) "
            f"| {r['same_style'] * 100:.1f}% | {r['other_style'] * 100:.1f}% | {cps} |")
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
