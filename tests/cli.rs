//! The built binary on generated videos: formats, exit codes, stdin, directories with bad
//! files, resume after a kill, shards, a closed pipe, thread-count independence.

use crate::support::{
    ffmpeg, lavfi_video, parse_jsonl, predict, read_jsonl, run_ok, scratch, vidcls,
};
use std::collections::{BTreeMap, BTreeSet};
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
    let out = predict(&["-f", "jsonl", "-k", "3", "--summary-json"])
        .args(v)
        .ok();
    let recs = out.results();
    assert_eq!(recs.len(), v.len());
    for (r, p) in recs.iter().zip(v) {
        assert_eq!(r.path, p.to_str().unwrap());
        assert_eq!(r.top_k.len(), 3);
        assert!(r.top_k.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(r.top_k.iter().all(|p| (0.0..=1.0).contains(&p.score)));
        assert_eq!((r.clips, r.crops), (1, 1));
        assert!((r.duration - 2.0).abs() < 0.1, "duration {}", r.duration);
        assert_eq!(r.frame_times.len(), 1);
    }
    let s = out.summary();
    assert_eq!(
        (s.inputs, s.classified, s.failed, s.already_done),
        (6, 6, 0, 0)
    );
    assert_eq!((s.records, s.views), (6, 6));
    assert!(s.elapsed_s > 0.0, "{s:?}");
}

#[test]
fn summary_json_is_the_last_stderr_line_even_when_quiet() {
    let v = &videos()[..2];
    let out = predict(&["-q", "--summary-json", "-f", "jsonl", "--clips", "2"])
        .args(v)
        .ok();
    let err = out.stderr();
    assert_eq!(err.lines().count(), 1, "{err}");
    let s = out.summary();
    assert_eq!((s.inputs, s.classified, s.records, s.views), (2, 2, 2, 4));
    // Without the flag, -q prints nothing at all.
    let out = predict(&["-q", "-f", "jsonl"]).args(v).ok();
    assert_eq!(out.stderr(), "");
}

