//! What `vidcls watch` writes: one record per window as soon as the model has it (a timeline
//! record plus when it was written, its lag and the windows dropped so far), a gap record when
//! the source was lost and reopened, segments as they close, and the source's error. JSON
//! Lines, or one text line per record for people (names escaped for a terminal).

use super::escape::terminal;
use super::{emit, FileError, Segment, VideoResult, Window};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};

/// One window's labels, as soon as the model has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveWindow {
    #[serde(flatten)]
    pub result: VideoResult,
    /// Wall-clock time the record was written (seconds since the Unix epoch).
    pub wall_time: f64,
    /// Seconds from the window's last frame arriving to its record being written.
    pub lag_s: f64,
    /// Windows dropped so far because the model was busy (newest wins).
    pub dropped: u64,
}

/// The source stopped and was reopened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub path: String,
    /// Stream time (s) of the last frame before the gap.
    pub gap_after: f64,
    /// Wall-clock seconds without frames.
    pub gap_s: f64,
    pub reconnects: u32,
    pub reason: String,
    pub wall_time: f64,
}

/// What `watch` writes, one JSON object per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LiveRecord {
    Window(Box<LiveWindow>),
    Gap(Gap),
    /// With `--segments`: a segment, written when it closes.
    Segment(Segment),
    Err(FileError),
}

/// Writes live records, each whole and flushed.
pub struct LiveWriter {
    out: Box<dyn Write + Send>,
    /// One text line per record (else JSON Lines).
    text: bool,
}

impl LiveWriter {
    pub fn new(out: Box<dyn Write + Send>, text: bool) -> LiveWriter {
        LiveWriter { out, text }
    }

    pub fn write(&mut self, r: &LiveRecord) -> io::Result<()> {
        let mut buf = Vec::new();
        if self.text {
            render_text(&mut buf, r)?;
        } else {
            serde_json::to_writer(&mut buf, r)?;
            buf.push(b'\n');
        }
        emit(&mut self.out, &buf)
    }
}

fn render_text(buf: &mut Vec<u8>, r: &LiveRecord) -> io::Result<()> {
    match r {
        LiveRecord::Window(w) => {
            let v = &w.result;
            let win = v.window.unwrap_or(Window::new(0.0, 0.0));
            let labels: Vec<String> = v
                .top_k
                .iter()
                .map(|p| format!("{} {:.0}%", terminal(&p.label), p.score * 100.0))
                .collect();
            writeln!(
                buf,
                "[{:8.2}s-{:8.2}s]  {}  (lag {:.2} s{})",
                win.start,
                win.end,
                labels.join("  "),
                w.lag_s,
                if w.dropped > 0 {
                    format!(", {} dropped", w.dropped)
                } else {
                    String::new()
                }
            )
        }
        LiveRecord::Gap(g) => writeln!(
            buf,
            "-- source lost after {:.2} s ({}); back after {:.2} s (reconnect {})",
            g.gap_after,
            terminal(&g.reason),
            g.gap_s,
            g.reconnects
        ),
        LiveRecord::Segment(g) => writeln!(
            buf,
            "== {:8.2}s-{:8.2}s  {} {:.0}%",
            g.start,
            g.end,
            terminal(&g.label),
            g.score * 100.0
        ),
        LiveRecord::Err(e) => writeln!(
            buf,
            "{}\n  error ({}): {}",
            terminal(&e.path),
            e.stage,
            terminal(&e.error)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_escape_names_and_json_lines_parse_back() {
        let err = LiveRecord::Err(FileError {
            path: "cam\n\x1b[2Jx".into(),
            stage: super::super::Stage::Open,
            error: "gone\rnow".into(),
        });
        let mut text = Vec::new();
        render_text(&mut text, &err).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(text.lines().count(), 2, "{text:?}");
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");
        let mut w = LiveWriter::new(Box::new(Vec::new()), false);
        w.write(&err).unwrap();
        let json = serde_json::to_string(&err).unwrap();
        assert_eq!(serde_json::from_str::<LiveRecord>(&json).unwrap(), err);
    }
}
