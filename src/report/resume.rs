//! Resuming: which inputs an earlier (possibly killed) run already recorded.

use super::{CsvCells, Format, Record, CSV_HEADER};
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
    /// Error records dropped from the file so that their inputs run again.
    pub dropped_errors: usize,
}

/// Reads the paths recorded in `file`, first cutting off a torn last line (a crash mid-write).
/// With `retry_failed`, error records are removed from the file (rewritten atomically) and
/// their inputs do not count as done. A file that is not vidcls's output in `format` (or not
/// a regular file) is refused before anything in it is changed. `cells`: how a CSV file's
/// string cells were written.
pub fn scan(file: &Path, format: Format, retry_failed: bool, cells: CsvCells) -> Result<Done> {
    if !format.streams() {
        bail!("only jsonl and csv output can be resumed (records are appended one by one)");
    }
    let Some(bytes) = read_regular(file)? else {
        return Ok(Done::default());
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..whole]);
    let (done, kept) = match format {
        Format::Jsonl => scan_jsonl(file, &text, retry_failed)?,
        _ => scan_csv(file, &text, retry_failed, cells)?,
    };
    let torn = &bytes[whole..];
    if !torn.is_empty() {
        check_torn(file, format, whole == 0, torn)?;
        OpenOptions::new()
            .write(true)
            .open(file)
            .and_then(|f| f.set_len(whole as u64))
            .with_context(|| format!("cannot cut the torn last line of {}", file.display()))?;
    }
    if done.dropped_errors > 0 {
        crate::atomic::write(file, crate::atomic::Existing::Replace, kept.as_bytes())?;
    }
    Ok(done)
}

/// The bytes of `file`, `None` if it does not exist; a symlink or anything but a regular file
/// is refused, so `--resume` never appends through a planted link.
fn read_regular(file: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::symlink_metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        Ok(m) if m.file_type().is_symlink() => bail!(
            "{} is a symbolic link: --resume continues only a regular file",
            file.display()
        ),
        Ok(m) if !m.is_file() => bail!("{} is not a regular file", file.display()),
        Ok(_) => {}
    }
    let bytes =
        std::fs::read(file).with_context(|| format!("cannot read {} to resume", file.display()))?;
    Ok(Some(bytes))
}

/// A torn last line is cut only when it can be the start of a record vidcls writes (or, with
/// nothing before it, of the CSV header).
fn check_torn(file: &Path, format: Format, alone: bool, torn: &[u8]) -> Result<()> {
    let header = CSV_HEADER.join(",");
    let ours = match format {
        Format::Jsonl => torn.starts_with(b"{"),
        _ if alone => header.as_bytes().starts_with(torn),
        _ => true,
    };
    if !ours {
        bail!(
            "{}: the last line is not the start of a vidcls record; cannot resume",
            file.display()
        );
    }
    Ok(())
}

/// JSONL: every line must be a record; returns what is done and the text to keep.
fn scan_jsonl(file: &Path, text: &str, retry_failed: bool) -> Result<(Done, String)> {
    let mut done = Done::default();
    let mut kept = String::new();
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
        if retry_failed && matches!(rec, Record::Err(_)) {
            done.dropped_errors += 1;
            continue;
        }
        done.paths.insert(rec.path().to_string());
        kept.push_str(line);
        kept.push('\n');
    }
    Ok((done, kept))
}

