//! Long videos and downstream use: `vidcls embed` (features equal PyTorch's, index order, error
//! records, collision-free names, shards, resume after a kill), `predict --segments` on a video
//! of three concatenated actions (and its subtitles), and where windows are placed.

use crate::support::{
    assert_code, bin, ffmpeg, fixture, python, root, run_ok, scratch, spawn_until_lines, Key,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use vidcls::report::{Features, Record, Segment, Window};

fn vidcls(sub: &str, args: &[&str]) -> Command {
    let mut c = bin();
    c.arg(sub).args(args).stdin(Stdio::null());
    c
}

fn records(text: &str) -> Vec<Record> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l:?}: {e}")))
        .collect()
}

fn index(dir: &Path, name: &str) -> Vec<Record> {
    records(&std::fs::read_to_string(dir.join(name)).unwrap())
}

fn features(r: &Record) -> &Features {
    match r {
        Record::Features(f) => f,
        other => panic!("expected features, got {other:?}"),
    }
}

fn spans(ws: &[Window]) -> Vec<[f64; 2]> {
    ws.iter().map(|&w| w.into()).collect()
}

/// The shape and float32 data of a `.npy` file vidcls wrote (format 1.0, as numpy reads it).
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00", "{}", path.display());
    crate::support::read_npy(path)
}

/// A `testsrc` video (25 fps) of `seconds`, made once per checkout.
fn testsrc(name: &str, seconds: &str) -> PathBuf {
    crate::support::lavfi_video(
        "embed",
        name,
        "testsrc=size=128x96:rate=25",
        seconds,
        "libx264",
    )
}

const ACTIONS: [&str; 3] = ["move_left", "rotate_cw", "zoom_in"];

/// Two clips of each of three actions from the motion generator (training style, a seed the
/// model never saw, 10 fps, 128x128, H.264), concatenated action after action into one video;
/// returns it with the true boundaries (s) between the actions. Cached by the shared fixture
/// cache under a key of the generator's arguments and script, and the concat command.
fn three_actions() -> &'static (PathBuf, [f64; 2]) {
    static V: OnceLock<(PathBuf, [f64; 2])> = OnceLock::new();
    V.get_or_init(|| {
        let gen = [
            "--n-per-class",
            "2",
            "--seed",
            "4242",
            "--labels",
            "move_left",
            "rotate_cw",
            "zoom_in",
            "--codec",
            "h264",
            "--size",
            "128x128",
            "--fps",
            "10",
        ];
        let concat = ["-c:v", "libx264", "-pix_fmt", "yuv420p"];
        let key = Key::new()
            .args(&gen)
            .script("scripts/motion_dataset.py")
            .python()
            .args(&concat)
            .ffmpeg();
        let dir = fixture("three-actions", &key, |tmp| {
            run_ok(
                python()
                    .arg(root().join("scripts/motion_dataset.py"))
                    .arg("--out")
                    .arg(tmp)
                    .args(gen),
            );
            let mut list = String::new();
            for a in ACTIONS {
                let mut clips: Vec<PathBuf> = std::fs::read_dir(tmp.join(a))
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect();
                clips.sort();
                assert_eq!(clips.len(), 2, "{a}");
                for c in clips {
                    // Relative to list.txt: the directory is renamed once made.
                    let rel = c.strip_prefix(tmp).unwrap();
                    list.push_str(&format!("file '{}'\n", rel.display()));
                }
            }
            std::fs::write(tmp.join("list.txt"), list).unwrap();
            let mut args = vec![
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                tmp.join("list.txt").to_str().unwrap(),
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
            args.extend(concat.iter().map(|a| a.to_string()));
            args.push(tmp.join("three.mp4").to_str().unwrap().to_string());
            ffmpeg(&args);
        });
        let video = dir.join("three.mp4");
        // The boundaries: the summed durations of each action's clips (as ffprobe reads them).
        let mut t = 0.0;
        let mut bounds = Vec::new();
        for a in ACTIONS {
            for e in std::fs::read_dir(dir.join(a)).unwrap() {
                let p = e.unwrap().path();
                let out = run_ok(Command::new("ffprobe").args([
                    "-v",
                    "error",
                    "-show_entries",
                    "format=duration",
                    "-of",
                    "csv=p=0",
                    p.to_str().unwrap(),
                ]));
                t += String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse::<f64>()
                    .unwrap();
            }
            bounds.push(t);
        }
        (video, [bounds[0], bounds[1]])
    })
}

