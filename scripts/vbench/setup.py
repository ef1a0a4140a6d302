"""What gets measured and on what: the run sizes, the machine, the corpus, the motion set and
the model exports. Everything generated is cached under target/bench/ in a place named by a key
of everything that made it (parameters and the hash of the generating script), so a changed
generator or parameter makes a new entry instead of reusing a stale one."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .common import CACHE, ROOT, SCRIPTS, cache_key, log, sha256
from .results import Machine, MotionSet, MultiviewPlan, Plan

RESOLUTIONS = ["320x240", "640x360", "1280x720"]
KINETICS = ["r2plus1d_18", "s3d", "i3d"]
MODELS = ["motion"] + KINETICS
# Views per forward pass. The 64-frame 224x224 models run 2 at a time, so that a few videos make
# several batches (decoding overlaps the model after the first) and memory stays near 2-3 GB.
BATCH = {"motion": 8, "r2plus1d_18": 8, "s3d": 2, "i3d": 2}
PRECISIONS = ["fp32", "bf16"]

# The held-out motion set of the bf16-vs-fp32 section.
MOTION_SET_SEED = 7007


def make_plan(quick: bool) -> Plan:
    """Corpus and workload sizes. The full run is sized for about 20 minutes on 2 cores."""
    if quick:
        # A smoke run of every measurement, sized for the test suite: one Kinetics video (the
        # Kinetics model is most of the time; one video still runs each of its measurements).
        return Plan(short_per_res=1, short_seconds=5, ten_s=1, long=1, models=["motion", "r2plus1d_18"],
                    per_model={"motion": 3, "r2plus1d_18": 1, "s3d": 1, "i3d": 1},
                    multiview=MultiviewPlan(model="motion", videos=1, clips=2, crops=3),
                    model_budget_s=1.0, rss_counts=[20, 60], motion_set_per_class=2, long_repeats=1)
    return Plan(short_per_res=8, short_seconds=5, ten_s=2, long=2, models=list(MODELS),
                per_model={"motion": 24, "r2plus1d_18": 16, "s3d": 4, "i3d": 4},
                multiview=MultiviewPlan(model="r2plus1d_18", videos=2, clips=10, crops=3),
                model_budget_s=12.0, rss_counts=[50, 500], motion_set_per_class=25, long_repeats=5)


# ---------------------------------------------------------------------------------------------
# Machine.


def _run_out(cmd) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def git_state() -> tuple[str, bool]:
    return (_run_out(["git", "-C", str(ROOT), "rev-parse", "--short=7", "HEAD"]),
            bool(_run_out(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])))


def now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def machine() -> Machine:
    cpu, flags, mem = "unknown", "", None
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu)
        flags = next((ln for ln in info if ln.startswith("flags")), "")
    except OSError:
        pass
    try:
        for ln in Path("/proc/meminfo").read_text().splitlines():
            if ln.startswith("MemTotal"):
                mem = int(ln.split()[1]) * 1024
    except OSError:
        pass
    commit, dirty = git_state()
    return Machine(cpu=cpu, logical_cpus=os.cpu_count(), avx512_bf16=" avx512_bf16" in flags,
                   amx_bf16=" amx_bf16" in flags, memory_bytes=mem, kernel=platform.release(), date=now(),
                   git_commit=commit, git_dirty=dirty,
                   ffmpeg=(_run_out(["ffmpeg", "-version"]).splitlines() or [""])[0])


# ---------------------------------------------------------------------------------------------
# Corpus (ffmpeg CLI).


@dataclass
class Corpus:
    short: list[Path]
    ten_s: list[Path]
    long: list[Path]
    many: dict[int, list[Path]]
    seconds: float


def ffmpeg_video(d: Path, name: str, size: str, seconds: float, seed: int, noise: int, preset: str,
                 keyint: int) -> Path:
    """`d/NAME-KEY.mp4`, KEY from the whole encoding command and the ffmpeg version; made once."""
    src = f"testsrc2=size={size}:rate=30:duration={seconds}"
    vf = f"noise=alls={noise}:allf=t:all_seed={seed}" if noise else "null"
    args = ["-f", "lavfi", "-i", src, "-vf", vf, "-c:v", "libx264", "-preset", preset, "-crf", "23",
            "-g", str(keyint), "-pix_fmt", "yuv420p"]
    out = d / f"{name}-{cache_key(args, _ffmpeg_version())}.mp4"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    if seconds >= 60:
        log(f"making {out.relative_to(ROOT)} ({seconds / 60:.0f} minutes, {size}, x264 {preset})")
    tmp = out.with_name(f".{out.name}.tmp.mp4")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args, str(tmp)], check=True)
    tmp.rename(out)
    return out


_FFMPEG_VERSION: list[str] = []


def _ffmpeg_version() -> str:
    if not _FFMPEG_VERSION:
        _FFMPEG_VERSION.append((_run_out(["ffmpeg", "-version"]).splitlines() or [""])[0])
    return _FFMPEG_VERSION[0]


def make_corpus(p: Plan) -> Corpus:
    d = CACHE / "corpus"
    t = time.perf_counter()
    short = []
    for res in RESOLUTIONS:
        for i in range(p.short_per_res):
            # Sensor-like temporal noise of a few strengths, so that files differ and bitrates vary.
            short.append(ffmpeg_video(d / "short", f"{res}_{i:02d}", res, p.short_seconds, 1000 + i,
                                      (6, 14, 24)[i % 3], "veryfast", 60))
    # Short, long: the same source and encoder settings, only the length differs.
    ten = [ffmpeg_video(d / "long", f"10s_{i}", "320x240", 10, 2000 + i, 10, "ultrafast", 90)
           for i in range(p.ten_s)]
    long = [ffmpeg_video(d / "long", f"10min_{i}", "320x240", 600, 3000 + i, 10, "ultrafast", 90)
            for i in range(p.long)]
    # Many inputs for the memory test: hard links to the short low-resolution clips.
    small = [f for f in short if not f.name.startswith("1280")]
    many = {}
    for n in p.rss_counts:
        md = d / f"many{n}-{cache_key([f.name for f in small])}"
        md.mkdir(parents=True, exist_ok=True)
        files = []
        for i in range(n):
            f = md / f"v{i:04d}.mp4"
            if not f.exists():
                os.link(small[i % len(small)], f)
            files.append(f)
        many[n] = files
    return Corpus(short, ten, long, many, round(time.perf_counter() - t, 1))


def by_resolution(files: list[Path], n: int) -> list[Path]:
    """n files taken round-robin over the resolutions (so every resolution is represented)."""
    groups = [[f for f in files if f.name.startswith(r)] for r in RESOLUTIONS]
    out = []
    i = 0
    while len(out) < n and any(i < len(g) for g in groups):
        for g in groups:
            if i < len(g) and len(out) < n:
                out.append(g[i])
        i += 1
    return out


def make_motion_set(per_class: int) -> tuple[Path, MotionSet]:
    """The held-out-style motion set, in a folder keyed by seed, size, style and the generator's
    sha256 (with that description beside the manifest)."""
    script = SCRIPTS / "motion_dataset.py"
    what = MotionSet(seed=MOTION_SET_SEED, n_per_class=per_class, style="holdout",
                     generator_sha256=sha256(script))
    key = cache_key(what.seed, what.n_per_class, what.style, what.generator_sha256)
    out = CACHE / f"motion-set-{per_class}-{key}"
    if (out / "manifest.csv").exists() and (out / "made-by.json").exists():
        return out, what
    tmp = CACHE / f".motion-set-{per_class}-{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"making the motion set ({per_class} clips per class, held-out style, seed {what.seed})")
    subprocess.run([sys.executable, str(script), "--out", str(tmp), "--n-per-class", str(per_class),
                    "--seed", str(what.seed), "--holdout-style", "--jobs", "2"], check=True,
                   stdout=subprocess.DEVNULL)
    (tmp / "made-by.json").write_text(json.dumps(what.__dict__, indent=1) + "\n")
    tmp.rename(out)
    return out, what


# ---------------------------------------------------------------------------------------------
# Models.


# What makes the Kinetics exports (their cache key hashes these).
EXPORT_SCRIPTS = ["export_models.py", "i3d.py", "precision_record.py"]


def weights_of(config: Path) -> Path:
    cfg = json.loads(config.read_text())
    beside = config.parent / cfg["file"]
    return beside if beside.exists() else config.parent.parent / "models" / cfg["file"]


def model_configs(names: list[str]) -> dict[str, Path]:
    """Config path per model. The Kinetics architectures are random-init exports (seed 0) cached in
    a folder keyed by the export scripts' hashes and the torch version; the motion model is a
    snapshot of the repository's configs/motion.json and its weights."""
    import torch

    key = cache_key("random-init", 0, *(sha256(SCRIPTS / f) for f in EXPORT_SCRIPTS), torch.__version__)
    out_dir = CACHE / f"models-{key}"
    (out_dir / "configs").mkdir(parents=True, exist_ok=True)
    (out_dir / "models").mkdir(parents=True, exist_ok=True)
    cfgs = {}
    missing = []
    for n in names:
        if n == "motion":
            # A snapshot, so that a model replaced while the benchmark runs does not mix two models.
            src = ROOT / "configs" / "motion.json"
            cfg = json.loads(src.read_text())
            shutil.copy(weights_of(src), out_dir / "models" / cfg["file"])
            cfgs[n] = out_dir / "configs" / "motion.json"
            cfgs[n].write_text(json.dumps(cfg, indent=1) + "\n")
            continue
        c = out_dir / "configs" / f"{n}.json"
        if not (c.exists() and (out_dir / "models" / f"{n}.pt").exists()):
            missing.append(n)
        cfgs[n] = c
    if missing:
        log(f"exporting {', '.join(missing)} (random init, seed 0) to {out_dir.relative_to(ROOT)}")
        subprocess.run([sys.executable, str(SCRIPTS / "export_models.py"), "--random-init", "--seed", "0",
                        "--out-dir", str(out_dir), *missing], check=True, stdout=subprocess.DEVNULL)
    labels = out_dir / "configs" / "kinetics400.txt"
    if any(n != "motion" for n in names) and not labels.exists():
        shutil.copy(ROOT / "configs" / "kinetics400.txt", labels)
    return cfgs
