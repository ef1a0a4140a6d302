"""Section `embed`: throughput of `vidcls embed` next to `vidcls predict` -> EMBED-BENCH.md.

Two workloads, each run with both commands (same model, same sampling, same threads):

  whole video   short clips, one centre clip each (predict: top-k labels; embed: 1 x D)
  windows       long videos in 2-s windows (predict --timeline; embed --window 2: windows x D)

Rates come from each run's `--summary-json` line (model loading excluded): videos/s and views/s
(a view is one clip through the model). Each cell is the best of the repeats (the least disturbed
by other work on a shared machine), the two commands alternating. The videos are made with the
ffmpeg CLI and cached like the main corpus (vbench.setup.ffmpeg_video).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .common import CACHE, log
from .page import SectionRun, run_ok
from .runners import run_summary
from .setup import ffmpeg_video


@dataclass
class Videos:
    count: int
    seconds: float    # the first one's; each next one is half a second longer
    size: str = "320x240"


@dataclass
class EmbedPlan:
    short: Videos
    long: Videos
    repeats: int


def make_plan(quick: bool) -> EmbedPlan:
    if quick:
        return EmbedPlan(Videos(4, 3), Videos(1, 12), 1)
    return EmbedPlan(Videos(16, 5), Videos(2, 60), 5)


def corpus(kind: str, v: Videos) -> list[Path]:
    return [ffmpeg_video(CACHE / "corpus" / "embed", f"{kind}_{i:02d}", v.size, v.seconds + i * 0.5, 4000 + i, 12,
                         "veryfast", 60) for i in range(v.count)]


def described(noun: str, v: Videos) -> str:
    last = v.seconds + (v.count - 1) * 0.5
    return f"{v.count} {noun}s of {v.seconds:g}-{last:g} s" if v.count > 1 else f"1 {noun} of {v.seconds:g} s"


def rate(vidcls: Path, command: str, files: list[Path], extra: list[str], out: Path) -> tuple[float, int]:
    """Pipeline seconds (from --summary-json) and views of one run."""
    cmd = [vidcls, command, "-q", "--summary-json", "--device", "cpu", *extra]
    if command == "predict":
        cmd += ["-f", "jsonl", "-k", "1"]
    else:
        shutil.rmtree(out, ignore_errors=True)
        cmd += ["-o", out]
    summary = run_summary(run_ok(cmd + files).stderr)
    if summary is None:
        raise SystemExit(f"vbench: vidcls {command} printed no run summary")
    return summary.elapsed_s, summary.views


def workload(s: SectionRun, p: EmbedPlan, name: str, files: list[Path], extra: dict[str, list[str]], out: Path) -> str:
    got = {"predict": [], "embed": []}
    for i in range(p.repeats):
        log(f"embed: {name}, run {i + 1} of {p.repeats}")
        for command in got:  # alternating, so that slow spells of a shared machine hit both
            got[command].append(rate(s.vidcls, command, files, extra[command], out))
    best = {c: min(t for t, _ in runs) for c, runs in got.items()}
    spread = {c: max(t for t, _ in runs) / best[c] for c, runs in got.items()}
    views = got["predict"][0][1]
    pv, ev = len(files) / best["predict"], len(files) / best["embed"]
    return (f"| {name} | {len(files)} | {views} | {pv:.2f} | {ev:.2f} | {views / best['predict']:.1f} "
            f"| {views / best['embed']:.1f} | {ev / pv:.2f}x | {spread['predict']:.2f}x, {spread['embed']:.2f}x |")


def run(s: SectionRun) -> Path:
    p = make_plan(s.quick)
    short, long_ = corpus("short", p.short), corpus("long", p.long)
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="embed-", dir=CACHE) as tmp:
        out = Path(tmp) / "features"
        rows = [workload(s, p, "whole video", short, {"predict": [], "embed": []}, out),
                workload(s, p, "2-s windows", long_, {"predict": ["--timeline", "--window", "2"],
                                                      "embed": ["--window", "2"]}, out)]
    runs = f"best of {p.repeats} runs each, the two commands alternating" if p.repeats > 1 else "one run each"
    body = [
        f"The built-in motion model, fp32, CPU, default threads; {runs}. Rates from each run's `--summary-json`"
        f" (model loading excluded). Corpus (ffmpeg `testsrc2` with noise, H.264): {described('clip', p.short)} and"
        f" {described('video', p.long)} at {p.short.size}.",
        "",
        "| workload | videos | views | predict videos/s | embed videos/s | predict views/s | embed views/s "
        "| embed / predict | slowest / fastest run (predict, embed) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Both commands run the same pipeline (decode, preprocess, batch, forward) and differ in the graph method"
        " called (`forward` vs `features`, which skips the final linear layer) and in what is written (a JSON line"
        " vs a `.npy` file and an index line). The last column is the run-to-run spread of each command's time on"
        " this machine at the time: an embed / predict ratio within it is not a difference between the commands.",
    ]
    return s.write("EMBED-BENCH.md", "Features vs labels (`vidcls embed` next to `vidcls predict`)", body)
