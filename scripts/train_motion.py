#!/usr/bin/env python3
"""Trains vidcls's default model on the synthetic motion benchmark, on CPU, with a fixed seed.

The network (`r2plus1d_tiny`) is a small stack of factorized (2+1)D convolutions: every
t x k x k convolution is a 1 x k x k spatial convolution, batch norm and ReLU, then a t x 1 x 1
temporal convolution (R(2+1)D). Global average pooling over time and space makes it accept any clip
length; a linear head gives the 8 classes.

Training clips are rendered in memory by scripts/motion_dataset.py's renderer and go through what
the inference pipeline does to a decoded video: frames picked at the config's rate (the last frame
whose timestamp is <= each sampling time), bilinear resize of the short side (no antialias), centre
crop, mean/std normalisation. Augmentation aims at generators the model never sees: random frame
sizes and rates before the resize, codec-like damage (JPEG quantisation with chroma subsampling,
blur, noise), random colours, and the label-mapping symmetries of the task (mirror, transpose and
time reversal turn one action into another).

    python scripts/train_motion.py                 # 3D model  -> models/motion.pt, configs/motion.json
    python scripts/train_motion.py --frames 1      # 2D model  -> models/motion_2d.pt, configs/motion_2d.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.io import decode_jpeg, encode_jpeg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import motion_dataset as md  # noqa: E402
import precision_record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# What the inference pipeline is told to do (written into the config).
SAMPLING_FPS = 10.0
DEFAULT_FRAMES = 8
STRIDE = 1
SIZE = 64            # short side after the resize, and the centre crop
MEAN = [0.45, 0.45, 0.45]
STD = [0.225, 0.225, 0.225]

# Training-time variety of source videos (held-out sizes and rates are excluded).
TRAIN_FPS = (15.0, 24.0, 25.0, 30.0, 60.0)


def train_sizes():
    sizes = []
    for short in (72, 90, 96, 112, 120, 128, 160, 180, 216, 240):
        for aspect in (1.0, 4 / 3, 3 / 2, 16 / 9):
            w = int(round(short * aspect / 2)) * 2
            if (w, short) not in md.HOLDOUT.sizes and short % 2 == 0:
                sizes.append((w, short))
    return tuple(sizes)


# ---------------------------------------------------------------------------------------------
# The network.


def init_temporal(conv: nn.Conv3d):
    """Starts a temporal kernel as identity, forward and backward frame differences (one per
    channel in turn) plus a little noise: a fresh network then already passes change over time
    upwards, which shortens the plateau before it finds motion."""
    w = conv.weight                            # out x in x t x 1 x 1
    t = w.shape[2]
    if t < 3:
        return
    mid = t // 2
    with torch.no_grad():
        w.mul_(0.1)
        for o in range(min(w.shape[0], w.shape[1])):
            w[o, o, mid] += 1.0
            if o % 3 == 1:
                w[o, o, mid - 1] -= 1.0
            elif o % 3 == 2:
                w[o, o, mid + 1] -= 1.0


class Conv2Plus1d(nn.Module):
    """A t x k x k convolution factorized as 1 x k x k (space), BN + ReLU, t x 1 x 1 (time)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, k: int = 3, t: int = 3):
        super().__init__()
        self.spatial = nn.Conv3d(cin, cout, (1, k, k), (1, stride, stride), (0, k // 2, k // 2),
                                 bias=False)
        self.bn = nn.BatchNorm3d(cout)
        self.temporal = nn.Conv3d(cout, cout, (t, 1, 1), 1, (t // 2, 0, 0), bias=False)
        init_temporal(self.temporal)

    def forward(self, x):
        return self.temporal(F.relu(self.bn(self.spatial(x))))


class Block(nn.Module):
    """Residual block of two (2+1)D convolutions (R(2+1)D's basic block)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = Conv2Plus1d(cin, cout, stride)
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = Conv2Plus1d(cout, cout)
        self.bn2 = nn.BatchNorm3d(cout)
        self.down = nn.Sequential(nn.Conv3d(cin, cout, 1, (1, stride, stride), bias=False),
                                  nn.BatchNorm3d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.down(x))


class R2Plus1dTiny(nn.Module):
    def __init__(self, num_classes: int = 8, widths=(16, 32, 64, 128)):
        super().__init__()
        self.stem = Conv2Plus1d(3, widths[0], stride=2)
        self.stem_bn = nn.BatchNorm3d(widths[0])
        self.layers = nn.Sequential(*[Block(widths[i], widths[i + 1], 2)
                                      for i in range(len(widths) - 1)])
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(widths[-1], num_classes)

    @torch.jit.export
    def features(self, x):
        """Pooled penultimate features (N x widths[-1]): what `vidcls embed` and
        `vidcls train --freeze` read."""
        x = F.relu(self.stem_bn(self.stem(x)))
        x = self.layers(x)
        return x.mean(dim=(2, 3, 4))           # global average pooling over T, H, W

    def forward(self, x):                      # x: N x 3 x T x H x W, normalised
        return self.fc(self.dropout(self.features(x)))


# ---------------------------------------------------------------------------------------------
# The preprocessing of the inference pipeline, on uint8 frames.


def sample_indices(n_frames: int, fps: float, frames: int, rate: float, jitter: float = 0.0):
    """Frame indices of a clip of `frames` sampled at `rate`, centred (plus jitter) in a video of
    `n_frames` at `fps`."""
    duration = n_frames / fps
    length = frames * STRIDE / rate
    c = (duration - length) / 2 + jitter
    idx = []
    for i in range(frames):
        t = c + i * STRIDE / rate
        k = int(math.floor(t * fps + 1e-9))    # last frame with pts <= t
        idx.append(min(max(k, 0), n_frames - 1))
    return idx


def resize_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """x: T x 3 x H x W float in [0, 1] -> T x 3 x size x size: torchvision-style resize of the
    short side to `size`, then a centre crop of `size`."""
    h, w = x.shape[-2:]
    if h <= w:
        nh, nw = size, int(size * w / h)
    else:
        nh, nw = int(size * h / w), size
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=False)
    top, left = int(round((nh - size) / 2)), int(round((nw - size) / 2))
    return x[..., top:top + size, left:left + size]


def degrade(frames: np.ndarray, rng) -> torch.Tensor:
    """Codec-like damage, the same for every frame of a clip: uint8 T x H x W x 3 -> float
    T x 3 x H x W in [0, 1]."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
    r = rng.random()
    if r < 0.5:                                     # blockiness and chroma subsampling
        q = int(rng.integers(20, 90))
        x = torch.stack([decode_jpeg(encode_jpeg(f, quality=q)) for f in x])
    x = x.float() / 255
    if 0.5 <= r < 0.8:                              # smoothing of a low-bitrate codec
        sigma = float(rng.uniform(0.4, 1.2))
        k = np.arange(-2, 3)
        g = np.exp(-k * k / (2 * sigma * sigma))
        g = (g / g.sum()).tolist()
        xp = F.pad(x, (2, 2, 2, 2), mode="replicate")
        h, w = x.shape[-2:]
        x = sum(gi * xp[..., :, i:i + w] for i, gi in enumerate(g))
        x = sum(gi * x[..., i:i + h, :] for i, gi in enumerate(g))
    if rng.random() < 0.3:
        x = x + torch.from_numpy(rng.normal(0, rng.uniform(0.005, 0.03), x.shape).astype(np.float32))
    return x.clamp(0, 1)


def make_example(job):
    """One training clip: (uint8 3 x T x size x size, label index). An easy clip has a plain or
    gradient background, a fast object and no damage (a start that breaks the plateau)."""
    seed, index, frames, style, rate, easy, size = job
    torch.set_num_threads(1)
    rng = np.random.default_rng([seed, 1000 + md.STYLES.index(style), index])
    label = md.LABELS[index % len(md.LABELS)]
    train = style == "train"
    over = {}
    if train:
        over = {"sizes": train_sizes(), "fps": TRAIN_FPS, "speed_scale": (0.8, 1.25)}
    if easy:
        over.update(backgrounds=("plain", "gradient"), speed_scale=(1.2, 1.5))
    p = md.sample_params(rng, label, style, over)
    if easy:
        p["noise"] = 0.0
    jitter = float(rng.uniform(-0.15, 0.15)) if train else 0.0
    idx = sample_indices(p["frames"], p["fps"], frames, rate, jitter)
    rendered = md.render_frames(p, [k / p["fps"] for k in idx])
    x = resize_crop(degrade(rendered, rng) if train and not easy else
                    torch.from_numpy(rendered).permute(0, 3, 1, 2).float() / 255, size)
    x = (x * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 0, 2, 3).contiguous()
    return x.numpy(), md.LABELS.index(label)


def make_bank(seed: int, n: int, frames: int, style: str, rate: float, jobs: int,
              cache: Path | None, easy: int = 0, size: int = SIZE):
    """n clips; the first `easy` of them easy ones."""
    key = hashlib.sha256(json.dumps([seed, n, frames, style, size, rate, easy,
                                     file_sha256(Path(md.__file__)), file_sha256(Path(__file__))])
                         .encode()).hexdigest()[:16]
    if cache:
        f = cache / f"bank-{style}-{seed}-{n}-{frames}-{key}.npz"
        if f.exists():
            d = np.load(f)
            return torch.from_numpy(d["x"]), torch.from_numpy(d["y"])
    t0 = time.time()
    xs = np.empty((n, 3, frames, size, size), np.uint8)
    ys = np.empty(n, np.int64)
    work = [(seed, i, frames, style, rate, i < easy, size) for i in range(n)]
    with Pool(jobs) as pool:
        for i, (x, y) in enumerate(pool.imap(make_example, work, chunksize=16)):
            xs[i], ys[i] = x, y
    log(f"rendered {n} {style} clips of {frames} frames in {time.time() - t0:.0f}s")
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(f, x=xs, y=ys)
    return torch.from_numpy(xs), torch.from_numpy(ys)


# ---------------------------------------------------------------------------------------------
# Augmentation on batches of uint8 N x 3 x T x H x W.

IDX = {name: i for i, name in enumerate(md.LABELS)}


def _perm(mapping):
    p = list(range(len(md.LABELS)))
    for a, b in mapping.items():
        p[IDX[a]] = IDX[b]
    return torch.tensor(p)


# How each symmetry of the picture changes the label.
HFLIP = _perm({"move_left": "move_right", "move_right": "move_left",
               "rotate_cw": "rotate_ccw", "rotate_ccw": "rotate_cw"})
VFLIP = _perm({"move_up": "move_down", "move_down": "move_up",
               "rotate_cw": "rotate_ccw", "rotate_ccw": "rotate_cw"})
TRANSPOSE = _perm({"move_left": "move_up", "move_up": "move_left",
                   "move_right": "move_down", "move_down": "move_right",
                   "rotate_cw": "rotate_ccw", "rotate_ccw": "rotate_cw"})
REVERSE = _perm(md.OPPOSITE)


def augment(x: torch.Tensor, y: torch.Tensor, g: torch.Generator, reverse: bool = True):
    """Mirrors, transposition, time reversal (only with `reverse`) and colours, each symmetry
    remapping the label. Time reversal needs more than one frame: reversing a single frame leaves
    it unchanged while the label swaps, which only teaches the network noise."""
    n = x.shape[0]
    x = x.float() / 255
    y = y.clone()

    def pick(p):
        return torch.rand(n, generator=g) < p

    symmetries = [(pick(0.5), lambda v: v.flip(-1), HFLIP),
                  (pick(0.5), lambda v: v.flip(-2), VFLIP),
                  (pick(0.5), lambda v: v.transpose(-1, -2), TRANSPOSE)]
    if reverse:
        symmetries.append((pick(0.5), lambda v: v.flip(2), REVERSE))
    for mask, fn, perm in symmetries:
        if mask.any():
            x[mask] = fn(x[mask])
            y[mask] = perm[y[mask]]
    # colours: channel order, grey, inversion, brightness and contrast
    perms = torch.stack([torch.randperm(3, generator=g) for _ in range(n)])
    x = torch.gather(x, 1, perms.view(n, 3, 1, 1, 1).expand_as(x))
    grey = pick(0.1)
    if grey.any():
        x[grey] = x[grey].mean(1, keepdim=True).expand(-1, 3, -1, -1, -1)
    inv = pick(0.2)
    if inv.any():
        x[inv] = 1 - x[inv]
    contrast = (torch.rand(n, 1, 1, 1, 1, generator=g) * 0.8 + 0.6)
    bright = (torch.rand(n, 1, 1, 1, 1, generator=g) - 0.5) * 0.3
    m = x.mean(dim=(1, 2, 3, 4), keepdim=True)
    x = ((x - m) * contrast + m + bright).clamp(0, 1)
    return x, y


def normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1, 1)
    return (x - mean) / std


def predict(model, x, frames=None, batch=64):
    model.eval()
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = x[i:i + batch].to(dev).float() / 255
            if frames is not None and frames < xb.shape[2]:
                s = (xb.shape[2] - frames) // 2
                xb = xb[:, :, s:s + frames]
            out.append(model(normalise(xb)).argmax(1).cpu())
    return torch.cat(out)


def accuracy(model, x, y, frames=None):
    return (predict(model, x, frames) == y).float().mean().item()


def confusion(model, x, y):
    cm = torch.zeros(len(md.LABELS), len(md.LABELS), dtype=torch.long)
    for t, p in zip(y.tolist(), predict(model, x).tolist()):
        cm[t, p] += 1
    return "\n".join(f"  {md.LABELS[i]:<11}" + " ".join(f"{v:4d}" for v in row.tolist())
                     for i, row in enumerate(cm))


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def log(msg):
    print(f"[train] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=DEFAULT_FRAMES,
                    help="frames per clip (1 = the 2D baseline)")
    ap.add_argument("--sampling-fps", type=float, default=SAMPLING_FPS,
                    help="rate the clip's frames are taken at")
    ap.add_argument("--name", help="model name (default motion, or motion_2d with --frames 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-clips", type=int, default=8000, help="clips rendered for training")
    ap.add_argument("--val-clips", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="where to train (the export is always CPU)")
    ap.add_argument("--jobs", type=int, default=2, help="processes that render the clips")
    ap.add_argument("--easy-clips", type=int, default=800,
                    help="how many of the training clips are easy ones")
    ap.add_argument("--easy-steps", type=int, default=150,
                    help="the first steps draw from the easy clips only")
    ap.add_argument("--augment", choices=("full", "none"), default="full")
    ap.add_argument("--size", type=int, default=SIZE, help="input size (resize and crop)")
    ap.add_argument("--short-clip-prob", type=float, default=0.25,
                    help="share of batches cut to 4-7 frames (for variable clip lengths)")
    ap.add_argument("--cache", type=Path, help="keep rendered clips here between runs")
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--configs-dir", type=Path, default=ROOT / "configs")
    args = ap.parse_args(argv)
    name = args.name or ("motion_2d" if args.frames == 1 else "motion")

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    t_start = time.time()

    # The 2D model sees single frames taken from the middle of the same clips.
    rate = args.sampling_fps
    bank_frames = DEFAULT_FRAMES if args.frames == 1 else args.frames
    xtr, ytr = make_bank(args.seed, args.train_clips, bank_frames, "train", rate, args.jobs,
                         args.cache, easy=args.easy_clips, size=args.size)
    xva, yva = make_bank(args.seed + 1, args.val_clips, bank_frames, "train", rate, args.jobs,
                         args.cache, size=args.size)
    xho, yho = make_bank(args.seed + 2, args.val_clips, bank_frames, "holdout", rate, args.jobs,
                         args.cache, size=args.size)
    if args.frames == 1:
        mid = bank_frames // 2
        xva, xho = xva[:, :, mid:mid + 1], xho[:, :, mid:mid + 1]
    t_data = time.time() - t_start

    dev = torch.device(args.device)
    # channels-last 3D layout: about twice as fast for these convolutions on CPU
    cl = torch.channels_last_3d
    model = R2Plus1dTiny(len(md.LABELS)).to(dev, memory_format=cl)
    params = sum(p.numel() for p in model.parameters())
    log(f"{name}: r2plus1d_tiny, {params} parameters, {args.frames} frames")
    steps_per_epoch = len(xtr) // args.batch
    total = steps_per_epoch * args.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total,
                                                pct_start=0.15)
    g = torch.Generator().manual_seed(args.seed)
    step = 0
    t_train = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(xtr), generator=g)
        run_loss, run_acc, run_acc_epoch = 0.0, 0.0, 0.0
        for b in range(steps_per_epoch):
            if step < args.easy_steps and args.easy_clips > 0:
                ib = torch.randint(0, args.easy_clips, (args.batch,), generator=g)
            else:
                ib = order[b * args.batch:(b + 1) * args.batch]
            xb = xtr[ib]
            if args.frames == 1:               # one frame from the middle of each clip
                lo = max(0, bank_frames // 2 - 2)
                off = torch.randint(lo, min(bank_frames, lo + 4), (len(ib),), generator=g)
                xb = torch.stack([xb[i, :, o:o + 1] for i, o in enumerate(off.tolist())])
            if args.frames > 4 and torch.rand(1, generator=g).item() < args.short_clip_prob:
                t = int(torch.randint(4, args.frames, (1,), generator=g))
                s0 = int(torch.randint(0, args.frames - t + 1, (1,), generator=g))
                xb = xb[:, :, s0:s0 + t]
            if args.augment == "full":
                xb, yb = augment(xb, ytr[ib], g, reverse=xb.shape[2] > 1)
            else:
                xb, yb = xb.float() / 255, ytr[ib]
            xb, yb = xb.to(dev).contiguous(memory_format=cl), yb.to(dev)
            logits = model(normalise(xb))
            loss = F.cross_entropy(logits, yb, label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            run_loss += loss.item()
            acc = (logits.argmax(1) == yb).float().mean().item()
            run_acc += acc
            run_acc_epoch += acc
            if (b + 1) % 25 == 0:
                log(f"epoch {epoch + 1} step {b + 1}/{steps_per_epoch} loss {run_loss / 25:.3f} "
                    f"acc {run_acc / 25:.3f} ({time.time() - t_train:.0f}s)")
                run_loss, run_acc = 0.0, 0.0
        log(f"epoch {epoch + 1}: train {run_acc_epoch / steps_per_epoch:.3f} "
            f"val {accuracy(model, xva, yva):.3f} "
            f"holdout-style {accuracy(model, xho, yho):.3f} ({time.time() - t_train:.0f}s)")
    train_s = time.time() - t_train

    model = model.cpu().to(memory_format=torch.contiguous_format).eval()
    val = accuracy(model, xva, yva)
    ho = accuracy(model, xho, yho)
    log("confusion on the held-out style (rows: truth):\n" + confusion(model, xho, yho))
    # The shortest clip that still works: the smallest T whose accuracy stays within 5 points.
    min_frames = 1
    by_t = {}
    if args.frames > 1:
        for t in (2, 3, 4, 5, 6, 8, 12):
            if t < args.frames:
                by_t[t] = accuracy(model, xva, yva, frames=t)
        by_t[args.frames] = val
        min_frames = min(t for t, a in by_t.items() if a >= val - 0.05)
        log("accuracy by clip length: " + ", ".join(f"T={t}: {a:.3f}" for t, a in by_t.items()))

    args.models_dir.mkdir(parents=True, exist_ok=True)
    args.configs_dir.mkdir(parents=True, exist_ok=True)
    pt = args.models_dir / f"{name}.pt"
    scripted = torch.jit.script(model)
    scripted.save(str(pt))
    check = torch.jit.load(str(pt))
    with torch.no_grad():
        probe = normalise(xva[:4].float() / 255)
        assert torch.allclose(check(probe), model(probe), atol=1e-4)
        check(probe[:, :, :1])                     # any clip length works
    sha = hashlib.sha256(pt.read_bytes()).hexdigest()
    config = {
        "name": name,
        "architecture": "r2plus1d_tiny",
        "labels": md.LABELS,
        "label_set": "motion8",
        "frames": args.frames,
        "min_frames": min_frames,
        "variable_frames": True,
        "sampling": {"fps": rate, "stride": STRIDE},
        "resize": {"mode": "short_side", "size": args.size},
        "crop": args.size,
        "mean": MEAN,
        "std": STD,
        "value_scale": 1.0,
        "input_layout": "NCTHW",
        "file": pt.name,
        "torch_version": torch.__version__.split("+")[0],
        "weights": {"source": f"trained:scripts/train_motion.py seed={args.seed}"
                              + (f" frames={args.frames}" if args.frames != DEFAULT_FRAMES else ""),
                    "sha256": sha},
        "parameters": params,
        # What made the weights: the scripts' hashes, the recipe and what it scored on the
        # rendered monitoring sets (vidcls reads none of this).
        "training": {
            "script_sha256": file_sha256(Path(__file__)),
            "generator_sha256": file_sha256(Path(md.__file__)),
            "augment": args.augment,
            "time_reversal": args.augment == "full" and args.frames > 1,
            "train_clips": args.train_clips, "epochs": args.epochs, "batch": args.batch,
            "lr": args.lr,
            "val_accuracy": round(val, 4), "holdout_style_accuracy": round(ho, 4),
        },
    }
    # bf16 agreement with fp32 on rendered held-out clips, read by `--precision auto`.
    record = precision_record.measure(
        pt.read_bytes(), precision_record.calibration_clips(config, precision_record.default_clips(config)), name
    )
    config = precision_record.with_record(config, record)
    cfg_path = args.configs_dir / f"{name}.json"
    cfg_path.write_text(json.dumps(config, indent=2) + "\n")
    summary = {"name": name, "frames": args.frames, "parameters": params,
               "val_accuracy": round(val, 4), "holdout_style_accuracy": round(ho, 4),
               "accuracy_by_frames": {str(k): round(v, 4) for k, v in by_t.items()},
               "data_seconds": round(t_data), "train_seconds": round(train_s),
               "total_seconds": round(time.time() - t_start), "threads": args.threads,
               "train_clips": args.train_clips, "epochs": args.epochs, "sampling_fps": rate,
               "easy_clips": args.easy_clips, "easy_steps": args.easy_steps}
    log(json.dumps(summary))
    log(f"wrote {pt} ({pt.stat().st_size} bytes) and {cfg_path}")


if __name__ == "__main__":
    main()
