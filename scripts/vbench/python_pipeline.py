"""scripts/reference_predict.py as a Python user would run it for speed: in fp32 or in bf16 the way
vidcls runs bf16 (the loaded module in bfloat16, its input converted, its output turned back to
float), and with --seek decoding only what the clips show (the headline baseline), or without it
decoding every frame of the file as the parity reference does (the second row).

    python -m vbench.python_pipeline --precision bf16 [--seek] -- --model CONFIG VIDEO...

--seek: the duration, start and average rate come from the container's metadata (as torchcodec
and PyAV users read them); each clip seeks with PyAV to the keyframe at or before its first
sampling time and decodes until its last one, converting to RGB only the frames it keeps. The
sampling rules are the same (scripts/frame_sampling.py). `frame_indices` then count the kept
frames, not positions in the file.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def bf16_loader():
    import torch

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


class Seeker:
    """A video opened for seeking: metadata now, frames when `plan` asks for its clips."""

    def __init__(self, path: str):
        import av

        import frame_sampling as fs

        self.container = av.open(path)
        if not self.container.streams.video:
            self.container.close()
            raise ValueError("no video stream")
        s = self.stream = self.container.streams.video[0]
        s.thread_type = "AUTO"
        self.tb = s.time_base
        self.start = s.start_time or 0
        self.avg_fps = float(s.average_rate) if s.average_rate else None
        if s.duration:
            self.duration = float(s.duration * self.tb)
        elif self.container.duration:
            self.duration = self.container.duration / 1e6
        else:
            raise ValueError("no duration in the metadata")
        self.eps = fs.tolerance(self.tb)
        self.frames: list[np.ndarray] = []
        self._last = None

    def clip(self, times: list[float]) -> list[int]:
        """Seeks before times[0], decodes up to the frame shown at times[-1]; the kept frames'
        positions in self.frames, one per sampling time (the last frame repeats past the end)."""
        self.container.seek(self.start + int(times[0] / self.tb), stream=self.stream, backward=True)
        want, kept, prev = list(times), [], None
        for frame in self.container.decode(self.stream):
            t = float((frame.pts - self.start) * self.tb) if frame.pts is not None else 0.0
            while want and t > want[0] + self.eps:
                kept.append(self.keep(prev if prev is not None else frame))
                want.pop(0)
            if not want:
                break
            prev = frame
        while want and prev is not None:
            kept.append(self.keep(prev))
            want.pop(0)
        if want:
            raise ValueError("no decodable frames")
        return kept

    def keep(self, frame) -> int:
        if frame is self._last:
            return len(self.frames) - 1
        rgb = frame.to_ndarray(format="rgb24")
        k = int(round((frame.rotation or 0) / 90.0)) % 4
        self.frames.append(np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb)
        self._last = frame
        return len(self.frames) - 1


def seek_plan(decoded: Seeker, frames: int, fps: float | None, stride: int, clips: int):
    """reference_predict.plan's result for a Seeker: per clip (kept-frame positions, times, padded)."""
    import frame_sampling as fs

    out = []
    try:
        for times in fs.clip_times(decoded.duration, frames, fps, stride, clips, decoded.avg_fps):
            padded = sum(1 for t in times if fs.padded(t, decoded.duration, decoded.eps))
            out.append((decoded.clip(times), times, padded))
    finally:
        decoded.container.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--precision", choices=("fp32", "bf16"), required=True)
    ap.add_argument("--seek", action="store_true", help="decode only what the clips show")
    ap.add_argument("reference_args", nargs=argparse.REMAINDER,
                    help="after --: the arguments of scripts/reference_predict.py")
    args = ap.parse_args(argv)
    rest = args.reference_args[1:] if args.reference_args[:1] == ["--"] else args.reference_args
    import reference_predict

    if args.precision == "bf16":
        bf16_loader()
    if args.seek:
        reference_predict.decode = Seeker
        reference_predict.plan = seek_plan
    return reference_predict.main(rest)


if __name__ == "__main__":
    sys.exit(main())
