//! `vidcls train` end to end: it learns actions the built-in model never saw, a run is
//! repeatable, an interrupted run resumes to the same model, and bad data is refused or
//! skipped as documented (docs/TRAINING.md).

use crate::support::{self, assert_code, bin, fixture, python, root, run_ok, scratch, Key};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use vidcls::report::Record;

/// A labelled set from scripts/action_set.py, cached by the shared fixture cache under a key of
/// its arguments, the script and the Python environment.
fn action_set(name: &str, args: &[&str]) -> PathBuf {
    // Sets are made one at a time (each generator run uses every core).
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let key = Key::new()
        .args(args)
        .script("scripts/action_set.py")
        .python()
        .ffmpeg();
    fixture(&format!("actions-{name}"), &key, |out| {
        run_ok(
            python()
                .arg(root().join("scripts/action_set.py"))
                .arg("--out")
                .arg(out)
                .args(args),
        );
    })
}

/// The small set most tests share: four actions, eight clips each.
fn small_set() -> PathBuf {
    action_set(
        "small",
        &[
            "--per-class",
            "8",
            "--seed",
            "11",
            "--labels",
            "orbit_cw,orbit_ccw,diagonal_up,pulse",
        ],
    )
}

fn train(args: &[&str]) -> std::process::Output {
    bin()
        .arg("train")
        .args(args)
        .args(["--threads", "2", "-q"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn metrics(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("metrics.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `vidcls predict -m MODEL --all-scores` on DATA: (path -> (top label, scores)).
fn predictions(model: &Path, data: &Path) -> BTreeMap<String, (String, Vec<f64>)> {
    let out = run_ok(
        bin()
            .args([
                "predict",
                "-f",
                "jsonl",
                "-k",
                "1",
                "--all-scores",
                "-q",
                "-m",
            ])
            .arg(model)
            .arg(data),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| match serde_json::from_str::<Record>(l).unwrap() {
            Record::Ok(v) => (v.path, (v.top_k[0].label.clone(), v.scores.unwrap())),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Share of videos whose top label is their folder's name.
fn accuracy(p: &BTreeMap<String, (String, Vec<f64>)>) -> f64 {
    let right = p
        .iter()
        .filter(|(path, (label, _))| Path::new(path).parent().unwrap().ends_with(label))
        .count();
    right as f64 / p.len() as f64
}

#[test]
fn learns_actions_the_builtin_model_never_saw() {
    let data = action_set(
        "learn",
        &[
            "--per-class",
            "16",
            "--seed",
            "21",
            "--labels",
            "orbit_cw,orbit_ccw,diagonal_up,diagonal_down,swing",
        ],
    );
    let held_out = action_set(
        "learn-test",
        &[
            "--per-class",
            "6",
            "--seed",
            "22",
            "--labels",
            "orbit_cw,orbit_ccw,diagonal_up,diagonal_down,swing",
        ],
    );
    let out = scratch("train-learn").join("model");
    let o = train(&[
        data.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--epochs",
        "6",
    ]);
    assert_code(&o, 0);
    let m = metrics(&out);
    assert!(m["val_top1"].as_f64().unwrap() >= 0.9, "{m}");
    let acc = accuracy(&predictions(&out, &held_out));
    assert!(acc >= 0.9, "held-out top-1 {acc}");
    // The config predict loaded carries the new labels and where they came from.
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["labels"].as_array().unwrap().len(), 5);
    assert!(cfg["provenance"]["data_fingerprint"].is_string());
    // On the model path, `vidcls models` lists it (the folder's name is the model's name).
    let listed = run_ok(
        bin()
            .args(["models", "--json"])
            .env("VIDCLS_MODEL_PATH", &out),
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(
        rows.iter()
            .any(|r| r["name"] == "model" && r["classes"] == 5),
        "{rows:?}"
    );
}

#[test]
fn same_seed_same_weights_and_resume_matches() {
    let data = small_set();
    let dir = scratch("train-repeat");
    let args = |out: &Path| {
        vec![
            data.to_str().unwrap().to_string(),
            "-o".into(),
            out.to_str().unwrap().to_string(),
            "--epochs".into(),
            "3".into(),
            "--seed".into(),
            "5".into(),
        ]
    };
    let a = dir.join("a");
    let b = dir.join("b");
    for out in [&a, &b] {
        let o = train(&args(out).iter().map(String::as_str).collect::<Vec<_>>());
        assert_code(&o, 0);
    }
    let pa = predictions(&a, &data);
    assert_eq!(pa, predictions(&b, &data), "two runs with one seed differ");
    let curve = |m: serde_json::Value| -> Vec<(serde_json::Value, serde_json::Value)> {
        let e = m["epochs"].as_array().unwrap().clone();
        e.into_iter()
            .map(|e| (e["loss"].clone(), e["val_top1"].clone()))
            .collect()
    };
    assert_eq!(curve(metrics(&a)), curve(metrics(&b)));

    // Interrupted after the first epoch, then resumed: the same model as the whole run.
    let c = dir.join("c");
    let mut child = bin()
        .arg("train")
        .args(args(&c))
        .args(["--threads", "2"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    let mut signalled = false;
    for line in stderr.lines() {
        let line = line.unwrap();
        if !signalled && line.contains("epoch 1/3") {
            run_ok(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]));
            signalled = true;
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{lines:?}");
    assert!(
        c.join(".checkpoint/state.json").exists(),
        "no checkpoint after the signal"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.join(".checkpoint/state.json")).unwrap())
            .unwrap();
    let epochs_done = state["history"].as_array().unwrap().len();
    assert!(epochs_done < 3, "the signal landed after the run: {state}");
    let mut resumed = args(&c);
    resumed.push("--resume".into());
    let o = train(&resumed.iter().map(String::as_str).collect::<Vec<_>>());
    assert_code(&o, 0);
    assert_eq!(
        pa,
        predictions(&c, &data),
        "resumed run differs from the whole run"
    );
    assert!(
        !c.join(".checkpoint").exists(),
        "checkpoint left after a finished run"
    );
}

#[test]
fn freeze_trains_a_linear_probe() {
    let data = small_set();
    let out = scratch("train-freeze").join("m");
    let o = train(&[
        data.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--freeze",
    ]);
    assert_code(&o, 0);
    let m = metrics(&out);
    assert_eq!(m["start"], "frozen");
    assert!(m["epochs"].as_array().unwrap().is_empty());
    // Chance is 25 %: the built-in model's features already tell these apart.
    assert!(m["val_top1"].as_f64().unwrap() >= 0.6, "{m}");
    assert!(accuracy(&predictions(&out, &data)) >= 0.6);
}

/// Two labels that any frame tells apart (FFmpeg's test pattern and a fractal), in varied
/// sizes, rates and start times: what a network trained from random weights can learn fast.
fn easy_set() -> PathBuf {
    // Made by the commands below: keyed by this file's hash and FFmpeg's version.
    let key = Key::new().script("tests/train.rs").ffmpeg();
    fixture("train-easy", &key, |dir| {
        for (label, source) in [("pattern", "testsrc2"), ("fractal", "mandelbrot")] {
            std::fs::create_dir_all(dir.join(label)).unwrap();
            for i in 0..10 {
                let size = ["160x120", "192x108", "128x128"][i % 3];
                let rate = ["15", "25"][i % 2];
                let src = format!("{source}=size={size}:rate={rate}");
                let out = dir.join(label).join(format!("{label}{i}.mp4"));
                support::ffmpeg(&[
                    "-f",
                    "lavfi",
                    "-ss",
                    &format!("{}", i),
                    "-i",
                    &src,
                    "-t",
                    "2",
                    "-c:v",
                    "libx264",
                    "-pix_fmt",
                    "yuv420p",
                    out.to_str().unwrap(),
                ]);
            }
        }
    })
}

#[test]
fn scratch_learns_an_easy_set() {
    let data = easy_set();
    let out = scratch("train-scratch").join("m");
    let o = train(&[
        data.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--scratch",
        "--epochs",
        "6",
    ]);
    assert_code(&o, 0);
    let m = metrics(&out);
    assert_eq!(m["start"], "scratch");
    assert!(
        m["probe_val_top1"].is_null(),
        "a scratch run has no probe: {m}"
    );
    assert!(accuracy(&predictions(&out, &data)) >= 0.9, "{m}");
}

#[test]
fn bad_data_is_refused_or_skipped() {
    let good = small_set();
    let dir = scratch("train-bad");
    // A copy of the small set with one corrupt file and one stray text file in a class.
    let data = dir.join("data");
    for entry in walk(&good) {
        let rel = entry.strip_prefix(&good).unwrap();
        let dst = data.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &dst).unwrap();
    }
    std::fs::write(data.join("pulse/broken.mp4"), b"not a video at all").unwrap();
    let out = dir.join("m");
    let o = train(&[
        data.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--epochs",
        "1",
    ]);
    assert_code(&o, 0);
    let m = metrics(&out);
    let skipped = m["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{m}");
    assert!(skipped[0]["path"].as_str().unwrap().ends_with("broken.mp4"));

    // Refused before any training, with exit 2 and a message that names the problem.
    let refuse = |data: &Path, want: &str| {
        let out = dir.join("refused");
        let _ = std::fs::remove_dir_all(&out);
        let o = train(&[data.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        assert_code(&o, 2);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "wanted {want:?} in {err}");
        assert!(!out.join("model.pt").exists());
    };
    refuse(&dir.join("missing"), "not a folder");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    refuse(&empty, "no videos");
    let one = dir.join("one");
    std::fs::create_dir_all(one.join("pulse")).unwrap();
    for f in walk(&good.join("pulse")) {
        std::fs::copy(&f, one.join("pulse").join(f.file_name().unwrap())).unwrap();
    }
    refuse(&one, "one class");
    let thin = dir.join("thin");
    std::fs::create_dir_all(thin.join("empty_class")).unwrap();
    for f in walk(&good.join("pulse")) {
        std::fs::create_dir_all(thin.join("pulse")).unwrap();
        std::fs::copy(&f, thin.join("pulse").join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(thin.join("empty_class/bad.mp4"), b"junk").unwrap();
    refuse(&thin, "too few usable videos in class(es) empty_class (0)");
    // An existing model folder is not overwritten by accident.
    let o = train(&[good.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"));
    support::assert_code(
        &train(&[
            good.to_str().unwrap(),
            "-o",
            dir.join("none").to_str().unwrap(),
            "--resume",
        ]),
        2,
    );
}

/// Every file under `dir`, in name order.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
