//! One self-contained HTML page for people: per input, pictures of the frames the model saw,
//! the top labels with score bars, errors as errors; with windows, a chart of the top classes
//! over time with the segments drawn on it and a picture per window; a summary and a table
//! sortable by label or score.
//!
//! Promises: nothing is fetched (pictures are `data:` URIs, styles and the one script inline,
//! and a Content-Security-Policy forbids any other source); every string from the run is
//! escaped; the page reads without its script (the script only sorts the table). Entries are
//! written as their inputs finish, so memory stays flat over thousands of videos; the summary
//! and table, known only at the end, come last in the file and are shown first by the style
//! sheet.

use super::{emit, About, Record, RecordWriter, Segment, Thumbnail, VideoResult};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Instant;

mod chart;

pub use chart::chart;

pub struct HtmlWriter {
    out: Box<dyn Write + Send>,
    about: About,
    started: Instant,
    begun: bool,
    rows: Vec<Row>,
}

/// One line of the summary table.
struct Row {
    path: String,
    /// Top label and score (of the best window, with windows); `None` for a failed input.
    top: Option<(String, f64)>,
    windows: usize,
    segments: usize,
}

impl HtmlWriter {
    pub fn new(out: Box<dyn Write + Send>, about: About) -> HtmlWriter {
        HtmlWriter {
            out,
            about,
            started: Instant::now(),
            begun: false,
            rows: Vec::new(),
        }
    }

    /// The page's head and the opening of the entries, before the first entry.
    fn begin(&mut self, buf: &mut String) {
        if !self.begun {
            self.begun = true;
            buf.push_str(&head());
        }
    }
}

impl RecordWriter for HtmlWriter {
    fn write_input(&mut self, records: &[Record]) -> io::Result<()> {
        let mut buf = String::new();
        self.begin(&mut buf);
        let n = self.rows.len();
        let (html, row) = entry(n, records, &self.about);
        buf.push_str(&html);
        self.rows.push(row);
        emit(&mut self.out, buf.as_bytes())
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        let mut buf = String::new();
        self.begin(&mut buf);
        buf.push_str("</section>\n");
        buf.push_str(&summary(&self.rows, &self.about, self.started));
        buf.push_str(&table(&self.rows));
        let _ = write!(
            buf,
            "<script>{SCRIPT}</script>\n</main>\n</body>\n</html>\n"
        );
        emit(&mut self.out, buf.as_bytes())
    }
}

/// `s` safe inside HTML text and double- or single-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Sorts the summary table by the clicked column (each cell's `data-key`).
const SCRIPT: &str = "document.querySelectorAll('#results th[data-sort]').forEach(function(th){\
th.tabIndex=0;th.title='sort';th.addEventListener('click',function(){\
var tb=th.closest('table').tBodies[0],i=th.cellIndex,num=th.dataset.sort==='num',\
asc=th.dataset.dir!=='asc';th.dataset.dir=asc?'asc':'desc';\
var rows=Array.prototype.slice.call(tb.rows);rows.sort(function(a,b){\
var x=a.cells[i].dataset.key,y=b.cells[i].dataset.key;\
var c=num?parseFloat(x)-parseFloat(y):x.localeCompare(y);return asc?c:-c;});\
rows.forEach(function(r){tb.appendChild(r);});});});";

