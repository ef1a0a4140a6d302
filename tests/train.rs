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
    // The default schedule, sized to a short time limit.
    let limit = 60.0;
    let t0 = std::time::Instant::now();
    let o = bin()
        .args(["train", data.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args(["--time-limit", &limit.to_string(), "--threads", "2"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let wall = t0.elapsed().as_secs_f64();
    assert_code(&o, 0);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("time limit 1.0 min (--time-limit SECS): the linear probe, then 12 epochs"),
        "{err}"
    );
    let m = metrics(&out);
    assert!(m["val_top1"].as_f64().unwrap() >= 0.9, "{m}");
    // The run kept to the limit (decoding included) but for the final scoring, and the
    // schedule fitted the time left after the first epoch (a machine too busy to end one
    // epoch in time keeps the probe, which the kept sentence below checks).
    assert!(wall < limit + 30.0, "{wall} s for a {limit} s limit");
    let epochs = m["epochs"].as_array().unwrap();
    let planned = m["epochs_planned"].as_u64().unwrap() as usize;
    assert!(planned >= 2 && epochs.len() <= planned, "{m}");
    if let Some(first) = epochs.first() {
        let first = first["seconds"].as_f64().unwrap();
        assert!(planned == 2 || planned as f64 * first <= limit, "{m}");
    }
    match m["stopped"].as_str().unwrap() {
        "no_improvement" => assert!(epochs.len() < planned, "{m}"),
        "finished" => assert_eq!(epochs.len(), planned, "{m}"),
        other => assert_eq!(other, "time_limit", "{m}"),
    }
    // Which model was kept, and why, in metrics.json and on stderr.
    let kept = m["kept"].as_str().unwrap();
    let best = m["best_epoch"].as_u64().unwrap();
    let named = if epochs.is_empty() {
        "the linear probe: fine-tuning ended before its first epoch".to_string()
    } else if best == 0 {
        "the linear probe: no fine-tuned epoch beat it".to_string()
    } else {
        format!("fine-tuned epoch {best}: it beat the linear probe")
    };
    assert!(kept.starts_with(&named), "{kept}");
    assert!(err.contains(&format!("vidcls: kept {kept}")), "{err}");
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

/// A traced graph with a linear head `fc` but no `features` method, and a config for it (the
/// built-in model's input recipe).
fn model_without_features(dir: &Path) -> PathBuf {
    const MAKE: &str = "\
import sys, torch
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 8, 1)
        self.fc = torch.nn.Linear(8, 8)
    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3, 4)))
torch.manual_seed(0)
torch.jit.trace(M().eval(), torch.zeros(1, 3, 8, 64, 64)).save(sys.argv[1])
";
    let key = Key::new().args(&[MAKE]).python();
    let made = fixture("train-no-features", &key, |d| {
        run_ok(python().args(["-c", MAKE]).arg(d.join("m.pt")));
    });
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("configs/motion.json")).unwrap())
            .unwrap();
    cfg["name"] = "featureless".into();
    cfg["file"] = made.join("m.pt").to_str().unwrap().into();
    let path = dir.join("featureless.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    path
}

#[test]
fn a_model_without_features_is_refused_before_decoding() {
    let dir = scratch("train-no-features");
    let cfg = model_without_features(&dir);
    // Files no decoder reads: a run that decoded first would fail on them instead.
    let data = dir.join("data");
    for label in ["a", "b"] {
        std::fs::create_dir_all(data.join(label)).unwrap();
        for i in 0..4 {
            let path = data.join(label).join(format!("{i}.mp4"));
            std::fs::write(path, format!("junk {label}{i}")).unwrap();
        }
    }
    let out = dir.join("m");
    let o = train(&[
        data.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--from",
        cfg.to_str().unwrap(),
    ]);
    assert_code(&o, 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("model featureless has no usable `features` method"),
        "{err}"
    );
    assert!(!err.contains("skipped"), "decoded before refusing: {err}");
    assert!(!out.exists(), "{} was made", out.display());
}

