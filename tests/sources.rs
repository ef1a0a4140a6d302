//! Which demuxers may read an input (media ones only, unless `--allow-playlists`), and raw
//! elementary streams read like the same frames in a container.

use crate::live::HttpServer;
use crate::support::{expect_err, ffmpeg, fixture, predict, scratch, Key};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vidcls::report::{Stage, VideoResult};

/// A 2-second DASH presentation made by ffmpeg (`m.mpd` and its segments), and beside it a
/// hostile manifest saved as `upload.mp4` that names its segments by absolute `file:` URLs.
fn dash(name: &str) -> PathBuf {
    let dir = scratch(name);
    let mpd = dir.join("m.mpd");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=128x96:rate=10",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "dash",
        mpd.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&mpd).unwrap();
    let base = format!("file:{}/", dir.display());
    let hostile = text
        .replace("initialization=\"", &format!("initialization=\"{base}"))
        .replace("media=\"", &format!("media=\"{base}"));
    assert_ne!(hostile, text, "no segment names in {text}");
    std::fs::write(dir.join("upload.mp4"), hostile).unwrap();
    dir
}

/// The one record of `predict ARGS INPUT` in `dir`, which must be an open error naming
/// `input`; returns its text.
fn refused_in(dir: &Path, input: &str, extra: &[&str]) -> String {
    let mut args = vec!["-f", "jsonl", "-q", "-k", "1"];
    args.extend(extra);
    args.push(input);
    let mut cmd = predict(&args);
    cmd.command().current_dir(dir);
    let run = cmd.expect_code(1);
    let records = run.records();
    assert_eq!(records.len(), 1, "{}", run.stdout());
    let e = expect_err(&records[0]);
    assert_eq!((e.path.as_str(), e.stage), (input, Stage::Open));
    assert!(e.error.contains(input), "{}", e.error);
    e.error.clone()
}

/// Asserts that `predict` refuses `input` as a list format and says which flag permits it.
fn assert_list_refused(dir: &Path, input: &str, extra: &[&str], what: &str) {
    let err = refused_in(dir, input, extra);
    assert!(
        err.contains(what) && err.contains("--allow-playlists"),
        "{input} {extra:?}: {err}"
    );
}

#[test]
fn dash_is_refused_by_content_and_by_input_format() {
    let dir = dash("sources-dash");
    for input in ["m.mpd", "upload.mp4"] {
        assert_list_refused(&dir, input, &[], "DASH manifest");
        for name in ["dash", "DASH"] {
            assert_list_refused(&dir, input, &["--input-format", name], "dash demuxer");
        }
    }
    // The manifest is a working one: the flag lets it through.
    let mut cmd = predict(&["-f", "jsonl", "-q", "-k", "1", "--allow-playlists"]);
    cmd.args(["m.mpd", "upload.mp4"])
        .command()
        .current_dir(&dir);
    assert_eq!(cmd.ok().results().len(), 2);
    let mut cmd = predict(&["-f", "jsonl", "-q", "-k", "1", "--allow-playlists"]);
    cmd.args(["--input-format", "dash", "m.mpd"])
        .command()
        .current_dir(&dir);
    assert_eq!(cmd.ok().results().len(), 1);
}

#[test]
fn imf_compositions_are_refused_by_content_and_by_input_format() {
    let dir = scratch("sources-imf");
    // Enough of a composition playlist for FFmpeg's probe; its track file is any file.
    let cpl = "<?xml version=\"1.0\"?>\n<CompositionPlaylist \
               xmlns=\"http://www.smpte-ra.org/schemas/2067-3/2016\">\
               <Id>urn:uuid:00000000-0000-0000-0000-000000000001</Id>\
               <ContentTitle>x</ContentTitle><EditRate>25 1</EditRate>\
               </CompositionPlaylist>\n";
    std::fs::write(dir.join("CPL.xml"), cpl).unwrap();
    std::fs::write(dir.join("upload.mp4"), cpl).unwrap();
    // FFmpeg 5.1 never probes IMF (its demuxer is experimental): by content it is no video.
    for input in ["CPL.xml", "upload.mp4"] {
        refused_in(&dir, input, &[]);
        assert_list_refused(&dir, input, &["--input-format", "imf"], "imf demuxer");
    }
}

/// An SDP description of an H.264 RTP stream on a loopback UDP port.
const SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=video 15004 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";

#[test]
fn sdp_is_refused_from_files_and_urls() {
    let dir = scratch("sources-sdp");
    std::fs::write(dir.join("s.sdp"), SDP).unwrap();
    std::fs::write(dir.join("upload.mp4"), SDP).unwrap();
    for input in ["s.sdp", "upload.mp4"] {
        assert_list_refused(&dir, input, &[], "SDP session description");
        assert_list_refused(&dir, input, &["--input-format", "sdp"], "sdp demuxer");
    }
    // Served over HTTP it would make FFmpeg bind the UDP port it names and wait for RTP.
    let server = HttpServer::serve(&dir);
    for name in ["s.sdp", "upload.mp4"] {
        let url = server.url(name);
        let t0 = Instant::now();
        let err = refused_in(&dir, &url, &[]);
        assert!(
            err.contains("not a media stream") && err.contains("--allow-playlists"),
            "{err}"
        );
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    }
}

#[test]
fn network_dash_is_read_by_default() {
    let dir = dash("sources-dash-http");
    let server = HttpServer::serve(&dir);
    let run = predict(&["-f", "jsonl", "-q", "-k", "1"])
        .arg(server.url("m.mpd"))
        .ok();
    assert_eq!(run.results().len(), 1);
}

