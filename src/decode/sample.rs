//! Where clips go in time: pure arithmetic on durations, testable without a video.
//!
//! A clip of `T` frames sampled at `fps` with temporal `stride` takes the frames shown at
//! `start + i * stride / fps` for `i` in `0..T`; which decoded frame answers each of those times
//! is decided in `video.rs` (the frame a player shows at that moment).

use serde::{Deserialize, Serialize};

/// Frame rate assumed when neither the spec nor the video gives a usable one.
pub(super) const FALLBACK_FPS: f64 = 30.0;

/// How to sample clips from a video; from the model config, overridable on the command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingSpec {
    /// Frames per clip (T).
    pub frames: usize,
    /// Rate frames are sampled at; `None` means the video's own average rate.
    pub fps: Option<f64>,
    /// Take every `stride`-th frame at that rate.
    pub stride: usize,
    /// Clips spread uniformly over the range (1 = the centre clip).
    pub clips: usize,
}

impl SamplingSpec {
    /// Seconds between two sampled frames of a clip (`stride / fps`).
    pub fn step(&self, native_fps: f64) -> f64 {
        self.stride.max(1) as f64 / effective_fps(self.fps, native_fps)
    }

    /// Seconds one clip spans (`frames * stride / fps`).
    pub fn span(&self, native_fps: f64) -> f64 {
        self.frames as f64 * self.step(native_fps)
    }
}

/// One clip's place in time: the timestamps whose frames it takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipPlan {
    pub start: f64,
    pub end: f64,
    pub times: Vec<f64>,
}

/// Plans `spec.clips` clips inside `[range_start, range_end)` seconds.
///
/// A clip spans `L = frames * stride / fps` seconds (`fps` is `spec.fps`, else `native_fps`, else
/// 30) and takes the times `start + i * stride / fps`, `i` in `0..frames`; `end = start + L`.
/// With `D = range_end - range_start` and `N = spec.clips`: if `D >= L`, clip `j` starts at
/// `range_start + (D - L) * (j + 0.5) / N`, so the clips are spread evenly and `N = 1` is exactly
/// the centre clip; if `D < L`, every clip starts at `range_start` and its times run past the
/// range (the reader pads them with the last frame). `N = 0` or `frames = 0` plans nothing.
pub fn plan_clips(
    range_start: f64,
    range_end: f64,
    native_fps: f64,
    spec: &SamplingSpec,
) -> Vec<ClipPlan> {
    if spec.clips == 0 || spec.frames == 0 {
        return Vec::new();
    }
    let range_start = if range_start.is_finite() {
        range_start.max(0.0)
    } else {
        0.0
    };
    let length = if range_end.is_finite() {
        (range_end - range_start).max(0.0)
    } else {
        0.0
    };
    let step = spec.step(native_fps);
    let span = spec.span(native_fps);
    let n = spec.clips as f64;
    (0..spec.clips)
        .map(|j| {
            let start = if length >= span {
                range_start + (length - span) * (j as f64 + 0.5) / n
            } else {
                range_start
            };
            ClipPlan {
                start,
                end: start + span,
                times: (0..spec.frames).map(|i| start + i as f64 * step).collect(),
            }
        })
        .collect()
}

