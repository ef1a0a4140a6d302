#!/usr/bin/env python3
"""Throughput of `vidcls embed` next to `vidcls predict` on the same videos and views.

Two workloads, each run with both commands (same model, same sampling, same threads):

  whole video   short clips, one centre clip each (predict: top-k labels; embed: 1 x D)
  windows       long videos in 2-s windows (predict --timeline; embed --window 2: windows x D)

Rates come from each run's `--summary-json` line (model loading excluded): videos/s and views/s
(a view is one clip through the model). Each cell is the best of --repeats runs (the least
disturbed by other work on a shared machine). Prints a
Markdown table; `--write` also puts it into docs/BENCHMARKS.md as the "Features vs labels"
section (replacing that section if present; scripts/bench.sh rewrites the whole file, so run
this after it).

Videos are generated with the ffmpeg CLI and cached under target/bench/embed-<key>/, where the
key hashes this script and the corpus parameters.

    .venv/bin/python scripts/bench_embed.py [--write] [--model NAME] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "vidcls"
DOC = ROOT / "docs" / "BENCHMARKS.md"
BEGIN = "<!-- bench_embed.py: begin -->"
END = "<!-- bench_embed.py: end -->"

CORPUS = {
    "short": {"count": 16, "seconds": 5, "size": "320x240", "rate": 30},
    "long": {"count": 2, "seconds": 60, "size": "320x240", "rate": 30},
}


def corpus() -> dict[str, list[Path]]:
    key = hashlib.sha256(Path(__file__).read_bytes() + json.dumps(CORPUS, sort_keys=True).encode())
    d = ROOT / "target" / "bench" / f"embed-{key.hexdigest()[:12]}"
    if not (d / "done").exists():
        tmp = d.with_name(d.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for kind, p in CORPUS.items():
            for i in range(p["count"]):
                src = f"testsrc2=size={p['size']}:rate={p['rate']},noise=alls=12:allf=t+u"
                subprocess.run(
                    ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", src,
                     "-t", str(p["seconds"] + i * 0.5), "-c:v", "libx264", "-preset", "veryfast",
                     "-pix_fmt", "yuv420p", "-g", str(2 * p["rate"]), str(tmp / f"{kind}-{i:02d}.mp4")],
                    check=True,
                )
        (tmp / "done").write_text("")
        shutil.rmtree(d, ignore_errors=True)
        tmp.rename(d)
    return {k: sorted(d.glob(f"{k}-*.mp4")) for k in CORPUS}


def summary(cmd: list[str]) -> dict:
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return json.loads(last)


def run(command: str, files: list[Path], extra: list[str], common: list[str], out: Path) -> dict:
    cmd = [str(BIN), command, "-q", "--summary-json", *common, *extra]
    if command == "predict":
        cmd += ["-f", "jsonl", "-k", "1"]
    else:
        shutil.rmtree(out, ignore_errors=True)
        cmd += ["-o", str(out)]
    return summary(cmd + [str(f) for f in files])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return r.stdout.strip() + (" (with local changes)" if dirty else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model name or file (default: the built-in motion model)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="put the table into docs/BENCHMARKS.md")
    args = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} missing: cargo build --release first")
    files = corpus()
    common = ["--device", "cpu"] + (["--model", args.model] if args.model else [])
    load0 = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "feats"
        for name, inputs, pred_extra, emb_extra in [
            ("whole video", files["short"], [], []),
            ("2-s windows", files["long"], ["--timeline", "--window", "2"], ["--window", "2"]),
        ]:
            got = {"predict": [], "embed": []}
            for _ in range(args.repeats):
                # Alternate the two commands so slow spells of a shared machine hit both.
                got["predict"].append(run("predict", inputs, pred_extra, common, out))
                got["embed"].append(run("embed", inputs, emb_extra, common, out))
            rate = {}
            for cmd, runs in got.items():
                views = runs[0]["views"]
                times = [r["elapsed_s"] for r in runs]
                secs = min(times)
                rate[cmd] = (len(inputs) / secs, views / secs, views, max(times) / secs)
            rows.append((name, len(inputs), rate))
    load1 = os.getloadavg()

    lines = [
        "| workload | videos | views | predict videos/s | embed videos/s | predict views/s | embed views/s | embed / predict | slowest / fastest run (predict, embed) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, n, rate in rows:
        (pv, pw, views, ps), (ev, ew, _, es) = rate["predict"], rate["embed"]
        lines.append(f"| {name} | {n} | {views} | {pv:.2f} | {ev:.2f} | {pw:.1f} | {ew:.1f} | {ev / pv:.2f}x | {ps:.2f}x, {es:.2f}x |")
    table = "\n".join(lines)
    model = args.model or "the built-in motion model"
    short, long_ = CORPUS["short"], CORPUS["long"]
    section = "\n".join([
        BEGIN,
        "## Features vs labels (`vidcls embed` next to `vidcls predict`)",
        "",
        f"Written by `scripts/bench_embed.py --write` ({model}, fp32, CPU, default threads; best of "
        f"{args.repeats} runs each, the two commands alternating). Rates from each run's `--summary-json` "
        "(model loading excluded). Corpus (ffmpeg `testsrc2` with noise, H.264): "
        f"{short['count']} clips of {short['seconds']}-{short['seconds'] + (short['count'] - 1) * 0.5:g} s and "
        f"{long_['count']} videos of {long_['seconds']}-{long_['seconds'] + (long_['count'] - 1) * 0.5:g} s at {short['size']}.",
        f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs; {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}; "
        f"vidcls at commit {git_commit()}; load average (1 min) {load0[0]:.2f} at the start, {load1[0]:.2f} at the end.",
        "",
        table,
        "",
        "Both commands run the same pipeline (decode, preprocess, batch, forward) and differ in the "
        "graph method called (`forward` vs `features`, which skips the final linear layer) and in "
        "what is written (a JSON line vs a `.npy` file and an index line). The last column is the "
        "run-to-run spread of each command's time on this machine at the time: an embed / predict "
        "ratio within it is not a difference between the commands.",
        END,
    ])
    print(section)
    if args.write:
        text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
        if BEGIN in text and END in text:
            a, b = text.index(BEGIN), text.index(END) + len(END)
            text = text[:a] + section + text[b:]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        DOC.write_text(text)
        print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
