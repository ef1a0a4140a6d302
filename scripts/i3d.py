"""I3D (Inception-v1 inflated to 3D) and PyTorchVideo's I3D ResNet-50, in plain PyTorch.

`InceptionI3d` follows DeepMind's kinetics-i3d layout (Carreira & Zisserman, arXiv:1705.07750):

    conv 7x7x7 /2 -> maxpool 1x3x3 /1,2,2 -> conv 1x1x1 -> conv 3x3x3 -> maxpool 1x3x3 /1,2,2
    -> Mixed_3b, 3c -> maxpool 3x3x3 /2 -> Mixed_4b..4f -> maxpool 2x2x2 /2 -> Mixed_5b, 5c
    -> avgpool 2x7x7 (stride 1) -> dropout -> 1x1x1 conv logits -> mean over time (and space)

with batch norm (eps 1e-3) and ReLU after every convolution but the logits. Spatially it pads
exactly as torchvision's 2D GoogLeNet does (symmetric k//2 for convolutions, max pools in ceil
mode), so an inflated network reproduces its 2D source frame by frame; in time it pads
convolutions with k//2 zeros, which gives TensorFlow's 'SAME' output lengths for even clip lengths.
The third branch of each Inception block uses a 3x3 kernel, as DeepMind's I3D and torchvision's
GoogLeNet both do.

`inflate_googlenet` turns a 2D ImageNet Inception-v1 state dict in torchvision's `googlenet`
layout into this network's weights: every k x k kernel is repeated over the inflated temporal
extent t and divided by t, batch-norm parameters and statistics are copied. A video made of one
frame repeated then gives, away from the temporal borders, the 2D network's activations.

`I3dResNet50` reproduces PyTorchVideo's `i3d_r50` (`create_resnet` with a 5x7x7 stem, a 2x1x1
temporal max pool after the first stage and alternating 3x1x1 / 1x1x1 `conv_a` kernels) with the
same module names, so its published `I3D_8x8_R50.pyth` checkpoint (`model_state`) loads as is.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

# (in, 1x1, 3x3 reduce, 3x3, second 3x3 reduce, second 3x3, pool projection), DeepMind's names.
INCEPTION_BLOCKS = OrderedDict(
    [
        ("mixed_3b", (192, 64, 96, 128, 16, 32, 32)),
        ("mixed_3c", (256, 128, 128, 192, 32, 96, 64)),
        ("mixed_4b", (480, 192, 96, 208, 16, 48, 64)),
        ("mixed_4c", (512, 160, 112, 224, 24, 64, 64)),
        ("mixed_4d", (512, 128, 128, 256, 24, 64, 64)),
        ("mixed_4e", (512, 112, 144, 288, 32, 64, 64)),
        ("mixed_4f", (528, 256, 160, 320, 32, 128, 128)),
        ("mixed_5b", (832, 256, 160, 320, 32, 128, 128)),
        ("mixed_5c", (832, 384, 192, 384, 48, 128, 128)),
    ]
)

# I3D module -> torchvision googlenet module, for inflation.
GOOGLENET_NAMES = OrderedDict(
    [
        ("conv3d_1a_7x7", "conv1"),
        ("conv3d_2b_1x1", "conv2"),
        ("conv3d_2c_3x3", "conv3"),
        ("mixed_3b", "inception3a"),
        ("mixed_3c", "inception3b"),
        ("mixed_4b", "inception4a"),
        ("mixed_4c", "inception4b"),
        ("mixed_4d", "inception4c"),
        ("mixed_4e", "inception4d"),
        ("mixed_4f", "inception4e"),
        ("mixed_5b", "inception5a"),
        ("mixed_5c", "inception5b"),
    ]
)
# I3D branch -> googlenet branch (DeepMind counts Branch_0..3, torchvision branch1..4).
GOOGLENET_BRANCHES = OrderedDict(
    [
        ("branch0", "branch1"),
        ("branch1.0", "branch2.0"),
        ("branch1.1", "branch2.1"),
        ("branch2.0", "branch3.0"),
        ("branch2.1", "branch3.1"),
        ("branch3.1", "branch4.1"),
    ]
)


class Unit3d(nn.Module):
    """Conv3d (no bias) -> BatchNorm3d(eps=1e-3) -> ReLU, padded k//2 on every axis."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1)):
        super().__init__()
        kernel = _triple(kernel)
        self.conv = nn.Conv3d(
            cin, cout, kernel, stride=_triple(stride), padding=tuple(k // 2 for k in kernel), bias=False
        )
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class InceptionBlock3d(nn.Module):
    """The four parallel branches of an Inception-v1 block, concatenated along channels."""

    def __init__(self, cin: int, b0: int, b1_mid: int, b1: int, b2_mid: int, b2: int, b3: int):
        super().__init__()
        self.branch0 = Unit3d(cin, b0)
        self.branch1 = nn.Sequential(Unit3d(cin, b1_mid), Unit3d(b1_mid, b1, 3))
        self.branch2 = nn.Sequential(Unit3d(cin, b2_mid), Unit3d(b2_mid, b2, 3))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), Unit3d(cin, b3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class InceptionI3d(nn.Module):
    """DeepMind's I3D (RGB stream). Input N x 3 x T x H x W in [-1, 1]; output N x classes logits."""

    def __init__(self, num_classes: int = 400, dropout: float = 0.5):
        super().__init__()
        blocks = {name: InceptionBlock3d(*spec) for name, spec in INCEPTION_BLOCKS.items()}
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv3d_1a_7x7", Unit3d(3, 64, 7, stride=2)),
                    ("maxpool3d_2a_3x3", nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), ceil_mode=True)),
                    ("conv3d_2b_1x1", Unit3d(64, 64, 1)),
                    ("conv3d_2c_3x3", Unit3d(64, 192, 3)),
                    ("maxpool3d_3a_3x3", nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), ceil_mode=True)),
                    ("mixed_3b", blocks["mixed_3b"]),
                    ("mixed_3c", blocks["mixed_3c"]),
                    ("maxpool3d_4a_3x3", nn.MaxPool3d(3, stride=2, ceil_mode=True)),
                    ("mixed_4b", blocks["mixed_4b"]),
                    ("mixed_4c", blocks["mixed_4c"]),
                    ("mixed_4d", blocks["mixed_4d"]),
                    ("mixed_4e", blocks["mixed_4e"]),
                    ("mixed_4f", blocks["mixed_4f"]),
                    ("maxpool3d_5a_2x2", nn.MaxPool3d(2, stride=2, ceil_mode=True)),
                    ("mixed_5b", blocks["mixed_5b"]),
                    ("mixed_5c", blocks["mixed_5c"]),
                ]
            )
        )
        self.avgpool = nn.AvgPool3d((2, 7, 7), stride=1)
        self.dropout = nn.Dropout(dropout)
        self.logits = nn.Conv3d(1024, num_classes, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = self.logits(self.dropout(x))
        return x.mean(dim=(2, 3, 4))


def init_i3d(model: InceptionI3d) -> None:
    """He-normal (fan-in) convolutions, BN at identity, normal(0, 0.01) logits.

    GoogLeNet's own std-0.01 initialisation makes activations vanish over I3D's 20-odd layers,
    so a randomly initialised network would give exactly uniform probabilities; He scaling keeps
    them of order one, which is what parity checks on random weights need."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            if m is model.logits:
                nn.init.normal_(m.weight, std=0.01)
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def googlenet_key(i3d_key: str) -> str | None:
    """The torchvision googlenet state-dict key an I3D `features.*` key inflates from."""
    if not i3d_key.startswith("features."):
        return None
    rest = i3d_key[len("features.") :]
    module, _, tail = rest.partition(".")
    if module not in GOOGLENET_NAMES:
        return None
    target = GOOGLENET_NAMES[module]
    if module.startswith("mixed_"):
        for ours, theirs in GOOGLENET_BRANCHES.items():
            if tail.startswith(ours + "."):
                return f"{target}.{theirs}{tail[len(ours):]}"
        return None
    return f"{target}.{tail}"


def inflate_googlenet(model: InceptionI3d, state2d: dict[str, torch.Tensor]) -> list[str]:
    """Loads a 2D googlenet state dict into `model` by inflation; returns the keys left as they were.

    Each 2D kernel O x I x k x k becomes O x I x t x k x k, repeated t times and divided by t, so
    a constant-in-time input gives the 2D response. BN weights, biases and running statistics are
    copied unchanged. The logits layer (a 1x1x1 conv over Kinetics classes) has no counterpart in
    the ImageNet network and keeps its initialisation.
    """
    own = model.state_dict()
    untouched = []
    with torch.no_grad():
        for key, value in own.items():
            src = googlenet_key(key)
            if src is None:
                untouched.append(key)
                continue
            if src not in state2d:
                raise KeyError(f"2D state dict has no {src!r} (needed for {key})")
            w = state2d[src]
            if value.dim() == 5:
                t = value.shape[2]
                if tuple(w.shape) != tuple(value.shape[:2]) + tuple(value.shape[3:]):
                    raise ValueError(f"{src}: shape {tuple(w.shape)} does not inflate to {tuple(value.shape)}")
                w = w.unsqueeze(2).repeat(1, 1, t, 1, 1) / t
            elif tuple(w.shape) != tuple(value.shape):
                raise ValueError(f"{src}: shape {tuple(w.shape)} != {tuple(value.shape)}")
            value.copy_(w.to(value.dtype))
    return untouched


# --- PyTorchVideo i3d_r50 --------------------------------------------------------------------


class _BasicStem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 64, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False)
        self.norm = nn.BatchNorm3d(64, eps=1e-5, momentum=0.1)
        self.activation = nn.ReLU()
        self.pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.activation(self.norm(self.conv(x))))


class _Bottleneck(nn.Module):
    def __init__(self, cin: int, inner: int, cout: int, kt: int, spatial_stride: int):
        super().__init__()
        self.conv_a = nn.Conv3d(cin, inner, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False)
        self.norm_a = nn.BatchNorm3d(inner, eps=1e-5, momentum=0.1)
        self.act_a = nn.ReLU()
        s = (1, spatial_stride, spatial_stride)
        self.conv_b = nn.Conv3d(inner, inner, (1, 3, 3), stride=s, padding=(0, 1, 1), bias=False)
        self.norm_b = nn.BatchNorm3d(inner, eps=1e-5, momentum=0.1)
        self.act_b = nn.ReLU()
        self.conv_c = nn.Conv3d(inner, cout, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(cout, eps=1e-5, momentum=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_a(self.norm_a(self.conv_a(x)))
        x = self.act_b(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class _ResBlock(nn.Module):
    def __init__(self, cin: int, inner: int, cout: int, kt: int, spatial_stride: int):
        super().__init__()
        if cin != cout or spatial_stride != 1:
            self.branch1_conv = nn.Conv3d(cin, cout, 1, stride=(1, spatial_stride, spatial_stride), bias=False)
            self.branch1_norm = nn.BatchNorm3d(cout, eps=1e-5, momentum=0.1)
        else:
            self.branch1_conv = None
            self.branch1_norm = None
        self.branch2 = _Bottleneck(cin, inner, cout, kt, spatial_stride)
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.branch1_conv is not None:
            shortcut = self.branch1_norm(self.branch1_conv(x))
        return self.activation(shortcut + self.branch2(x))


class _ResStage(nn.Module):
    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.res_blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        return x


class _Head(nn.Module):
    def __init__(self, num_classes: int, dropout: float):
        super().__init__()
        self.pool = nn.AvgPool3d((4, 7, 7), stride=1)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(2048, num_classes)
        self.output_pool = nn.AdaptiveAvgPool3d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.pool(x))
        x = self.proj(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
        return self.output_pool(x).flatten(1)


class I3dResNet50(nn.Module):
    """PyTorchVideo's `i3d_r50` (8x8 recipe): N x 3 x T x H x W, T >= 8, to N x classes logits."""

    # Temporal kernel of conv_a per block, cycled within each stage (PyTorchVideo's i3d_r50).
    STAGE_KT = ([3], [3, 1], [3, 1], [1, 3])
    STAGE_DEPTH = (3, 4, 6, 3)

    def __init__(self, num_classes: int = 400, dropout: float = 0.5):
        super().__init__()
        blocks: list[nn.Module] = [_BasicStem()]
        cin, cout = 64, 256
        for idx, depth in enumerate(self.STAGE_DEPTH):
            kts = self.STAGE_KT[idx]
            stage = []
            for b in range(depth):
                stride = 2 if (b == 0 and idx > 0) else 1
                stage.append(_ResBlock(cin if b == 0 else cout, cout // 4, cout, kts[b % len(kts)], stride))
            blocks.append(_ResStage(stage))
            if idx == 0:
                blocks.append(nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1)))
            cin, cout = cout, cout * 2
        blocks.append(_Head(num_classes, dropout))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def init_resnet(model: nn.Module) -> None:
    """PyTorchVideo-style initialisation: Kaiming-normal convs, BN at identity, normal(0.01)
    projection. The final BN of each bottleneck is not zeroed (PyTorchVideo does that for
    training), so a randomly initialised network exercises every block."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)


def _triple(v) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else tuple(v)
