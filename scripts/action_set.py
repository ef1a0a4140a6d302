#!/usr/bin/env python3
"""A small labelled video set of actions the built-in model never saw, for `vidcls train`.

Six actions, each told apart only over several frames (one frame is a blob somewhere):

    orbit_cw, orbit_ccw     the object circles a point, clockwise or counter-clockwise
    diagonal_up, diagonal_down   it crosses the frame bottom-left -> top-right, or back
    pulse                   it grows, then shrinks back (a heartbeat)
    swing                   it goes one way, then comes back (a pendulum along one axis)

Two more, only with --labels (the default set stays as it was):

    speed_up, slow_down     it crosses the frame along a random axis from rest, faster and
                            faster, or from full speed to rest: the same path in the same time,
                            told apart only by how the speed changes

Layout: OUT/<label>/<label>_<index>.<ext> plus OUT/manifest.csv (path,label,split). Shapes,
colours, backgrounds, sizes, frame rates and codecs (mp4, webm, avi, mkv) vary per clip;
`--style b` uses other shapes and backgrounds than style `a`, so a model can be checked on a
style it did not train on. Clip i is drawn from (seed, style, i): the set is the same whatever
`--jobs` is.

    .venv/bin/python scripts/action_set.py --out /tmp/acts --per-class 30 --seed 1
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from motion_dataset import encode, extension  # noqa: E402  (one encoder for every generator)

LABELS = ["orbit_cw", "orbit_ccw", "diagonal_up", "diagonal_down", "pulse", "swing"]
SPEED_LABELS = ["speed_up", "slow_down"]
SIZES = [(160, 120), (192, 108), (176, 144), (200, 150), (240, 180), (128, 128)]
RATES = [15.0, 24.0, 25.0, 30.0]
CODECS = ["h264", "vp9", "mjpeg", "hevc"]  # mp4, webm, avi, mkv
SHAPES = {"a": ["disc", "square", "diamond"], "b": ["ring", "cross", "bar"]}
BACKGROUNDS = {"a": ["flat", "vgradient", "noise"], "b": ["checker", "hstripes", "dots"]}


def background(kind: str, rng, h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    if kind == "flat":
        t = np.zeros((h, w), np.float32)
    elif kind == "vgradient":
        t = y / h
    elif kind == "noise":
        small = rng.uniform(0, 1, (h // 8 + 2, w // 8 + 2)).astype(np.float32)
        t = np.kron(small, np.ones((8, 8), np.float32))[:h, :w]
    elif kind == "checker":
        s = int(rng.integers(8, 20))
        t = ((x // s + y // s) % 2).astype(np.float32)
    elif kind == "hstripes":
        t = (np.sin(y / rng.uniform(3, 8)) > 0).astype(np.float32)
    else:  # dots
        s = int(rng.integers(10, 18))
        t = (((x % s) - s / 2) ** 2 + ((y % s) - s / 2) ** 2 < (s / 4) ** 2).astype(np.float32)
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def mask(shape: str, x, y, cx, cy, r):
    dx, dy = x - cx, y - cy
    if shape == "disc":
        return dx * dx + dy * dy < r * r
    if shape == "square":
        return (abs(dx) < r * 0.85) & (abs(dy) < r * 0.85)
    if shape == "diamond":
        return abs(dx) + abs(dy) < r
    if shape == "ring":
        d = dx * dx + dy * dy
        return (d < r * r) & (d > (r * 0.55) ** 2)
    if shape == "cross":
        return ((abs(dx) < r) & (abs(dy) < r * 0.3)) | ((abs(dy) < r) & (abs(dx) < r * 0.3))
    return (abs(dx) < r) & (abs(dy) < r * 0.4)  # bar


def trajectory(label: str, rng, t: np.ndarray, s: float):
    """Centre (x, y in units of the short side, from the frame centre) and radius scale at t."""
    n = len(t)
    u = (t - t[0]) / max(t[-1] - t[0], 1e-6)  # 0 .. 1 over the clip
    if label in ("orbit_cw", "orbit_ccw"):
        rad, phase = rng.uniform(0.15, 0.25), rng.uniform(0, 2 * math.pi)
        turn = rng.uniform(0.6, 1.0) * 2 * math.pi * (1 if label == "orbit_cw" else -1)
        a = phase + turn * u  # image y grows downwards: a growing angle turns clockwise
        return rad * np.cos(a), rad * np.sin(a), np.ones(n)
    if label in ("diagonal_up", "diagonal_down"):
        span = rng.uniform(0.35, 0.55)
        d = (u - 0.5) * span * (1 if label == "diagonal_up" else -1)
        off = rng.uniform(-0.08, 0.08)
        return d + off, -d + off, np.ones(n)
    if label in SPEED_LABELS:
        ang, span = rng.uniform(0, 2 * math.pi), rng.uniform(0.45, 0.6)
        p = u * u if label == "speed_up" else 1 - (1 - u) ** 2  # 0 .. 1 along the path
        d = span * (p - 0.5)
        return d * math.cos(ang), d * math.sin(ang), np.ones(n)
    if label == "pulse":
        k = rng.uniform(0.5, 0.9)
        return np.full(n, rng.uniform(-0.1, 0.1)), np.full(n, rng.uniform(-0.1, 0.1)), \
            1 + k * np.sin(math.pi * u)
    # swing: out and back along a random axis
    ang, amp = rng.uniform(0, math.pi), rng.uniform(0.2, 0.35)
    d = amp * np.sin(math.pi * u) - amp / 2
    return d * math.cos(ang), d * math.sin(ang), np.ones(n)


def make_clip(job):
    out, seed, style, index, label = job
    rng = np.random.default_rng([seed, ord(style), index])
    w, h = SIZES[rng.integers(len(SIZES))]
    fps = RATES[rng.integers(len(RATES))]
    codec = CODECS[index % len(CODECS)]
    secs = rng.uniform(2.0, 3.0)
    t = np.arange(int(secs * fps)) / fps
    bg = background(BACKGROUNDS[style][rng.integers(3)], rng, h, w)
    shape = SHAPES[style][rng.integers(3)]
    colour = rng.uniform(0, 255, 3)
    while np.abs(colour - bg.mean((0, 1))).sum() < 150:
        colour = rng.uniform(0, 255, 3)
    short = min(w, h)
    r0 = short * rng.uniform(0.07, 0.12)
    xs, ys, scale = trajectory(label, rng, t, short)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = np.empty((len(t), h, w, 3), np.uint8)
    for k in range(len(t)):
        m = mask(shape, x, y, w / 2 + xs[k] * short, h / 2 + ys[k] * short, r0 * scale[k])
        f = bg.copy()
        f[m] = colour
        f += rng.normal(0, 4, f.shape)
        frames[k] = np.clip(f, 0, 255).astype(np.uint8)
    rel = Path(label) / f"{label}_{index:04d}.{extension(codec)}"
    (Path(out) / label).mkdir(parents=True, exist_ok=True)
    encode(frames, fps, codec, float(rng.uniform(0, 1)), Path(out) / rel)
    return str(rel), label


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--style", choices=["a", "b"], default="a")
    ap.add_argument("--labels", default=",".join(LABELS), help="comma-separated subset")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    labels = [l for l in args.labels.split(",") if l]
    unknown = set(labels) - set(LABELS + SPEED_LABELS)
    if unknown:
        ap.error(f"unknown labels {sorted(unknown)}; known: {LABELS + SPEED_LABELS}")
    jobs = [(str(args.out), args.seed, args.style, i * len(labels) + j, lab)
            for i in range(args.per_class) for j, lab in enumerate(labels)]
    with Pool(args.jobs) as pool:
        made = pool.map(make_clip, jobs)
    with open(args.out / "manifest.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["path", "label"])
        wr.writerows(sorted(made))
    print(f"{len(made)} clips in {args.out}")


if __name__ == "__main__":
    main()
