#!/usr/bin/env python3
"""Measures how a model's TorchScript graph agrees with itself in bf16 and records it in the config.

`vidcls predict --precision auto` runs bf16 on a CPU with native bf16 only when the model's config
carries `reduced_precision.bf16_top1_agreement` >= 0.99 (src/model/mod.rs, AUTO_MIN_AGREEMENT).
This script runs the graph in float32 and in bf16 the way vidcls does (the whole module cast to
bf16, the input cast to bf16, on the CPU) over deterministic calibration clips and writes

    "reduced_precision": {"clips": N, "bf16_top1_agreement": FRACTION}

into the config. Calibration clips:
  - motion models (label set motion8): clips rendered by scripts/motion_dataset.py in the held-out
    style, sampled and preprocessed exactly as scripts/reference_predict.py (vidcls's pipeline) does;
  - Kinetics exports: scripts/export_models.py's deterministic calibration clips, at the
    architecture's own clip length (not the exported --frames), so the record does not depend on
    --frames.
A graph that fails in bf16 (one with an operation libtorch's CPU has no bf16 kernel for, such as a
bare avg_pool3d: scripts/export_models.py keeps those in float32, so its exports all run) gets no
record, so `--precision auto` never picks bf16 for it; the reason is printed on stderr.

With `--videos PATH...` the record is measured on the centre clip of each video instead (files,
or every file directly inside a directory; sampled and preprocessed as vidcls does, one clip a
video), and says `"clips_from": "videos"`. That is the record to trust for a model with trained
weights: the calibration clips are synthetic, and a model's top-1 on them can turn on noise (on
random-init exports one grey level of noise changes fp32's own top-1 on about half of them:
docs/BENCHMARKS.md, "What bounds the model's share"). A file that does not decode is named on stderr and left out.

    python scripts/precision_record.py configs/motion.json [--clips N | --videos PATH...] [--models-dir models]
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent
MOTION_LABEL_SET = "motion8"
# Calibration clips by default: rendered motion clips are cheap; a Kinetics graph at its full clip
# length costs seconds a clip here, so twice the exporter's BatchNorm calibration batch.
DEFAULT_CLIPS = {"motion": 64, "kinetics": 12}
# Seeds of the calibration clips: distinct from the BatchNorm calibration batches of a
# random-init export (seed and seed + 1) and from the training and validation sets.
MOTION_SEED = 12_000
KINETICS_SEED = 12_000


def centre_clip(decoded, cfg: dict) -> torch.Tensor:
    """The centre clip of a decoded video, sampled and preprocessed as vidcls does (one view):
    3 x T x crop x crop float32."""
    import reference_predict as rp

    sampling = cfg.get("sampling") or {}
    (idx, _, _), = rp.plan(decoded, int(cfg["frames"]), sampling.get("fps"), int(sampling.get("stride", 1)), 1)
    return rp.preprocess(np.stack([decoded.frames[k] for k in idx]), cfg, 1)[0]


def motion_clips(cfg: dict, n: int) -> torch.Tensor:
    """n rendered motion clips (held-out style, labels in turn), sampled and preprocessed as vidcls
    does: N x 3 x T x crop x crop float32."""
    import frame_sampling as fs
    import motion_dataset as md
    import reference_predict as rp

    views = []
    for i in range(n):
        label = md.LABELS[i % len(md.LABELS)]
        p = md.sample_params(md.clip_rng(MOTION_SEED, "holdout", i), label, "holdout")
        times = md.frame_times(p)
        rendered = md.render_frames(p, times)
        views.append(centre_clip(rp.Decoded(list(rendered), times, len(times) / p["fps"], p["fps"], fs.tolerance(None)), cfg))
    return torch.stack(views)


def video_files(paths: list[Path]) -> list[Path]:
    """The files named, and the files directly inside the directories named, sorted."""
    out = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file())
        elif p.is_file():
            out.append(p)
        else:
            raise SystemExit(f"{p}: no such file or directory")
    return out


def video_clips(cfg: dict, paths: list[Path]) -> torch.Tensor:
    """The centre clip of each video (decoded whole with PyAV, as scripts/reference_predict.py
    does); a file that does not decode is named on stderr and left out."""
    import reference_predict as rp

    views = []
    for path in video_files(paths):
        try:
            views.append(centre_clip(rp.decode(str(path)), cfg))
        except Exception as e:  # noqa: BLE001 - any undecodable file is left out, by name
            print(f"{path}: left out: {str(e).strip() or type(e).__name__}", file=sys.stderr)
    if not views:
        raise SystemExit("no video decoded: the record is unchanged")
    return torch.stack(views)


def kinetics_clips(cfg: dict, n: int) -> torch.Tensor:
    """export_models.py's calibration clips at the architecture's default clip length."""
    import export_models as em

    spec = em.SPECS[cfg["architecture"]]
    return em.calibration_clips(n, spec.frames, int(cfg["crop"]), KINETICS_SEED, tuple(cfg["mean"]), tuple(cfg["std"]))


def calibration_clips(cfg: dict, n: int) -> torch.Tensor:
    if cfg.get("label_set") == MOTION_LABEL_SET:
        return motion_clips(cfg, n)
    return kinetics_clips(cfg, n)


def _load(graph: bytes) -> torch.jit.ScriptModule:
    m = torch.jit.load(io.BytesIO(graph), map_location="cpu")
    m.eval()
    return m


def measure(graph: bytes, clips: torch.Tensor, name: str = "model") -> dict | None:
    """Top-1 agreement of the graph (a saved TorchScript file's bytes) in bf16 with its float32
    self on `clips`, one clip per forward pass. None, with the reason on stderr, when the graph
    cannot run in bf16."""
    fp32 = _load(graph)
    bf16 = _load(graph).to(torch.bfloat16)
    agree = 0
    with torch.no_grad():
        for i in range(clips.shape[0]):
            x = clips[i : i + 1]
            try:
                low = bf16(x.to(torch.bfloat16))
            except Exception as e:  # noqa: BLE001 - any failure means bf16 is not usable
                first = str(e).strip().splitlines()
                reason = next((l for l in first if "not implemented" in l.lower()), first[-1] if first else repr(e))
                print(f"{name}: the graph does not run in bf16 ({reason.strip()}); "
                      "no reduced_precision record, so --precision auto keeps fp32", file=sys.stderr)
                return None
            agree += int(fp32(x).argmax(dim=1).item() == low.float().argmax(dim=1).item())
    n = int(clips.shape[0])
    return {"clips": n, "bf16_top1_agreement": round(agree / n, 4)}


def with_record(config: dict, record: dict | None) -> dict:
    """The config with `reduced_precision` set (after `parameters`, as the exporters place it), or
    removed when there is no record."""
    out = {}
    for k, v in config.items():
        if k == "reduced_precision":
            continue
        out[k] = v
        if k == "parameters" and record is not None:
            out["reduced_precision"] = record
    if record is not None and "reduced_precision" not in out:
        out["reduced_precision"] = record
    return out


def default_clips(cfg: dict) -> int:
    return DEFAULT_CLIPS["motion" if cfg.get("label_set") == MOTION_LABEL_SET else "kinetics"]


def record_config(config_path: Path, n: int | None = None, models_dir: Path | None = None,
                  videos: list[Path] | None = None) -> dict | None:
    """Measures the config's graph (on the centre clip of each of `videos`, else on calibration
    clips) and rewrites the config file (json, indent 2, keys in order) with the record. Returns
    the record."""
    config_path = Path(config_path)
    cfg = json.loads(config_path.read_text())
    candidates = [config_path.parent / cfg["file"]]
    candidates.append((models_dir or config_path.parent.parent / "models") / cfg["file"])
    pt = next((p for p in candidates if p.is_file()), None)
    if pt is None:
        raise SystemExit(f"{config_path}: model file {cfg['file']} not found in "
                         + " or ".join(str(p.parent) for p in candidates))
    clips = video_clips(cfg, videos) if videos else calibration_clips(cfg, n or default_clips(cfg))
    record = measure(pt.read_bytes(), clips, cfg.get("name", config_path.stem))
    if record is not None and videos:
        record["clips_from"] = "videos"
    config_path.write_text(json.dumps(with_record(cfg, record), indent=2) + "\n")
    return record


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path, help="model config JSON (rewritten in place)")
    ap.add_argument("--clips", type=int, help="calibration clips (default: 64 for motion models, 12 for Kinetics)")
    ap.add_argument("--models-dir", type=Path, help="where the config's model file is (default: ../models)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--videos", type=Path, nargs="+", metavar="PATH",
                    help="measure on the centre clip of these videos (files, or directories of them) "
                    "instead of calibration clips")
    args = ap.parse_args(argv)
    if args.clips is not None and args.clips < 1:
        ap.error("--clips must be at least 1")
    if args.clips is not None and args.videos:
        ap.error("--clips and --videos exclude each other: with --videos, each video gives one clip")
    if args.threads:
        torch.set_num_threads(args.threads)
    record = record_config(args.config, args.clips, args.models_dir, args.videos)
    print(json.dumps({"config": str(args.config), "reduced_precision": record}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
