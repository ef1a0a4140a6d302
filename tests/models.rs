//! The model stage against PyTorch: `vidcls predict` and scripts/reference_predict.py (PyAV,
//! torchvision-style transforms, the same TorchScript file) must agree on sampled frames,
//! model inputs and class scores, for every exported architecture. Plus the load-time checks
//! of a model against its config.
//!
//! Scores are compared as log-probabilities, to a tolerance scaled to their spread over the
//! classes (`REL_TOL`): the two pipelines agree to 1e-7..3e-5 of it, a wrong aggregation or a
//! clip one frame late moves them by 5e-2 or more (`parity_check_catches_*` show it). Random-init exports are
//! BatchNorm-calibrated so that their outputs are peaked (checked here on every video), or the
//! top-k order would be a coin toss the rank check has to skip.

use crate::support::{
    expect_ok, fixture, lavfi_video, predict, python, root, run_ok, scratch, Key,
};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use vidcls::report::VideoResult;

/// Log-probabilities of the two pipelines agree to this fraction of their spread (standard
/// deviation over the classes). Measured here: the pipelines agree to 1e-7..3e-5 of it (s3d
/// the loosest); a wrong aggregation or a one-frame shift moves them by 5e-2 or more.
const REL_TOL: f64 = 1e-3;

/// H.264 parity fixtures (bit-exact across FFmpeg versions): landscape, portrait, 30 fps.
fn parity_videos() -> &'static Vec<PathBuf> {
    static V: OnceLock<Vec<PathBuf>> = OnceLock::new();
    V.get_or_init(|| {
        [
            ("land.mp4", "testsrc2=size=240x180:rate=25", "3"),
            ("port.mp4", "mandelbrot=size=120x160:rate=30", "2.5"),
            ("small.mp4", "testsrc=size=176x144:rate=24,hue=H=t", "2"),
        ]
        .iter()
        .map(|(name, src, secs)| lavfi_video("parity", name, src, secs, "libx264"))
        .collect()
    })
}

/// `scripts/export_models.py --random-init --seed 0 ARGS`, into a fixture directory keyed by
/// the arguments, the exporter's sources and the Python environment.
fn export(name: &str, args: &[&str]) -> PathBuf {
    let mut all = vec!["--random-init", "--seed", "0"];
    all.extend(args);
    let key = Key::new()
        .args(&all)
        .script("scripts/export_models.py")
        .script("scripts/precision_record.py")
        .script("scripts/i3d.py")
        .python();
    fixture(name, &key, |dir| {
        run_ok(
            python()
                .arg(root().join("scripts/export_models.py"))
                .args(&all)
                .arg("--out-dir")
                .arg(dir),
        );
    })
}

/// The torchvision CNNs and I3D at 16 frames (s3d and i3d default to 64: slow here).
fn exported() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        export(
            "export-cnn",
            &[
                "--frames",
                "16",
                "r2plus1d_18",
                "r3d_18",
                "mc3_18",
                "s3d",
                "i3d",
            ],
        )
    })
}

/// The transformers (mvit_v1_b: fixed 16 frames; swin3d_t at 8 instead of 32) and
/// PyTorchVideo's I3D ResNet-50 at its 8 frames, each in its own directory.
fn exported_large(arch: &str) -> PathBuf {
    match arch {
        "mvit_v1_b" => export("export-mvit", &["mvit_v1_b"]),
        "swin3d_t" => export("export-swin3d", &["--frames", "8", "swin3d_t"]),
        "i3d_r50" => export("export-i3d-r50", &["i3d_r50"]),
        other => panic!("no large export {other}"),
    }
}

/// r2plus1d_18 exported with the channels-last-3d layout baked in (`--channels-last`; its
/// default export is contiguous).
fn exported_channels_last() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        export(
            "export-channels-last",
            &["--frames", "16", "--channels-last", "r2plus1d_18"],
        )
    })
}

/// One pipeline's results on the parity videos, with the model inputs it dumped.
struct Side {
    results: Vec<VideoResult>,
    inputs: PathBuf,
}

