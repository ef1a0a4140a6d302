//! `vidcls models pull`: published weights from a loopback server laid out like
//! download.pytorch.org and the Hugging Face Hub (tests/python/pretrained_fixture.py), filled
//! into the shipped weight-free graphs, against the reference implementations themselves.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SCRIPT: &str = "tests/python/pretrained_fixture.py";
const HUB_REPO: &str = "vidcls-test/videomae-small-k400";

/// The reference weights (made once per fixture key: ~430 MB, about a minute).
fn weights() -> PathBuf {
    let key = Key::new()
        .python()
        .script(SCRIPT)
        .script("scripts/export_graphs.py")
        .script("scripts/export_models.py")
        .args(&["make"]);
    fixture("pretrained-weights", &key, |dir| {
        run_ok(python().arg(root().join(SCRIPT)).arg("make").arg(dir));
    })
}

/// The loopback server (one per test process; it ends with the process) and its state folder:
/// `port`, `cards/`, `ranges.log`.
pub(crate) struct Server {
    pub(crate) state: PathBuf,
    pub(crate) port: u16,
    _child: Child,
}

pub(crate) fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let www = weights();
        let state = scratch("pretrained-server");
        let child = python()
            .arg(root().join(SCRIPT))
            .args([Path::new("serve"), &www, &state])
            .stdin(Stdio::null())
            .spawn()
            .expect("start the fixture server");
        let started = Instant::now();
        while !state.join("port").exists() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "fixture server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let port = std::fs::read_to_string(state.join("port"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Server {
            state,
            port,
            _child: child,
        }
    })
}

impl Server {
    pub(crate) fn card(&self, name: &str) -> PathBuf {
        self.state.join("cards").join(format!("{name}.json"))
    }
}

/// `vidcls ARGS` with its own empty model cache.
fn in_cache(cache: &Path, args: &[&str]) -> Vidcls {
    let mut v = vidcls(args);
    v.command()
        .env("VIDCLS_CACHE_DIR", cache)
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{}", server().port))
        .env_remove("VIDCLS_OFFLINE")
        .env_remove("VIDCLS_MODEL_PATH");
    v
}

/// The videos parity runs on: the sample clips and a generated one.
fn videos() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = ["move_right", "rotate_ccw"]
        .iter()
        .map(|n| root().join(format!("models/samples/{n}.mp4")))
        .collect();
    v.push(lavfi_video(
        "pretrained",
        "mandelbrot.mp4",
        "mandelbrot=s=320x240:r=25",
        "3",
        "libx264",
    ));
    v
}

/// vidcls's scores on `videos` (every class, in index order) and the views it fed the model.
fn vidcls_scores(cache: &Path, model: &str, extra: &[&str], dump: &Path) -> Vec<Vec<f64>> {
    let vids = videos();
    // fp32 whatever the precision record says: parity is the float32 graph's.
    let mut args = vec![
        "predict",
        "--precision",
        "fp32",
        "-m",
        model,
        "-f",
        "jsonl",
        "--top-k",
        "400",
        "--dump-inputs",
    ];
    args.push(dump.to_str().unwrap());
    args.extend(extra);
    let mut v = in_cache(cache, &args);
    v.args(&vids);
    v.ok()
        .results()
        .into_iter()
        .map(|r| {
            let mut scores = vec![f64::NAN; r.top_k.len()];
            for t in &r.top_k {
                scores[t.index] = t.score;
            }
            scores
        })
        .collect()
}

fn reference_scores(name: &str, dump: &Path) -> Vec<Vec<f64>> {
    let out = run_ok(
        python()
            .arg(root().join(SCRIPT))
            .args(["reference", "-", name])
            .arg(dump),
    );
    serde_json::from_slice(&out.stdout).expect("reference scores")
}

fn top5(s: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..s.len()).collect();
    idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
    idx.truncate(5);
    idx
}