/// Elementary streams: the raw file's name, its muxer (with the headers Matroska keeps apart
/// put back into the stream where needed), and the encoder arguments of the
/// Matroska file it is copied out of (10 s, 250 frames at 25 fps; one keyframe for H.264).
const ELEMENTARY: &[(&str, &str, &str)] = &[
    ("x.h264", "h264", "-c:v libx264 -g 250"),
    (
        "x.hevc",
        "hevc",
        "-c:v libx265 -x265-params log-level=error",
    ),
    ("x.m2v", "mpeg2video", "-c:v mpeg2video -b:v 200k"),
    // MPEG-1 states a nominal bitrate FFmpeg turns into a wrong duration.
    ("x.m1v", "mpeg1video", "-c:v mpeg1video -b:v 200k"),
    ("x.mjpeg", "mjpeg", "-c:v mjpeg"),
    ("x.ivf", "ivf", "-c:v libvpx-vp9"),
    ("x.obu", "obu", "-c:v libaom-av1 -cpu-used 8"),
    ("x.m4v", "m4v -bsf:v dump_extra", "-c:v mpeg4"),
];

/// `x.mkv` encoded with `codec` and the elementary stream `raw` copied out of it by `muxer`.
fn elementary(raw: &str, muxer: &str, codec: &str) -> (PathBuf, PathBuf) {
    let src = "testsrc=size=64x64:rate=25";
    let key = Key::new().ffmpeg().args(&[src, codec, muxer, raw]);
    let dir = fixture(&format!("sources-{raw}"), &key, |dir| {
        let mkv = dir.join("x.mkv");
        let mut args = vec!["-f", "lavfi", "-i", src, "-frames:v", "250"];
        args.extend(codec.split_whitespace());
        args.extend(["-pix_fmt", "yuv420p", mkv.to_str().unwrap()]);
        ffmpeg(&args);
        let out = dir.join(raw);
        let (mkv, out) = (mkv.to_str().unwrap(), out.to_str().unwrap());
        let mut args = vec!["-i", mkv, "-c", "copy", "-f"];
        args.extend(muxer.split_whitespace());
        args.push(out);
        ffmpeg(&args);
    });
    (dir.join(raw), dir.join("x.mkv"))
}

/// `predict` of `paths` with `clips` clips and every score: per path, the result or the
/// record's text (one record per path, or the run's output when a path has none).
fn predicted(paths: &[&Path], clips: &str) -> BTreeMap<PathBuf, Result<VideoResult, String>> {
    let args = [
        "-f",
        "jsonl",
        "-q",
        "--all-scores",
        "-b",
        "1",
        "--clips",
        clips,
    ];
    let run = predict(&args).args(paths).run();
    let mut by_path: BTreeMap<PathBuf, Result<VideoResult, String>> = BTreeMap::new();
    for record in run.records() {
        let path = PathBuf::from(record.path());
        let value = match record {
            vidcls::report::Record::Ok(r) => Ok(r),
            other => Err(format!("{other:?}")),
        };
        assert!(
            by_path.insert(path.clone(), value).is_none(),
            "two records for {}",
            path.display()
        );
    }
    for p in paths {
        by_path
            .entry(p.to_path_buf())
            .or_insert_with(|| Err(format!("no record; output:\n{}", run.stdout())));
    }
    by_path
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

/// How `got` differs from `want` (duration, frame times, scores), if it does.
fn difference(got: &VideoResult, want: &VideoResult) -> Option<String> {
    let times = |r: &VideoResult| r.frame_times.concat();
    let scores = |r: &VideoResult| r.scores.clone().unwrap_or_default();
    let same = (got.duration - want.duration).abs() < 1e-6
        && got.top_k[0].label == want.top_k[0].label
        && close(&times(got), &times(want), 1e-6)
        && close(&scores(got), &scores(want), 1e-6);
    (!same).then(|| {
        format!(
            "duration {} vs {}, top-1 {} vs {}, frame times {:?} vs {:?}",
            got.duration,
            want.duration,
            got.top_k[0].label,
            want.top_k[0].label,
            got.frame_times,
            want.frame_times
        )
    })
}

/// The centre clip (5 s in: reached by skipping ahead) and three clips (the first read from
/// the start) of each elementary stream are the frames its Matroska file gives. One `predict`
/// per clip count reads every file: each video is decoded on its own and, at `-b 1`, goes
/// through the model alone, so its record is what a run on it alone gives (and the model
/// loads twice, not 32 times).
#[test]
fn elementary_streams_are_read_like_their_container() {
    let pairs: Vec<(&str, PathBuf, PathBuf)> = ELEMENTARY
        .iter()
        .map(|(raw, muxer, codec)| {
            let (raw_path, mkv) = elementary(raw, muxer, codec);
            (*raw, raw_path, mkv)
        })
        .collect();
    let files: Vec<&Path> = pairs
        .iter()
        .flat_map(|(_, raw, mkv)| [raw.as_path(), mkv.as_path()])
        .collect();
    let mut wrong = Vec::new();
    for clips in ["1", "3"] {
        let got = predicted(&files, clips);
        for (raw, raw_path, mkv) in &pairs {
            let want = got[mkv].clone().unwrap_or_else(|e| panic!("{e}"));
            match &got[raw_path] {
                Ok(r) => wrong
                    .extend(difference(r, &want).map(|d| format!("{raw} ({clips} clips): {d}"))),
                Err(record) => wrong.push(format!("{raw}: {record}")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
