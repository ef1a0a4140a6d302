//! The release bundle (scripts/package.sh) and what ships with it: completions, man pages,
//! the installer the Dockerfile runs.
//!
//! `bundle_runs_anywhere` builds the CPU bundle (a separate `dist` build: minutes the first time),
//! so it is `#[ignore]`d here and run by scripts/test-package.sh (CI runs it after
//! scripts/test.sh). It installs the bundle outside the checkout and runs it in a private mount
//! namespace (needs root and `unshare`) where the checkout, the Python environment and the
//! libtorch cache are hidden, and compares its records with the development build's.

use crate::support::{assert_code, bin, root, run_ok, scratch};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];
/// Libraries every Debian 12 image has (debian:12-slim included): libc, libgcc, libstdc++.
const BASE_DEBS: [&str; 3] = ["libc6", "libgcc-s1", "libstdc++6"];

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn completions_and_man_pages_from_the_binary() {
    for shell in SHELLS {
        let text = stdout(&run_ok(bin().args(["completions", shell])));
        assert!(
            text.contains("predict") && text.contains("top-k"),
            "{shell}: {text}"
        );
    }
    // The bash script registers a completion for vidcls when sourced.
    let dir = scratch("package-completions");
    let bash = dir.join("vidcls.bash");
    std::fs::write(&bash, run_ok(bin().args(["completions", "bash"])).stdout).unwrap();
    let out = run_ok(
        Command::new("bash")
            .arg("-c")
            .arg(format!("source {} && complete -p vidcls", bash.display())),
    );
    assert!(stdout(&out).contains("vidcls"), "{}", stdout(&out));

    let page = stdout(&run_ok(bin().arg("man")));
    assert!(
        page.contains(".TH vidcls 1") && page.contains("predict"),
        "{page}"
    );
    let man = dir.join("man1");
    run_ok(bin().args(["man", "--dir"]).arg(&man));
    for name in ["vidcls.1", "vidcls-predict.1", "vidcls-completions.1"] {
        let len = std::fs::metadata(man.join(name)).map_or(0, |m| m.len());
        assert!(len > 0, "{name} missing or empty");
    }
    // An unwritable directory: exit 2, naming it.
    let blocked = dir.join("file");
    std::fs::write(&blocked, "").unwrap();
    let out = bin()
        .args(["man", "--dir"])
        .arg(blocked.join("man1"))
        .output()
        .unwrap();
    assert_code(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&*blocked.join("man1").to_string_lossy()),
        "{err}"
    );
}

#[test]
fn scripts_reject_bad_input() {
    let dir = scratch("package-bad-input");
    let install = root().join("scripts/install-bundle.sh");
    let missing = dir.join("missing.tar.gz");
    let out = Command::new(&install)
        .arg("--no-apt")
        .arg(&missing)
        .arg(dir.join("dest"))
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.tar.gz: no such file"));
    // A .tar.gz that is not a bundle.
    std::fs::create_dir_all(dir.join("other")).unwrap();
    std::fs::write(dir.join("other/x"), "x").unwrap();
    run_ok(
        Command::new("tar")
            .arg("-czf")
            .arg(dir.join("other.tar.gz"))
            .arg("-C")
            .arg(&dir)
            .arg("other"),
    );
    let out = Command::new(&install)
        .arg("--no-apt")
        .arg(dir.join("other.tar.gz"))
        .arg(dir.join("dest"))
        .output()
        .unwrap();
    assert_code(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("other.tar.gz: not a vidcls bundle"), "{err}");
    assert!(!dir.join("dest/x").exists());

    let out = Command::new(root().join("scripts/package.sh"))
        .arg("gpu")
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument gpu"));
}

