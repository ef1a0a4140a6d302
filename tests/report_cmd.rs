//! `vidcls report`: the shards of a run (`predict --shard K/N -f jsonl`) give the page, CSV and
//! subtitles one run gives; coverage of an input list is checked; torn last lines are
//! tolerated, foreign lines and records of other models refused.

use crate::support::{lavfi_video, predict, root, scratch, vidcls};
use std::path::{Path, PathBuf};

/// Four small videos under `dir/clips`, one in a subfolder whose name sorts before a file's
/// (`b/` and `b.mp4`): a directory walk lists `b/c.mp4` first, as the report must.
fn clips(dir: &Path) -> PathBuf {
    let made = [
        ("a.mp4", "testsrc=size=64x48:rate=10"),
        ("b.mp4", "testsrc2=size=64x48:rate=10"),
        ("c.mp4", "rgbtestsrc=size=64x48:rate=10"),
        ("d.mp4", "smptebars=size=64x48:rate=10"),
    ];
    let clips = dir.join("clips");
    std::fs::create_dir_all(clips.join("b")).unwrap();
    for (name, source) in made {
        let v = lavfi_video("report", name, source, "2", "libx264");
        let to = if name == "c.mp4" {
            clips.join("b").join(name)
        } else {
            clips.join(name)
        };
        std::fs::copy(v, to).unwrap();
    }
    clips
}

/// `predict --shard K/2 -f jsonl` of `inputs` into `dir/sK.jsonl`, both shards non-empty.
fn shards(dir: &Path, inputs: &Path) -> [PathBuf; 2] {
    let files = [1, 2].map(|k| dir.join(format!("s{k}.jsonl")));
    for (k, file) in files.iter().enumerate() {
        let shard = format!("{}/2", k + 1);
        predict(&["-q", "-f", "jsonl", "--shard", &shard, "-o"])
            .arg(file)
            .arg(inputs)
            .run();
        let lines = std::fs::read_to_string(file).unwrap().lines().count();
        assert!(lines > 0, "shard {shard} is empty: pick other names");
    }
    files
}

/// `vidcls report ARGS FILES...`.
fn report(args: &[&str], files: &[PathBuf]) -> crate::support::Vidcls {
    let mut v = vidcls(&["report"]);
    v.args(args).args(files);
    v
}

