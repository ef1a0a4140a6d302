#!/usr/bin/env python3
"""Exports video classifiers as TorchScript (`models/NAME.pt`) plus their configs (`configs/NAME.json`).

Architectures: torchvision's r2plus1d_18, r3d_18, mc3_18, s3d, mvit_v1_b and swin3d_t; I3D
(Inception-v1 inflated to 3D) and PyTorchVideo's I3D ResNet-50 from `scripts/i3d.py`.

Weights (choose one):
  --weights kinetics400   the published Kinetics-400 weights (needs a network; the sha256 of
                          the downloaded file goes into the config)
  --weights-file FILE     a local state dict (or a checkpoint holding one under `model_state`,
                          `state_dict` or `model`)
  --random-init --seed N  deterministic random initialisation, offline (what tests use):
                          BatchNorm statistics and the classifier's scale are calibrated on
                          synthetic clips so outputs are peaked; the export fails if not
  --inflate-from FILE     i3d only: a 2D Inception-v1 state dict in torchvision's googlenet
                          layout, inflated to 3D; the logits layer is initialised from --seed

Models are traced on CPU in eval mode from a float32 N x C x T x H x W example, then checked
against the eager model on a batch of two with another clip length (for variable-length models)
before anything is written. swin3d_t is scripted instead: tracing bakes in its window sizes,
which shrink for short clips. Every graph runs in bf16 as well as float32 (vidcls casts module
and input): layers without a bf16 CPU kernel (3D average pooling) compute in float32 inside it
(`Float32Pool`). Where it runs faster (docs/BENCHMARKS.md), the channels-last-3d layout is baked
in (`--no-channels-last` leaves it out). Examples:

  scripts/export_models.py --random-init --seed 0 --all
  scripts/export_models.py --weights kinetics400 r2plus1d_18 s3d
  scripts/export_models.py --inflate-from googlenet.pth --name i3d_imagenet i3d
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision.models.video as tvv

sys.path.insert(0, str(Path(__file__).resolve().parent))
import i3d as i3d_mod  # noqa: E402
import precision_record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LABEL_SET = "kinetics400"
LABELS_FILE = "kinetics400.txt"
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
# Full sha256 of published files, where known (torchvision checks only the prefix in the name).
PUBLISHED_SHA256 = {
    "r3d_18": "b3b3357ead25631ec9c57362ff2128a92d0427e01e2cd184951a44380c3f2e9d",
    "mc3_18": "a90a0ba35ca1242d15b77511ff28bfb29cc596988b5ea36081042f8e2f54212b",
    "r2plus1d_18": "91a641e6c2ab531d1aca5f4321b4d802ec5c3babc15df855cdb6e39c6a1107c8",
}
PUBLISHED_BYTES = {"r2plus1d_18": 126162996}
PYTORCHVIDEO_I3D_R50_URL = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/I3D_8x8_R50.pyth"


@dataclass
class Spec:
    """How one architecture is built and how it wants its input."""

    build: object
    frames: int
    min_frames: int
    variable_frames: bool
    fps: float | None
    stride: int = 1
    # torchvision weights enum member: resize, crop, mean and std are read from its transforms.
    tv_weights: object = None
    resize: dict = field(default_factory=dict)
    crop: int = 0
    mean: tuple = KINETICS_MEAN
    std: tuple = KINETICS_STD
    value_scale: float = 1.0
    script: bool = False
    weights_url: str | None = None
    notes: str = ""
    # Channels-last-3d layout baked into the graph by default (`--no-channels-last` opts out):
    # where it ran the model alone >= 1.5x faster in bf16, the precision `--precision auto` takes
    # on a CPU with native bf16 (scripts/bench_layout.py; docs/BENCHMARKS.md). r2plus1d_18 (1.15x),
    # r3d_18 and mc3_18 gained less, and r2plus1d_18's bf16 record fell from 12 to 11 agreeing
    # clips of 12 with it; the transformers were not measured.
    channels_last: bool = False


def _build_i3d() -> torch.nn.Module:
    model = i3d_mod.InceptionI3d(num_classes=400)
    i3d_mod.init_i3d(model)
    return model


def _build_i3d_r50() -> torch.nn.Module:
    model = i3d_mod.I3dResNet50(num_classes=400)
    i3d_mod.init_resnet(model)
    return model


SPECS: dict[str, Spec] = {
    "r2plus1d_18": Spec(
        tvv.r2plus1d_18, 16, 1, True, 15.0, tv_weights=tvv.R2Plus1D_18_Weights.KINETICS400_V1,
        notes="torchvision; published accuracy: 5 clips x 16 frames at 15 fps",
    ),
    "r3d_18": Spec(
        tvv.r3d_18, 16, 1, True, 15.0, tv_weights=tvv.R3D_18_Weights.KINETICS400_V1,
        notes="torchvision; published accuracy: 5 clips x 16 frames at 15 fps",
    ),
    "mc3_18": Spec(
        tvv.mc3_18, 16, 1, True, 15.0, tv_weights=tvv.MC3_18_Weights.KINETICS400_V1,
        notes="torchvision; published accuracy: 5 clips x 16 frames at 15 fps",
    ),
    "s3d": Spec(
        tvv.s3d, 64, 13, True, 15.0, tv_weights=tvv.S3D_Weights.KINETICS400_V1, channels_last=True,
        notes="torchvision; published accuracy: 1 clip x 128 frames at 15 fps (--frames 128); "
        "needs >= 13 frames at 224x224",
    ),
    "mvit_v1_b": Spec(
        tvv.mvit_v1_b, 16, 16, False, 7.5, tv_weights=tvv.MViT_V1_B_Weights.KINETICS400_V1,
        notes="torchvision; fixed 16 x 224 x 224 input (positional embedding); "
        "published accuracy: 5 clips x 16 frames at 7.5 fps",
    ),
    "swin3d_t": Spec(
        tvv.swin3d_t, 32, 1, True, 15.0, tv_weights=tvv.Swin3D_T_Weights.KINETICS400_V1, script=True,
        notes="torchvision; scripted, not traced (window sizes depend on the clip length); "
        "published accuracy: 12 clips x 32 frames at 15 fps",
    ),
    "i3d": Spec(
        _build_i3d, 64, 11, True, 25.0, channels_last=True,
        resize={"mode": "short_side", "size": 256}, crop=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        notes="Inception-v1 inflated to 3D (DeepMind I3D, RGB); input scaled to [-1, 1]; "
        "trained on 64-frame clips, tested on whole videos",
    ),
    "i3d_r50": Spec(
        _build_i3d_r50, 8, 8, True, 30.0, stride=8, channels_last=True,
        resize={"mode": "short_side", "size": 256}, crop=256, mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225),
        weights_url=PYTORCHVIDEO_I3D_R50_URL,
        notes="PyTorchVideo i3d_r50 (8x8); published accuracy: 10 clips x 3 crops of 256",
    ),
}


def torch_version() -> str:
    return torch.__version__.split("+")[0]


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def preprocessing(spec: Spec) -> tuple[dict, int, tuple, tuple]:
    """Resize, crop, mean and std: from torchvision's weight transforms where there are some."""
    if spec.tv_weights is None:
        return spec.resize, spec.crop, spec.mean, spec.std
    t = spec.tv_weights.transforms()
    if len(t.resize_size) == 1:
        resize = {"mode": "short_side", "size": int(t.resize_size[0])}
    else:
        resize = {"mode": "exact", "height": int(t.resize_size[0]), "width": int(t.resize_size[1])}
    crop_h, crop_w = t.crop_size
    if crop_h != crop_w:
        raise ValueError("only square crops are supported")
    return resize, int(crop_h), tuple(t.mean), tuple(t.std)


