//! Action segments: one video's per-window scores -> spans where a label holds.
//!
//! The rules, per label and independently of the other labels (so segments of different labels
//! may overlap):
//!
//! - **Span of a window.** Windows overlap (hop < window) or leave gaps (hop > window), so each
//!   window stands for the part of the time line nearest to it: from the midpoint between the
//!   previous window's end and its own start, to the midpoint between its own end and the next
//!   window's start; the first window starts at its start, the last ends at its end. For windows
//!   that tile the video (hop = window) that is the window itself.
//! - **Hysteresis.** A segment starts at the first window whose score is at or above `on`, and
//!   holds through every following window whose score is at or above `off` (`off <= on`); it ends
//!   before the first window below `off`. A score that is not a number counts as below `off`.
//! - **Gaps.** Two segments of a label whose spans are at most `max_gap` seconds apart become one
//!   (the windows between them join it).
//! - **Minimum duration.** Segments (after bridging) shorter than `min_duration` seconds are
//!   dropped; one exactly that long is kept.
//! - **Score.** The mean of the label's score over every window the segment covers (bridged
//!   windows included, so a bridged dip shows in it).
//! - **Order.** By start time, then by class index.

use super::{Segment, Window};

/// The thresholds and tolerances of [`segments`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentRules {
    /// A segment starts at a window scoring at least this.
    pub on: f64,
    /// It lasts while windows score at least this (at most `on`).
    pub off: f64,
    /// Segments shorter than this many seconds are dropped.
    pub min_duration: f64,
    /// Segments of one label at most this many seconds apart are joined.
    pub max_gap: f64,
}

impl Default for SegmentRules {
    fn default() -> Self {
        SegmentRules {
            on: 0.5,
            off: 0.3,
            min_duration: 1.0,
            max_gap: 1.0,
        }
    }
}

impl SegmentRules {
    /// Checks that the rules make sense together; the message names the field.
    pub fn check(&self) -> Result<(), String> {
        let unit = |v: f64| (0.0..=1.0).contains(&v);
        if !unit(self.on) {
            return Err(format!("on threshold {}: must be within 0..1", self.on));
        }
        if !unit(self.off) {
            return Err(format!("off threshold {}: must be within 0..1", self.off));
        }
        if self.off > self.on {
            return Err(format!(
                "off threshold {} is above the on threshold {}: it must be at most that",
                self.off, self.on
            ));
        }
        for (name, v) in [
            ("min duration", self.min_duration),
            ("max gap", self.max_gap),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} {v}: must be zero or more seconds"));
            }
        }
        Ok(())
    }
}

/// The span each window stands for (see the module notes); `windows` in time order.
pub fn window_spans(windows: &[Window]) -> Vec<Window> {
    let n = windows.len();
    (0..n)
        .map(|i| {
            let start = if i == 0 {
                windows[0].start
            } else {
                (windows[i - 1].end + windows[i].start) / 2.0
            };
            let end = if i + 1 == n {
                windows[i].end
            } else {
                (windows[i].end + windows[i + 1].start) / 2.0
            };
            Window::new(start, end)
        })
        .collect()
}

/// The segments of one video: `windows[i]` was scored `scores[i]` (one score per label, in
/// `labels` order).
pub fn segments(
    path: &str,
    windows: &[Window],
    scores: &[Vec<f64>],
    labels: &[String],
    rules: &SegmentRules,
) -> Vec<Segment> {
    assert_eq!(windows.len(), scores.len(), "one score row per window");
    let spans = window_spans(windows);
    let mut out = Vec::new();
    for (c, label) in labels.iter().enumerate() {
        let score = |i: usize| scores[i].get(c).copied().unwrap_or(f64::NAN);
        let runs = bridge(
            hysteresis(scores.len(), &score, rules),
            &spans,
            rules.max_gap,
        );
        for (first, last) in runs {
            let (start, end) = (spans[first].start, spans[last].end);
            if end - start < rules.min_duration {
                continue;
            }
            let mean = (first..=last).map(score).sum::<f64>() / (last - first + 1) as f64;
            out.push(Segment {
                path: path.to_string(),
                start,
                end,
                label: label.clone(),
                index: c,
                score: mean,
            });
        }
    }
    out.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.index.cmp(&b.index)));
    out
}

