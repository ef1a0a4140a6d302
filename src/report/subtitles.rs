//! Subtitles of one video's segments, one cue per segment ("zoom_in 0.93"): SubRip (`.srt`)
//! and WebVTT (`.vtt`), for `mpv clip.mp4 --sub-file=clip.srt` or a `<track>` element.
//!
//! Only segment records become cues; an input's error is on stderr and in the exit code, and
//! leaves no cue. A cue's text is one line whatever the label holds ([`cue_text`]).

use super::{emit, Record, RecordWriter};
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Srt,
    Vtt,
}

pub struct SubtitleWriter {
    out: Box<dyn Write + Send>,
    kind: Kind,
    /// Cues written so far (SRT numbers them from 1).
    cues: usize,
    wrote_header: bool,
}

impl SubtitleWriter {
    pub fn srt(out: Box<dyn Write + Send>) -> SubtitleWriter {
        SubtitleWriter::new(out, Kind::Srt)
    }

    pub fn vtt(out: Box<dyn Write + Send>) -> SubtitleWriter {
        SubtitleWriter::new(out, Kind::Vtt)
    }

    fn new(out: Box<dyn Write + Send>, kind: Kind) -> SubtitleWriter {
        SubtitleWriter {
            out,
            kind,
            cues: 0,
            wrote_header: false,
        }
    }

    /// WebVTT files start with a signature line and a blank line, even with no cues.
    fn header(&mut self, buf: &mut Vec<u8>) {
        if self.kind == Kind::Vtt && !self.wrote_header {
            buf.extend_from_slice(b"WEBVTT\n\n");
        }
        self.wrote_header = true;
    }
}

/// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT), rounded to the millisecond.
fn timestamp(seconds: f64, kind: Kind) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let sep = if kind == Kind::Srt { ',' } else { '.' };
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// A cue's text, `label score`, on one line: line breaks and other control characters in the
/// label become spaces (a blank line would end the cue, a line with `-->` start another).
/// WebVTT escapes `&`, `<` and `>` (its markup); SubRip has no escapes, so `-->` becomes `->`.
fn cue_text(label: &str, score: f64, kind: Kind) -> String {
    let one_line: String = label
        .chars()
        .map(|c| match c {
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => ' ',
            c => c,
        })
        .collect();
    let mut text = match kind {
        Kind::Vtt => one_line
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;"),
        Kind::Srt => one_line,
    };
    while text.contains("-->") {
        text = text.replace("-->", "->");
    }
    format!("{text} {score:.2}")
}

impl RecordWriter for SubtitleWriter {
    fn write_input(&mut self, records: &[Record]) -> io::Result<()> {
        let mut buf = Vec::new();
        self.header(&mut buf);
        for r in records {
            let Record::Segment(s) = r else { continue };
            self.cues += 1;
            if self.kind == Kind::Srt {
                writeln!(buf, "{}", self.cues)?;
            }
            writeln!(
                buf,
                "{} --> {}\n{}\n",
                timestamp(s.start, self.kind),
                timestamp(s.end, self.kind),
                cue_text(&s.label, s.score, self.kind)
            )?;
        }
        emit(&mut self.out, &buf)
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        let mut buf = Vec::new();
        self.header(&mut buf);
        emit(&mut self.out, &buf)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{err, ok, render, seg};
    use super::super::{Format, Record};
    use super::*;

    /// The records behind the golden files: two segments, an error, a window result.
    fn inputs() -> Vec<Vec<Record>> {
        vec![
            vec![
                seg("clip.mp4", 0.0, 4.0, 0.934),
                seg("clip.mp4", 3.5, 3725.0625, 0.5),
            ],
            vec![err("clip.mp4"), ok("clip.mp4", None)],
        ]
    }

    /// A cue read back: (start s, end s, text).
    type Cue = (f64, f64, String);

    /// Parses subtitles the way a player does: blocks separated by blank lines, each with a
    /// `start --> end` line followed by the text (SRT: after a cue number).
    fn parse(text: &str, kind: Kind) -> Vec<Cue> {
        let seconds = |t: &str| -> f64 {
            let t = t.trim().replace(',', ".");
            let parts: Vec<f64> = t.split(':').map(|p| p.parse().unwrap()).collect();
            assert_eq!(parts.len(), 3, "{t}");
            parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
        };
        let mut blocks = text.split("\n\n").filter(|b| !b.trim().is_empty());
        if kind == Kind::Vtt {
            assert_eq!(blocks.next(), Some("WEBVTT"));
        }
        blocks
            .enumerate()
            .map(|(i, b)| {
                let mut lines = b.lines();
                if kind == Kind::Srt {
                    assert_eq!(lines.next().unwrap(), (i + 1).to_string());
                }
                let (start, end) = lines.next().unwrap().split_once(" --> ").unwrap();
                let text: Vec<&str> = lines.collect();
                (seconds(start), seconds(end), text.join("\n"))
            })
            .collect()
    }

    fn expected_cues() -> Vec<Cue> {
        vec![
            (0.0, 4.0, "zoom_in 0.93".into()),
            (3.5, 3725.063, "zoom_in 0.50".into()),
        ]
    }

    #[test]
    fn srt_matches_golden_file_and_parses_back() {
        let got = render(Format::Srt, &inputs());
        assert_eq!(got, include_str!("../../tests/golden/segments.srt"));
        assert_eq!(parse(&got, Kind::Srt), expected_cues());
    }

    #[test]
    fn vtt_matches_golden_file_and_parses_back() {
        let got = render(Format::Vtt, &inputs());
        assert_eq!(got, include_str!("../../tests/golden/segments.vtt"));
        assert_eq!(parse(&got, Kind::Vtt), expected_cues());
    }

    #[test]
    fn empty_runs_are_valid_files() {
        assert_eq!(render(Format::Srt, &[]), "");
        assert_eq!(render(Format::Vtt, &[]), "WEBVTT\n\n");
        assert_eq!(render(Format::Vtt, &[vec![err("x.mp4")]]), "WEBVTT\n\n");
    }

    #[test]
    fn timestamps_round_to_the_millisecond() {
        assert_eq!(timestamp(3725.0625, Kind::Srt), "01:02:05,063");
        assert_eq!(timestamp(59.9996, Kind::Vtt), "00:01:00.000");
        assert_eq!(timestamp(-0.1, Kind::Vtt), "00:00:00.000");
    }

    #[test]
    fn a_label_cannot_break_its_cue() {
        let mut s = seg("clip.mp4", 0.0, 4.0, 0.934);
        if let Record::Segment(s) = &mut s {
            s.label = "zoom\n\n2\r\n00:00:09,000 --> 00:00:10,000\x1b<b>&\u{2028}in".into();
        }
        let srt = render(Format::Srt, &[vec![s.clone()]]);
        let text = "zoom  2  00:00:09,000 -> 00:00:10,000 <b>& in 0.93";
        assert_eq!(
            parse(&srt, Kind::Srt),
            [(0.0, 4.0, text.to_string())],
            "{srt}"
        );
        let vtt = render(Format::Vtt, &[vec![s]]);
        let text = "zoom  2  00:00:09,000 --&gt; 00:00:10,000 &lt;b&gt;&amp; in 0.93";
        assert_eq!(
            parse(&vtt, Kind::Vtt),
            [(0.0, 4.0, text.to_string())],
            "{vtt}"
        );
        assert_eq!(cue_text("a--->b", 1.0, Kind::Srt), "a->b 1.00");
    }
}