fn segments_of(out: &[u8]) -> Vec<Segment> {
    records(&String::from_utf8_lossy(out))
        .into_iter()
        .map(|r| match r {
            Record::Segment(s) => s,
            other => panic!("expected a segment, got {other:?}"),
        })
        .collect()
}

#[test]
fn three_concatenated_actions_give_three_segments() {
    let (video, [b1, b2]) = three_actions();
    let v = video.to_str().unwrap();
    let window = 1.0;
    let out = run_ok(&mut vidcls(
        "predict",
        &[
            "--segments",
            "--window",
            "1",
            "--hop",
            "0.5",
            "-f",
            "jsonl",
            "-q",
            v,
        ],
    ));
    let segs = segments_of(&out.stdout);
    let labels: Vec<&str> = segs.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ACTIONS, "{segs:?}");
    let near = |got: f64, truth: f64| (got - truth).abs() <= window;
    assert_eq!(segs[0].start, 0.0);
    assert!(
        near(segs[0].end, *b1) && near(segs[1].start, *b1),
        "{segs:?} vs {b1}"
    );
    assert!(
        near(segs[1].end, *b2) && near(segs[2].start, *b2),
        "{segs:?} vs {b2}"
    );
    assert!(near(segs[2].end, 15.2), "{segs:?}");
    assert!(
        segs.iter().all(|s| s.score > 0.5 && s.path == v),
        "{segs:?}"
    );

    // The same segments as subtitles, one cue each, in time order.
    let srt = run_ok(&mut vidcls(
        "predict",
        &[
            "--window",
            "1",
            "--hop",
            "0.5",
            "--segments",
            "-f",
            "srt",
            "-q",
            v,
        ],
    ));
    let srt = String::from_utf8(srt.stdout).unwrap();
    let cues: Vec<&str> = srt.split("\n\n").filter(|c| !c.trim().is_empty()).collect();
    assert_eq!(cues.len(), 3, "{srt}");
    for (i, (cue, seg)) in cues.iter().zip(&segs).enumerate() {
        let lines: Vec<&str> = cue.lines().collect();
        assert_eq!(lines[0], (i + 1).to_string());
        assert!(lines[1].contains(" --> "), "{cue}");
        assert_eq!(lines[2], format!("{} {:.2}", seg.label, seg.score));
    }
    // WebVTT by default settings (4-second windows) is still a valid file with cues.
    let vtt = run_ok(&mut vidcls("predict", &["-f", "vtt", "-q", v]));
    assert!(String::from_utf8_lossy(&vtt.stdout).starts_with("WEBVTT\n\n00:00:00.000 --> "));
    // Subtitles hold one video.
    let two = vidcls("predict", &["-f", "srt", "-q", v, v])
        .output()
        .unwrap();
    assert_code(&two, 2);
    assert!(String::from_utf8_lossy(&two.stderr).contains("one video"));
}

