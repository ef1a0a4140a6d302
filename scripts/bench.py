#!/usr/bin/env python3
"""Benchmark of `vidcls predict` against the Python pipeline users write and the compute bound.

In one run on one machine, for r2plus1d_18, s3d and i3d (random-init exports) and the default
motion model, at 1 clip per video, in fp32 and in the fast CPU path (`--precision bf16`):

  1. vidcls    `vidcls predict -f jsonl` on a generated corpus: videos/s and clips/s from its
               summary line, time per stage from the records' `timings`, peak RSS (/usr/bin/time);
  2. python    scripts/reference_predict.py (PyAV decode of the whole file, torchvision-style
               transforms, the same TorchScript), one video after another, on the same files and
               views; bf16 the way vidcls does it (module and input in bfloat16, output back to
               float), applied around that script without changing it;
  3. model     the TorchScript model alone on random tensors of the same shape, precision and
               batch sizes as the vidcls run (the compute bound; 2 torch threads, no_grad);
  4. ffmpeg    `ffmpeg -i FILE -f null -` of the same files (decoding alone, every frame).

Then: r2plus1d_18 at 10 clips x 3 crops on a few videos; one centre clip from a 10-minute video
vs from a 10-second video; peak RSS labelling 500 short videos vs 50 with the default model;
bf16 vs fp32 top-1 agreement of the motion model on the corpus and on a generated motion set
(scripts/motion_dataset.py). Writes docs/BENCHMARKS.md and docs/benchmarks.json.

Videos and model exports are cached under target/bench/ and reused. `--quick` is a smoke run
(a few minutes) that writes under target/bench/quick/ unless --out-dir is given.

    scripts/bench.sh            # builds vidcls, then the full run (about 20 minutes on 2 cores)
    scripts/bench.sh --quick
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "target" / "bench"
TIME = "/usr/bin/time"
GB = 1024**3


# ---------------------------------------------------------------------------------------------
# What gets measured: the two sizes of run.


def plan(quick: bool) -> dict:
    """Corpus and workload sizes. The full run is sized for about 20 minutes on 2 cores."""
    if quick:
        return {
            "short_per_res": 1,
            "short_seconds": 5,
            "ten_s": 1,
            "long": 1,
            "models": ["motion", "r2plus1d_18"],
            "per_model": {"motion": 3, "r2plus1d_18": 3, "s3d": 1, "i3d": 1},
            "multiview": {"model": "motion", "videos": 2, "clips": 2, "crops": 3},
            "model_budget_s": 4.0,
            "rss_counts": (20, 60),
            "motion_set_per_class": 2,
            "long_repeats": 2,
        }
    return {
        "short_per_res": 8,
        "short_seconds": 5,
        "ten_s": 2,
        "long": 2,
        "models": MODELS,
        "per_model": {"motion": 24, "r2plus1d_18": 16, "s3d": 4, "i3d": 4},
        "multiview": {"model": "r2plus1d_18", "videos": 2, "clips": 10, "crops": 3},
        "model_budget_s": 12.0,
        "rss_counts": (50, 500),
        "motion_set_per_class": 25,
        "long_repeats": 5,
    }


RESOLUTIONS = ["320x240", "640x360", "1280x720"]
KINETICS = ["r2plus1d_18", "s3d", "i3d"]
MODELS = ["motion"] + KINETICS
# Views per forward pass. The 64-frame 224x224 models run 2 at a time, so that a few videos make
# several batches (decoding overlaps the model after the first) and memory stays near 2-3 GB.
BATCH = {"motion": 8, "r2plus1d_18": 8, "s3d": 2, "i3d": 2}
PRECISIONS = ["fp32", "bf16"]


# ---------------------------------------------------------------------------------------------
# Small helpers.

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f} s] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def run_timed(cmd: list[str], stdin: str | None = None, env: dict | None = None) -> dict:
    """Runs cmd under /usr/bin/time: stdout, stderr, exit status, wall seconds, peak RSS (bytes)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss", delete=False) as f:
        rss_file = f.name
    full = [TIME, "-f", "%M", "-o", rss_file] + [str(c) for c in cmd]
    t = time.perf_counter()
    p = subprocess.run(full, input=stdin, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    try:
        lines = [ln for ln in Path(rss_file).read_text().splitlines() if ln.strip()]
        rss = int(lines[-1]) * 1024
    except (OSError, ValueError, IndexError):
        rss = None
    finally:
        Path(rss_file).unlink(missing_ok=True)
    return {"stdout": p.stdout, "stderr": p.stderr, "rc": p.returncode, "wall_s": wall, "rss": rss}


def short_error(stderr: str) -> str:
    """The line of an error output that says what went wrong."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        m = re.search(r"(RuntimeError|NotImplementedError|Error): (.*)", ln)
        if m and "Traceback" not in ln:
            return m.group(0)[:300]
    for ln in lines:
        if ln.startswith("vidcls:"):
            return ln[:300]
    return (lines[-1] if lines else "no output")[:300]


def jsonl(text: str) -> list[dict]:
    out = []
    for ln in text.splitlines():
        ln = ln.strip()
        if ln.startswith("{"):
            try:
                out.append(json.loads(ln))
            except json.JSONDecodeError:
                pass
    return out


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def ratio(a, b):
    return a / b if a is not None and b else None


# ---------------------------------------------------------------------------------------------
# Machine.


def machine() -> dict:
    cpu = "unknown"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        flags = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags"))
    except (OSError, StopIteration):
        pass
    mem = None
    try:
        for ln in Path("/proc/meminfo").read_text().splitlines():
            if ln.startswith("MemTotal"):
                mem = int(ln.split()[1]) * 1024
    except OSError:
        pass

    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "avx512_bf16": " avx512_bf16" in flags,
        "amx_bf16": " amx_bf16" in flags,
        "memory_bytes": mem,
        "kernel": platform.release(),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git_commit": out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(out(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])),
        "ffmpeg": (out(["ffmpeg", "-version"]).splitlines() or [""])[0],
    }


# ---------------------------------------------------------------------------------------------
# Corpus (ffmpeg CLI), cached.


def ffmpeg_make(out: Path, size: str, seconds: float, seed: int, noise: int, preset: str, keyint: int) -> None:
    if out.exists():
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.mp4")
    src = f"testsrc2=size={size}:rate=30:duration={seconds}"
    vf = f"noise=alls={noise}:allf=t:all_seed={seed}" if noise else "null"
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", src, "-vf", vf,
           "-c:v", "libx264", "-preset", preset, "-crf", "23", "-g", str(keyint), "-pix_fmt", "yuv420p",
           str(tmp)]
    subprocess.run(cmd, check=True)
    tmp.rename(out)


def make_corpus(p: dict) -> dict:
    d = CACHE / "corpus"
    t = time.perf_counter()
    short = []
    for res in RESOLUTIONS:
        for i in range(p["short_per_res"]):
            f = d / "short" / f"{res}_{i:02d}.mp4"
            # Sensor-like temporal noise of a few strengths, so that files differ and bitrates vary.
            ffmpeg_make(f, res, p["short_seconds"], 1000 + i, (6, 14, 24)[i % 3], "veryfast", 60)
            short.append(f)
    # Short, long: the same source and encoder settings, only the length differs.
    ten = [d / "long" / f"10s_{i}.mp4" for i in range(p["ten_s"])]
    long = [d / "long" / f"10min_{i}.mp4" for i in range(p["long"])]
    for i, f in enumerate(ten):
        ffmpeg_make(f, "320x240", 10, 2000 + i, 10, "ultrafast", 90)
    for i, f in enumerate(long):
        if not f.exists():
            log(f"making {f.relative_to(ROOT)} (10 minutes, 320x240, x264 ultrafast)")
        ffmpeg_make(f, "320x240", 600, 3000 + i, 10, "ultrafast", 90)
    # Many inputs for the memory test: hard links to the short low-resolution clips.
    small = [f for f in short if not f.name.startswith("1280")]
    many = {}
    for n in p["rss_counts"]:
        md = d / f"many{n}"
        md.mkdir(parents=True, exist_ok=True)
        files = []
        for i in range(n):
            f = md / f"v{i:04d}.mp4"
            if not f.exists():
                os.link(small[i % len(small)], f)
            files.append(f)
        many[n] = files
    return {"short": short, "ten_s": ten, "long": long, "many": many,
            "seconds": round(time.perf_counter() - t, 1)}


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


def make_motion_set(per_class: int) -> Path | None:
    script = ROOT / "scripts" / "motion_dataset.py"
    if not script.exists():
        return None
    out = CACHE / f"motion-set-{per_class}"
    if (out / "manifest.csv").exists():
        return out
    tmp = CACHE / f".motion-set-{per_class}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"making the motion set ({per_class} clips per class, held-out style)")
    subprocess.run([sys.executable, str(script), "--out", str(tmp), "--n-per-class", str(per_class),
                    "--seed", "7007", "--holdout-style", "--jobs", "2"], check=True,
                   stdout=subprocess.DEVNULL)
    tmp.rename(out)
    return out


# ---------------------------------------------------------------------------------------------
# Models.


def model_configs(names: list[str]) -> dict[str, Path]:
    """Config path per model. The Kinetics architectures are random-init exports (seed 0) cached
    under target/bench/models; the motion model is the repository's configs/motion.json."""
    out_dir = CACHE / "models"
    cfgs = {}
    missing = []
    for n in names:
        if n == "motion":
            # A snapshot, so that a model replaced while the benchmark runs does not mix two models.
            (out_dir / "configs").mkdir(parents=True, exist_ok=True)
            (out_dir / "models").mkdir(parents=True, exist_ok=True)
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
        subprocess.run([sys.executable, str(ROOT / "scripts" / "export_models.py"), "--random-init",
                        "--seed", "0", "--out-dir", str(out_dir), *missing], check=True,
                       stdout=subprocess.DEVNULL)
    labels = out_dir / "configs" / "kinetics400.txt"
    if any(n != "motion" for n in names) and not labels.exists():
        shutil.copy(ROOT / "configs" / "kinetics400.txt", labels)
    return cfgs


def weights_of(config: Path) -> Path:
    cfg = json.loads(config.read_text())
    beside = config.parent / cfg["file"]
    return beside if beside.exists() else config.parent.parent / "models" / cfg["file"]


# ---------------------------------------------------------------------------------------------
# The four measurements.


def run_vidcls(vidcls: Path, config: Path, files: list[Path], precision: str, batch: int,
               clips: int = 1, crops: int = 1, all_scores: bool = False, stdin_list: bool = False,
               threads: int | None = None) -> dict:
    cmd = [vidcls, "predict", "--model", config, "-f", "jsonl", "-k", "1", "--precision", precision,
           "--batch-size", str(batch), "--clips", str(clips), "--crops", str(crops)]
    if threads:
        cmd += ["--threads", str(threads)]
    if all_scores:
        cmd.append("--all-scores")
    if stdin_list:
        r = run_timed(cmd + ["-"], stdin="".join(f"{f}\n" for f in files))
    else:
        r = run_timed(cmd + list(files))
    recs = jsonl(r["stdout"])
    ok = [x for x in recs if "top_k" in x]
    res = {"tool": "vidcls", "precision": precision, "batch_size": batch, "clips": clips, "crops": crops,
           "inputs": len(files), "ok": len(ok), "failed": len(recs) - len(ok), "exit": r["rc"],
           "wall_s": round(r["wall_s"], 3), "peak_rss_bytes": r["rss"]}
    m = re.search(r"in ([\d.]+) s \(([\d.]+) videos/s, ([\d.]+) views/s\)", r["stderr"])
    if r["rc"] == 2 or not ok:
        res["error"] = short_error(r["stderr"])
        return res
    if m:
        secs = float(m.group(1))
        res["pipeline_s"] = secs
        # The summary prints one decimal; recompute the rates from the rounded time only as a
        # fallback and keep the printed rates (from the exact time).
        res["videos_per_s"] = float(m.group(2))
        res["views_per_s"] = float(m.group(3))
        res["clips_per_s"] = res["videos_per_s"] * clips
    res["startup_s"] = round(r["wall_s"] - res.get("pipeline_s", 0.0), 3)
    res.update(stage_means(ok))
    res["top1"] = {x["path"]: x["top_k"][0]["index"] for x in ok}
    res["top1_list"] = [x["top_k"][0]["index"] for x in ok]
    if all_scores:
        res["scores_list"] = [x.get("scores") for x in ok]
    res["per_video_ms"] = [round(sum(x["timings"].values()), 3) for x in ok]
    res["decode_pre_ms"] = [round(x["timings"]["decode_ms"] + x["timings"]["preprocess_ms"], 3) for x in ok]
    res["paths"] = [x["path"] for x in ok]
    return res


def stage_means(ok: list[dict]) -> dict:
    t = [x["timings"] for x in ok]
    return {"decode_ms": mean([x["decode_ms"] for x in t]),
            "preprocess_ms": mean([x["preprocess_ms"] for x in t]),
            "model_ms": mean([x["model_ms"] for x in t])}


def run_python(config: Path, files: list[Path], precision: str, batch: int, clips: int = 1, crops: int = 1) -> dict:
    cmd = [sys.executable, Path(__file__).resolve(), "_python_pipeline", precision, "--model", config,
           "--models-dir", config.parent.parent / "models", "--clips", str(clips), "--crops", str(crops),
           "--batch-size", str(batch), "--top-k", "1", *files]
    r = run_timed(cmd)
    recs = jsonl(r["stdout"])
    ok = [x for x in recs if "top_k" in x]
    res = {"tool": "python", "precision": precision, "batch_size": batch, "clips": clips, "crops": crops,
           "inputs": len(files), "ok": len(ok), "failed": len(recs) - len(ok), "exit": r["rc"],
           "wall_s": round(r["wall_s"], 3), "peak_rss_bytes": r["rss"]}
    if not ok:
        errs = [x.get("error") for x in recs if "error" in x]
        res["error"] = (errs[0] if errs else short_error(r["stderr"]))[:300]
        return res
    loop = sum(sum(x["timings"].values()) for x in ok) / 1e3
    res["loop_s"] = round(loop, 3)
    res["videos_per_s"] = len(ok) / loop
    res["views_per_s"] = len(ok) * clips * crops / loop
    res["clips_per_s"] = len(ok) * clips / loop
    res["startup_s"] = round(r["wall_s"] - loop, 3)
    res.update(stage_means(ok))
    res["top1"] = {x["path"]: x["top_k"][0]["index"] for x in ok}
    return res


def run_model_alone(config: Path, precision: str, batches: list[int], budget_s: float) -> dict:
    cfg = json.loads(config.read_text())
    spec = {"weights": str(weights_of(config)), "precision": precision, "batches": batches,
            "frames": cfg["frames"], "crop": cfg["crop"], "budget_s": budget_s,
            "threads": os.cpu_count() or 1}
    r = run_timed([sys.executable, Path(__file__).resolve(), "_model_alone", json.dumps(spec)])
    try:
        res = json.loads(r["stdout"].strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        res = {"error": short_error(r["stderr"])}
    res.update({"tool": "model", "precision": precision, "peak_rss_bytes": r["rss"],
                "wall_s": round(r["wall_s"], 3), "batch_sizes": sorted(set(batches))})
    return res


def ffmpeg_decode_times(files: list[Path]) -> dict[str, float]:
    out = {}
    for f in files:
        t = time.perf_counter()
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(f), "-f", "null", "-"], check=True)
        out[str(f)] = time.perf_counter() - t
    return out