/// `vidcls predict` with every score and the model inputs dumped.
fn run_vidcls(config: &Path, views: &[&str], videos: &[&Path], dir: &Path) -> Side {
    let inputs = dir.join("vidcls");
    // Parity is checked in fp32: `--precision auto` runs bf16 where the CPU has native bf16
    // and the config records that bf16 agrees (the default model does).
    let precision: &[&str] = if views.contains(&"--precision") {
        &[]
    } else {
        &["--precision", "fp32"]
    };
    let results = predict(&["-f", "jsonl", "--all-scores", "-k", "5", "-q"])
        .args(["--model".as_ref(), config.as_os_str()])
        .args(precision)
        .args(["--device", "cpu", "--dump-inputs"])
        .arg(&inputs)
        .args(views)
        .args(videos)
        .ok()
        .results();
    assert_eq!(results.len(), videos.len());
    Side { results, inputs }
}

/// A Python pipeline (scripts/reference_predict.py, or a deliberately wrong variant of it).
fn run_python(script: &str, config: &Path, views: &[&str], videos: &[&Path], dir: &Path) -> Side {
    let inputs = dir.join(Path::new(script).file_stem().unwrap());
    let out = run_ok(
        python()
            .arg(root().join(script))
            .arg("--model")
            .arg(config)
            .args(["--top-k", "5", "--dump-inputs"])
            .arg(&inputs)
            .args(views)
            .args(videos),
    );
    let results: Vec<VideoResult> = crate::support::parse_jsonl(&out.stdout)
        .into_iter()
        .map(expect_ok)
        .collect();
    assert_eq!(results.len(), videos.len());
    Side { results, inputs }
}

/// Same frames (presentation times, clip by clip) and the same padding.
fn compare_frames(m: &VideoResult, r: &VideoResult) -> Result<(), String> {
    if m.frame_times.len() != r.frame_times.len() {
        return Err(format!(
            "{} clips against {}",
            m.frame_times.len(),
            r.frame_times.len()
        ));
    }
    for (a, b) in m.frame_times.iter().zip(&r.frame_times) {
        if a.len() != b.len() || a.iter().zip(b).any(|(x, y)| (x - y).abs() >= 1e-6) {
            return Err(format!("frame times differ\n{a:?}\n{b:?}"));
        }
    }
    if m.padded_frames != r.padded_frames {
        return Err(format!(
            "padding {} against {}",
            m.padded_frames, r.padded_frames
        ));
    }
    Ok(())
}

/// Same model input within `tol` per value.
fn compare_inputs(a: &Path, b: &Path, tol: f64) -> Result<(), String> {
    let (sa, a) = crate::support::read_npy(a);
    let (sb, b) = crate::support::read_npy(b);
    if sa != sb {
        return Err(format!("input shapes {sa:?} and {sb:?}"));
    }
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() as f64)
        .fold(0.0, f64::max);
    if worst > tol {
        return Err(format!("inputs differ by {worst} > {tol}"));
    }
    Ok(())
}

fn log_probs(r: &VideoResult) -> Result<Vec<f64>, String> {
    let scores = r.scores.as_ref().ok_or("no scores in the record")?;
    scores
        .iter()
        .map(|&p| {
            if p > 0.0 && p.is_finite() {
                Ok(p.ln())
            } else {
                Err(format!("score {p} has no logarithm"))
            }
        })
        .collect()
}