def write_labels(config_dir: Path) -> Path:
    """Kinetics-400 class names in output order, from the installed torchvision (no download)."""
    labels = tvv.R2Plus1D_18_Weights.KINETICS400_V1.meta["categories"]
    if len(labels) != 400 or any("\n" in label for label in labels):
        raise ValueError("unexpected Kinetics-400 category list in torchvision")
    path = config_dir / LABELS_FILE
    text = "\n".join(labels) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def unwrap_state_dict(obj) -> dict[str, torch.Tensor]:
    """Accepts a bare state dict or the usual checkpoint wrappers; drops DataParallel prefixes."""
    for key in ("model_state", "state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ValueError("not a state dict")
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in obj.items()}


def calibration_clips(n: int, t: int, crop: int, seed: int, mean: tuple, std: tuple) -> torch.Tensor:
    """Deterministic clips drifting sideways, normalised with the model's mean and std: smooth
    gradients, coarse blocks and fine blocks in turn, so BatchNorm statistics see both the soft
    and the sharp content (edges, text, test patterns) that videos hold."""
    g = torch.Generator().manual_seed(seed)
    up = torch.nn.functional.interpolate
    parts = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            base = torch.rand(1, 3, 1, max(crop // 8, 2), max(crop // 8, 2), generator=g)
            x = up(base, size=(1, crop, crop), mode="trilinear", align_corners=False)
        elif kind == 1:
            x = torch.zeros(1, 3, 1, crop, crop)
            for cells in (4, 16):
                x += up(torch.rand(1, 3, 1, cells, cells, generator=g), size=(1, crop, crop), mode="nearest") / 2
        else:
            x = up(torch.rand(1, 3, 1, crop // 4, crop // 4, generator=g), size=(1, crop, crop), mode="nearest")
        parts.append(x)
    x = torch.cat(parts)
    clip = torch.cat([torch.roll(x, i * 2, dims=4) for i in range(t)], dim=2)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1, 1)
    return ((clip - m) / s).contiguous()


# Random-init exports: the classifier is scaled so that logits on the calibration batch have
# this standard deviation over the classes; a held-out batch must then give a mean top-1
# probability of at least PEAK_FACTOR times a uniform guess, or the export fails.
LOGIT_SPREAD = 2.5
PEAK_FACTOR = 10.0


def calibrate(model: torch.nn.Module, frames: int, crop: int, seed: int, mean: tuple, std: tuple) -> float:
    """Random weights under identity BatchNorm statistics give near-flat outputs (top-2
    probabilities within 1e-7 for s3d), where a parity test can't see a difference. Setting
    each BatchNorm layer's statistics from one deterministic batch, and scaling the classifier
    so logits spread, makes outputs input-dependent and peaked, as trained models are (the
    parity tests in tests/models.rs print each export's top-1 and entropy on their videos and
    fail above 0.9 of the maximum entropy). Returns the held-out batch's mean top-1
    probability; raises if the outputs stayed flat."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    batch = calibration_clips(6, frames, crop, seed, mean, std)
    if bns:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
        model.train()
        with torch.no_grad():
            model(batch)
        for m in bns:
            m.momentum = 0.1
    model.eval()
    heads = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv3d)) and m.weight.shape[0] == 400]
    if not heads:
        raise RuntimeError("no 400-way classifier layer to scale")
    with torch.no_grad():
        spread = float(model(batch).std(dim=1).mean())
        if not spread > 0:
            raise RuntimeError("calibration: the outputs do not depend on the input")
        heads[-1].weight.mul_(LOGIT_SPREAD / spread)
        if heads[-1].bias is not None:
            heads[-1].bias.mul_(LOGIT_SPREAD / spread)
        probs = model(calibration_clips(6, frames, crop, seed + 1, mean, std)).softmax(dim=1)
    top1 = float(probs.max(dim=1).values.mean())
    uniform = 1.0 / probs.shape[1]
    if top1 < PEAK_FACTOR * uniform:
        raise RuntimeError(
            f"calibration left the outputs flat: mean top-1 {top1:.4f} on a held-out batch, "
            f"want >= {PEAK_FACTOR:g} x uniform ({PEAK_FACTOR * uniform:.4f})"
        )
    return top1


class ChannelsLast3d(torch.nn.Module):
    """Keeps weights and activations in channels-last-3d layout (N, T, H, W, C in memory), which
    oneDNN's CPU convolutions run faster in bf16 (the model alone 1.15x for r2plus1d_18, 2.5x for
    s3d here; in fp32 0.84-1.10x: docs/BENCHMARKS.md). The layout is baked into the TorchScript
    graph; converting the module to bf16 later keeps it."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last_3d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last_3d))


class Float32Pool(torch.nn.Module):
    """Runs a pooling layer in float32 and gives its result back in the input's dtype: libtorch's
    CPU has no bfloat16 `avg_pool3d` kernel (torch 2.13; `adaptive_avg_pool3d` and `max_pool3d`
    have one), so a graph cast to bf16 as vidcls casts it (`--precision bf16`: module and input)
    would fail there. It is scripted (`keep_float32`), also inside traced graphs: a tracer
    records `x.dtype` as a constant, and in float32 `x.float()` returns `x` itself, so a traced
    cast back would stay float32 whatever precision the graph later runs in. In float32 both
    casts are no-ops and the graph computes exactly what the bare layer does."""

    def __init__(self, pool: torch.nn.Module):
        super().__init__()
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x.float()).to(x.dtype)


# Layers without a bfloat16 CPU kernel in libtorch, kept in float32 inside bf16 graphs.
NO_BF16_KERNEL = (torch.nn.AvgPool3d,)


def keep_float32(model: torch.nn.Module) -> int:
    """Wraps every layer of a type in `NO_BF16_KERNEL` in `Float32Pool`, in place (parameters and
    state-dict keys of the model are unchanged: pooling layers have none). Returns how many."""
    wrapped = 0
    for parent in list(model.modules()):
        if isinstance(parent, torch.jit.ScriptModule):  # a wrapper already, or scripted code
            continue
        for name, child in list(parent.named_children()):
            if isinstance(child, NO_BF16_KERNEL):
                setattr(parent, name, torch.jit.script(Float32Pool(child)))
                wrapped += 1
    return wrapped


def integer_buffers_as_attributes(model: torch.nn.Module) -> list[str]:
    """Turns every integer buffer of a model that is scripted (swin3d's relative-position
    index) into a plain tensor attribute, in place; returns their names. vidcls casts a graph to
    bf16 or fp16 with libtorch's module-wide cast, which (unlike Python's `Module.to`) converts
    every buffer, integers included, and an index in bf16 cannot index. A plain attribute is
    neither a parameter nor a buffer, so that cast leaves it alone; `torch.jit.load`'s
    map_location still moves it with the rest. The graph computes the same; the state dict
    loses the entries, which are derived from the window size and never trained."""
    moved = []
    for path, module in model.named_modules():
        for name, buf in list(module._buffers.items()):
            if buf is not None and not buf.is_floating_point():
                del module._buffers[name]
                setattr(module, name, buf)
                moved.append(f"{path}.{name}" if path else name)
    return moved


def load_weights(arch: str, spec: Spec, model: torch.nn.Module, args) -> dict:
    """Puts the requested weights into `model`; returns the config's `weights` record."""
    if args.random_init:
        _, crop, mean, std = preprocessing(spec)
        frames = spec.frames if not spec.variable_frames else max(spec.min_frames, 16)
        calibrate(model, frames, crop, args.seed, mean, std)
        return {"source": f"random-init:seed={args.seed};bn-calibrated", "sha256": None}
    if args.inflate_from:
        if arch != "i3d":
            raise SystemExit(f"--inflate-from applies to i3d only, not {arch}")
        path = Path(args.inflate_from)
        state = unwrap_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        i3d_mod.inflate_googlenet(model, state)
        return {"source": f"inflated:{path.name};logits=random-init:seed={args.seed}", "sha256": sha256_file(path)}
    if args.weights_file:
        path = Path(args.weights_file)
        state = unwrap_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        model.load_state_dict(state, strict=True)
        return {"source": f"file:{path.name}", "sha256": sha256_file(path)}
    # --weights kinetics400
    if spec.tv_weights is not None:
        url, check_hash = spec.tv_weights.url, True
    elif spec.weights_url is not None:
        url, check_hash = spec.weights_url, False
    else:
        raise SystemExit(
            f"{arch}: no published Kinetics-400 weights to download; use --weights-file"
            + (" or --inflate-from" if arch == "i3d" else "")
        )
    obj = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=False, check_hash=check_hash)
    model.load_state_dict(unwrap_state_dict(obj), strict=True)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
    return {"source": args.weights, "sha256": sha256_file(cached), "url": url}