def ffmpeg_summary(times: dict[str, float], files: list[Path], clips: int = 1) -> dict:
    total = sum(times[str(f)] for f in files)
    return {"tool": "ffmpeg", "inputs": len(files), "seconds": round(total, 3),
            "videos_per_s": len(files) / total if total else None,
            "clips_per_s": len(files) * clips / total if total else None}


def batches_of(n_views: int, batch: int) -> list[int]:
    """The batch sizes vidcls runs: exactly `batch` views each, the last one excepted."""
    return [min(batch, n_views - s) for s in range(0, n_views, batch)]


# ---------------------------------------------------------------------------------------------
# Child processes (run with the same Python): the model alone, and the Python pipeline in bf16.


def child_model_alone(spec_json: str) -> int:
    import torch

    spec = json.loads(spec_json)
    torch.set_num_threads(int(spec["threads"]))
    # vidcls turns the profiling executor off (the first calls would run another graph).
    torch._C._jit_set_profiling_mode(False)
    frames, crop = int(spec["frames"]), int(spec["crop"])
    batches = spec["batches"]
    out = {"threads": torch.get_num_threads(), "torch": torch.__version__, "frames": frames, "crop": crop}

    def measure(module, kind, autocast: bool) -> dict:
        def fwd(x):
            with torch.no_grad():
                if autocast:
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        return module(x).float()
                return module(x.to(kind)).float()

        fwd(torch.randn(batches[0], 3, frames, crop, crop))  # warm-up (vidcls probes once at load)
        done, views, per_batch = 0, 0, []
        start = time.perf_counter()
        for b in batches:
            x = torch.randn(b, 3, frames, crop, crop)
            t = time.perf_counter()
            fwd(x)
            per_batch.append(round((time.perf_counter() - t) * 1e3, 2))
            done += 1
            views += b
            if time.perf_counter() - start > spec["budget_s"] and done >= 2:
                break
        secs = sum(per_batch) / 1e3
        return {"views": views, "batches_run": done, "batches_planned": len(batches),
                "seconds": round(secs, 3), "views_per_s": views / secs, "batch_ms": per_batch}

    module = torch.jit.load(spec["weights"], map_location="cpu").eval()
    if spec["precision"] == "fp32":
        out.update(measure(module, torch.float32, False))
    else:
        try:
            out.update(measure(module.to(torch.bfloat16), torch.bfloat16, False))
        except RuntimeError as e:
            out["error"] = str(e).strip().splitlines()[-1][:300] if str(e).strip() else repr(e)
            # What a bf16 path that keeps unsupported ops in float32 would give.
            module = torch.jit.load(spec["weights"], map_location="cpu").eval()
            try:
                out["autocast"] = measure(module, torch.float32, True)
            except RuntimeError as e2:
                out["autocast"] = {"error": str(e2).strip().splitlines()[-1][:300]}
    print(json.dumps(out))
    return 0


