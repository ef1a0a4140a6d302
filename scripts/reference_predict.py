#!/usr/bin/env python3
"""Reference pipeline for parity with `vidcls predict`: PyAV decoding, torchvision-style
preprocessing in torch, the same TorchScript file; prints one JSON Lines record per video.

What it does, step by step (vidcls implements the same rules):

1. Decode every frame of the first video stream to RGB24 (PyAV), turned upright as a player
   shows it (display-matrix rotation), ordered by presentation timestamp. Frame times are
   relative to the first frame's pts. Duration D = end of the last frame - first pts, where a
   frame ends at pts + its duration (else 1 / average rate, else the last pts gap).
2. Sampling (scripts/frame_sampling.py, vidcls's rules): T frames per clip at times
   c + i * stride / fps (fps from the config, else the stream's average rate, else 30); clip
   span L = T * stride / fps. Clip j of N starts at c = (D - L) * (j + 0.5) / N when D >= L,
   else at 0. The frame for time t is the last one whose relative pts <= t + eps, eps = half a
   tick of the stream's time base + 1e-6 s (timestamps are rounded to ticks), or the first frame
   if none. A time with t > D - eps lies past the last frame: it repeats the last frame and
   counts in `padded_frames`.
3. Preprocessing per clip: uint8 -> float32 / 255 * value_scale; bilinear resize on T x C x H x W
   (`interpolate`, align_corners=False, antialias=False) to the config's exact size, or to the
   short side S with the long side int(S * long / short) as torchvision computes it; square crop
   of side `crop` at top = int(round((H - crop) / 2.0)), left likewise; (x - mean) / std;
   C x T x H x W. With --crops 3 the crop moves along the longer side of the resized frame (the
   width when square) to 0, the centre and size - crop; the other axis stays centred.
4. Views are ordered clip by clip, crops within a clip; batches of --batch-size go through the
   model; `scores` aggregate the per-view outputs: `prob` (default) is the mean of per-view
   softmax probabilities, `logit` the softmax of the mean logits, `max` the per-class maximum
   of per-view probabilities. top-k sorts by score, then by class index.

`frame_times` holds the relative pts of the frames each clip used, `frame_indices` their
positions in presentation order. `--dump-inputs DIR` writes `DIR/<i>.npy` (i: the video's
position on the command line), float32 views x C x T x H x W, exactly the model input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import frame_sampling as fs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class Decoded:
    """All frames of a video, upright, in presentation order."""

    def __init__(self, frames, times: list[float], duration: float, avg_fps: float | None, eps: float):
        self.frames = frames
        self.times = times
        self.duration = duration
        self.avg_fps = avg_fps
        self.eps = eps


def decode(path: str) -> Decoded:
    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        avg = float(stream.average_rate) if stream.average_rate else None
        items = []
        for n, frame in enumerate(container.decode(stream)):
            pts = frame.pts if frame.pts is not None else frame.dts
            t = float(pts * tb) if pts is not None else (n / avg if avg else float(n))
            dur = float(frame.duration * tb) if frame.duration else None
            rgb = frame.to_ndarray(format="rgb24")
            k = int(round((frame.rotation or 0) / 90.0)) % 4
            if k:
                # rotation is counterclockwise degrees (av_display_rotation_get); np.rot90 turns CCW.
                rgb = np.ascontiguousarray(np.rot90(rgb, k))
            items.append((t, n, dur, rgb))
    if not items:
        raise ValueError("no decodable frames")
    items.sort(key=lambda it: (it[0], it[1]))
    first = items[0][0]
    times = [it[0] - first for it in items]
    last_dur = items[-1][2]
    if not last_dur:
        if avg:
            last_dur = 1.0 / avg
        elif len(times) > 1:
            last_dur = times[-1] - times[-2]
        else:
            last_dur = 0.0
    return Decoded([it[3] for it in items], times, times[-1] + last_dur, avg, fs.tolerance(tb))


def plan(decoded: Decoded, frames: int, fps: float | None, stride: int, clips: int):
    """Per clip: (frame indices, their relative times, padded count)."""
    d, eps = decoded.duration, decoded.eps
    out = []
    for times in fs.clip_times(d, frames, fps, stride, clips, decoded.avg_fps):
        idx = [fs.frame_at(decoded.times, t, eps) for t in times]
        padded = sum(1 for t in times if fs.padded(t, d, eps))
        out.append((idx, [decoded.times[k] for k in idx], padded))
    return out


def resized_size(h: int, w: int, resize: dict) -> tuple[int, int]:
    if resize["mode"] == "exact":
        return int(resize["height"]), int(resize["width"])
    if resize["mode"] == "short_side":
        s = int(resize["size"])
        if w <= h:
            return int(s * h / w), s
        return s, int(s * w / h)
    raise ValueError(f"unknown resize mode {resize['mode']!r}")


def crop_offsets(h: int, w: int, crop: int, crops: int) -> list[tuple[int, int]]:
    if crop > h or crop > w:
        raise ValueError(f"crop {crop} is larger than the resized frame {h}x{w}")
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    if crops == 1:
        return [(top, left)]
    if h > w:
        return [(0, left), (top, left), (h - crop, left)]
    return [(top, 0), (top, left), (top, w - crop)]


def preprocess(clip: np.ndarray, cfg: dict, crops: int) -> list[torch.Tensor]:
    """T x H x W x 3 uint8 -> one C x T x crop x crop float32 tensor per crop."""
    x = torch.from_numpy(clip).permute(0, 3, 1, 2).to(torch.float32) / 255.0 * float(cfg.get("value_scale", 1.0))
    h, w = resized_size(x.shape[2], x.shape[3], cfg["resize"])
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=False)
    mean = torch.tensor(cfg["mean"], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], dtype=torch.float32).view(1, 3, 1, 1)
    c = int(cfg["crop"])
    views = []
    for top, left in crop_offsets(h, w, c, crops):
        v = (x[:, :, top : top + c, left : left + c] - mean) / std
        views.append(v.permute(1, 0, 2, 3).contiguous())
    return views


def aggregate(logits: torch.Tensor, how: str) -> torch.Tensor:
    logits = logits.to(torch.float64)
    if how == "prob":
        return logits.softmax(dim=1).mean(dim=0)
    if how == "logit":
        return logits.mean(dim=0).softmax(dim=0)
    if how == "max":
        return logits.softmax(dim=1).max(dim=0).values
    raise ValueError(how)


def load_config(spec: str, models_dir: Path | None) -> tuple[dict, list[str], Path]:
    path = Path(spec)
    if not path.suffix == ".json" and not path.exists():
        path = ROOT / "configs" / f"{spec}.json"
    cfg = json.loads(path.read_text())
    labels = cfg.get("labels") or []
    if not labels and cfg.get("labels_file"):
        text = (path.parent / cfg["labels_file"]).read_text()
        labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise SystemExit(f"{path}: no labels")
    beside = path.parent / cfg["file"]
    # As vidcls resolves it: beside the config, else in the models/ next to its configs/.
    model_path = beside if beside.exists() else (models_dir or path.parent.parent / "models") / cfg["file"]
    return cfg, labels, model_path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("videos", nargs="+")
    p.add_argument("--model", required=True, help="configs/NAME.json, or NAME (resolved in configs/)")
    p.add_argument("--models-dir", type=Path, help="where the TorchScript file is when not beside the config (default: models/)")
    p.add_argument("--clips", type=int, default=1)
    p.add_argument("--crops", type=int, choices=[1, 3], default=1)
    p.add_argument("--frames", type=int, help="frames per clip (default: the config's)")
    p.add_argument("--aggregate", choices=["prob", "logit", "max"], default="prob")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dump-inputs", type=Path, metavar="DIR")
    args = p.parse_args(argv)

    cfg, labels, model_path = load_config(args.model, args.models_dir)
    frames = args.frames or int(cfg["frames"])
    if frames < int(cfg["min_frames"]):
        raise SystemExit(f"{cfg['name']} needs at least {cfg['min_frames']} frames per clip")
    if frames != int(cfg["frames"]) and not cfg.get("variable_frames", True):
        raise SystemExit(f"{cfg['name']} takes exactly {cfg['frames']} frames per clip")
    if args.clips < 1 or args.batch_size < 1 or args.top_k < 1:
        raise SystemExit("--clips, --batch-size and --top-k must be at least 1")
    model = torch.jit.load(str(model_path), map_location=args.device).eval()
    if args.dump_inputs:
        args.dump_inputs.mkdir(parents=True, exist_ok=True)
    sampling = cfg["sampling"]

    failed = 0
    for vi, path in enumerate(args.videos):
        stage = "decode"
        try:
            t0 = time.perf_counter()
            decoded = decode(path)
            clips = plan(decoded, frames, sampling.get("fps"), int(sampling.get("stride", 1)), args.clips)
            t1 = time.perf_counter()
            stage = "preprocess"
            views = []
            for idx, _, _ in clips:
                views.extend(preprocess(np.stack([decoded.frames[k] for k in idx]), cfg, args.crops))
            batch = torch.stack(views)
            if args.dump_inputs:
                np.save(args.dump_inputs / f"{vi}.npy", batch.numpy())
            t2 = time.perf_counter()
            stage = "model"
            outs = []
            with torch.no_grad():
                for s in range(0, len(batch), args.batch_size):
                    outs.append(model(batch[s : s + args.batch_size].to(args.device)).float().cpu())
            logits = torch.cat(outs)
            if logits.shape[1] != len(labels):
                raise SystemExit(f"model outputs {logits.shape[1]} classes, config has {len(labels)} labels")
            scores = aggregate(logits, args.aggregate)
            t3 = time.perf_counter()
        except (OSError, ValueError, av.FFmpegError, RuntimeError) as e:
            print(json.dumps({"path": path, "stage": stage, "error": str(e)}), flush=True)
            failed += 1
            continue
        order = sorted(range(len(labels)), key=lambda i: (-float(scores[i]), i))[: args.top_k]
        record = {
            "path": path,
            "model": cfg["name"],
            "top_k": [{"label": labels[i], "index": i, "score": float(scores[i])} for i in order],
            "clips": args.clips,
            "crops": args.crops,
            "duration": decoded.duration,
            "frame_times": [times for _, times, _ in clips],
            "frame_indices": [idx for idx, _, _ in clips],
            "padded_frames": sum(pad for _, _, pad in clips),
            "warnings": [],
            "scores": [float(v) for v in scores],
            "timings": {
                "decode_ms": round((t1 - t0) * 1e3, 3),
                "preprocess_ms": round((t2 - t1) * 1e3, 3),
                "model_ms": round((t3 - t2) * 1e3, 3),
            },
        }
        print(json.dumps(record), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        # `reference_predict.py ... | head`: the reader left; stop quietly, as vidcls does.
        sys.stderr.close()
        sys.exit(0)
