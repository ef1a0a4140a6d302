//! Aligned text for people: the path (and window), then one ranked line per label. Names,
//! labels and messages are escaped for a terminal ([`terminal`]), so each stays on its line.

use super::escape::terminal;
use super::{emit, Record, RecordWriter, Window};
use std::io::{self, Write};

pub struct TextWriter {
    out: Box<dyn Write + Send>,
}

impl TextWriter {
    pub fn new(out: Box<dyn Write + Send>) -> TextWriter {
        TextWriter { out }
    }
}

impl RecordWriter for TextWriter {
    fn write_input(&mut self, records: &[Record]) -> io::Result<()> {
        let mut buf = Vec::new();
        for r in records {
            render(&mut buf, r)?;
        }
        emit(&mut self.out, &buf)
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}

fn window_label(w: &Option<Window>) -> String {
    match w {
        Some(w) => format!(" [{:.2}s-{:.2}s]", w.start, w.end),
        None => String::new(),
    }
}

fn render(buf: &mut Vec<u8>, r: &Record) -> io::Result<()> {
    match r {
        Record::Ok(v) => {
            writeln!(buf, "{}{}", terminal(&v.path), window_label(&v.window))?;
            let width = v.top_k.len().to_string().len();
            for (i, p) in v.top_k.iter().enumerate() {
                writeln!(
                    buf,
                    "  {:>width$}  {:>6.2}%  {}",
                    i + 1,
                    p.score * 100.0,
                    terminal(&p.label)
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
                writeln!(buf, "  warning: {}", terminal(w))?;
            }
        }
        Record::Err(e) => writeln!(
            buf,
            "{}\n  error ({}): {}",
            terminal(&e.path),
            e.stage,
            terminal(&e.error)
        )?,
        Record::Segment(s) => writeln!(
            buf,
            "{}{}  {}  {:.2}",
            terminal(&s.path),
            window_label(&Some(Window::new(s.start, s.end))),
            terminal(&s.label),
            s.score
        )?,
        Record::Features(f) => writeln!(
            buf,
            "{}\n  features: {} ({} x {})",
            terminal(&f.path),
            terminal(&f.npy),
            f.shape[0],
            f.shape[1]
        )?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{err, ok, render};
    use super::super::{Format, Window};

    #[test]
    fn ranks_scores_and_errors() {
        let got = render(Format::Text, &[vec![ok("a.mp4", None)], vec![err("b.mp4")]]);
        assert_eq!(
            got,
            "a.mp4\n  1   75.00%  zoom_in\n  2   12.50%  zoom_out\nb.mp4\n  error (decode): boom\n"
        );
    }

    #[test]
    fn segments_one_line_each() {
        use super::super::fixtures::seg;
        assert_eq!(
            render(Format::Text, &[vec![seg("a.mp4", 1.2, 5.6, 0.934)]]),
            "a.mp4 [1.20s-5.60s]  zoom_in  0.93\n"
        );
    }

    #[test]
    fn windows_padding_and_warnings() {
        let mut r = ok("a.mp4", Some(Window::new(0.0, 4.0)));
        if let super::Record::Ok(v) = &mut r {
            v.padded_frames = 3;
            v.warnings = vec!["skipped 1 corrupt packet".into()];
            v.top_k.truncate(1);
        }
        assert_eq!(
            render(Format::Text, &[vec![r]]),
            "a.mp4 [0.00s-4.00s]\n  1   75.00%  zoom_in\n  note: shorter than one clip; last frame \
             repeated 3 times\n  warning: skipped 1 corrupt packet\n"
        );
    }

    #[test]
    fn names_labels_and_errors_stay_on_their_lines() {
        use super::super::{FileError, Stage};
        let mut r = ok("evil\n  1  100.00%  forged\x1b[2J.mp4", None);
        if let super::Record::Ok(v) = &mut r {
            v.top_k.truncate(1);
            v.top_k[0].label = "zoom\nin".into();
        }
        let e = super::Record::Err(FileError {
            path: "b\r.mp4".into(),
            stage: Stage::Open,
            error: "cannot open b\r.mp4\nline".into(),
        });
        assert_eq!(
            render(Format::Text, &[vec![r], vec![e]]),
            "evil\\n  1  100.00%  forged\\x1b[2J.mp4\n  1   75.00%  zoom\\nin\n\
             b\\r.mp4\n  error (open): cannot open b\\r.mp4\\nline\n"
        );
    }
}
