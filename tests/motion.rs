//! End to end through `vidcls predict` on the synthetic motion benchmark: clips from a generator
//! style the default model never saw in training. Fails if frames come out of order, from the
//! wrong time, or mis-preprocessed. (scripts/eval_motion.py runs the full-size evaluation.)

use crate::support::{bin, ffmpeg, python, root, run_ok, shared_dir};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use vidcls::report::{Record, VideoResult};

/// 4 held-out-style clips per class (32), from a seed the training never used, plus each clip
/// reversed in time.
fn heldout() -> &'static (PathBuf, PathBuf) {
    static D: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    D.get_or_init(|| {
        let dir = shared_dir().join("motion-heldout");
        let rev = shared_dir().join("motion-heldout-reversed");
        if !dir.join("manifest.csv").exists() {
            let _ = std::fs::remove_dir_all(&dir);
            run_ok(
                python()
                    .arg(root().join("scripts/motion_dataset.py"))
                    .args([
                        "--n-per-class",
                        "4",
                        "--seed",
                        "90210",
                        "--holdout-style",
                        "--out",
                    ])
                    .arg(&dir),
            );
        }
        if !rev.exists() {
            let tmp = shared_dir().join("motion-heldout-reversed.tmp");
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).unwrap();
            for (path, _) in manifest(&dir) {
                let out = tmp.join(path.file_name().unwrap());
                let out = out.with_extension("mp4");
                ffmpeg(&[
                    "-i",
                    path.to_str().unwrap(),
                    "-vf",
                    "reverse",
                    "-an",
                    "-c:v",
                    "libx264",
                    "-pix_fmt",
                    "yuv420p",
                    out.to_str().unwrap(),
                ]);
            }
            std::fs::rename(&tmp, &rev).unwrap();
        }
        (dir, rev)
    })
}

/// (clip path, true label) from the generator's manifest.
fn manifest(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut r = csv::Reader::from_path(dir.join("manifest.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let (pi, li) = (
        headers.iter().position(|h| h == "path").unwrap(),
        headers.iter().position(|h| h == "label").unwrap(),
    );
    r.records()
        .map(|row| {
            let row = row.unwrap();
            let p = Path::new(&row[pi]);
            (
                if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    dir.join(p)
                },
                row[li].to_string(),
            )
        })
        .collect()
}

fn opposite(label: &str) -> &'static str {
    match label {
        "move_left" => "move_right",
        "move_right" => "move_left",
        "move_up" => "move_down",
        "move_down" => "move_up",
        "rotate_cw" => "rotate_ccw",
        "rotate_ccw" => "rotate_cw",
        "zoom_in" => "zoom_out",
        "zoom_out" => "zoom_in",
        other => panic!("unknown motion label {other}"),
    }
}

fn predict(files: &[PathBuf], extra: &[&str]) -> HashMap<String, VideoResult> {
    let out = run_ok(
        bin()
            .args(["predict", "-f", "jsonl", "--all-scores", "-q"])
            .args(extra)
            .args(files),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| match serde_json::from_str::<Record>(l).unwrap() {
            Record::Ok(v) => (
                Path::new(&v.path)
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                v,
            ),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn labels(config: &str) -> Vec<String> {
    vidcls::model::ModelConfig::from_file(&root().join(config))
        .unwrap()
        .labels
}

#[test]
fn default_model_recognises_unseen_motion_and_its_reversal() {
    let (dir, rev) = heldout();
    let clips = manifest(dir);
    assert_eq!(clips.len(), 32);
    let files: Vec<PathBuf> = clips.iter().map(|c| c.0.clone()).collect();
    let preds = predict(&files, &["-k", "1"]);
    let stem = |p: &Path| p.file_stem().unwrap().to_string_lossy().into_owned();
    let correct = clips
        .iter()
        .filter(|(p, l)| preds[&stem(p)].top_k[0].label == *l)
        .count();
    let acc = correct as f64 / clips.len() as f64;
    eprintln!("held-out top-1: {correct}/{}", clips.len());
    assert!(acc >= 0.9, "held-out top-1 {acc:.3} < 0.9");

    let rfiles: Vec<PathBuf> = clips
        .iter()
        .map(|(p, _)| rev.join(p.file_name().unwrap()).with_extension("mp4"))
        .collect();
    let rpreds = predict(&rfiles, &["-k", "1"]);
    let flipped = clips
        .iter()
        .filter(|(p, l)| rpreds[&stem(p)].top_k[0].label == opposite(l))
        .count();
    eprintln!("reversed -> opposite: {flipped}/{}", clips.len());
    assert!(
        flipped as f64 / clips.len() as f64 >= 0.85,
        "reversed clips: {flipped}/{}",
        clips.len()
    );

    // The fast CPU path agrees with fp32.
    let bf16 = predict(&files, &["-k", "1", "--precision", "bf16"]);
    let agree = preds
        .iter()
        .filter(|(k, v)| bf16[*k].top_k[0].index == v.top_k[0].index)
        .count();
    eprintln!("bf16 top-1 agreement with fp32: {agree}/{}", preds.len());
    assert!(
        agree as f64 / preds.len() as f64 >= 0.95,
        "bf16 agrees on {agree}/{}",
        preds.len()
    );
}

#[test]
fn single_frame_baseline_cannot_tell_directions_apart() {
    let (dir, _) = heldout();
    let clips = manifest(dir);
    let files: Vec<PathBuf> = clips.iter().map(|c| c.0.clone()).collect();
    let cfg = root().join("configs/motion_2d.json");
    let preds = predict(&files, &["-m", cfg.to_str().unwrap()]);
    let names = labels("configs/motion_2d.json");
    let idx = |l: &str| names.iter().position(|n| n == l).unwrap();
    // Within the true label's pair: does the right direction score higher than its opposite?
    let right = clips
        .iter()
        .filter(|(p, l)| {
            let s = preds[&p.file_stem().unwrap().to_string_lossy().into_owned()]
                .scores
                .clone()
                .unwrap();
            s[idx(l)] > s[idx(opposite(l))]
        })
        .count();
    eprintln!(
        "2D baseline, right direction within the pair: {right}/{}",
        clips.len()
    );
    assert!(
        (right as f64) / (clips.len() as f64) <= 0.75,
        "a single frame tells direction: {right}/{}",
        clips.len()
    );
}