/// Two labels of long 720p videos in one group of pictures each (every clip decodes from the
/// start): decoding them takes seconds.
fn slow_set() -> PathBuf {
    // Made by the commands below: keyed by this file's hash and FFmpeg's version.
    let key = Key::new().script("tests/train.rs").ffmpeg();
    fixture("train-slow", &key, |dir| {
        for (label, source) in [("pattern", "testsrc2"), ("bars", "smptehdbars")] {
            std::fs::create_dir_all(dir.join(label)).unwrap();
            for i in 0..4 {
                let out = dir.join(label).join(format!("{label}{i}.mp4"));
                support::ffmpeg(&[
                    "-f",
                    "lavfi",
                    "-i",
                    &format!("{source}=size=1280x720:rate=30"),
                    "-t",
                    &format!("{}", 20 + i),
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-g",
                    "900",
                    "-pix_fmt",
                    "yuv420p",
                    out.to_str().unwrap(),
                ]);
            }
        }
    })
}

#[test]
fn a_signal_while_decoding_stops_at_once_in_every_mode() {
    let data = slow_set();
    let dir = scratch("train-signal-decoding");
    for mode in ["--epochs=1", "--freeze", "--scratch"] {
        let out = dir.join(mode.trim_start_matches('-'));
        let mut child = bin()
            .arg("train")
            .arg(&data)
            .arg("-o")
            .arg(&out)
            .args([mode, "--threads", "2"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        run_ok(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]));
        let signalled = std::time::Instant::now();
        let status = child.wait().unwrap();
        let took = signalled.elapsed();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(
            took.as_secs_f64() < 2.0,
            "{mode}: {took:?} after the signal"
        );
        assert_eq!(status.code(), Some(130), "{mode}: {err}");
        assert!(
            err.contains("interrupted while decoding; nothing was written"),
            "{mode}: {err}"
        );
        for f in ["model.pt", "config.json", "metrics.json", ".checkpoint"] {
            assert!(!out.join(f).exists(), "{mode}: {f} written");
        }
    }
}