/// Removes the installed bundle when the test ends, passed or not.
struct Installed(PathBuf);

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the bundle must not reach: the checkout (configs, models, target/, .venv, .libtorch)
/// and the Python environment / libtorch it was built from. Top-most folders only: a folder
/// inside one already hidden cannot be mounted over.
fn hidden_dirs() -> Vec<PathBuf> {
    let canon = |p: PathBuf| p.canonicalize().ok();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cache = std::env::var_os("VIDCLS_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("vidcls")))
        .or_else(|| home.map(|h| h.join(".cache/vidcls")));
    let mut dirs: Vec<PathBuf> = [
        Some(root()),
        canon(root().join(".venv")),
        canon(root().join(".libtorch")),
        std::env::var_os("LIBTORCH").and_then(|l| canon(l.into())),
        canon(PathBuf::from(env!("VIDCLS_LIBTORCH_LIB"))),
        cache.and_then(canon),
    ]
    .into_iter()
    .flatten()
    .collect();
    dirs.sort();
    dirs.dedup();
    let all = dirs.clone();
    dirs.retain(|d| !all.iter().any(|o| o != d && d.starts_with(o)));
    dirs
}

/// Runs `cmd` in a private mount namespace with `hidden_dirs()` covered by empty tmpfs mounts,
/// after checking that the development build's libtorch and Python cannot be reached.
fn hidden(cmd: &[OsString]) -> Output {
    const SCRIPT: &str = r#"
n=$1; shift
while [ "$n" -gt 0 ]; do mount -t tmpfs none "$1" || exit 97; shift; n=$((n - 1)); done
n=$1; shift
while [ "$n" -gt 0 ]; do
  if [ -e "$1" ]; then echo "still reachable: $1" >&2; exit 98; fi
  shift; n=$((n - 1))
done
cd / && exec "$@""#;
    let hide = hidden_dirs();
    let gone = [
        PathBuf::from(env!("VIDCLS_LIBTORCH_LIB")).join("libtorch_cpu.so"),
        root().join(".venv/bin/python"),
        PathBuf::from(env!("CARGO_BIN_EXE_vidcls")),
        root().join("models/motion.pt"),
    ];
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", SCRIPT, "sh"])
        .arg(hide.len().to_string())
        .args(&hide)
        .arg(gone.len().to_string())
        .args(&gone)
        .args(cmd)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap_or_else(|e| panic!("cannot run unshare: {e}"));
    assert!(
        !matches!(out.status.code(), Some(97 | 98)),
        "could not hide {hide:?} (needs root and unshare -m): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn os(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    args.iter().map(|a| a.as_ref().to_os_string()).collect()
}

/// JSON Lines records keyed by file name, without timings (which differ run to run).
fn records(out: &Output) -> BTreeMap<String, Value> {
    stdout(out)
        .lines()
        .map(|l| {
            let mut v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l:?}: {e}"));
            let obj = v.as_object_mut().unwrap();
            obj.remove("timings");
            let path = obj.remove("path").unwrap();
            let name = Path::new(path.as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, v)
        })
        .collect()
}

fn samples(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no samples in {}", dir.display());
    v
}

/// `ldd FILE` inside the hidden namespace: soname -> resolved path. Panics on "not found".
fn ldd(file: &Path) -> BTreeMap<String, PathBuf> {
    let out = hidden(&os(&[&"ldd", &file]));
    let text = stdout(&out);
    assert!(
        out.status.success() && !text.contains("not found"),
        "ldd {}:\n{text}{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().split_once(" => ")?;
            let path = rest.split_whitespace().next()?;
            path.starts_with('/').then(|| {
                let p = PathBuf::from(path);
                (name.to_string(), p.canonicalize().unwrap_or(p))
            })
        })
        .collect()
}

fn is_system(p: &Path) -> bool {
    ["/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"]
        .iter()
        .any(|d| p.starts_with(d))
}

fn needed(file: &Path) -> Vec<String> {
    let out = run_ok(Command::new("readelf").arg("-d").arg(file));
    stdout(&out)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split_once('[')?.1.trim_end_matches(']').to_string()))
        .collect()
}