fn std_dev(v: &[f64]) -> f64 {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

/// Log-probabilities agree to `REL_TOL` of the reference's spread, and the top-k order agrees
/// wherever neighbours are further apart than that. Ok: the worst difference over the spread.
fn compare_scores(m: &VideoResult, r: &VideoResult) -> Result<f64, String> {
    let (lm, lr) = (log_probs(m)?, log_probs(r)?);
    if lm.len() != lr.len() {
        return Err(format!("{} scores against {}", lm.len(), lr.len()));
    }
    let spread = std_dev(&lr);
    let tol = REL_TOL * spread;
    let worst = lm
        .iter()
        .zip(&lr)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    if worst > tol {
        return Err(format!(
            "log-probabilities differ by up to {worst:.3e} > {tol:.3e} ({REL_TOL} x their spread {spread:.3})"
        ));
    }
    let gap = |j: usize, k: usize| (lr[r.top_k[j].index] - lr[r.top_k[k].index]).abs();
    let n = m.top_k.len().min(r.top_k.len());
    for k in 0..n {
        let clear = (k == 0 || gap(k - 1, k) > tol) && (k + 1 >= n || gap(k, k + 1) > tol);
        if clear && m.top_k[k].index != r.top_k[k].index {
            return Err(format!(
                "rank {} is class {} against {}",
                k + 1,
                m.top_k[k].index,
                r.top_k[k].index
            ));
        }
    }
    Ok(worst / spread)
}

/// Outputs peaked enough for the comparison to mean something: well below the entropy of a
/// uniform guess, and a top-1 that stands clear of the top-2 (so rank 1 is always compared).
/// Returns the entropy as a fraction of the maximum.
fn assert_peaked(r: &VideoResult, what: &str) -> f64 {
    let scores = r.scores.as_ref().unwrap();
    let entropy: f64 = -scores
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|p| p * p.ln())
        .sum::<f64>();
    let ratio = entropy / (scores.len() as f64).ln();
    let lr = log_probs(r).unwrap();
    let gap = lr[r.top_k[0].index] - lr[r.top_k[1].index];
    assert!(
        ratio < 0.9 && gap > REL_TOL * std_dev(&lr),
        "{what}: outputs too flat for parity to bite: entropy {ratio:.3} of the maximum, \
         top-1 {:.4}, log gap to top-2 {gap:.2e}",
        r.top_k[0].score
    );
    ratio
}

/// Runs both pipelines with the same views and compares everything the parity contract names.
fn check_parity(config: &Path, views: &[&str], name: &str, videos: &[&Path]) {
    let dir = scratch(&format!("parity-{name}"));
    let ours = run_vidcls(config, views, videos, &dir);
    let theirs = run_python("scripts/reference_predict.py", config, views, videos, &dir);
    let cfg = vidcls::model::ModelConfig::from_file(config).unwrap();
    // One 8-bit level, in normalised units, is value_scale / 255 / std.
    let level = cfg.value_scale / 255.0 / cfg.std.iter().cloned().fold(f64::INFINITY, f64::min);
    for (i, (m, r)) in ours.results.iter().zip(&theirs.results).enumerate() {
        let what = format!("{name} on {}", m.path);
        assert_eq!(m.path, r.path);
        compare_frames(m, r).unwrap_or_else(|e| panic!("{what}: {e}"));
        let file = format!("{i}.npy");
        compare_inputs(
            &ours.inputs.join(&file),
            &theirs.inputs.join(&file),
            level + 1e-5,
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(m.scores.as_ref().unwrap().len(), cfg.labels.len());
        let entropy = assert_peaked(r, &what);
        let rel = compare_scores(m, r).unwrap_or_else(|e| panic!("{what}: {e}"));
        eprintln!(
            "{what}: log-probabilities agree to {rel:.1e} of their spread; top-1 {:.3}, \
             entropy {entropy:.2} of the maximum",
            r.top_k[0].score
        );
    }
}

fn all_videos() -> Vec<&'static Path> {
    parity_videos().iter().map(PathBuf::as_path).collect()
}

#[test]
fn parity_with_pytorch_torchvision_architectures() {
    let dir = exported();
    for arch in ["r2plus1d_18", "r3d_18", "mc3_18"] {
        check_parity(
            &dir.join(format!("configs/{arch}.json")),
            &["--clips", "2"],
            arch,
            &all_videos(),
        );
    }
}

#[test]
fn parity_with_pytorch_s3d_and_i3d() {
    let dir = exported();
    for arch in ["s3d", "i3d"] {
        check_parity(
            &dir.join(format!("configs/{arch}.json")),
            &["--clips", "1"],
            arch,
            &all_videos(),
        );
    }
}

/// A large export on one video, one clip: the point is the graph, not the sampling.
fn check_large(arch: &str) {
    check_parity(
        &exported_large(arch).join(format!("configs/{arch}.json")),
        &["--clips", "1"],
        arch,
        &[parity_videos()[2].as_path()],
    );
}

#[test]
fn parity_with_pytorch_mvit_v1_b() {
    check_large("mvit_v1_b");
}

#[test]
fn parity_with_pytorch_swin3d_t() {
    check_large("swin3d_t");
}

#[test]
fn parity_with_pytorch_i3d_r50() {
    check_large("i3d_r50");
}

