//! Report stage: typed records -> aligned text, JSON, JSON Lines, CSV or subtitles (SRT,
//! WebVTT), one writer per format behind [`RecordWriter`]; action segments from window scores.
//!
//! Every input's records are rendered into one buffer and written with one `write_all` and a
//! flush, so a killed run leaves whole inputs behind (at most a torn last line, which resuming
//! cuts off).

mod csv;
pub mod escape;
mod html;
mod json;
mod live;
mod npy;
pub mod read;
mod record;
pub mod resume;
mod segments;
mod subtitles;
mod summary;
mod text;
mod thumbnail;

pub use live::{Gap, LiveRecord, LiveWindow, LiveWriter};
pub use npy::{npy_bytes, write_npy};
pub use record::{
    label_set, Features, FileError, Ran, Record, Segment, Stage, Timings, VideoResult, Window,
};
pub use segments::{segments, window_spans, SegmentRules, SegmentStream};
pub use summary::RunSummary;
pub use thumbnail::{spread, thumbnail, thumbnails_in, Small, SmallRows, ThumbSpec, Thumbnail};

pub use crate::model::Prediction;
use std::io::{self, Write};

/// Output formats: aligned text for people, one JSON array (written at the end), JSON Lines and
/// CSV (appended and flushed per input, so resumable), SubRip and WebVTT subtitles (one cue per
/// segment), and one self-contained HTML page with pictures. Each has its writer in this folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Jsonl,
    Csv,
    Srt,
    Vtt,
    Html,
}

impl Format {
    /// Whether records are appended one input at a time (so a run can be resumed).
    pub fn streams(self) -> bool {
        matches!(self, Format::Jsonl | Format::Csv)
    }

    /// Whether a file is written whole: into a temporary file renamed at the end, so a reader
    /// never sees half an array or half a page.
    pub fn renamed_at_end(self) -> bool {
        matches!(self, Format::Json | Format::Html)
    }

    /// Subtitles: segments of one video, shown over it by a player.
    pub fn is_subtitles(self) -> bool {
        matches!(self, Format::Srt | Format::Vtt)
    }

    /// Subtitles hold one video's segments: more inputs are refused.
    pub fn check_inputs(self, inputs: usize) -> anyhow::Result<()> {
        if self.is_subtitles() && inputs > 1 {
            anyhow::bail!(
                "subtitles hold one video's segments, and {inputs} inputs were given: run once per video"
            );
        }
        Ok(())
    }

    /// A page is for a file or a pipe, not for a terminal (`to_terminal`: no output file and
    /// stdout is one).
    pub fn check_destination(self, to_terminal: bool) -> anyhow::Result<()> {
        if self == Format::Html && to_terminal {
            anyhow::bail!(
                "--format html writes a whole page: give -o FILE.html (or redirect stdout)"
            );
        }
        Ok(())
    }
}

/// Writes the records of each input, in the order given, to one sink.
pub trait RecordWriter: Send {
    /// Writes all records of one input and flushes.
    fn write_input(&mut self, records: &[Record]) -> io::Result<()>;
    /// Writes whatever was held back and flushes.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// What a report says about the run as a whole (the HTML page's heading; other formats carry
/// it in each record or not at all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct About {
    pub model: String,
    /// Numeric precision of the forward pass (`fp32`, ...).
    pub precision: String,
    pub device: String,
}

/// The writer for `format`. `csv`: whether the sink already holds a CSV header (resuming) and
/// how string cells are written.
pub fn writer(
    format: Format,
    out: Box<dyn Write + Send>,
    csv: CsvOptions,
    about: &About,
) -> Box<dyn RecordWriter> {
    match format {
        Format::Text => Box::new(text::TextWriter::new(out)),
        Format::Json => Box::new(json::JsonWriter::new(out)),
        Format::Jsonl => Box::new(json::JsonlWriter::new(out)),
        Format::Csv => Box::new(csv::CsvWriter::new(out, csv)),
        Format::Srt => Box::new(subtitles::SubtitleWriter::srt(out)),
        Format::Vtt => Box::new(subtitles::SubtitleWriter::vtt(out)),
        Format::Html => Box::new(html::HtmlWriter::new(out, about.clone())),
    }
}

pub use self::csv::{CsvCells, CsvOptions, CSV_HEADER};

/// Writes one input's rendered bytes whole: a signal arriving meanwhile waits for the flush.
fn emit(out: &mut dyn Write, buf: &[u8]) -> io::Result<()> {
    let _whole = crate::interrupt::writing();
    out.write_all(buf)?;
    out.flush()
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// `text` written to `name` in this process's scratch folder for `what`.
    pub fn file_with(what: &str, name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("vidcls-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A classified video with two labels, optionally one window of it.
    pub fn ok(path: &str, window: Option<Window>) -> Record {
        Record::Ok(VideoResult {
            path: path.into(),
            model: "m".into(),
            top_k: vec![
                Prediction {
                    label: "zoom_in".into(),
                    index: 6,
                    score: 0.75,
                },
                Prediction {
                    label: "zoom_out".into(),
                    index: 7,
                    score: 0.125,
                },
            ],
            clips: 1,
            crops: 1,
            duration: 2.5,
            window,
            frame_times: vec![],
            padded_frames: 0,
            warnings: vec![],
            scores: None,
            timings: Timings::default(),
            thumbnails: vec![],
            ran: None,
            label_set: None,
        })
    }

    /// A segment of label `zoom_in` (class 6).
    pub fn seg(path: &str, start: f64, end: f64, score: f64) -> Record {
        Record::Segment(Segment {
            path: path.into(),
            start,
            end,
            label: "zoom_in".into(),
            index: 6,
            score,
        })
    }

    pub fn err(path: &str) -> Record {
        Record::Err(FileError {
            path: path.into(),
            stage: Stage::Decode,
            error: "boom".into(),
        })
    }

    /// What a writer puts into its sink for `inputs`, as text.
    pub fn render(format: Format, inputs: &[Vec<Record>]) -> String {
        render_appending(format, inputs, false)
    }

    /// As [`render`], into a sink that already holds a CSV header when `header_done`.
    pub fn render_appending(format: Format, inputs: &[Vec<Record>], header_done: bool) -> String {
        let csv = CsvOptions {
            header_done,
            ..CsvOptions::default()
        };
        render_with(format, inputs, csv)
    }

    /// As [`render`], with these CSV options.
    pub fn render_with(format: Format, inputs: &[Vec<Record>], csv: CsvOptions) -> String {
        let sink = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut w = writer(
            format,
            Box::new(Shared(sink.clone())),
            csv,
            &About::default(),
        );
        for recs in inputs {
            w.write_input(recs).unwrap();
        }
        w.finish().unwrap();
        let bytes = sink.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