fn dir_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// `models pull` + `predict -m NAME` from the bundle alone: a card built from the bundle's own
/// r3d_18 card (its graph found in the bundle's models/graphs/), pointed at the loopback
/// server's weights, installed into a cache outside the checkout; the records equal the
/// development build's on the same installed model.
fn pull_and_predict_from_the_bundle(exe: &Path, share: &Path, dest: &Path, samples: &[PathBuf]) {
    let served: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::pretrained::server().card("r3d_18")).unwrap(),
    )
    .unwrap();
    let mut card: Value =
        serde_json::from_str(&std::fs::read_to_string(share.join("configs/r3d_18.json")).unwrap())
            .unwrap();
    let labels = std::fs::read_to_string(share.join("configs/kinetics400.txt")).unwrap();
    card["labels"] = labels.lines().map(|l| Value::from(l.trim())).collect();
    card.as_object_mut().unwrap().remove("labels_file");
    for key in ["url", "sha256", "bytes"] {
        card["pretrained"][key] = served["pretrained"][key].clone();
    }
    let cards = dest.join("cards");
    std::fs::create_dir_all(&cards).unwrap();
    let card_path = cards.join("r3d_18.json");
    std::fs::write(&card_path, card.to_string()).unwrap();
    let cache = dest.join("cache");
    let env_cache = format!("VIDCLS_CACHE_DIR={}", cache.display());
    let out = hidden(&os(&[
        &"env", &env_cache, &exe, &"models", &"pull", &card_path,
    ]));
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("installed r3d_18"),
        "{}",
        stdout(&out)
    );
    let args = [
        "predict",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "-f",
        "jsonl",
        "-m",
    ];
    let mut cmd = os(&[&"env", &env_cache, &exe]);
    cmd.extend(args.iter().map(OsString::from));
    cmd.push("r3d_18".into());
    cmd.extend(samples.iter().map(|p| p.as_os_str().to_owned()));
    let out = hidden(&cmd);
    assert_code(&out, 0);
    let shipped = records(&out);
    let config = cache.join("configs/r3d_18.json");
    let dev = records(&run_ok(bin().args(args).arg(&config).args(samples)));
    assert_eq!(shipped.len(), samples.len());
    assert_eq!(
        dev, shipped,
        "development build vs bundle on the pulled r3d_18"
    );
}