/// Pulls `target` into a fresh cache, runs vidcls on the videos, and compares every class's
/// probability with the reference implementation's on the same views.
/// With `measure`, the pull also measures the precision record on the installed weights.
fn check_parity(target: &str, installed: &str, reference: &str, extra: &[&str], measure: bool) {
    let cache = scratch(&format!("pretrained-cache-{installed}"));
    let mut pull = vec!["models", "pull", target];
    if !measure {
        pull.push("--no-precision-check");
    }
    let pulled = in_cache(&cache, &pull).ok();
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cache.join(format!("configs/{installed}.json"))).unwrap(),
    )
    .unwrap();
    let record = &config["reduced_precision"];
    if measure {
        assert_eq!(record["clips_from"], "synthetic", "{record}");
        assert!(record["bf16_top1_agreement"].as_f64().is_some(), "{record}");
    } else {
        assert!(record.is_null(), "a card's record was inherited: {record}");
    }
    assert!(
        pulled.stdout().contains(&format!("installed {installed}")),
        "{}",
        pulled.stderr()
    );
    assert!(cache.join(format!("models/{installed}.pt")).is_file());
    let dump = cache.join("views");
    let got = vidcls_scores(&cache, installed, extra, &dump);
    let want = reference_scores(reference, &dump);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let diff = g
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        eprintln!(
            "{installed} video {i}: max |p - p_ref| = {diff:.2e}, top-1 p = {:.3}",
            w[top5(w)[0]]
        );
        assert!(
            diff <= 1e-5,
            "{installed} video {i}: probabilities differ by {diff}"
        );
        assert_eq!(top5(g), top5(w), "{installed} video {i}: top-5 differs");
    }
}

/// A torchvision architecture pulled through its card from the loopback server.
fn card_parity(arch: &str, extra: &[&str], measure: bool) {
    let card = server().card(arch);
    check_parity(card.to_str().unwrap(), arch, arch, extra, measure);
}

#[test]
fn pulled_r3d_18_legacy_pth_equals_torchvision() {
    card_parity("r3d_18", &[], false);
}

#[test]
fn pulled_mc3_18_zip_pth_equals_torchvision() {
    card_parity("mc3_18", &["--clips", "2"], false);
}

/// (A card's pull measuring the precision record is checked by
/// `offline_pulls_only_from_a_local_file`, which measures it anyway; a Hub pull's by the
/// VideoMAE test.)
#[test]
fn pulled_r2plus1d_18_legacy_pth_equals_torchvision() {
    card_parity("r2plus1d_18", &[], false);
}

/// S3D runs channels-last (its card's layout), and so does the reference here.
#[test]
fn pulled_s3d_zip_pth_equals_torchvision() {
    card_parity("s3d", &["--frames", "16"], false);
}

#[test]
fn pulled_videomae_from_the_hub_equals_transformers() {
    server();
    check_parity(
        &format!("hf:{HUB_REPO}"),
        "videomae-small-k400",
        "videomae_small",
        &[],
        true,
    );
}

/// A failed pull installs nothing under the model's name.
fn assert_nothing_installed(cache: &Path, name: &str) {
    for p in [
        cache.join(format!("models/{name}.pt")),
        cache.join(format!("configs/{name}.json")),
    ] {
        assert!(!p.exists(), "{} exists after a failed pull", p.display());
    }
}

#[test]
fn bad_downloads_fail_clearly_and_install_nothing() {
    let s = server();
    let cases = [
        (
            "wrong_sha",
            "the download is not the published file: sha256",
        ),
        ("truncated", "bytes, the published file has"),
        ("evil", "refusing the pickle global posix.system"),
        ("html", "the server sent an HTML page (HTTP 200)"),
        ("missing", "HTTP 404"),
    ];
    let cache = scratch("pretrained-bad");
    for (name, message) in cases {
        let card = s.card(&format!("bad_{name}"));
        let run = in_cache(&cache, &["models", "pull", card.to_str().unwrap()]).expect_code(2);
        assert!(
            run.stderr().contains(message),
            "bad_{name}: {}",
            run.stderr()
        );
        assert_nothing_installed(&cache, &format!("bad_{name}"));
    }
    assert!(!weights().join("PWNED").exists(), "the evil pickle ran");
    let left: Vec<_> = std::fs::read_dir(cache.join("downloads"))
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "files left in downloads/: {left:?}");
}