/// A page without the line that says how long making it took.
fn untimed(page: &str) -> String {
    page.lines()
        .filter(|l| !(l.starts_with("<p class=\"meta\">model ") && l.contains(", on ")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn shards_make_the_page_of_one_run() {
    let dir = scratch("report-html");
    let clips = clips(&dir);
    let single = dir.join("single.html");
    predict(&["-q", "-f", "html", "-o"])
        .arg(&single)
        .arg(&clips)
        .ok();
    let s = shards(&dir, &clips);
    let page = dir.join("report.html");
    report(&["-q", "-f", "html", "-o", page.to_str().unwrap()], &s).ok();
    let (want, got) = (
        std::fs::read_to_string(&single).unwrap(),
        std::fs::read_to_string(&page).unwrap(),
    );
    assert_eq!(got.matches("<article id=").count(), 4);
    assert_eq!(got.matches("<img ").count(), 32, "8 pictures per video");
    assert_eq!(untimed(&got), untimed(&want));
    // -o follows predict: an existing file is refused without --force.
    let again = report(&["-f", "html", "-o", page.to_str().unwrap()], &s).expect_code(2);
    assert!(again.stderr().contains("--force"), "{}", again.stderr());
    report(
        &["-q", "-f", "html", "--force", "-o", page.to_str().unwrap()],
        &s,
    )
    .ok();
}

#[test]
fn shards_make_the_csv_of_one_run_and_cover_the_list() {
    let dir = scratch("report-csv");
    let clips = clips(&dir);
    let single = predict(&["-q", "-f", "csv"]).arg(&clips).ok().stdout();
    let s = shards(&dir, &clips);
    // The list in another order than the walk's: the report follows the list.
    let list = dir.join("inputs.txt");
    let walked: Vec<String> = ["b/c.mp4", "a.mp4", "b.mp4", "d.mp4"]
        .iter()
        .map(|n| clips.join(n).to_string_lossy().into_owned())
        .collect();
    std::fs::write(&list, walked.join("\n") + "\n").unwrap();
    let got = report(&["-f", "csv"], &s).ok();
    assert_eq!(got.stdout(), single);
    let listed = report(&["-f", "csv", "--inputs", list.to_str().unwrap()], &s).ok();
    assert!(
        listed.stderr().contains("4 listed, 4 recorded, 0 missing"),
        "{}",
        listed.stderr()
    );
    let rows: Vec<String> = listed.stdout().lines().skip(1).map(String::from).collect();
    assert!(rows[0].starts_with(&walked[0]), "{}", rows[0]);
    let mut reordered = vec![walked[1].clone(), walked[0].clone()];
    reordered.extend(walked[2..].iter().cloned());
    std::fs::write(&list, reordered.join("\n")).unwrap();
    let listed = report(&["-f", "csv", "--inputs", list.to_str().unwrap()], &s).ok();
    let first = listed.stdout().lines().nth(1).unwrap().to_string();
    assert!(first.starts_with(&walked[1]), "{first}");
}

#[test]
fn segment_records_make_the_subtitles_of_one_run() {
    let dir = scratch("report-srt");
    let clip = lavfi_video(
        "report",
        "moving.mp4",
        "testsrc2=size=96x72:rate=10",
        "6",
        "libx264",
    );
    let rules = [
        "--segments",
        "--seg-on",
        "0",
        "--seg-off",
        "0",
        "--min-duration",
        "0",
        "--window",
        "2",
    ];
    let srt = predict(&["-q", "-f", "srt"])
        .args(rules)
        .arg(&clip)
        .ok()
        .stdout();
    assert!(srt.contains(" --> "), "no cue to compare:\n{srt}");
    let records = dir.join("segments.jsonl");
    predict(&["-q", "-f", "jsonl", "-o"])
        .arg(&records)
        .args(rules)
        .arg(&clip)
        .ok();
    let got = report(&["-f", "srt"], std::slice::from_ref(&records)).ok();
    assert_eq!(got.stdout(), srt);
    let two = report(&["-f", "srt"], &[records.clone(), records]).run();
    assert_ne!(two.code(), Some(0));
}

#[test]
fn coverage_lists_missing_repeated_and_failed_inputs() {
    let dir = scratch("report-coverage");
    let clips = clips(&dir);
    let bad = clips.join("bad.mp4");
    std::fs::write(&bad, "not a video").unwrap();
    let mut s = shards(&dir, &clips).to_vec();
    // One input again, as a rerun of another shard would record it.
    let dup = dir.join("again.jsonl");
    let first = std::fs::read_to_string(&s[0]).unwrap();
    std::fs::write(&dup, first.lines().next().unwrap().to_string() + "\n").unwrap();
    s.push(dup.clone());
    let missing = clips.join("missing.mp4");
    let mut listed: Vec<PathBuf> = ["a.mp4", "b.mp4", "b/c.mp4", "d.mp4", "bad.mp4"]
        .iter()
        .map(|n| clips.join(n))
        .collect();
    listed.push(missing.clone());
    let list = dir.join("inputs.txt");
    let text: Vec<String> = listed.iter().map(|p| p.display().to_string()).collect();
    std::fs::write(&list, text.join("\n")).unwrap();
    let out = dir.join("out.csv");
    let run = report(
        &[
            "-f",
            "csv",
            "--inputs",
            list.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &s,
    )
    .expect_code(1);
    let err = run.stderr();
    assert!(
        err.contains(&format!("missing: {}", missing.display())),
        "{err}"
    );
    assert!(err.contains("recorded twice: "), "{err}");
    assert!(err.contains(&format!("{}", dup.display())), "{err}");
    assert!(err.contains(&format!("failed: {}", bad.display())), "{err}");
    assert!(
        err.contains("6 listed, 5 recorded, 1 missing, 1 recorded twice, 1 failed"),
        "{err}"
    );
    // Nothing recorded is lost: every input is in the output, the failed one as an error row.
    let csv = std::fs::read_to_string(&out).unwrap();
    for p in &listed[..5] {
        assert!(csv.contains(&p.display().to_string()), "{csv}");
    }
    // Without --inputs the repeat and the failure still count.
    let run = report(&["-f", "csv"], &s).expect_code(1);
    assert!(run.stderr().contains("recorded twice"), "{}", run.stderr());
}

#[test]
fn a_torn_last_line_is_left_out_with_a_warning() {
    let dir = scratch("report-torn");
    let clips = clips(&dir);
    let single = predict(&["-q", "-f", "csv"]).arg(&clips).ok().stdout();
    let s = shards(&dir, &clips);
    let whole = std::fs::read_to_string(&s[0]).unwrap();
    let other = std::fs::read_to_string(&s[1]).unwrap();
    let line = other.lines().next().unwrap();
    let torn = dir.join("killed.jsonl");
    let cut = &line[..line.len() / 2];
    std::fs::write(&torn, format!("{whole}{cut}")).unwrap();
    let run = report(&["-f", "csv"], &[torn.clone(), s[1].clone()]).ok();
    assert_eq!(run.stdout(), single);
    let n = whole.lines().count() + 1;
    let said = format!("{} line {n}: torn last line", torn.display());
    assert!(run.stderr().contains(&said), "{}", run.stderr());
}

#[test]
fn a_line_that_is_no_record_is_an_error_naming_file_and_line() {
    let dir = scratch("report-foreign");
    let clips = clips(&dir);
    let s = shards(&dir, &clips);
    let whole = std::fs::read_to_string(&s[0]).unwrap();
    let foreign = dir.join("foreign.jsonl");
    std::fs::write(
        &foreign,
        format!("{whole}{{\"name\":\"x\",\"n\":1}}\n{whole}"),
    )
    .unwrap();
    let run = report(&["-f", "csv"], &[s[1].clone(), foreign.clone()]).expect_code(2);
    let n = whole.lines().count() + 1;
    let said = format!("{} line {n}: not a vidcls record", foreign.display());
    assert!(run.stderr().contains(&said), "{}", run.stderr());
    assert!(run.stdout().is_empty(), "{}", run.stdout());
    // A cut line that is not the last is no torn line either.
    let cut = dir.join("cut.jsonl");
    let line = whole.lines().next().unwrap();
    std::fs::write(&cut, format!("{}\n{whole}", &line[..line.len() / 2])).unwrap();
    let run = report(&["-f", "csv"], std::slice::from_ref(&cut)).expect_code(2);
    let said = format!("{} line 1: not a vidcls record", cut.display());
    assert!(run.stderr().contains(&said), "{}", run.stderr());
}

/// `configs/motion.json` with other labels (same model name, same weights).
fn relabelled(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("configs/motion.json")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    let labels: Vec<String> = (0..8).map(|i| format!("class_{i}")).collect();
    cfg["labels"] = serde_json::json!(labels);
    cfg["file"] = root().join("models/motion.pt").to_str().unwrap().into();
    let path = dir.join("relabelled.json");
    std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
    path
}

#[test]
fn records_of_other_labels_are_refused_without_mixed() {
    let dir = scratch("report-mixed");
    let clips = clips(&dir);
    let s = shards(&dir, &clips);
    let other = dir.join("other.jsonl");
    let config = relabelled(&dir);
    let copy = dir.join("copy.mp4");
    std::fs::copy(clips.join("a.mp4"), &copy).unwrap();
    predict(&["-q", "-f", "jsonl", "-m", config.to_str().unwrap(), "-o"])
        .arg(&other)
        .arg(&copy)
        .ok();
    let files = [s[0].clone(), other.clone()];
    let run = report(&["-f", "csv"], &files).expect_code(2);
    let err = run.stderr();
    assert_eq!(err.lines().count(), 1, "{err}");
    for said in [
        s[0].display().to_string(),
        other.display().to_string(),
        "label".into(),
        "--mixed".into(),
    ] {
        assert!(err.contains(&said), "{said} not in {err}");
    }
    let mixed = report(&["-f", "csv", "--mixed"], &files).ok();
    assert!(mixed.stdout().contains("class_"), "{}", mixed.stdout());
}

#[test]
fn pictures_of_unreachable_videos_are_left_out_with_a_note() {
    let dir = scratch("report-unreachable");
    let clips = clips(&dir);
    let s = shards(&dir, &clips);
    let gone = clips.join("a.mp4");
    std::fs::remove_file(&gone).unwrap();
    let page = dir.join("r.html");
    let run = report(&["-f", "html", "-o", page.to_str().unwrap()], &s).ok();
    let shown = format!("{}: pictures left out", gone.display());
    assert!(run.stderr().contains(&shown), "{}", run.stderr());
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(
        html.matches("<img ").count(),
        24,
        "8 pictures for each of 3 videos"
    );
    assert_eq!(html.matches("pictures left out").count(), 1);
}
