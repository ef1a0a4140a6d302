#!/usr/bin/env python3
"""Synthetic motion benchmark: clips where only the order of frames tells the class.

Renders one object doing one of eight actions in opposite pairs (move left/right, move up/down,
rotate clockwise/counter-clockwise, zoom in/out) over a static background, and encodes each clip
with the ffmpeg CLI into a folder-per-class layout (UCF-101 style) plus a CSV manifest:

    OUT/<label>/<label>_<index>.<ext>
    OUT/manifest.csv            path,label,seed,params   (params is JSON)

Start states are drawn so that a single frame says nothing about the direction within a pair: the
object's state at the middle of the video (position, angle, size) is drawn independently of the
direction, so the frames at times D/2 - t and D/2 + t have the same distribution under both classes
of a pair, and the middle frame has exactly the same one.

`--holdout-style` draws from a generator the training never sees: other shapes, fills, colours,
textured backgrounds, speeds, resolutions, frame rates and codecs.

Everything is deterministic by `--seed`: clip `i` uses numpy's generator seeded by
`(seed, style, i)`, whatever the number of worker processes.

The rendering functions (`sample_params`, `render_frames`, `make_background`) are also used by
scripts/train_motion.py to render training clips in memory.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

LABELS = [
    "move_left", "move_right", "move_up", "move_down",
    "rotate_cw", "rotate_ccw", "zoom_in", "zoom_out",
]
# The opposite action: what the same clip shows when played backwards.
OPPOSITE = {
    "move_left": "move_right", "move_right": "move_left",
    "move_up": "move_down", "move_down": "move_up",
    "rotate_cw": "rotate_ccw", "rotate_ccw": "rotate_cw",
    "zoom_in": "zoom_out", "zoom_out": "zoom_in",
}
PAIRS = [("move_left", "move_right"), ("move_up", "move_down"),
         ("rotate_cw", "rotate_ccw"), ("zoom_in", "zoom_out")]

STYLES = ("train", "holdout")

# Objects stay fully inside the central square (what a centre crop of the short side sees)
# during this window around the middle of the video.
VISIBLE_WINDOW = 1.4
MARGIN = 0.02


@dataclass(frozen=True)
class Style:
    shapes: tuple
    fills: tuple
    backgrounds: tuple
    sizes: tuple            # (width, height) choices
    fps: tuple
    codecs: tuple           # (codec name, weight)
    move_speed: tuple       # short sides per second
    rotate_speed: tuple     # degrees per second
    zoom_rate: tuple        # natural log of the size per second
    radius: tuple           # object radius in short sides
    noise: tuple            # per-frame pixel noise std, 0..255 scale
    duration: tuple = (2.0, 3.0)


TRAIN = Style(
    shapes=("square", "rect", "triangle", "pentagon", "star5", "cross", "semicircle", "dotdisc",
            "polygon", "blob"),
    fills=("solid", "marker", "stripe"),
    backgrounds=("plain", "gradient", "noise", "checker", "stripes", "blocks"),
    sizes=((128, 96), (160, 120), (176, 144), (240, 180)),
    fps=(24.0, 25.0, 30.0),
    codecs=(("h264", 0.7), ("vp9", 0.15), ("mjpeg", 0.15)),
    move_speed=(0.14, 0.32),
    rotate_speed=(80.0, 200.0),
    zoom_rate=(0.5, 1.0),
    radius=(0.10, 0.18),
    noise=(0.0, 4.0),
)

HOLDOUT = Style(
    shapes=("trapezoid", "arrow", "lshape", "tshape", "crescent", "kite", "cshape"),
    fills=("solid", "two_tone", "shaded"),
    backgrounds=("dots", "plaid", "clutter", "rings"),
    sizes=((192, 144), (200, 150), (256, 144), (320, 240)),
    fps=(20.0, 30000 / 1001, 50.0),
    codecs=(("mpeg4", 0.3), ("hevc", 0.3), ("vp8", 0.2), ("mpeg2", 0.2)),
    move_speed=(0.11, 0.38),
    rotate_speed=(65.0, 230.0),
    zoom_rate=(0.45, 1.1),
    radius=(0.09, 0.2),
    noise=(0.0, 6.0),
)


def style_of(name: str) -> Style:
    return {"train": TRAIN, "holdout": HOLDOUT}[name]


# ---------------------------------------------------------------------------------------------
# Shapes: pseudo signed distance in object units (about 1 = the object's radius); < 0 inside.


def _poly(u, v, verts):
    """Convex polygon: max of the distances to its edges' lines (either vertex order)."""
    area = sum(verts[i][0] * verts[(i + 1) % len(verts)][1] - verts[(i + 1) % len(verts)][0] * verts[i][1]
               for i in range(len(verts)))
    if area < 0:
        verts = verts[::-1]
    d = None
    n = len(verts)
    for i in range(n):
        (x0, y0), (x1, y1) = verts[i], verts[(i + 1) % n]
        ex, ey = x1 - x0, y1 - y0
        ln = math.hypot(ex, ey)
        nx, ny = ey / ln, -ex / ln          # outward normal for a counter-clockwise polygon
        di = (u - x0) * nx + (v - y0) * ny
        d = di if d is None else np.maximum(d, di)
    return d


