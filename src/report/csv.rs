//! CSV: one row per (video or window, rank); an error is one row with the `error` column set;
//! a segment is one row with its span in the window columns and no rank.
//!
//! String cells (path, label, error) that a spreadsheet would run as a formula are written
//! with a leading `'` unless asked for raw ([`CsvCells`]); number cells are written as they are.

use super::{emit, Record, RecordWriter};
use std::borrow::Cow;
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

/// How string cells are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CsvCells {
    /// A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return (what spreadsheets
    /// run as a formula, OWASP's list) gets a leading `'`, which spreadsheets read as "text"
    /// and hide; so does one starting with `'`, so that reading back is exact.
    #[default]
    Neutralised,
    /// As they are (`--csv-raw`).
    Raw,
}

/// First characters of the string cells that [`CsvCells::Neutralised`] prefixes with `'`.
const NEUTRALISED_START: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

impl CsvCells {
    /// A string cell as written.
    pub fn write(self, s: &str) -> Cow<'_, str> {
        match self {
            CsvCells::Neutralised if s.starts_with(NEUTRALISED_START) => {
                Cow::Owned(format!("'{s}"))
            }
            _ => Cow::Borrowed(s),
        }
    }

    /// A string cell as read back (resuming): what was given to [`CsvCells::write`].
    pub fn read(self, cell: &str) -> &str {
        match self {
            CsvCells::Neutralised => cell.strip_prefix('\'').unwrap_or(cell),
            CsvCells::Raw => cell,
        }
    }
}

/// What a CSV writer needs to know of its sink and its cells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// The sink already holds a header (appending to an earlier run's file).
    pub header_done: bool,
    pub cells: CsvCells,
}

pub struct CsvWriter {
    out: Box<dyn Write + Send>,
    wrote_header: bool,
    cells: CsvCells,
}

impl CsvWriter {
    pub fn new(out: Box<dyn Write + Send>, options: CsvOptions) -> CsvWriter {
        CsvWriter {
            out,
            wrote_header: options.header_done,
            cells: options.cells,
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
                    w.write_record(row.iter().map(|c| c.text(self.cells).into_owned()))?;
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

/// A cell of a row: a string (neutralised as the writer's [`CsvCells`] say) or a number (as
/// it is: a negative one starts with `-` and is no formula).
enum Cell {
    Text(String),
    Number(String),
}

impl Cell {
    fn text(&self, cells: CsvCells) -> Cow<'_, str> {
        match self {
            Cell::Text(s) => cells.write(s),
            Cell::Number(n) => Cow::Borrowed(n),
        }
    }
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

fn number(n: impl ToString) -> Cell {
    Cell::Number(n.to_string())
}

fn empty() -> Cell {
    Cell::Number(String::new())
}

fn rows(r: &Record) -> Vec<[Cell; 8]> {
    match r {
        Record::Ok(v) => {
            let span = |f: fn(&super::Window) -> f64| {
                v.window.as_ref().map_or_else(empty, |w| number(f(w)))
            };
            v.top_k
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    [
                        text(&v.path),
                        span(|w| w.start),
                        span(|w| w.end),
                        number(i + 1),
                        text(&p.label),
                        number(p.index),
                        number(format!("{:.6}", p.score)),
                        empty(),
                    ]
                })
                .collect()
        }
        Record::Err(e) => vec![[
            text(&e.path),
            empty(),
            empty(),
            empty(),
            empty(),
            empty(),
            empty(),
            text(&format!("{}: {}", e.stage, e.error)),
        ]],
        Record::Segment(s) => vec![[
            text(&s.path),
            number(s.start),
            number(s.end),
            empty(),
            text(&s.label),
            number(s.index),
            number(format!("{:.6}", s.score)),
            empty(),
        ]],
        // Features are listed in JSON Lines (`vidcls embed`); in CSV, the path and the file.
        Record::Features(f) => vec![[
            text(&f.path),
            empty(),
            empty(),
            empty(),
            text(&f.npy),
            empty(),
            empty(),
            empty(),
        ]],
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

    #[test]
    fn formula_cells_are_neutralised_and_numbers_kept() {
        use super::super::fixtures::seg;
        use super::super::Record;
        let mut r = ok(
            "=HYPERLINK(\"http://x\",\"y\").mp4",
            Some(Window::new(-0.5, 2.0)),
        );
        if let Record::Ok(v) = &mut r {
            v.top_k.truncate(1);
            v.top_k[0].label = "@sum".into();
        }
        let mut s = seg("+cmd.mp4", 1.0, 2.0, 0.5);
        if let Record::Segment(s) = &mut s {
            s.label = "-x".into();
        }
        let inputs = [vec![r], vec![s], vec![err("\tt.mp4")], vec![err("'q.mp4")]];
        assert_eq!(
            render(Format::Csv, &inputs),
            "path,window_start,window_end,rank,label,index,score,error\n\
             \"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\").mp4\",-0.5,2,1,'@sum,6,0.750000,\n\
             '+cmd.mp4,1,2,,'-x,6,0.500000,\n\
             '\tt.mp4,,,,,,,decode: boom\n\
             ''q.mp4,,,,,,,decode: boom\n"
        );
    }

    #[test]
    fn raw_cells_are_left_as_they_are() {
        use super::super::fixtures::render_with;
        use super::{CsvCells, CsvOptions};
        let raw = CsvOptions {
            header_done: true,
            cells: CsvCells::Raw,
        };
        assert_eq!(
            render_with(Format::Csv, &[vec![err("=1+1.mp4")]], raw),
            "=1+1.mp4,,,,,,,decode: boom\n"
        );
    }

    #[test]
    fn reading_back_undoes_writing() {
        use super::CsvCells;
        for s in [
            "=x", "+x", "-x", "@x", "\tx", "\rx", "'x", "''x", "x'", "", "a=b", "é",
        ] {
            let cells = CsvCells::Neutralised;
            assert_eq!(cells.read(&cells.write(s)), s, "{s:?}");
            assert_eq!(CsvCells::Raw.read(&CsvCells::Raw.write(s)), s, "{s:?}");
        }
        assert_eq!(CsvCells::Neutralised.write("clip.mp4"), "clip.mp4");
    }
}