/// CSV: rows with the `error` column set are error records.
fn scan_csv(
    file: &Path,
    text: &str,
    retry_failed: bool,
    cells: CsvCells,
) -> Result<(Done, String)> {
    let mut done = Done::default();
    let mut kept = ::csv::WriterBuilder::new().from_writer(Vec::new());
    let mut r = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    for (n, row) in r.records().enumerate() {
        let row = row.with_context(|| format!("{}: bad CSV; cannot resume", file.display()))?;
        let is_header = row.iter().eq(CSV_HEADER.iter().copied());
        if n == 0 && !is_header {
            bail!(
                "{}: the first line is not vidcls's CSV header; cannot resume",
                file.display()
            );
        }
        if is_header {
            done.has_header = true;
        } else if retry_failed && row.get(7).is_some_and(|e| !e.is_empty()) {
            done.dropped_errors += 1;
            continue;
        } else if let Some(p) = row.get(0) {
            done.paths.insert(cells.read(p).to_string());
        }
        kept.write_record(&row)?;
    }
    let kept = String::from_utf8(kept.into_inner()?)?;
    Ok((done, kept))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{err, ok, render};
    use super::*;

    fn file_with(name: &str, text: &str) -> std::path::PathBuf {
        super::super::fixtures::file_with("resume", name, text)
    }

    #[test]
    fn jsonl_paths_and_torn_line() {
        let text = render(
            Format::Jsonl,
            &[vec![ok("a.mp4", None)], vec![err("b.mp4")]],
        );
        let p = file_with("torn.jsonl", &format!("{text}{{\"path\":\"c.mp4\",\"mo"));
        let done = scan(&p, Format::Jsonl, false, CsvCells::default()).unwrap();
        let mut paths: Vec<&str> = done.paths.iter().map(String::as_str).collect();
        paths.sort();
        assert_eq!(paths, ["a.mp4", "b.mp4"]);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
    }

    #[test]
    fn retry_failed_drops_error_records() {
        let text = render(
            Format::Jsonl,
            &[vec![ok("a.mp4", None)], vec![err("b.mp4")]],
        );
        let p = file_with("retry.jsonl", &text);
        let done = scan(&p, Format::Jsonl, true, CsvCells::default()).unwrap();
        assert_eq!(done.paths.len(), 1);
        assert!(done.paths.contains("a.mp4"));
        assert_eq!(done.dropped_errors, 1);
        let left = std::fs::read_to_string(&p).unwrap();
        assert_eq!(left, render(Format::Jsonl, &[vec![ok("a.mp4", None)]]));
    }

    #[test]
    fn csv_header_rows_and_retry() {
        let text = render(Format::Csv, &[vec![ok("a.mp4", None)], vec![err("b.mp4")]]);
        let p = file_with("r.csv", &text);
        let done = scan(&p, Format::Csv, false, CsvCells::default()).unwrap();
        assert!(done.has_header && done.paths.len() == 2);
        let done = scan(&p, Format::Csv, true, CsvCells::default()).unwrap();
        assert!(done.has_header && done.paths.len() == 1 && done.dropped_errors == 1);
        let left = std::fs::read_to_string(&p).unwrap();
        assert!(
            !left.contains("b.mp4") && left.starts_with("path,"),
            "{left}"
        );
    }

    #[test]
    fn refuses_other_formats_and_foreign_files() {
        let p = file_with("x.jsonl", "hello\n");
        assert!(scan(&p, Format::Jsonl, false, CsvCells::default()).is_err());
        assert!(scan(&p, Format::Json, false, CsvCells::default()).is_err());
        assert!(scan(&p, Format::Text, false, CsvCells::default()).is_err());
    }

    #[test]
    fn csv_paths_read_back_as_they_were_given() {
        let inputs = [vec![err("=x.mp4")], vec![err("'y.mp4")]];
        let p = file_with("neutralised.csv", &render(Format::Csv, &inputs));
        let done = scan(&p, Format::Csv, false, CsvCells::Neutralised).unwrap();
        let mut paths: Vec<&str> = done.paths.iter().map(String::as_str).collect();
        paths.sort();
        assert_eq!(paths, ["'y.mp4", "=x.mp4"]);
    }

    #[test]
    fn refuses_foreign_csv_and_leaves_it_as_it_was() {
        let text = "name,notes\nx,=1+1\nlast line without newline";
        let p = file_with("foreign.csv", text);
        let err = scan(&p, Format::Csv, false, CsvCells::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not vidcls's CSV header"), "{err}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
        let p = file_with("one-line.csv", "not,a,header");
        assert!(scan(&p, Format::Csv, false, CsvCells::default()).is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "not,a,header");
        let p = file_with("torn-header.csv", "path,window_st");
        assert!(scan(&p, Format::Csv, false, CsvCells::default())
            .unwrap()
            .paths
            .is_empty());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "");
    }

    #[test]
    fn refuses_a_symlink_and_a_torn_line_that_is_not_a_record() {
        let text = render(Format::Jsonl, &[vec![ok("a.mp4", None)]]);
        let p = file_with("ours.jsonl", &text);
        let link = p.with_file_name("link.jsonl");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let err = scan(&link, Format::Jsonl, false, CsvCells::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let p = file_with("tail.jsonl", &format!("{text}secret"));
        assert!(scan(&p, Format::Jsonl, false, CsvCells::default()).is_err());
        assert!(std::fs::read_to_string(&p).unwrap().ends_with("secret"));
    }
}
