//! Decode stage against fixture videos whose frames carry their own index.
//!
//! Every fixture frame `k` shows `k` in binary: 16 blocks (2 rows of 8 columns), block `b`
//! bright when bit `b` of `k` is set, so the sampled frame can be read back from its pixels
//! whatever the codec did to them. Expected indices come from hand arithmetic for constant rates
//! and from ffprobe's frame timestamps (an independent reader) for the rest.

use crate::support::{self, Key};
use std::path::{Path, PathBuf};
use std::process::Command;
use vidcls::decode::{plan_clips, probe, Clip, ClipPlan, Frame, FrameRows, SamplingSpec, Video};

/// geq filter drawing the frame number `N` as 2 x 8 blocks of luma 235 (bit set) or 16.
const PATTERN: &str =
    "geq=lum='if(mod(floor(N/pow(2,8*floor(2*Y/H)+floor(8*X/W))),2),235,16)':cb=128:cr=128";

/// lavfi source of `size` frames at `rate` fps showing their index.
fn source(size: &str, rate: &str) -> String {
    source_in(size, rate, "yuv420p")
}

/// The same in pixel format `pix_fmt` (yuv444p keeps odd sizes odd).
fn source_in(size: &str, rate: &str, pix_fmt: &str) -> String {
    format!("color=c=black:s={size}:r={rate},format={pix_fmt},{PATTERN}")
}

/// A fixture video `name` made by `make` (the commands below, in this file), cached by this
/// file's hash and FFmpeg's version.
fn fixture(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let key = Key::new().ffmpeg().script("tests/decode.rs").args(&[name]);
    let path =
        support::fixture(&format!("decode-{name}"), &key, |dir| make(&dir.join(name))).join(name);
    assert!(path.exists(), "fixture {name} was not made");
    path
}

/// Encodes `frames` frames of the index pattern with extra ffmpeg output arguments.
fn encode(path: &Path, size: &str, rate: &str, frames: usize, args: &str) {
    let src = source(size, rate);
    let n = frames.to_string();
    let mut all = vec!["-f", "lavfi", "-i", &src, "-frames:v", &n];
    all.extend(args.split_whitespace());
    all.push(path.to_str().unwrap());
    support::ffmpeg(&all);
}

/// `ffmpeg` with whitespace-separated arguments followed by `last` ones (paths, filters).
fn ffmpeg_words(args: &str, last: &[&str]) {
    let mut all: Vec<&str> = args.split_whitespace().collect();
    all.extend_from_slice(last);
    support::ffmpeg(&all);
}

/// 2 s of 64x48 H.264 at 30 fps in MP4 with B-frames, a keyframe every 15 frames.
fn h264_bframes() -> PathBuf {
    fixture("h264-bframes.mp4", |p| {
        encode(
            p,
            "64x48",
            "30",
            60,
            "-c:v libx264 -qp 10 -g 15 -sc_threshold 0",
        )
    })
}

/// The same without B-frames.
fn h264_no_bframes() -> PathBuf {
    fixture("h264-no-bframes.mp4", |p| {
        encode(
            p,
            "64x48",
            "30",
            60,
            "-c:v libx264 -qp 10 -g 15 -sc_threshold 0 -bf 0",
        )
    })
}

/// 10 s at 30 fps (300 frames), keyframe every second: for seeking.
fn h264_long() -> PathBuf {
    fixture("h264-long.mp4", |p| {
        encode(
            p,
            "64x48",
            "30",
            300,
            "-c:v libx264 -qp 10 -g 30 -sc_threshold 0",
        )
    })
}

/// 10 s of H.264 at 30 fps with 3 B-frames between references, keyframe every 5 s:
/// most B-frames are non-reference ones the decoder can drop; `name` picks the pyramid
/// (`normal` or `none`, where every B-frame is non-reference).
fn h264_pyramid(name: &str, pyramid: &str) -> PathBuf {
    fixture(name, |p| {
        let args = format!(
            "-c:v libx264 -qp 10 -g 150 -sc_threshold 0 -bf 3 -x264-params b-pyramid={pyramid}"
        );
        encode(p, "64x48", "30", 300, &args)
    })
}

/// The same in HEVC (x265: 4 B-frames, pyramid on), keyframe every 5 s.
fn hevc_pyramid() -> PathBuf {
    fixture("hevc-pyramid.mp4", |p| {
        encode(
            p,
            "64x48",
            "30",
            300,
            "-c:v libx265 -x265-params log-level=none:keyint=150:min-keyint=150:scenecut=0:bframes=4:b-pyramid=1:qp=10",
        )
    })
}

const VP9: &str = "-c:v libvpx-vp9 -crf 10 -b:v 0 -deadline realtime -cpu-used 8 -g 20";

fn vp9_webm() -> PathBuf {
    fixture("vp9.webm", |p| encode(p, "64x48", "30", 45, VP9))
}

/// VP9 in Matroska with an audio stream mapped first, so the video is not stream 0.
fn vp9_mkv_with_audio() -> PathBuf {
    fixture("vp9-audio.mkv", |p| {
        // Both sources finite: ffmpeg waits for every input to end.
        let src = source("64x48", "30:d=1.5");
        let audio = "sine=frequency=440:sample_rate=8000:duration=1.5";
        let args = format!("-frames:v 45 -map 0:a -map 1:v -c:a pcm_s16le {VP9}");
        let mut all = vec!["-f", "lavfi", "-i", audio, "-f", "lavfi", "-i", &src];
        all.extend(args.split_whitespace());
        all.push(p.to_str().unwrap());
        support::ffmpeg(&all);
    })
}

fn mjpeg_avi() -> PathBuf {
    fixture("mjpeg.avi", |p| {
        encode(p, "64x48", "25", 40, "-c:v mjpeg -q:v 2")
    })
}

/// MPEG-4 part 2 with B-frames.
fn mpeg4_mp4() -> PathBuf {
    fixture("mpeg4.mp4", |p| {
        encode(p, "64x48", "30", 45, "-c:v mpeg4 -q:v 2 -bf 2 -g 12")
    })
}