/// `sha256-` and the base64 of SCRIPT's SHA-256: the only script the page's policy runs
/// (a unit test checks it).
const SCRIPT_HASH: &str = "sha256-qaZeLWvvEYggVVChdVxL8Bn5g88fzYqDZq03fNvqocc=";

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}\
main{display:flex;flex-direction:column;max-width:1100px;margin:auto;padding:0 16px}\
#summary{order:-2}#overview{order:-1}\
h1{font-size:22px;margin:16px 0 4px}h2{font-size:17px;margin:20px 0 6px}\
h3{font-size:15px;margin:0 0 6px;word-break:break-all}\
article{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 12px;margin:8px 0}\
article.failed{border-color:#d33;background:#fff5f5}\
.err{color:#b00020;font-weight:600}.meta,.note{color:#666;font-size:12px}\
.strip{display:flex;flex-wrap:wrap;gap:4px;margin:6px 0}\
figure{margin:0;font-size:11px;color:#555;text-align:center}\
figure img{display:block;height:72px;width:auto;border-radius:3px;background:#ccc}\
.strip>img{height:96px;width:auto;border-radius:3px;background:#ccc}\
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;vertical-align:middle}\
th[data-sort]{cursor:pointer;text-decoration:underline dotted}\
#results td:nth-child(2){word-break:break-all}\
.bar{display:inline-block;width:180px;height:10px;background:#e5e7eb;border-radius:5px;\
vertical-align:middle}.bar>span{display:block;height:100%;background:#2563eb;border-radius:5px}\
.legend{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:12px}\
.sw{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}\
svg{max-width:100%;height:auto;background:#fff}";

fn head() -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; \
style-src 'unsafe-inline'; script-src '{SCRIPT_HASH}'\">\n\
<title>vidcls report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
<section id=\"videos\">\n<h2>Videos</h2>\n"
    )
}

/// The records of one input, by kind.
#[derive(Default)]
struct Parts<'a> {
    whole: Vec<&'a VideoResult>,
    windows: Vec<&'a VideoResult>,
    segments: Vec<&'a Segment>,
    errors: Vec<&'a super::FileError>,
    other: Vec<&'a Record>,
}

fn parts(records: &[Record]) -> Parts<'_> {
    let mut p = Parts::default();
    for r in records {
        match r {
            Record::Ok(v) if v.window.is_some() => p.windows.push(v),
            Record::Ok(v) => p.whole.push(v),
            Record::Segment(s) => p.segments.push(s),
            Record::Err(e) => p.errors.push(e),
            Record::Features(_) => p.other.push(r),
        }
    }
    p
}

/// Input number `n`'s entry, and its row of the summary table.
fn entry(n: usize, records: &[Record], about: &About) -> (String, Row) {
    let path = records.first().map_or("", Record::path).to_string();
    let p = parts(records);
    let class = if p.errors.is_empty() {
        ""
    } else {
        " class=\"failed\""
    };
    let h = format!(
        "<article id=\"v{n}\"{class}>\n<h3><a href=\"#v{n}\">{}.</a> {}</h3>\n{}</article>\n",
        n + 1,
        esc(&path),
        body(&p, about)
    );
    let row = Row {
        path,
        top: top_of(&p),
        windows: p.windows.len(),
        segments: p.segments.len(),
    };
    (h, row)
}

/// An entry's sections: errors, what the run used, pictures, labels, time line, segments.
fn body(p: &Parts, about: &About) -> String {
    let mut h = String::new();
    for e in &p.errors {
        let _ = writeln!(
            h,
            "<p class=\"err\">error ({}): {}</p>",
            e.stage,
            esc(&e.error)
        );
    }
    if let Some(first) = p.whole.first().or(p.windows.first()) {
        h.push_str(&meta_line(first, about));
    }
    for v in &p.whole {
        h.push_str(&strip(&v.thumbnails));
        h.push_str(&bars(v));
    }
    if !p.windows.is_empty() {
        h.push_str(&timeline(&p.windows, &p.segments));
    }
    if !p.segments.is_empty() {
        h.push_str(&segment_table(&p.segments));
    }
    for r in &p.other {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(&format!("{r:?}")));
    }
    h
}

/// Model, precision, duration, views, padding and warnings of a classified input.
fn meta_line(v: &VideoResult, about: &About) -> String {
    let mut m = format!(
        "model {} ({}), {:.2} s, {} clip(s) x {} crop(s)",
        v.model,
        if about.precision.is_empty() {
            "?"
        } else {
            &about.precision
        },
        v.duration,
        v.clips,
        v.crops
    );
    if v.padded_frames > 0 {
        let _ = write!(m, "; last frame repeated {} times", v.padded_frames);
    }
    let mut h = format!("<p class=\"meta\">{}</p>\n", esc(&m));
    for w in &v.warnings {
        let _ = writeln!(h, "<p class=\"note\">warning: {}</p>", esc(w));
    }
    h
}

/// The top label and score shown in the table: the video's, or its best window's.
fn top_of(p: &Parts) -> Option<(String, f64)> {
    if !p.errors.is_empty() {
        return None;
    }
    let best = p
        .whole
        .iter()
        .chain(&p.windows)
        .filter_map(|v| v.top_k.first())
        .max_by(|a, b| a.score.total_cmp(&b.score));
    match best {
        Some(t) => Some((t.label.clone(), t.score)),
        None => p
            .segments
            .iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .map(|s| (s.label.clone(), s.score)),
    }
}

/// `<img>` of a thumbnail, loaded lazily, its time as the alternative text.
fn img(t: &Thumbnail) -> String {
    format!(
        "<img loading=\"lazy\" decoding=\"async\" width=\"{}\" height=\"{}\" alt=\"frame at {:.2} s\" \
         title=\"{:.2} s\" src=\"data:image/jpeg;base64,{}\">",
        t.width,
        t.height,
        t.time,
        t.time,
        base64(&t.jpeg)
    )
}

fn strip(thumbs: &[Thumbnail]) -> String {
    if thumbs.is_empty() {
        return String::new();
    }
    let imgs: String = thumbs.iter().map(img).collect();
    format!("<div class=\"strip\">{imgs}</div>\n")
}

/// The top-k labels with a bar per score.
fn bars(v: &VideoResult) -> String {
    let mut h = String::from("<table class=\"topk\">\n");
    for (i, p) in v.top_k.iter().enumerate() {
        let pct = (p.score * 100.0).clamp(0.0, 100.0);
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td><span class=\"bar\"><span style=\"width:{pct:.1}%\">\
             </span></span></td><td>{:.2}%</td></tr>",
            i + 1,
            esc(&p.label),
            p.score * 100.0
        );
    }
    h.push_str("</table>\n");
    h
}