#[test]
fn parity_with_pytorch_channels_last_export() {
    let cl = exported_channels_last().join("configs/r2plus1d_18.json");
    check_parity(
        &cl,
        &["--clips", "1"],
        "r2plus1d_18-channels-last",
        &all_videos(),
    );
    // `--channels-last` bakes the channels-last-3d layout in (and says so); the layout changes
    // how the numbers are laid out, not what they are: the same weights (same seed) give the
    // same scores as the default, contiguous export.
    let plain = exported().join("configs/r2plus1d_18.json");
    let layout = |p: &Path| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap()["weights"]
            ["layout"]
            .clone()
    };
    assert_eq!(layout(&cl), "channels_last_3d");
    assert_eq!(layout(&plain), serde_json::Value::Null);
    let dir = scratch("channels-last-vs-plain");
    let a = run_vidcls(&cl, &["--clips", "1"], &all_videos(), &dir.join("cl"));
    let b = run_vidcls(&plain, &["--clips", "1"], &all_videos(), &dir.join("plain"));
    for (x, y) in a.results.iter().zip(&b.results) {
        compare_scores(x, y).unwrap_or_else(|e| panic!("channels-last vs plain, {}: {e}", x.path));
    }
}

#[test]
fn parity_with_pytorch_default_model_multiview() {
    let cfg = root().join("configs/motion.json");
    check_parity(
        &cfg,
        &["--clips", "3", "--crops", "3"],
        "motion",
        &all_videos(),
    );
    check_parity(
        &cfg,
        &["--clips", "2", "--aggregate", "logit"],
        "motion-logit",
        &all_videos(),
    );
}

/// The score comparison alone (frames and inputs aside) rejects a reference whose every frame
/// is one later than it should be.
#[test]
fn parity_check_catches_one_frame_shift() {
    let cfg = exported().join("configs/r3d_18.json");
    let dir = scratch("parity-shifted");
    let views = ["--clips", "2"];
    let ours = run_vidcls(&cfg, &views, &all_videos(), &dir);
    let late = run_python(
        "tests/python/shifted_reference.py",
        &cfg,
        &views,
        &all_videos(),
        &dir,
    );
    for (m, r) in ours.results.iter().zip(&late.results) {
        assert!(
            compare_frames(m, r).is_err(),
            "{}: the shifted reference sampled the same frames",
            m.path
        );
        match compare_scores(m, r) {
            Err(e) => eprintln!("{}: one frame late: {e}", m.path),
            Ok(rel) => panic!(
                "{}: one frame late passes the score check ({rel:.1e} of the spread)",
                m.path
            ),
        }
    }
}

/// ... and scores aggregated the wrong way (softmax of mean logits against mean of softmaxes).
#[test]
fn parity_check_catches_wrong_aggregation() {
    let cfg = exported().join("configs/r3d_18.json");
    let dir = scratch("parity-aggregation");
    let ours = run_vidcls(&cfg, &["--clips", "2"], &all_videos(), &dir);
    let logit = run_python(
        "scripts/reference_predict.py",
        &cfg,
        &["--clips", "2", "--aggregate", "logit"],
        &all_videos(),
        &dir,
    );
    for (m, r) in ours.results.iter().zip(&logit.results) {
        compare_frames(m, r).unwrap();
        match compare_scores(m, r) {
            Err(e) => eprintln!("{}: logit against prob: {e}", m.path),
            Ok(rel) => panic!(
                "{}: logit aggregation passes against prob ({rel:.1e} of the spread)",
                m.path
            ),
        }
    }
}

/// A copy of the default model's config with some fields changed, pointing at its weights.
fn altered_config(name: &str, change: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("configs/motion.json")).unwrap())
            .unwrap();
    v["file"] = root().join("models/motion.pt").to_str().unwrap().into();
    change(&mut v);
    let p = scratch(name).join("model.json");
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    p
}

fn predict_fails(config: &Path, extra: &[&str]) -> String {
    let out = predict(&["--model".as_ref(), config.as_os_str()])
        .args(extra)
        .arg(&parity_videos()[0])
        .expect_code(2);
    assert!(out.output.stdout.is_empty());
    out.stderr()
}