/// Odd width and height.
fn odd_size() -> PathBuf {
    fixture("odd-97x55.mkv", |p| {
        let src = source_in("97x55", "30", "yuv444p");
        let out = p.to_str().unwrap();
        ffmpeg_words(
            "-f lavfi -i",
            &[&src, "-frames:v", "30", "-c:v", "libx264", "-qp", "10", out],
        );
    })
}

fn h264_10bit() -> PathBuf {
    fixture("h264-10bit.mp4", |p| {
        encode(
            p,
            "64x48",
            "30",
            30,
            "-c:v libx264 -qp 10 -pix_fmt yuv420p10le",
        )
    })
}

fn ffv1_gray() -> PathBuf {
    fixture("ffv1-gray.mkv", |p| {
        encode(p, "64x48", "30", 30, "-c:v ffv1 -pix_fmt gray")
    })
}

fn h264_422() -> PathBuf {
    fixture("h264-422.mkv", |p| {
        encode(p, "64x48", "24", 24, "-c:v libx264 -qp 10 -pix_fmt yuv422p")
    })
}

/// Palette (pal8) PNG frames in a QuickTime file.
fn png_pal8() -> PathBuf {
    fixture("png-pal8.mov", |p| {
        let src = format!(
            "color=c=black:s=64x48:r=30:d=1,format=yuv420p,{PATTERN},\
             split[a][b];[a]palettegen=max_colors=16[p];[b][p]paletteuse"
        );
        let out = p.to_str().unwrap();
        ffmpeg_words(
            "-f lavfi -i",
            &[&src, "-frames:v", "20", "-c:v", "png", out],
        );
    })
}

/// Packed RGB already: raw rgb24 in NUT.
fn raw_rgb() -> PathBuf {
    fixture("raw-rgb24.nut", |p| {
        encode(p, "64x48", "30", 20, "-c:v rawvideo -pix_fmt rgb24")
    })
}

/// H.264 with B-frames in MPEG-TS after an MP2 audio stream: timestamps start near 1.4 s, and
/// seeking has no index to use.
fn h264_ts_with_audio() -> PathBuf {
    fixture("h264-audio.ts", |p| {
        let src = source("64x48", "30:d=3");
        let audio = "sine=frequency=440:duration=3";
        let args = "-frames:v 90 -map 0:a -map 1:v -c:a mp2 -c:v libx264 -qp 10 -g 30";
        let mut all = vec!["-f", "lavfi", "-i", audio, "-f", "lavfi", "-i", &src];
        all.extend(args.split_whitespace());
        all.push(p.to_str().unwrap());
        support::ffmpeg(&all);
    })
}

/// MPEG-2 with B-frames in an MPEG program stream.
fn mpeg2_ps() -> PathBuf {
    fixture("mpeg2.mpg", |p| {
        encode(p, "64x48", "25", 50, "-c:v mpeg2video -q:v 2 -bf 2 -g 12")
    })
}

/// A raw H.264 elementary stream: no container timestamps at all.
fn h264_raw() -> PathBuf {
    fixture("raw.h264", |p| {
        encode(p, "64x48", "25", 50, "-c:v libx264 -qp 10 -g 25")
    })
}

/// Only three frames.
fn three_frames() -> PathBuf {
    fixture("three-frames.mp4", |p| {
        encode(p, "64x48", "30", 3, "-c:v libx264 -qp 10")
    })
}

/// Variable frame rate: frame `k` at `0.004 k^2 + 0.02 k` seconds (spacing grows from 24 ms to
/// 250 ms), encoded with timestamps passed through.
fn vfr(name: &str, args: &str) -> PathBuf {
    fixture(name, |p| {
        let src = format!(
            "{},settb=1/90000,setpts='(0.004*N*N+0.02*N)/TB'",
            source("64x48", "30")
        );
        let args = format!("-frames:v 30 -fps_mode passthrough {args}");
        let mut all = vec!["-f", "lavfi", "-i", &src];
        all.extend(args.split_whitespace());
        all.push(p.to_str().unwrap());
        support::ffmpeg(&all);
    })
}

fn vfr_mkv() -> PathBuf {
    vfr("vfr.mkv", "-c:v libx264 -qp 10 -bf 0")
}

fn vfr_mp4_bframes() -> PathBuf {
    vfr(
        "vfr-bframes.mp4",
        "-c:v libx264 -qp 10 -video_track_timescale 90000",
    )
}

/// `h264_no_bframes` stream-copied into a MOV with a `rotate` tag, which ffmpeg turns into a
/// display matrix.
fn rotated(degrees: u32) -> PathBuf {
    fixture(&format!("rotated-{degrees}.mov"), |p| {
        let src = h264_no_bframes();
        let rotate = format!("rotate={degrees}");
        let (src, out) = (src.to_str().unwrap(), p.to_str().unwrap());
        ffmpeg_words(
            "",
            &["-i", src, "-c", "copy", "-metadata:s:v:0", &rotate, out],
        );
    })
}

/// Reads the index a fixture frame shows. `rotation` is the clockwise rotation applied to the
/// encoded picture of `src_w` x `src_h` pixels.
fn index_rotated(frame: &Frame, src_w: u32, src_h: u32, rotation: u32) -> u32 {
    assert_eq!(frame.data.len(), (frame.width * frame.height * 3) as usize);
    let (fw, fh) = (src_w as f64 / 8.0, src_h as f64 / 2.0);
    let mut index = 0;
    for bit in 0..16 {
        let (col, row) = ((bit % 8) as f64, (bit / 8) as f64);
        // Inner half of the block, away from edges blurred by compression and chroma.
        let x0 = (col * fw + fw / 4.0).ceil() as u32;
        let x1 = ((col + 1.0) * fw - fw / 4.0).floor() as u32;
        let y0 = (row * fh + fh / 4.0).ceil() as u32;
        let y1 = ((row + 1.0) * fh - fh / 4.0).floor() as u32;
        let (mut sum, mut n) = (0u64, 0u64);
        for sy in y0..=y1.max(y0) {
            for sx in x0..=x1.max(x0) {
                // Where source pixel (sx, sy) lands after a clockwise rotation.
                let (x, y) = match rotation {
                    90 => (src_h - 1 - sy, sx),
                    180 => (src_w - 1 - sx, src_h - 1 - sy),
                    270 => (sy, src_w - 1 - sx),
                    _ => (sx, sy),
                };
                let i = ((y * frame.width + x) * 3) as usize;
                sum += frame.data[i..i + 3]
                    .iter()
                    .map(|v| u64::from(*v))
                    .sum::<u64>();
                n += 3;
            }
        }
        if sum / n > 128 {
            index |= 1 << bit;
        }
    }
    index
}

