#!/usr/bin/env python3
"""scripts/reference_predict.py with every sampled frame replaced by the next one (the last
frame stays the last): a deliberately wrong reference, one frame late, that the parity check
in tests/models.rs must reject. Same arguments and output as reference_predict.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import reference_predict as rp  # noqa: E402

_plan = rp.plan


def one_frame_late(decoded, *args, **kwargs):
    last = len(decoded.times) - 1
    out = []
    for idx, _, padded in _plan(decoded, *args, **kwargs):
        idx = [min(k + 1, last) for k in idx]
        out.append((idx, [decoded.times[k] for k in idx], padded))
    return out


rp.plan = one_frame_late

if __name__ == "__main__":
    sys.exit(rp.main())
