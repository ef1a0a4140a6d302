//! `vidcls annotate`: the copy decodes with the input's frames, timestamps and duration, keeps
//! its audio, is upright, and differs from the input only inside the caption band.

use crate::support::{ffmpeg, fixture, root, scratch, vidcls, Key};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A 4-s 160x120 10-fps video with a 440 Hz AAC track.
fn source() -> PathBuf {
    let args = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=10",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "4",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
    ];
    let key = Key::new().ffmpeg().args(&args);
    let dir = fixture("annotate-source", &key, |dir| {
        let out = dir.join("in.mp4");
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        all.push(out.as_os_str());
        ffmpeg(&all);
    });
    dir.join("in.mp4")
}

/// [`source`] stream-copied with a `rotate=90` tag (a display matrix: a player turns it
/// 90 degrees clockwise).
fn rotated_source() -> PathBuf {
    let src = source();
    let args = ["-c", "copy", "-metadata:s:v:0", "rotate=90"];
    let key = Key::new().ffmpeg().args(&args).fixture(&src);
    let dir = fixture("annotate-rotated", &key, |dir| {
        let out = dir.join("in.mp4");
        let mut all: Vec<&std::ffi::OsStr> = vec!["-i".as_ref(), src.as_os_str()];
        all.extend(args.iter().map(std::ffi::OsStr::new));
        all.push(out.as_os_str());
        ffmpeg(&all);
    });
    dir.join("in.mp4")
}

fn ffprobe(args: &[&str], file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (frames decoded, presentation times, video duration, audio codec) as ffprobe reads them.
fn facts(file: &Path) -> (usize, Vec<f64>, f64, String) {
    let times: Vec<f64> = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "csv=p=0",
        ],
        file,
    )
    .lines()
    .filter_map(|l| l.split(',').next().filter(|t| !t.trim().is_empty()))
    .map(|t| t.trim().parse().unwrap())
    .collect();
    let duration = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=duration",
            "-of",
            "csv=p=0",
        ],
        file,
    );
    let audio = ffprobe(
        &[
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ],
        file,
    );
    (
        times.len(),
        times,
        duration.trim().parse().unwrap(),
        audio.trim().to_string(),
    )
}

/// Every frame's luma, upright (ffmpeg applies the display rotation), and the upright size.
fn luma(file: &Path) -> (Vec<Vec<u8>>, usize, usize) {
    let size = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ],
        file,
    );
    let turned = matches!(rotation(file).as_str(), "90" | "-90" | "270" | "-270");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (w, h): (usize, usize) = {
        let mut it = size.trim().split(',').map(|v| v.parse::<usize>().unwrap());
        let (w, h) = (it.next().unwrap(), it.next().unwrap());
        if turned {
            (h, w)
        } else {
            (w, h)
        }
    };
    let n = out.stdout.len() / (w * h);
    let frames = out.stdout.chunks(w * h).map(<[u8]>::to_vec).collect();
    assert_eq!(n * w * h, out.stdout.len());
    (frames, w, h)
}

/// Mean absolute difference of rows `rows` between two frames `w` pixels wide.
fn mad(a: &[u8], b: &[u8], w: usize, rows: std::ops::Range<usize>) -> f64 {
    let (s, e) = (rows.start * w, rows.end * w);
    let sum: u64 = a[s..e]
        .iter()
        .zip(&b[s..e])
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    sum as f64 / (e - s) as f64
}

fn annotate(input: &Path, name: &str) -> PathBuf {
    let dir = scratch(name);
    let out = dir.join("out.mp4");
    vidcls(&["annotate", "-q", "--window", "1"])
        .arg(input)
        .arg("-o")
        .arg(&out)
        .ok();
    out
}

