"""A TorchScript model that only averages its input into one score per label: vidcls running it
spends its time decoding and preprocessing (`vbench.defaults`).

    python -m vbench.stand_in OUT.pt LABELS
"""

from __future__ import annotations

import sys

import torch


class Mean(torch.nn.Module):
    """Scores that only average the input: the forward pass costs one read of it."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x):
        return x.flatten(1).float().mean(1, keepdim=True).expand(x.shape[0], self.n).contiguous()


def main(argv: list[str]) -> int:
    out, labels = argv
    torch.jit.script(Mean(int(labels))).save(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
