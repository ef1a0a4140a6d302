//! Bounded memory for every input and every flag: crafted timestamps, extreme aspect ratios and
//! runaway flag values give an error record (or a usage error) in bounded memory, and the rest
//! of the batch goes on. Peak memory is measured with `/usr/bin/time -f %M` (Debian's `time`).

use crate::support::{expect_err, ffmpeg, lavfi_video, predict, scratch, vidcls, vidcls_via, Run};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vidcls::report::{Record, Stage};

/// Peak memory any of these runs may take with the built-in model.
const RSS_BOUND_KB: u64 = 1_200_000;

/// A good 2-s clip for the batches.
fn base() -> PathBuf {
    lavfi_video(
        "memory",
        "base.mp4",
        "testsrc=size=96x64:rate=10",
        "2",
        "libx264",
    )
}

/// Ten 64x64 frames whose last one is stamped at `last` seconds (a crafted duration).
fn stamped(dir: &Path, name: &str, last: &str) -> PathBuf {
    let out = dir.join(name);
    let setpts = format!("setpts='if(eq(N,9),{last}/TB,PTS)'");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=64x64:r=10",
        "-frames:v",
        "10",
        "-vf",
        &setpts,
        out.to_str().unwrap(),
    ]);
    out
}

/// A second of H.264 at `size` (as WxH).
fn sized(dir: &Path, name: &str, size: &str) -> PathBuf {
    let out = dir.join(name);
    let src = format!("testsrc=s={size}:r=10");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src,
        "-t",
        "1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        out.to_str().unwrap(),
    ]);
    out
}

/// `vidcls ARGS` under `/usr/bin/time -f %M`: the run and its peak memory in KB.
fn measured(args: &[&std::ffi::OsStr]) -> (Run, u64) {
    assert!(
        Path::new("/usr/bin/time").exists(),
        "/usr/bin/time missing: install Debian's `time` (scripts/setup.sh does)"
    );
    let run = vidcls_via(&["/usr/bin/time", "-f", "%M"], args).run();
    let err = run.stderr();
    let kb = err
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak memory at the end of stderr:\n{err}"));
    (run, kb)
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(Into::into).collect()
}

fn refs(v: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    v.iter().map(|s| s.as_os_str()).collect()
}

/// The records of a batch `good, bad, good`: two predictions around `bad`'s error record.
fn around_error<'a>(recs: &'a [Record], bad: &Path) -> &'a vidcls::report::FileError {
    let paths: Vec<&str> = recs.iter().map(Record::path).collect();
    assert_eq!(paths.first(), paths.last());
    let e = recs
        .iter()
        .find(|r| Path::new(r.path()) == bad)
        .map(expect_err)
        .unwrap_or_else(|| panic!("no record for {}: {paths:?}", bad.display()));
    assert!(
        matches!(recs.first(), Some(Record::Ok(_))) && matches!(recs.last(), Some(Record::Ok(_))),
        "{recs:?}"
    );
    e
}

#[test]
fn a_crafted_duration_gets_its_error_record_and_the_batch_goes_on() {
    let dir = scratch("memory-crafted-duration");
    let long = stamped(&dir, "long.mkv", "1e9");
    let base = base();
    let mut args = os(&[
        "predict",
        "-f",
        "jsonl",
        "-k",
        "1",
        "--timeline",
        "--window",
        "4",
    ]);
    args.extend([base.clone().into(), long.clone().into(), base.into()]);
    let (run, kb) = measured(&refs(&args));
    run.assert_code(1);
    let recs = run.records();
    assert_eq!(recs.len(), 3, "{}", run.stderr());
    let e = around_error(&recs, &long);
    assert_eq!(e.stage, Stage::Decode, "{e:?}");
    assert!(
        e.error.contains("250000001 windows") && e.error.contains("--max-windows"),
        "{e:?}"
    );
    assert!(run.stderr().contains("long.mkv"), "{}", run.stderr());
    assert!(kb < RSS_BOUND_KB, "peak {kb} KB");
    // The cap is the flag's: 3 windows of a 10-s file pass at 3, fail at 2.
    let ten = stamped(&dir, "ten.mkv", "10");
    for (max, code) in [("3", 0), ("2", 1)] {
        predict(&[
            "-f",
            "jsonl",
            "--timeline",
            "--window",
            "4",
            "--max-windows",
            max,
        ])
        .arg(&ten)
        .expect_code(code);
    }
}

