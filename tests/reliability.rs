//! Hostile inputs, time limits and mutated containers: every input gets a prediction or a clear
//! error record, nothing panics or hangs, and no other input's result is lost.

use crate::support::{assert_code, bin, ffmpeg, python, root, run_ok, scratch, shared_dir};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use vidcls::report::Record;

fn corpus() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = shared_dir().join("hostile");
        if !d.join("zero.mp4").exists() {
            let _ = std::fs::remove_dir_all(&d);
            run_ok(
                python()
                    .arg(root().join("tests/make_hostile_corpus.py"))
                    .arg(&d),
            );
        }
        d
    })
}

fn summary_counts(stderr: &str) -> (usize, usize, usize, usize) {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains(" input(s): "))
        .unwrap_or_else(|| panic!("no summary:\n{stderr}"));
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter_map(|t| t.parse().ok())
        .collect();
    (nums[0], nums[1], nums[2], nums[3]) // inputs, classified, failed, records
}

#[test]
fn hostile_corpus_gives_a_record_per_input_and_exit_one() {
    let d = corpus();
    let extra = ["fifo.mp4", "image.png", "image.jpg"].map(|n| d.join(n));
    let t0 = Instant::now();
    let out = bin()
        .args(["predict", "-f", "jsonl", "-k", "1", "--timeout", "120"])
        .arg(d)
        .args(&extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        t0.elapsed() < Duration::from_secs(240),
        "took {:?}",
        t0.elapsed()
    );
    let recs: Vec<Record> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let by_name: BTreeMap<String, &Record> = recs
        .iter()
        .map(|r| {
            let p = r.path();
            (
                Path::new(p)
                    .strip_prefix(d)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                r,
            )
        })
        .collect();
    assert_eq!(by_name.len(), recs.len(), "an input got two records");
    let (inputs, ok, failed, records) = summary_counts(&stderr);
    assert_eq!(records, recs.len());
    assert_eq!(inputs, recs.len());
    assert_eq!(
        ok,
        recs.iter().filter(|r| matches!(r, Record::Ok(_))).count()
    );
    assert_eq!(failed, recs.len() - ok);
    let expect_err = [
        "zero.mp4",
        "random.mp4",
        "cut50.mp4",
        "audio_only.mp4",
        "fifo.mp4",
    ];
    let expect_ok = [
        "good.mp4",
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
    for name in expect_err {
        match by_name.get(name) {
            Some(Record::Err(e)) => {
                assert!(
                    !e.stage.to_string().is_empty() && !e.error.is_empty(),
                    "{name}: {e:?}"
                );
                assert!(stderr.contains(name), "{name} not named on stderr");
            }
            other => panic!("{name}: expected an error record, got {other:?}"),
        }
    }
    for name in expect_ok {
        match by_name.get(name) {
            Some(Record::Ok(v)) => assert_eq!(v.top_k.len(), 1, "{name}"),
            other => panic!("{name}: expected a prediction, got {other:?}"),
        }
    }
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
fn symlink_loop_is_reported_when_following_links() {
    let out = bin()
        .args(["predict", "-L", "-f", "jsonl", "-k", "1"])
        .arg(corpus().join("loopdir"))
        .output()
        .unwrap();
    assert_code(&out, 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("symbolic link loop"), "{text}");
    assert!(text.contains("inner.mp4\",\"model\""), "{text}");
}

#[test]
fn per_file_time_limit_gives_up_and_carries_on() {
    let d = corpus();
    let out = bin()
        .args(["predict", "-f", "jsonl", "-k", "1", "--timeout", "0.3"])
        .args([d.join("8k.mp4"), d.join("good.mp4")])
        .output()
        .unwrap();
    assert_code(&out, 1);
    let lines: Vec<Record> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    match &lines[0] {
        Record::Err(e) => assert!(e.error.contains("--timeout"), "{e:?}"),
        r => panic!("8K decode finished within 0.3 s? {r:?}"),
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