#[test]
fn segments_in_every_format_and_resume() {
    let (video, _) = three_actions();
    let v = video.to_str().unwrap();
    let dir = scratch("segments-formats");
    let base = ["--segments", "--window", "1", "--hop", "0.5", "-q"];
    let jsonl = segments_of(&run_ok(vidcls("predict", &base).args(["-f", "jsonl", v])).stdout);
    assert_eq!(jsonl.len(), 3);
    let json: Vec<Record> =
        serde_json::from_slice(&run_ok(vidcls("predict", &base).args(["-f", "json", v])).stdout)
            .unwrap();
    assert_eq!(
        json,
        jsonl
            .iter()
            .cloned()
            .map(Record::Segment)
            .collect::<Vec<_>>()
    );
    let csv = run_ok(vidcls("predict", &base).args(["-f", "csv", v])).stdout;
    let mut r = csv::Reader::from_reader(csv.as_slice());
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    for (row, s) in rows.iter().zip(&jsonl) {
        assert_eq!(row[0], *v);
        // (serde_json's float parsing may be one ulp off the CSV's)
        assert!((row[1].parse::<f64>().unwrap() - s.start).abs() < 1e-9);
        assert!((row[2].parse::<f64>().unwrap() - s.end).abs() < 1e-9);
        assert_eq!((&row[3], &row[4]), ("", s.label.as_str()));
    }
    let text = run_ok(vidcls("predict", &base).args(["-f", "text", v])).stdout;
    assert_eq!(String::from_utf8_lossy(&text).lines().count(), 3);

    // --resume reads the segment records it wrote: a finished video is not run again, and a
    // missing one is added (with its error record).
    for fmt in ["jsonl", "csv"] {
        let out = dir.join(format!("segs.{fmt}"));
        let o = out.to_str().unwrap();
        run_ok(vidcls("predict", &base).args(["-f", fmt, "-o", o, v]));
        let before = std::fs::read_to_string(&out).unwrap();
        let again = vidcls("predict", &base)
            .args([
                "-f",
                fmt,
                "-o",
                o,
                "--resume",
                "--summary-json",
                v,
                "/no/such.mp4",
            ])
            .output()
            .unwrap();
        assert_code(&again, 1);
        let after = std::fs::read_to_string(&out).unwrap();
        assert!(after.starts_with(&before), "{fmt}: earlier records changed");
        assert!(
            after[before.len()..].contains("/no/such.mp4"),
            "{fmt}: {after}"
        );
        let summary = String::from_utf8_lossy(&again.stderr);
        assert!(summary.contains(r#""already_done":1"#), "{fmt}: {summary}");
    }
    // Rules are checked and named.
    let bad = vidcls(
        "predict",
        &["--segments", "--seg-on", "0.3", "--seg-off", "0.5", v],
    )
    .output()
    .unwrap();
    assert_code(&bad, 2);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--seg-off 0.5"));
}

/// Runs embed into `dir` with `args` and returns its index records.
fn embed(dir: &Path, args: &[&str]) -> Vec<Record> {
    run_ok(vidcls("embed", &["-q", "-o", dir.to_str().unwrap()]).args(args));
    index(dir, "index.jsonl")
}

#[test]
fn embed_features_equal_pytorch() {
    let (video, _) = three_actions();
    let v = video.to_str().unwrap();
    let model = root().join("models/motion.pt");
    let dir = scratch("embed-parity");
    let helper = root().join("tests/python/embed_parity.py");
    // Windows (4 x D, one view per row) and the whole video with 2 clips x 3 crops (1 x D,
    // the mean of 6 views).
    for (name, embed_args, predict_args, per_row, rows) in [
        (
            "windows",
            vec!["--window", "4"],
            vec!["--timeline", "--window", "4"],
            1,
            4,
        ),
        (
            "views",
            vec!["--clips", "2", "--crops", "3"],
            vec!["--clips", "2", "--crops", "3"],
            6,
            1,
        ),
    ] {
        let out = dir.join(name);
        let dump = dir.join(format!("{name}-input"));
        let mut args = embed_args.clone();
        // fp32 parity: the default would run bf16 on a CPU with native bf16.
        args.extend(["--device", "cpu", "--precision", "fp32", v]);
        let recs = embed(&out, &args);
        let f = features(&recs[0]);
        assert_eq!(f.shape, [rows, 128], "{name}");
        assert_eq!(f.model, "motion");
        let (shape, _) = read_npy(&out.join(&f.npy));
        assert_eq!(shape, vec![rows, 128]);
        run_ok(
            vidcls(
                "predict",
                &[
                    "-q",
                    "-f",
                    "jsonl",
                    "--device",
                    "cpu",
                    "--precision",
                    "fp32",
                    "--dump-inputs",
                ],
            )
            .arg(&dump)
            .args(&predict_args)
            .arg(v),
        );
        let got = run_ok(
            python()
                .arg(&helper)
                .arg(&model)
                .arg(dump.join("0.npy"))
                .arg(out.join(&f.npy))
                .arg(per_row.to_string()),
        );
        let r: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
        assert_eq!(
            r["embed_shape"],
            serde_json::json!([rows, 128]),
            "{name}: {r}"
        );
        assert_eq!(r["embed_dtype"], "float32");
        let diff = r["max_abs_diff"].as_f64().unwrap_or(f64::INFINITY);
        assert!(diff <= 1e-4, "{name}: vidcls embed vs PyTorch: {r}");
        assert!(r["features_vs_layers"].as_f64().unwrap() <= 1e-5, "{r}");
        assert!(r["head_vs_forward"].as_f64().unwrap() <= 1e-4, "{r}");
    }
}

#[test]
fn embed_index_order_errors_and_names() {
    let dir = scratch("embed-index");
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let src = testsrc("5s.mp4", "5");
    std::fs::copy(&src, a.join("clip.mp4")).unwrap();
    std::fs::copy(&src, b.join("clip.mp4")).unwrap();
    std::fs::write(dir.join("notavideo.mp4"), b"hello").unwrap();
    let out = dir.join("out");
    let inputs = [
        b.join("clip.mp4"),
        dir.join("notavideo.mp4"),
        a.join("clip.mp4"),
        dir.join("missing.mp4"),
    ];
    let inputs: Vec<&str> = inputs.iter().map(|p| p.to_str().unwrap()).collect();
    let run = vidcls("embed", &["-q", "-o", out.to_str().unwrap()])
        .args(&inputs)
        .output()
        .unwrap();
    assert_code(&run, 1);
    let recs = index(&out, "index.jsonl");
    let paths: Vec<&str> = recs.iter().map(Record::path).collect();
    assert_eq!(paths, inputs, "input order");
    assert!(
        matches!(&recs[1], Record::Err(e) if e.stage.to_string() == "open"),
        "{:?}",
        recs[1]
    );
    assert!(
        matches!(&recs[3], Record::Err(e) if e.stage.to_string() == "input"),
        "{:?}",
        recs[3]
    );
    let (fb, fa) = (features(&recs[0]), features(&recs[2]));
    assert_ne!(fa.npy, fb.npy, "equal basenames share a file name");
    let (sa, da) = read_npy(&out.join(&fa.npy));
    let (sb, db) = read_npy(&out.join(&fb.npy));
    assert_eq!((sa, sb), (vec![1, 128], vec![1, 128]));
    assert_eq!(da, db, "the same video gives the same features");
    assert_eq!(spans(&fa.windows), vec![[0.0, 5.0]]);
    let npys = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(npys, 3, "two .npy files and the index, nothing else");
    // An existing index is not overwritten without --force.
    let again = vidcls("embed", &["-q", "-o", out.to_str().unwrap(), inputs[0]])
        .output()
        .unwrap();
    assert_code(&again, 2);
    assert!(String::from_utf8_lossy(&again.stderr).contains("index.jsonl exists"));
}

#[test]
fn embed_shards_and_resume_after_a_kill() {
    let dir = scratch("embed-resume");
    let src = testsrc("5s.mp4", "5");
    let mut inputs = Vec::new();
    for i in 0..8 {
        let p = dir.join(format!("v{i}")).join("clip.mp4");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(&src, &p).unwrap();
        inputs.push(p.to_str().unwrap().to_string());
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let all: BTreeSet<&str> = inputs.iter().copied().collect();

    // Two shards into one folder: one index each, disjoint, together every input.
    let shards = dir.join("shards");
    let s = shards.to_str().unwrap();
    for k in ["1/2", "2/2"] {
        run_ok(vidcls("embed", &["-q", "-o", s, "--shard", k, "--window", "2"]).args(&inputs));
    }
    let (one, two) = (
        index(&shards, "index-1-of-2.jsonl"),
        index(&shards, "index-2-of-2.jsonl"),
    );
    let p1: BTreeSet<&str> = one.iter().map(Record::path).collect();
    let p2: BTreeSet<&str> = two.iter().map(Record::path).collect();
    assert!(p1.is_disjoint(&p2) && !p1.is_empty() && !p2.is_empty());
    assert_eq!(p1.union(&p2).copied().collect::<BTreeSet<_>>(), all);
    for r in one.iter().chain(&two) {
        assert_eq!(features(r).shape, [3, 128], "5 s in 2-s windows: 3 rows");
    }

    // A run killed after two index lines, a torn line appended, then --resume: every input
    // once, no half file, no stray temporary file.
    let out = dir.join("killed");
    let o = out.to_str().unwrap();
    let idx = out.join("index.jsonl");
    let mut args = vec![
        "embed", "-q", "-j", "1", "-b", "1", "-o", o, "--window", "1",
    ];
    args.extend(&inputs);
    let mut child = spawn_until_lines(&args, &idx, 2);
    child.kill().unwrap();
    child.wait().unwrap();
    let first = std::fs::read_to_string(&idx).unwrap();
    assert!(
        first.lines().count() < inputs.len(),
        "the run ended before the kill"
    );
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "npy") {
            read_npy(&p);
        }
    }
    let mut torn = std::fs::OpenOptions::new().append(true).open(&idx).unwrap();
    std::io::Write::write_all(&mut torn, br#"{"path":"half"#).unwrap();
    drop(torn);
    run_ok(vidcls("embed", &["-q", "-o", o, "--window", "1", "--resume"]).args(&inputs));
    let recs = index(&out, "index.jsonl");
    let paths: Vec<&str> = recs.iter().map(Record::path).collect();
    assert_eq!(paths.len(), inputs.len(), "{paths:?}");
    assert_eq!(paths.iter().copied().collect::<BTreeSet<_>>(), all);
    // A kill in the middle of a write can leave that write's hidden temporary file; nothing
    // else may be there.
    let (hidden, names): (BTreeSet<String>, BTreeSet<String>) = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .partition(|n| n.starts_with('.'));
    assert!(
        hidden.iter().all(|n| n.contains(".npy.tmp-")) && hidden.len() <= 1,
        "{hidden:?}"
    );
    let listed: BTreeSet<String> = recs
        .iter()
        .map(|r| features(r).npy.clone())
        .chain(["index.jsonl".to_string()])
        .collect();
    assert_eq!(names, listed, "files in the folder = the index's files");
    for r in &recs {
        let f = features(r);
        assert_eq!(read_npy(&out.join(&f.npy)).0, vec![5, 128]);
    }
}

/// Window bounds equal up to the container's duration rounding (the last window ends at the
/// video's duration as its metadata gives it).
fn assert_close(got: &[[f64; 2]], want: &[[f64; 2]], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g[0] - w[0]).abs() < 0.05 && (g[1] - w[1]).abs() < 0.05,
            "{what}: {got:?} != {want:?}"
        );
    }
}