#[test]
fn load_checks_model_against_config() {
    let seven = altered_config("seven-labels", |v| {
        v["labels"].as_array_mut().unwrap().pop();
    });
    let err = predict_fails(&seven, &[]);
    assert!(
        err.contains("outputs 8 classes but its config has 7 labels"),
        "{err}"
    );

    let fixed = altered_config("fixed-head", |v| v["variable_frames"] = false.into());
    let err = predict_fails(&fixed, &["--frames", "32"]);
    assert!(
        err.contains("takes exactly") && err.contains("32 requested"),
        "{err}"
    );

    let min = altered_config("min-frames", |v| v["min_frames"] = 8.into());
    let err = predict_fails(&min, &["--frames", "4"]);
    assert!(err.contains("at least 8 frames"), "{err}");

    let missing = altered_config("missing-weights", |v| {
        v["file"] = "/no/such/model.pt".into()
    });
    let err = predict_fails(&missing, &[]);
    assert!(err.contains("/no/such/model.pt"), "{err}");

    let err = predict_fails(Path::new("/no/such/config.json"), &[]);
    assert!(err.contains("/no/such/config.json"), "{err}");
}

#[test]
fn long_clips_run_on_fully_convolutional_models() {
    let video = &parity_videos()[0];
    let r = predict(&["-f", "jsonl", "--frames", "32", "--fps", "30"])
        .arg(video)
        .ok()
        .results();
    assert_eq!(r[0].frame_times[0].len(), 32);
    let r = predict(&["-f", "jsonl", "--frames", "64"])
        .arg(video)
        .ok()
        .results();
    assert_eq!(r[0].frame_times[0].len(), 64);
    // 64 frames at 15 fps is longer than the 3 s video: padded, and said so.
    assert!(r[0].padded_frames > 0);
}

/// `(passed, failed)` from the last line of tests/python/test_inflation.py's output.
fn python_test_counts(stdout: &str) -> (usize, usize) {
    let last = stdout.lines().last().unwrap_or_default();
    let nums: Vec<usize> = last
        .strip_suffix(" failed")
        .and_then(|l| l.split_once(" passed, "))
        .map(|(p, f)| [p, f].iter().filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    assert_eq!(nums.len(), 2, "no \"N passed, M failed\" line:\n{stdout}");
    (nums[0], nums[1])
}

#[test]
fn inflation_fixed_point_and_export_checks() {
    // The exports to load and run: this file's, so the check has real models to look at.
    let dirs = std::env::join_paths([exported(), exported_channels_last()]).unwrap();
    let out = run_ok(
        python()
            .arg(root().join("tests/python/test_inflation.py"))
            .env("VIDCLS_EXPORT_DIRS", dirs)
            .current_dir(root()),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (passed, failed) = python_test_counts(&text);
    let ran = text.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(
        passed > 0 && failed == 0 && passed == ran,
        "{passed} passed, {failed} failed, {ran} ok lines:\n{text}"
    );
    assert!(text.contains("exported model(s) checked"), "{text}");
}

#[test]
fn python_test_counts_need_the_summary_line() {
    assert_eq!(python_test_counts("ok    a\n1 passed, 0 failed\n"), (1, 0));
    assert_eq!(python_test_counts("0 passed, 2 failed"), (0, 2));
    let missing = std::panic::catch_unwind(|| python_test_counts("all passed\n"));
    assert!(missing.is_err());
}

/// What scripts/export_models.py wrote before it kept pooling in float32: a graph with a bare
/// `avg_pool3d`, which libtorch's CPU has no bf16 kernel for (8 outputs, the default model's
/// input size). Returns a config for it (in scratch directory `name`), a copy of the default
/// model's with `change` applied.
fn graph_without_bf16_kernel(name: &str, change: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    const MAKE: &str = "\
import sys, torch
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 8, 1)
        self.pool = torch.nn.AvgPool3d((1, 2, 2))
    def forward(self, x):
        return self.pool(self.conv(x)).mean(dim=(2, 3, 4))
torch.manual_seed(0)
torch.jit.trace(M().eval(), torch.zeros(1, 3, 8, 64, 64)).save(sys.argv[1])
";
    let key = Key::new().args(&[MAKE]).python();
    let dir = fixture("no-bf16-kernel", &key, |dir| {
        run_ok(python().args(["-c", MAKE]).arg(dir.join("pool.pt")));
    });
    let pt = dir.join("pool.pt");
    altered_config(name, |v| {
        v["file"] = pt.to_str().unwrap().into();
        change(v);
    })
}

#[test]
fn precision_without_kernels_is_a_clear_load_error() {
    let cfg = graph_without_bf16_kernel("no-bf16-kernel", |_| {});
    let err = predict_fails(&cfg, &["--precision", "bf16", "--device", "cpu"]);
    assert!(
        err.contains("in bf16 on cpu") && err.contains("fp32 works"),
        "{err}"
    );
    let err = predict_fails(&cfg, &["--precision", "fp16", "--device", "cpu"]);
    assert!(err.contains("fp16 needs a CUDA device"), "{err}");
}

/// Every architecture's export, with the directory it is in.
fn all_exports() -> Vec<(&'static str, PathBuf)> {
    ["r2plus1d_18", "r3d_18", "mc3_18", "s3d", "i3d"]
        .into_iter()
        .map(|n| (n, exported().to_path_buf()))
        .chain(["mvit_v1_b", "swin3d_t", "i3d_r50"].map(|n| (n, exported_large(n))))
        .collect()
}

/// The configs in `configs/` are what `scripts/export_models.py --random-init --seed 0` writes
/// next to the graphs a user makes with it (weights source included), except for `frames` where
/// the fixture exports a shorter clip to save time.
#[test]
fn committed_configs_are_what_the_exporter_writes() {
    for (name, dir) in all_exports() {
        let read = |p: PathBuf| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
        };
        let committed = read(root().join(format!("configs/{name}.json")));
        let mut written = read(dir.join(format!("configs/{name}.json")));
        written["frames"] = committed["frames"].clone();
        assert_eq!(
            committed, written,
            "configs/{name}.json differs from what the exporter writes"
        );
    }
}