/// The rate to sample at: the spec's, else the video's, else [`FALLBACK_FPS`].
fn effective_fps(spec_fps: Option<f64>, native_fps: f64) -> f64 {
    let usable = |f: f64| f.is_finite() && f > 0.0;
    match spec_fps {
        Some(f) if usable(f) => f,
        _ if usable(native_fps) => native_fps,
        _ => FALLBACK_FPS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(frames: usize, fps: Option<f64>, stride: usize, clips: usize) -> SamplingSpec {
        SamplingSpec {
            frames,
            fps,
            stride,
            clips,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn one_clip_is_the_centre_clip() {
        // 8 frames, stride 2 at 30 fps: L = 16/30 s; in 2 s the clip starts at (2 - L) / 2.
        let plans = plan_clips(0.0, 2.0, 30.0, &spec(8, None, 2, 1));
        assert_eq!(plans.len(), 1);
        let p = &plans[0];
        let span = 16.0 / 30.0;
        assert!(close(p.start, (2.0 - span) / 2.0));
        assert!(close(p.end, p.start + span));
        assert!(close((p.start + p.end) / 2.0, 1.0), "centred on the middle");
        assert_eq!(p.times.len(), 8);
        for (i, t) in p.times.iter().enumerate() {
            assert!(close(*t, p.start + i as f64 * 2.0 / 30.0));
        }
    }

    #[test]
    fn spec_fps_overrides_native_fps() {
        let plans = plan_clips(0.0, 10.0, 30.0, &spec(16, Some(15.0), 1, 1));
        let p = &plans[0];
        assert!(close(p.end - p.start, 16.0 / 15.0));
        assert!(close(p.times[1] - p.times[0], 1.0 / 15.0));
    }

    #[test]
    fn clips_are_spread_uniformly() {
        // D = 10, L = 1: starts at 9 * (j + 0.5) / 3 = 1.5, 4.5, 7.5.
        let plans = plan_clips(0.0, 10.0, 25.0, &spec(10, Some(10.0), 1, 3));
        let starts: Vec<f64> = plans.iter().map(|p| p.start).collect();
        assert_eq!(starts.len(), 3);
        for (got, want) in starts.iter().zip([1.5, 4.5, 7.5]) {
            assert!(close(*got, want), "{starts:?}");
        }
        for p in &plans {
            assert!(p.start >= 0.0 && p.end <= 10.0);
            assert!(p.times.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn range_offsets_the_clips() {
        let plans = plan_clips(20.0, 30.0, 30.0, &spec(10, Some(10.0), 1, 1));
        assert!(close(plans[0].start, 24.5));
        assert!(close(plans[0].end, 25.5));
    }

    #[test]
    fn range_exactly_one_clip_long_starts_at_its_start() {
        let plans = plan_clips(0.0, 1.0, 30.0, &spec(10, Some(10.0), 1, 4));
        assert_eq!(plans.len(), 4);
        for p in &plans {
            assert!(close(p.start, 0.0));
            assert!(p.times.iter().all(|t| *t < 1.0));
        }
    }

    #[test]
    fn short_range_starts_every_clip_at_the_range_start() {
        let plans = plan_clips(0.0, 0.1, 30.0, &spec(16, Some(15.0), 1, 2));
        assert_eq!(plans.len(), 2);
        for p in &plans {
            assert_eq!(p.start, 0.0);
            assert!(close(p.end, 16.0 / 15.0));
            assert!(
                p.times.last().is_some_and(|t| *t > 0.1),
                "runs past the range"
            );
        }
    }

    #[test]
    fn zero_clips_or_frames_plan_nothing() {
        assert!(plan_clips(0.0, 5.0, 30.0, &spec(8, None, 1, 0)).is_empty());
        assert!(plan_clips(0.0, 5.0, 30.0, &spec(0, None, 1, 3)).is_empty());
    }

    #[test]
    fn unusable_rates_fall_back() {
        // No spec fps and a zero native fps: 30 fps.
        let p = &plan_clips(0.0, 10.0, 0.0, &spec(2, None, 1, 1))[0];
        assert!(close(p.times[1] - p.times[0], 1.0 / 30.0));
        // A zero stride counts as 1; a nonsense spec fps falls back to the native one.
        let p = &plan_clips(0.0, 10.0, 25.0, &spec(2, Some(f64::NAN), 0, 1))[0];
        assert!(close(p.times[1] - p.times[0], 1.0 / 25.0));
    }

    #[test]
    fn bad_ranges_do_not_produce_negative_times() {
        let p = &plan_clips(5.0, 1.0, 30.0, &spec(3, None, 1, 1))[0];
        assert_eq!(p.start, 5.0);
        let p = &plan_clips(f64::NAN, f64::INFINITY, 30.0, &spec(3, None, 1, 1))[0];
        assert_eq!(p.start, 0.0);
    }
}
