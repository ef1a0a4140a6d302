//! predict's output, byte for byte (timings aside), on the shipped samples in every format:
//! what a change to the face or the stages must keep, unless it means to change it. The
//! expected files are in tests/golden/; `VIDCLS_BLESS=1 cargo test --release --test tests
//! golden::` writes them anew (then read the diff before committing it).

use crate::support::{root, vidcls};
use std::path::Path;

/// (file name, predict's arguments): fp32, so the figures do not depend on the CPU's bf16.
const CASES: &[(&str, &[&str])] = &[
    ("videos.txt", &["-f", "text"]),
    (
        "videos.json",
        &["-f", "json", "--all-scores", "--aggregate", "logit"],
    ),
    ("videos.jsonl", &["-f", "jsonl"]),
    ("videos.csv", &["-f", "csv", "-k", "2"]),
    (
        "timeline.jsonl",
        &[
            "-f",
            "jsonl",
            "--timeline",
            "--window",
            "1",
            "--clips",
            "2",
            "--crops",
            "3",
            "-k",
            "3",
        ],
    ),
    (
        "timeline.csv",
        &["-f", "csv", "--timeline", "--window", "1.5", "--hop", "0.5"],
    ),
    (
        "timeline.txt",
        &["-f", "text", "--timeline", "--window", "1"],
    ),
    (
        "segments.json",
        &[
            "-f",
            "json",
            "--segments",
            "--window",
            "1",
            "--hop",
            "0.5",
            "models/samples/missing.mp4",
        ],
    ),
    ("page.html", &["-f", "html", "--timeline", "--window", "1"]),
];

/// Subtitles hold one video's segments.
const SUBTITLES: &[(&str, &[&str])] = &[
    (
        "zoom_in.srt",
        &["-f", "srt", "--segments", "--window", "1", "--hop", "0.5"],
    ),
    (
        "zoom_in.vtt",
        &["-f", "vtt", "--segments", "--window", "1", "--hop", "0.5"],
    ),
];

const SAMPLES: &[&str] = &[
    "models/samples/move_right.mp4",
    "models/samples/move_up.mp4",
    "models/samples/rotate_ccw.mp4",
    "models/samples/zoom_in.mp4",
];

/// The output less what changes from run to run: stage timings, and the page's elapsed time.
fn steady(text: &str) -> String {
    let mut s = text.to_string();
    for key in ["\"decode_ms\":", "\"preprocess_ms\":", "\"model_ms\":"] {
        s = blank_numbers_after(&s, key);
    }
    s.lines()
        .map(
            |l| match l.find("; ").filter(|_| l.contains("class=\"meta\"")) {
                Some(i) => format!("{}; T</p>", &l[..i]),
                None => l.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with each number after `key` written as `T`.
fn blank_numbers_after(text: &str, key: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(key) {
        out.push_str(&rest[..i + key.len()]);
        let tail = rest[i + key.len()..].trim_start();
        let end = tail
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | '-' | '+')))
            .unwrap_or(tail.len());
        out.push('T');
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Two lines equal but for the last digits of their numbers: float32 kernels differ between
/// CPUs (AVX2, AVX-512, AMX) in the last bits, so scores may move by a few parts in 1e9. Text
/// must match exactly; numbers must agree to 1e-6, relative.
fn same_line(got: &str, want: &str) -> bool {
    let (g, w) = (split_numbers(got), split_numbers(want));
    g.len() == w.len()
        && g.iter().zip(&w).all(|(a, b)| match (a, b) {
            (Piece::Number(x), Piece::Number(y)) => {
                (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1.0)
            }
            _ => a == b,
        })
}

#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    Number(f64),
}

/// `line` as runs of text and the decimal numbers between them (`0.95`, `1e-5`).
fn split_numbers(line: &str) -> Vec<Piece<'_>> {
    let bytes = line.as_bytes();
    let (mut out, mut start, mut i) = (Vec::new(), 0, 0);
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
            end += 1;
        }
        if end < bytes.len() && matches!(bytes[end], b'e' | b'E') {
            let sign = usize::from(matches!(bytes.get(end + 1), Some(b'-' | b'+')));
            if bytes.get(end + 1 + sign).is_some_and(u8::is_ascii_digit) {
                end += 1 + sign;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
            }
        }
        if let Ok(x) = line[i..end].parse::<f64>() {
            out.push(Piece::Text(&line[start..i]));
            out.push(Piece::Number(x));
            start = end;
        }
        i = end;
    }
    out.push(Piece::Text(&line[start..]));
    out
}

#[test]
fn numbers_may_differ_in_their_last_digits_only() {
    assert!(same_line(
        "\"score\": 0.9497243278801416,",
        "\"score\": 0.9497243260527009,"
    ));
    assert!(same_line("a 1e-5 b", "a 1.0000000001e-5 b"));
    assert!(!same_line("\"score\": 0.9497,", "\"score\": 0.9498,"));
    assert!(!same_line("move_up 0.95", "move_right 0.95"));
    assert!(!same_line("1 2", "1 2 3"));
}

fn check(name: &str, args: &[&str], inputs: &[&str]) {
    let mut v = vidcls(&["predict", "-q", "--precision", "fp32"]);
    v.args(args).args(inputs).command().current_dir(root());
    let run = v.run();
    let got = steady(&String::from_utf8_lossy(&run.output.stdout));
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("VIDCLS_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (VIDCLS_BLESS=1 writes it)", path.display()));
    let (g, w): (Vec<_>, Vec<_>) = (got.lines().collect(), want.lines().collect());
    if g.len() != w.len() || g.iter().zip(&w).any(|(g, w)| !same_line(g, w)) {
        let line = g
            .iter()
            .zip(&w)
            .position(|(g, w)| !same_line(g, w))
            .unwrap_or(g.len().min(w.len()));
        panic!(
            "predict {args:?} differs from {} at line {}:\n got: {}\nwant: {}",
            path.display(),
            line + 1,
            got.lines().nth(line).unwrap_or("<end>"),
            want.lines().nth(line).unwrap_or("<end>")
        );
    }
}

#[test]
fn predict_output_is_what_it_was_in_every_format() {
    assert!(Path::new(&root().join(SAMPLES[0])).is_file());
    for (name, args) in CASES {
        check(name, args, SAMPLES);
    }
    for (name, args) in SUBTITLES {
        check(name, args, &["models/samples/zoom_in.mp4"]);
    }
}
