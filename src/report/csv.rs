//! CSV: one row per (video or window, rank); an error is one row with the `error` column set;
//! a segment is one row with its span in the window columns and no rank.

use super::{emit, Record, RecordWriter};
use std::io::{self, Write};

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

pub struct CsvWriter {
    out: Box<dyn Write + Send>,
    wrote_header: bool,
}

impl CsvWriter {
    /// `header_done`: the sink already holds a header (appending to an earlier run's file).
    pub fn new(out: Box<dyn Write + Send>, header_done: bool) -> CsvWriter {
        CsvWriter {
            out,
            wrote_header: header_done,
        }
    }
}

impl RecordWriter for CsvWriter {
    fn write_input(&mut self, records: &[Record]) -> io::Result<()> {
        let mut buf = Vec::new();
        {
            let mut w = ::csv::WriterBuilder::new().from_writer(&mut buf);
            if !self.wrote_header {
                w.write_record(CSV_HEADER)?;
                self.wrote_header = true;
            }
            for r in records {
                for row in rows(r) {
                    w.write_record(&row)?;
                }
            }
            w.flush()?;
        }
        emit(&mut self.out, &buf)
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}

fn rows(r: &Record) -> Vec<[String; 8]> {
    match r {
        Record::Ok(v) => {
            let (ws, we) = v.window.map_or((String::new(), String::new()), |w| {
                (w.start.to_string(), w.end.to_string())
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
        Record::Err(e) => {
            let mut row: [String; 8] = Default::default();
            row[0] = e.path.clone();
            row[7] = format!("{}: {}", e.stage, e.error);
            vec![row]
        }
        Record::Segment(s) => vec![[
            s.path.clone(),
            s.start.to_string(),
            s.end.to_string(),
            String::new(),
            s.label.clone(),
            s.index.to_string(),
            format!("{:.6}", s.score),
            String::new(),
        ]],
        // Features are listed in JSON Lines (`vidcls embed`); in CSV, the path and the file.
        Record::Features(f) => {
            let mut row: [String; 8] = Default::default();
            row[0] = f.path.clone();
            row[4] = f.npy.clone();
            vec![row]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{err, ok, render};
    use super::super::{Format, Window};

    #[test]
    fn header_once_then_rows_per_rank() {
        let got = render(
            Format::Csv,
            &[
                vec![ok("a,b.mp4", Some(Window::new(0.0, 2.5)))],
                vec![err("c.mp4")],
            ],
        );
        assert_eq!(
            got,
            "path,window_start,window_end,rank,label,index,score,error\n\
             \"a,b.mp4\",0,2.5,1,zoom_in,6,0.750000,\n\
             \"a,b.mp4\",0,2.5,2,zoom_out,7,0.125000,\n\
             c.mp4,,,,,,,decode: boom\n"
        );
    }

    #[test]
    fn segment_rows_have_no_rank() {
        use super::super::fixtures::seg;
        assert_eq!(
            render(Format::Csv, &[vec![seg("a.mp4", 1.5, 6.0, 0.9)]]),
            "path,window_start,window_end,rank,label,index,score,error\n\
             a.mp4,1.5,6,,zoom_in,6,0.900000,\n"
        );
    }

    #[test]
    fn no_header_when_appending() {
        use super::super::fixtures::render_appending;
        assert_eq!(
            render_appending(Format::Csv, &[vec![err("c.mp4")]], true),
            "c.mp4,,,,,,,decode: boom\n"
        );
    }
}
