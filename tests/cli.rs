//! The built binary on generated videos: formats, exit codes, stdin, directories with bad
//! files, resume after a kill, shards, a closed pipe, thread-count independence.

use crate::support::{assert_code, bin, ffmpeg, lavfi_video, run_ok, scratch, spawn_until_lines};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use vidcls::report::Record;

/// Six small test videos (2 s, various sizes and codecs) made once per run.
fn videos() -> &'static Vec<PathBuf> {
    static V: OnceLock<Vec<PathBuf>> = OnceLock::new();
    V.get_or_init(|| {
        let specs = [
            ("a.mp4", "testsrc=size=160x120:rate=25", "libx264"),
            ("b.mp4", "testsrc2=size=128x96:rate=30", "libx264"),
            ("c.webm", "mandelbrot=size=96x96:rate=24", "libvpx-vp9"),
            ("d.avi", "smptebars=size=176x144:rate=25", "mjpeg"),
            ("e.mp4", "rgbtestsrc=size=120x90:rate=15", "mpeg4"),
            ("f.mkv", "testsrc=size=100x80:rate=20", "libx264"),
        ];
        specs
            .iter()
            .map(|(name, src, codec)| lavfi_video("cli", name, src, "2", codec))
            .collect()
    })
}

fn predict(args: &[&str]) -> Command {
    let mut c = bin();
    c.arg("predict").args(args).stdin(Stdio::null());
    c
}

fn parse_jsonl(out: &[u8]) -> Vec<Record> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l:?}: {e}")))
        .collect()
}

fn path_of(r: &Record) -> &str {
    r.path()
}

/// Records without timings, for comparing runs.
fn untimed(mut rs: Vec<Record>) -> Vec<Record> {
    for r in &mut rs {
        if let Record::Ok(v) = r {
            v.timings = Default::default();
        }
    }
    rs
}

fn strs(v: &[PathBuf]) -> Vec<&str> {
    v.iter().map(|p| p.to_str().unwrap()).collect()
}

#[test]
fn jsonl_one_record_per_video_in_input_order() {
    let v = videos();
    let mut args = vec!["-f", "jsonl", "-k", "3"];
    args.extend(strs(v));
    let out = run_ok(&mut predict(&args));
    let recs = parse_jsonl(&out.stdout);
    assert_eq!(recs.len(), v.len());
    for (r, p) in recs.iter().zip(v) {
        let Record::Ok(r) = r else {
            panic!("{p:?} failed: {r:?}")
        };
        assert_eq!(r.path, p.to_str().unwrap());
        assert_eq!(r.top_k.len(), 3);
        assert!(r.top_k.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(r.top_k.iter().all(|p| (0.0..=1.0).contains(&p.score)));
        assert_eq!((r.clips, r.crops), (1, 1));
        assert!((r.duration - 2.0).abs() < 0.1, "duration {}", r.duration);
        assert_eq!(r.frame_times.len(), 1);
    }
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("6 classified, 0 failed"), "{summary}");
}

#[test]
fn every_format_parses() {
    let v = &videos()[..2];
    let files = strs(v);
    // JSON: one array of records.
    let mut a = vec!["-f", "json"];
    a.extend(&files);
    let recs: Vec<Record> = serde_json::from_slice(&run_ok(&mut predict(&a)).stdout).unwrap();
    assert_eq!(recs.len(), 2);
    // CSV: header + one row per (video, rank).
    let mut a = vec!["-f", "csv", "-k", "4"];
    a.extend(&files);
    let out = run_ok(&mut predict(&a)).stdout;
    let mut rdr = csv::Reader::from_reader(out.as_slice());
    assert_eq!(
        rdr.headers().unwrap().iter().collect::<Vec<_>>(),
        vidcls::report::CSV_HEADER.to_vec()
    );
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 8);
    assert_eq!(&rows[0][0], files[0]);
    assert_eq!(&rows[0][3], "1");
    assert!(rows[0][6].parse::<f64>().unwrap() >= rows[1][6].parse::<f64>().unwrap());
    // Text: the path, then k aligned lines "rank  score%  label".
    let mut a = vec!["-k", "2"];
    a.extend(&files);
    let text = String::from_utf8(run_ok(&mut predict(&a)).stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(lines[0], files[0]);
    assert!(
        lines[1].trim_start().starts_with("1  ") && lines[1].contains('%'),
        "{text}"
    );
    assert_eq!(
        lines[1].find('%'),
        lines[2].find('%'),
        "scores not aligned:\n{text}"
    );
}

