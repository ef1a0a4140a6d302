//! The model stage against PyTorch: `vidcls predict` and scripts/reference_predict.py (PyAV,
//! torchvision-style transforms, the same TorchScript file) must agree on sampled frames,
//! model inputs and class probabilities. Plus the load-time checks of a model against its config.

use crate::support::{assert_code, bin, lavfi_video, python, root, run_ok, scratch, shared_dir};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use vidcls::report::{Record, VideoResult};

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

/// Random-initialised exports (seed 0, BatchNorm-calibrated so outputs are peaked) of the
/// torchvision architectures and I3D at 16 frames (s3d and i3d default to 64: slow here), made once.
fn exported() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let out = shared_dir().join("exported");
        let archs = ["r2plus1d_18", "r3d_18", "mc3_18", "s3d", "i3d"];
        if !archs
            .iter()
            .all(|a| out.join("models").join(format!("{a}.pt")).exists())
        {
            let mut cmd = python();
            cmd.arg(root().join("scripts/export_models.py"))
                .args([
                    "--random-init",
                    "--seed",
                    "0",
                    "--frames",
                    "16",
                    "--out-dir",
                ])
                .arg(&out)
                .args(archs);
            run_ok(&mut cmd);
        }
        let labels = out.join("configs/kinetics400.txt");
        if !labels.exists() {
            std::fs::copy(root().join("configs/kinetics400.txt"), labels).unwrap();
        }
        out
    })
}

/// Reads a little-endian float32 `.npy` file: (shape, values).
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
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

fn records(stdout: &[u8]) -> Vec<VideoResult> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| match serde_json::from_str::<Record>(l) {
            Ok(Record::Ok(v)) => v,
            other => panic!("unexpected record {l}: {other:?}"),
        })
        .collect()
}

/// Runs both pipelines with the same views and compares everything the parity contract names.
fn check_parity(config: &Path, views: &[&str], name: &str) {
    let videos: Vec<&str> = parity_videos()
        .iter()
        .map(|p| p.to_str().unwrap())
        .collect();
    let dir = scratch(&format!("parity-{name}"));
    let (ours, theirs) = (dir.join("vidcls"), dir.join("reference"));
    let mut cmd = bin();
    cmd.args([
        "predict",
        "--model",
        config.to_str().unwrap(),
        "-f",
        "jsonl",
        "--all-scores",
        "-k",
        "5",
        "-q",
    ])
    .args(["--device", "cpu", "--dump-inputs", ours.to_str().unwrap()])
    .args(views)
    .args(&videos);
    let mine = records(&run_ok(&mut cmd).stdout);
    let mut cmd = python();
    cmd.arg(root().join("scripts/reference_predict.py"))
        .args([
            "--model",
            config.to_str().unwrap(),
            "--top-k",
            "5",
            "--dump-inputs",
            theirs.to_str().unwrap(),
        ])
        .args(views)
        .args(&videos);
    let refs = records(&run_ok(&mut cmd).stdout);
    assert_eq!(mine.len(), videos.len());
    assert_eq!(refs.len(), videos.len());
    let cfg = vidcls::model::ModelConfig::from_file(config).unwrap();
    // One 8-bit level, in normalised units, is value_scale / 255 / std.
    let level = cfg.value_scale / 255.0 / cfg.std.iter().cloned().fold(f64::INFINITY, f64::min);
    for (i, (m, r)) in mine.iter().zip(&refs).enumerate() {
        let what = format!("{name} on {}", m.path);
        assert_eq!(m.path, r.path);
        // Same frames: identical presentation times, clip by clip.
        assert_eq!(m.frame_times.len(), r.frame_times.len(), "{what}: clips");
        for (a, b) in m.frame_times.iter().zip(&r.frame_times) {
            assert_eq!(a.len(), b.len(), "{what}: frames per clip");
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() < 1e-6,
                    "{what}: frame times differ\n{a:?}\n{b:?}"
                );
            }
        }
        assert_eq!(m.padded_frames, r.padded_frames, "{what}: padding");
        // Same model input within one 8-bit level per value.
        let (sa, a) = read_npy(&ours.join(format!("{i}.npy")));
        let (sb, b) = read_npy(&theirs.join(format!("{i}.npy")));
        assert_eq!(sa, sb, "{what}: input shapes");
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs() as f64)
            .fold(0.0, f64::max);
        assert!(
            worst <= level + 1e-5,
            "{what}: inputs differ by {worst} > one level {level}"
        );
        // Same probabilities to 1e-4, and the same top-5 order where neighbours differ by more.
        let (ps, pr) = (m.scores.as_ref().unwrap(), r.scores.as_ref().unwrap());
        assert_eq!(ps.len(), cfg.labels.len());
        let diff = ps
            .iter()
            .zip(pr)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(diff <= 1e-4, "{what}: probabilities differ by {diff}");
        for (k, (a, b)) in m.top_k.iter().zip(&r.top_k).enumerate() {
            let clear =
                |j: usize| j >= m.top_k.len() || (m.top_k[k].score - m.top_k[j].score).abs() > 1e-4;
            if (k == 0 || clear(k - 1)) && clear(k + 1) {
                assert_eq!(a.index, b.index, "{what}: rank {} differs", k + 1);
            }
        }
    }
}

#[test]
fn parity_with_pytorch_torchvision_architectures() {
    let dir = exported();
    for arch in ["r2plus1d_18", "r3d_18", "mc3_18"] {
        check_parity(
            &dir.join(format!("configs/{arch}.json")),
            &["--clips", "2"],
            arch,
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
        );
    }
}

#[test]
fn parity_with_pytorch_default_model_multiview() {
    let cfg = root().join("configs/motion.json");
    check_parity(&cfg, &["--clips", "3", "--crops", "3"], "motion");
    check_parity(
        &cfg,
        &["--clips", "2", "--aggregate", "logit"],
        "motion-logit",
    );
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
    let video = parity_videos()[0].to_str().unwrap();
    let out = bin()
        .args(["predict", "--model", config.to_str().unwrap()])
        .args(extra)
        .arg(video)
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(out.stdout.is_empty());
    String::from_utf8_lossy(&out.stderr).into_owned()
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
    let video = parity_videos()[0].to_str().unwrap();
    let out = run_ok(bin().args([
        "predict", "-f", "jsonl", "--frames", "32", "--fps", "30", video,
    ]));
    let r = records(&out.stdout);
    assert_eq!(r[0].frame_times[0].len(), 32);
    let out = run_ok(bin().args(["predict", "-f", "jsonl", "--frames", "64", video]));
    let r = records(&out.stdout);
    assert_eq!(r[0].frame_times[0].len(), 64);
    // 64 frames at 15 fps is longer than the 3 s video: padded, and said so.
    assert!(r[0].padded_frames > 0);
}

#[test]
fn inflation_fixed_point_and_export_checks() {
    let mut cmd = python();
    cmd.arg(root().join("tests/python/test_inflation.py"))
        .current_dir(root());
    let out = run_ok(&mut cmd);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("passed"), "{text}");
}

#[test]
fn precision_without_kernels_is_a_clear_load_error() {
    // libtorch has no bfloat16 avg_pool3d on the CPU, which s3d uses.
    let cfg = exported().join("configs/s3d.json");
    let err = predict_fails(&cfg, &["--precision", "bf16", "--device", "cpu"]);
    assert!(
        err.contains("in bf16 on cpu") && err.contains("--precision fp32"),
        "{err}"
    );
    let err = predict_fails(&cfg, &["--precision", "fp16", "--device", "cpu"]);
    assert!(err.contains("fp16 needs a CUDA device"), "{err}");
}