#[test]
fn annotated_copy_keeps_frames_timestamps_duration_and_audio() {
    let input = source();
    let out = annotate(&input, "annotate-plain");
    let (n_in, t_in, d_in, a_in) = facts(&input);
    let (n_out, t_out, d_out, a_out) = facts(&out);
    assert_eq!((n_out, a_out.as_str()), (n_in, a_in.as_str()));
    assert_eq!(n_in, 40);
    for (a, b) in t_in.iter().zip(&t_out) {
        assert!((a - b).abs() < 1e-3, "frame at {a} s written at {b} s");
    }
    assert!((d_in - d_out).abs() < 1e-3, "duration {d_in} -> {d_out}");
}

#[test]
fn annotated_frames_differ_only_in_the_caption_band() {
    let input = source();
    let out = annotate(&input, "annotate-band");
    differs_only_in_band(&input, &out, (160, 120));
}

#[test]
fn rotated_video_is_annotated_upright() {
    let input = rotated_source();
    let out = annotate(&input, "annotate-rotated");
    differs_only_in_band(&input, &out, (120, 160));
    assert_eq!(rotation(&input), "90", "the fixture is rotated");
    assert_eq!(rotation(&out), "", "the copy is upright");
}

/// The video stream's display-matrix rotation as ffprobe prints it ("" for none).
fn rotation(file: &Path) -> String {
    let r = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream_side_data=rotation",
            "-of",
            "csv=p=0",
        ],
        file,
    );
    r.trim().trim_matches(',').to_string()
}

/// The copy is `size` (upright); its frames match the input's (as ffmpeg shows them) below the
/// band and differ inside it.
fn differs_only_in_band(input: &Path, out: &Path, size: (usize, usize)) {
    let (a, _, _) = luma(input);
    let (b, w, h) = luma(out);
    assert_eq!((w, h), size);
    assert_eq!(a.len(), b.len());
    let band = vidcls::overlay::band(h as u32).1 as usize;
    for (i, (fa, fb)) in a.iter().zip(&b).enumerate() {
        let inside = mad(fa, fb, w, 0..band);
        let outside = mad(fa, fb, w, band..h);
        assert!(
            inside > 20.0,
            "frame {i}: band barely changed ({inside:.1})"
        );
        assert!(
            outside < 2.5,
            "frame {i}: changed outside the band ({outside:.2})"
        );
    }
}

/// The built-in motion model under a config whose labels are full of characters that mean
/// something to FFmpeg's option parser, drawtext, HTML or CSV.
pub fn hostile_label_model(dir: &Path) -> PathBuf {
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("configs/motion.json")).unwrap())
            .unwrap();
    cfg["labels"] = serde_json::json!([
        "it's: 100%",
        "a\\b:c",
        "%{pts}",
        "<b>bold</b>",
        "x,y;z [in]",
        "'",
        "=k=v",
        "\"q\""
    ]);
    cfg["file"] = root().join("models/motion.pt").to_string_lossy().into();
    let path = dir.join("hostile.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    path
}

#[test]
fn hostile_labels_are_drawn_without_breaking_the_filters() {
    let input = source();
    let dir = scratch("annotate-hostile");
    let out = dir.join("out.mp4");
    vidcls(&["annotate", "-q", "-k", "5", "-m"])
        .arg(hostile_label_model(&dir))
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .ok();
    assert_eq!(facts(&out).0, 40);
    differs_only_in_band(&input, &out, (160, 120));
}

#[test]
fn bad_input_or_existing_output_is_a_clear_error() {
    let dir = scratch("annotate-errors");
    let junk = dir.join("junk.mp4");
    std::fs::write(&junk, "not a video").unwrap();
    let out = dir.join("out.mp4");
    let run = vidcls(&["annotate", "-q"])
        .arg(&junk)
        .arg("-o")
        .arg(&out)
        .expect_code(1);
    assert!(
        run.stderr().contains("junk.mp4: open failed"),
        "{}",
        run.stderr()
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "nothing written"
    );
    std::fs::write(&out, "keep").unwrap();
    let run = vidcls(&["annotate", "-q"])
        .arg(source())
        .arg("-o")
        .arg(&out)
        .expect_code(2);
    assert!(
        run.stderr().contains("exists: use --force"),
        "{}",
        run.stderr()
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");
}