#[test]
fn bad_inputs_are_recorded_and_the_batch_goes_on() {
    let dir = scratch("mixed");
    std::fs::copy(&videos()[0], dir.join("good1.mp4")).unwrap();
    std::fs::copy(&videos()[1], dir.join("good2.mp4")).unwrap();
    std::fs::write(dir.join("empty.mp4"), b"").unwrap();
    std::fs::write(dir.join("text.mkv"), b"this is not a video\n").unwrap();
    std::fs::write(
        dir.join("notes.txt"),
        b"not picked up: not a video extension\n",
    )
    .unwrap();
    let missing = dir.join("missing.mp4");
    let out = predict(&[
        "-f",
        "jsonl",
        dir.to_str().unwrap(),
        missing.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_code(&out, 1);
    let recs = parse_jsonl(&out.stdout);
    let names: Vec<String> = recs
        .iter()
        .map(|r| {
            Path::new(path_of(r))
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    // Directory entries in name order, then the missing file.
    assert_eq!(
        names,
        [
            "empty.mp4",
            "good1.mp4",
            "good2.mp4",
            "text.mkv",
            "missing.mp4"
        ]
    );
    let ok: Vec<bool> = recs.iter().map(|r| matches!(r, Record::Ok(_))).collect();
    assert_eq!(ok, [false, true, true, false, false]);
    for r in &recs {
        if let Record::Err(e) = r {
            assert!(
                !e.error.is_empty() && !e.stage.to_string().is_empty(),
                "{e:?}"
            );
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 classified, 3 failed"), "{stderr}");
}

#[test]
fn stdin_paths() {
    let v = videos();
    let mut child = bin()
        .args(["predict", "-", "-f", "jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}\n\n{}", v[2].display(), v[0].display()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = parse_jsonl(&out.stdout);
    let paths: Vec<&str> = recs.iter().map(path_of).collect();
    assert_eq!(paths, [v[2].to_str().unwrap(), v[0].to_str().unwrap()]);
}

#[test]
fn exit_code_two_for_fatal_errors() {
    let v = videos()[0].to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["--model", "no-such-model", v],
        vec!["--model", "/no/such/config.json", v],
        vec!["--device", "tpu", v],
        vec!["--shard", "4/3", v],
        vec!["--clips", "0", v],
        vec!["--frames", "0", v],
    ];
    for args in cases {
        let out = predict(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?} printed results");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // An existing output file is not overwritten without --force.
    let dir = scratch("exists");
    let o = dir.join("out.jsonl");
    std::fs::write(&o, "keep me\n").unwrap();
    let out = predict(&["-o", o.to_str().unwrap(), "-f", "jsonl", v])
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&o).unwrap(), "keep me\n");
    run_ok(&mut predict(&[
        "-o",
        o.to_str().unwrap(),
        "-f",
        "jsonl",
        "--force",
        v,
    ]));
    assert_eq!(parse_jsonl(&std::fs::read(&o).unwrap()).len(), 1);
}

#[test]
fn threads_do_not_change_output() {
    let v = strs(videos());
    let run = |threads: &str| {
        let mut a = vec!["-f", "jsonl", "--threads", threads, "--batch-size", "3"];
        a.extend(&v);
        untimed(parse_jsonl(&run_ok(&mut predict(&a)).stdout))
    };
    assert_eq!(run("1"), run("4"));
}

#[test]
fn shards_cover_every_input_once() {
    let v = strs(videos());
    let mut seen = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let mut a = vec!["-f", "jsonl", "--shard", &shard];
        a.extend(&v);
        let recs = parse_jsonl(&run_ok(&mut predict(&a)).stdout);
        seen.extend(recs.iter().map(|r| path_of(r).to_string()));
    }
    seen.sort();
    let mut all: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn resume_after_torn_write_and_after_kill() {
    let v = strs(videos());
    let dir = scratch("resume");
    let out = dir.join("labels.jsonl");
    let o = out.to_str().unwrap();
    // A run that crashed mid-line: two whole records and half of a third.
    let mut a = vec!["-f", "jsonl", "-q"];
    a.extend(&v[..3]);
    let full = run_ok(&mut predict(&a)).stdout;
    let text = String::from_utf8(full).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(
        &out,
        format!(
            "{}\n{}\n{}",
            lines[0],
            lines[1],
            &lines[2][..lines[2].len() / 2]
        ),
    )
    .unwrap();
    let mut a = vec!["-f", "jsonl", "-o", o, "--resume"];
    a.extend(&v);
    run_ok(&mut predict(&a));
    let recs = parse_jsonl(&std::fs::read(&out).unwrap());
    let paths: BTreeSet<&str> = recs.iter().map(path_of).collect();
    assert_eq!(recs.len(), v.len(), "one record per input");
    assert_eq!(paths, v.iter().copied().collect());

    // A real kill at a random-ish moment, then resume.
    std::fs::remove_file(&out).unwrap();
    let mut a = vec![
        "predict",
        "-f",
        "jsonl",
        "-o",
        o,
        "--threads",
        "1",
        "--batch-size",
        "1",
    ];
    let many: Vec<&str> = v
        .iter()
        .chain(v.iter())
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    a.extend(&many);
    let mut child = spawn_until_lines(&a, &out, 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut a = vec!["-f", "jsonl", "-o", o, "--resume"];
    a.extend(&many);
    run_ok(&mut predict(&a));
    let recs = parse_jsonl(&std::fs::read(&out).unwrap());
    assert_eq!(
        recs.len(),
        many.len(),
        "one record per input after kill + resume"
    );
    assert_eq!(
        recs.iter().map(path_of).collect::<BTreeSet<_>>(),
        many.iter().copied().collect()
    );
}

#[test]
fn closed_pipe_ends_quietly() {
    let dir = scratch("pipe");
    for i in 0..12 {
        std::fs::copy(&videos()[0], dir.join(format!("v{i:02}.mp4"))).unwrap();
    }
    let mut child = bin()
        .args([
            "predict",
            "-f",
            "jsonl",
            "--batch-size",
            "1",
            dir.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap(); // then dropped: `| head -1`
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(serde_json::from_str::<Record>(&first).is_ok(), "{first}");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
}

#[test]
fn timeline_windows() {
    let dir = scratch("timeline");
    let long = dir.join("long.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=128x96:rate=25",
        "-t",
        "9",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        long.to_str().unwrap(),
    ]);
    let out = run_ok(&mut predict(&[
        "-f",
        "jsonl",
        "--timeline",
        "--window",
        "4",
        long.to_str().unwrap(),
    ]));
    let recs = parse_jsonl(&out.stdout);
    let windows: Vec<[f64; 2]> = recs
        .iter()
        .map(|r| match r {
            Record::Ok(v) => v.window.expect("window").into(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(windows.len(), 3);
    assert_eq!(windows[0], [0.0, 4.0]);
    assert_eq!(windows[1], [4.0, 8.0]);
    assert!((windows[2][1] - 9.0).abs() < 0.05);
    for r in &recs {
        let Record::Ok(v) = r else { unreachable!() };
        let [s, e]: [f64; 2] = v.window.unwrap().into();
        for t in v.frame_times.iter().flatten() {
            assert!(
                *t >= s - 0.05 && *t <= e + 0.05,
                "frame at {t} outside window {s}-{e}"
            );
        }
    }
}

#[test]
fn probe_prints_json_and_flags_bad_files() {
    let v = &videos()[0];
    let out = run_ok(bin().args(["probe", v.to_str().unwrap()]));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(meta["width"], 160);
    assert_eq!(meta["height"], 120);
    assert_eq!(meta["codec"], "h264");
    let out = bin().args(["probe", "/no/such.mp4"]).output().unwrap();
    assert_code(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such.mp4"));
}

#[test]
fn version_and_models_commands() {
    let out = run_ok(bin().arg("version"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("libtorch    2.13.0") && text.contains("libavcodec") && text.contains("cuda"),
        "{text}"
    );
    let out = run_ok(bin().args(["models", "--json"]));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["name"], "motion");
    assert_eq!(rows[0]["classes"], 8);
}

#[test]
fn binary_finds_libtorch_without_environment() {
    let out = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_vidcls"))
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("libtorch_cpu.so =>"), "{text}");
    assert!(!text.contains("not found"), "{text}");
}

#[test]
fn signals_flush_finished_records_and_resume_completes() {
    let dir = scratch("signals");
    let mut inputs = Vec::new();
    for i in 0..10 {
        let p = dir.join(format!("v{i}.mp4"));
        std::fs::copy(&videos()[i % 2], &p).unwrap();
        inputs.push(p.to_str().unwrap().to_string());
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let mut a = vec!["-f", "jsonl", "-q", "--batch-size", "1"];
    a.extend(&inputs);
    let mut whole = untimed(parse_jsonl(&run_ok(&mut predict(&a)).stdout));
    for (sig, code) in [("-TERM", 143), ("-INT", 130)] {
        let out = dir.join(format!("out{code}.jsonl"));
        let o = out.to_str().unwrap();
        let mut a = vec![
            "predict",
            "-f",
            "jsonl",
            "-o",
            o,
            "--batch-size",
            "1",
            "--threads",
            "1",
        ];
        a.extend(&inputs);
        let mut child = spawn_until_lines(&a, &out, 2);
        run_ok(Command::new("kill").args([sig, &child.id().to_string()]));
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{sig}");
        let partial = parse_jsonl(&std::fs::read(&out).unwrap());
        assert!(
            !partial.is_empty() && partial.len() < inputs.len(),
            "{} records before {sig}",
            partial.len()
        );
        let mut a = vec![
            "-f",
            "jsonl",
            "-q",
            "-o",
            o,
            "--resume",
            "--batch-size",
            "1",
        ];
        a.extend(&inputs);
        run_ok(&mut predict(&a));
        let mut resumed = untimed(parse_jsonl(&std::fs::read(&out).unwrap()));
        resumed.sort_by(|a, b| path_of(a).cmp(path_of(b)));
        whole.sort_by(|a, b| path_of(a).cmp(path_of(b)));
        assert_eq!(
            resumed, whole,
            "interrupted + resumed differs from one uninterrupted run"
        );
    }
}

#[test]
fn json_output_is_written_whole_or_not_at_all() {
    let dir = scratch("json-atomic");
    let o = dir.join("all.json");
    let v = videos()[0].to_str().unwrap();
    run_ok(&mut predict(&["-f", "json", "-o", o.to_str().unwrap(), v]));
    let recs: Vec<Record> = serde_json::from_str(&std::fs::read_to_string(&o).unwrap()).unwrap();
    assert_eq!(recs.len(), 1);
    // Nothing but the result is left in the directory (the temporary file was renamed).
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("all.json")]);
    // A full disk is an error that says so, not a panic.
    if Path::new("/dev/full").exists() {
        let out = predict(&["-f", "jsonl", v])
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        assert_code(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("No space left on device") && !err.contains("panicked"),
            "{err}"
        );
    }
}