/// The chart of a video's windows and a picture per window with its top label.
fn timeline(windows: &[&VideoResult], segments: &[&Segment]) -> String {
    let mut h = chart(windows, segments);
    h.push_str("<div class=\"strip\">");
    for v in windows {
        let w = v.window.expect("a window record");
        let top = v.top_k.first().map_or(String::new(), |p| {
            format!("{} {:.0}%", p.label, p.score * 100.0)
        });
        let pics: String = v.thumbnails.iter().map(img).collect();
        let _ = write!(
            h,
            "<figure>{pics}<figcaption>{:.1}-{:.1} s<br>{}</figcaption></figure>",
            w.start,
            w.end,
            esc(&top)
        );
    }
    h.push_str("</div>\n");
    h
}

fn segment_table(segments: &[&Segment]) -> String {
    let mut h = String::from("<table class=\"segments\">\n<tr><th>from</th><th>to</th><th>label</th><th>score</th></tr>\n");
    for s in segments {
        let _ = writeln!(
            h,
            "<tr><td>{:.2} s</td><td>{:.2} s</td><td>{}</td><td>{:.2}</td></tr>",
            s.start,
            s.end,
            esc(&s.label),
            s.score
        );
    }
    h.push_str("</table>\n");
    h
}

/// Counts, model, precision, device and time taken.
fn summary(rows: &[Row], about: &About, started: Instant) -> String {
    let failed = rows.iter().filter(|r| r.top.is_none()).count();
    let windows: usize = rows.iter().map(|r| r.windows).sum();
    let segments: usize = rows.iter().map(|r| r.segments).sum();
    let mut counts = format!(
        "{} input(s): {} classified, {} failed",
        rows.len(),
        rows.len() - failed,
        failed
    );
    if windows > 0 {
        let _ = write!(counts, "; {windows} window(s), {segments} segment(s)");
    }
    let run = format!(
        "model {}, {}, on {}; {:.1} s",
        about.model,
        about.precision,
        about.device,
        started.elapsed().as_secs_f64()
    );
    format!(
        "<header id=\"summary\">\n<h1>vidcls report</h1>\n<p id=\"counts\">{}</p>\n<p class=\"meta\">{}</p>\n</header>\n",
        esc(&counts),
        esc(&run)
    )
}

/// The table of every input, sortable by the script (by video, label or score).
fn table(rows: &[Row]) -> String {
    let mut h = String::from(
        "<section id=\"overview\">\n<h2>Overview</h2>\n<table id=\"results\">\n<thead><tr>\
         <th>#</th><th data-sort=\"text\">video</th><th data-sort=\"text\">top label</th>\
         <th data-sort=\"num\">score</th></tr></thead>\n<tbody>\n",
    );
    for (n, r) in rows.iter().enumerate() {
        let path = esc(&r.path);
        let (label, score, key) = match &r.top {
            Some((l, s)) => (esc(l), format!("{:.2}%", s * 100.0), format!("{s}")),
            None => (
                "<span class=\"err\">error</span>".into(),
                String::new(),
                "-1".into(),
            ),
        };
        let label_key = r.top.as_ref().map_or(String::new(), |(l, _)| esc(l));
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#v{n}\">{}</a></td><td data-key=\"{path}\">{path}</td>\
             <td data-key=\"{label_key}\">{label}</td><td data-key=\"{key}\">{score}</td></tr>",
            n + 1
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
    h
}

/// Standard base64 (RFC 4648, padded).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