def _regular(n, r, phase=0.0):
    return [(r * math.cos(phase + 2 * math.pi * k / n), r * math.sin(phase + 2 * math.pi * k / n))
            for k in range(n)]


def _box(u, v, cx, cy, hx, hy):
    return np.maximum(np.abs(u - cx) - hx, np.abs(v - cy) - hy)


def shape_parameters(shape: str, rng):
    """Random parameters of the randomly drawn shapes (a list, kept in the manifest)."""
    if shape == "polygon":                     # convex: 3 to 7 corners on the unit circle
        n = int(rng.integers(3, 8))
        while True:
            a = np.sort(rng.uniform(0, 2 * math.pi, n))
            gaps = np.diff(np.concatenate([a, a[:1] + 2 * math.pi]))
            if gaps.min() > 0.35 and gaps.max() < math.pi * 0.9:
                return [round(float(x), 4) for x in a]
    if shape == "blob":                        # radius 1 + sum a_k cos(k theta + phi_k), k = 2..4
        while True:
            amp = rng.uniform(0, 0.2, 3)
            if amp.max() >= 0.12:
                break
        phase = rng.uniform(0, 2 * math.pi, 3)
        return [round(float(x), 4) for x in np.concatenate([amp, phase])]
    return []


def shape_distance(shape: str, u, v, sp=()):
    if shape == "polygon":
        return _poly(u, v, [(0.95 * math.cos(a), 0.95 * math.sin(a)) for a in sp])
    if shape == "blob":
        th = np.arctan2(v, u)
        r = 0.82 * (1 + sum(sp[k] * np.cos((k + 2) * th + sp[3 + k]) for k in range(3)))
        return (np.hypot(u, v) - r) * 0.8
    if shape == "trapezoid":
        return _poly(u, v, [(-0.95, 0.6), (0.95, 0.6), (0.45, -0.6), (-0.45, -0.6)])
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.72
    if shape == "rect":
        return _box(u, v, 0, 0, 0.95, 0.42)
    if shape == "triangle":
        return _poly(u, v, _regular(3, 1.0, -math.pi / 2))
    if shape == "pentagon":
        return _poly(u, v, _regular(5, 0.92, -math.pi / 2))
    if shape == "star5":
        r = np.hypot(u, v)
        a = np.arctan2(v, u) + math.pi / 2
        k = 2 * math.pi / 5
        f = np.abs(((a % k) + k) % k - k / 2) / (k / 2)      # 0 at a point, 1 between points
        return (r - (1.0 - 0.55 * f)) * 0.8
    if shape == "cross":
        return np.minimum(_box(u, v, 0, 0, 0.9, 0.3), _box(u, v, 0, 0, 0.3, 0.9))
    if shape == "semicircle":
        return np.maximum(np.hypot(u, v + 0.3) - 1.0, -(v + 0.3))
    if shape == "dotdisc":
        return np.hypot(u, v) - 0.88
    if shape == "arrow":
        shaft = _box(u, v, -0.3, 0, 0.6, 0.2)
        head = _poly(u, v, [(0.25, -0.6), (1.0, 0.0), (0.25, 0.6)])
        return np.minimum(shaft, head)
    if shape == "lshape":
        return np.minimum(_box(u, v, -0.55, 0, 0.3, 0.9), _box(u, v, 0.0, 0.6, 0.85, 0.3))
    if shape == "tshape":
        return np.minimum(_box(u, v, 0, -0.6, 0.9, 0.28), _box(u, v, 0, 0.1, 0.28, 0.8))
    if shape == "crescent":
        return np.maximum(np.hypot(u, v) - 0.95, -(np.hypot(u - 0.45, v + 0.1) - 0.75))
    if shape == "kite":
        return _poly(u, v, [(0.0, -1.0), (0.55, -0.25), (0.0, 0.9), (-0.55, -0.25)])
    if shape == "cshape":
        ring = np.abs(np.hypot(u, v) - 0.7) - 0.24
        gap = _box(u, v, 0.7, 0, 0.5, 0.25)
        return np.maximum(ring, -gap)
    raise ValueError(f"unknown shape {shape}")