/// A manifest over the small set with a test split, a row listed twice and a copy of a
/// training file among the test rows.
#[test]
fn test_rows_are_scored_and_data_leaks_are_named() {
    let data = small_set();
    let dir = scratch("train-test-split");
    let text = std::fs::read_to_string(data.join("manifest.csv")).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    let mut manifest = "path,label,split\n".to_string();
    let mut per_label: BTreeMap<String, usize> = BTreeMap::new();
    for row in &rows {
        let (path, label) = row.split_once(',').unwrap();
        let n = per_label.entry(label.to_string()).or_default();
        *n += 1;
        let split = if *n <= 2 { "test" } else { "" };
        let abs = data.join(path);
        manifest += &format!("{},{label},{split}\n", abs.display());
    }
    // Row 34: row 2 again. Row 35: a copy of a training file, as a test clip.
    let (first_path, first_label) = rows[0].split_once(',').unwrap();
    manifest += &format!("{},{first_label},\n", data.join(first_path).display());
    let (last_path, last_label) = rows[rows.len() - 1].split_once(',').unwrap();
    let copy = dir
        .join("copy")
        .join(Path::new(last_path).file_name().unwrap());
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(data.join(last_path), &copy).unwrap();
    manifest += &format!("{},{last_label},test\n", copy.display());
    let (out, o) = train_on_manifest(&dir, &manifest);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rows 2 and 34 list the same file"), "{err}");
    assert!(
        err.contains(&format!("{} (test) have the same contents", copy.display())),
        "{err}"
    );
    assert!(err.contains("; test top-1 "), "{err}");
    assert!(err.contains("on 9 held-out clips"), "{err}");
    assert!(err.contains("confusion on the test clips"), "{err}");
    let m = metrics(&out);
    let test_top1 = m["test_top1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&test_top1), "{m}");
    let cells: u64 = m["test_confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|c| c.as_u64().unwrap()))
        .sum();
    assert_eq!(cells, 9, "{m}");
    let right: u64 = (0..4)
        .map(|i| m["test_confusion"][i][i].as_u64().unwrap())
        .sum();
    assert_eq!(right as f64 / 9.0, test_top1);
    // The trained weights' precision record, measured on the validation clips.
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    let val: u64 = m["val_clips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    let record = &cfg["reduced_precision"];
    assert_eq!(record["clips"].as_u64(), Some(val), "{cfg}");
    assert_eq!(record["clips_from"], "videos", "{cfg}");
    let agreement = record["bf16_top1_agreement"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&agreement), "{cfg}");
}

/// Without validation clips, the probe is the model when time runs out before the first
/// epoch; and the base model's precision record is not inherited.
#[test]
fn without_validation_the_probe_is_kept() {
    let data = small_set();
    let out = scratch("train-no-val").join("m");
    let o = train(&[
        data.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--val-fraction",
        "0",
        "--time-limit",
        "0.001",
    ]);
    assert_code(&o, 0);
    let m = metrics(&out);
    assert_eq!(m["best_epoch"], 0, "{m}");
    assert_eq!(m["stopped"], "time_limit", "{m}");
    assert!(m["val_top1"].is_null(), "{m}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert!(
        cfg.get("reduced_precision").is_none(),
        "a record without validation clips: {cfg}"
    );
    assert!(accuracy(&predictions(&out, &data)) >= 0.6);
}

/// `--scratch` stopped before its first epoch has nothing to keep: no model, a clear error,
/// and not the last run's model.pt either.
#[test]
fn scratch_stopped_before_an_epoch_leaves_no_model() {
    let data = easy_set();
    let out = scratch("train-scratch-early").join("m");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(root().join("models/motion.pt"), out.join("model.pt")).unwrap();
    let o = train(&[
        data.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--scratch",
        "--time-limit",
        "0.001",
        "--force",
    ]);
    assert_code(&o, 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--time-limit ran out before the first epoch ended"),
        "{err}"
    );
    assert!(!out.join("model.pt").exists(), "a model.pt is left");
    assert!(!out.join("config.json").exists());
}

/// `--scratch` starts every normalisation layer (found by its module's type, here with
/// Python) at weight 1 and bias 0: a learning rate too small to move them keeps them there.
#[test]
fn scratch_starts_every_norm_layer_at_one_and_zero() {
    let data = easy_set();
    let out = scratch("train-scratch-norms").join("m");
    let o = train(&[
        data.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--scratch",
        "--epochs",
        "1",
        "--lr",
        "1e-12",
    ]);
    assert_code(&o, 0);
    const CHECK: &str = "\
import sys, torch
m = torch.jit.load(sys.argv[1])
n = 0
for name, mod in m.named_modules():
    if 'Norm' not in mod.original_name:
        continue
    n += 1
    w, b = mod.weight, mod.bias
    assert torch.allclose(w, torch.ones_like(w), atol=1e-6), (name, w[:4])
    assert torch.allclose(b, torch.zeros_like(b), atol=1e-6), (name, b[:4])
assert n >= 10, n
print('norms', n)
";
    let checked = run_ok(python().args(["-c", CHECK]).arg(out.join("model.pt")));
    assert!(String::from_utf8_lossy(&checked.stdout).starts_with("norms "));
}

/// Two labels seen only at the ends of each video: a second of FFmpeg's test pattern or of a
/// fractal, 1.2 s of plain grey, another second of the same. The centre clip (1 clip per
/// video) sees only grey; the 3- and 5-clip settings also see the ends.
fn ends_set() -> PathBuf {
    // Made by the commands below: keyed by this file's hash and FFmpeg's version.
    let key = Key::new().script("tests/train.rs").ffmpeg();
    fixture("train-ends", &key, |dir| {
        for (label, source) in [("pattern", "testsrc2"), ("fractal", "mandelbrot")] {
            std::fs::create_dir_all(dir.join(label)).unwrap();
            for i in 0..10 {
                let out = dir.join(label).join(format!("{label}{i}.mp4"));
                support::ffmpeg(&[
                    "-f",
                    "lavfi",
                    "-ss",
                    &i.to_string(),
                    "-i",
                    &format!("{source}=size=128x96:rate=25"),
                    "-f",
                    "lavfi",
                    "-i",
                    "color=c=gray:size=128x96:rate=25",
                    "-filter_complex",
                    "[0:v]split[a][b];[a]trim=0:1,setpts=PTS-STARTPTS[s];\
                     [b]trim=1:2,setpts=PTS-STARTPTS[e];[1:v]trim=0:1.2,setpts=PTS-STARTPTS[m];\
                     [s][m][e]concat=n=3[v]",
                    "-map",
                    "[v]",
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

/// `vidcls predict -m MODEL --precision fp32 [EXTRA] VIDEOS`: each record's (clips, right).
fn clips_and_hits(model: &Path, extra: &[&str], videos: &[PathBuf]) -> Vec<(usize, bool)> {
    let out = run_ok(
        bin()
            .args([
                "predict",
                "-f",
                "jsonl",
                "-k",
                "1",
                "-q",
                "--precision",
                "fp32",
            ])
            .args(extra)
            .arg("-m")
            .arg(model)
            .args(videos),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| match serde_json::from_str::<Record>(l).unwrap() {
            Record::Ok(v) => {
                let folder = Path::new(&v.path).parent().unwrap().to_path_buf();
                (v.clips, folder.ends_with(&v.top_k[0].label))
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

/// The kept model is scored with 1, 3 and 5 clips per video; the best setting (fewer clips
/// on a tie) is its default views, which `predict -m` uses unless `--clips` is given, and the
/// recorded validation score is what `predict` then gives on the validation videos.
#[test]
fn default_views_are_chosen_on_validation_and_predict_uses_them() {
    let data = ends_set();
    let dir = scratch("train-default-views");
    let mut manifest = "path,label,split\n".to_string();
    let mut val = Vec::new();
    for label in ["pattern", "fractal"] {
        for i in 0..10 {
            let path = data.join(label).join(format!("{label}{i}.mp4"));
            let split = if i < 3 { "val" } else { "train" };
            if i < 3 {
                val.push(path.clone());
            }
            manifest += &format!("{},{label},{split}\n", path.display());
        }
    }
    let (out, o) = train_on_manifest(&dir, &manifest);
    let m = metrics(&out);
    let by: BTreeMap<usize, f64> = m["val_top1_by_clips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let clips = f["clips"].as_u64().unwrap() as usize;
            (clips, f["val_top1"].as_f64().unwrap())
        })
        .collect();
    assert_eq!(by.keys().copied().collect::<Vec<_>>(), [1, 3, 5], "{m}");
    assert!(
        by[&3] > by[&1],
        "the ends do not tell the labels apart: {m}"
    );
    let best = by.values().copied().fold(0.0, f64::max);
    let chosen = *by.iter().find(|(_, &v)| v == best).unwrap().0;
    assert_eq!(m["default_views"]["clips"], chosen, "{m}");
    assert_eq!(m["val_top1"].as_f64(), Some(best), "{m}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["default_views"], serde_json::json!({ "clips": chosen }));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("default views {chosen} clip(s) per video")),
        "{err}"
    );

    // predict -m: the default views, and the recorded score on the validation videos.
    let got = clips_and_hits(&out, &[], &val);
    assert_eq!(got.len(), val.len());
    assert!(got.iter().all(|&(c, _)| c == chosen), "{got:?}");
    let right = got.iter().filter(|&&(_, hit)| hit).count();
    assert_eq!(right as f64 / val.len() as f64, best, "{got:?}");
    // --clips overrides them.
    let one = clips_and_hits(&out, &["--clips", "1"], &val);
    assert!(one.iter().all(|&(c, _)| c == 1), "{one:?}");
}

/// Peak anonymous memory (KB) of a running command, read from /proc/PID/status every few
/// milliseconds (file-backed pages, such as the libraries' pages touched at exit, are left
/// out: they do not grow with the data). Stderr goes to `log`.
fn peak_anon_kb(cmd: &mut std::process::Command, log: &Path) -> (std::process::ExitStatus, u64) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        let text = std::fs::read_to_string(&status_file).unwrap_or_default();
        let anon = text
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        peak = peak.max(anon.unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `--cache-mb` bounds what training holds beyond the model's own footprint: a run on 60
/// videos with a cache just big enough for them peaks within that cache of a run on 8 (the
/// footprint: libraries, model, decoders, a batch's activations), plus the allocator's slack.
#[test]
fn the_cache_bounds_peak_memory() {
    let easy = easy_set();
    let dir = scratch("train-cache-memory");
    let (few, many) = (dir.join("few"), dir.join("many"));
    for label in ["pattern", "fractal"] {
        std::fs::create_dir_all(few.join(label)).unwrap();
        std::fs::create_dir_all(many.join(label)).unwrap();
        for i in 0..10 {
            let src = easy.join(label).join(format!("{label}{i}.mp4"));
            if i < 4 {
                std::fs::copy(&src, few.join(label).join(format!("{label}{i}.mp4"))).unwrap();
            }
            for copy in ["a", "b", "c"] {
                let dst = many.join(label).join(format!("{copy}{label}{i}.mp4"));
                std::fs::copy(&src, dst).unwrap();
            }
        }
    }
    const CACHE_MB: u64 = 250;
    const SLACK_MB: u64 = 64;
    let run = |data: &Path, name: &str| {
        let out = dir.join(format!("{name}-model"));
        let mut cmd = bin();
        let mode = if name == "freeze" {
            "--freeze"
        } else {
            "--epochs=1"
        };
        cmd.arg("train")
            .arg(data)
            .arg("-o")
            .arg(&out)
            .args([mode, "-b", "4", "--threads", "2", "-q"])
            .args(["--cache-mb", &CACHE_MB.to_string()]);
        let log = dir.join(format!("{name}.log"));
        let (status, kb) = peak_anon_kb(&mut cmd, &log);
        let err = std::fs::read_to_string(&log).unwrap();
        assert_eq!(status.code(), Some(0), "{name}: {err}");
        (kb, metrics(&out)["cache_mb"].as_f64().unwrap())
    };
    let (footprint, few_cache) = run(&few, "few");
    // Fine-tuning keeps each training video's clips at two more playback speeds (speed
    // jitter); the probe alone does not need them.
    let (_, freeze_cache) = run(&few, "freeze");
    assert!(
        few_cache > 1.8 * freeze_cache,
        "cache {few_cache:.1} MB fine-tuning, {freeze_cache:.1} MB with --freeze"
    );
    let (peak, cache) = run(&many, "many");
    // The cache is nearly full: the bound is about the data, not about headroom.
    assert!(cache > 0.6 * CACHE_MB as f64, "{cache} MB");
    let bound = footprint + (CACHE_MB + SLACK_MB) * 1024;
    eprintln!(
        "peak anonymous memory: {footprint} KB on 8 videos (cache {few_cache:.1} MB), {peak} KB \
         on 60 (cache {cache:.1} MB); bound {bound} KB"
    );
    assert!(
        peak <= bound,
        "peak {peak} KB over {bound} KB: footprint {footprint} KB (cache {few_cache:.1} MB) \
         + --cache-mb {CACHE_MB} (cache {cache:.1} MB) + {SLACK_MB} MB"
    );
}

/// `train --freeze` on `manifest` (written to DIR/m.csv), into DIR/m; asserts success.
fn train_on_manifest(dir: &Path, manifest: &str) -> (PathBuf, std::process::Output) {
    let csv = dir.join("m.csv");
    std::fs::write(&csv, manifest).unwrap();
    let out = dir.join("m");
    let o = bin()
        .args(["train", "--manifest"])
        .arg(&csv)
        .arg("-o")
        .arg(&out)
        .args(["--freeze", "--threads", "2"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_code(&o, 0);
    (out, o)
}
