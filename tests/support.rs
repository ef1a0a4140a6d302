//! Shared helpers: paths, fixture videos made with the ffmpeg CLI, the Python environment.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built `vidcls` binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vidcls"))
}

/// The Python of scripts/setup.sh's environment (VIDCLS_PYTHON overrides).
pub fn python() -> Command {
    let py = std::env::var_os("VIDCLS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"));
    assert!(
        py.exists(),
        "{} missing: run scripts/setup.sh",
        py.display()
    );
    Command::new(py)
}

/// A scratch directory under target/, unique per test name, emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target/test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A directory shared by tests for fixtures that are costly to make; made once per run.
pub fn shared_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = root().join("target/test-fixtures");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// Runs a command, panicking with its stderr if it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `ffmpeg -y -v error ARGS...`, panicking on failure.
pub fn ffmpeg(args: &[&str]) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-y", "-nostdin", "-v", "error"]).args(args);
    run_ok(&mut cmd);
}

/// A generated test video `shared_dir()/group/name` (lavfi `source`, `seconds` long, encoded
/// with `codec` in yuv420p), made once per checkout: written under a temporary name, then renamed.
pub fn lavfi_video(group: &str, name: &str, source: &str, seconds: &str, codec: &str) -> PathBuf {
    let dir = shared_dir().join(group);
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    if !p.exists() {
        let tmp = dir.join(format!("tmp-{name}"));
        let t = tmp.to_str().unwrap();
        ffmpeg(&[
            "-f", "lavfi", "-i", source, "-t", seconds, "-c:v", codec, "-pix_fmt", "yuv420p", t,
        ]);
        std::fs::rename(&tmp, &p).unwrap();
    }
    p
}

/// Spawns `vidcls ARGS` and waits (up to 60 s) until `out` holds `lines` lines: a run caught
/// in the middle, for kill and signal tests.
pub fn spawn_until_lines(args: &[&str], out: &Path, lines: usize) -> std::process::Child {
    let child = bin()
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(out).map_or(0, |s| s.lines().count()) < lines
        && t0.elapsed() < std::time::Duration::from_secs(60)
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child
}

/// Asserts a finished command's exit code, showing its stderr when it differs.
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
