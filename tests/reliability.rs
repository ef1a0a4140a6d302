//! Hostile inputs, time limits and mutated containers: every input gets a prediction or a clear
//! error record, nothing panics or hangs, and no other input's result is lost.

use crate::support::{
    expect_err, ffmpeg, fixture, predict, python, root, run_ok, scratch, vidcls_via, Key,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use vidcls::report::{Record, Stage};

/// tests/make_hostile_corpus.py's output, cached by the script's hash, FFmpeg and Python.
fn corpus() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let key = Key::new()
            .script("tests/make_hostile_corpus.py")
            .python()
            .ffmpeg();
        fixture("hostile", &key, |dir| {
            run_ok(
                python()
                    .arg(root().join("tests/make_hostile_corpus.py"))
                    .arg(dir),
            );
        })
    })
}

/// Whether this process can read a file that has no read permission (root can).
fn can_read(path: &Path) -> bool {
    std::fs::File::open(path).is_ok()
}

#[test]
fn hostile_corpus_gives_a_record_per_input_and_exit_one() {
    let d = corpus();
    let extra = ["fifo.mp4", "image.png", "image.jpg"].map(|n| d.join(n));
    let t0 = Instant::now();
    let out = predict(&[
        "-f",
        "jsonl",
        "-k",
        "1",
        "--timeout",
        "120",
        "--summary-json",
    ])
    .arg(d)
    .args(&extra)
    .expect_code(1);
    let stderr = out.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        t0.elapsed() < Duration::from_secs(240),
        "took {:?}",
        t0.elapsed()
    );
    let recs = out.records();
    let by_name: BTreeMap<String, &Record> = recs
        .iter()
        .map(|r| {
            (
                Path::new(r.path())
                    .strip_prefix(d)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                r,
            )
        })
        .collect();
    assert_eq!(by_name.len(), recs.len(), "an input got two records");
    let summary = out.summary();
    assert_eq!(summary.records, recs.len());
    assert_eq!(summary.inputs, recs.len());
    assert_eq!(
        summary.classified,
        recs.iter().filter(|r| matches!(r, Record::Ok(_))).count()
    );
    assert_eq!(summary.failed, recs.len() - summary.classified);
    // Each failure: the stage it failed in and what the error says.
    let invalid = "Invalid data found when processing input";
    let mut expect_err = vec![
        ("zero.mp4", Stage::Open, invalid),
        ("random.mp4", Stage::Open, invalid),
        ("cut50.mp4", Stage::Open, invalid),
        // The index box under an unknown type: nothing to open the file with.
        ("no_moov.mp4", Stage::Open, invalid),
        ("audio_only.mp4", Stage::Open, "no video stream"),
        ("fifo.mp4", Stage::Open, "not a regular file"),
    ];
    let mut expect_ok = vec![
        "good.mp4",
        // The index box renamed to "free": FFmpeg finds the index inside it.
        "moov_in_free.mp4",
        "one_frame.mp4",
        "two_frames.mp4",
        "8k.mp4",
        "tiny_2x2.mkv",
        "odd_97x55.mkv",
        "ten_bit.mp4",
        "rotated.mov",
        "vfr.mkv",
        "flipped_bytes.mp4",
        "with space.mp4",
        "ünïcødé-映像.mp4",
        "new\nline.mp4",
        "loopdir/inner.mp4",
        "image.png",
        "image.jpg",
    ];
    // Mode 0: an error for most users, a prediction where permissions don't apply (root);
    // `unreadable_file_is_an_open_error` covers the first case when running as root.
    if can_read(&d.join("unreadable.mp4")) {
        expect_ok.push("unreadable.mp4");
    } else {
        expect_err.push(("unreadable.mp4", Stage::Open, "Permission denied"));
    }
    for (name, stage, what) in &expect_err {
        match by_name.get(*name) {
            Some(Record::Err(e)) => {
                assert_eq!(e.stage, *stage, "{name}: {e:?}");
                assert!(e.error.contains(what), "{name}: {e:?}");
                assert!(stderr.contains(name), "{name} not named on stderr");
            }
            other => panic!("{name}: expected an error record, got {other:?}"),
        }
    }
    for name in &expect_ok {
        match by_name.get(*name) {
            Some(Record::Ok(v)) => assert_eq!(v.top_k.len(), 1, "{name}"),
            other => panic!("{name}: expected a prediction, got {other:?}"),
        }
    }
    // Every record is accounted for above, or below: nothing unexpected came out.
    let cut = "cut50_faststart.mp4";
    let expected: Vec<&str> = expect_err
        .iter()
        .map(|e| e.0)
        .chain(expect_ok.clone())
        .collect();
    for name in by_name.keys() {
        assert!(
            expected.contains(&name.as_str()) || name == cut,
            "unexpected record for {name:?}"
        );
    }
    // A directory named like a video is walked like any directory: it holds no video, so it
    // gives no record (and notes.txt inside is not an input).
    assert!(!by_name.keys().any(|k| k.starts_with("dir.mp4")));
    // Half of a faststart MP4: the index survives, half the frames don't. Classified on the
    // frames it has (all within the first 0.4 s), with a warning about the broken packet.
    match by_name.get(cut) {
        Some(Record::Ok(v)) => {
            assert!(
                v.warnings.iter().any(|w| w.contains("corrupt packet")),
                "{cut}: {v:?}"
            );
            assert!(
                v.frame_times.iter().flatten().all(|&t| t < 0.4),
                "{cut}: frames past the cut: {:?}",
                v.frame_times
            );
        }
        other => panic!("{cut}: expected a prediction with a warning, got {other:?}"),
    }
    let (Some(Record::Ok(good)), Some(Record::Ok(free))) =
        (by_name.get("good.mp4"), by_name.get("moov_in_free.mp4"))
    else {
        unreachable!()
    };
    assert_eq!(
        free.top_k, good.top_k,
        "moov_in_free.mp4 decodes as good.mp4"
    );
    let Some(Record::Ok(one)) = by_name.get("one_frame.mp4") else {
        unreachable!()
    };
    assert_eq!(
        one.padded_frames,
        one.frame_times[0].len() - 1,
        "1-frame video: all but one frame repeat"
    );
    let Some(Record::Ok(flip)) = by_name.get("flipped_bytes.mp4") else {
        unreachable!()
    };
    assert!(
        !flip.warnings.is_empty(),
        "corrupt packets are counted in warnings"
    );
    // Symlinks are not followed unless asked, so the loop is not walked.
    assert!(
        !by_name.keys().any(|k| k.contains("back")),
        "{:?}",
        by_name.keys()
    );
}

