"""Where clips go in time and which decoded frame answers each sampling time: vidcls's rules
(src/decode/sample.rs places the clips, src/decode/video.rs picks the frames), in the one Python
implementation that scripts/reference_predict.py, scripts/eval_motion.py and the benchmark use.

- A clip of T frames at `fps` with `stride` spans L = T * stride / fps seconds and takes the
  times start + i * stride / fps. `fps` is the config's, else the video's average rate, else 30.
- Clip j of N in a video of duration D starts at (D - L) * (j + 0.5) / N when D >= L (N = 1 is
  the centre clip), else at 0, and its later times run past the end.
- The frame for time t is the last frame whose time (pts relative to the first frame) is
  <= t + eps, eps = half a tick of the stream's time base + 1 us: timestamps are rounded to
  ticks, so a frame stamped within half a tick of t counts as being at t. No such frame: the
  first one. A time t > D - eps lies past the last frame: it repeats the last frame (padding).
"""

from __future__ import annotations

from bisect import bisect_right
from fractions import Fraction

FALLBACK_FPS = 30.0
EPS_S = 1e-6


def tolerance(time_base: Fraction | float | None) -> float:
    """eps for a stream with this time base (seconds per tick); 1 us when there is none."""
    return 0.5 * float(time_base) + EPS_S if time_base else EPS_S


def effective_fps(fps: float | None, native_fps: float | None) -> float:
    """The rate to sample at: the config's, else the video's, else 30 (unusable rates skipped)."""
    for f in (fps, native_fps):
        if f is not None and f == f and 0 < f < float("inf"):
            return float(f)
    return FALLBACK_FPS


def clip_times(duration: float, frames: int, fps: float | None, stride: int, clips: int = 1,
               native_fps: float | None = None) -> list[list[float]]:
    """The sampling times of each clip, in seconds from the first frame."""
    step = max(stride, 1) / effective_fps(fps, native_fps)
    span = frames * step
    d = max(duration, 0.0)
    out = []
    for j in range(clips):
        start = (d - span) * (j + 0.5) / clips if d >= span else 0.0
        out.append([start + i * step for i in range(frames)])
    return out


def frame_at(times: list[float], t: float, eps: float) -> int:
    """Index of the frame shown at time t: the last one with times[i] <= t + eps (times sorted),
    or 0 when t comes before every frame."""
    return max(bisect_right(times, t + eps) - 1, 0)


def padded(t: float, duration: float, eps: float) -> bool:
    """Whether time t lies past the last frame (the clip repeats that frame there)."""
    return t > duration - eps