/// A video, flags, and the windows they must give.
type Case<'a> = (&'a Path, &'a [&'a str], Vec<[f64; 2]>);

/// Window placement, as `embed` reports it (the same windows `--timeline` and `--segments`
/// use): first window at 0, each next one a hop later, the last one ending at the video's end,
/// a video shorter than one window in one window, and every frame inside its window.
#[test]
fn windows_are_placed_as_documented() {
    let dir = scratch("windows");
    let nine = testsrc("9s.mp4", "9");
    let two = testsrc("2s.mp4", "2");
    let short_tail = testsrc("8.5s.mp4", "8.5");
    let cases: [Case; 6] = [
        // Tiling, last window partial.
        (
            &nine,
            &["--window", "4"],
            vec![[0.0, 4.0], [4.0, 8.0], [8.0, 9.0]],
        ),
        // Overlapping: the last one starts where it reaches the end.
        (
            &nine,
            &["--window", "4", "--hop", "3"],
            vec![[0.0, 4.0], [3.0, 7.0], [6.0, 9.0]],
        ),
        // Gaps between windows.
        (
            &nine,
            &["--window", "2", "--hop", "4"],
            vec![[0.0, 2.0], [4.0, 6.0], [8.0, 9.0]],
        ),
        // Ends exactly at the video's end: no empty window after it.
        (
            &nine,
            &["--window", "3"],
            vec![[0.0, 3.0], [3.0, 6.0], [6.0, 9.0]],
        ),
        // Shorter than one window: one window, the whole video.
        (&two, &["--window", "4"], vec![[0.0, 2.0]]),
        // A last window (0.5 s) shorter than one clip (8 frames at 10 fps: 0.8 s).
        (
            &short_tail,
            &["--window", "4"],
            vec![[0.0, 4.0], [4.0, 8.0], [8.0, 8.5]],
        ),
    ];
    for (i, (video, args, want)) in cases.iter().enumerate() {
        let out = dir.join(i.to_string());
        let mut a = args.to_vec();
        a.push(video.to_str().unwrap());
        let recs = embed(&out, &a);
        let f = features(&recs[0]);
        assert_close(&spans(&f.windows), want, &format!("embed {args:?}"));
        assert_eq!(f.shape[0], want.len());
        // Frame times are presentation times: the frame shown at each sampled moment, so at
        // most one frame (0.04 s at 25 fps) before it.
        for (w, clips) in f.windows.iter().zip(&f.frame_times) {
            for t in clips.iter().flatten() {
                assert!(
                    *t >= w.start - 0.04 - 1e-9 && *t < w.end,
                    "{args:?}: frame at {t} outside window {w:?}"
                );
            }
        }
        // predict --timeline reports the same windows.
        let mut p = vec!["-q", "-f", "jsonl", "--timeline"];
        p.extend(a.iter().copied());
        let out = run_ok(&mut vidcls("predict", &p));
        let got: Vec<[f64; 2]> = records(&String::from_utf8_lossy(&out.stdout))
            .iter()
            .map(|r| match r {
                Record::Ok(v) => v.window.unwrap().into(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_close(&got, want, &format!("predict --timeline {args:?}"));
        // Only a window shorter than a clip at the video's end repeats frames.
        let padded: Vec<usize> = records(&String::from_utf8_lossy(&out.stdout))
            .iter()
            .map(|r| match r {
                Record::Ok(v) => v.padded_frames,
                other => panic!("{other:?}"),
            })
            .collect();
        let short_last = i == 5;
        assert_eq!(
            padded.iter().rposition(|&p| p > 0),
            short_last.then_some(want.len() - 1),
            "{args:?}: padded frames {padded:?}"
        );
    }
}