fn index(frame: &Frame) -> u32 {
    index_rotated(frame, frame.width, frame.height, 0)
}

fn indices(clip: &Clip) -> Vec<u32> {
    clip.frames.iter().map(index).collect()
}

fn spec(frames: usize, fps: Option<f64>, stride: usize, clips: usize) -> SamplingSpec {
    SamplingSpec {
        frames,
        fps,
        stride,
        clips,
    }
}

/// Opens, plans over the whole video and reads every clip in order.
fn read_all(path: &Path, spec: &SamplingSpec) -> (Video, Vec<Clip>) {
    let mut video = Video::open(path).unwrap_or_else(|e| panic!("{e:#}"));
    let plans = plan_clips(0.0, video.meta().duration, video.native_fps(), spec);
    let clips = plans
        .iter()
        .map(|p| video.read_clip(p).unwrap_or_else(|e| panic!("{e:#}")))
        .collect();
    (video, clips)
}

/// ffprobe's view of the video stream: its time base in seconds and every frame's presentation
/// time relative to the stream's start, in display order.
struct Probed {
    tick: f64,
    times: Vec<f64>,
}

fn ffprobe(path: &Path) -> Probed {
    let out = support::run_ok(Command::new("ffprobe").args([
        "-v",
        "error",
        "-select_streams",
        "V:0",
        "-show_entries",
        "stream=time_base,start_time,r_frame_rate:frame=best_effort_timestamp",
        "-of",
        "json",
        path.to_str().unwrap(),
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stream = &v["streams"][0];
    let tb = stream["time_base"].as_str().unwrap();
    let (num, den) = tb.split_once('/').unwrap();
    let tick = num.parse::<f64>().unwrap() / den.parse::<f64>().unwrap();
    let start: f64 = stream["start_time"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap();
    let start_ticks = (start / tick).round() as i64;
    // Without timestamps (raw streams) a player shows frame k at k / fps.
    let fps = stream["r_frame_rate"].as_str().unwrap();
    let (num, den) = fps.split_once('/').unwrap();
    let step = den.parse::<f64>().unwrap() / num.parse::<f64>().unwrap();
    let times = v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(k, f)| match f["best_effort_timestamp"].as_i64() {
            Some(ts) => (ts - start_ticks) as f64 * tick,
            None => k as f64 * step,
        })
        .collect();
    Probed { tick, times }
}

/// The frame a player shows at `t`: the last one stamped at or before `t` (within half a tick),
/// or the first.
fn expected_index(p: &Probed, t: f64) -> u32 {
    let eps = 0.5 * p.tick + 1e-6;
    p.times.iter().rposition(|f| *f <= t + eps).unwrap_or(0) as u32
}

/// Checks every clip of `spec` against ffprobe's timestamps, plus the clip invariants.
fn check_against_ffprobe(path: &Path, spec: &SamplingSpec) {
    let probed = ffprobe(path);
    let (video, clips) = read_all(path, spec);
    assert_eq!(clips.len(), spec.clips);
    for clip in &clips {
        let want: Vec<u32> = clip
            .plan
            .times
            .iter()
            .map(|t| expected_index(&probed, *t))
            .collect();
        assert_eq!(
            indices(clip),
            want,
            "{} {spec:?} times {:?}",
            path.display(),
            clip.plan.times
        );
        check_invariants(clip, video.meta().duration);
    }
    assert_eq!(video.warnings(), [] as [String; 0], "{}", path.display());
}

/// Within a clip frame times never decrease and stay inside [0, duration].
fn check_invariants(clip: &Clip, duration: f64) {
    assert_eq!(clip.frames.len(), clip.plan.times.len());
    for w in clip.frames.windows(2) {
        assert!(
            w[0].time <= w[1].time,
            "times decrease: {} > {}",
            w[0].time,
            w[1].time
        );
    }
    for f in &clip.frames {
        assert!(
            f.time >= 0.0 && f.time <= duration,
            "{} outside [0, {duration}]",
            f.time
        );
        assert_eq!(f.data.len(), (f.width * f.height * 3) as usize);
    }
}

/// A plan of explicit times.
fn at(times: &[f64]) -> ClipPlan {
    ClipPlan {
        start: times[0],
        end: times[times.len() - 1],
        times: times.to_vec(),
    }
}

fn step(from: u32, to: u32, by: usize) -> Vec<u32> {
    (from..=to).step_by(by).collect()
}

#[test]
fn centre_clip_constant_rate_with_b_frames() {
    // L = 8 * 2 / 30 s; the centre clip of 2 s starts at (2 - L) / 2 = 22 / 30 s.
    let (_, clips) = read_all(&h264_bframes(), &spec(8, None, 2, 1));
    assert_eq!(indices(&clips[0]), step(22, 36, 2));
    assert_eq!(clips[0].padded, 0);
    // 16 frames at 15 fps: L = 16/15 s, start 7/15 s = frame 14, then every other frame.
    let (_, clips) = read_all(&h264_bframes(), &spec(16, Some(15.0), 1, 1));
    assert_eq!(indices(&clips[0]), step(14, 44, 2));
}

#[test]
fn uniform_clips_without_b_frames() {
    // D = 2, L = 4/30: starts at (2 - L) * (j + 0.5) / 3 = 28/90 + j * 56/90 s.
    let (_, clips) = read_all(&h264_no_bframes(), &spec(4, None, 1, 3));
    let got: Vec<Vec<u32>> = clips.iter().map(indices).collect();
    // 28/90 s = 9.33 frames, 84/90 s = 28 frames, 140/90 s = 46.67 frames.
    assert_eq!(
        got,
        vec![
            vec![9, 10, 11, 12],
            vec![28, 29, 30, 31],
            vec![46, 47, 48, 49]
        ]
    );
    check_against_ffprobe(&h264_no_bframes(), &spec(5, Some(7.0), 3, 4));
}

#[test]
fn every_frame_and_the_last_one_are_reachable() {
    for path in [h264_bframes(), h264_no_bframes(), mpeg4_mp4(), vp9_webm()] {
        let n = ffprobe(&path).times.len();
        let (_, clips) = read_all(&path, &spec(n, None, 1, 1));
        let want: Vec<u32> = (0..n as u32).collect();
        assert_eq!(indices(&clips[0]), want, "{}", path.display());
        assert_eq!(clips[0].padded, 0, "{}", path.display());
    }
    // A lone time just before the end.
    let mut video = Video::open(&h264_bframes()).unwrap();
    let clip = video.read_clip(&at(&[1.99])).unwrap();
    assert_eq!(indices(&clip), vec![59]);
    assert_eq!(clip.padded, 0);
}

#[test]
fn codecs_and_containers() {
    for path in [
        vp9_webm(),
        vp9_mkv_with_audio(),
        mjpeg_avi(),
        mpeg4_mp4(),
        odd_size(),
        h264_10bit(),
        ffv1_gray(),
        h264_422(),
        png_pal8(),
        raw_rgb(),
        h264_ts_with_audio(),
        mpeg2_ps(),
        h264_raw(),
    ] {
        check_against_ffprobe(&path, &spec(8, None, 2, 1));
        check_against_ffprobe(&path, &spec(4, Some(12.0), 1, 3));
    }
}

#[test]
fn pixel_formats_and_sizes_are_reported() {
    let cases = [
        (odd_size(), "yuv444p", 97, 55),
        (h264_10bit(), "yuv420p10le", 64, 48),
        (ffv1_gray(), "gray", 64, 48),
        (png_pal8(), "pal8", 64, 48),
        (raw_rgb(), "rgb24", 64, 48),
        (h264_422(), "yuv422p", 64, 48),
    ];
    for (path, pix_fmt, w, h) in cases {
        let mut video = Video::open(&path).unwrap();
        let meta = video.meta().clone();
        assert_eq!(
            (meta.pix_fmt.as_str(), meta.width, meta.height),
            (pix_fmt, w, h)
        );
        // Frame 3 at 24 and at 30 fps.
        let clip = video.read_clip(&at(&[0.0, 0.13])).unwrap();
        for f in &clip.frames {
            assert_eq!((f.width, f.height), (w, h), "{}", path.display());
        }
        assert_eq!(indices(&clip), vec![0, 3], "{}", path.display());
    }
}

#[test]
fn vp9_mkv_picks_the_video_stream_and_rounds_millisecond_stamps() {
    // Matroska stamps 30 fps frames in whole milliseconds (frame 2 at 67 ms > 2/30 s): still
    // frame k for time k/30.
    let path = vp9_mkv_with_audio();
    let mut video = Video::open(&path).unwrap();
    assert_eq!(video.meta().codec, "vp9");
    let times: Vec<f64> = (0..45).map(|k| k as f64 / 30.0).collect();
    let clip = video.read_clip(&at(&times)).unwrap();
    assert_eq!(indices(&clip), (0..45).collect::<Vec<u32>>());
}

#[test]
fn variable_frame_rate() {
    for path in [vfr_mkv(), vfr_mp4_bframes()] {
        let probed = ffprobe(&path);
        // The stamps really are irregular.
        let gaps: Vec<f64> = probed.times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps[0] < 0.03 && gaps[gaps.len() - 1] > 0.2, "{gaps:?}");
        check_against_ffprobe(&path, &spec(16, Some(10.0), 1, 1));
        check_against_ffprobe(&path, &spec(8, Some(20.0), 2, 3));
        check_against_ffprobe(&path, &spec(6, None, 1, 5));
        // Hand-checked moments: frame k is at 0.004 k^2 + 0.02 k s.
        let mut video = Video::open(&path).unwrap();
        let clip = video
            .read_clip(&at(&[0.0, 0.05, 0.5, 1.0, 3.1, 3.5]))
            .unwrap();
        // 0.05 is between frames 1 (0.024) and 2 (0.056); 0.5 between 8 (0.416) and 9 (0.504);
        // 1.0 between 13 (0.936) and 14 (1.064); 3.1 between 25 (3.0) and 26 (3.224); 3.5
        // between 27 (3.456) and 28 (3.696).
        assert_eq!(
            indices(&clip),
            vec![0, 1, 8, 13, 25, 27],
            "{}",
            path.display()
        );
        let times: Vec<f64> = clip.frames.iter().map(|f| f.time).collect();
        for (t, k) in times.iter().zip([0.0, 1.0, 8.0, 13.0, 25.0, 27.0]) {
            assert!((t - (0.004 * k * k + 0.02 * k)).abs() < 0.001, "{times:?}");
        }
    }
}

#[test]
fn three_frame_video_is_padded_with_its_last_frame() {
    let (video, clips) = read_all(&three_frames(), &spec(8, None, 1, 2));
    assert!(
        (video.meta().duration - 0.1).abs() < 1e-3,
        "{}",
        video.meta().duration
    );
    for clip in &clips {
        assert_eq!(clip.plan.start, 0.0);
        assert_eq!(indices(clip), vec![0, 1, 2, 2, 2, 2, 2, 2]);
        assert_eq!(clip.padded, 5);
        check_invariants(clip, video.meta().duration);
    }
}

#[test]
fn seeks_forward_and_back_give_the_same_frames_as_a_fresh_read() {
    let path = h264_long();
    let probed = ffprobe(&path);
    assert_eq!(probed.times.len(), 300);
    let mut video = Video::open(&path).unwrap();
    // Far ahead, then back, then near, then the very start and the very end.
    let starts = [8.0, 2.0, 2.5, 9.0, 0.0, 5.3, 5.0, 9.9];
    for start in starts {
        let times: Vec<f64> = (0..6).map(|i| start + i as f64 * 0.1).collect();
        let clip = video.read_clip(&at(&times)).unwrap();
        let want: Vec<u32> = times.iter().map(|t| expected_index(&probed, *t)).collect();
        assert_eq!(indices(&clip), want, "clip at {start} s");
        let fresh = Video::open(&path).unwrap().read_clip(&at(&times)).unwrap();
        assert_eq!(indices(&fresh), want, "fresh clip at {start} s");
        check_invariants(&clip, video.meta().duration);
    }
    // Reading on nearby does not seek; far ahead seeks once and decodes about one keyframe
    // interval (30 frames) plus the clip, not everything in between.
    let mut video = Video::open(&path).unwrap();
    let clip = video.read_clip(&at(&[1.0, 1.5, 2.0])).unwrap();
    assert_eq!(indices(&clip), vec![30, 45, 60]);
    assert_eq!(video.seek_count(), 0);
    let decoded = video.frames_decoded();
    let clip = video.read_clip(&at(&[8.5, 8.6])).unwrap();
    assert_eq!(indices(&clip), vec![255, 258]);
    assert_eq!(video.seek_count(), 1);
    let spent = video.frames_decoded() - decoded;
    assert!(spent < 60, "{spent} frames decoded for a clip 6.5 s ahead");
    // Behind: one seek back.
    let clip = video.read_clip(&at(&[4.0])).unwrap();
    assert_eq!(indices(&clip), vec![120]);
    assert_eq!(video.seek_count(), 2);

    // Past the end: the last frame, padded.
    let clip = video.read_clip(&at(&[9.98, 10.0, 12.0])).unwrap();
    assert_eq!(indices(&clip), vec![299, 299, 299]);
    assert_eq!(clip.padded, 2);
    check_against_ffprobe(&path, &spec(8, Some(15.0), 2, 10));
}

#[test]
fn clips_read_backwards_match_ffprobe() {
    // Every clip after the first is behind the decoder: each read seeks back.
    for path in [
        h264_bframes(),
        mpeg4_mp4(),
        mpeg2_ps(),
        h264_ts_with_audio(),
        vp9_webm(),
        vp9_mkv_with_audio(),
        vfr_mp4_bframes(),
        mjpeg_avi(),
        h264_raw(),
    ] {
        let probed = ffprobe(&path);
        let mut video = Video::open(&path).unwrap();
        let plans = plan_clips(
            0.0,
            video.meta().duration,
            video.native_fps(),
            &spec(4, None, 2, 5),
        );
        for plan in plans.iter().rev() {
            let clip = video.read_clip(plan).unwrap();
            let want: Vec<u32> = plan
                .times
                .iter()
                .map(|t| expected_index(&probed, *t))
                .collect();
            assert_eq!(indices(&clip), want, "{} at {}", path.display(), plan.start);
        }
        assert!(video.seek_count() >= 4, "{}", path.display());
    }
}

#[test]
fn frame_times_match_ffprobe_and_reading_goes_on_after() {
    for path in [
        h264_bframes(),
        vfr_mp4_bframes(),
        h264_ts_with_audio(),
        h264_raw(),
    ] {
        let probed = ffprobe(&path);
        let mut video = Video::open(&path).unwrap();
        let first = video.read_clip(&at(&[0.5])).unwrap();
        let times = video.frame_times().unwrap();
        assert_eq!(times.len(), probed.times.len(), "{}", path.display());
        for (got, want) in times.iter().zip(&probed.times) {
            assert!(
                (got - want).abs() < 1e-6,
                "{}: {got} vs {want}",
                path.display()
            );
        }
        let again = video.read_clip(&at(&[0.5])).unwrap();
        assert_eq!(indices(&again), indices(&first), "{}", path.display());
    }
}

#[test]
fn times_never_decrease_and_stay_inside_the_video() {
    let specs = [
        spec(16, Some(15.0), 1, 3),
        spec(8, None, 8, 2),
        spec(32, Some(30.0), 1, 1),
        spec(5, Some(3.0), 1, 4),
    ];
    for path in [
        h264_bframes(),
        vfr_mp4_bframes(),
        three_frames(),
        mjpeg_avi(),
        h264_long(),
        h264_ts_with_audio(),
        h264_raw(),
    ] {
        for s in &specs {
            let (video, clips) = read_all(&path, s);
            for clip in &clips {
                check_invariants(clip, video.meta().duration);
            }
        }
    }
}

#[test]
fn rotated_mov_is_upright() {
    for tag in [90, 180, 270] {
        let path = rotated(tag);
        // ffprobe reports the display matrix's counter-clockwise angle (`rotate=90` written by
        // ffmpeg 5.1 reads back as 90 counter-clockwise); a player turns the picture clockwise
        // by its negation.
        let out = support::run_ok(
            Command::new("ffprobe")
                .args("-v error -select_streams v:0 -of csv=p=0".split(' '))
                .args(["-show_entries", "stream_side_data=rotation"])
                .arg(&path),
        );
        let ccw: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let clockwise = (-ccw).rem_euclid(360) as u32;
        let mut video = Video::open(&path).unwrap();
        let meta = video.meta().clone();
        assert_eq!(meta.rotation, clockwise as i32, "tag {tag}");
        let (w, h) = if clockwise == 180 { (64, 48) } else { (48, 64) };
        assert_eq!((meta.width, meta.height), (w, h));
        let clip = video.read_clip(&at(&[0.0, 0.5, 1.0])).unwrap();
        let got: Vec<u32> = clip
            .frames
            .iter()
            .map(|f| index_rotated(f, 64, 48, clockwise))
            .collect();
        assert_eq!(got, vec![0, 15, 30], "tag {tag}");
        // The same picture the ffmpeg tool shows (it applies the rotation by default).
        let f = &clip.frames[1];
        assert_eq!((f.width, f.height), (w, h));
        let out = support::run_ok(
            Command::new("ffmpeg")
                .args(["-v", "error", "-i", path.to_str().unwrap()])
                .args("-vf select=eq(n\\,15) -frames:v 1 -f rawvideo -pix_fmt rgb24 -".split(' ')),
        );
        assert_eq!(out.stdout.len(), f.data.len());
        let diff: u64 = out
            .stdout
            .iter()
            .zip(&f.data)
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = diff as f64 / f.data.len() as f64;
        assert!(
            mean < 4.0,
            "tag {tag}: mean difference {mean} from ffmpeg's picture"
        );
    }
}

#[test]
fn probe_reports_the_stream() {
    let meta = probe(&h264_bframes(), true, &Default::default()).unwrap();
    assert!(meta.container.contains("mp4"), "{}", meta.container);
    assert_eq!(meta.codec, "h264");
    assert_eq!((meta.width, meta.height, meta.rotation), (64, 48, 0));
    assert_eq!(meta.avg_fps, Some(30.0));
    assert_eq!(meta.nominal_fps, Some(30.0));
    assert!((meta.duration - 2.0).abs() < 1e-6, "{}", meta.duration);
    assert_eq!(meta.frame_count, Some(60));
    assert_eq!(meta.decoded_frames, Some(60));
    assert_eq!(meta.pix_fmt, "yuv420p");
    let k = meta.keyframe_interval.unwrap();
    assert!((k - 0.5).abs() < 1e-6, "keyframe every 15 frames: {k}");
    // Without --count nothing is decoded.
    assert_eq!(
        probe(&h264_bframes(), false, &Default::default())
            .unwrap()
            .decoded_frames,
        None
    );
    // Serialises for `vidcls probe`.
    let json = serde_json::to_value(&meta).unwrap();
    assert_eq!(json["codec"], "h264");

    // Matroska states no frame count; counting still works, all-intra MJPEG has key every frame.
    let meta = probe(&vp9_mkv_with_audio(), true, &Default::default()).unwrap();
    assert!(meta.container.contains("matroska"), "{}", meta.container);
    assert_eq!(meta.decoded_frames, Some(45));
    assert!((meta.duration - 1.5).abs() < 0.01, "{}", meta.duration);
    let meta = probe(&mjpeg_avi(), true, &Default::default()).unwrap();
    assert_eq!(
        (meta.codec.as_str(), meta.decoded_frames),
        ("mjpeg", Some(40))
    );
    assert!((meta.keyframe_interval.unwrap() - 0.04).abs() < 1e-6);
    assert!((meta.duration - 1.6).abs() < 1e-6, "{}", meta.duration);
    // Rotation, variable rate.
    let meta = probe(&rotated(90), false, &Default::default()).unwrap();
    assert_eq!((meta.width, meta.height, meta.rotation), (48, 64, 270));
    let meta = probe(&vfr_mkv(), true, &Default::default()).unwrap();
    assert_eq!(meta.decoded_frames, Some(30));
}

#[test]
fn an_open_video_can_move_to_another_thread() {
    let mut video = Video::open(&h264_bframes()).unwrap();
    let first = video.read_clip(&at(&[0.5])).unwrap();
    let handle = std::thread::spawn(move || video.read_clip(&at(&[1.0])).unwrap());
    let second = handle.join().unwrap();
    assert_eq!((indices(&first), indices(&second)), (vec![15], vec![30]));
}

/// Asserts that `err` names the file and mentions `what`.
fn assert_error_names(err: anyhow::Error, path: &Path, what: &str) {
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&path.display().to_string()),
        "no file name in: {msg}"
    );
    assert!(msg.to_lowercase().contains(what), "{what:?} not in: {msg}");
}

