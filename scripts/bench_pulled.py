#!/usr/bin/env python3
"""A model installed by `vidcls models pull` beside the full TorchScript export of the same
architecture and weights (scripts/export_models.py --weights-file), side by side in one run:

  - model alone: the two .pt files in this Python's libtorch (the one vidcls links), one clip
    of the config's length and crop, fp32 and bf16 (module and input cast as vidcls does),
    clips/s from the median of interleaved timed passes after a warm-up;
  - end to end: `vidcls predict --precision P` on the sample clips and generated ones,
    videos/s from the median wall time of interleaved runs.

The weights are tests/python/pretrained_fixture.py's random-init ones (speed does not depend on
the values). Writes the table between the `bench_pulled.py` markers of docs/BENCHMARKS.md.

  scripts/bench_pulled.py [--archs r2plus1d_18 s3d] [--repeats 5] [--no-write]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "python"))
import pretrained_fixture as pf  # noqa: E402
from vbench.common import head_commit, loadavg, write_section  # noqa: E402

VIDCLS = ROOT / "target" / "release" / "vidcls"
DOC = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- bench_pulled.py: begin -->", "<!-- bench_pulled.py: end -->"


def sh(cmd: list, env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"bench_pulled: {' '.join(map(str, cmd))} failed:\n{r.stderr}")
    return r


def make_models(arch: str, work: Path) -> tuple[Path, Path]:
    """(pulled config, exported config) with the same weights."""
    weights = work / f"{arch}.pth"
    torch.save(pf.reference_model(arch).state_dict(), weights)
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    card = json.loads((ROOT / "configs" / f"{arch}.json").read_text())
    card["labels_file"] = str(ROOT / "configs" / card["labels_file"])
    card["pretrained"].update(url=f"http://127.0.0.1:9/{arch}.pth", sha256=sha, bytes=weights.stat().st_size)
    card_path = work / f"{arch}-card.json"
    card_path.write_text(json.dumps(card))
    env = dict(os.environ, VIDCLS_CACHE_DIR=str(work / "cache"))
    sh([VIDCLS, "models", "pull", card_path, "--offline", "--from", weights, "--no-precision-check"], env)
    out = work / "export"
    sh([sys.executable, ROOT / "scripts" / "export_models.py", "--weights-file", weights, "--out-dir", out, arch])
    return work / "cache" / "configs" / f"{arch}.json", out / "configs" / f"{arch}.json"


def model_file(config: Path) -> Path:
    cfg = json.loads(config.read_text())
    beside = config.parent / cfg["file"]
    return beside if beside.exists() else config.parent.parent / "models" / cfg["file"]


def model_alone(configs: dict[str, Path], precision: str, repeats: int) -> dict[str, float]:
    """clips/s of each model's graph alone, interleaved."""
    kind = torch.bfloat16 if precision == "bf16" else torch.float32
    mods, x = {}, None
    for name, cfg_path in configs.items():
        cfg = json.loads(cfg_path.read_text())
        t = min(cfg["frames"], 16) if cfg["variable_frames"] else cfg["frames"]
        m = torch.jit.load(str(model_file(cfg_path))).eval().to(kind)
        if (cfg.get("pretrained") or {}).get("layout") == "channels_last_3d" and name == "pulled":
            for p in m.parameters():  # what vidcls's Model::load does for such a card
                if p.dim() == 5:
                    p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
        mods[name] = m
        x = torch.randn(1, 3, t, cfg["crop"], cfg["crop"]).to(kind)
    times = {n: [] for n in mods}
    with torch.no_grad():
        for m in mods.values():
            m(x)
        for _ in range(repeats):
            for n, m in mods.items():
                t0 = time.perf_counter()
                m(x)
                times[n].append(time.perf_counter() - t0)
    return {n: 1.0 / statistics.median(ts) for n, ts in times.items()}


def end_to_end(configs: dict[str, Path], precision: str, videos: list[Path], repeats: int, env: dict) -> dict[str, float]:
    times = {n: [] for n in configs}
    for _ in range(repeats):
        for n, cfg in configs.items():
            t0 = time.perf_counter()
            sh([VIDCLS, "predict", "-m", cfg, "--precision", precision, "--frames", "16", "-f", "jsonl", "-q", *videos], env)
            times[n].append(time.perf_counter() - t0)
    return {n: len(videos) / statistics.median(ts) for n, ts in times.items()}


def generated_videos(work: Path) -> list[Path]:
    out = []
    for i, src in enumerate(["testsrc2=s=640x360:r=25", "mandelbrot=s=480x360:r=25"]):
        p = work / f"gen{i}.mp4"
        sh(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", src, "-t", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p", p])
        out.append(p)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", nargs="+", default=["r2plus1d_18", "s3d"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    load = loadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-pulled-") as tmp:
        work = Path(tmp)
        videos = sorted((ROOT / "models" / "samples").glob("*.mp4")) + generated_videos(work)
        env = dict(os.environ)
        for arch in args.archs:
            pulled, exported = make_models(arch, work)
            configs = {"pulled": pulled, "export": exported}
            for precision in ("fp32", "bf16"):
                alone = model_alone(configs, precision, args.repeats)
                e2e = end_to_end(configs, precision, videos, max(args.repeats // 2, 3), env)
                rows.append((arch, precision, alone, e2e))
                print(f"{arch} {precision}: alone {alone}, end to end {e2e}", file=sys.stderr)
    lines = [
        f"Pulled model vs full export, same weights: `scripts/bench_pulled.py` at {head_commit()}, "
        f"load {load[0]:.2f} at the start, {os.cpu_count()} cores; model alone: one clip (16 frames, "
        f"the config's crop) in this libtorch, median of {args.repeats} interleaved passes; end to end: "
        f"`vidcls predict --frames 16` on {len(videos)} videos (4 samples, 2 generated), median wall time.",
        "",
        "| model | precision | pulled, model alone (clips/s) | export, model alone | pulled / export | pulled, end to end (videos/s) | export, end to end | pulled / export |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arch, precision, a, e in rows:
        lines.append(
            f"| {arch} | {precision} | {a['pulled']:.2f} | {a['export']:.2f} | {a['pulled'] / a['export']:.2f}x "
            f"| {e['pulled']:.2f} | {e['export']:.2f} | {e['pulled'] / e['export']:.2f}x |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section(DOC, BEGIN, END, text, append=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
