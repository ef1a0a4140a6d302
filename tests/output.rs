//! Output encoding of hostile names and labels: a file name cannot forge a line of text output
//! or send a terminal escape, a CSV cell cannot start a spreadsheet formula, a label cannot
//! break a subtitle cue, and labels with control characters are refused where they come in.

use crate::support::{lavfi_video, predict, root, scratch, vidcls};
use std::path::{Path, PathBuf};

/// A small video the built-in model classifies.
fn clip() -> PathBuf {
    lavfi_video(
        "output",
        "clip.mp4",
        "testsrc=size=96x96:rate=10",
        "2",
        "libx264",
    )
}

/// `configs/motion.json` with other labels, written into `dir` (the weights stay where they are).
fn motion_config(dir: &Path, labels: &[&str]) -> PathBuf {
    let text = std::fs::read_to_string(root().join("configs/motion.json")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    cfg["labels"] = serde_json::json!(labels);
    cfg["file"] = root().join("models/motion.pt").to_str().unwrap().into();
    let path = dir.join("hostile.json");
    std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
    path
}

#[test]
fn text_names_are_escaped_and_cannot_forge_result_lines() {
    let dir = scratch("output-text");
    let forged = "  1  100.00%  zoom_in";
    let good = dir.join(format!("evil\n{forged}\x1b[31m.mp4"));
    std::fs::copy(clip(), &good).unwrap();
    let bad = dir.join("bad\n\x1b]0;owned\x07.mp4");
    std::fs::write(&bad, b"not a video").unwrap();
    let out = predict(&["-f", "text", "-k", "2"])
        .arg(&good)
        .arg(&bad)
        .expect_code(1);
    let (stdout, stderr) = (out.stdout(), out.stderr());
    let d = dir.to_str().unwrap();
    assert!(
        !stdout.contains('\x1b') && !stderr.contains('\x1b'),
        "{stdout:?}\n{stderr:?}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert_eq!(lines[0], format!("{d}/evil\\n{forged}\\x1b[31m.mp4"));
    assert!(
        lines[1].starts_with("  1  ") && lines[2].starts_with("  2  "),
        "{stdout}"
    );
    assert!(
        !lines.contains(&forged),
        "a name forged a result line:\n{stdout}"
    );
    assert_eq!(lines[3], format!("{d}/bad\\n\\x1b]0;owned\\x07.mp4"));
    assert!(lines[4].starts_with("  error ("), "{stdout}");
    let failure = format!("vidcls: {d}/bad\\n\\x1b]0;owned\\x07.mp4: ");
    assert!(
        stderr.lines().any(|l| l.starts_with(&failure)),
        "the failure line on stderr is not escaped:\n{stderr}"
    );
}

#[test]
fn csv_cells_that_would_run_as_formulas_are_neutralised_unless_raw() {
    let dir = scratch("output-csv");
    let names = [
        "=HYPERLINK(\"x.test\",\"y\").mp4",
        "+cmd.mp4",
        "@x.mp4",
        "-x.mp4",
    ];
    for n in names {
        std::fs::copy(clip(), dir.join(n)).unwrap();
    }
    let paths = |raw: bool| -> Vec<(String, String)> {
        let flags: &[&str] = if raw { &["--csv-raw"] } else { &[] };
        let mut run = predict(&["-f", "csv", "-k", "1"]);
        run.args(flags)
            .arg("--")
            .args(names)
            .command()
            .current_dir(&dir);
        let text = run.ok().stdout();
        let mut rows = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), names.len(), "{text}");
        assert!(rows.iter().all(|r| r[6].parse::<f64>().is_ok()), "{text}");
        rows.iter()
            .map(|r| (r[0].to_string(), r[4].to_string()))
            .collect()
    };
    for ((path, label), name) in paths(false).into_iter().zip(names) {
        assert_eq!(path, format!("'{name}"));
        assert!(!label.starts_with('\''), "{label}");
    }
    for ((path, _), name) in paths(true).into_iter().zip(names) {
        assert_eq!(path, name);
    }
    // Resuming reads the neutralised cells back as the names they were written for.
    let out = dir.join("out.csv");
    for resume in [false, true] {
        let mut run = predict(&["-f", "csv", "-k", "1", "--summary-json", "-o"]);
        run.arg(&out).args(resume.then_some("--resume"));
        run.arg("--").args(names).command().current_dir(&dir);
        let summary = run.ok().summary();
        assert_eq!(summary.already_done, if resume { names.len() } else { 0 });
    }
    let out = predict(&["-f", "text", "--csv-raw"])
        .arg(clip())
        .expect_code(2);
    assert_eq!(out.stderr(), "vidcls: --csv-raw: only with -f csv\n");
}

#[test]
fn model_config_label_with_a_control_character_is_refused() {
    let dir = scratch("output-config");
    let labels = ["a", "b", "a\nb", "c", "d", "e", "f", "g"];
    let config = motion_config(&dir, &labels);
    let out = predict(&["-m", config.to_str().unwrap()])
        .arg(clip())
        .expect_code(2);
    assert_eq!(
        out.stderr(),
        format!(
            "vidcls: invalid model config {}: label 2: \"a\\nb\" holds the control character \
             '\\n'; labels may not\n",
            config.display()
        )
    );
}

#[test]
fn training_class_folder_with_a_control_character_is_refused() {
    let dir = scratch("output-train");
    let data = dir.join("data");
    for class in ["walk", "run\x1b[8m"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        std::fs::copy(clip(), data.join(class).join("a.mp4")).unwrap();
    }
    let out = vidcls(&["train", "-q", "-o"])
        .arg(dir.join("model"))
        .arg(&data)
        .expect_code(2);
    assert_eq!(
        out.stderr(),
        format!(
            "vidcls: {}: class folder name: \"run\\u{{1b}}[8m\" holds the control character \
             '\\u{{1b}}'; labels may not\n",
            data.display()
        )
    );
}

/// Labels that would break a cue: a line separator, `-->` (a timing line) and WebVTT markup.
#[test]
fn subtitle_cues_stay_one_line_whatever_the_label() {
    let dir = scratch("output-subtitles");
    let labels: Vec<String> = (0..8)
        .map(|i| format!("l{i} --> 00:00:09.000\u{2028}<b>&"))
        .collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let config = motion_config(&dir, &labels);
    for (format, header, lines) in [("srt", 0, 3), ("vtt", 1, 2)] {
        let text = predict(&["-m", config.to_str().unwrap(), "-f", format])
            .args([
                "--segments",
                "--window",
                "1",
                "--seg-on",
                "0.1",
                "--seg-off",
                "0.05",
            ])
            .args(["--min-duration", "0"])
            .arg(clip())
            .ok()
            .stdout();
        assert!(!text.contains('\u{2028}'), "{text}");
        let cues: Vec<&str> = text
            .split("\n\n")
            .skip(header)
            .filter(|b| !b.is_empty())
            .collect();
        assert!(!cues.is_empty(), "no cues:\n{text}");
        for cue in cues {
            let cue_lines: Vec<&str> = cue.lines().collect();
            assert_eq!(cue_lines.len(), lines, "{format} cue {cue:?}");
            let text_line = cue_lines[lines - 1];
            assert!(
                text_line.starts_with('l') && !text_line.contains("-->"),
                "{cue:?}"
            );
        }
    }
}
