//! End to end through `vidcls predict` on the synthetic motion benchmark: clips from a generator
//! style the default model never saw in training. Fails if frames come out of order, from the
//! wrong time, or mis-preprocessed. (scripts/eval_motion.py runs the full-size evaluation.)

use crate::support::{bin, ffmpeg, fixture, python, root, run_ok, Key};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use vidcls::report::{Record, VideoResult};

/// The generator's arguments for the held-out test set.
const HELDOUT_ARGS: [&str; 5] = ["--n-per-class", "4", "--seed", "90210", "--holdout-style"];

/// ffmpeg's output arguments for the time-reversed copies.
const REVERSE_ARGS: [&str; 7] = [
    "-vf", "reverse", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p",
];

/// 4 held-out-style clips per class (32), from a seed the training never used, plus each clip
/// reversed in time. Cached by the shared fixture cache under a key of the generator's
/// arguments and script (and FFmpeg's version), so a changed generator makes a new set instead
/// of reusing a stale one.
fn heldout() -> &'static (PathBuf, PathBuf) {
    static D: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    D.get_or_init(|| {
        let key = Key::new()
            .args(&HELDOUT_ARGS)
            .script("scripts/motion_dataset.py")
            .python()
            .ffmpeg();
        let dir = fixture("motion-heldout", &key, |out| {
            run_ok(
                python()
                    .arg(root().join("scripts/motion_dataset.py"))
                    .args(HELDOUT_ARGS)
                    .arg("--out")
                    .arg(out),
            );
        });
        let key = Key::new().fixture(&dir).args(&REVERSE_ARGS).ffmpeg();
        let rev = fixture("motion-heldout-reversed", &key, |out| {
            for (path, _) in manifest(&dir) {
                let dst = out.join(path.file_name().unwrap()).with_extension("mp4");
                let mut args = vec!["-i", path.to_str().unwrap()];
                args.extend(REVERSE_ARGS);
                args.push(dst.to_str().unwrap());
                ffmpeg(&args);
            }
        });
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

/// The pair (axis) an action belongs to: `move_left` and `move_right` are one pair.
fn pair_of(label: &str) -> [&str; 2] {
    let mut p = [label, opposite(label)];
    p.sort_unstable();
    p
}

/// What the single-frame baseline predicts on the held-out clips: (true label, top-1 label,
/// scores by label).
fn single_frame_predictions(config: &Path) -> Vec<(String, String, HashMap<String, f64>)> {
    let (dir, _) = heldout();
    let clips = manifest(dir);
    let files: Vec<PathBuf> = clips.iter().map(|c| c.0.clone()).collect();
    let preds = predict(&files, &["-m", config.to_str().unwrap()]);
    let names = vidcls::model::ModelConfig::from_file(config)
        .unwrap()
        .labels;
    clips
        .iter()
        .map(|(p, l)| {
            let v = &preds[&p.file_stem().unwrap().to_string_lossy().into_owned()];
            let scores = v.scores.clone().unwrap();
            let by_label = names.iter().cloned().zip(scores).collect();
            (l.clone(), v.top_k[0].label.clone(), by_label)
        })
        .collect()
}

/// What one frame can and cannot tell, measured through vidcls with `configs/motion_2d.json`
/// (`VIDCLS_MOTION_2D_CONFIG` points it at another config, e.g. an older model).
///
/// - Not collapsed: its answers spread over the classes. Without this, the direction check below
///   cannot fail: a model that answers the same scores for every clip ranks the right action of
///   a pair above its opposite for exactly half of the clips.
/// - It cannot tell the direction within the pair: the right action scores above its opposite
///   for about half of the clips, whichever way it errs.
///
/// How often its top-1 lies in the right pair is printed; it is not asserted, because no 2D
/// baseline trained so far has learned anything to set a threshold from.
#[test]
#[ignore = "models/motion_2d.pt is collapsed (27 of the 32 clips answered move_right): it learned \
            nothing from single frames, so it cannot show what one frame tells; see docs/MOTION.md"]
fn single_frame_baseline_is_not_collapsed_and_cannot_tell_direction() {
    let config = std::env::var_os("VIDCLS_MOTION_2D_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("configs/motion_2d.json"));
    let preds = single_frame_predictions(&config);
    let n = preds.len();
    assert_eq!(n, 32);

    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (_, top, _) in &preds {
        *counts.entry(top.as_str()).or_default() += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    let pair_right = preds
        .iter()
        .filter(|(l, top, _)| pair_of(l) == pair_of(top))
        .count();
    let direction_right = preds
        .iter()
        .filter(|(l, _, s)| s[l.as_str()] > s[opposite(l)])
        .count();
    eprintln!(
        "2D baseline: top-1 answers {counts:?}; top-1 in the right pair {pair_right}/{n}; right \
         direction within the pair {direction_right}/{n}"
    );
    assert!(
        counts.len() >= 6 && most * 100 <= 40 * n,
        "the 2D baseline has collapsed: {} of 8 classes predicted, the commonest {most}/{n} times",
        counts.len()
    );
    assert!(
        direction_right * 100 >= 25 * n && direction_right * 100 <= 75 * n,
        "a single frame tells direction: right within the pair for {direction_right}/{n}"
    );
}