ALL_SHAPES = TRAIN.shapes + HOLDOUT.shapes


def shape_centroid(shape: str, sp=()):
    """Centre of area of a shape: objects turn and scale about it, so a rotating or zooming
    object's centre stays put and only moving objects travel."""
    g = np.linspace(-1.6, 1.6, 81, dtype=np.float32)
    u, v = np.meshgrid(g, g)
    inside = shape_distance(shape, u, v, sp) < 0
    if not inside.any():
        raise ValueError(f"shape {shape} {sp} is empty")
    return [round(float(u[inside].mean()), 4), round(float(v[inside].mean()), 4)]


# ---------------------------------------------------------------------------------------------
# Colours and backgrounds (float32 RGB in [0, 1]).


def _hsv(h, s, v):
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def random_colour(rng, style: str):
    if style == "train":       # saturated, bright
        return _hsv(rng.random(), rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))
    kind = rng.integers(3)     # held out: greys, pastels, dark colours
    if kind == 0:
        g = rng.uniform(0.05, 0.95)
        return (g, g, g)
    if kind == 1:
        return _hsv(rng.random(), rng.uniform(0.15, 0.45), rng.uniform(0.8, 1.0))
    return _hsv(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.2, 0.5))


def _grid(h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return (x + 0.5) / h, (y + 0.5) / h


def _mix(c0, c1, t):
    c0 = np.asarray(c0, np.float32)
    c1 = np.asarray(c1, np.float32)
    return c0 + (c1 - c0) * t[..., None]


def _smooth_noise(rng, h, w, cells):
    g = rng.random((cells + 2, int(cells * w / h) + 3)).astype(np.float32)
    ys = np.linspace(0, cells, h, dtype=np.float32)
    xs = np.linspace(0, cells * w / h, w, dtype=np.float32)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    a = g[y0][:, x0]
    b = g[y0][:, x0 + 1]
    c = g[y0 + 1][:, x0]
    d = g[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def make_background(kind: str, rng, h: int, w: int, style: str):
    """Returns (image HxWx3 float32, palette: the colours an object must stand out from)."""
    c0, c1 = random_colour(rng, style), random_colour(rng, style)
    x, y = _grid(h, w)
    ang = rng.uniform(0, math.pi)
    along = x * math.cos(ang) + y * math.sin(ang)
    if kind == "plain":
        return np.broadcast_to(np.asarray(c0, np.float32), (h, w, 3)).copy(), [c0]
    if kind == "gradient":
        t = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
        return _mix(c0, c1, t), [c0, c1]
    if kind == "noise":
        t = _smooth_noise(rng, h, w, int(rng.integers(3, 12)))
        img = _mix(c0, c1, t) + rng.normal(0, 0.03, (h, w, 1)).astype(np.float32)
        return img, [c0, c1]
    if kind == "checker":
        cell = rng.uniform(0.06, 0.25)
        across = -x * math.sin(ang) + y * math.cos(ang)
        t = ((np.floor(along / cell) + np.floor(across / cell)) % 2).astype(np.float32)
        return _mix(c0, c1, t), [c0, c1]
    if kind == "blocks":                       # static rectangles of other colours
        img = np.broadcast_to(np.asarray(c0, np.float32), (h, w, 3)).copy()
        for _ in range(int(rng.integers(5, 12))):
            c = random_colour(rng, style)
            bx, by = rng.uniform(0, w / h), rng.uniform(0, 1)
            hx, hy = rng.uniform(0.03, 0.2, 2)
            img[(np.abs(x - bx) < hx) & (np.abs(y - by) < hy)] = c
        return img, [c0]
    if kind == "stripes":
        period = rng.uniform(0.05, 0.3)
        t = (np.sin(2 * math.pi * along / period) > 0).astype(np.float32)
        return _mix(c0, c1, t), [c0, c1]
    # held-out textures
    if kind == "dots":
        cell = rng.uniform(0.07, 0.16)
        fx, fy = (x / cell) % 1 - 0.5, (y / cell) % 1 - 0.5
        t = (np.hypot(fx, fy) < rng.uniform(0.2, 0.4)).astype(np.float32)
        return _mix(c0, c1, t), [c0, c1]
    if kind == "plaid":
        p1, p2 = rng.uniform(0.06, 0.2, 2)
        across = -x * math.sin(ang) + y * math.cos(ang)
        t = 0.5 + 0.25 * np.sin(2 * math.pi * along / p1) + 0.25 * np.sin(2 * math.pi * across / p2)
        return _mix(c0, c1, t), [c0, c1]
    if kind == "rings":
        cx, cy = rng.uniform(0, w / h), rng.uniform(0, 1)
        period = rng.uniform(0.06, 0.2)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * np.hypot(x - cx, y - cy) / period)
        return _mix(c0, c1, t), [c0, c1]
    if kind == "clutter":
        img = _mix(c0, c1, _smooth_noise(rng, h, w, 3))
        for _ in range(int(rng.integers(6, 14))):
            c = random_colour(rng, style)
            ex, ey = rng.uniform(0, w / h), rng.uniform(0, 1)
            rx, ry = rng.uniform(0.03, 0.15, 2)
            m = (((x - ex) / rx) ** 2 + ((y - ey) / ry) ** 2) < 1
            img[m] = c
        return img, [c0, c1]          # the object is drawn on top; stand out from the base
    raise ValueError(f"unknown background {kind}")


ALL_BACKGROUNDS = TRAIN.backgrounds + HOLDOUT.backgrounds


def _luma(c):
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _contrast(c, palette):
    """How well colour c stands out from every colour of a palette (and from their mean, which
    blended textures show): luminance difference first, colour distance second."""
    ps = list(palette) + [tuple(np.mean(np.asarray(palette, float), 0))]
    return min(abs(_luma(c) - _luma(p)) + 0.25 * float(np.linalg.norm(np.subtract(c, p)))
               for p in ps)


def _far_colour(rng, style, palette, min_contrast=0.3):
    best, best_s = None, -1.0
    for _ in range(60):
        c = random_colour(rng, style)
        s = _contrast(c, palette)
        if s >= min_contrast:
            return c
        if s > best_s:
            best, best_s = c, s
    return best


# ---------------------------------------------------------------------------------------------
# Parameters of one clip.


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def sample_params(rng, label: str, style: str = "train", overrides: dict | None = None) -> dict:
    """Draws everything about one clip. `overrides` replaces style choices (shapes, sizes, ...)."""
    st = style_of(style)
    o = overrides or {}
    shapes = o.get("shapes") or st.shapes
    backgrounds = o.get("backgrounds") or st.backgrounds
    sizes = o.get("sizes") or st.sizes
    fpss = o.get("fps") or st.fps
    speed_scale = o.get("speed_scale", (1.0, 1.0))
    w, h = _pick(rng, sizes)
    fps = float(_pick(rng, fpss))
    duration = float(rng.uniform(*st.duration))
    nframes = max(2, int(round(duration * fps)))
    duration = nframes / fps
    codecs = o.get("codecs") or st.codecs
    names = [c for c, _ in codecs]
    weights = np.array([wt for _, wt in codecs], float)
    codec = names[int(rng.choice(len(names), p=weights / weights.sum()))]

    action = label.split("_")[0]
    sign = {"move_left": -1, "move_right": 1, "move_up": -1, "move_down": 1,
            "rotate_cw": 1, "rotate_ccw": -1, "zoom_in": 1, "zoom_out": -1}[label]
    radius = float(rng.uniform(*st.radius))
    half = VISIBLE_WINDOW / 2
    speed = 0.0
    if action == "move":
        speed = float(rng.uniform(*st.move_speed) * rng.uniform(*speed_scale))
        travel = speed * VISIBLE_WINDOW
        lo, hi = radius + MARGIN + travel / 2, 1 - radius - MARGIN - travel / 2
        if hi < lo:                                   # too fast for this size: slow down to fit
            speed = max(0.0, (1 - 2 * (radius + MARGIN))) / VISIBLE_WINDOW
            lo = hi = 0.5
        along = float(rng.uniform(lo, hi))            # middle of the trajectory
        across = float(rng.uniform(radius + MARGIN, 1 - radius - MARGIN))
        cx, cy = (along, across) if label in ("move_left", "move_right") else (across, along)
    elif action == "rotate":
        speed = float(rng.uniform(*st.rotate_speed) * rng.uniform(*speed_scale))
        cx, cy = rng.uniform(radius + MARGIN, 1 - radius - MARGIN, 2)
    else:
        speed = float(rng.uniform(*st.zoom_rate) * rng.uniform(*speed_scale))
        # middle size log-uniform in a range symmetric about its geometric centre
        radius = float(math.exp(rng.uniform(math.log(st.radius[0] * 1.1), math.log(st.radius[1]))))
        rmax = min(radius * math.exp(speed * half), 0.45)
        cx, cy = rng.uniform(rmax + MARGIN, 1 - rmax - MARGIN, 2)
    shape = _pick(rng, shapes)
    sp = shape_parameters(shape, rng)
    bg_kind = _pick(rng, backgrounds)
    bg_seed = int(rng.integers(2**31))
    _, palette = make_background(bg_kind, np.random.default_rng(bg_seed), 8, 8, style)
    colour = _far_colour(rng, style, palette)
    colour2 = _far_colour(rng, style, [colour], 0.2)
    params = {
        "label": label, "style": style, "width": int(w), "height": int(h), "fps": fps,
        "frames": nframes, "duration": duration, "codec": codec,
        "shape": shape, "shape_params": sp, "shape_centre": shape_centroid(shape, sp),
        "fill": _pick(rng, o.get("fills") or st.fills),
        "colour": [round(float(c), 4) for c in colour],
        "colour2": [round(float(c), 4) for c in colour2],
        "radius": round(radius, 5), "cx": round(float(cx), 5), "cy": round(float(cy), 5),
        "angle": round(float(rng.uniform(0, 360)), 3),
        "action": action, "sign": sign, "speed": round(speed, 5),
        "background": bg_kind, "bg_seed": bg_seed,
        "noise": round(float(rng.uniform(*st.noise)), 3), "noise_seed": int(rng.integers(2**31)),
        "quality": round(float(rng.random()), 4),
    }
    return params


def state_at(p: dict, t: float):
    """Object centre (short sides), radius (short sides) and angle (degrees) at time t."""
    dt = t - p["duration"] / 2
    cx, cy, r, a = p["cx"], p["cy"], p["radius"], p["angle"]
    if p["action"] == "move":
        d = p["sign"] * p["speed"] * dt
        if p["label"] in ("move_left", "move_right"):
            cx += d
        else:
            cy += d
    elif p["action"] == "rotate":
        a += p["sign"] * p["speed"] * dt      # with y pointing down, a growing angle turns clockwise
    else:
        r *= math.exp(p["sign"] * p["speed"] * dt)
    return cx, cy, r, a


def render_frames(p: dict, times, background=None) -> np.ndarray:
    """Renders the frames at `times` (seconds): uint8 array T x H x W x 3."""
    h, w = p["height"], p["width"]
    if background is None:
        background, _ = make_background(p["background"], np.random.default_rng(p["bg_seed"]), h, w,
                                        p["style"])
    noise_rng = np.random.default_rng(p["noise_seed"])
    c1 = np.asarray(p["colour"], np.float32)
    c2 = np.asarray(p["colour2"], np.float32)
    x0 = (w - h) / 2                                   # left edge of the central square, pixels
    ou, ov = p.get("shape_centre", (0.0, 0.0))
    out = np.empty((len(times), h, w, 3), np.uint8)
    for i, t in enumerate(times):
        cx, cy, r, a = state_at(p, t)
        img = background.copy()
        rp = r * h                                     # radius in pixels
        px, py = x0 + cx * h, cy * h
        ext = rp * 1.5 + 2
        xa, xb = max(0, int(px - ext)), min(w, int(px + ext) + 1)
        ya, yb = max(0, int(py - ext)), min(h, int(py + ext) + 1)
        if xb > xa and yb > ya:
            ys, xs = np.mgrid[ya:yb, xa:xb].astype(np.float32)
            dx, dy = xs + 0.5 - px, ys + 0.5 - py
            ca, sa = math.cos(math.radians(a)), math.sin(math.radians(a))
            u = (ca * dx + sa * dy) / rp + ou
            v = (-sa * dx + ca * dy) / rp + ov
            dist = shape_distance(p["shape"], u, v, p.get("shape_params", ()))
            alpha = np.clip(0.5 - dist * rp, 0.0, 1.0)
            col = _fill(p, u, v, rp, c1, c2)
            patch = img[ya:yb, xa:xb]
            img[ya:yb, xa:xb] = patch + (col - patch) * alpha[..., None]
        if p["noise"] > 0:
            img = img + noise_rng.standard_normal((h, w, 1), dtype=np.float32) * (p["noise"] / 255)
        out[i] = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def _fill(p, u, v, rp, c1, c2):
    fill = p["fill"]
    if fill == "solid":
        return c1
    if fill == "marker":          # an off-centre dot shows the orientation of symmetric shapes
        m = np.clip(0.5 - (np.hypot(u - 0.42, v) - 0.24) * rp, 0, 1)
    elif fill == "stripe":
        m = np.clip(0.5 - (np.abs(v - 0.25) - 0.14) * rp, 0, 1)
    elif fill == "two_tone":
        m = np.clip(0.5 + u * rp, 0, 1)
    elif fill == "shaded":
        m = np.clip((u + 1) / 2, 0, 1)
    else:
        raise ValueError(f"unknown fill {fill}")
    if p["shape"] == "dotdisc" and fill == "solid":
        m = np.clip(0.5 - (np.hypot(u - 0.42, v) - 0.24) * rp, 0, 1)
    return c1 + (c2 - c1) * m[..., None]


def frame_times(p: dict):
    return [k / p["fps"] for k in range(p["frames"])]


# ---------------------------------------------------------------------------------------------
# Encoding.

CODECS = {
    # name: (extension, ffmpeg output args; q in [0, 1) picks a quality inside a range)
    "h264": ("mp4", lambda q: ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(int(18 + 12 * q)),
                               "-pix_fmt", "yuv420p", "-movflags", "+faststart"]),
    "vp9": ("webm", lambda q: ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                               "-crf", str(int(28 + 12 * q)), "-b:v", "0", "-pix_fmt", "yuv420p"]),
    "mjpeg": ("avi", lambda q: ["-c:v", "mjpeg", "-q:v", str(int(3 + 6 * q)), "-pix_fmt", "yuvj420p"]),
    "mpeg4": ("avi", lambda q: ["-c:v", "mpeg4", "-q:v", str(int(3 + 6 * q)), "-pix_fmt", "yuv420p"]),
    "hevc": ("mkv", lambda q: ["-c:v", "libx265", "-preset", "ultrafast", "-crf", str(int(20 + 10 * q)),
                               "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"]),
    "vp8": ("webm", lambda q: ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
                               "-crf", str(int(8 + 20 * q)), "-b:v", "1M", "-pix_fmt", "yuv420p"]),
    "mpeg2": ("mkv", lambda q: ["-c:v", "mpeg2video", "-q:v", str(int(3 + 6 * q)), "-pix_fmt", "yuv420p"]),
    "theora": ("ogv", lambda q: ["-c:v", "libtheora", "-q:v", str(int(5 + 4 * q)), "-pix_fmt", "yuv420p"]),
}