def child_python_pipeline(precision: str, argv: list[str]) -> int:
    """scripts/reference_predict.py as is; for bf16 the loaded module runs in bfloat16 with its
    input converted and its output turned back to float, as vidcls does."""
    import torch

    sys.path.insert(0, str(ROOT / "scripts"))
    import reference_predict

    if precision == "bf16":
        load = torch.jit.load

        class Bf16:
            def __init__(self, m):
                self.m = m.to(torch.bfloat16)

            def eval(self):
                self.m.eval()
                return self

            def __call__(self, x):
                return self.m(x.to(torch.bfloat16)).float()

        torch.jit.load = lambda *a, **k: Bf16(load(*a, **k))
    return reference_predict.main(argv)


# ---------------------------------------------------------------------------------------------
# The run.


def agreement(a: list[int], b: list[int]) -> dict:
    n = min(len(a), len(b))
    same = sum(1 for x, y in zip(a[:n], b[:n]) if x == y)
    return {"n": n, "same": same, "rate": same / n if n else None}


def bench_model(name: str, config: Path, files: list[Path], vidcls: Path, ff: dict, p: dict,
                clips: int = 1, crops: int = 1, all_scores: bool = False) -> dict:
    batch = BATCH[name]
    res = {"model": name, "config": str(config.relative_to(ROOT)), "videos": len(files), "clips": clips,
           "crops": crops, "batch_size": batch, "files": [str(f.relative_to(ROOT)) for f in files],
           "ffmpeg": ffmpeg_summary(ff, files, clips), "runs": {}}
    for prec in PRECISIONS:
        log(f"{name} {clips}x{crops} {prec}: vidcls on {len(files)} videos")
        v = run_vidcls(vidcls, config, files, prec, batch, clips, crops, all_scores)
        # When vidcls cannot load the model in this precision, one video shows whether the Python
        # pipeline fails the same way (it would decode every file only to fail in the model).
        py_files = files[:1] if v["exit"] == 2 else files
        log(f"{name} {clips}x{crops} {prec}: python pipeline on {len(py_files)} videos")
        py = run_python(config, py_files, prec, batch, clips, crops)
        log(f"{name} {clips}x{crops} {prec}: model alone")
        mo = run_model_alone(config, prec, batches_of(len(files) * clips * crops, batch), p["model_budget_s"])
        row = {"vidcls": v, "python": py, "model": mo, "load": loadavg()}
        row["vidcls_vs_python"] = ratio(v.get("videos_per_s"), py.get("videos_per_s"))
        row["vidcls_vs_model"] = ratio(v.get("views_per_s"), mo.get("views_per_s"))
        if "top1" in v and "top1" in py:
            row["vidcls_python_top1_agreement"] = agreement(
                [v["top1"][k] for k in sorted(v["top1"]) if k in py["top1"]],
                [py["top1"][k] for k in sorted(v["top1"]) if k in py["top1"]])
        res["runs"][prec] = row
        log(f"  vidcls {fmt(v.get('videos_per_s'))} videos/s, python {fmt(py.get('videos_per_s'))}, "
            f"model alone {fmt(mo.get('views_per_s'))} views/s" + (f"  [vidcls: {v['error']}]" if "error" in v else ""))
    if name == "motion" and clips * crops == 1:
        # Decode-bound: what a second decode thread gives.
        log(f"{name}: vidcls fp32 with --threads 2")
        v2 = run_vidcls(vidcls, config, files, "fp32", batch, threads=2)
        res["vidcls_threads2_fp32"] = {k: v2.get(k) for k in ("videos_per_s", "decode_ms", "preprocess_ms",
                                                               "model_ms", "peak_rss_bytes", "error")}
    if name in KINETICS and clips * crops == 1 and batch != 1:
        # Bigger batches are slower per clip on a small CPU (the activations of several clips
        # outgrow the caches): the same run at batch 1, the Python pipeline's batch for 1 view.
        res["batch1"] = {}
        for prec in PRECISIONS:
            if "error" in res["runs"][prec]["vidcls"]:
                continue
            log(f"{name} {prec}: vidcls and the model alone at batch 1")
            v1 = run_vidcls(vidcls, config, files, prec, 1)
            m1 = run_model_alone(config, prec, batches_of(len(files), 1), p["model_budget_s"])
            res["batch1"][prec] = {
                "vidcls": {k: v1.get(k) for k in ("videos_per_s", "decode_ms", "preprocess_ms", "model_ms",
                                                  "peak_rss_bytes", "error")},
                "model": {k: m1.get(k) for k in ("views_per_s", "batches_run", "error")},
                "vidcls_vs_model": ratio(v1.get("views_per_s"), m1.get("views_per_s")),
                "vidcls_vs_python": ratio(v1.get("videos_per_s"), res["runs"][prec]["python"].get("videos_per_s")),
                "vs_default_batch": ratio(v1.get("videos_per_s"), res["runs"][prec]["vidcls"].get("videos_per_s")),
            }
    f32, b16 = res["runs"]["fp32"], res["runs"]["bf16"]
    res["bf16_speedup"] = {
        "vidcls": ratio(b16["vidcls"].get("videos_per_s"), f32["vidcls"].get("videos_per_s")),
        "python": ratio(b16["python"].get("videos_per_s"), f32["python"].get("videos_per_s")),
        "model": ratio(b16["model"].get("views_per_s"), f32["model"].get("views_per_s")),
        "model_autocast": ratio((b16["model"].get("autocast") or {}).get("views_per_s"),
                                f32["model"].get("views_per_s")),
    }
    if f32["vidcls"].get("top1_list") and b16["vidcls"].get("top1_list"):
        res["bf16_top1_agreement"] = agreement(f32["vidcls"]["top1_list"], b16["vidcls"]["top1_list"])
    return res