#[test]
fn bad_input_is_an_error_naming_the_file() {
    let dir = support::scratch("decode-bad-input");
    let missing = dir.join("missing.mp4");
    assert_error_names(
        Video::open(&missing).err().unwrap(),
        &missing,
        "no such file",
    );
    assert_error_names(
        probe(&missing, false, &Default::default()).err().unwrap(),
        &missing,
        "no such file",
    );

    let text = dir.join("notes.mp4");
    std::fs::write(&text, "this is not a video\n".repeat(50)).unwrap();
    assert_error_names(
        Video::open(&text).err().unwrap(),
        &text,
        "cannot open video",
    );

    let audio = dir.join("audio.m4a");
    ffmpeg_words(
        "-f lavfi -i sine=duration=0.5 -c:a aac",
        &[audio.to_str().unwrap()],
    );
    assert_error_names(
        Video::open(&audio).err().unwrap(),
        &audio,
        "no video stream",
    );

    // The index (moov) is at the end: cut it off.
    let whole = std::fs::read(h264_bframes()).unwrap();
    let truncated = dir.join("truncated.mp4");
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    assert_error_names(
        Video::open(&truncated).err().unwrap(),
        &truncated,
        "cannot open video",
    );

    // An index that promises frames whose data is missing: an error at decode time.
    let faststart = dir.join("faststart.mp4");
    faststart_copy(&h264_bframes(), &faststart);
    let whole = std::fs::read(&faststart).unwrap();
    let header_only = dir.join("header-only.mp4");
    let moov_end = find(&whole, b"mdat").unwrap() + 4;
    std::fs::write(&header_only, &whole[..moov_end]).unwrap();
    match Video::open(&header_only) {
        Err(e) => assert_error_names(e, &header_only, "header-only"),
        Ok(mut v) => {
            let err = v.read_clip(&at(&[0.5])).err().unwrap();
            assert_error_names(err, &header_only, "no decodable video frames");
        }
    }
}