def pretrained_card(arch: str, spec: Spec) -> dict | None:
    """The config's `pretrained` section, which `vidcls models pull` reads: the weight-free graph
    (scripts/export_graphs.py), the published file and its checks, the renames from its
    state-dict names to the graph's, and the published accuracy (torchvision's metadata)."""
    import export_graphs

    if arch not in export_graphs.GRAPHS or spec.tv_weights is None:
        return None
    url = spec.tv_weights.url
    name_hash = Path(urlparse(url).path).stem.rsplit("-", 1)[1]
    acc = spec.tv_weights.meta["_metrics"]["Kinetics-400"]
    card = {"graph": f"graphs/{arch}.pt", "url": url, "sha256": PUBLISHED_SHA256.get(arch, name_hash)}
    if arch in PUBLISHED_BYTES:
        card["bytes"] = PUBLISHED_BYTES[arch]
    card["size_mib"] = spec.tv_weights.meta["_file_size"]
    if export_graphs.RENAMES.get(arch):
        card["rename"] = export_graphs.RENAMES[arch]
    if arch in export_graphs.CHANNELS_LAST:
        card["layout"] = "channels_last_3d"
    card["kinetics400_accuracy"] = [acc["acc@1"], acc["acc@5"]]
    return card


def example_input(n: int, t: int, crop: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, t, crop, crop, generator=g)