def long_vs_short(vidcls: Path, config: Path, corpus: dict, ff_long: dict, repeats: int) -> dict:
    """One centre clip of each video; short and long interleaved so that load hits both alike."""
    files = corpus["ten_s"][:1]  # warm-up, not counted (the first video pays for first touches)
    for _ in range(repeats):
        for s, l in zip(corpus["ten_s"], corpus["long"]):
            files += [s, l]
    v = run_vidcls(vidcls, config, files, "fp32", 1)
    res = {"model": "motion", "precision": "fp32", "batch_size": 1, "runs": len(files) - 1, "exit": v["exit"],
           "ffmpeg_full_decode_s": {str(Path(k).relative_to(ROOT)): round(t, 3) for k, t in ff_long.items()}}
    if "error" in v:
        res["error"] = v["error"]
        return res
    per = {"10s": [], "10min": []}
    dec = {"10s": [], "10min": []}
    # Records come back in input order; paths and times line up. The first is the warm-up.
    for path, ms, d in list(zip(v["paths"], v["per_video_ms"], v["decode_pre_ms"]))[1:]:
        k = "10min" if "10min" in Path(path).name else "10s"
        per[k].append(ms)
        dec[k].append(d)
    res["per_video_ms"] = per
    res["decode_pre_ms"] = dec
    res["median_ms"] = {k: statistics.median(x) for k, x in per.items() if x}
    res["median_decode_pre_ms"] = {k: statistics.median(x) for k, x in dec.items() if x}
    res["decode_pre_ratio"] = ratio(res["median_decode_pre_ms"].get("10min"), res["median_decode_pre_ms"].get("10s"))
    res["ratio"] = ratio(res["median_ms"].get("10min"), res["median_ms"].get("10s"))
    return res


def rss_flat(vidcls: Path, config: Path, corpus: dict) -> dict:
    """Peak RSS for the small and the large count. The small count runs twice: peak RSS moves by a
    few percent between identical runs (allocator, queue timing), and that spread is the yardstick."""
    out = {"model": "motion", "precision": "fp32", "batch_size": BATCH["motion"], "runs": {}}
    small, large = sorted(corpus["many"])
    for n, tries in ((small, 2), (large, 1)):
        files = corpus["many"][n]
        rs = []
        for _ in range(tries):
            log(f"peak RSS: vidcls on {n} videos")
            v = run_vidcls(vidcls, config, files, "fp32", BATCH["motion"], stdin_list=True)
            rs.append(v.get("peak_rss_bytes"))
        run = {k: v.get(k) for k in ("inputs", "ok", "failed", "exit", "wall_s", "videos_per_s", "error")}
        run["peak_rss_bytes"] = max(r or 0 for r in rs)
        run["peak_rss_each"] = rs
        out["runs"][str(n)] = run
    a, b = out["runs"][str(small)]["peak_rss_bytes"], out["runs"][str(large)]["peak_rss_bytes"]
    each = out["runs"][str(small)]["peak_rss_each"]
    out["ratio"] = ratio(b, a)
    out["spread_small"] = ratio(max(each), min(each)) if all(each) else None
    out["growth_mb_per_100_videos"] = (b - a) / (large - small) * 100 / 2**20 if a and b else None
    return out


def motion_agreement(vidcls: Path, config: Path, motion_set: Path | None) -> dict:
    if motion_set is None:
        return {"skipped": "scripts/motion_dataset.py not found"}
    rows = list(csv.DictReader(open(motion_set / "manifest.csv")))
    files = [motion_set / r["path"] for r in rows]
    cfg = json.loads(config.read_text())
    truth = [cfg["labels"].index(r["label"]) for r in rows]
    out = {"set": str(motion_set.relative_to(ROOT)), "videos": len(files), "runs": {}}
    for prec in PRECISIONS:
        log(f"motion set: vidcls {prec} on {len(files)} clips")
        v = run_vidcls(vidcls, config, files, prec, BATCH["motion"], all_scores=True)
        run = {k: v.get(k) for k in ("ok", "failed", "exit", "videos_per_s", "peak_rss_bytes", "error",
                                     "decode_ms", "preprocess_ms", "model_ms")}
        if v.get("top1"):
            pred = [v["top1"].get(str(f)) for f in files]
            run["accuracy"] = sum(1 for a, b in zip(pred, truth) if a == b) / len(truth)
            run["_pred"] = pred
            run["_scores"] = v.get("scores_list")
        out["runs"][prec] = run
    a, b = out["runs"]["fp32"].pop("_pred", None), out["runs"]["bf16"].pop("_pred", None)
    sa, sb = out["runs"]["fp32"].pop("_scores", None), out["runs"]["bf16"].pop("_scores", None)
    if a and b:
        out["top1_agreement"] = agreement(a, b)
        if sa and sb and all(sa) and all(sb):
            out["max_abs_score_diff"] = max(abs(x - y) for ra, rb in zip(sa, sb) for x, y in zip(ra, rb))
    return out


# ---------------------------------------------------------------------------------------------
# Report.


def fmt(x, nd=2):
    if x is None:
        return "—"
    if isinstance(x, float):
        if abs(x) >= 100:
            return f"{x:,.0f}"
        return f"{x:.{nd}f}" if abs(x) >= 0.01 or x == 0 else f"{x:.2g}"
    return str(x)


def rx(x) -> str:
    """A ratio: 1.23x, or a dash when it could not be measured."""
    return "—" if x is None else f"{fmt(x)}x"