#[test]
#[ignore = "builds the release bundle (minutes): run scripts/test-package.sh"]
fn bundle_runs_anywhere() {
    // Build the CPU bundle and install it the way the Dockerfile does, outside the checkout.
    let dist = scratch("package-dist");
    run_ok(
        Command::new(root().join("scripts/package.sh"))
            .args(["cpu", "--out"])
            .arg(&dist),
    );
    let name = format!("vidcls-{}-linux-x86_64-cpu", env!("CARGO_PKG_VERSION"));
    let archive = dist.join(format!("{name}.tar.gz"));
    assert!(archive.is_file(), "{} not written", archive.display());
    run_ok(
        Command::new("sha256sum")
            .arg("-c")
            .arg(format!("{name}.tar.gz.sha256"))
            .current_dir(&dist),
    );
    let dest = std::env::temp_dir().join(format!(
        "vidcls-bundle-test-{}",
        root().to_string_lossy().replace('/', "_")
    ));
    let _ = std::fs::remove_dir_all(&dest);
    let installed = Installed(dest.clone());
    run_ok(
        Command::new(root().join("scripts/install-bundle.sh"))
            .arg("--no-apt")
            .arg(&archive)
            .arg(&dest),
    );
    let exe = dest.join("bin/vidcls");
    let share = dest.join("share/vidcls");

    // Size: the point of the CPU bundle (the development environment is ~4.9 GB).
    let bytes = dir_bytes(&dest);
    assert!(
        bytes < 1_000_000_000,
        "CPU bundle is {bytes} bytes unpacked"
    );

    // Same records as the development build, with the checkout and libtorch out of reach.
    let dev_samples = samples(&root().join("models/samples"));
    let bundle_samples = samples(&share.join("models/samples"));
    let args = ["predict", "--device", "cpu", "-f", "jsonl", "--top-k", "8"];
    let dev = records(&run_ok(bin().args(args).args(&dev_samples)));
    let mut cmd = os(&[&exe]);
    cmd.extend(args.iter().map(OsString::from));
    cmd.extend(bundle_samples.iter().map(|p| p.as_os_str().to_owned()));
    let out = hidden(&cmd);
    assert_code(&out, 0);
    let shipped = records(&out);
    assert_eq!(dev.len(), dev_samples.len());
    assert_eq!(
        dev.keys().collect::<Vec<_>>(),
        shipped.keys().collect::<Vec<_>>()
    );
    for (file, rec) in &dev {
        assert_eq!(
            rec["top_k"].as_array().map(Vec::len),
            Some(8),
            "{file}: {rec}"
        );
        assert_eq!(rec, &shipped[file], "{file}: development build vs bundle");
    }

    // Models and configs are found relative to the executable.
    let out = hidden(&os(&[&exe, &"models", &"--json"]));
    assert_code(&out, 0);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows
        .iter()
        .find(|r| r["name"] == "motion_2d")
        .unwrap_or_else(|| panic!("motion_2d not listed: {}", stdout(&out)));
    assert_eq!(
        row["file"].as_str().map(PathBuf::from),
        Some(share.join("models/motion_2d.pt"))
    );
    let out = hidden(&os(&[
        &exe,
        &"predict",
        &"-m",
        &"motion_2d",
        &"-f",
        &"jsonl",
        &bundle_samples[0],
    ]));
    assert_code(&out, 0);

    pull_and_predict_from_the_bundle(&exe, &share, &dest, &bundle_samples);

    // Libraries: every non-system one resolves inside lib/, and lib/ holds nothing else.
    let rpath = stdout(&run_ok(Command::new("readelf").arg("-d").arg(&exe)));
    assert!(
        rpath.contains("(RUNPATH)") && rpath.contains("[$ORIGIN/../lib]"),
        "{rpath}"
    );
    let lib = dest.join("lib").canonicalize().unwrap();
    let resolved = ldd(&exe);
    for (name, path) in &resolved {
        assert!(
            path.starts_with(&lib) || is_system(path),
            "{name} resolves outside the bundle and the system: {}",
            path.display()
        );
    }
    let inside: BTreeSet<PathBuf> = resolved
        .values()
        .filter(|p| p.starts_with(&lib))
        .cloned()
        .collect();
    let shipped_libs: BTreeSet<PathBuf> = std::fs::read_dir(&lib)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        inside, shipped_libs,
        "lib/ differs from what bin/vidcls loads"
    );
    for want in ["libtorch_cpu.so", "libc10.so", "libgomp.so.1"] {
        assert!(
            inside.contains(&lib.join(want)),
            "{want} not loaded from lib/"
        );
    }
    assert!(
        !resolved.keys().any(|n| n.contains("torch_cuda")),
        "CPU bundle loads libtorch_cuda: {resolved:?}"
    );

    // The Debian packages the installer (and so the Dockerfile) installs cover every system
    // library that bin/vidcls and lib/ link directly; the README names the same apt line.
    let debs_out =
        run_ok(Command::new(root().join("scripts/install-bundle.sh")).arg("--list-debs"));
    let debs_line = stdout(&debs_out).trim().to_string();
    let debs: BTreeSet<&str> = debs_line.split_whitespace().chain(BASE_DEBS).collect();
    let mut linked = BTreeSet::new();
    for file in std::iter::once(exe.clone()).chain(shipped_libs.iter().cloned()) {
        linked.extend(needed(&file));
    }
    for soname in linked.iter().filter(|s| !lib.join(s).exists()) {
        let out = run_ok(Command::new("dpkg").arg("-S").arg(format!("*/{soname}")));
        let owner = stdout(&out);
        let pkg = owner.split([':', ',']).next().unwrap().trim();
        assert!(
            debs.contains(pkg),
            "{soname} comes from {pkg}, which nothing installs"
        );
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let apt = format!("apt-get install --no-install-recommends {debs_line}");
    assert!(readme.contains(&apt), "README lacks `{apt}`");
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let dockerignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    for text in [&dockerfile, &dockerignore] {
        assert!(
            text.contains("scripts/install-bundle.sh")
                && text.contains("dist/vidcls-*-linux-x86_64-cpu.tar.gz"),
            "{text}"
        );
    }

    // Completions and man pages, installed under share/.
    for f in [
        "share/bash-completion/completions/vidcls",
        "share/zsh/site-functions/_vidcls",
        "share/fish/vendor_completions.d/vidcls.fish",
        "share/man/man1/vidcls.1",
        "share/man/man1/vidcls-predict.1",
    ] {
        let text = std::fs::read_to_string(dest.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(text.contains("predict"), "{f} is empty or lacks predict");
    }
    // Licences: one per bundled library, and the README.
    let licences = std::fs::read_to_string(dest.join("licenses/LIBRARIES.txt")).unwrap();
    for l in &shipped_libs {
        let n = l.file_name().unwrap().to_string_lossy();
        assert!(
            licences.lines().any(|x| x.starts_with(&format!("{n}\t"))),
            "no licence for {n}"
        );
    }
    assert!(dest.join("README.md").is_file());
    drop(installed);
}