def compile_model(model: torch.nn.Module, spec: Spec, frames: int, crop: int) -> torch.jit.ScriptModule:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.script:
            integer_buffers_as_attributes(model)
            return torch.jit.script(model)
        return torch.jit.trace(model, example_input(1, frames, crop, 1), check_trace=False)


def verify(model: torch.nn.Module, compiled, spec: Spec, frames: int, crop: int) -> None:
    """The compiled graph must match eager PyTorch on a fresh input and on a batch of two at the
    shortest clip length the model accepts (so no traced shape is baked in)."""
    checks = [(1, frames), (2, spec.min_frames if spec.variable_frames else frames)]
    with torch.no_grad():
        for n, t in checks:
            x = example_input(n, t, crop, 2)
            want, got = model(x), compiled(x)
            if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-4, atol=1e-5):
                diff = (got - want).abs().max().item() if got.shape == want.shape else float("nan")
                raise RuntimeError(f"compiled model differs from eager at T={t} (max abs diff {diff})")


def export(arch: str, args, models_dir: Path, config_dir: Path) -> dict:
    spec = SPECS[arch]
    name = args.name or arch
    frames = args.frames or spec.frames
    if frames < spec.min_frames:
        raise SystemExit(f"{arch} needs at least {spec.min_frames} frames, not {frames}")
    if not spec.variable_frames and frames != spec.frames:
        raise SystemExit(f"{arch} takes exactly {spec.frames} frames (fixed-size head)")
    resize, crop, mean, std = preprocessing(spec)

    started = time.perf_counter()
    torch.manual_seed(args.seed)
    model = spec.build()
    weights = load_weights(arch, spec, model, args)
    keep_float32(model)
    if spec.channels_last if args.channels_last is None else args.channels_last:
        model = ChannelsLast3d(model)
        weights["layout"] = "channels_last_3d"
    model.eval()
    compiled = compile_model(model, spec, frames, crop)
    with torch.no_grad():
        out = compiled(example_input(1, frames, crop, 3))
    if out.shape != (1, 400):
        raise RuntimeError(f"{arch}: output shape {tuple(out.shape)}, want (1, 400)")
    if not args.no_verify:
        verify(model, compiled, spec, frames, crop)

    config = {
        "name": name,
        "architecture": arch,
        "labels_file": LABELS_FILE,
        "label_set": LABEL_SET,
        "frames": frames,
        "min_frames": spec.min_frames,
        "variable_frames": spec.variable_frames,
        "sampling": {"fps": spec.fps, "stride": spec.stride},
        "resize": resize,
        "crop": crop,
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "value_scale": spec.value_scale,
        "input_layout": "NCTHW",
        "file": f"{name}.pt",
        "torch_version": torch_version(),
        "weights": weights,
        "parameters": sum(p.numel() for p in model.parameters()),
        "notes": spec.notes,
    }
    card = pretrained_card(arch, spec)
    if card is not None and args.name in (None, arch):
        config["pretrained"] = card
    config = precision_record.with_record(config, bf16_record(compiled, config, name, args))
    text = json.dumps(config, indent=2) + "\n"
    pt = models_dir / f"{name}.pt"
    tmp = pt.with_suffix(".pt.tmp")
    torch.jit.save(compiled, str(tmp), _extra_files={"vidcls_config.json": text})
    tmp.replace(pt)
    (config_dir / f"{name}.json").write_text(text)
    seconds = time.perf_counter() - started
    return {"name": name, "file": str(pt), "bytes": pt.stat().st_size, "seconds": round(seconds, 1)}


