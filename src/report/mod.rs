//! Report stage: typed records -> aligned text, JSON, JSON Lines or CSV.
//!
//! Every input's records are rendered into one buffer and written with one `write_all` and a
//! flush, so a killed run leaves whole inputs behind (at most a torn last line, which
//! `--resume` cuts off).

mod record;
pub mod resume;

pub use record::{FileError, Prediction, Record, Timings, VideoResult};

use crate::cli::Format;
use std::io::{self, Write};

/// Writes records in one format to one sink.
pub struct Writer {
    format: Format,
    out: Box<dyn Write + Send>,
    /// JSON (not streamed) collects everything and writes at `finish`.
    pending: Vec<Record>,
    wrote_header: bool,
}

pub const CSV_HEADER: [&str; 8] = [
    "path",
    "window_start",
    "window_end",
    "rank",
    "label",
    "index",
    "score",
    "error",
];

impl Writer {
    /// `header_done`: the sink already holds a CSV header (appending on resume).
    pub fn new(format: Format, out: Box<dyn Write + Send>, header_done: bool) -> Writer {
        Writer {
            format,
            out,
            pending: Vec::new(),
            wrote_header: header_done,
        }
    }

    /// Writes all records of one input and flushes.
    pub fn write_input(&mut self, records: &[Record]) -> io::Result<()> {
        let mut buf = Vec::new();
        match self.format {
            Format::Json => {
                self.pending.extend_from_slice(records);
                return Ok(());
            }
            Format::Jsonl => {
                for r in records {
                    serde_json::to_writer(&mut buf, r)?;
                    buf.push(b'\n');
                }
            }
            Format::Text => {
                for r in records {
                    render_text(&mut buf, r)?;
                }
            }
            Format::Csv => {
                let mut w = csv::WriterBuilder::new().from_writer(&mut buf);
                if !self.wrote_header {
                    w.write_record(CSV_HEADER)?;
                    self.wrote_header = true;
                }
                for r in records {
                    for row in csv_rows(r) {
                        w.write_record(&row)?;
                    }
                }
                w.flush()?;
            }
        }
        let _whole = crate::interrupt::writing();
        self.out.write_all(&buf)?;
        self.out.flush()
    }

    /// Writes what was held back (JSON) and flushes.
    pub fn finish(mut self) -> io::Result<()> {
        let _whole = crate::interrupt::writing();
        if self.format == Format::Json {
            serde_json::to_writer_pretty(&mut self.out, &self.pending)?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush()
    }
}

fn window_label(w: &Option<[f64; 2]>) -> String {
    match w {
        Some([a, b]) => format!(" [{a:.2}s-{b:.2}s]"),
        None => String::new(),
    }
}

fn render_text(buf: &mut Vec<u8>, r: &Record) -> io::Result<()> {
    match r {
        Record::Ok(v) => {
            writeln!(buf, "{}{}", v.path, window_label(&v.window))?;
            let width = v.top_k.len().to_string().len();
            for (i, p) in v.top_k.iter().enumerate() {
                writeln!(
                    buf,
                    "  {:>width$}  {:>6.2}%  {}",
                    i + 1,
                    p.score * 100.0,
                    p.label
                )?;
            }
            if v.padded_frames > 0 {
                writeln!(
                    buf,
                    "  note: shorter than one clip; last frame repeated {} times",
                    v.padded_frames
                )?;
            }
            for w in &v.warnings {
                writeln!(buf, "  warning: {w}")?;
            }
        }
        Record::Err(e) => writeln!(buf, "{}\n  error ({}): {}", e.path, e.stage, e.error)?,
    }
    Ok(())
}

fn csv_rows(r: &Record) -> Vec<[String; 8]> {
    match r {
        Record::Ok(v) => {
            let (ws, we) = v.window.map_or((String::new(), String::new()), |[a, b]| {
                (a.to_string(), b.to_string())
            });
            v.top_k
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    [
                        v.path.clone(),
                        ws.clone(),
                        we.clone(),
                        (i + 1).to_string(),
                        p.label.clone(),
                        p.index.to_string(),
                        format!("{:.6}", p.score),
                        String::new(),
                    ]
                })
                .collect()
        }
        Record::Err(e) => vec![[
            e.path.clone(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            format!("{}: {}", e.stage, e.error),
        ]],
    }
}