#[test]
fn truncated_video_keeps_the_frames_it_has() {
    let dir = support::scratch("decode-truncated");
    let faststart = dir.join("faststart.mp4");
    faststart_copy(&h264_no_bframes(), &faststart);
    let whole = std::fs::read(&faststart).unwrap();
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &whole[..whole.len() * 6 / 10]).unwrap();
    let mut video = Video::open(&cut).unwrap();
    let clip = video.read_clip(&at(&[0.0, 0.1, 1.9])).unwrap();
    let got = indices(&clip);
    assert_eq!(&got[..2], &[0, 3]);
    assert!(
        got[2] > 3 && got[2] < 59,
        "the last frame that survived: {got:?}"
    );
    assert_eq!(clip.padded, 1);
}

#[test]
fn corrupt_packets_are_skipped_and_counted() {
    let dir = support::scratch("decode-corrupt");
    let mut bytes = std::fs::read(mjpeg_avi()).unwrap();
    // Zero the JPEG pictures of frames 10 and 11, from their start (FF D8 FF) to their end
    // marker (FF D9), leaving the AVI structure intact.
    let starts: Vec<usize> = (0..bytes.len() - 3)
        .filter(|&i| bytes[i..i + 3] == [0xFF, 0xD8, 0xFF])
        .collect();
    assert_eq!(starts.len(), 40);
    for &s in &starts[10..12] {
        let end = s + find(&bytes[s..], &[0xFF, 0xD9]).unwrap() + 2;
        bytes[s..end].fill(0);
    }
    let path = dir.join("corrupt.avi");
    std::fs::write(&path, &bytes).unwrap();
    let mut video = Video::open(&path).unwrap();
    let times: Vec<f64> = (0..40).map(|k| k as f64 / 25.0).collect();
    let clip = video.read_clip(&at(&times)).unwrap();
    let got = indices(&clip);
    // Frames 10 and 11 are gone: their moments show frame 9, the rest are intact.
    let mut want: Vec<u32> = (0..40).collect();
    want[10] = 9;
    want[11] = 9;
    assert_eq!(got, want);
    assert_eq!(video.warnings(), ["skipped 2 corrupt packets"]);
}