def bf16_record(compiled, config: dict, name: str, args) -> dict | None:
    """bf16 agreement with fp32 on calibration clips at the architecture's own clip length (so the
    record does not depend on --frames); `--precision auto` reads it. None when bf16 failed, and
    for random classifiers (--random-init, --inflate-from): agreement between two random models
    says nothing of trained weights, so auto keeps them in fp32."""
    if args.random_init or args.inflate_from:
        return None
    graph = io.BytesIO()
    torch.jit.save(compiled, graph)
    clips = precision_record.calibration_clips(config, precision_record.default_clips(config))
    return precision_record.measure(graph.getvalue(), clips, name)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("architectures", nargs="*", metavar="ARCH", help=f"one or more of: {', '.join(SPECS)}")
    p.add_argument("--all", action="store_true", help="export every architecture")
    p.add_argument("--name", help="output name (NAME.pt, NAME.json); one architecture only; default: the architecture")
    p.add_argument("--frames", type=int, help="frames per clip written to the config and traced with")
    p.add_argument("--out-dir", type=Path, default=ROOT, help="writes OUT/models/ and OUT/configs/ (default: the repository)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", choices=["kinetics400"], help="published weights (needs a network)")
    src.add_argument("--weights-file", metavar="FILE", help="a local state dict for the architecture")
    src.add_argument("--random-init", action="store_true", help="random weights from --seed (offline)")
    src.add_argument("--inflate-from", metavar="FILE", help="i3d: inflate a 2D googlenet state dict")
    p.add_argument("--seed", type=int, default=0, help="seed for random initialisation (default 0)")
    p.add_argument("--no-verify", action="store_true", help="skip comparing the compiled model with eager PyTorch")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    on = ", ".join(a for a, s in SPECS.items() if s.channels_last) or "none"
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="bake the channels-last-3d memory layout into the graph (faster CPU convolutions), "
                   f"or not (--no-channels-last); default: per architecture, on for {on}")
    args = p.parse_args(argv)
    archs = list(SPECS) if args.all else args.architectures
    if not archs:
        p.error("name an architecture or pass --all")
    unknown = [a for a in archs if a not in SPECS]
    if unknown:
        p.error(f"unknown architecture(s): {', '.join(unknown)}; known: {', '.join(SPECS)}")
    if args.name and len(archs) != 1:
        p.error("--name needs exactly one architecture")
    return args, archs


def main(argv=None) -> int:
    args, archs = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    models_dir, config_dir = args.out_dir / "models", args.out_dir / "configs"
    models_dir.mkdir(parents=True, exist_ok=True)
    config_dir.mkdir(parents=True, exist_ok=True)
    write_labels(config_dir)
    failed = 0
    for arch in archs:
        try:
            r = export(arch, args, models_dir, config_dir)
        except (RuntimeError, ValueError, KeyError, OSError) as e:
            print(f"export_models: {arch}: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{r['name']}: {r['file']} ({r['bytes'] / 1e6:.1f} MB, {r['seconds']} s)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
