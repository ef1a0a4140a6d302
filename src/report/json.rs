//! JSON Lines (one object per record, flushed per input) and JSON (one array at the end).

use super::{emit, Record, RecordWriter};
use std::io::{self, Write};

pub struct JsonlWriter {
    out: Box<dyn Write + Send>,
}

impl JsonlWriter {
    pub fn new(out: Box<dyn Write + Send>) -> JsonlWriter {
        JsonlWriter { out }
    }
}

impl RecordWriter for JsonlWriter {
    fn write_input(&mut self, records: &[Record]) -> io::Result<()> {
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r)?;
            buf.push(b'\n');
        }
        emit(&mut self.out, &buf)
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}

/// Holds every record and writes one pretty-printed array at the end.
pub struct JsonWriter {
    out: Box<dyn Write + Send>,
    pending: Vec<Record>,
}

impl JsonWriter {
    pub fn new(out: Box<dyn Write + Send>) -> JsonWriter {
        JsonWriter {
            out,
            pending: Vec::new(),
        }
    }
}

impl RecordWriter for JsonWriter {
    fn write_input(&mut self, records: &[Record]) -> io::Result<()> {
        self.pending.extend_from_slice(records);
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        let mut buf = serde_json::to_vec_pretty(&self.pending)?;
        buf.push(b'\n');
        emit(&mut self.out, &buf)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{err, ok, render};
    use super::super::{Format, Record, Window};

    #[test]
    fn jsonl_is_one_record_per_line() {
        let got = render(
            Format::Jsonl,
            &[
                vec![ok("a.mp4", Some(Window::new(0.0, 4.0)))],
                vec![err("b.mp4")],
            ],
        );
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(
            r#"{"path":"a.mp4","model":"m","top_k":[{"label":"zoom_in","index":6,"score":0.75}"#
        ));
        assert!(lines[0].contains(r#""window":[0.0,4.0]"#), "{}", lines[0]);
        assert_eq!(
            lines[1],
            r#"{"path":"b.mp4","stage":"decode","error":"boom"}"#
        );
        let back: Vec<Record> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            back,
            vec![ok("a.mp4", Some(Window::new(0.0, 4.0))), err("b.mp4")]
        );
    }

    #[test]
    fn segments_read_back_as_segments() {
        use super::super::fixtures::seg;
        let recs = vec![seg("a.mp4", 0.0, 4.0, 0.9), err("a.mp4"), ok("b.mp4", None)];
        let got = render(Format::Jsonl, std::slice::from_ref(&recs));
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"path":"a.mp4","start":0.0,"end":4.0,"label":"zoom_in","index":6,"score":0.9}"#
        );
        let back: Vec<Record> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, recs);
        let back: Vec<Record> =
            serde_json::from_str(&render(Format::Json, std::slice::from_ref(&recs))).unwrap();
        assert_eq!(back, recs);
    }

    #[test]
    fn json_is_one_array_written_at_the_end() {
        let got = render(Format::Json, &[vec![ok("a.mp4", None)], vec![err("b.mp4")]]);
        let back: Vec<Record> = serde_json::from_str(&got).unwrap();
        assert_eq!(back, vec![ok("a.mp4", None), err("b.mp4")]);
        assert!(got.ends_with("]\n"));
        assert_eq!(render(Format::Json, &[]), "[]\n");
    }
}
