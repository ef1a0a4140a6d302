//! `predict --format html`: a well-formed, self-contained page with one entry per input (errors
//! included) that escapes what it shows, and that a browser renders without console messages.

use crate::support::{lavfi_video, predict, python, root, scratch};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What tests/python/html_check.py reads from a page.
#[derive(Debug, Deserialize)]
struct Page {
    errors: Vec<String>,
    articles: usize,
    failed: usize,
    scripts: usize,
    urls: Vec<String>,
    headings: Vec<String>,
    counts: std::collections::HashMap<String, usize>,
}

fn check(page: &Path) -> Page {
    let out = python()
        .arg(root().join("tests/python/html_check.py"))
        .arg(page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn video(name: &str, source: &str, seconds: &str) -> PathBuf {
    lavfi_video("html", name, source, seconds, "libx264")
}

/// A path whose text is a script element: a folder `<script>alert(1)<` holding `script>.mp4`.
const HOSTILE: &str = "<script>alert(1)</script>.mp4";

/// A page over: a video, the same video under a hostile name, a file that is no video and a
/// missing file (exit 1: two inputs failed).
fn batch_page(dir: &Path) -> PathBuf {
    let clip = video("testsrc.mp4", "testsrc=size=160x120:rate=10", "3");
    std::fs::create_dir_all(dir.join("<script>alert(1)<")).unwrap();
    std::fs::copy(&clip, dir.join(HOSTILE)).unwrap();
    std::fs::write(dir.join("notes.mp4"), "not a video").unwrap();
    let page = dir.join("report.html");
    predict(&["-q", "-f", "html", "-o"])
        .arg(&page)
        .arg(&clip)
        .arg(dir.join(HOSTILE))
        .arg(dir.join("notes.mp4"))
        .arg(dir.join("missing.mp4"))
        .expect_code(1);
    page
}

#[test]
fn html_is_well_formed_with_one_entry_per_input() {
    let dir = scratch("html-batch");
    let page = check(&batch_page(&dir));
    assert!(page.errors.is_empty(), "{:?}", page.errors);
    assert_eq!((page.articles, page.failed), (4, 2));
    assert_eq!(page.scripts, 1, "only the page's own script");
    // The hostile name reads back as text, exactly as given.
    let shown = format!("2. {}", dir.join(HOSTILE).display());
    assert_eq!(page.headings[1], shown);
    assert!(page.headings[2].ends_with("notes.mp4") && page.headings[3].ends_with("missing.mp4"));
    // 8 thumbnails for each of the two classified inputs.
    assert_eq!(page.counts["img"], 16);
}

#[test]
fn html_is_self_contained() {
    let dir = scratch("html-self-contained");
    let path = batch_page(&dir);
    let text = std::fs::read_to_string(&path).unwrap();
    for remote in ["http://", "https://", "src=\"//", "href=\"//", "url("] {
        assert!(!text.contains(remote), "{remote} in the page");
    }
    let page = check(&path);
    for url in &page.urls {
        assert!(
            url.starts_with('#') || url.starts_with("data:image/jpeg;base64,"),
            "{}",
            &url[..url.len().min(60)]
        );
    }
    assert!(text.contains("<img loading=\"lazy\""));
}

#[test]
fn html_timeline_charts_windows_and_segments() {
    let clip = video("moving.mp4", "testsrc2=size=160x120:rate=10", "6");
    let dir = scratch("html-timeline");
    let page = dir.join("t.html");
    predict(&[
        "-q",
        "-f",
        "html",
        "--segments",
        "--seg-on",
        "0",
        "--seg-off",
        "0",
    ])
    .args(["--min-duration", "0", "--window", "2", "-o"])
    .arg(&page)
    .arg(&clip)
    .ok();
    let p = check(&page);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.counts["svg"], 1);
    assert_eq!(p.counts["figure"], 3, "a picture per 2-s window of 6 s");
    assert_eq!(p.counts["img"], 3);
    assert_eq!(
        p.counts["polyline"], 5,
        "the five top classes, one line each"
    );
    assert!(
        p.counts["rect"] >= 2,
        "segments drawn (every label holds at on = 0)"
    );
}

/// Renders `page` with scripts/screenshot_report.sh into `png`.
fn screenshot(page: &Path, png: &Path) -> std::process::Output {
    Command::new(root().join("scripts/screenshot_report.sh"))
        .arg(page)
        .arg(png)
        .arg("1000,800")
        .output()
        .unwrap()
}

/// The distinct RGB colours of a PNG, decoded by ffmpeg.
fn colours(png: &Path) -> usize {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(png)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(out.status.success() && !out.stdout.is_empty());
    let mut seen: Vec<[u8; 3]> = out
        .stdout
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

#[test]
fn a_browser_renders_the_page_without_console_messages() {
    let dir = scratch("html-browser");
    let page = batch_page(&dir);
    let png = dir.join("report.png");
    let out = screenshot(&page, &png);
    assert!(
        out.status.success(),
        "scripts/screenshot_report.sh failed (chromium comes from scripts/setup.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(colours(&png) > 100, "the screenshot is (nearly) blank");
    // The check itself: a page whose script fails is refused.
    let broken = dir.join("broken.html");
    std::fs::write(
        &broken,
        "<!DOCTYPE html><html><body><p>x</p><script>missing()</script></body></html>",
    )
    .unwrap();
    let out = screenshot(&broken, &dir.join("broken.png"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Uncaught ReferenceError"));
}

#[test]
fn hostile_labels_are_text_in_the_page() {
    let dir = scratch("html-hostile-labels");
    let model = crate::annotate::hostile_label_model(&dir);
    let page = dir.join("p.html");
    let clip = video("testsrc.mp4", "testsrc=size=160x120:rate=10", "3");
    predict(&["-q", "-f", "html", "-k", "8", "-m"])
        .arg(&model)
        .arg("-o")
        .arg(&page)
        .arg(&clip)
        .ok();
    let p = check(&page);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert!(!p.counts.contains_key("b"), "a label became an element");
    let text = std::fs::read_to_string(&page).unwrap();
    for label in [
        "&lt;b&gt;bold&lt;/b&gt;",
        "it&#39;s: 100%",
        "&quot;q&quot;",
        "%{pts}",
    ] {
        assert!(
            text.contains(&format!("<td>{label}</td>")),
            "{label} not shown"
        );
    }
}
