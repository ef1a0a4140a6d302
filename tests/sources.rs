//! Which demuxers may read an input (media ones only, unless `--allow-playlists`).

use crate::live::HttpServer;
use crate::support::{expect_err, ffmpeg, predict, scratch};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vidcls::report::Stage;

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
