"""Section `train`: `vidcls train` on actions the built-in model never saw -> TRAINING-BENCH.md.

One run, side by side: the three ways to train (`--freeze`, the default, `--scratch`, each with
its default time limit and schedule) and the default recipe with a longer, 30-epoch schedule, on
the same data (scripts/action_set.py: its six actions and the
speed_up / slow_down pair), each scored through `vidcls predict` on held-out clips of the same
style and of another style (other shapes and backgrounds), with the wall time of the whole
`vidcls train` command and the training loop's clips/s next to the bare forward + backward
(+ AdamW) throughput of the same network on random tensors, measured here with PyTorch on the
same libtorch and thread count. The action sets are cached under target/bench/action-sets/ by a
key of action_set.py's hash and the set's parameters.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .common import CACHE, ROOT, SCRIPTS, cache_key, jsonl, log, sha256
from .page import SectionRun, run_ok

LABELS = ["orbit_cw", "orbit_ccw", "diagonal_up", "diagonal_down", "pulse", "swing", "speed_up", "slow_down"]
SPEED = ("speed_up", "slow_down")


@dataclass
class TrainPlan:
    per_class: int            # training clips per action (20% of them validate)
    test_per_class: int       # held-out clips per action, in each style
    epochs: int | None        # for the three ways to train; None: vidcls train's default
    fixed_epochs: int         # a longer schedule beside the default one


def make_plan(quick: bool) -> TrainPlan:
    return TrainPlan(6, 3, 2, 3) if quick else TrainPlan(40, 15, None, 30)


@dataclass
class TrainRow:
    mode: str
    wall_s: float
    decode_s: float
    val: float | None
    best_epoch: int
    probe: float | None
    clips: int
    epochs: int
    planned: int
    stopped: str
    same_style: tuple[float, float]
    other_style: tuple[float, float]
    clips_per_s: float | None


def action_set(per_class: int, seed: int, style: str) -> Path:
    """scripts/action_set.py's set, made once per key (the script's hash and the parameters)."""
    script = SCRIPTS / "action_set.py"
    key = cache_key(per_class, seed, style, LABELS, sha256(script))
    out = CACHE / "action-sets" / f"{style}-{seed}-{per_class}-{key}"
    if (out / "manifest.csv").exists():
        return out
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"making the action set {out.name} ({per_class} clips per action)")
    subprocess.run([sys.executable, str(script), "--out", str(tmp), "--per-class", str(per_class), "--seed", str(seed),
                    "--style", style, "--labels", ",".join(LABELS)], check=True, stdout=subprocess.DEVNULL)
    tmp.rename(out)
    return out


def top1(vidcls: Path, model: Path, data: Path) -> tuple[float, float]:
    """Top-1 of `vidcls predict -m MODEL` (no other flags) on all of `data`, and on the speed pair."""
    recs = [r for r in jsonl(run_ok([vidcls, "predict", "-m", model, "-f", "jsonl", "-k", "1", "-q", data]).stdout)
            if "top_k" in r]
    hit = [(r["top_k"][0]["label"] == Path(r["path"]).parent.name, Path(r["path"]).parent.name) for r in recs]
    speed = [h for h, label in hit if label in SPEED]
    return sum(h for h, _ in hit) / max(len(hit), 1), sum(speed) / max(len(speed), 1)


def train_once(s: SectionRun, mode: str, flags: list[str], data: dict[str, Path], model: Path) -> TrainRow:
    log(f"train: vidcls train {' '.join(flags) or '(defaults)'}")
    t0 = time.perf_counter()
    run_ok([s.vidcls, "train", data["train"], "-o", model, "--force", "-q", "--threads", os.cpu_count() or 1, *flags])
    wall = time.perf_counter() - t0
    m = json.loads((model / "metrics.json").read_text())
    cps = sorted(e["clips_per_s"] for e in m["epochs"] if e.get("clips_per_s") is not None)
    views = json.loads((model / "config.json").read_text()).get("default_views") or {}
    return TrainRow(mode=mode, wall_s=wall, decode_s=m["decode_seconds"], val=m["val_top1"], best_epoch=m["best_epoch"],
                    probe=m.get("probe_val_top1"), clips=views.get("clips", 1), epochs=len(m["epochs"]),
                    planned=m["epochs_planned"], stopped=m["stopped"],
                    same_style=top1(s.vidcls, model, data["same"]), other_style=top1(s.vidcls, model, data["other"]),
                    clips_per_s=cps[len(cps) // 2] if cps else None)


def bare_throughput(batch: int, frames: int, size: int, classes: int, threads: int, steps: int = 12) -> float:
    """Forward + backward + AdamW of the built-in network on random clips (PyTorch)."""
    import torch
    torch.set_num_threads(threads)
    m = torch.jit.load(str(ROOT / "models" / "motion.pt"))
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


def modes(p: TrainPlan) -> list[tuple[str, list[str]]]:
    e = ["--epochs", str(p.epochs)] if p.epochs else []
    suffix = f" (--epochs {p.epochs})" if p.epochs else ""
    return [(f"--freeze{suffix}", ["--freeze", *e]), (f"default{suffix}", e), (f"--scratch{suffix}", ["--scratch", *e]),
            (f"--epochs {p.fixed_epochs}", ["--epochs", str(p.fixed_epochs)])]


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def table(rows: list[TrainRow]) -> list[str]:
    out = ["| mode | `vidcls train` wall | decode | epochs run / planned (stop) | val top-1 (best epoch) | probe val "
           "| default clips | same-style test (speed pair) | other-style test (speed pair) | loop clips/s (median epoch) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cps = f"{r.clips_per_s:.1f}" if r.clips_per_s else "-"
        (same, same_speed), (other, other_speed) = r.same_style, r.other_style
        out.append(f"| {r.mode} | {r.wall_s:.0f} s | {r.decode_s:.1f} s | {r.epochs} / {r.planned} ({r.stopped}) "
                   f"| {pct(r.val)} ({r.best_epoch}) | {pct(r.probe)} "
                   f"| {r.clips} | {pct(same)} ({pct(same_speed)}) | {pct(other)} ({pct(other_speed)}) | {cps} |")
    return out


def run(s: SectionRun) -> Path:
    p = make_plan(s.quick)
    threads = os.cpu_count() or 1
    data = {"train": action_set(p.per_class, 1, "a"), "same": action_set(p.test_per_class, 2, "a"),
            "other": action_set(p.test_per_class, 3, "b")}
    with tempfile.TemporaryDirectory(prefix="train-", dir=CACHE) as work:
        rows = [train_once(s, mode, flags, data, Path(work) / f"model-{i}") for i, (mode, flags) in enumerate(modes(p))]
    bare = bare_throughput(16, 8, 64, len(LABELS), threads)
    body = [
        f"Measured with {threads} threads. Data: scripts/action_set.py, {len(LABELS)} actions ({', '.join(LABELS)}),"
        f" {p.per_class} clips each (seed 1, style a), 20% held out for validation; test clips:"
        f" {p.test_per_class} per action of the same style (seed 2) and of the other style (seed 3, other shapes"
        " and backgrounds). Held-out top-1 is `vidcls predict -m MODEL` with no other flags (so with the views"
        " train chose); the speed pair is speed_up and slow_down alone. The validation figure is the selection"
        " score (the best of the epochs, with the chosen views): optimistic. Each run has `vidcls train`'s default"
        " time limit (10 min, decoding included).",
        "",
        *table(rows),
        "",
        f"Bare forward + backward + AdamW of the same network on random 16 x 3 x 8 x 64 x 64 batches"
        f" (PyTorch, same libtorch, {threads} threads): {bare:.1f} clips/s. The training loop's clips/s above"
        " include augmentation (crop and resize of cached clips) and the loss; epoch 0 is the linear probe.",
    ]
    return s.write("TRAINING-BENCH.md", "vidcls train: measured", body)
