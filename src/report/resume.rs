//! `--resume`: which inputs an earlier (possibly killed) run already recorded.

use super::{Record, CSV_HEADER};
use crate::cli::Format;
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::fs::OpenOptions;
use std::path::Path;

/// What an existing output file holds.
#[derive(Debug, Default)]
pub struct Done {
    pub paths: HashSet<String>,
    /// A CSV header is already there.
    pub has_header: bool,
}

/// Reads the paths recorded in `file`, first cutting off a torn last line (a crash mid-write).
pub fn scan(file: &Path, format: Format) -> Result<Done> {
    if !matches!(format, Format::Jsonl | Format::Csv) {
        bail!("--resume works with --format jsonl or csv (records are appended one by one)");
    }
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Done::default()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {} to resume", file.display()))
        }
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() {
        OpenOptions::new()
            .write(true)
            .open(file)
            .and_then(|f| f.set_len(whole as u64))
            .with_context(|| format!("cannot cut the torn last line of {}", file.display()))?;
    }
    let text = String::from_utf8_lossy(&bytes[..whole]);
    let mut done = Done::default();
    match format {
        Format::Jsonl => {
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let rec: Record = serde_json::from_str(line).with_context(|| {
                    format!(
                        "{} line {}: not a vidcls record; cannot resume",
                        file.display(),
                        n + 1
                    )
                })?;
                done.paths.insert(match rec {
                    Record::Ok(v) => v.path,
                    Record::Err(e) => e.path,
                });
            }
        }
        _ => {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(text.as_bytes());
            for row in r.records() {
                let row =
                    row.with_context(|| format!("{}: bad CSV; cannot resume", file.display()))?;
                if row.iter().eq(CSV_HEADER.iter().copied()) {
                    done.has_header = true;
                } else if let Some(p) = row.get(0) {
                    done.paths.insert(p.to_string());
                }
            }
        }
    }
    Ok(done)
}
