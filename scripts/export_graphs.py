#!/usr/bin/env python3
"""Exports weight-free TorchScript graphs (`models/graphs/NAME.pt`) that `vidcls models pull`
fills with published weights, so a user needs no Python to run a pretrained model.

A graph is the trace of the reference implementation (torchvision's VideoResNet family and S3D,
transformers' VideoMAE) in a thin wrapper with two methods, `forward(x)` (logits) and
`features(x)` (the pooled features the classifier reads), and a linear head named `fc`
(docs/ARCHITECTURE.md: what `vidcls train --from` and `embed` need). Every parameter and every
floating-point buffer is a parameter whose data is a one-element storage expanded to its shape,
so a graph is a few hundred KB; `vidcls models pull` replaces each one's data by name
(`Tensor::set_data`) with the weights file's tensor after applying the card's `rename` rules.
Floating-point buffers (BatchNorm statistics) become parameters that need no gradient because
libtorch's C API reaches a module's parameters, not its buffers.

The state-dict names a graph expects, and the renames from the published files, are printed
with `--names`. Examples:

  scripts/export_graphs.py --all
  scripts/export_graphs.py r2plus1d_18 videomae_small --names
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path

import torch
import torchvision.models.video as tvv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_models import keep_float32  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class VideoResNetGraph(torch.nn.Module):
    """torchvision's r3d_18 / mc3_18 / r2plus1d_18: the same modules under the same names."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.stem = net.stem
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.avgpool = net.avgpool
        self.fc = net.fc

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.avgpool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class S3DGraph(torch.nn.Module):
    """torchvision's S3D. Its classifier is a 1x1x1 convolution followed by a mean over time and
    space; a linear layer on the mean computes the same (the card reshapes the weight), and is
    the `fc` head training needs. `features` is torchvision's `features` (renamed `backbone`,
    since the method takes the name) plus its average pool, averaged over T x H x W."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.backbone = net.features
        self.avgpool = net.avgpool
        conv = net.classifier[1]
        self.fc = torch.nn.Linear(conv.in_channels, conv.out_channels)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        # Channels-last-3d activations from the first layer on, as the S3D export has them
        # (the card's `layout` puts the weights in that layout when vidcls loads the graph).
        x = x.contiguous(memory_format=torch.channels_last_3d)
        return self.avgpool(self.backbone(x)).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def sinusoid_table(n: int, d: int, like: torch.Tensor) -> torch.Tensor:
    """VideoMAE's fixed positions (transformers' `get_sinusoid_encoding_table`), computed in
    float64 inside the graph as transformers does in numpy, then cast to the activations'
    type: the table is not stored, so the graph stays small."""
    pos = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    j = torch.arange(d, dtype=torch.float64)
    angle = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64), 2.0 * torch.div(j, 2, rounding_mode="floor") / d)
    even = (torch.arange(d) % 2 == 0).unsqueeze(0)
    table = torch.where(even, torch.sin(angle), torch.cos(angle))
    return table.unsqueeze(0).type_as(like)


class VideoMAEGraph(torch.nn.Module):
    """transformers' VideoMAEForVideoClassification with mean pooling: tubelet embedding, fixed
    sinusoidal positions, the encoder, mean over tokens + fc_norm (`features`), classifier
    (`fc`). Input N x C x T x H x W, as every vidcls model takes it."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.videomae = net.videomae
        self.fc_norm = net.fc_norm
        self.fc = net.classifier

    def features(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.videomae.embeddings.patch_embeddings.projection(x).flatten(2).transpose(1, 2)
        h = emb + sinusoid_table(emb.shape[1], emb.shape[2], emb)
        for layer in self.videomae.encoder.layer:
            h = layer(h)
        return self.fc_norm(h.mean(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


# VideoMAE sizes with a graph: the config.json keys a Hub checkpoint must match.
VIDEOMAE_SIZES = {
    "videomae_small": {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6, "intermediate_size": 1536},
    "videomae_base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
}
VIDEOMAE_FIXED = {
    "image_size": 224, "patch_size": 16, "num_channels": 3, "num_frames": 16, "tubelet_size": 2,
    "hidden_act": "gelu", "layer_norm_eps": 1e-12, "use_mean_pooling": True,
}


def videomae_config(name: str, num_labels: int = 400):
    from transformers import VideoMAEConfig

    return VideoMAEConfig(**VIDEOMAE_SIZES[name], **VIDEOMAE_FIXED, qv_bias=True, num_labels=num_labels,
                          attn_implementation="eager")


def build_videomae(name: str, num_labels: int = 400) -> torch.nn.Module:
    from transformers import VideoMAEForVideoClassification

    return VideoMAEForVideoClassification(videomae_config(name, num_labels)).eval()


# name -> (builds the reference model, wraps it, clip length traced with, crop)
GRAPHS = {
    "r3d_18": (tvv.r3d_18, VideoResNetGraph, 16, 112),
    "mc3_18": (tvv.mc3_18, VideoResNetGraph, 16, 112),
    "r2plus1d_18": (tvv.r2plus1d_18, VideoResNetGraph, 16, 112),
    "s3d": (tvv.s3d, S3DGraph, 16, 224),
    "videomae_small": (lambda: build_videomae("videomae_small"), VideoMAEGraph, 16, 224),
    "videomae_base": (lambda: build_videomae("videomae_base"), VideoMAEGraph, 16, 224),
}

# Graphs whose 5-D weights vidcls stores channels-last-3d when it loads them (their cards say
# `"layout": "channels_last_3d"`), as the S3D export bakes in: its convolutions then run
# channels-last, as the export's do (bf16 2.54x faster for the model alone on a CPU with native
# bf16: docs/BENCHMARKS.md, "Channels-last-3d layout, model alone").
CHANNELS_LAST = {"s3d"}

# Published state-dict names -> graph names (applied in order, as `str.replace`), per graph.
RENAMES = {
    "s3d": [["features.", "backbone."], ["classifier.1.", "fc."]],
    "videomae_small": [["classifier.", "fc."], [".q_bias", ".query.bias"], [".v_bias", ".value.bias"]],
    "videomae_base": [["classifier.", "fc."], [".q_bias", ".query.bias"], [".v_bias", ".value.bias"]],
}


def weight_free(model: torch.nn.Module) -> None:
    """Every parameter and floating buffer becomes a parameter over a one-element storage
    expanded to its shape (buffers need no gradient), in place."""
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is not None:
                module._parameters[name] = torch.nn.Parameter(torch.zeros(1).expand(p.shape), p.requires_grad)
        for name, b in list(module._buffers.items()):
            if b is not None and b.is_floating_point():
                del module._buffers[name]
                module._parameters[name] = torch.nn.Parameter(torch.zeros(1).expand(b.shape), requires_grad=False)


def graph(name: str) -> tuple[torch.jit.ScriptModule, torch.nn.Module]:
    """The weight-free graph of `name`, and the wrapped reference module it was traced from."""
    build, wrap, frames, crop = GRAPHS[name]
    torch.manual_seed(0)
    model = wrap(build()).eval()
    keep_float32(model)
    weight_free(model)
    x = torch.zeros(1, 3, frames, crop, crop)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace_module(model, {"forward": x, "features": x}, check_trace=False)
    return traced, model


def export(name: str, out_dir: Path) -> Path:
    traced, _ = graph(name)
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    path = out_dir / f"{name}.pt"
    tmp = path.with_suffix(".pt.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", metavar="NAME", help=f"one or more of: {', '.join(GRAPHS)}")
    p.add_argument("--all", action="store_true", help="every graph")
    p.add_argument("--out-dir", type=Path, default=ROOT / "models" / "graphs")
    p.add_argument("--names", dest="show_names", action="store_true", help="print each graph's parameter names")
    args = p.parse_args(argv)
    names = list(GRAPHS) if args.all else args.names
    unknown = [n for n in names if n not in GRAPHS]
    if not names or unknown:
        p.error(f"name one or more of {', '.join(GRAPHS)} (or --all)")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = export(name, args.out_dir)
        print(f"{name}: {path} ({path.stat().st_size / 1e3:.0f} KB)", file=sys.stderr)
        if args.show_names:
            for n, t in torch.jit.load(str(path)).named_parameters():
                print(f"  {n} {tuple(t.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