/// A damaged stretch of the container, not of a picture: the yuv4mpeg demuxer returns
/// INVALIDDATA for a frame header without its `FRAME` magic, and for every 80 bytes it reads
/// without finding the end of a header line. With no newline byte in the pictures, it resyncs
/// at the next header: one damaged header plus 5760 / 80 = 72 chunks of the picture after it.
#[test]
fn damaged_container_stretches_are_skipped_and_counted() {
    let dir = support::scratch("decode-damaged-y4m");
    let clean = dir.join("clean.y4m");
    encode(
        &clean,
        "80x48",
        "25",
        40,
        "-pix_fmt yuv420p -f yuv4mpegpipe",
    );
    let mut bytes = std::fs::read(&clean).unwrap();
    let headers: Vec<usize> = (0..bytes.len() - 6)
        .filter(|&i| &bytes[i..i + 6] == b"FRAME\n")
        .collect();
    assert_eq!(headers.len(), 40);
    for &h in &headers {
        let picture = h + 6..h + 6 + 80 * 48 * 3 / 2;
        bytes[picture]
            .iter_mut()
            .filter(|b| **b == b'\n')
            .for_each(|b| *b = b'\x0b');
    }
    bytes[headers[10]] = b'X';
    let path = dir.join("damaged.y4m");
    std::fs::write(&path, &bytes).unwrap();

    let mut video = Video::open(&path).unwrap();
    let times: Vec<f64> = (0..40).map(|k| k as f64 / 25.0).collect();
    let clip = video.read_clip(&at(&times)).unwrap();
    let mut want: Vec<u32> = (0..40).collect();
    want[10] = 9;
    assert_eq!(indices(&clip), want);
    assert_eq!(
        video.warnings(),
        ["skipped 73 damaged stretches of the container"]
    );
}

