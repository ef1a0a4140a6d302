"""scripts/reference_predict.py as it is, in fp32 or in bf16 the way vidcls runs bf16 (the loaded
module in bfloat16, its input converted, its output turned back to float).

    python -m vbench.python_pipeline --precision bf16 -- --model CONFIG VIDEO...
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--precision", choices=("fp32", "bf16"), required=True)
    ap.add_argument("reference_args", nargs=argparse.REMAINDER,
                    help="after --: the arguments of scripts/reference_predict.py")
    args = ap.parse_args(argv)
    rest = args.reference_args[1:] if args.reference_args[:1] == ["--"] else args.reference_args
    import torch

    import reference_predict

    if args.precision == "bf16":
        load = torch.jit.load

        class Bf16:
            def __init__(self, m):
                self.m = m.to(torch.bfloat16)

            def eval(self):
                self.m.eval()
                return self

            def __call__(self, x):
                return self.m(x.to(torch.bfloat16)).float()

        torch.jit.load = lambda *a, **k: Bf16(load(*a, **k))
    return reference_predict.main(rest)


if __name__ == "__main__":
    sys.exit(main())
