#!/usr/bin/env python3
"""CUDA numerics and throughput of the exported architectures, for a machine with a GPU.

For r2plus1d_18, s3d and i3d (random-init, seed 0, traced exactly as scripts/export_models.py
does) and the default motion model (models/motion.pt), runs the same clips on the CPU in fp32 and
on CUDA in fp32 and fp16 and reports the largest probability difference (fp32: must be <= 1e-3)
and top-1 agreement (fp16). Then clips/s of r2plus1d_18 at batch 1 and 32 in fp32 and fp16.
Prints a Markdown table and writes JSON to --json.

    python scripts/cuda_check.py --json cuda.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import export_models as em  # noqa: E402


def clips(n: int, t: int, crop: int, seed: int) -> torch.Tensor:
    """Smooth moving patterns (not white noise), normalised like real input."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 1, crop // 8, crop // 8, generator=g)
    x = torch.nn.functional.interpolate(base, size=(1, crop, crop), mode="trilinear", align_corners=False)
    shifts = [torch.roll(x, shifts=i * 2, dims=4) for i in range(t)]
    return ((torch.cat(shifts, dim=2) - 0.45) / 0.225).contiguous()


def traced(arch: str, frames: int):
    spec = em.SPECS[arch]
    torch.manual_seed(0)
    model = spec.build() if arch.startswith("i3d") else spec.build(weights=None)
    _, crop, _, _ = em.preprocessing(spec)
    # Random weights with identity BN statistics give near-uniform outputs, where top-1 means
    # nothing: set BN statistics from a batch, so activations (and outputs) have real spread.
    with torch.no_grad():
        for w in model.parameters():
            if w.dim() > 1 and float(w.std()) == 0.0:
                w.normal_(0.0, 0.05)
        for mod in model.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.momentum = None
        model.train()
        model(clips(4, frames, crop, seed=99))
    model.eval()
    with torch.no_grad():
        m = torch.jit.trace(model, torch.zeros(1, 3, frames, crop, crop))
    return m, crop


def probs(module, x: torch.Tensor, device: str, half: bool) -> torch.Tensor:
    m = module.to(device)
    m = m.half() if half else m.float()
    with torch.no_grad():
        out = m(x.to(device).half() if half else x.to(device))
    return torch.softmax(out.float().cpu(), dim=1)


def throughput(module, crop: int, frames: int, batch: int, half: bool, iters: int = 10) -> float:
    m = module.to("cuda")
    m = m.half() if half else m.float()
    x = torch.randn(batch, 3, frames, crop, crop, device="cuda")
    x = x.half() if half else x
    with torch.no_grad():
        for _ in range(3):
            m(x)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(iters):
            m(x)
        torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path)
    p.add_argument("--motion-config", type=Path, default=ROOT / "configs" / "motion.json",
                   help="the trained model to check (its .pt beside the config or in ../models/)")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = False
    report = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "models": [], "throughput": []}
    models = []
    for arch, frames in [("r2plus1d_18", 16), ("s3d", 16), ("i3d", 16)]:
        m, crop = traced(arch, frames)
        models.append((arch, m, crop, frames))
    cfg = json.loads(args.motion_config.read_text())
    motion = args.motion_config.parent / cfg["file"]
    if not motion.exists():
        motion = args.motion_config.parent.parent / "models" / cfg["file"]
    try:
        models.append(("motion (trained)", torch.jit.load(str(motion), map_location="cpu"), cfg["crop"], cfg["frames"]))
    except Exception as e:  # a file from a newer torch may not load in this one
        report["motion_error"] = str(e).splitlines()[0]
    for name, m, crop, frames in models:
        x = clips(8, frames, crop, seed=1)
        cpu = probs(m, x, "cpu", False)
        g32 = probs(m, x, "cuda", False)
        g16 = probs(m, x, "cuda", True)
        row = {
            "model": name,
            "clips": x.shape[0],
            "fp32_max_abs_diff": float((cpu - g32).abs().max()),
            "fp16_max_abs_diff": float((cpu - g16).abs().max()),
            "fp16_top1_agreement": float((cpu.argmax(1) == g16.argmax(1)).float().mean()),
            "cpu_top1_margin_min": float((cpu.topk(2).values[:, 0] - cpu.topk(2).values[:, 1]).min()),
        }
        report["models"].append(row)
    r2p, crop = models[0][1], models[0][2]
    for batch in (1, 32):
        for half in (False, True):
            report["throughput"].append(
                {"model": "r2plus1d_18", "batch": batch, "precision": "fp16" if half else "fp32",
                 "clips_per_s": throughput(r2p, crop, 16, batch, half)}
            )
    print(f"torch {report['torch']} on {report['gpu']}\n")
    print("| model | clips | fp32 max abs diff vs CPU | fp16 max abs diff | fp16 top-1 agreement | min top-1 margin (CPU) |")
    print("|---|---|---|---|---|---|")
    for r in report["models"]:
        print(f"| {r['model']} | {r['clips']} | {r['fp32_max_abs_diff']:.2e} | {r['fp16_max_abs_diff']:.2e} | "
              f"{r['fp16_top1_agreement']:.0%} | {r['cpu_top1_margin_min']:.2e} |")
    print("\n| model | batch | precision | clips/s |\n|---|---|---|---|")
    for r in report["throughput"]:
        print(f"| {r['model']} | {r['batch']} | {r['precision']} | {r['clips_per_s']:.1f} |")
    if "motion_error" in report:
        print(f"\nmotion model not loaded: {report['motion_error']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    ok = all(r["fp32_max_abs_diff"] <= 1e-3 for r in report["models"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