/// The `ran` of every record of `predict -f jsonl ARGS VIDEO`: (device, precision, batch).
fn ran_with(config: &Path, extra: &[&str]) -> Vec<(String, String, usize)> {
    predict(&[
        "-f".as_ref(),
        "jsonl".as_ref(),
        "--model".as_ref(),
        config.as_os_str(),
    ])
    .args(extra)
    .arg(&parity_videos()[0])
    .ok()
    .results()
    .into_iter()
    .map(|r| {
        let ran = r.ran.expect("records say how the model ran");
        (ran.device, ran.precision, ran.batch_size)
    })
    .collect()
}

fn ran(device: &str, precision: &str, batch: usize) -> Vec<(String, String, usize)> {
    vec![(device.to_string(), precision.to_string(), batch)]
}

#[test]
fn auto_choices_are_recorded_and_flags_override_them() {
    let native_bf16 = vidcls::model::cpu_has_native_bf16();
    // The committed default model records that bf16 agrees: auto takes bf16 where the CPU
    // has native bf16, else fp32; `--precision fp32` overrides it.
    let committed = altered_config("auto-committed", |_| {});
    let expected = if native_bf16 { "bf16" } else { "fp32" };
    assert_eq!(
        ran_with(&committed, &["--device", "cpu"]),
        ran("cpu", expected, 1)
    );
    assert_eq!(
        ran_with(&committed, &["--device", "cpu", "--precision", "fp32"]),
        ran("cpu", "fp32", 1)
    );
    // No export-time record of reduced precision: auto stays in fp32, batch 1 on a CPU.
    let plain = altered_config("auto-plain", |v| {
        v.as_object_mut().unwrap().remove("reduced_precision");
    });
    assert_eq!(
        ran_with(&plain, &["--device", "cpu"]),
        ran("cpu", "fp32", 1)
    );
    assert_eq!(
        ran_with(
            &plain,
            &["--device", "cpu", "--precision", "bf16", "-b", "4"]
        ),
        ran("cpu", "bf16", 4)
    );
    // bf16 recorded as disagreeing (below AUTO_MIN_AGREEMENT): auto stays in fp32, whatever
    // the CPU; `--precision bf16` still runs it when asked.
    let disagreed = altered_config("auto-bf16-disagrees", |v| {
        v["reduced_precision"] = serde_json::json!({"clips": 64, "bf16_top1_agreement": 0.98});
    });
    assert_eq!(
        ran_with(&disagreed, &["--device", "cpu"]),
        ran("cpu", "fp32", 1)
    );
    assert_eq!(
        ran_with(&disagreed, &["--device", "cpu", "--precision", "bf16"]),
        ran("cpu", "bf16", 1)
    );
    // bf16 recorded as agreeing: auto takes it where the CPU has native bf16.
    let agreed = altered_config("auto-bf16", |v| {
        v["reduced_precision"] = serde_json::json!({"clips": 8, "bf16_top1_agreement": 1.0});
    });
    let expected = if native_bf16 { "bf16" } else { "fp32" };
    assert_eq!(
        ran_with(&agreed, &["--device", "cpu"]),
        ran("cpu", expected, 1)
    );
    assert_eq!(
        ran_with(
            &agreed,
            &["--device", "cpu", "--precision", "fp32", "-b", "2"]
        ),
        ran("cpu", "fp32", 2)
    );
}