/// Runs of windows (first, last) where one label holds, by the on/off rule.
fn hysteresis(n: usize, score: &dyn Fn(usize) -> f64, rules: &SegmentRules) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut open: Option<usize> = None;
    for i in 0..n {
        let s = score(i);
        match open {
            None if s >= rules.on => open = Some(i),
            Some(first) if s.is_nan() || s < rules.off => {
                // s < off <= on: this window cannot start the next segment.
                runs.push((first, i - 1));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(first) = open {
        runs.push((first, n - 1));
    }
    runs
}

/// Joins runs whose spans are at most `max_gap` seconds apart.
fn bridge(runs: Vec<(usize, usize)>, spans: &[Window], max_gap: f64) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (first, last) in runs {
        match out.last_mut() {
            Some(prev) if spans[first].start - spans[prev.1].end <= max_gap => prev.1 = last,
            _ => out.push((first, last)),
        }
    }
    out
}

/// [`segments`] over a stream of windows that has no end yet: each segment is given once, as
/// soon as no later window can change it, so the segments given (with [`SegmentStream::finish`]
/// at the end) are those of [`segments`] over the whole stream.
///
/// A segment is final once it has ended and a new run of its label could not be joined to it:
/// its end is more than `max_gap` before the latest window's start (a later window's span
/// starts after that). Windows are kept only while a label may still be in a segment: once no
/// window within `max_gap` of the latest one scores `off` or more for any label, every run has
/// ended beyond joining, and only the latest window is kept (the next one's span starts at the
/// midpoint between them).
#[derive(Debug)]
pub struct SegmentStream {
    path: String,
    labels: Vec<String>,
    rules: SegmentRules,
    windows: Vec<Window>,
    scores: Vec<Vec<f64>>,
    /// (class, start) of the segments given among the windows kept.
    given: Vec<(usize, f64)>,
}

impl SegmentStream {
    pub fn new(path: &str, labels: &[String], rules: SegmentRules) -> SegmentStream {
        SegmentStream {
            path: path.to_string(),
            labels: labels.to_vec(),
            rules,
            windows: Vec::new(),
            scores: Vec::new(),
            given: Vec::new(),
        }
    }

    /// Adds the next window (after every window so far) and returns the segments it closed.
    pub fn push(&mut self, window: Window, scores: Vec<f64>) -> Vec<Segment> {
        self.windows.push(window);
        self.scores.push(scores);
        let closed = self.new_segments(|s, rules| s.end + rules.max_gap < window.start);
        if self.quiet() {
            self.windows.drain(..self.windows.len() - 1);
            self.scores.drain(..self.scores.len() - 1);
            self.given.clear();
        }
        closed
    }

    /// The segments not given yet, at the end of the stream.
    pub fn finish(&mut self) -> Vec<Segment> {
        self.new_segments(|_, _| true)
    }

    /// The segments over the windows kept that pass `done` and were not given before.
    fn new_segments(&mut self, done: impl Fn(&Segment, &SegmentRules) -> bool) -> Vec<Segment> {
        let all = segments(
            &self.path,
            &self.windows,
            &self.scores,
            &self.labels,
            &self.rules,
        );
        let fresh: Vec<Segment> = all
            .into_iter()
            .filter(|s| done(s, &self.rules) && !self.given.contains(&(s.index, s.start)))
            .collect();
        self.given.extend(fresh.iter().map(|s| (s.index, s.start)));
        fresh
    }

    /// No window within `max_gap` of the latest one scores `off` or more for any label.
    fn quiet(&self) -> bool {
        let Some(latest) = self.windows.last() else {
            return true;
        };
        window_spans(&self.windows)
            .iter()
            .zip(&self.scores)
            .filter(|(span, _)| span.end + self.rules.max_gap >= latest.start)
            .all(|(_, row)| row.iter().all(|&v| v < self.rules.off || v.is_nan()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    /// Tiled 1-second windows scoring `a[i]` for label a and `1 - a[i]` for b.
    fn tiled(a: &[f64]) -> (Vec<Window>, Vec<Vec<f64>>) {
        let w = (0..a.len())
            .map(|i| Window::new(i as f64, i as f64 + 1.0))
            .collect();
        let s = a.iter().map(|&x| vec![x, 1.0 - x]).collect();
        (w, s)
    }

    fn rules(on: f64, off: f64, min_duration: f64, max_gap: f64) -> SegmentRules {
        SegmentRules {
            on,
            off,
            min_duration,
            max_gap,
        }
    }

    /// (label, start, end) of each segment.
    fn spans_of(segs: &[Segment]) -> Vec<(&str, f64, f64)> {
        segs.iter()
            .map(|s| (s.label.as_str(), s.start, s.end))
            .collect()
    }

    fn only_a(a: &[f64], r: SegmentRules) -> Vec<(f64, f64)> {
        let (w, s) = tiled(a);
        segments("v.mp4", &w, &s, &labels(), &r)
            .into_iter()
            .filter(|s| s.label == "a")
            .map(|s| (s.start, s.end))
            .collect()
    }

    #[test]
    fn thresholds_start_at_or_above_on() {
        let r = rules(0.6, 0.6, 0.0, 0.0);
        // 0.6 is a start (at the threshold), 0.59 is not.
        assert_eq!(only_a(&[0.59, 0.6, 0.59], r), vec![(1.0, 2.0)]);
        assert_eq!(only_a(&[0.1, 0.2, 0.3], r), vec![]);
        assert_eq!(only_a(&[0.9, 0.9, 0.9], r), vec![(0.0, 3.0)]);
    }

    #[test]
    fn hysteresis_holds_between_off_and_on() {
        let r = rules(0.7, 0.3, 0.0, 0.0);
        // Starts at 0.8, holds through 0.5 and 0.3 (at off), ends before 0.29.
        assert_eq!(
            only_a(&[0.5, 0.8, 0.5, 0.3, 0.29, 0.5], r),
            vec![(1.0, 4.0)]
        );
        // Without hysteresis (off = on) the same scores give a shorter segment.
        assert_eq!(
            only_a(&[0.5, 0.8, 0.5, 0.3, 0.29, 0.5], rules(0.7, 0.7, 0.0, 0.0)),
            vec![(1.0, 2.0)]
        );
        // After an end, the next segment waits for a score at or above on again.
        assert_eq!(
            only_a(&[0.8, 0.1, 0.5, 0.9, 0.4], r),
            vec![(0.0, 1.0), (3.0, 5.0)]
        );
        // NaN ends a segment.
        assert_eq!(
            only_a(&[0.8, f64::NAN, 0.8], r),
            vec![(0.0, 1.0), (2.0, 3.0)]
        );
    }

    #[test]
    fn min_duration_drops_short_segments_keeps_equal() {
        let a = [0.9, 0.1, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9];
        assert_eq!(
            only_a(&a, rules(0.5, 0.5, 2.0, 0.0)),
            vec![(2.0, 4.0), (5.0, 8.0)]
        );
        assert_eq!(only_a(&a, rules(0.5, 0.5, 2.5, 0.0)), vec![(5.0, 8.0)]);
        assert_eq!(only_a(&a, rules(0.5, 0.5, 3.5, 0.0)), vec![]);
    }

    #[test]
    fn gaps_up_to_max_gap_are_bridged() {
        let a = [0.9, 0.1, 0.9, 0.1, 0.1, 0.9];
        // Gaps of 1 s and 2 s.
        assert_eq!(
            only_a(&a, rules(0.5, 0.5, 0.0, 0.0)),
            vec![(0.0, 1.0), (2.0, 3.0), (5.0, 6.0)]
        );
        assert_eq!(
            only_a(&a, rules(0.5, 0.5, 0.0, 1.0)),
            vec![(0.0, 3.0), (5.0, 6.0)]
        );
        assert_eq!(only_a(&a, rules(0.5, 0.5, 0.0, 2.0)), vec![(0.0, 6.0)]);
        // Bridging comes before the minimum duration: two 1-s pieces make a 3-s segment.
        assert_eq!(
            only_a(&[0.9, 0.1, 0.9], rules(0.5, 0.5, 2.5, 1.0)),
            vec![(0.0, 3.0)]
        );
    }

    #[test]
    fn score_is_the_mean_over_covered_windows() {
        let (w, s) = tiled(&[0.9, 0.1, 0.8]);
        let segs = segments("v.mp4", &w, &s, &labels(), &rules(0.5, 0.5, 0.0, 1.0));
        let a = segs.iter().find(|s| s.label == "a").unwrap();
        assert!((a.score - 0.6).abs() < 1e-12, "{}", a.score);
        assert_eq!((a.index, a.path.as_str()), (0, "v.mp4"));
    }

    #[test]
    fn ties_overlaps_and_order() {
        // Both labels at 0.5 = on: both start (labels are independent); same start -> class
        // index order.
        let (w, s) = tiled(&[0.5, 0.5, 0.9]);
        let segs = segments("v.mp4", &w, &s, &labels(), &rules(0.5, 0.5, 0.0, 0.0));
        assert_eq!(spans_of(&segs), vec![("a", 0.0, 3.0), ("b", 0.0, 2.0)]);
        // Later starts come later whatever the label.
        let (w, s) = tiled(&[0.1, 0.1, 0.9]);
        let segs = segments("v.mp4", &w, &s, &labels(), &rules(0.5, 0.5, 0.0, 0.0));
        assert_eq!(spans_of(&segs), vec![("b", 0.0, 2.0), ("a", 2.0, 3.0)]);
    }

    #[test]
    fn spans_of_overlapping_gapped_and_partial_windows() {
        let ov = [
            Window::new(0.0, 4.0),
            Window::new(2.0, 6.0),
            Window::new(4.0, 7.0),
        ];
        let got: Vec<[f64; 2]> = window_spans(&ov).into_iter().map(Into::into).collect();
        assert_eq!(got, vec![[0.0, 3.0], [3.0, 5.0], [5.0, 7.0]]);
        let gap = [Window::new(0.0, 2.0), Window::new(4.0, 6.0)];
        let got: Vec<[f64; 2]> = window_spans(&gap).into_iter().map(Into::into).collect();
        assert_eq!(got, vec![[0.0, 3.0], [3.0, 6.0]]);
        assert!(window_spans(&[]).is_empty());
        let one = [Window::new(0.0, 2.5)];
        assert_eq!(window_spans(&one), one.to_vec());
    }

    #[test]
    fn rules_are_checked() {
        assert!(SegmentRules::default().check().is_ok());
        assert!(rules(0.5, 0.6, 0.0, 0.0)
            .check()
            .unwrap_err()
            .contains("above"));
        assert!(rules(1.5, 0.5, 0.0, 0.0).check().is_err());
        assert!(rules(0.5, -0.1, 0.0, 0.0).check().is_err());
        assert!(rules(0.5, 0.5, -1.0, 0.0).check().is_err());
        assert!(rules(0.5, 0.5, 0.0, f64::NAN).check().is_err());
    }

    /// Windows pushed one by one give, with `finish`, exactly the batch segments, for many
    /// random score sequences, window layouts and rules; and a quiet stream keeps one window.
    #[test]
    fn stream_gives_the_batch_segments() {
        let mut seed = 12345u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as f64 / (1u64 << 31) as f64
        };
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        for case in 0..300 {
            let n = 1 + (next() * 60.0) as usize;
            let (length, hop) = [(1.0, 1.0), (2.0, 0.5), (1.0, 1.5)][case % 3];
            let windows: Vec<Window> = (0..n)
                .map(|i| Window::new(i as f64 * hop, i as f64 * hop + length))
                .collect();
            // Bursts of activity between quiet stretches.
            let scores: Vec<Vec<f64>> = (0..n)
                .map(|_| {
                    let loud = next() < 0.5;
                    (0..3)
                        .map(|_| if loud { next() } else { next() * 0.2 })
                        .collect()
                })
                .collect();
            let min_duration = [0.0, 1.0, 2.5][case % 3];
            let max_gap = [0.0, 1.0, 3.0][(case / 3) % 3];
            let r = rules(0.5, 0.3, min_duration, max_gap);
            let batch = segments("v", &windows, &scores, &names, &r);
            let mut stream = SegmentStream::new("v", &names, r);
            let mut got = Vec::new();
            for (w, s) in windows.iter().zip(&scores) {
                got.extend(stream.push(*w, s.clone()));
            }
            got.extend(stream.finish());
            got.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.index.cmp(&b.index)));
            assert_eq!(got, batch, "case {case}: {n} windows, {r:?}");
        }
        let mut stream = SegmentStream::new("v", &names, rules(0.5, 0.3, 0.0, 1.0));
        for i in 0..1000 {
            let w = Window::new(i as f64, i as f64 + 1.0);
            assert!(stream.push(w, vec![0.1, 0.2, 0.05]).is_empty());
        }
        assert_eq!(stream.windows.len(), 1);
    }
}
