"""Section `report-scale`: how `--format html` scales -> report-scale.md.

Labels N videos (the four shipped samples, hard-linked N/4 times each; N = 1000, 40 with --quick)
with the built-in model as JSON Lines and as an HTML page, on one decode thread, then renders the
page's first screen with scripts/screenshot_report.sh (headless Chromium).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from .common import CACHE, ROOT, SCRIPTS, log
from .page import SectionRun, run_ok

SIZE = "1200,1600"


def link_samples(videos: Path, n: int) -> int:
    samples = sorted((ROOT / "models" / "samples").glob("*.mp4"))
    videos.mkdir()
    for i in range(1, (n + len(samples) - 1) // len(samples) + 1):
        for f in samples:
            os.link(f, videos / f"{f.stem}_{i}.mp4")
    return len(list(videos.iterdir()))


def measure(vidcls: Path, fmt: str, videos: Path, work: Path) -> tuple[float, float, float]:
    """Seconds, peak RSS (MB) and output size (MB) of `vidcls predict -f FMT` on all of `videos`."""
    log(f"report-scale: vidcls predict -f {fmt}")
    out = work / f"out.{fmt}"
    # Exit status 1: some inputs failed, the rest labelled (as a big folder may have).
    r = run_ok([vidcls, "predict", "-q", "-j", "1", "-f", fmt, "-o", out, f"{videos}/"], ok_codes=(0, 1))
    return r.wall_s, (r.rss or 0) / 2**20, out.stat().st_size / 1e6


def render_seconds(page: Path, png: Path) -> float:
    log("report-scale: headless Chromium renders the page's first screen")
    t = time.perf_counter()
    run_ok([SCRIPTS / "screenshot_report.sh", page, png, SIZE])
    return time.perf_counter() - t


def run(s: SectionRun) -> Path:
    n = 40 if s.quick else 1000
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-scale-", dir=CACHE) as tmp:  # beside the samples' filesystem
        work = Path(tmp)
        count = link_samples(work / "videos", n)
        rows = {fmt: measure(s.vidcls, fmt, work / "videos", work) for fmt in ("jsonl", "html")}
        render = render_seconds(work / "out.html", work / "page.png")
    body = [f"The four shipped samples hard-linked to {count} inputs, labelled by the built-in model on one decode"
            " thread (`-j 1`).", "",
            "| videos | format | seconds | max RSS (MB) | output (MB) |", "|---|---|---|---|---|"]
    body += [f"| {count} | {fmt} | {secs:.2f} | {rss:.0f} | {mb:.1f} |" for fmt, (secs, rss, mb) in rows.items()]
    body += ["", f"Headless Chromium opens the {rows['html'][2]:.1f} MB page and renders its first screen "
             f"({SIZE.replace(',', 'x')} pixels) in {render:.1f} s."]
    return s.write("report-scale.md", "How the HTML report scales", body)