#[test]
fn embed_and_annotate_refuse_the_crafted_duration_too() {
    let dir = scratch("memory-crafted-embed");
    let long = stamped(&dir, "long.mkv", "1e9");
    let base = base();
    let out = dir.join("features");
    let run = vidcls(&["embed", "-q", "--window", "4", "-o"])
        .arg(&out)
        .args([&base, &long, &base])
        .expect_code(1);
    let index = std::fs::read_to_string(out.join("index.jsonl")).unwrap();
    assert_eq!(index.lines().count(), 3, "{index}");
    assert!(
        index.lines().nth(1).unwrap().contains("--max-windows"),
        "{index}"
    );
    let t0 = Instant::now();
    let run2 = vidcls(&["annotate", "-q", "--window", "4", "-o"])
        .arg(dir.join("out.mp4"))
        .arg(&long)
        .expect_code(1);
    assert!(run2.stderr().contains("--max-windows"), "{}", run2.stderr());
    assert!(t0.elapsed() < Duration::from_secs(60));
    drop(run);
}

#[test]
fn a_long_timeline_is_streamed_through_the_model() {
    // 2001 windows of one 64x64 frame each: before views were streamed, about 0.8 MB of views
    // a window waited for the model (2.2 GB peak; about 0.8 GB since, on a loaded machine).
    let dir = scratch("memory-long-timeline");
    let long = stamped(&dir, "long2000.mkv", "2000");
    let mut args = os(&[
        "predict",
        "-q",
        "-f",
        "jsonl",
        "-k",
        "1",
        "-b",
        "16",
        "--threads",
        "1",
        "--timeline",
        "--window",
        "1",
    ]);
    args.push(long.into());
    let (run, kb) = measured(&refs(&args));
    run.assert_code(0);
    assert_eq!(run.records().len(), 2001);
    assert!(kb < RSS_BOUND_KB, "peak {kb} KB");
}

#[test]
fn extreme_aspect_ratios_are_refused_in_bounded_memory() {
    let dir = scratch("memory-aspect");
    let wide = sized(&dir, "wide.mp4", "8000x2");
    let tall = sized(&dir, "tall.mp4", "2x8000");
    let base = base();
    for bad in [wide, tall] {
        let mut args = os(&["predict", "-f", "jsonl", "-k", "1"]);
        args.extend([base.clone().into(), bad.clone().into(), base.clone().into()]);
        let (run, kb) = measured(&refs(&args));
        run.assert_code(1);
        let recs = run.records();
        let e = around_error(&recs, &bad);
        assert_eq!(e.stage, Stage::Preprocess, "{e:?}");
        assert!(e.error.contains("aspect ratio (4000:1)"), "{e:?}");
        assert!(kb < RSS_BOUND_KB, "{}: peak {kb} KB", bad.display());
    }
}

#[test]
fn clips_at_their_cap_stay_in_bounded_memory() {
    let cap = vidcls::config::limits::CLIPS.to_string();
    let mut args = os(&[
        "predict", "-f", "jsonl", "-k", "1", "-b", "16", "--clips", &cap,
    ]);
    args.push(base().into());
    let (run, kb) = measured(&refs(&args));
    run.assert_code(0);
    assert_eq!(
        run.results()[0].clips,
        vidcls::config::limits::CLIPS as usize
    );
    assert!(kb < RSS_BOUND_KB, "peak {kb} KB");
}

