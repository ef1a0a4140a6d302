#!/usr/bin/env python3
"""`vidcls predict` with the default precision against `--precision fp32`, whole process, paired.

Runs `vidcls predict -f jsonl -m MODEL INPUTS` (the default, `--precision auto`) and the same with
`--precision fp32` in turn (A B A B ..., after one warm-up pair), and prints a Markdown table: the
precision each ran (from the records' `ran`), median / min / max wall seconds and CPU seconds (user +
system of the finished process), and the median of the pairwise wall ratios fp32 / default.

    python scripts/bench_auto_precision.py [--model configs/motion.json] [--runs 7] [INPUTS ...]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd: list[str]) -> tuple[float, float, set[str]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {out.returncode}: {out.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ran = {json.loads(line)["ran"]["precision"] for line in out.stdout.splitlines() if line.strip()}
    return wall, cpu, ran


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="*", default=[str(ROOT / "models/samples")])
    ap.add_argument("--model", default=str(ROOT / "configs/motion.json"))
    ap.add_argument("--vidcls", default=str(ROOT / "target/release/vidcls"))
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args(argv)
    base = [args.vidcls, "predict", "-q", "-f", "jsonl", "-m", args.model, *args.inputs]
    variants = {"default": base, "--precision fp32": base[:2] + ["--precision", "fp32"] + base[2:]}
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    ran: dict[str, set[str]] = {k: set() for k in variants}
    load0 = os.getloadavg()[0]
    for i in range(args.runs + 1):
        for name, cmd in variants.items():
            wall, cpu, precisions = run(cmd)
            ran[name] |= precisions
            if i > 0:
                results[name].append((wall, cpu))
    load1 = os.getloadavg()[0]
    print(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; load average (1 min) {load0:.2f} at the start, {load1:.2f} at the end; "
          f"{args.runs} runs each after one warm-up, alternating")
    print(f"`vidcls predict -f jsonl -m {Path(args.model).name} {' '.join(Path(p).name for p in args.inputs)}`\n")
    print("| flags | ran | wall s median (min-max) | CPU s median (min-max) |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        w = [r[0] for r in rows]
        c = [r[1] for r in rows]
        print(f"| {name} | {', '.join(sorted(ran[name]))} | {statistics.median(w):.2f} ({min(w):.2f}-{max(w):.2f}) "
              f"| {statistics.median(c):.2f} ({min(c):.2f}-{max(c):.2f}) |")
    ratios = [b[0] / a[0] for a, b in zip(results["default"], results["--precision fp32"])]
    print(f"\nwall fp32 / default, median of pairs: {statistics.median(ratios):.2f}x "
          f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
