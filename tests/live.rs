//! Inputs that are not plain files, and what opening any input may do: URLs, `pipe:`, the
//! protocol and demuxer allow-lists. Everything runs on the loopback interface, with the ffmpeg
//! command-line tool as the sender.

use crate::support::{expect_err, ffmpeg, predict, scratch};
use std::path::{Path, PathBuf};

/// A 2-second MPEG-TS clip and, beside it, the hostile inputs that name it: an HLS playlist
/// and an ffconcat list, each saved as `.mp4`.
fn hostile(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch(name);
    let seg = dir.join("seg.ts");
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
        "mpegts",
        seg.to_str().unwrap(),
    ]);
    let hls = dir.join("upload.mp4");
    std::fs::write(
        &hls,
        format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nfile://{}\n#EXT-X-ENDLIST\n",
            seg.display()
        ),
    )
    .unwrap();
    let list = dir.join("list.mp4");
    std::fs::write(&list, "ffconcat version 1.0\nfile seg.ts\n").unwrap();
    (seg, hls, list)
}

/// The one record of a run that must fail on `input`, with its error text.
fn refused(input: &str, extra: &[&str]) -> String {
    let mut args = vec!["-f", "jsonl", "-q", "-k", "1"];
    args.extend(extra);
    args.push(input);
    let run = predict(&args).expect_code(1);
    let records = run.records();
    assert_eq!(records.len(), 1, "{}", run.stdout());
    let e = expect_err(&records[0]);
    assert_eq!(e.path, input);
    e.error.clone()
}

#[test]
fn playlists_and_lists_saved_as_media_are_refused() {
    let (seg, hls, list) = hostile("live-hostile");
    let hls_err = refused(hls.to_str().unwrap(), &[]);
    assert!(
        hls_err.contains("HLS playlist") && hls_err.contains("--allow-playlists"),
        "{hls_err}"
    );
    let list_err = refused(list.to_str().unwrap(), &[]);
    assert!(
        list_err.contains("ffconcat list") && list_err.contains("--allow-playlists"),
        "{list_err}"
    );
    // The media file itself opens; and with --allow-playlists the user may follow them.
    let dir = seg.parent().unwrap();
    let run = predict(&["-f", "jsonl", "-q", "--allow-playlists"])
        .args([&seg, &hls, &list])
        .current_dir(dir)
        .ok();
    assert_eq!(run.results().len(), 3);
}

#[test]
fn file_reading_protocols_are_refused() {
    let (seg, _, _) = hostile("live-protocols");
    let seg = seg.to_str().unwrap();
    for input in [
        format!("concat:{seg}|{seg}"),
        format!("subfile:,,start,0,end,0,:{seg}"),
        format!("file:{seg}"),
    ] {
        let err = refused(&input, &[]);
        let scheme = input.split(':').next().unwrap();
        assert!(
            err.contains(&format!("the {scheme}: protocol is not allowed"))
                && err.contains("--protocols"),
            "{input}: {err}"
        );
    }
}

trait InDir {
    fn current_dir(&mut self, dir: &Path) -> &mut Self;
}

impl InDir for crate::support::Vidcls {
    fn current_dir(&mut self, dir: &Path) -> &mut Self {
        self.command().current_dir(dir);
        self
    }
}

/// `python -m http.server` on a free loopback port serving `dir`; killed when dropped.
pub struct HttpServer {
    child: std::process::Child,
    pub port: u16,
}

impl HttpServer {
    pub fn serve(dir: &Path) -> HttpServer {
        use std::io::BufRead;
        let mut child = crate::support::python()
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python -m http.server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = line
            .split("port ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        HttpServer { child, port }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn finite_urls_and_pipes_work_with_every_predict_mode() {
    let (seg, _, _) = hostile("live-finite");
    let dir = seg.parent().unwrap();
    let mp4 = dir.join("a.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=128x96:rate=10",
        "-t",
        "4",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        mp4.to_str().unwrap(),
    ]);
    let server = HttpServer::serve(dir);
    let url = server.url("a.mp4");
    let local = predict(&[
        "-f",
        "jsonl",
        "-q",
        "--timeline",
        "--window",
        "1",
        "--all-scores",
    ])
    .arg(&mp4)
    .ok()
    .results();
    let remote = predict(&[
        "-f",
        "jsonl",
        "-q",
        "--timeline",
        "--window",
        "1",
        "--all-scores",
    ])
    .arg(&url)
    .ok()
    .results();
    assert_eq!(remote.len(), 4);
    for (l, r) in local.iter().zip(&remote) {
        assert_eq!(r.path, url);
        assert_eq!((&l.scores, &l.frame_times), (&r.scores, &r.frame_times));
    }
    let whole = predict(&["-f", "jsonl", "-q"]).arg(&url).ok().results();
    assert_eq!(whole.len(), 1);
    let segs = predict(&[
        "-f",
        "jsonl",
        "-q",
        "--segments",
        "--window",
        "1",
        "--seg-on",
        "0",
        "--seg-off",
        "0",
    ])
    .arg(&url)
    .ok()
    .records();
    assert!(!segs.is_empty());
    let missing = refused(&server.url("nothing.mp4"), &[]);
    assert!(missing.contains("404"), "{missing}");
    // pipe: is a byte stream on stdin (and `-` still means paths on stdin).
    let mut cmd = predict(&["-f", "jsonl", "-q", "pipe:"]);
    cmd.command().stdin(std::fs::File::open(&seg).unwrap());
    let piped = cmd.ok().results();
    assert_eq!(piped.len(), 1);
    assert_eq!(piped[0].path, "pipe:");
    let direct = predict(&["-f", "jsonl", "-q"]).arg(&seg).ok().results();
    assert_eq!(piped[0].top_k, direct[0].top_k);
}