#[test]
fn a_stalled_server_times_out_and_an_interrupted_download_resumes() {
    let s = server();
    let card = |n: &str| s.card(n).to_str().unwrap().to_string();
    let cache = scratch("pretrained-stall");
    let started = Instant::now();
    let run = in_cache(
        &cache,
        &["models", "pull", &card("bad_stall"), "--timeout", "2"],
    )
    .expect_code(2);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the stall was not cut short"
    );
    assert!(
        run.stderr().contains("download interrupted"),
        "{}",
        run.stderr()
    );
    assert_nothing_installed(&cache, "bad_stall");
    let cache = scratch("pretrained-resume");
    // The connection drops halfway: the part stays, and the next pull asks for the rest.
    let run = in_cache(
        &cache,
        &["models", "pull", &card("bad_drop"), "--no-precision-check"],
    )
    .expect_code(2);
    assert!(run.stderr().contains("resume"), "{}", run.stderr());
    let parts: Vec<_> = std::fs::read_dir(cache.join("downloads"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pth.part"))
        .collect();
    assert_eq!(parts.len(), 1, "one partial download kept");
    let half = parts[0].metadata().unwrap().len();
    assert!(half > 0);
    let _ = std::fs::remove_file(s.state.join("ranges.log"));
    in_cache(
        &cache,
        &["models", "pull", &card("r3d_18"), "--no-precision-check"],
    )
    .ok();
    let ranges = std::fs::read_to_string(s.state.join("ranges.log")).unwrap_or_default();
    assert!(
        ranges.contains(&format!("bytes={half}-")),
        "no Range request from byte {half}: {ranges:?}"
    );
    assert!(cache.join("models/r3d_18.pt").is_file());
}

#[test]
fn offline_pulls_only_from_a_local_file() {
    let s = server();
    let cache = scratch("pretrained-offline");
    let card = s.card("mc3_18");
    let card_s = card.to_str().unwrap();
    let mut v = in_cache(&cache, &["models", "pull", card_s]);
    v.command().env("VIDCLS_OFFLINE", "1");
    let run = v.expect_code(2);
    assert!(run.stderr().contains("offline"), "{}", run.stderr());
    let run = in_cache(
        &cache,
        &["models", "pull", &format!("hf:{HUB_REPO}"), "--offline"],
    )
    .expect_code(2);
    assert!(run.stderr().contains("offline"), "{}", run.stderr());
    let file = std::fs::read_dir(weights().join("www/models"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("mc3_18-")
        })
        .unwrap();
    // A file that is not the card's is refused, the right one installs.
    let wrong = weights().join("www/models/truncated.pth");
    let run = in_cache(&cache, &["models", "pull", card_s, "--offline", "--from"])
        .arg(&wrong)
        .expect_code(2);
    assert!(
        run.stderr().contains("is not the published weights file"),
        "{}",
        run.stderr()
    );
    in_cache(&cache, &["models", "pull", card_s, "--offline", "--from"])
        .arg(&file)
        .ok();
    assert!(cache.join("models/mc3_18.pt").is_file());
    assert!(file.is_file(), "--from leaves the user's file alone");
    // A card's pull measures the precision record on the installed weights (the card has none).
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cache.join("configs/mc3_18.json")).unwrap())
            .unwrap();
    let record = &config["reduced_precision"];
    assert_eq!(record["clips_from"], "synthetic", "{record}");
    assert!(record["bf16_top1_agreement"].as_f64().is_some(), "{record}");
}

#[test]
fn an_uninstalled_card_names_its_pull_command() {
    let s = server();
    let cache = scratch("pretrained-uninstalled");
    let dir = cache.join("cards");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(s.card("r2plus1d_18"), dir.join("r2plus1d_18.json")).unwrap();
    let mut v = in_cache(&cache, &["predict", "-m", "r2plus1d_18"]);
    v.arg(root().join("models/samples/move_up.mp4"));
    v.command().env("VIDCLS_MODEL_PATH", &dir);
    let run = v.run();
    assert_ne!(run.code(), Some(0));
    assert!(
        run.stderr()
            .contains("not installed; run `vidcls models pull r2plus1d_18`"),
        "{}",
        run.stderr()
    );
    let mut v = in_cache(&cache, &["models"]);
    v.command().env("VIDCLS_MODEL_PATH", &dir);
    let listed = v.ok().stdout();
    let row = listed
        .lines()
        .find(|l| l.starts_with("r2plus1d_18 "))
        .unwrap();
    assert!(
        row.contains("pullable (126 MB)") && row.contains("67.5%"),
        "{row}"
    );
}

