"""The four tools measured: vidcls, the Python pipeline, the model alone and ffmpeg. Each runs as
a child process under /usr/bin/time and comes back as a typed result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .common import child_env, jsonl, mean, run_timed, short_error
from .results import FfmpegSummary, ModelRun, PythonRun, Throughput, VidclsRun, from_json
from .setup import weights_of


def stage_means(ok: list[dict]) -> dict:
    t = [x["timings"] for x in ok]
    return {"decode_ms": mean([x["decode_ms"] for x in t]),
            "preprocess_ms": mean([x["preprocess_ms"] for x in t]),
            "model_ms": mean([x["model_ms"] for x in t])}


@dataclass
class RunSummary:
    """What `vidcls predict --summary-json` prints as the last line of stderr."""
    inputs: int
    classified: int
    failed: int
    already_done: int
    records: int
    views: int
    elapsed_s: float


def run_summary(stderr: str) -> RunSummary | None:
    """The run summary from vidcls's stderr (None when the run ended without one)."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    try:
        return from_json(RunSummary, json.loads(lines[-1]))
    except (IndexError, json.JSONDecodeError, ValueError):
        return None


def run_vidcls(vidcls: Path, config: Path, files: list[Path], precision: str | None, batch: int | None,
               clips: int = 1, crops: int = 1, all_scores: bool = False, stdin_list: bool = False,
               threads: int | None = None, extra: list[str] | None = None) -> VidclsRun:
    """vidcls on `files`; precision and batch None leave those flags out (vidcls's defaults, and the
    run's `ran` says what they chose)."""
    cmd = [vidcls, "predict", "--model", config, "-f", "jsonl", "-k", "1", "--clips", str(clips),
           "--crops", str(crops), "--summary-json"]
    if precision is not None:
        cmd += ["--precision", precision]
    if batch is not None:
        cmd += ["--batch-size", str(batch)]
    if threads:
        cmd += ["--threads", str(threads)]
    if all_scores:
        cmd.append("--all-scores")
    cmd += extra or []
    if stdin_list:
        r = run_timed(cmd + ["-"], stdin="".join(f"{f}\n" for f in files))
    else:
        r = run_timed(cmd + list(files))
    recs = jsonl(r.stdout)
    ok = [x for x in recs if "top_k" in x]
    res = VidclsRun(tool="vidcls", precision=precision or "default", batch_size=batch or 0, clips=clips,
                    crops=crops, inputs=len(files), ok=len(ok), failed=len(recs) - len(ok), exit=r.rc,
                    wall_s=round(r.wall_s, 3), peak_rss_bytes=r.rss, cpu_s=r.cpu_s)
    if r.rc == 2 or not ok:
        res.error = short_error(r.stderr)
        return res
    res.ran = ok[0].get("ran")
    summary = run_summary(r.stderr)
    if summary and summary.elapsed_s > 0:
        res.pipeline_s = summary.elapsed_s
        res.videos_per_s = summary.classified / summary.elapsed_s
        res.views_per_s = summary.views / summary.elapsed_s
        res.clips_per_s = res.videos_per_s * clips
    res.startup_s = round(r.wall_s - (res.pipeline_s or 0.0), 3)
    for k, v in stage_means(ok).items():
        setattr(res, k, v)
    res.top1 = {x["path"]: x["top_k"][0]["index"] for x in ok}
    res.top1_list = [x["top_k"][0]["index"] for x in ok]
    if all_scores:
        res.scores_list = [x.get("scores") for x in ok]
    res.per_video_ms = [round(sum(x["timings"].values()), 3) for x in ok]
    res.decode_pre_ms = [round(x["timings"]["decode_ms"] + x["timings"]["preprocess_ms"], 3) for x in ok]
    res.paths = [x["path"] for x in ok]
    return res


def run_python(config: Path, files: list[Path], precision: str, batch: int, clips: int = 1,
               crops: int = 1, seek: bool = True) -> PythonRun:
    """scripts/reference_predict.py through vbench.python_pipeline (which adds bf16, and with
    `seek` decodes only what the clips show, as vidcls does; without it, every frame)."""
    cmd = [sys.executable, "-m", "vbench.python_pipeline", "--precision", precision,
           *(["--seek"] if seek else []), "--", "--model", config,
           "--models-dir", config.parent.parent / "models", "--clips", str(clips), "--crops", str(crops),
           "--batch-size", str(batch), "--top-k", "1", *files]
    r = run_timed(cmd, env=child_env())
    recs = jsonl(r.stdout)
    ok = [x for x in recs if "top_k" in x]
    res = PythonRun(tool="python" if seek else "python-full", precision=precision, batch_size=batch, clips=clips, crops=crops,
                    inputs=len(files), ok=len(ok), failed=len(recs) - len(ok), exit=r.rc,
                    wall_s=round(r.wall_s, 3), peak_rss_bytes=r.rss)
    if not ok:
        errs = [x.get("error") for x in recs if "error" in x]
        res.error = (errs[0] if errs else short_error(r.stderr))[:300]
        return res
    loop = sum(sum(x["timings"].values()) for x in ok) / 1e3
    res.loop_s = round(loop, 3)
    res.videos_per_s = len(ok) / loop
    res.views_per_s = len(ok) * clips * crops / loop
    res.clips_per_s = len(ok) * clips / loop
    res.startup_s = round(r.wall_s - loop, 3)
    for k, v in stage_means(ok).items():
        setattr(res, k, v)
    res.top1 = {x["path"]: x["top_k"][0]["index"] for x in ok}
    return res


def run_model_alone(config: Path, precision: str, batches: list[int], budget_s: float) -> ModelRun:
    """The TorchScript model alone on random input, through vbench.model_alone."""
    cfg = json.loads(config.read_text())
    cmd = [sys.executable, "-m", "vbench.model_alone", "--weights", weights_of(config),
           "--precision", precision, "--batches", ",".join(map(str, batches)), "--frames", str(cfg["frames"]),
           "--crop", str(cfg["crop"]), "--budget-s", str(budget_s), "--threads", str(os.cpu_count() or 1)]
    r = run_timed(cmd, env=child_env())
    res = ModelRun(tool="model", precision=precision, peak_rss_bytes=r.rss, wall_s=round(r.wall_s, 3),
                   batch_sizes=sorted(set(batches)))
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        res.error = short_error(r.stderr)
        return res
    autocast = out.pop("autocast", None)
    for k, v in out.items():
        setattr(res, k, v)
    if autocast is not None:
        res.autocast = Throughput(**autocast)
    return res


def ffmpeg_decode_times(files: list[Path]) -> dict[str, float]:
    out = {}
    for f in files:
        t = time.perf_counter()
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(f), "-f", "null", "-"], check=True)
        out[str(f)] = time.perf_counter() - t
    return out


def ffmpeg_summary(times: dict[str, float], files: list[Path], clips: int = 1) -> FfmpegSummary:
    total = sum(times[str(f)] for f in files)
    return FfmpegSummary(tool="ffmpeg", inputs=len(files), seconds=round(total, 3),
                         videos_per_s=len(files) / total if total else None,
                         clips_per_s=len(files) * clips / total if total else None)


def batches_of(n_views: int, batch: int) -> list[int]:
    """The batch sizes vidcls runs: exactly `batch` views each, the last one excepted."""
    return [min(batch, n_views - s) for s in range(0, n_views, batch)]
