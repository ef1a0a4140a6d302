//! Shared helpers: paths, the one fixture cache, the one way to run vidcls and read its records.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use vidcls::report::{FileError, Record, RunSummary, VideoResult};

/// Repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of scripts/setup.sh's environment (VIDCLS_PYTHON overrides).
pub fn python_path() -> PathBuf {
    let py = std::env::var_os("VIDCLS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"));
    assert!(
        py.exists(),
        "{} missing: run scripts/setup.sh",
        py.display()
    );
    py
}

/// A command running the Python of scripts/setup.sh's environment.
pub fn python() -> Command {
    Command::new(python_path())
}

/// A scratch directory under target/, unique per test name, emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target/test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The built `vidcls` binary as a plain command (tests/motion.rs and tests/package.rs; the rest
/// use `vidcls`).
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vidcls"))
}

/// Asserts a finished command's exit code, showing its stderr when it differs (for commands
/// built with `bin`; `Vidcls::expect_code` does this for the rest).
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `vidcls ARGS` caught in the middle: see `Vidcls::spawn_until_lines`.
pub fn spawn_until_lines(args: &[&str], out: &Path, lines: usize) -> std::process::Child {
    vidcls(args).spawn_until_lines(out, lines)
}

/// `target/test-fixtures`, for tests/motion.rs (the rest use `fixture`).
pub fn shared_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = fixture_root();
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// Where the fixture cache keeps what it made.
fn fixture_root() -> PathBuf {
    root().join("target/test-fixtures")
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

/// Runs `ffmpeg -y -nostdin -v error ARGS...`, panicking on failure.
pub fn ffmpeg<S: AsRef<OsStr>>(args: &[S]) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-y", "-nostdin", "-v", "error"]).args(args);
    run_ok(&mut cmd);
}

// ---------------------------------------------------------------------------------------------
// The fixture cache

/// sha256 of a file, in hex.
pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first line of `ffmpeg -version`: fixtures encoded by another FFmpeg are made again.
fn ffmpeg_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let out = run_ok(Command::new("ffmpeg").arg("-version"));
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().next().unwrap_or_default().to_string()
    })
}

/// Everything that determines a fixture's content: its parameters, the programs that make it
/// (FFmpeg's version, the Python environment) and the sha256 of each script involved. Two
/// fixtures share a cache entry only when all of it is equal.
#[derive(Clone, Debug, Default)]
pub struct Key {
    lines: Vec<String>,
}

impl Key {
    pub fn new() -> Key {
        Key::default()
    }

    /// Parameters (command-line arguments, seeds, sizes).
    pub fn args<S: AsRef<OsStr>>(mut self, args: &[S]) -> Key {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        self.lines.push(format!("args {args:?}"));
        self
    }

    /// A script or source file that generates the fixture (repository-relative path).
    pub fn script(mut self, rel: &str) -> Key {
        let digest = sha256_file(&root().join(rel));
        self.lines.push(format!("sha256 {rel} {digest}"));
        self
    }

    /// Made with the ffmpeg command-line tool.
    pub fn ffmpeg(mut self) -> Key {
        self.lines.push(format!("ffmpeg {}", ffmpeg_version()));
        self
    }

    /// Made with scripts/setup.sh's Python environment (its path names its requirements' hash).
    pub fn python(mut self) -> Key {
        let py = python_path();
        let real = std::fs::canonicalize(&py).unwrap_or(py);
        self.lines.push(format!("python {}", real.display()));
        self
    }

    /// Made from another fixture.
    pub fn fixture(mut self, dir: &Path) -> Key {
        self.lines.push(format!("fixture {}", dir.display()));
        self
    }

    fn text(&self) -> String {
        self.lines.join("\n") + "\n"
    }

    fn digest(&self) -> String {
        hex(&Sha256::digest(self.text().as_bytes()))[..16].to_string()
    }
}