/// A pulled model is an ordinary model for the other commands: `embed` writes its features,
/// `train --from` fine-tunes it (its BatchNorm statistics, parameters without gradients in
/// these graphs, are not stepped), and the trained folder predicts.
///
/// The data set is the smallest `train` takes (four videos a label), in batches of two: from
/// scratch, `train` recalibrates BatchNorm over a fixed number of batches after each epoch, so
/// the batch size sets its cost, and two clips a
/// batch still give several optimisation steps in the one epoch.
#[test]
fn embed_and_train_use_a_pulled_model() {
    let s = server();
    let cache = scratch("pretrained-train");
    let card = s.card("mc3_18");
    in_cache(
        &cache,
        &[
            "models",
            "pull",
            card.to_str().unwrap(),
            "--no-precision-check",
        ],
    )
    .ok();
    let data = cache.join("data");
    let sources = [
        (
            "bars",
            [
                "testsrc2=s=160x120:r=15",
                "smptebars=s=160x120:r=15",
                "rgbtestsrc=s=160x120:r=15",
                "smptehdbars=s=160x120:r=15",
            ],
        ),
        (
            "fractal",
            [
                "mandelbrot=s=160x120:r=15",
                "life=s=160x120:r=15:mold=10",
                "cellauto=s=160x120:r=15",
                "mandelbrot=s=160x120:r=15:start_scale=1",
            ],
        ),
    ];
    for (label, srcs) in sources {
        std::fs::create_dir_all(data.join(label)).unwrap();
        for (i, src) in srcs.iter().enumerate() {
            let v = lavfi_video(
                "pretrained-train",
                &format!("{label}{i}.mp4"),
                src,
                "2",
                "libx264",
            );
            std::fs::copy(&v, data.join(label).join(format!("{i}.mp4"))).unwrap();
        }
    }
    let emb = cache.join("embed");
    let mut v = in_cache(&cache, &["embed", "-m", "mc3_18", "-o"]);
    v.arg(&emb).arg(data.join("bars"));
    v.ok();
    let index = std::fs::read_to_string(emb.join("index.jsonl")).unwrap();
    assert_eq!(index.lines().count(), 4, "{index}");
    // Fine-tuned from the pulled weights, and from scratch (which draws weights afresh and
    // must leave the BatchNorm statistics alone: drawn like weights, variances go negative).
    for start in ["--from-pulled", "--scratch"] {
        let out = cache.join(format!("trained{start}"));
        let mut v = in_cache(
            &cache,
            &[
                "train",
                "--from",
                "mc3_18",
                "--epochs",
                "1",
                "--batch-size",
                "2",
                "--threads",
                "2",
                "-q",
            ],
        );
        if start == "--scratch" {
            v.arg("--scratch");
        }
        v.arg("-o").arg(&out).arg(&data);
        v.ok();
        let mut v = in_cache(&cache, &["predict", "-f", "jsonl", "--all-scores", "-m"]);
        v.arg(&out).arg(data.join("bars/0.mp4"));
        let r = v.ok().results();
        assert_eq!(r.len(), 1);
        assert!(["bars", "fractal"].contains(&r[0].top_k[0].label.as_str()));
        let scores: Vec<f64> = r[0].top_k.iter().map(|p| p.score).collect();
        assert!(
            scores.iter().all(|s| s.is_finite()),
            "{start}: scores {scores:?}"
        );
    }
}

/// A gated Hub repo takes `HF_TOKEN`, or the token file under `HF_HOME`, as the Python
/// client does; without one the Hub's 401 is the error.
#[test]
fn hub_tokens_come_from_hf_token_or_hf_home() {
    server();
    let cache = scratch("pretrained-token");
    let target = "hf:private/videomae-small-k400";
    let pull = |env: &[(&str, &Path)], token: Option<&str>| {
        let mut v = in_cache(&cache, &["models", "pull", target, "--no-precision-check"]);
        v.command()
            .env_remove("HF_TOKEN")
            .env("HF_HOME", cache.join("no-hf-home"));
        for (k, p) in env {
            v.command().env(k, p);
        }
        if let Some(t) = token {
            v.command().env("HF_TOKEN", t);
        }
        v.run()
    };
    let run = pull(&[], None);
    assert_eq!(run.code(), Some(2));
    assert!(run.stderr().contains("HTTP 401"), "{}", run.stderr());
    assert_eq!(pull(&[], Some("secret")).code(), Some(0));
    let home = cache.join("hf-home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("token"), "secret\n").unwrap();
    let _ = std::fs::remove_dir_all(cache.join("models"));
    let run = pull(&[("HF_HOME", &home)], None);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert!(cache.join("models/videomae-small-k400.pt").is_file());
}
