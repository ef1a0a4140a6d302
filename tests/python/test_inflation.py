"""Tests for scripts/i3d.py and scripts/export_models.py (pytest, or `python tests/python/test_inflation.py`).

The inflation test checks I3D's bootstrapping claim: inflate a 2D Inception-v1 (torchvision's
googlenet layout) by repeating each k x k kernel t times along time and dividing by t, and a
"boring" video (one frame repeated) makes every layer of the 3D network reproduce the 2D
network's activations on that frame. Zero padding in time breaks this near the clip's ends:
a temporal convolution whose window reaches past the first or last frame sums fewer than t
copies of the frame and no longer matches. Those "contaminated" positions then spread inward
by each later layer's temporal reach. The test propagates the set of uncontaminated positions
through the network's own layer parameters (kernel, stride, padding, ceil mode; max pools pad
with -inf, which never wins, so only their real inputs matter) and compares exactly there.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))
import i3d  # noqa: E402

TOL = 1e-4
# 2D googlenet modules in forward order, paired with the I3D `features` module they become.
PAIRS = [
    ("conv1", "conv3d_1a_7x7"),
    ("maxpool1", "maxpool3d_2a_3x3"),
    ("conv2", "conv3d_2b_1x1"),
    ("conv3", "conv3d_2c_3x3"),
    ("maxpool2", "maxpool3d_3a_3x3"),
    ("inception3a", "mixed_3b"),
    ("inception3b", "mixed_3c"),
    ("maxpool3", "maxpool3d_4a_3x3"),
    ("inception4a", "mixed_4b"),
    ("inception4b", "mixed_4c"),
    ("inception4c", "mixed_4d"),
    ("inception4d", "mixed_4e"),
    ("inception4e", "mixed_4f"),
    ("maxpool4", "maxpool3d_5a_2x2"),
    ("inception5a", "mixed_5b"),
    ("inception5b", "mixed_5c"),
]


def random_googlenet(seed: int) -> nn.Module:
    """A googlenet with random weights of a useful scale and non-trivial batch-norm statistics.

    torchvision's own initialisation (std 0.01, BN at identity) makes deep activations vanish,
    which would let any absolute tolerance pass; He-scaled kernels keep them of order one."""
    torch.manual_seed(seed)
    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True, transform_input=False)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _temporal(v, i=0):
    return v[i] if isinstance(v, (tuple, list)) else v


def _window_out(t_in: int, k: int, s: int, p: int, ceil: bool) -> int:
    if not ceil:
        return (t_in + 2 * p - k) // s + 1
    out = -(-(t_in + 2 * p - k) // s) + 1
    if (out - 1) * s >= t_in + p:
        out -= 1
    return out


def clean_positions(module: nn.Module, clean: list[bool]) -> list[bool]:
    """Which output time steps of `module` are untouched by zero padding in time, given which
    input time steps are (True = clean)."""
    if isinstance(module, nn.Sequential):
        for child in module:
            clean = clean_positions(child, clean)
        return clean
    if isinstance(module, i3d.InceptionBlock3d):
        branches = [clean_positions(b, clean) for b in (module.branch0, module.branch1, module.branch2, module.branch3)]
        return [all(c) for c in zip(*branches)]
    if isinstance(module, i3d.Unit3d):
        conv = module.conv
        k, s, p = _temporal(conv.kernel_size), _temporal(conv.stride), _temporal(conv.padding)
        n = _window_out(len(clean), k, s, p, False)
        # A convolution's zero padding contaminates: the whole window must be real and clean.
        return [
            all(0 <= o * s - p + j < len(clean) and clean[o * s - p + j] for j in range(k)) for o in range(n)
        ]
    if isinstance(module, nn.MaxPool3d):
        k, s, p = _temporal(module.kernel_size), _temporal(module.stride), _temporal(module.padding)
        n = _window_out(len(clean), k, s, p, module.ceil_mode)
        # Max pooling pads with -inf, which never wins: only the real inputs in the window count.
        return [
            all(clean[i] for i in range(max(o * s - p, 0), min(o * s - p + k, len(clean)))) for o in range(n)
        ]
    raise TypeError(f"no temporal rule for {type(module).__name__}")


def forward_2d(net: nn.Module, frame: torch.Tensor) -> dict[str, torch.Tensor]:
    out, x = {}, frame
    for name, _ in PAIRS:
        x = getattr(net, name)(x)
        out[name] = x
    return out


def forward_3d(model: i3d.InceptionI3d, video: torch.Tensor) -> dict[str, tuple[torch.Tensor, list[bool]]]:
    out, x, clean = {}, video, [True] * video.shape[2]
    for name, module in model.features.named_children():
        x = module(x)
        clean = clean_positions(module, clean)
        assert len(clean) == x.shape[2], f"{name}: analysis says T={len(clean)}, tensor has {x.shape[2]}"
        out[name] = (x, clean)
    return out


def test_inflated_boring_video_matches_2d(tmp_path: Path):
    """Inflate a saved random googlenet, feed a 24-frame boring video, compare every layer."""
    net2d = random_googlenet(seed=0)
    path = tmp_path / "googlenet.pth"
    torch.save(net2d.state_dict(), path)

    torch.manual_seed(1)
    model = i3d.InceptionI3d(num_classes=400)
    i3d.init_i3d(model)
    untouched = i3d.inflate_googlenet(model, torch.load(path, map_location="cpu", weights_only=True))
    assert all(k.startswith("logits.") for k in untouched), untouched
    model.eval()

    # A small frame keeps this quick; the spatial path is the same at 224.
    g = torch.Generator().manual_seed(2)
    frame = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    t = 128
    video = frame.unsqueeze(2).expand(1, 3, t, 64, 64).contiguous()
    with torch.no_grad():
        want = forward_2d(net2d, frame)
        got = forward_3d(model, video)

    report = []
    for name2d, name3d in PAIRS:
        x3, clean = got[name3d]
        x2 = want[name2d]
        idx = [i for i, c in enumerate(clean) if c]
        assert idx, f"{name3d}: no time step is free of padding effects at T={t}"
        assert x3.shape[:2] == x2.shape[:2] and x3.shape[3:] == x2.shape[2:], (name3d, x3.shape, x2.shape)
        diff = (x3[:, :, idx] - x2.unsqueeze(2)).abs().max().item()
        scale = x2.abs().max().item()
        report.append((name3d, len(idx), x3.shape[2], diff, scale))
        assert scale > 1e-2, f"{name3d}: activations vanish (max {scale}); the comparison would be vacuous"
        assert diff <= TOL, f"{name3d}: max abs diff {diff} > {TOL} at clean steps {idx[0]}..{idx[-1]}"
    # The padded borders must really differ somewhere, or the analysis above checks nothing.
    x3, clean = got["mixed_5c"]
    dirty = [i for i, c in enumerate(clean) if not c]
    assert dirty and (x3[:, :, dirty] - want["inception5b"].unsqueeze(2)).abs().max().item() > TOL
    for name, n, total, diff, scale in report:
        print(f"  {name:18s} clean {n:3d}/{total:3d}  max|diff| {diff:.2e}  max|act| {scale:.2f}")


def test_inflation_shapes_and_scaling():
    """Each inflated kernel sums over time to its 2D kernel; BN buffers are copied."""
    net2d = random_googlenet(seed=3)
    model = i3d.InceptionI3d()
    i3d.inflate_googlenet(model, net2d.state_dict())
    sd3, sd2 = model.state_dict(), net2d.state_dict()
    n = 0
    for key, w3 in sd3.items():
        src = i3d.googlenet_key(key)
        if src is None:
            continue
        n += 1
        if w3.dim() == 5:
            assert torch.allclose(w3.sum(dim=2), sd2[src], atol=1e-6), key
        else:
            assert torch.equal(w3, sd2[src]), key
    assert n == sum(1 for k in sd2 if not k.startswith("fc."))


def run_export(out_dir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPTS / "export_models.py"), "--out-dir", str(out_dir), *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config_labels(config: dict, config_dir: Path) -> list[str]:
    """The labels a config names: inline, or one per line in its labels file."""
    if config.get("labels"):
        return list(config["labels"])
    lines = (config_dir / config["labels_file"]).read_text().split("\n")
    return [label for label in lines if label.strip()]


def check_torchscript(model_path: Path, config: dict, config_dir: Path) -> None:
    """Loads a TorchScript file and runs its smallest allowed clip; output width = label count."""
    width = len(config_labels(config, config_dir))
    model = torch.jit.load(str(model_path), map_location="cpu").eval()
    t = config["min_frames"] if config["variable_frames"] else config["frames"]
    x = torch.zeros(1, 3, t, config["crop"], config["crop"])
    with torch.no_grad():
        y = model(x)
    assert tuple(y.shape) == (1, width), (model_path.name, tuple(y.shape))
    assert torch.isfinite(y).all(), model_path.name


def test_random_init_export_is_deterministic(tmp_path: Path):
    """Same seed, same bytes: both the TorchScript file and its config."""
    a, b = tmp_path / "a", tmp_path / "b"
    run_export(a, "--random-init", "--seed", "0", "mc3_18")
    # Verification only reads the model; skipping it the second time saves time, not coverage.
    run_export(b, "--random-init", "--seed", "0", "--no-verify", "mc3_18")
    for rel in ("models/mc3_18.pt", "configs/mc3_18.json", "configs/kinetics400.txt"):
        assert sha256(a / rel) == sha256(b / rel), rel
    config = json.loads((a / "configs/mc3_18.json").read_text())
    assert config["weights"] == {"source": "random-init:seed=0;bn-calibrated", "sha256": None}
    assert config["parameters"] == 11695440  # torchvision's num_params for mc3_18
    check_torchscript(a / "models/mc3_18.pt", config, a / "configs")


def test_inflate_from_cli(tmp_path: Path):
    """`--inflate-from` through the command line: records the 2D file's sha256, loads back."""
    path = tmp_path / "googlenet.pth"
    torch.save(random_googlenet(seed=4).state_dict(), path)
    run_export(
        tmp_path, "--inflate-from", str(path), "--seed", "0", "--frames", "12", "--name", "i3d_test", "--no-verify", "i3d"
    )
    config = json.loads((tmp_path / "configs/i3d_test.json").read_text())
    assert config["weights"]["sha256"] == sha256(path)
    assert config["frames"] == 12 and config["architecture"] == "i3d"
    check_torchscript(tmp_path / "models/i3d_test.pt", config, tmp_path / "configs")


