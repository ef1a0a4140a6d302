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
