"""The defaults section (issue 12): `vidcls predict -m MODEL` with no speed flags next to the
Python pipeline in fp32 (the way people write it), the model alone at the precision and batch
size the defaults chose, and decoding alone (vidcls with a stand-in model that only averages its
input), all in one run; from those, how well the two stages share the cores."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import CACHE, ROOT, cache_key, child_env, log, ratio, sha256
from .results import DecodeAlone, DefaultsBench, MotionDefaults
from .runners import run_model_alone, run_python, run_vidcls
from .sections import agreement_by_path, stage_summary


# The defaults with one choice undone, to show what it is worth: one decode worker per two cores
# (the default before) instead of one per core.
LEVERS = [["--threads", str(max(1, (os.cpu_count() or 1) // 2))]]


def stand_in(config: Path) -> Path:
    """A copy of `config` (same sampling and preprocessing, so the same decoding work) whose model
    only averages its input; cached under a key of the config, this file and the torch version."""
    import torch

    cfg = json.loads(config.read_text())
    made_by = [sha256(Path(__file__).with_name(f)) for f in ("defaults.py", "stand_in.py")]
    out = CACHE / f"stand-in-{cache_key(cfg, made_by, torch.__version__)}"
    path = out / "configs" / f"{cfg['name']}.json"
    if path.exists():
        return path
    tmp = Path(tempfile.mkdtemp(dir=CACHE, prefix=".stand-in-"))
    (tmp / "configs").mkdir()
    (tmp / "models").mkdir()
    weights = tmp / "models" / "stand-in.pt"
    if cfg.get("labels_file"):
        shutil.copy(config.parent / cfg["labels_file"], tmp / "configs" / cfg["labels_file"])
        labels = [ln for ln in (config.parent / cfg["labels_file"]).read_text().splitlines() if ln.strip()]
    else:
        labels = cfg["labels"]
    subprocess.run([sys.executable, "-m", "vbench.stand_in", str(weights), str(len(labels))], check=True,
                   env=child_env())
    cfg.update(file="stand-in.pt", weights={"source": "vbench stand-in", "sha256": sha256(weights)})
    for k in ("parameters", "reduced_precision"):
        cfg.pop(k, None)
    (tmp / "configs" / path.name).write_text(json.dumps(cfg, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return path


def decode_alone(vidcls: Path, config: Path, files: list[Path]) -> DecodeAlone:
    """CPU seconds of decoding and preprocessing `files` with vidcls's own pipeline: the stand-in
    model's run minus the same command on no input (start-up: libtorch, the model, the threads)."""
    cfg = stand_in(config)
    v = run_vidcls(vidcls, cfg, files, None, None)
    empty = Path(tempfile.mkdtemp(dir=CACHE, prefix=".empty-"))
    try:
        e = run_vidcls(vidcls, cfg, [empty], None, None)
    finally:
        empty.rmdir()
    out = DecodeAlone(videos=v.ok, cpu_s=v.cpu_s, startup_cpu_s=e.cpu_s, pipeline_s=v.pipeline_s, error=v.error)
    if v.cpu_s is not None and e.cpu_s is not None and v.ok:
        out.cpu_ms_per_video = (v.cpu_s - e.cpu_s) * 1e3 / v.ok
    return out


def bench_defaults(name: str, config: Path, files: list[Path], vidcls: Path, budget_s: float) -> DefaultsBench:
    cores = os.cpu_count() or 1
    log(f"defaults {name}: python pipeline, fp32, seeking and decoding all, on {len(files)} videos")
    py = run_python(config, files, "fp32", 1)
    full = run_python(config, files, "fp32", 1, seek=False)
    log(f"defaults {name}: vidcls with no speed flags")
    v = run_vidcls(vidcls, config, files, None, None)
    ran = v.ran or {}
    prec, batch = ran.get("precision", "fp32"), int(ran.get("batch_size", 1))
    log(f"defaults {name}: model alone ({prec}, batch {batch}), then decoding alone")
    n = len(files)
    mo = run_model_alone(config, prec, [batch] * max(1, n // batch) + ([n % batch] if n % batch else []), budget_s)
    dec = decode_alone(vidcls, config, files)
    levers = {}
    for flags in LEVERS:
        log(f"defaults {name}: vidcls {' '.join(flags)}")
        levers[" ".join(flags)] = stage_summary(run_vidcls(vidcls, config, files, None, None, extra=flags))
    cfg = json.loads(config.read_text())
    res = DefaultsBench(model=name, videos=n, cores=cores, vidcls=v, python_fp32=py, model_alone=mo, decode=dec,
                        vs_python=ratio(v.videos_per_s, py.videos_per_s),
                        top1_vs_python_fp32=agreement_by_path(v.top1, py.top1),
                        python_full_fp32=full, vs_python_full=ratio(v.videos_per_s, full.videos_per_s),
                        export_record=cfg.get("reduced_precision"), levers=levers)
    if mo.cpu_seconds is not None and mo.views:
        res.model_cpu_ms_per_video = mo.cpu_seconds * 1e3 / mo.views
    if v.pipeline_s and v.ok:
        res.e2e_ms_per_video = v.pipeline_s * 1e3 / v.ok
    if res.model_cpu_ms_per_video is not None and dec.cpu_ms_per_video is not None and res.e2e_ms_per_video:
        res.bound_ms_per_video = (res.model_cpu_ms_per_video + dec.cpu_ms_per_video) / cores
        res.efficiency = res.e2e_ms_per_video / res.bound_ms_per_video
    return res


def motion_defaults(vidcls: Path, config: Path, motion_set: Path) -> MotionDefaults:
    """The default motion model's defaults against `--precision fp32` on the motion benchmark."""
    with open(motion_set / "manifest.csv", newline="") as fh:
        files = [motion_set / r["path"] for r in csv.DictReader(fh)]
    log(f"defaults motion: vidcls defaults and --precision fp32 on the motion set ({len(files)} clips)")
    d = run_vidcls(vidcls, config, files, None, None)
    f = run_vidcls(vidcls, config, files, "fp32", None)
    return MotionDefaults(set=str(motion_set.relative_to(ROOT)), videos=len(files), ran=d.ran,
                          default_videos_per_s=d.videos_per_s, fp32_videos_per_s=f.videos_per_s,
                          top1_agreement=agreement_by_path(d.top1, f.top1), error=d.error or f.error)
