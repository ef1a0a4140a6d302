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
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(got.lines().count().min(want.lines().count()));
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