/// Stream-copies an MP4 with its index moved to the front.
fn faststart_copy(src: &Path, dst: &Path) {
    let (src, dst) = (src.to_str().unwrap(), dst.to_str().unwrap());
    ffmpeg_words(
        "",
        &["-i", src, "-c", "copy", "-movflags", "+faststart", dst],
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn only_the_frames_a_clip_shows_are_converted() {
    let path = h264_long();
    let mut video = Video::open(&path).unwrap();
    // Frames 15, 20, 25 and 29: the decoder goes through every frame from 0 to 30 (the one
    // after the last, to know where it ends), but only four become RGB.
    let clip = video.read_clip(&at(&[0.5, 0.667, 0.834, 0.967])).unwrap();
    assert_eq!(indices(&clip), vec![15, 20, 25, 29]);
    assert_eq!(video.frames_converted(), 4);
    assert!(video.frames_decoded() > 20, "{}", video.frames_decoded());
    // Times that one frame shows (30 fps sampled at 100 fps) convert it once.
    let mut video = Video::open(&path).unwrap();
    let mut mapped = 0;
    let clip = video
        .read_clip_with(&at(&[1.0, 1.01, 1.02, 1.04]), &mut |f: FrameRows<'_>| {
            mapped += 1;
            Ok(index(&f.into_frame()?))
        })
        .unwrap();
    assert_eq!(clip.frames, vec![30, 30, 30, 31]);
    assert_eq!((video.frames_converted(), mapped), (2, 2));
    assert_eq!(clip.times.len(), 4);
}

/// 3 frames of 10000 x 10000 MJPEG: a 1.8 MB file that holds 300 MB per frame once in RGB.
fn huge_mjpeg() -> PathBuf {
    fixture("huge.avi", |p| {
        ffmpeg_words(
            "-f lavfi -i color=c=red:s=10000x10000 -frames:v 3 -c:v mjpeg",
            &[p.to_str().unwrap()],
        )
    })
}

/// Peak RSS in bytes of `vidcls predict ARGS`, from `/usr/bin/time` (a package scripts/setup.sh
/// checks for; its %M is the child's `ru_maxrss` in KiB), with the run's records.
fn predict_peak_bytes(args: &[&str]) -> (f64, crate::support::Run) {
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "/usr/bin/time missing (Debian package `time`)"
    );
    let dir = support::scratch("decode-peak-rss");
    let out = dir.join(format!("rss-{}.txt", args.len()));
    let mut cmd = vec!["predict", "-f", "jsonl"];
    cmd.extend_from_slice(args);
    let run = support::vidcls_via(
        &["/usr/bin/time", "-f", "%M", "-o", out.to_str().unwrap()],
        &cmd,
    )
    .run();
    let kb: f64 = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("a number of KB from /usr/bin/time");
    (kb * 1024.0, run)
}