#[test]
fn auto_falls_back_to_fp32_where_the_graph_has_no_kernel() {
    // A graph with a bare avg_pool3d does not run in bf16 on the CPU; even with a record
    // saying bf16 agrees, auto must still run it, in fp32.
    let cfg = graph_without_bf16_kernel("auto-no-bf16-kernel", |v| {
        v["reduced_precision"] = serde_json::json!({"clips": 8, "bf16_top1_agreement": 1.0});
    });
    assert!(
        vidcls::model::cpu_has_native_bf16(),
        "this check needs a CPU with native bf16 (AVX512-BF16 or AMX), or auto never tries bf16"
    );
    assert_eq!(ran_with(&cfg, &["--device", "cpu"]), ran("cpu", "fp32", 1));
    predict_fails(&cfg, &["--precision", "bf16", "--device", "cpu"]);
}

/// Every exported architecture runs `--precision bf16` (the exporter keeps the layers without a
/// bf16 CPU kernel in float32). Random-init exports carry no precision record: agreement between
/// two random models says nothing of trained ones, so `--precision auto` runs them in fp32
/// whatever the CPU (`auto_choices_are_recorded_and_flags_override_them` runs a config without
/// one; records come from real weights: `models pull`, `train`, `--weights`).
#[test]
fn every_export_runs_in_bf16_and_carries_no_random_record() {
    for (name, dir) in all_exports() {
        let cfg = dir.join(format!("configs/{name}.json"));
        let bf16 = ["--device", "cpu", "--clips", "1", "--precision", "bf16"];
        assert_eq!(
            ran_with(&cfg, &bf16),
            ran("cpu", "bf16", 1),
            "{name} in bf16"
        );
        let record = vidcls::model::ModelConfig::from_file(&cfg)
            .unwrap()
            .reduced_precision;
        assert!(
            record.is_none(),
            "{name}: a random-init export wrote a precision record {record:?}"
        );
    }
}

/// `scripts/precision_record.py --videos` measures on the centre clip of each video that
/// decodes, names the files it leaves out, and says where its clips came from; with no video
/// decoded it exits non-zero and leaves the config as it was.
#[test]
fn precision_record_on_videos_names_what_it_leaves_out() {
    let cfg = altered_config("record-videos", |_| {});
    let dir = scratch("record-videos-inputs");
    let broken = dir.join("broken.mp4");
    std::fs::write(&broken, b"not a video").unwrap();
    let videos = parity_videos();
    let record = |paths: &[&Path]| {
        python()
            .arg(root().join("scripts/precision_record.py"))
            .arg(&cfg)
            .arg("--videos")
            .args(paths)
            .output()
            .unwrap()
    };
    let out = record(&[&videos[0], &broken, &videos[1]]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: left out", broken.display())),
        "{stderr}"
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    let r = &written["reduced_precision"];
    assert_eq!(r["clips"], 2, "{r}");
    assert_eq!(r["clips_from"], "videos", "{r}");
    let agreement = r["bf16_top1_agreement"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&agreement), "{r}");

    let before = std::fs::read_to_string(&cfg).unwrap();
    let out = record(&[&broken]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no video decoded"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), before);
}
