"""The TorchScript model alone on random tensors of the shape, precision and batch sizes of a
vidcls run (the compute bound): prints one JSON object.

    python -m vbench.model_alone --weights M.pt --precision bf16 --batches 8,8,4 --frames 8 --crop 64
"""

from __future__ import annotations

import argparse
import json
import time


def measure(module, kind, autocast: bool, batches: list[int], frames: int, crop: int, budget_s: float) -> dict:
    import torch

    def fwd(x):
        with torch.no_grad():
            if autocast:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return module(x).float()
            return module(x.to(kind)).float()

    fwd(torch.randn(batches[0], 3, frames, crop, crop))  # warm-up (vidcls probes once at load)
    done, views, per_batch = 0, 0, []
    start, cpu = time.perf_counter(), 0.0
    for b in batches:
        x = torch.randn(b, 3, frames, crop, crop)
        t, c = time.perf_counter(), time.process_time()
        fwd(x)
        per_batch.append(round((time.perf_counter() - t) * 1e3, 2))
        cpu += time.process_time() - c  # every thread of the process
        done += 1
        views += b
        if time.perf_counter() - start > budget_s and done >= 2:
            break
    secs = sum(per_batch) / 1e3
    return {"views": views, "batches_run": done, "batches_planned": len(batches),
            "seconds": round(secs, 3), "views_per_s": views / secs, "batch_ms": per_batch,
            "cpu_seconds": round(cpu, 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--precision", choices=("fp32", "bf16"), required=True)
    ap.add_argument("--batches", required=True, help="comma-separated batch sizes, in order")
    ap.add_argument("--frames", type=int, required=True)
    ap.add_argument("--crop", type=int, required=True)
    ap.add_argument("--budget-s", type=float, required=True, help="stop after this long (at least 2 batches)")
    ap.add_argument("--threads", type=int, required=True)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    # vidcls turns the profiling executor off (the first calls would run another graph).
    torch._C._jit_set_profiling_mode(False)
    batches = [int(b) for b in args.batches.split(",")]
    shape = (batches, args.frames, args.crop, args.budget_s)
    out = {"threads": torch.get_num_threads(), "torch": torch.__version__, "frames": args.frames, "crop": args.crop}
    module = torch.jit.load(args.weights, map_location="cpu").eval()
    if args.precision == "fp32":
        out.update(measure(module, torch.float32, False, *shape))
    else:
        try:
            out.update(measure(module.to(torch.bfloat16), torch.bfloat16, False, *shape))
        except RuntimeError as e:
            out["error"] = str(e).strip().splitlines()[-1][:300] if str(e).strip() else repr(e)
            # What a bf16 path that keeps unsupported ops in float32 would give.
            module = torch.jit.load(args.weights, map_location="cpu").eval()
            try:
                out["autocast"] = measure(module, torch.float32, True, *shape)
            except RuntimeError as e2:
                out["autocast"] = {"error": str(e2).strip().splitlines()[-1][:300]}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