#[test]
fn runaway_flags_are_usage_errors_naming_the_flag() {
    let dir = scratch("memory-flags");
    let v = base();
    let v = v.to_str().unwrap();
    let out = dir.join("o");
    let out = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["predict", "--timeline", "--hop", "0.000000001", v],
            "--hop",
        ),
        (vec!["predict", "--clips", "100000000", v], "--clips"),
        (vec!["predict", "--frames", "100000", v], "--frames"),
        (vec!["predict", "--stride", "100000", v], "--stride"),
        (vec!["predict", "--fps", "1e9", v], "--fps"),
        (vec!["predict", "-k", "60000", v], "--top-k"),
        (vec!["predict", "-b", "100000", v], "--batch-size"),
        (vec!["predict", "-j", "100000", v], "--threads"),
        (
            vec!["predict", "--max-pixels", "99999999999", v],
            "--max-pixels",
        ),
        (
            vec!["predict", "--timeline", "--max-windows", "99999999", v],
            "--max-windows",
        ),
        (vec!["predict", "--timeout", "1e300", v], "--timeout"),
        (
            vec!["embed", "-o", out, "--window", "1", "--hop", "0.0001", v],
            "--hop",
        ),
        (
            vec!["embed", "-o", out, "--clips", "100000000", v],
            "--clips",
        ),
        (vec!["annotate", "-o", out, "--hop", "0.0001", v], "--hop"),
        (vec!["watch", "--window", "1e6", v], "--window"),
        (vec!["watch", "--hop", "0.0001", v], "--hop"),
        (
            vec!["train", v, "-o", out, "--epochs", "999999999"],
            "--epochs",
        ),
        (
            vec!["train", v, "-o", out, "--cache-mb", "99999999999"],
            "--cache-mb",
        ),
    ];
    for (args, flag) in cases {
        let t0 = Instant::now();
        let run = vidcls(&args).expect_code(2);
        let err = run.stderr();
        let line = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        assert!(
            line.contains(flag)
                && (line.contains("at most")
                    || line.contains("..=")
                    || line.contains(" to ")
                    || line.contains("or more")),
            "{args:?}: {err}"
        );
        assert!(t0.elapsed() < Duration::from_secs(30), "{args:?} ran");
    }
}

#[test]
fn watch_skips_a_timestamp_gap_instead_of_walking_it() {
    let dir = scratch("memory-watch-gap");
    let long = stamped(&dir, "long.mkv", "1e9");
    let t0 = Instant::now();
    let run = vidcls(&["watch", "-f", "jsonl", "--no-reconnect"])
        .arg(&long)
        .ok();
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t0.elapsed()
    );
    let lines = run.stdout().lines().count();
    assert!(
        (1..=3).contains(&lines),
        "{lines} windows:\n{}",
        run.stdout()
    );
}

/// `watch` holds a source to the same pixel limit as predict: a stream above `--max-pixels` is
/// refused with an error record naming the flag, and one within it is watched.
#[test]
fn watch_refuses_frames_above_the_pixel_limit() {
    let dir = scratch("memory-watch-pixels");
    let video = sized(&dir, "big.mp4", "320x240");
    for source in [video.to_str().unwrap(), "pipe:"] {
        let mut cmd = vidcls(&["watch", "-f", "jsonl", "--max-pixels", "50000", source]);
        if source == "pipe:" {
            let bytes = std::fs::File::open(&video).unwrap();
            cmd.command().stdin(bytes);
        }
        let run = cmd.expect_code(1);
        let out = run.stdout();
        let record: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        let error = record["error"].as_str().unwrap_or_default();
        assert!(error.contains("--max-pixels"), "{source}: {out}");
        assert!(
            !out.contains("top_k"),
            "{source}: a window was labelled: {out}"
        );
    }
    let run = vidcls(&["watch", "-f", "jsonl", "--max-pixels", "76800"])
        .arg(&video)
        .ok();
    assert!(run.stdout().contains("top_k"));
}