#[test]
fn huge_frames_are_refused_by_default_and_bounded_when_allowed() {
    let path = huge_mjpeg();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 8 << 20, "fixture is {size} bytes");
    let file = path.to_str().unwrap();

    let (_, refused) = predict_peak_bytes(&[file]);
    refused.assert_code(1);
    let records = refused.records();
    let err = support::expect_err(&records[0]);
    assert!(
        err.error.contains("10000x10000") && err.error.contains("--max-pixels"),
        "{}",
        err.error
    );

    // Before frames were resized as they were converted: 6.5 GB and 30 s; before they were
    // converted in bands of rows: 1.2 GB (one 300 MB RGB picture). A tiny input peaks at about
    // 0.65 GB here (libtorch, its CUDA libraries and the model); this one adds two decoded YUV
    // 4:2:0 pictures (the frame shown and the next, 150 MB each) and bands of about 1 MB of RGB.
    let (peak, run) = predict_peak_bytes(&["--max-pixels", "100000000", file]);
    run.assert_code(0);
    assert_eq!(run.results().len(), 1);
    assert!(peak < 1e9, "peak RSS {:.0} MB, not under 1 GB", peak / 1e6);
}

/// Plans of `count` times `stride` frames apart from frame `first`, each time placed at its
/// frame's stamp, at the earliest moment that still takes it, or at the last: the times that
/// land on B-frames and right after them.
fn plans_on_each_frame(p: &Probed, first: usize, stride: usize, count: usize) -> Vec<ClipPlan> {
    let eps = 0.5 * p.tick + 1e-6;
    let frames: Vec<usize> = (0..count).map(|i| first + i * stride).collect();
    let exact: Vec<f64> = frames.iter().map(|&k| p.times[k]).collect();
    let earliest: Vec<f64> = frames.iter().map(|&k| p.times[k] - eps + 1e-6).collect();
    let latest: Vec<f64> = frames
        .iter()
        .map(|&k| p.times[k + 1] - eps - 1e-6)
        .collect();
    [exact, earliest, latest].iter().map(|t| at(t)).collect()
}

#[test]
fn dropped_b_frames_never_change_the_frame_a_time_takes() {
    for path in [
        h264_pyramid("h264-pyramid.mp4", "normal"),
        h264_pyramid("h264-flat-b.mp4", "none"),
        hevc_pyramid(),
    ] {
        let probed = ffprobe(&path);
        assert_eq!(probed.times.len(), 300, "{}", path.display());
        let mut plans = Vec::new();
        // Far from the keyframe at 0 (a seek there decodes 100 frames first), and just after
        // the one at 5 s; every offset into a run of B-frames, every other and every third
        // frame.
        for first in (100..108).chain(150..156) {
            for stride in [2, 3, 5] {
                plans.extend(plans_on_each_frame(&probed, first, stride, 6));
            }
        }
        let mut decoded = [0u64; 2];
        for (drop, total) in [true, false].into_iter().zip(&mut decoded) {
            for plan in &plans {
                let mut video = Video::open(&path).unwrap();
                video.drop_unused_frames(drop);
                let clip = video.read_clip(plan).unwrap();
                let want: Vec<u32> = plan
                    .times
                    .iter()
                    .map(|t| expected_index(&probed, *t))
                    .collect();
                assert_eq!(
                    indices(&clip),
                    want,
                    "{} dropping {drop}, times {:?}",
                    path.display(),
                    plan.times
                );
                *total += video.frames_decoded();
            }
        }
        // The reads above did drop frames (else they would prove nothing).
        assert!(
            decoded[0] < decoded[1],
            "{}: {} frames decoded dropping, {} not",
            path.display(),
            decoded[0],
            decoded[1]
        );
        // One video reading them all in turn, forward and back, and then clips that each
        // start a frame or two after the previous one ends (read on without a seek).
        let next_ones = (100..160).step_by(7).flat_map(|first| {
            let gap = 1 + first % 2;
            plans_on_each_frame(&probed, first + gap, 3, 2)
        });
        let plans: Vec<ClipPlan> = plans
            .iter()
            .chain(plans.iter().rev())
            .cloned()
            .chain(next_ones)
            .collect();
        let mut video = Video::open(&path).unwrap();
        for plan in &plans {
            let clip = video.read_clip(plan).unwrap();
            let want: Vec<u32> = plan
                .times
                .iter()
                .map(|t| expected_index(&probed, *t))
                .collect();
            assert_eq!(indices(&clip), want, "{} in turn", path.display());
        }
        check_against_ffprobe(&path, &spec(8, Some(15.0), 2, 10));
        check_against_ffprobe(&path, &spec(16, None, 1, 3));
    }
}

#[test]
fn a_clip_far_from_its_keyframe_decodes_fewer_frames() {
    let path = h264_pyramid("h264-pyramid.mp4", "normal");
    let times = [4.0, 4.5, 4.9];
    let mut decoded = Vec::new();
    for drop in [true, false] {
        let mut video = Video::open(&path).unwrap();
        video.drop_unused_frames(drop);
        let clip = video.read_clip(&at(&times)).unwrap();
        assert_eq!(indices(&clip), vec![120, 135, 147], "dropping {drop}");
        decoded.push(video.frames_decoded());
    }
    // 148 frames from the keyframe at 0 to 4.9 s (plus the decoder's delay); about half of
    // them are non-reference B-frames no time takes.
    assert!(
        decoded[0] * 10 < decoded[1] * 7,
        "{} frames decoded dropping, {} not",
        decoded[0],
        decoded[1]
    );
    // Reading every frame (frame times, counting) drops none.
    let mut video = Video::open(&path).unwrap();
    assert_eq!(video.frame_times().unwrap().len(), 300);
    assert_eq!(video.frames_decoded(), 300);
    assert_eq!(
        probe(&path, true, &Default::default())
            .unwrap()
            .decoded_frames,
        Some(300)
    );
}