def gb(b):
    return "—" if b is None else f"{b / GB:.2f}"


def verdict(ok) -> str:
    return "—" if ok is None else ("**met**" if ok else "**missed**")


def targets(R: dict) -> list[dict]:
    rows = []
    one = R["one_clip"]
    kin = [m for m in KINETICS if m in one]
    # 1. end-to-end vs model alone
    vals = {f"{m} {p}": one[m]["runs"][p]["vidcls_vs_model"] for m in one for p in PRECISIONS}
    kv = [x for x in vals.values() if x is not None]
    rows.append({
        "target": "End-to-end >= 0.85x model-alone throughput",
        "measured": ", ".join(f"{k} {rx(v)}" for k, v in vals.items() if v is not None),
        "met": (min(kv) >= 0.85) if kv else None,
        "met_for": [k for k, v in vals.items() if v is not None and v >= 0.85],
        "values": vals,
    })
    # 2. vs Python
    vals = {f"{m} {p}": one[m]["runs"][p]["vidcls_vs_python"] for m in one for p in PRECISIONS}
    pv = [x for x in vals.values() if x is not None]
    rows.append({"target": ">= 1.3x the Python pipeline (same protocol and precision)",
                 "measured": ", ".join(f"{k} {rx(v)}" for k, v in vals.items() if v is not None),
                 "met": (min(pv) >= 1.3) if pv else None, "values": vals,
                 "met_for": [k for k, v in vals.items() if v is not None and v >= 1.3]})
    if "multiview" in R and R["multiview"]:
        mv = R["multiview"]
        vals = {f"{mv['model']} {mv['clips']}x{mv['crops']} {p}": mv["runs"][p]["vidcls_vs_python"] for p in PRECISIONS}
        pv = [x for x in vals.values() if x is not None]
        rows.append({"target": ">= 1.3x the Python pipeline, multi-view",
                     "measured": ", ".join(f"{k} {rx(v)}" for k, v in vals.items() if v is not None),
                     "met": (min(pv) >= 1.3) if pv else None, "values": vals,
                     "met_for": [k for k, v in vals.items() if v is not None and v >= 1.3]})
    # 3. long vs short
    ls = R.get("long_vs_short") or {}
    rows.append({"target": "Centre clip of a 10-min video <= 1.5x one of a 10-s video",
                 "measured": f"{rx(ls.get('ratio'))} ({fmt(ls.get('median_ms', {}).get('10min'), 1)} ms vs "
                             f"{fmt(ls.get('median_ms', {}).get('10s'), 1)} ms per video, motion model; decode + "
                             f"preprocess alone {rx(ls.get('decode_pre_ratio'))})",
                 "met": (ls["ratio"] <= 1.5) if ls.get("ratio") else None})
    # 4. RSS
    rf = R.get("rss") or {}
    runs = rf.get("runs", {})
    if runs:
        (na, ra), (nb, rb) = list(runs.items())
        peak = max(x["peak_rss_bytes"] or 0 for x in runs.values())
        rows.append({"target": f"Peak RSS <= 2.5 GB for {nb} short videos (default model), flat in the count",
                     "measured": f"{gb(ra['peak_rss_bytes'])} GB for {na}, {gb(rb['peak_rss_bytes'])} GB for {nb} "
                                 f"({rx(rf.get('ratio'))}; two runs of {na} differ by {rx(rf.get('spread_small'))})",
                     "met": peak <= 2.5e9 and (rf.get("ratio") or 9) <= 1.1,
                     "note": "flat: the large count within 10% of the small count's higher run"})
    # 5. bf16
    vals = {m: one[m]["bf16_speedup"]["vidcls"] for m in one}
    sv = [one[m]["bf16_speedup"]["vidcls"] for m in kin]
    ma = R.get("motion_agreement") or {}
    agr = (ma.get("top1_agreement") or {}).get("rate")
    failed = [m for m in kin if "error" in one[m]["runs"]["bf16"]["vidcls"]]
    measured = ", ".join(f"{m} {rx(v)}" for m, v in vals.items() if v is not None)
    if failed:
        measured += "; bf16 fails for " + ", ".join(failed)
    measured += f"; top-1 agreement {fmt(100 * agr, 1) if agr is not None else '—'}% on the motion set"
    met = None
    if sv:
        met = all(x is not None and x >= 1.5 for x in sv) and agr is not None and agr >= 0.99
    rows.append({"target": "Fast CPU path (bf16) >= 1.5x fp32, top-1 agreement >= 99% on the motion benchmark",
                 "measured": measured, "met": met, "values": vals, "agreement": agr,
                 "met_for": [m for m, v in vals.items() if v is not None and v >= 1.5]
                 if agr is not None and agr >= 0.99 else []})
    return rows


def stage(r: dict) -> str:
    if r.get("decode_ms") is None:
        return "—"
    return f"{fmt(r['decode_ms'], 0 if r['decode_ms'] >= 100 else 1)} / {fmt(r['preprocess_ms'], 1)} / {fmt(r['model_ms'], 0 if r['model_ms'] >= 100 else 1)}"