#[test]
fn every_format_parses() {
    let v = &videos()[..2];
    let files = strs(v);
    // JSON: one array of records.
    let mut a = vec!["-f", "json"];
    a.extend(&files);
    let recs: Vec<Record> = serde_json::from_slice(&predict(&a).ok().output.stdout).unwrap();
    assert_eq!(recs.len(), 2);
    // CSV: header + one row per (video, rank).
    let mut a = vec!["-f", "csv", "-k", "4"];
    a.extend(&files);
    let out = predict(&a).ok().output.stdout;
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
    let text = predict(&a).ok().stdout();
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
    let out = predict(&["-f", "jsonl"])
        .args([&dir, &missing])
        .expect_code(1);
    let recs = out.records();
    let names: Vec<String> = recs
        .iter()
        .map(|r| {
            Path::new(r.path())
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
    // The summary for people says the same.
    let stderr = out.stderr();
    assert!(stderr.contains("2 classified, 3 failed"), "{stderr}");
}

#[test]
fn stdin_paths() {
    let v = videos();
    let mut child = predict(&["-", "-f", "jsonl"])
        .command()
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
    let paths: Vec<&str> = recs.iter().map(Record::path).collect();
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
        let out = predict(&args).expect_code(2);
        assert!(out.output.stdout.is_empty(), "{args:?} printed results");
        let err = out.stderr();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // An existing output file is not overwritten without --force.
    let dir = scratch("exists");
    let o = dir.join("out.jsonl");
    std::fs::write(&o, "keep me\n").unwrap();
    let out = predict(&["-o", o.to_str().unwrap(), "-f", "jsonl", v]).expect_code(2);
    assert!(out.stderr().contains("--force"));
    assert_eq!(std::fs::read_to_string(&o).unwrap(), "keep me\n");
    predict(&["-o", o.to_str().unwrap(), "-f", "jsonl", "--force", v]).ok();
    assert_eq!(read_jsonl(&o).len(), 1);
}

#[test]
fn threads_do_not_change_output() {
    let v = strs(videos());
    let run = |threads: &str| {
        let mut a = vec!["-f", "jsonl", "--threads", threads, "--batch-size", "3"];
        a.extend(&v);
        untimed(predict(&a).ok().records())
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
        let recs = predict(&a).ok().records();
        seen.extend(recs.iter().map(|r| r.path().to_string()));
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
    let text = predict(&a).ok().stdout();
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
    predict(&a).ok();
    let recs = read_jsonl(&out);
    let paths: BTreeSet<&str> = recs.iter().map(Record::path).collect();
    assert_eq!(recs.len(), v.len(), "one record per input");
    assert_eq!(paths, v.iter().copied().collect());

    // A real kill in the middle of a run of 12 distinct inputs (each video under two names),
    // then resume: every input ends up in the file exactly once.
    std::fs::remove_file(&out).unwrap();
    let mut many = Vec::new();
    for copy in ["x", "y"] {
        for p in videos() {
            let name = format!("{copy}-{}", p.file_name().unwrap().to_string_lossy());
            std::fs::copy(p, dir.join(&name)).unwrap();
            many.push(dir.join(name).to_str().unwrap().to_string());
        }
    }
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(many.iter().collect::<BTreeSet<_>>().len(), 12);
    let mut child = predict(&[
        "-f",
        "jsonl",
        "-o",
        o,
        "--threads",
        "1",
        "--batch-size",
        "1",
    ])
    .args(&many)
    .spawn_until_lines(&out, 1);
    child.kill().unwrap();
    child.wait().unwrap();
    // Whole lines only: a torn last line is what --resume cuts off.
    let before = std::fs::read_to_string(&out).unwrap().matches('\n').count();
    assert!(
        before >= 1 && before < many.len(),
        "the kill did not land mid-run: {before} of {} records before it",
        many.len()
    );
    let resumed = predict(&["-f", "jsonl", "-o", o, "--resume", "--summary-json"])
        .args(&many)
        .ok()
        .summary();
    assert_eq!(
        (resumed.already_done, resumed.inputs),
        (before, many.len() - before),
        "{resumed:?}"
    );
    let recs = read_jsonl(&out);
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &recs {
        *count.entry(r.path()).or_default() += 1;
    }
    assert_eq!(
        count,
        many.iter().map(|p| (*p, 1)).collect::<BTreeMap<_, _>>(),
        "each input exactly once after kill + resume"
    );
}

#[test]
fn closed_pipe_ends_quietly() {
    let dir = scratch("pipe");
    for i in 0..12 {
        std::fs::copy(&videos()[0], dir.join(format!("v{i:02}.mp4"))).unwrap();
    }
    let mut child = predict(&["-f", "jsonl", "--batch-size", "1"])
        .arg(&dir)
        .command()
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
    let recs = predict(&["-f", "jsonl", "--timeline", "--window", "4"])
        .arg(&long)
        .ok()
        .results();
    let windows: Vec<[f64; 2]> = recs
        .iter()
        .map(|v| v.window.expect("window").into())
        .collect();
    assert_eq!(windows.len(), 3);
    assert_eq!(windows[0], [0.0, 4.0]);
    assert_eq!(windows[1], [4.0, 8.0]);
    assert!((windows[2][1] - 9.0).abs() < 0.05);
    for v in &recs {
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
    let out = vidcls(&["probe"]).arg(v).ok();
    let meta: serde_json::Value = serde_json::from_slice(&out.output.stdout).unwrap();
    assert_eq!(meta["width"], 160);
    assert_eq!(meta["height"], 120);
    assert_eq!(meta["codec"], "h264");
    let out = vidcls(&["probe", "/no/such.mp4"]).expect_code(1);
    assert!(out.stderr().contains("/no/such.mp4"));
}

#[test]
fn version_and_models_commands() {
    let text = vidcls(&["version"]).ok().stdout();
    assert!(text.contains("libtorch    2.13.0"), "{text}");
    // The FFmpeg libraries it reports are the ones linked, and what it says about CUDA is what
    // libtorch says in this process.
    let dotted = |v: u32| format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff);
    let codec = format!("libavcodec {}", dotted(ffmpeg_next::codec::version()));
    assert!(text.contains(&codec), "{codec} not in:\n{text}");
    let cuda = if tch::Cuda::is_available() {
        format!(
            "cuda        available, {} device(s)",
            tch::Cuda::device_count()
        )
    } else {
        "cuda        not available".to_string()
    };
    assert!(
        text.lines().any(|l| l.starts_with(&cuda)),
        "expected a line starting {cuda:?}:\n{text}"
    );
    let out = vidcls(&["models", "--json"]).ok();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.output.stdout).unwrap();
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
    let mut whole = untimed(
        predict(&["-f", "jsonl", "-q", "--batch-size", "1"])
            .args(&inputs)
            .ok()
            .records(),
    );
    for (sig, code) in [("-TERM", 143), ("-INT", 130)] {
        let out = dir.join(format!("out{code}.jsonl"));
        let o = out.to_str().unwrap();
        let mut child = predict(&[
            "-f",
            "jsonl",
            "-o",
            o,
            "--batch-size",
            "1",
            "--threads",
            "1",
        ])
        .args(&inputs)
        .spawn_until_lines(&out, 2);
        run_ok(Command::new("kill").args([sig, &child.id().to_string()]));
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{sig}");
        let partial = read_jsonl(&out);
        assert!(
            !partial.is_empty() && partial.len() < inputs.len(),
            "{} records before {sig}",
            partial.len()
        );
        predict(&[
            "-f",
            "jsonl",
            "-q",
            "-o",
            o,
            "--resume",
            "--batch-size",
            "1",
        ])
        .args(&inputs)
        .ok();
        let mut resumed = untimed(read_jsonl(&out));
        resumed.sort_by(|a, b| a.path().cmp(b.path()));
        whole.sort_by(|a, b| a.path().cmp(b.path()));
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
    predict(&["-f", "json", "-o", o.to_str().unwrap(), v]).ok();
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
        let mut cmd = predict(&["-f", "jsonl", v]);
        cmd.command()
            .stdout(std::fs::File::create("/dev/full").unwrap());
        let err = cmd.expect_code(2).stderr();
        assert!(
            err.contains("No space left on device") && !err.contains("panicked"),
            "{err}"
        );
    }
}