#[test]
fn unreadable_file_is_an_open_error() {
    let d = corpus();
    let file = d.join("unreadable.mp4");
    // Root reads anything; without the capabilities that allow it, it reads like anyone else.
    let mut run = if can_read(&file) {
        vidcls_via(
            &["setpriv", "--bounding-set=-dac_override,-dac_read_search"],
            &["predict"],
        )
    } else {
        predict::<&str>(&[])
    };
    let out = run
        .args(["-f", "jsonl", "-k", "1"])
        .args([&file, &d.join("good.mp4")])
        .expect_code(1);
    let recs = out.records();
    assert_eq!(recs.len(), 2, "{}", out.stderr());
    let e = expect_err(&recs[0]);
    assert_eq!(e.stage, Stage::Open, "{e:?}");
    assert!(
        e.error.contains("Permission denied") && e.error.contains("unreadable.mp4"),
        "{e:?}"
    );
    assert!(matches!(recs[1], Record::Ok(_)), "{:?}", recs[1]);
}

#[test]
fn symlink_loop_is_reported_when_following_links() {
    let out = predict(&["-L", "-f", "jsonl", "-k", "1"])
        .arg(corpus().join("loopdir"))
        .expect_code(1);
    let text = out.stdout();
    assert!(text.contains("symbolic link loop"), "{text}");
    assert!(text.contains("inner.mp4\",\"model\""), "{text}");
}

#[test]
fn per_file_time_limit_gives_up_and_carries_on() {
    let d = corpus();
    // Ten clips of the two 8K frames take about 1.6 s to decode here (one clip, about 0.3 s
    // since frames are resized as they are converted); the small file's ten, about 0.1 s.
    let lines = predict(&[
        "-f",
        "jsonl",
        "-k",
        "1",
        "--clips",
        "10",
        "--timeout",
        "0.5",
    ])
    .args([d.join("8k.mp4"), d.join("good.mp4")])
    .expect_code(1)
    .records();
    assert_eq!(lines.len(), 2);
    match &lines[0] {
        Record::Err(e) => assert!(e.error.contains("--timeout"), "{e:?}"),
        r => panic!("8K decode finished within 0.5 s? {r:?}"),
    }
    assert!(matches!(lines[1], Record::Ok(_)), "{:?}", lines[1]);
}