def notes_for(R: dict) -> list[str]:
    """Observations that follow from the numbers (what limits what)."""
    out = []
    one = R["one_clip"]
    for m, res in one.items():
        for p in PRECISIONS:
            run = res["runs"][p]
            v, mo = run["vidcls"], run["model"]
            if "error" in v:
                alt = mo.get("autocast") if isinstance(mo.get("autocast"), dict) else {}
                out.append(f"`--precision {p}` fails for **{m}** when vidcls loads it: `{v['error']}` "
                           "(libtorch has no bfloat16 kernel for 3D average pooling on the CPU)."
                           + (f" The model alone under bf16 autocast instead (ops without a bf16 kernel stay in "
                              f"float32) runs at {fmt(alt.get('views_per_s'))} views/s, "
                              f"{rx(res['bf16_speedup'].get('model_autocast'))} its fp32 speed."
                              if alt.get("views_per_s") else ""))
    entries = [(m, res) for m, res in one.items() if m != "motion"]
    if R.get("multiview") and R["multiview"]["model"] != "motion":
        mv = R["multiview"]
        entries.append((f"{mv['model']} {mv['clips']}x{mv['crops']}", mv))
    for m, res in entries:
        for p in PRECISIONS:
            run = res["runs"][p]
            v, py, mo = run["vidcls"], run["python"], run["model"]
            if v.get("decode_ms") is None or not mo.get("views_per_s"):
                continue
            model_ms = 1e3 / mo["views_per_s"] * res["clips"] * res["crops"]
            side = v["decode_ms"] + v["preprocess_ms"]
            r = run["vidcls_vs_model"]
            if r is not None and r < 0.85:
                # The model keeps every core busy, so the decode thread's work is not hidden: each
                # video costs its model time plus its decode + preprocess CPU time spread over the cores.
                cores = R["machine"]["logical_cpus"] or 1
                predicted = model_ms / (model_ms + side / cores)
                out.append(f"{m} {p}: vidcls reaches {rx(r)} the model alone. Decoding and preprocessing take "
                           f"{fmt(side, 0)} ms per video on the decode thread against {fmt(model_ms, 0)} ms of model "
                           f"per video, and the model already keeps all {cores} cores busy, so the stages add up "
                           f"instead of overlapping: model / (model + (decode + preprocess) / {cores}) predicts "
                           f"{rx(predicted)}.")
            q = run["vidcls_vs_python"]
            if q is not None and q < 1.3 and py.get("videos_per_s") and py.get("model_ms"):
                py_ms = 1e3 / py["videos_per_s"]
                out.append(f"{m} {p}: vidcls is {rx(q)} the Python pipeline, which spends {fmt(py_ms, 0)} ms per "
                           f"video, {fmt(py['model_ms'], 0)} of them in the model ("
                           + ("one view per forward pass" if res["clips"] * res["crops"] == 1 else
                              f"batches of up to {res['batch_size']} views of one video") + "); "
                           f"vidcls spends {fmt(v['model_ms'], 0)} ms per video in the model. Even with decoding and "
                           f"preprocessing free, a pipeline with Python's model time could be at most "
                           f"{rx(py_ms / py['model_ms'])} the Python pipeline.")
    for m, res in one.items():
        for p, r in (res.get("batch1") or {}).items():
            if (r.get("vs_default_batch") or 0) > 1.1:
                out.append(f"{m} {p}: `--batch-size 1` runs {rx(r['vs_default_batch'])} faster than the default "
                           f"batch of {res['batch_size']} ({fmt(r['vidcls'].get('videos_per_s'))} vs "
                           f"{fmt(res['runs'][p]['vidcls'].get('videos_per_s'))} videos/s; the model alone too: "
                           f"{fmt(r['model'].get('views_per_s'))} vs {fmt(res['runs'][p]['model'].get('views_per_s'))} "
                           f"clips/s): on this 2-core CPU a clip costs more in a bigger batch. At batch 1 vidcls is "
                           f"{rx(r['vidcls_vs_python'])} the Python pipeline and {rx(r['vidcls_vs_model'])} the model "
                           "alone.")
    if "motion" in one:
        for p in PRECISIONS:
            v, mo = one["motion"]["runs"][p]["vidcls"], one["motion"]["runs"][p]["model"]
            if v.get("decode_ms") is None or not mo.get("views_per_s"):
                continue
            side = v["decode_ms"] + v["preprocess_ms"]
            model_ms = 1e3 / mo["views_per_s"]
            if side > 2 * model_ms:
                out.append(f"motion {p}: the model alone needs {fmt(model_ms, 1)} ms per clip, decoding and "
                           f"preprocessing {fmt(side, 0)} ms per video on the one decode thread (1 per 2 cores by "
                           f"default), so vidcls runs at the decode rate, {rx(one['motion']['runs'][p]['vidcls_vs_model'])} "
                           "the model alone; a faster model or bf16 cannot change that."
                           + (f" With `--threads 2` (two decode threads) it runs at "
                              f"{fmt(one['motion']['vidcls_threads2_fp32'].get('videos_per_s'))} videos/s instead of "
                              f"{fmt(one['motion']['runs']['fp32']['vidcls'].get('videos_per_s'))} (fp32)."
                              if p == "fp32" and one["motion"].get("vidcls_threads2_fp32") else ""))
    ls = R.get("long_vs_short") or {}
    if (ls.get("ratio") or 0) > 1.5 or (ls.get("decode_pre_ratio") or 0) > 1.5:
        out.append(f"The 10-minute video costs {rx(ls['ratio'])} the 10-second one per centre clip "
                   f"({rx(ls.get('decode_pre_ratio'))} for decode + preprocess); see the runs below (load from other "
                   "work makes single runs of ~100 ms noisy).")
    return out


