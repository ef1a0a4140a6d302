//! Files vidcls writes: never through a link it did not make, never over a file that appeared
//! during the run, never left half written or behind after a signal.

use crate::support::{lavfi_video, predict, run_ok, scratch, vidcls};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn video() -> PathBuf {
    lavfi_video("files", "a.mp4", "testsrc=s=64x64:r=10", "2", "libx264")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Waits (up to 60 s) until `dir` holds a file whose name ends with `.tmp`.
fn wait_for_temporary(dir: &Path) -> Option<PathBuf> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        let found = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".tmp"));
        if found.is_some() {
            return found;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn output_onto_a_symlink_is_refused_and_force_replaces_the_link_not_its_target() {
    let dir = scratch("files-symlink");
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let v = video();
    for format in ["jsonl", "csv", "text", "json", "html"] {
        let link = dir.join(format!("out.{format}"));
        symlink(&victim, &link).unwrap();
        let run = predict(&["-q", "-f", format, "-o", s(&link), s(&v)]).expect_code(2);
        assert!(run.stderr().contains("symbolic link"), "{}", run.stderr());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        predict(&["-q", "-f", format, "-o", s(&link), "--force", s(&v)]).ok();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(meta.is_file(), "{format}: the link was written through");
        // A dangling link does not create its target.
        let dangling = dir.join(format!("dangling.{format}"));
        let target = dir.join(format!("made-{format}"));
        symlink(&target, &dangling).unwrap();
        predict(&["-q", "-f", format, "-o", s(&dangling), s(&v)]).expect_code(2);
        assert!(
            !target.exists(),
            "{format}: -o created the target of a link"
        );
    }
}

#[test]
fn a_file_that_appears_at_the_output_during_the_run_is_not_replaced() {
    let dir = scratch("files-race");
    let v = video();
    let out = dir.join("out.json");
    let inputs: Vec<&str> = std::iter::repeat_n(s(&v), 20).collect();
    let child = predict(&["-q", "-f", "json", "-o", s(&out), "--clips", "8"])
        .args(&inputs)
        .command()
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tmp = wait_for_temporary(&dir).expect("no temporary file beside -o");
    let mode = std::fs::metadata(&tmp).map(|m| m.permissions().mode() & 0o777);
    std::fs::write(&out, "theirs\n").unwrap();
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(2), "the run did not notice");
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(err.contains("appeared during the run"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "theirs\n");
    assert_eq!(names(&dir), ["out.json"], "temporary file left");
    if let Ok(mode) = mode {
        assert_eq!(mode, 0o600, "temporary file readable by others");
    }
}

#[test]
fn resume_refuses_a_file_that_is_not_vidcls_output() {
    let dir = scratch("files-resume");
    let v = video();
    let notes = dir.join("notes.csv");
    let text = "name,amount\nrent,100\nlast line without newline";
    std::fs::write(&notes, text).unwrap();
    let run = predict(&["-q", "-f", "csv", "--resume", "-o", s(&notes), s(&v)]).expect_code(2);
    assert!(
        run.stderr().contains("not vidcls's CSV header"),
        "{}",
        run.stderr()
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), text);
    let log = dir.join("log.jsonl");
    std::fs::write(&log, "{\"time\": 1}\n").unwrap();
    predict(&["-q", "-f", "jsonl", "--resume", "-o", s(&log), s(&v)]).expect_code(2);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "{\"time\": 1}\n");
    // Its own output resumes; through a link it does not.
    let ours = dir.join("ours.csv");
    predict(&["-q", "-f", "csv", "-o", s(&ours), s(&v)]).ok();
    predict(&["-q", "-f", "csv", "--resume", "-o", s(&ours), s(&v)]).ok();
    let link = dir.join("link.csv");
    symlink(&ours, &link).unwrap();
    let run = predict(&["-q", "-f", "csv", "--resume", "-o", s(&link), s(&v)]).expect_code(2);
    assert!(run.stderr().contains("symbolic link"), "{}", run.stderr());
}

#[test]
fn the_stdin_copy_lives_in_a_private_folder_and_goes_away() {
    let tmp = scratch("files-stdin");
    let bytes = std::fs::read(video()).unwrap();
    let mut child = predict(&["-q", "-f", "jsonl", "pipe:"])
        .command()
        .env("TMPDIR", &tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, &bytes[..bytes.len() / 2]).unwrap();
    // The copy is being written: look at it before the rest comes.
    let t0 = Instant::now();
    while std::fs::read_dir(&tmp).unwrap().count() == 0 && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let meta = std::fs::symlink_metadata(&entries[0]).unwrap();
    assert!(
        meta.is_dir(),
        "the copy of stdin is not in a folder of its own"
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    std::io::Write::write_all(&mut stdin, &bytes[bytes.len() / 2..]).unwrap();
    drop(stdin);
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success());
    assert_eq!(String::from_utf8_lossy(&done.stdout).lines().count(), 1);
    assert!(names(&tmp).is_empty(), "left behind: {:?}", names(&tmp));
}

#[test]
fn annotate_interrupted_leaves_no_temporary_file() {
    let dir = scratch("files-annotate");
    let v = lavfi_video(
        "files",
        "long.mp4",
        "testsrc=s=320x240:r=30",
        "30",
        "libx264",
    );
    let out = dir.join("out.mp4");
    let mut child = vidcls(&["annotate", s(&v), "-o", s(&out), "-q"])
        .command()
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_temporary(&dir).expect("annotate made no temporary file");
    run_ok(Command::new("kill").args(["-INT", &child.id().to_string()]));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(names(&dir).is_empty(), "left behind: {:?}", names(&dir));
}

#[test]
fn watch_does_not_overwrite_an_output_without_force() {
    let dir = scratch("files-watch");
    let out = dir.join("live.jsonl");
    std::fs::write(&out, "keep me\n").unwrap();
    let v = video();
    let run = vidcls(&["watch", s(&v), "-o", s(&out), "--window", "1"]).expect_code(2);
    assert!(run.stderr().contains("--force"), "{}", run.stderr());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me\n");
    vidcls(&["watch", s(&v), "-o", s(&out), "--window", "1", "--force"]).ok();
    assert!(std::fs::read_to_string(&out).unwrap().contains("\"top_k\""));
}