/// Tiny deterministic generator for the mutation loop.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut b = seed.to_vec();
    match rng.below(5) {
        0 => {
            // flip a few bytes anywhere
            for _ in 0..1 + rng.below(16) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            // overwrite bytes in the header region (box sizes, codec parameters)
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(b.len().min(512));
                b[i] = rng.next() as u8;
            }
        }
        2 => b.truncate(rng.below(b.len())),
        3 => {
            // duplicate a chunk
            let i = rng.below(b.len());
            let n = rng.below(256).min(b.len() - i);
            let chunk = b[i..i + n].to_vec();
            let j = rng.below(b.len());
            b.splice(j..j, chunk);
        }
        _ => {
            // extreme values into 4-byte fields
            let i = rng.below(b.len().saturating_sub(4));
            let v: [u32; 4] = [0, u32::MAX, 0x7fff_ffff, 1];
            b[i..i + 4].copy_from_slice(&v[rng.below(4)].to_be_bytes());
        }
    }
    b
}

/// Feeds mutated containers (mp4, webm, avi, mkv) through the decode stage in-process.
/// Any panic fails the test; a watchdog aborts if one input takes over 60 s (a hang).
#[test]
fn fuzz_decode_stage_with_mutated_containers() {
    let dir = scratch("fuzz");
    let seeds: Vec<Vec<u8>> = [
        (
            "s.mp4",
            vec![
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "+faststart",
            ],
        ),
        (
            "s.webm",
            vec!["-c:v", "libvpx-vp9", "-deadline", "realtime"],
        ),
        ("s.avi", vec!["-c:v", "mjpeg"]),
        ("s.mkv", vec!["-c:v", "mpeg4"]),
    ]
    .iter()
    .map(|(name, codec)| {
        let p = dir.join(name);
        let mut args = vec!["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "1"];
        args.extend(codec.iter().copied());
        args.push(p.to_str().unwrap());
        ffmpeg(&args);
        std::fs::read(&p).unwrap()
    })
    .collect();
    ffmpeg_next::init().unwrap();
    let iterations: usize = std::env::var("VIDCLS_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let current = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    {
        let current = current.clone();
        std::thread::spawn(move || {
            let mut last = (usize::MAX, Instant::now());
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let now = current.load(Ordering::Relaxed);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > Duration::from_secs(60) && now < iterations {
                    eprintln!(
                        "fuzz input {now} hangs the decoder (saved in target/test-scratch/fuzz/)"
                    );
                    std::process::abort();
                }
            }
        });
    }
    let spec = vidcls::decode::SamplingSpec {
        frames: 4,
        fps: None,
        stride: 1,
        clips: 2,
    };
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut opened, mut clips) = (0, 0);
    for i in 0..iterations {
        current.store(i, Ordering::Relaxed);
        let s = i % seeds.len();
        let data = mutate(&seeds[s], &mut rng);
        let path = dir.join(format!("input{}", [".mp4", ".webm", ".avi", ".mkv"][s]));
        std::fs::write(&path, &data).unwrap();
        let result = std::panic::catch_unwind(|| {
            let mut v = vidcls::decode::Video::open(&path).ok()?;
            let plans = vidcls::decode::plan_clips(0.0, v.meta().duration, v.native_fps(), &spec);
            let n = plans.iter().filter(|p| v.read_clip(p).is_ok()).count();
            Some(n)
        });
        match result {
            Ok(Some(n)) => {
                opened += 1;
                clips += n;
            }
            Ok(None) => {}
            Err(_) => {
                let keep = dir.join(format!("panic-{i}.bin"));
                std::fs::write(&keep, &data).unwrap();
                panic!(
                    "decode stage panicked on fuzz input {i} (saved as {})",
                    keep.display()
                );
            }
        }
    }
    current.store(iterations, Ordering::Relaxed);
    eprintln!(
        "fuzz: {iterations} mutated inputs in {:.1} s: {opened} opened, {clips} clips decoded, no panic or hang",
        started.elapsed().as_secs_f64()
    );
    assert!(
        opened > iterations / 10,
        "mutations too destructive to exercise decoding: {opened} opened"
    );
}

