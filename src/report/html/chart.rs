//! A video's windows as an inline SVG chart: the scores of its top classes over time (a line
//! per class through the windows' midpoints), its segments as shaded spans, a legend below.

use super::esc;
use crate::report::{Segment, VideoResult};
use std::fmt::Write as _;

const W: f64 = 720.0;
const H: f64 = 170.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;
const PALETTE: [&str; 5] = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed"];
/// Windows up to this many get a dot per score.
const DOTS_UP_TO: usize = 60;

/// Where a time and a score land on the chart.
struct Scale {
    end: f64,
}

impl Scale {
    fn x(&self, t: f64) -> f64 {
        LEFT + t / self.end * (W - LEFT - RIGHT)
    }
    fn y(&self, s: f64) -> f64 {
        TOP + (1.0 - s.clamp(0.0, 1.0)) * (H - TOP - BOTTOM)
    }
}

/// The chart and its legend for one video's window records (in time order) and segments.
pub fn chart(windows: &[&VideoResult], segments: &[&Segment]) -> String {
    let end = windows
        .iter()
        .filter_map(|v| v.window)
        .map(|w| w.end)
        .fold(0.0, f64::max);
    let scale = Scale { end: end.max(1e-9) };
    let classes = plotted(windows);
    let color = |index: usize| {
        classes
            .iter()
            .position(|(c, _)| *c == index)
            .map_or("#9ca3af", |i| PALETTE[i])
    };
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"scores of the top classes over time\">\n"
    );
    svg.push_str(&axes(&scale));
    for s in segments {
        svg.push_str(&segment_span(s, &scale, color(s.index)));
    }
    for (i, (index, _)) in classes.iter().enumerate() {
        svg.push_str(&line(windows, *index, &scale, PALETTE[i]));
    }
    svg.push_str("</svg>\n");
    svg.push_str(&legend(&classes));
    svg
}

/// A class's score in one window: from all scores when present, else from its top-k.
fn score(v: &VideoResult, index: usize) -> Option<f64> {
    match &v.scores {
        Some(all) => all.get(index).copied(),
        None => v.top_k.iter().find(|p| p.index == index).map(|p| p.score),
    }
}

/// The classes to draw (index, label): those in some window's top-k, highest peak first.
fn plotted(windows: &[&VideoResult]) -> Vec<(usize, String)> {
    let mut seen: Vec<(usize, String)> = Vec::new();
    for p in windows.iter().flat_map(|v| &v.top_k) {
        if !seen.iter().any(|(i, _)| *i == p.index) {
            seen.push((p.index, p.label.clone()));
        }
    }
    let peak = |c: usize| {
        windows
            .iter()
            .filter_map(|v| score(v, c))
            .fold(f64::NEG_INFINITY, f64::max)
    };
    seen.sort_by(|a, b| peak(b.0).total_cmp(&peak(a.0)).then(a.0.cmp(&b.0)));
    seen.truncate(PALETTE.len());
    seen
}

/// Grid lines at 0, 50 and 100 % and time ticks at a round step.
fn axes(s: &Scale) -> String {
    let mut g = String::from("<g font-size=\"10\" fill=\"#666\" stroke=\"#ddd\">\n");
    for (v, label) in [(0.0, "0"), (0.5, "50%"), (1.0, "100%")] {
        let y = s.y(v);
        let _ = writeln!(
            g,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" stroke=\"none\" text-anchor=\"end\">{label}</text>",
            W - RIGHT,
            LEFT - 4.0,
            y + 3.0
        );
    }
    let step = tick_step(s.end);
    let mut t = 0.0;
    while t <= s.end + 1e-9 {
        let _ = writeln!(
            g,
            "<text x=\"{:.1}\" y=\"{:.1}\" stroke=\"none\" text-anchor=\"middle\">{t}s</text>",
            s.x(t),
            H - 6.0
        );
        t += step;
    }
    g.push_str("</g>\n");
    g
}

/// A round number of seconds that puts at most ten ticks on `end` seconds.
fn tick_step(end: f64) -> f64 {
    let steps = [
        0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    ];
    steps
        .into_iter()
        .find(|s| end / s <= 10.0)
        .unwrap_or((end / 10.0 / 3600.0).ceil() * 3600.0)
}

/// A segment as a shaded span with its label as a tooltip.
fn segment_span(seg: &Segment, s: &Scale, color: &str) -> String {
    let (x0, x1) = (s.x(seg.start), s.x(seg.end));
    format!(
        "<rect class=\"segment\" x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" \
         fill=\"{color}\" fill-opacity=\"0.15\"><title>{} {:.2}-{:.2} s ({:.2})</title></rect>\n\
         <rect x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"3\" fill=\"{color}\"/>\n",
        (x1 - x0).max(0.5),
        H - TOP - BOTTOM,
        esc(&seg.label),
        seg.start,
        seg.end,
        seg.score,
        (x1 - x0).max(0.5)
    )
}

/// One class's scores through the windows' midpoints; a window without its score breaks the
/// line.
fn line(windows: &[&VideoResult], index: usize, s: &Scale, color: &str) -> String {
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for v in windows {
        let (Some(w), Some(sc)) = (v.window, score(v, index)) else {
            runs.push(Vec::new());
            continue;
        };
        let last = runs.last_mut().expect("one run at least");
        last.push((s.x((w.start + w.end) / 2.0), s.y(sc)));
    }
    let mut g = format!("<g class=\"series\" stroke=\"{color}\" fill=\"{color}\">\n");
    for run in runs.iter().filter(|r| !r.is_empty()) {
        let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            g,
            "<polyline fill=\"none\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
        if windows.len() <= DOTS_UP_TO {
            for (x, y) in run {
                let _ = write!(g, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\"/>");
            }
            g.push('\n');
        }
    }
    g.push_str("</g>\n");
    g
}

fn legend(classes: &[(usize, String)]) -> String {
    let mut h = String::from("<ul class=\"legend\">");
    for (i, (_, label)) in classes.iter().enumerate() {
        let _ = write!(
            h,
            "<li><span class=\"sw\" style=\"background:{}\"></span>{}</li>",
            PALETTE[i],
            esc(label)
        );
    }
    h.push_str("</ul>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_few() {
        assert_eq!(tick_step(4.0), 0.5);
        assert_eq!(tick_step(10.0), 1.0);
        assert_eq!(tick_step(95.0), 10.0);
        assert_eq!(tick_step(7200.0), 1800.0);
        assert!(36000.0 / tick_step(36000.0) <= 10.0);
    }

    #[test]
    fn scale_maps_the_corners() {
        let s = Scale { end: 10.0 };
        assert_eq!((s.x(0.0), s.x(10.0)), (LEFT, W - RIGHT));
        assert_eq!((s.y(1.0), s.y(0.0)), (TOP, H - BOTTOM));
        assert_eq!(s.y(2.0), TOP, "scores are clamped into the chart");
    }
}