/// A fixture directory `target/test-fixtures/NAME-HASH/`, where HASH is the digest of `key`:
/// made by `make` (into an empty temporary directory, then renamed into place) the first time
/// that key is asked for, and reused while the key stays the same. Entries of the same name with
/// another key are deleted. Concurrent tests asking for the same fixture wait for one `make`.
pub fn fixture(name: &str, key: &Key, make: impl FnOnce(&Path)) -> PathBuf {
    static MADE: OnceLock<Mutex<BTreeMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let id = format!("{name}-{}", key.digest());
    let cell = MADE
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(id.clone())
        .or_default()
        .clone();
    cell.get_or_init(|| {
        let base = fixture_root();
        std::fs::create_dir_all(&base).unwrap();
        let dir = base.join(&id);
        if !dir.join(".key").exists() {
            let tmp = base.join(format!("{id}.tmp-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).unwrap();
            make(&tmp);
            std::fs::write(tmp.join(".key"), key.text()).unwrap();
            let _ = std::fs::remove_dir_all(&dir);
            if let Err(e) = std::fs::rename(&tmp, &dir) {
                // Another test process made it first.
                assert!(dir.join(".key").exists(), "{}: {e}", dir.display());
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        remove_stale(&base, name, &id);
        dir
    })
    .clone()
}

/// Deletes `NAME-<other hash>` entries: fixtures made from an older key.
fn remove_stale(base: &Path, name: &str, keep: &str) {
    let prefix = format!("{name}-");
    for entry in std::fs::read_dir(base).unwrap().flatten() {
        let file_name = entry.file_name();
        let entry_name = file_name.to_string_lossy();
        let stale = entry_name != keep
            && entry_name
                .strip_prefix(&prefix)
                .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A generated test video (lavfi `source`, `seconds` long, encoded with `codec` in yuv420p),
/// cached under `group` and keyed by the ffmpeg command that makes it.
pub fn lavfi_video(group: &str, name: &str, source: &str, seconds: &str, codec: &str) -> PathBuf {
    let args = [
        "-f", "lavfi", "-i", source, "-t", seconds, "-c:v", codec, "-pix_fmt", "yuv420p",
    ];
    let key = Key::new().ffmpeg().args(&args).args(&[name]);
    let dir = fixture(&format!("{group}-{name}"), &key, |dir| {
        let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = dir.join(name);
        all.push(out.as_os_str());
        ffmpeg(&all);
    });
    dir.join(name)
}

// ---------------------------------------------------------------------------------------------
// Running vidcls

/// A `vidcls` command line: build it, run it, check its exit code, read its records.
pub struct Vidcls {
    cmd: Command,
}

/// `vidcls ARGS` (stdin closed unless `stdin_bytes` is given).
pub fn vidcls<S: AsRef<OsStr>>(args: &[S]) -> Vidcls {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vidcls"));
    cmd.args(args).stdin(Stdio::null());
    Vidcls { cmd }
}

/// `WRAPPER... vidcls ARGS`: vidcls started by another program (`setpriv`, `env`).
pub fn vidcls_via<S: AsRef<OsStr>>(wrapper: &[&str], args: &[S]) -> Vidcls {
    let (program, rest) = wrapper.split_first().expect("a wrapper program");
    let mut cmd = Command::new(program);
    cmd.args(rest)
        .arg(env!("CARGO_BIN_EXE_vidcls"))
        .args(args)
        .stdin(Stdio::null());
    Vidcls { cmd }
}

/// `vidcls predict ARGS`.
pub fn predict<S: AsRef<OsStr>>(args: &[S]) -> Vidcls {
    let mut v = vidcls(&["predict"]);
    v.cmd.args(args);
    v
}

impl Vidcls {
    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Vidcls {
        self.cmd.arg(a);
        self
    }

    pub fn args<S: AsRef<OsStr>>(&mut self, a: impl IntoIterator<Item = S>) -> &mut Vidcls {
        self.cmd.args(a);
        self
    }

    /// The underlying command, for spawning or redirecting.
    pub fn command(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// Runs to the end, whatever the exit code.
    pub fn run(&mut self) -> Run {
        let output = self
            .cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.cmd));
        Run {
            what: format!("{:?}", self.cmd),
            output,
        }
    }

    /// Runs to the end and asserts the exit code (showing stderr when it differs).
    pub fn expect_code(&mut self, code: i32) -> Run {
        let run = self.run();
        run.assert_code(code);
        run
    }

    /// Runs to the end and asserts success.
    pub fn ok(&mut self) -> Run {
        self.expect_code(0)
    }

    /// Spawns `vidcls` and waits (up to 60 s) until `out` holds `lines` lines: a run caught in
    /// the middle, for kill and signal tests.
    pub fn spawn_until_lines(&mut self, out: &Path, lines: usize) -> std::process::Child {
        let child = self.cmd.stderr(Stdio::null()).spawn().unwrap();
        let t0 = std::time::Instant::now();
        while std::fs::read_to_string(out).map_or(0, |s| s.lines().count()) < lines
            && t0.elapsed() < std::time::Duration::from_secs(60)
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child
    }
}

/// A finished vidcls run.
pub struct Run {
    what: String,
    pub output: Output,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn assert_code(&self, code: i32) {
        assert_eq!(self.code(), Some(code), "{}:\n{}", self.what, self.stderr());
    }

    /// stdout as JSON Lines records.
    pub fn records(&self) -> Vec<Record> {
        parse_jsonl(&self.output.stdout)
    }

    /// stdout as JSON Lines records, every one a prediction.
    pub fn results(&self) -> Vec<VideoResult> {
        self.records().into_iter().map(expect_ok).collect()
    }

    /// The run summary of `--summary-json`: the last line of stderr.
    pub fn summary(&self) -> RunSummary {
        let err = self.stderr();
        let last = err.lines().last().unwrap_or_default();
        serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("last stderr line is no summary ({e}):\n{err}"))
    }
}

/// Parses JSON Lines into records, panicking on a malformed line.
pub fn parse_jsonl(text: &[u8]) -> Vec<Record> {
    String::from_utf8_lossy(text)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l:?}: {e}")))
        .collect()
}

/// The records of a JSON Lines file.
pub fn read_jsonl(path: &Path) -> Vec<Record> {
    parse_jsonl(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The prediction of a record that must be one.
pub fn expect_ok(r: Record) -> VideoResult {
    match r {
        Record::Ok(v) => v,
        other => panic!("expected a prediction, got {other:?}"),
    }
}

/// The error of a record that must be one.
pub fn expect_err(r: &Record) -> &FileError {
    match r {
        Record::Err(e) => e,
        other => panic!("expected an error record, got {other:?}"),
    }
}

#[test]
fn fixture_cache_is_keyed_by_what_made_it() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = scratch("fixture-key");
    let script = dir.join("make.sh");
    let rel = "target/test-scratch/fixture-key/make.sh";
    let made = AtomicUsize::new(0);
    let make = |out: &Path| {
        made.fetch_add(1, Ordering::SeqCst);
        std::fs::write(out.join("content"), std::fs::read(&script).unwrap()).unwrap();
    };
    let get = |args: &[&str]| {
        let key = Key::new().args(args).script(rel);
        let d = fixture("cache-self-test", &key, make);
        (
            d.clone(),
            std::fs::read_to_string(d.join("content")).unwrap(),
        )
    };
    std::fs::write(&script, "one\n").unwrap();
    let (first, text) = get(&["--seed", "1"]);
    assert_eq!((text.as_str(), made.load(Ordering::SeqCst)), ("one\n", 1));
    // Same parameters, same script: the cache answers.
    assert_eq!(get(&["--seed", "1"]).0, first);
    assert_eq!(made.load(Ordering::SeqCst), 1);
    // Another parameter, or another version of the script: made again, the old entry gone.
    let (second, _) = get(&["--seed", "2"]);
    assert_ne!(second, first);
    assert!(!first.exists(), "stale entry {} kept", first.display());
    std::fs::write(&script, "two\n").unwrap();
    let (third, text) = get(&["--seed", "2"]);
    assert_ne!(third, second);
    assert_eq!((text.as_str(), made.load(Ordering::SeqCst)), ("two\n", 3));
    std::fs::remove_dir_all(third).unwrap();
}

/// Reads a little-endian float32 `.npy` file: (shape, values).
pub fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not .npy", path.display());
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).unwrap();
    assert!(
        header.contains("'<f4'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let shape_txt = &header[header.find("'shape': (").unwrap() + 10..];
    let shape: Vec<usize> = shape_txt[..shape_txt.find(')').unwrap()]
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let data: Vec<f32> = bytes[start + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "{}",
        path.display()
    );
    (shape, data)
}