/// The families the container mutations rarely reach: a last timestamp far in the future (a
/// crafted duration) and pictures of extreme aspect ratios. Each goes through the decode and
/// preprocessing stage in-process, with windows; each ends in views or a clear error record,
/// never a panic, a hang or memory in proportion to its duration or its long side.
#[test]
fn fuzz_prepare_with_crafted_timestamps_and_aspect_ratios() {
    use vidcls::pipeline::{prepare, resize_rows, ClipSettings, MakeViews, WindowSpec};
    let dir = scratch("fuzz-crafted");
    let cfg: vidcls::model::ModelConfig =
        serde_json::from_str(&std::fs::read_to_string(root().join("configs/motion.json")).unwrap())
            .unwrap();
    let clips = ClipSettings {
        spec: vidcls::decode::SamplingSpec {
            frames: 4,
            fps: None,
            stride: 1,
            clips: 2,
        },
        windows: Some(WindowSpec {
            length: 4.0,
            hop: 2.0,
        }),
        thumbnails: None,
        max_pixels: vidcls::decode::DEFAULT_MAX_PIXELS,
        access: Default::default(),
        max_windows: 1000,
    };
    let make = MakeViews {
        frame: &|size, first| resize_rows(size, first, &cfg),
        views: &|frames: &[vidcls::model::preprocess::Resized]| {
            vidcls::model::preprocess::resized_to_views(frames, &cfg, 1)
        },
    };
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let started = Instant::now();
    for i in 0..16 {
        // Even: a frame stamped 10^k s (k up to 12) among ten; odd: a W x H of ratio up to 4000.
        let (name, filter, size, want) = if i % 2 == 0 {
            let k = rng.below(13) as i32;
            let at = 10f64.powi(k);
            // Frames from the n-th on (n >= 1: times count from the first frame) jump ahead.
            let n = 1 + rng.below(9);
            let f = format!("setpts='if(gte(N,{n}),{at}/TB+N/10/TB,N/10/TB)'");
            // Windows of 4 s every 2 s: more than 1000 once the stamp passes 2000 s.
            (
                format!("t{i}.mkv"),
                f,
                "64x64".to_string(),
                (at > 2002.0).then_some("--max-windows"),
            )
        } else {
            let long = [64, 300, 2000, 4000, 8000][rng.below(5)];
            let short = [2, 4, 16, 64][rng.below(4)];
            let (w, h) = if rng.below(2) == 0 {
                (long, short)
            } else {
                (short, long)
            };
            // The model's short side is 64: the long side passes 2048 past a 32:1 ratio.
            let refused = long * 64 / short > 2048;
            (
                format!("a{i}.mp4"),
                "null".into(),
                format!("{w}x{h}"),
                refused.then_some("aspect ratio"),
            )
        };
        let path = dir.join(&name);
        let src = format!("testsrc=s={size}:r=10");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &src,
            "-frames:v",
            "10",
            "-vf",
            &filter,
            "-pix_fmt",
            "yuv420p",
            path.to_str().unwrap(),
        ]);
        let t0 = Instant::now();
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            prepare(&path, &clips, &make).map(|p| p.units.len())
        }));
        let got = got.unwrap_or_else(|_| panic!("{name} ({size}, {filter}): panicked"));
        match (want, &got) {
            (Some(what), Err(e)) => assert!(e.error.contains(what), "{name}: {e:?}"),
            (None, Ok(units)) => assert!((1..=1000).contains(units), "{name}: {units} windows"),
            _ => panic!("{name} ({size}, {filter}): expected {want:?}, got {got:?}"),
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{name} took {:?}",
            t0.elapsed()
        );
    }
    eprintln!(
        "fuzz-crafted: 16 inputs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A file whose name holds a frame-number pattern is read as itself: FFmpeg's image2 demuxer
/// would otherwise expand `IMG_%04d.png` to the numbered pictures beside it.
#[test]
fn a_pattern_in_a_file_name_reads_only_that_file() {
    let dir = scratch("reliability-pattern");
    let picture = |source: &str, out: &Path| {
        let args = [
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            source,
            "-frames:v",
            "1",
            "-update",
            "1",
        ];
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        all.push(out.as_os_str());
        ffmpeg(&all);
    };
    for (i, colour) in ["red", "green", "blue"].iter().enumerate() {
        let out = dir.join(format!("IMG_{:04}.png", i + 1));
        picture(&format!("color={colour}:s=64x48"), &out);
    }
    let own = dir.join("own.png");
    picture("color=white:s=32x32", &own);
    let named = dir.join("IMG_%04d.png");
    std::fs::copy(&own, &named).unwrap();
    let out = crate::support::vidcls(&["probe", "--count"])
        .arg(&named)
        .ok()
        .stdout();
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(32), Some(32)),
        "{v}"
    );
    assert_eq!(v["decoded_frames"].as_u64(), Some(1), "{v}");
}