def write_report(R: dict, md_path: Path, json_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(strip(R), indent=1, default=str) + "\n")
    M = R["machine"]
    L = []
    a = L.append
    a("# Benchmarks")
    a("")
    a(f"Written by `scripts/bench.sh{' --quick' if R['quick'] else ''}` (`scripts/bench.py`); every number is "
      f"also in `{json_path.name}`. One run on one machine:")
    if R["quick"]:
        a("")
        a("**Smoke run (`--quick`): a handful of videos per measurement, so the numbers are not meaningful.**")
    a("")
    a(f"- CPU: **{M['cpu']}**, {M['logical_cpus']} logical CPUs"
      f"{' (AVX-512 BF16)' if M.get('avx512_bf16') else ''}, {gb(M['memory_bytes'])} GB RAM, Linux {M['kernel']}")
    a(f"- Date: {M['date']}; vidcls at commit {M['git_commit']}{' (with local changes)' if M['git_dirty'] else ''}; "
      f"torch {R.get('torch', '?')}; {M['ffmpeg'].split(' Copyright')[0]}")
    cores = M["logical_cpus"] or 1
    loads = [R["load_start"][0], R["load_end"][0]] + load_samples(R)
    a(f"- Load average (1, 5, 15 min) at the start: {R['load_start']}, at the end: {R['load_end']}; highest 1-min "
      f"load seen between measurements: {max(loads):.2f} (the benchmark itself keeps about {cores} busy)"
      + (" — **other work was running too: absolute numbers are pessimistic and ratios noisier**"
         if max(loads) > cores + 1 else ""))
    a(f"- Run time: {fmt(R['seconds'] / 60, 1)} min of measurements, plus {fmt(R['setup_seconds'], 0)} s to make "
      f"videos and models (cached for later runs)")
    a("")
    a("## Targets (issue 7)")
    a("")
    a("| target | measured | verdict |")
    a("|---|---|---|")
    for t in R["targets"]:
        part = f" (met for {', '.join(t['met_for'])})" if t.get("met_for") and t["met"] is False else ""
        a(f"| {t['target']} | {t['measured']} | {verdict(t['met'])}{part} |")
    a("")
    notes = R.get("notes") or []
    if notes:
        a("What limits them:")
        a("")
        for n in notes:
            a(f"- {n}")
        a("")
    a("## Protocol")
    a("")
    c = R["corpus"]
    a(f"- Corpus (ffmpeg CLI, cached in `target/bench/corpus`): {c['short']} short clips of {c['short_seconds']} s at "
      f"{', '.join(RESOLUTIONS)} ({c['short_per_res']} each; `testsrc2` with temporal noise, H.264 veryfast CRF 23, "
      f"30 fps, keyframe every 2 s); {c['ten_s']} x 10 s and {c['long']} x 10 min at 320x240 (x264 ultrafast, "
      "keyframe every 3 s).")
    a("- Models: r2plus1d_18 (16 x 112²), s3d and i3d (64 x 224²) exported by `scripts/export_models.py --random-init "
      "--seed 0` (speed does not depend on the weights), and the default motion model (`configs/motion.json`, "
      f"weights `{R.get('motion_weights')}`, sha256 {R['motion_sha256'][:12]}…).")
    a("- **vidcls**: `vidcls predict -f jsonl -k 1 --precision P --batch-size B` on all the files in one call; "
      "videos/s and clips/s from its summary line (model loading excluded; the start-up column has it); "
      "per-stage times are the means of the records' `timings` (decode and preprocess run on a decode thread while "
      "the model runs, so they overlap with `model_ms` and are slowed by it: they are not comparable with the Python "
      "pipeline's, whose stages run one after another); peak RSS from `/usr/bin/time -f %M`.")
    a("- **python**: `scripts/reference_predict.py` on the same files and views, one video after another "
      "(PyAV decodes the whole file); rate = videos / sum of its per-video times (model loading excluded). "
      "bf16: the module and its input converted to bfloat16, output back to float, as vidcls does.")
    a("- **model alone**: the same TorchScript file on random tensors of the same shape, in the batch sizes vidcls "
      f"ran (batch B: {', '.join(f'{m} {b}' for m, b in BATCH.items())}), same precision, "
      f"{R.get('model_threads', '?')} torch threads, no_grad, after one warm-up batch; long runs stop after "
      f"{R['plan']['model_budget_s']:.0f} s (at least 2 batches).")
    a("- **ffmpeg**: `ffmpeg -i FILE -f null -` per file (decodes every frame; vidcls decodes one clip after a seek).")
    a("")
    a("## 1 clip per video")
    a("")
    a("| model | precision | videos | batch | vidcls videos/s | vidcls clips/s | python videos/s | model alone clips/s | "
      "ffmpeg decode videos/s | vidcls / python | vidcls / model alone |")
    a("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m, res in R["one_clip"].items():
        for p in PRECISIONS:
            run = res["runs"][p]
            v, py, mo = run["vidcls"], run["python"], run["model"]
            a(f"| {m} | {p} | {res['videos']} | {res['batch_size']} | {cell(v, 'videos_per_s')} | {cell(v, 'clips_per_s')} | "
              f"{cell(py, 'videos_per_s')} | {cell(mo, 'views_per_s')} | {fmt(res['ffmpeg']['videos_per_s'])} | "
              f"{rx(run['vidcls_vs_python'])} | {rx(run['vidcls_vs_model'])} |")
    a("")
    a("Time per video by stage (ms, mean: decode / preprocess / model), start-up and peak RSS:")
    a("")
    a("| model | precision | vidcls stages | vidcls start-up (s) | vidcls peak RSS (GB) | python stages | "
      "python peak RSS (GB) | model alone peak RSS (GB) |")
    a("|---|---|---:|---:|---:|---:|---:|---:|")
    for m, res in R["one_clip"].items():
        for p in PRECISIONS:
            run = res["runs"][p]
            v, py, mo = run["vidcls"], run["python"], run["model"]
            a(f"| {m} | {p} | {stage(v)} | {fmt(v.get('startup_s'), 1)} | {gb(v.get('peak_rss_bytes'))} | {stage(py)} | "
              f"{gb(py.get('peak_rss_bytes'))} | {gb(mo.get('peak_rss_bytes'))} |")
    a("")
    b1 = [(m, p, res["batch1"][p], res) for m, res in R["one_clip"].items() for p in PRECISIONS
          if p in (res.get("batch1") or {})]
    if b1:
        a("The same vidcls runs at `--batch-size 1` (the Python pipeline runs one view per forward pass too):")
        a("")
        a("| model | precision | default batch | vidcls videos/s, default batch | vidcls videos/s, batch 1 | "
          "model alone clips/s, batch 1 | batch 1 / default | vidcls / python, batch 1 | vidcls / model alone, batch 1 |")
        a("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for m, p, r, res in b1:
            a(f"| {m} | {p} | {res['batch_size']} | {cell(res['runs'][p]['vidcls'], 'videos_per_s')} | "
              f"{cell(r['vidcls'], 'videos_per_s')} | {cell(r['model'], 'views_per_s')} | {rx(r['vs_default_batch'])} | "
              f"{rx(r['vidcls_vs_python'])} | {rx(r['vidcls_vs_model'])} |")
        a("")
    a("bf16 speed-up over fp32 (vidcls / python / model alone):")
    a("")
    a("| model | vidcls | python | model alone | model alone, autocast | fp32 vs bf16 top-1 agreement (vidcls) |")
    a("|---|---:|---:|---:|---:|---:|")
    for m, res in R["one_clip"].items():
        s = res["bf16_speedup"]
        ag = res.get("bf16_top1_agreement")
        a(f"| {m} | {rx(s['vidcls'])} | {rx(s['python'])} | {rx(s['model'])} | {rx(s['model_autocast'])} | "
          f"{(str(ag['same']) + '/' + str(ag['n'])) if ag else '—'} |")
    a("")
    a("The Kinetics models have random weights, so their top-1 is close to a tie between 400 classes and the "
      "agreement columns there say little; the motion model's agreement is the one that counts.")
    a("")
    mv = R.get("multiview")
    if mv:
        a(f"## {mv['clips']} clips x {mv['crops']} crops ({mv['model']}, {mv['videos']} video{'s' if mv['videos'] != 1 else ''})")
        a("")
        a("| precision | vidcls videos/s | vidcls clips/s | vidcls views/s | python videos/s | model alone views/s | "
          "vidcls / python | vidcls / model alone | vidcls stages (ms per video) | vidcls peak RSS (GB) | python peak RSS (GB) |")
        a("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for p in PRECISIONS:
            run = mv["runs"][p]
            v, py, mo = run["vidcls"], run["python"], run["model"]
            a(f"| {p} | {cell(v, 'videos_per_s', 3)} | {cell(v, 'clips_per_s')} | {cell(v, 'views_per_s')} | "
              f"{cell(py, 'videos_per_s', 3)} | {cell(mo, 'views_per_s')} | {rx(run['vidcls_vs_python'])} | "
              f"{rx(run['vidcls_vs_model'])} | {stage(v)} | {gb(v.get('peak_rss_bytes'))} | {gb(py.get('peak_rss_bytes'))} |")
        a("")
    ls = R.get("long_vs_short")
    if ls:
        a("## One centre clip: 10-minute vs 10-second video")
        a("")
        a("vidcls with the default motion model, fp32, batch 1, the 10-second and 10-minute files interleaved "
          "(after one warm-up video); time per video = decode + preprocess + model from the records. The model's "
          "share is the same for both, so decode + preprocess is also shown alone: it is the part that could grow "
          "with the length.")
        a("")
        a("| video | runs | median ms per video | median decode + preprocess (ms) | all runs, total (ms) | "
          "ffmpeg full decode (s) |")
        a("|---|---:|---:|---:|---|---:|")
        for k, name in (("10s", "10 s, 320x240"), ("10min", "10 min, 320x240")):
            xs = ls.get("per_video_ms", {}).get(k, [])
            full = [t for f, t in ls.get("ffmpeg_full_decode_s", {}).items() if (k == "10min") == ("10min" in f)]
            a(f"| {name} | {len(xs)} | {fmt((ls.get('median_ms') or {}).get(k), 1)} | "
              f"{fmt((ls.get('median_decode_pre_ms') or {}).get(k), 1)} | "
              f"{', '.join(fmt(x, 1) for x in xs)} | {fmt(mean(full))} |")
        a("")
        a(f"Ratio 10 min / 10 s: **{fmt(ls.get('ratio'))}** per video, {rx(ls.get('decode_pre_ratio'))} for decode + "
          "preprocess alone. The Python pipeline decodes the whole file: "
          "18,000 frames for a 10-minute video (4.1 GB of RGB frames at 320x240), so it was not run on these.")
        a("")
    rf = R.get("rss")
    if rf:
        a("## Peak RSS against the number of videos (default motion model, fp32)")
        a("")
        a("| videos | classified | peak RSS (GB), each run | videos/s |")
        a("|---:|---:|---:|---:|")
        for n, r in rf["runs"].items():
            each = r.get("peak_rss_each") or [r.get("peak_rss_bytes")]
            a(f"| {n} | {r.get('ok')} | {', '.join(gb(x) for x in each)} | {fmt(r.get('videos_per_s'))} |")
        a("")
        a(f"Growth: {fmt(rf.get('growth_mb_per_100_videos'), 1)} MB per 100 videos (higher run of the small count "
          "to the large count). The inputs are hard links to the short 320x240 and 640x360 clips, passed on stdin.")
        a("")
    ma = R.get("motion_agreement")
    if ma and "runs" in ma:
        a("## bf16 vs fp32 on the motion benchmark")
        a("")
        a(f"`{ma['set']}`: {ma['videos']} clips from `scripts/motion_dataset.py --holdout-style` (8 classes), "
          "vidcls with the default motion model.")
        a("")
        a("| precision | accuracy | videos/s | stages (ms per video) |")
        a("|---|---:|---:|---:|")
        for p in PRECISIONS:
            r = ma["runs"][p]
            acc = r.get("accuracy")
            a(f"| {p} | {fmt(100 * acc, 1) + '%' if acc is not None else '—'} | {fmt(r.get('videos_per_s'))} | {stage(r)} |")
        ag = ma.get("top1_agreement") or {}
        a("")
        a(f"Top-1 agreement fp32 vs bf16: **{ag.get('same')}/{ag.get('n')}** "
          f"({fmt(100 * ag['rate'], 1) if ag.get('rate') is not None else '—'}%); largest difference of a class "
          f"probability: {fmt(ma.get('max_abs_score_diff'), 4)}. On the corpus clips: "
          f"{corpus_agreement(R)}.")
        a("")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(L) + "\n")


def load_samples(R: dict) -> list[float]:
    """The 1-minute load averages taken after each model's runs."""
    out = []
    for res in list((R.get("one_clip") or {}).values()) + ([R["multiview"]] if R.get("multiview") else []):
        for run in res["runs"].values():
            if run.get("load"):
                out.append(run["load"][0])
    return out


def corpus_agreement(R: dict) -> str:
    ag = (R["one_clip"].get("motion") or {}).get("bf16_top1_agreement")
    return f"{ag['same']}/{ag['n']}" if ag else "—"


def cell(r: dict, key: str, nd=2) -> str:
    if "error" in r and r.get(key) is None:
        return "fails"
    return fmt(r.get(key), nd)


def strip(R):
    """The JSON copy without the per-path maps (kept: counts, rates, lists of times)."""
    if isinstance(R, dict):
        return {k: strip(v) for k, v in R.items() if k not in ("top1", "top1_list", "scores_list", "paths")}
    if isinstance(R, list):
        return [strip(x) for x in R]
    if isinstance(R, float):
        return round(R, 5)
    return R


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_model_alone":
        return child_model_alone(argv[1])
    if argv and argv[0] == "_python_pipeline":
        return child_python_pipeline(argv[1], argv[2:])

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny corpus, a few minutes")
    ap.add_argument("--out-dir", type=Path,
                    help="where BENCHMARKS.md and benchmarks.json go (default: docs/, or target/bench/quick with --quick)")
    ap.add_argument("--vidcls", type=Path, default=ROOT / "target" / "release" / "vidcls")
    ap.add_argument("--models", nargs="+", choices=MODELS,
                    help="a subset of the models (default: all; with --quick: motion and r2plus1d_18)")
    ap.add_argument("--skip", nargs="+", default=[], choices=["multiview", "long", "rss", "motion-set"],
                    help="leave these parts out")
    ap.add_argument("--report-from", type=Path, metavar="JSON",
                    help="only rewrite the report (targets, notes, tables) from a benchmarks.json of an earlier run")
    args = ap.parse_args(argv)
    if args.report_from:
        R = json.loads(args.report_from.read_text())
        R["targets"] = targets(R)
        R["notes"] = notes_for(R)
        out_dir = args.out_dir or args.report_from.parent
        write_report(R, out_dir / "BENCHMARKS.md", out_dir / "benchmarks.json")
        log(f"wrote {out_dir / 'BENCHMARKS.md'} from {args.report_from}")
        return 0

    if not Path(TIME).exists():
        raise SystemExit(f"bench.py: {TIME} is needed for peak RSS (Debian package `time`)")
    if not args.vidcls.exists():
        raise SystemExit(f"bench.py: {args.vidcls} not found (cargo build --release)")
    for tool in ("ffmpeg",):
        if not shutil.which(tool):
            raise SystemExit(f"bench.py: {tool} not found")
    out_dir = args.out_dir or (CACHE / "quick" if args.quick else ROOT / "docs")
    p = plan(args.quick)
    args.models = args.models or p["models"]
    import torch  # noqa: F401  (the version goes into the report)

    R = {"quick": args.quick, "plan": p, "machine": machine(), "torch": torch.__version__,
         "load_start": loadavg(), "model_threads": os.cpu_count()}
    log(f"{R['machine']['cpu']}, {R['machine']['logical_cpus']} CPUs, load {R['load_start']}")
    t_setup = time.perf_counter()
    corpus = make_corpus(p)
    motion_set = None if "motion-set" in args.skip else make_motion_set(p["motion_set_per_class"])
    needed = set(args.models) | ({p["multiview"]["model"]} if "multiview" not in args.skip else set()) | {"motion"}
    cfgs = model_configs([m for m in MODELS if m in needed])
    R["setup_seconds"] = round(time.perf_counter() - t_setup, 1)
    R["motion_sha256"] = sha256(weights_of(cfgs["motion"]))
    R["motion_weights"] = (json.loads(cfgs["motion"].read_text()).get("weights") or {}).get("source")
    R["corpus"] = {"short": len(corpus["short"]), "short_seconds": p["short_seconds"],
                   "short_per_res": p["short_per_res"], "ten_s": len(corpus["ten_s"]), "long": len(corpus["long"])}
    t_run = time.perf_counter()

    log("ffmpeg: decoding the short clips")
    ff = ffmpeg_decode_times(corpus["short"])

    R["one_clip"] = {}
    for m in MODELS:
        if m not in args.models:
            continue
        files = by_resolution(corpus["short"], p["per_model"][m])
        R["one_clip"][m] = bench_model(m, cfgs[m], files, args.vidcls, ff, p, all_scores=(m == "motion"))

    if "multiview" not in args.skip:
        mv = p["multiview"]
        files = [f for f in corpus["short"] if f.name.startswith("640")][: mv["videos"]]
        res = bench_model(mv["model"], cfgs[mv["model"]], files, args.vidcls, ff, p, mv["clips"], mv["crops"])
        R["multiview"] = res

    if "long" not in args.skip:
        log("long vs short: ffmpeg full decode")
        ff_long = ffmpeg_decode_times(corpus["ten_s"][:1] + corpus["long"][:1])
        log("long vs short: vidcls")
        R["long_vs_short"] = long_vs_short(args.vidcls, cfgs["motion"], corpus, ff_long, p["long_repeats"])
    if "rss" not in args.skip:
        R["rss"] = rss_flat(args.vidcls, cfgs["motion"], corpus)
    if "motion-set" not in args.skip:
        R["motion_agreement"] = motion_agreement(args.vidcls, cfgs["motion"], motion_set)

    R["seconds"] = round(time.perf_counter() - t_run, 1)
    R["load_end"] = loadavg()
    R["targets"] = targets(R)
    R["notes"] = notes_for(R)
    write_report(R, out_dir / "BENCHMARKS.md", out_dir / "benchmarks.json")
    log(f"wrote {out_dir / 'BENCHMARKS.md'} and {out_dir / 'benchmarks.json'} "
        f"({R['seconds'] / 60:.1f} min of measurements)")
    for t in R["targets"]:
        print(f"{'MET   ' if t['met'] else 'MISSED' if t['met'] is not None else '  -   '}  {t['target']}: {t['measured']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