def fps_arg(fps: float) -> str:
    if abs(fps - 30000 / 1001) < 1e-6:
        return "30000/1001"
    return f"{fps:g}"


def encode(frames: np.ndarray, fps: float, codec: str, quality: float, path: Path, threads: int = 1):
    ext, args = CODECS[codec]
    n, h, w, _ = frames.shape
    cmd = ["ffmpeg", "-y", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", fps_arg(fps), "-i", "-", *args(quality),
           "-threads", str(threads), "-an", str(path)]
    proc = subprocess.run(cmd, input=frames.tobytes(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed on {path}: {proc.stderr.decode(errors='replace')}")


def extension(codec: str) -> str:
    return CODECS[codec][0]


# ---------------------------------------------------------------------------------------------
# Command line.


def clip_rng(seed: int, style: str, index: int):
    return np.random.default_rng([seed, STYLES.index(style), index])


def _make_one(job):
    out, seed, style, index, label, overrides = job
    rng = clip_rng(seed, style, index)
    p = sample_params(rng, label, style, overrides)
    frames = render_frames(p, frame_times(p))
    rel = Path(label) / f"{label}_{index:05d}.{extension(p['codec'])}"
    encode(frames, p["fps"], p["codec"], p["quality"], Path(out) / rel)
    return str(rel), label, seed, index, p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output folder")
    ap.add_argument("--n-per-class", type=int, required=True, help="clips per label")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--holdout-style", action="store_true",
                    help="draw from the held-out generator (shapes, fills, colours, backgrounds, "
                         "speeds, sizes, frame rates and codecs the training never sees)")
    ap.add_argument("--labels", nargs="+", choices=LABELS, default=LABELS,
                    help="only these labels")
    ap.add_argument("--codec", choices=sorted(CODECS), help="one codec for every clip")
    ap.add_argument("--shapes", nargs="+", choices=ALL_SHAPES, help="override the style's shapes")
    ap.add_argument("--backgrounds", nargs="+", choices=ALL_BACKGROUNDS,
                    help="override the style's backgrounds")
    ap.add_argument("--size", help="one frame size for every clip, WxH (even numbers)")
    ap.add_argument("--fps", type=float, help="one frame rate for every clip")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = ap.parse_args(argv)

    style = "holdout" if args.holdout_style else "train"
    overrides = {}
    if args.codec:
        overrides["codecs"] = ((args.codec, 1.0),)
    if args.shapes:
        overrides["shapes"] = tuple(args.shapes)
    if args.backgrounds:
        overrides["backgrounds"] = tuple(args.backgrounds)
    if args.size:
        w, h = (int(s) for s in args.size.lower().split("x"))
        if w % 2 or h % 2 or h > w:
            ap.error("--size needs even numbers and width >= height")
        overrides["sizes"] = ((w, h),)
    if args.fps:
        overrides["fps"] = (args.fps,)

    for label in args.labels:
        (args.out / label).mkdir(parents=True, exist_ok=True)
    # Interleave labels so that any prefix of the manifest is balanced.
    jobs = [(str(args.out), args.seed, style, k * len(LABELS) + LABELS.index(label), label, overrides)
            for k in range(args.n_per_class) for label in args.labels]
    t0 = time.time()
    rows = []
    with Pool(args.jobs) as pool:
        for i, (rel, label, seed, index, p) in enumerate(pool.imap(_make_one, jobs, chunksize=4)):
            rows.append((rel, label, seed, json.dumps({"index": index, **p}, sort_keys=True)))
            if (i + 1) % 200 == 0:
                print(f"{i + 1}/{len(jobs)} clips, {time.time() - t0:.0f}s", file=sys.stderr)
    with open(args.out / "manifest.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["path", "label", "seed", "params"])
        wr.writerows(rows)
    dt = time.time() - t0
    print(f"{len(rows)} clips ({style} style, seed {args.seed}) in {dt:.1f}s "
          f"({60 * len(rows) / max(dt, 1e-9):.0f}/min) -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