def check_models_in(root: Path) -> int:
    """Checks every model of ROOT/configs/*.json whose file is in ROOT/models/; returns how many."""
    seen = 0
    for cfg_path in sorted((root / "configs").glob("*.json")):
        config = json.loads(cfg_path.read_text())
        pt = root / "models" / config["file"]
        if pt.exists():
            check_torchscript(pt, config, cfg_path.parent)
            seen += 1
    return seen


def test_exported_models_load():
    """Every model in the repository's models/ with a config (the built-in ones), and every export
    in the directories VIDCLS_EXPORT_DIRS names (the test suite passes its own), loads with
    torch.jit.load and has the config's output width. Each place must hold at least one model:
    a check that finds nothing fails."""
    places = [ROOT] + [Path(p) for p in os.environ.get("VIDCLS_EXPORT_DIRS", "").split(os.pathsep) if p]
    total = 0
    for place in places:
        seen = check_models_in(place)
        assert seen > 0, f"no model with a config under {place}"
        total += seen
    print(f"  {total} exported model(s) checked in {len(places)} place(s)")


if __name__ == "__main__":
    passes = failures = 0
    for name, fn in list(globals().items()):
        if not name.startswith("test_") or not callable(fn):
            continue
        started = time.perf_counter()
        try:
            if "tmp_path" in fn.__code__.co_varnames[: fn.__code__.co_argcount]:
                with tempfile.TemporaryDirectory() as d:
                    fn(Path(d))
            else:
                fn()
            passes += 1
            print(f"ok    {name} ({time.perf_counter() - started:.1f} s)")
        except Exception as e:  # noqa: BLE001 - report every failure, then exit non-zero
            failures += 1
            print(f"FAIL  {name}: {type(e).__name__}: {e}")
    print(f"{passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)
