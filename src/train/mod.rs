//! `vidcls train`: learn a model for the user's own labels from a folder of labelled videos.
//!
//! The steps: list and split the data, open the starting model (the built-in one by default),
//! decode every video once through the `predict` pipeline ([`bank`]), fit a linear probe on its
//! frozen features, fine-tune the whole network ([`fit`]), and write MODEL_DIR (TorchScript
//! model, a config `predict` loads, metrics). See docs/TRAINING.md.

mod bank;
pub mod data;
mod fit;
mod optim;

pub use fit::{EpochLog, Plan, Stop, BACKBONE_LR};

use crate::model::config::DefaultViews;
use crate::model::{ModelConfig, ModelSource, Trainable};
use crate::pipeline::RunSettings;
use crate::report::escape::terminal;
use anyhow::{bail, Context, Result};
use data::{Dataset, Skipped, Split};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the labelled videos are listed.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// DATA/<label>/**/<video>
    Folder(PathBuf),
    /// A CSV with path,label[,split].
    Manifest(PathBuf),
}

/// How training starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// From a model's backbone: probe, then fine-tune.
    Pretrained,
    /// A linear probe on frozen features only.
    Frozen,
    /// The same architecture with fresh random weights.
    Scratch,
}

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub data: DataSource,
    pub out: PathBuf,
    pub from: ModelSource,
    pub start: Start,
    pub plan: Plan,
    pub val_fraction: f64,
    pub device: tch::Device,
    /// Torch threads (part of what decides the weights).
    pub threads: usize,
    pub decode: RunSettings,
    /// For the whole run, decoding included.
    pub time_limit: Duration,
    pub cache_bytes: usize,
    pub resume: bool,
    pub force: bool,
    pub quiet: bool,
}

/// What `metrics.json` holds.
#[derive(Debug, Serialize)]
pub struct Metrics {
    pub labels: Vec<String>,
    pub start: Start,
    pub epochs: Vec<EpochLog>,
    /// Epochs the schedule spanned: `--epochs`, else sized to the time limit (0 with
    /// `--freeze`); fewer ran when validation stopped improving or the time ran out.
    pub epochs_planned: usize,
    pub best_epoch: Option<usize>,
    /// On the validation videos with the default views, as `predict -m MODEL_DIR` labels them;
    /// they chose the best epoch and the views: an optimistic estimate.
    pub val_top1: Option<f64>,
    /// The best model's validation top-1 with each number of clips per video scored.
    pub val_top1_by_clips: Vec<ClipsScore>,
    /// What config.json holds as the model's default views: the best of those (fewer clips on
    /// a tie); null without validation videos.
    pub default_views: Option<DefaultViews>,
    pub probe_val_top1: Option<f64>,
    /// Which model was kept (the probe, or a fine-tuned epoch) and why.
    pub kept: String,
    /// Rows: truth; columns: prediction (validation videos, best model, default views).
    pub confusion: Vec<Vec<usize>>,
    /// On the manifest's `split=test` clips, which no choice looked at (null without them),
    /// with the default views.
    pub test_top1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_confusion: Option<Vec<Vec<usize>>>,
    pub train_clips: Vec<usize>,
    pub val_clips: Vec<usize>,
    pub test_clips: Vec<usize>,
    pub skipped: Vec<Skipped>,
    pub stopped: Stop,
    pub decode_seconds: f64,
    pub train_seconds: f64,
    pub cache_mb: f64,
    pub data_fingerprint: String,
}

/// Validation top-1 with `clips` clips per video (`predict --clips N`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClipsScore {
    pub clips: usize,
    pub val_top1: f64,
}

/// How the run ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Complete,
    Interrupted(i32),
}

pub fn run(o: &TrainOptions) -> Result<Ended> {
    match train(o) {
        Err(e) => match e.downcast_ref::<fit::Interrupted>() {
            Some(&fit::Interrupted(sig)) => {
                eprintln!("vidcls: interrupted before a model was made; nothing was written");
                Ok(Ended::Interrupted(sig))
            }
            None => Err(e),
        },
        ended => ended,
    }
}

fn train(o: &TrainOptions) -> Result<Ended> {
    // First, so that a signal while the data are listed or the model loads is seen too (the
    // decode watch acts on it as soon as it starts).
    crate::interrupt::install_polled().context("cannot install signal handlers")?;
    let mut ds = list_data(&o.data)?;
    data::split(&mut ds, o.val_fraction, o.plan.seed);
    warn_about_data(&ds);
    let mut model = Trainable::open(&o.from, o.device)?;
    if o.start != Start::Scratch {
        model.check_features()?;
    }
    prepare_out_dir(o)?;
    if !o.quiet {
        eprintln!("vidcls: {}", budget_line(o));
    }
    let cfg = trained_config(&model.config, &ds, o)?;
    let t0 = Instant::now();
    let (bank, skipped) = {
        let _watch = DecodeWatch::start();
        decode_all(o, &ds, &cfg, model.config.frames)?
    };
    fit::stop_if_interrupted()?;
    let decode_seconds = t0.elapsed().as_secs_f64();
    let fingerprint = run_fingerprint(&ds, o);
    let files = fit::Files {
        best: o.out.join("model.pt"),
        checkpoint: o.out.join(".checkpoint"),
    };
    let t1 = Instant::now();
    let (state, resumed) = start_state(o, &mut model, &bank, &cfg, &files, &fingerprint)?;
    let deadline = Instant::now() + o.time_limit.saturating_sub(t0.elapsed());
    let (state, stop) = match o.start {
        Start::Frozen => (state, Stop::Finished),
        _ => fine_tune(o, &mut model, &bank, &cfg, &files, deadline, state, resumed)?,
    };
    if let Some(ended) = stopped_early(&files, &state, stop)? {
        return Ok(ended);
    }
    model.load_weights(&files.best)?;
    let mut metrics = score(o, &mut model, &bank, &cfg, &ds, state, stop)?;
    metrics.skipped = skipped;
    metrics.decode_seconds = decode_seconds;
    metrics.train_seconds = t1.elapsed().as_secs_f64();
    metrics.data_fingerprint = fingerprint;
    write_outputs(o, &model, cfg, &metrics, &bank)?;
    if !o.quiet {
        eprint!("{}", render_summary(&metrics));
    }
    let _ = std::fs::remove_dir_all(&files.checkpoint);
    Ok(Ended::Complete)
}

/// What the run will do in the time it has, shown at the start.
fn budget_line(o: &TrainOptions) -> String {
    let limit = o.time_limit.as_secs_f64();
    let time = if limit >= 60.0 {
        format!("{:.1} min", limit / 60.0)
    } else {
        format!("{limit:.0} s")
    };
    let what = match (o.start, o.plan.epochs) {
        (Start::Frozen, _) => "a linear probe on frozen features".to_string(),
        (_, Some(n)) => format!("{n} epochs"),
        (_, None) => format!(
            "{} epochs or as many as fit in it, until validation stops improving",
            fit::AUTO_EPOCHS.1
        ),
    };
    let first = if o.start == Start::Pretrained {
        "the linear probe, then "
    } else {
        ""
    };
    format!("time limit {time} (--time-limit SECS): {first}{what}")
}

/// A signal keeps the checkpoint for `--resume`; a time limit before the first epoch with no
/// probe to fall back on (`--scratch`) leaves no model and fails.
fn stopped_early(files: &fit::Files, state: &fit::State, stop: Stop) -> Result<Option<Ended>> {
    if let Stop::Signal(sig) = stop {
        let none = if state.best_epoch.is_none() {
            "; no model yet: nothing was fitted before the first epoch"
        } else {
            ""
        };
        eprintln!(
            "vidcls: interrupted; checkpoint saved in {} (run the same command with --resume){none}",
            files.checkpoint.display()
        );
        return Ok(Some(Ended::Interrupted(sig)));
    }
    if state.best_epoch.is_none() {
        bail!(
            "--time-limit ran out before the first epoch ended, with no probe to fall back on: \
             no model was written (allow more time, or continue with --resume)"
        );
    }
    Ok(None)
}

/// While the videos decode, a signal ends the run at once with 128 + its number: nothing has
/// been written yet, and the video being decoded could hold up a stop at the next result.
struct DecodeWatch {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DecodeWatch {
    fn start() -> DecodeWatch {
        let done = Arc::new(AtomicBool::new(false));
        let seen = done.clone();
        let watch = move || {
            while !seen.load(Ordering::SeqCst) {
                if let Some(sig) = crate::interrupt::requested() {
                    eprintln!("\nvidcls: interrupted while decoding; nothing was written");
                    signal_hook::low_level::exit(128 + sig);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        let thread = std::thread::Builder::new()
            .name("decode-watch".into())
            .spawn(watch)
            .ok();
        DecodeWatch { done, thread }
    }
}

impl Drop for DecodeWatch {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Decodes every video once; lists what was skipped; refuses data that cannot train.
fn decode_all(
    o: &TrainOptions,
    ds: &Dataset,
    cfg: &ModelConfig,
    frames: usize,
) -> Result<(bank::Bank, Vec<Skipped>)> {
    let bar = progress(o.quiet, ds.examples.len(), "decoding");
    let jitter = o.start != Start::Frozen;
    let (bank, mut skipped) = bank::build(ds, cfg, frames, &o.decode, o.cache_bytes, jitter, &bar)?;
    bar.finish_and_clear();
    skipped.extend(ds.skipped.iter().cloned());
    report_skipped(&skipped);
    let usable = data::per_class(ds.labels.len(), bank.labels.iter().copied());
    data::check(ds, &usable)?;
    warn_imbalance(&ds.labels, &usable);
    Ok((bank, skipped))
}

#[allow(clippy::too_many_arguments)]
fn fine_tune(
    o: &TrainOptions,
    model: &mut Trainable,
    bank: &bank::Bank,
    cfg: &ModelConfig,
    files: &fit::Files,
    deadline: Instant,
    state: fit::State,
    resumed: bool,
) -> Result<(fit::State, Stop)> {
    let bar = progress(o.quiet, 0, "training");
    let lp = fit::Loop {
        bank,
        cfg,
        plan: &o.plan,
        files,
        deadline,
        progress: &bar,
        quiet: o.quiet,
    };
    let r = fit::finetune(&lp, model, state, resumed)?;
    bar.finish_and_clear();
    Ok(r)
}

/// The best model's numbers on the validation and test videos, with the default views chosen
/// on the validation videos (the run's timings are filled in after).
fn score(
    o: &TrainOptions,
    model: &mut Trainable,
    bank: &bank::Bank,
    cfg: &ModelConfig,
    ds: &Dataset,
    state: fit::State,
    stop: Stop,
) -> Result<Metrics> {
    let classes = ds.labels.len();
    let batch = o.plan.batch_size;
    let mut by_clips = Vec::new();
    for n in bank::VALIDATED_CLIPS {
        by_clips.push((n, held_out(model, bank, cfg, Split::Val, n, batch)?));
    }
    let figures: Vec<ClipsScore> = by_clips
        .iter()
        .filter_map(|(n, h)| {
            h.top1.map(|val_top1| ClipsScore {
                clips: *n,
                val_top1,
            })
        })
        .collect();
    let pairs: Vec<(usize, f64)> = figures.iter().map(|f| (f.clips, f.val_top1)).collect();
    let chosen = fit::choose_views(&pairs);
    let n = chosen.unwrap_or(1);
    let val = by_clips
        .into_iter()
        .find(|(k, _)| *k == n)
        .map(|(_, h)| h)
        .context("the chosen views were scored")?;
    let test = held_out(model, bank, cfg, Split::Test, n, batch)?;
    let train = bank.indices(Split::Train);
    let kept = kept_reason(o.start, &state);
    let epochs_planned = state.planned;
    Ok(Metrics {
        labels: ds.labels.clone(),
        start: o.start,
        epochs: state.history,
        epochs_planned,
        best_epoch: state.best_epoch,
        val_top1: val.top1,
        val_top1_by_clips: figures,
        default_views: chosen.map(|clips| DefaultViews { clips }),
        probe_val_top1: state.probe.map(|p| p.top1),
        kept,
        confusion: val.confusion,
        test_top1: test.top1,
        test_confusion: test.top1.map(|_| test.confusion),
        train_clips: data::per_class(classes, train.iter().map(|&i| bank.labels[i])),
        val_clips: val.clips,
        test_clips: test.clips,
        skipped: Vec::new(),
        stopped: stop,
        decode_seconds: 0.0,
        train_seconds: 0.0,
        cache_mb: bank.bytes as f64 / 1e6,
        data_fingerprint: String::new(),
    })
}

/// Which model was kept and why, from the validation figures that chose it.
fn kept_reason(start: Start, state: &fit::State) -> String {
    let shown = |loss: f64, top1: f64| format!("loss {loss:.3}, top-1 {:.1}%", top1 * 100.0);
    let scored = |e: &EpochLog| Some((e.epoch, e.val_loss?, e.val_top1?));
    let best = state.best_epoch.unwrap_or(0);
    // The kept epoch's figures; with the probe kept, those of the best epoch that lost to it.
    let tuned = if best == 0 {
        let all = state.history.iter().filter_map(scored);
        all.min_by(|a, b| a.1.total_cmp(&b.1))
    } else {
        state
            .history
            .iter()
            .find(|e| e.epoch == best)
            .and_then(scored)
    };
    match (start, state.probe, tuned) {
        (Start::Frozen, ..) => "the linear probe (--freeze)".into(),
        (_, Some(p), Some((e, loss, top1))) if best == 0 => format!(
            "the linear probe: no fine-tuned epoch beat it on the validation videos ({} against the best epoch's, {e}, {})",
            shown(p.loss, p.top1),
            shown(loss, top1)
        ),
        (_, Some(_), None) => "the linear probe: fine-tuning ended before its first epoch".into(),
        (_, Some(p), Some((e, loss, top1))) => format!(
            "fine-tuned epoch {e}: it beat the linear probe on the validation videos ({} against {})",
            shown(loss, top1),
            shown(p.loss, p.top1)
        ),
        (_, None, Some((e, loss, top1))) => {
            format!("epoch {e}: the best on the validation videos ({})", shown(loss, top1))
        }
        (_, None, None) if best == 0 => {
            "the linear probe: no validation videos, and no fine-tuned epoch ended".into()
        }
        (_, None, None) => format!(
            "epoch {best}: no validation videos, so the epoch with the best training top-1"
        ),
    }
}

/// One held-out split's figures.
struct HeldOut {
    top1: Option<f64>,
    confusion: Vec<Vec<usize>>,
    clips: Vec<usize>,
}

/// A held-out split as `predict --clips n` labels it.
fn held_out(
    model: &mut Trainable,
    bank: &bank::Bank,
    cfg: &ModelConfig,
    split: Split,
    n: usize,
    batch: usize,
) -> Result<HeldOut> {
    let idx = bank.indices(split);
    let (top1, preds) = fit::evaluate(model, bank, cfg, &idx, n, batch)?;
    let truth: Vec<usize> = idx.iter().map(|&i| bank.labels[i]).collect();
    let classes = cfg.labels.len();
    Ok(HeldOut {
        top1: (!idx.is_empty()).then_some(top1),
        confusion: fit::confusion(classes, &truth, &preds),
        clips: data::per_class(classes, truth.iter().copied()),
    })
}

fn list_data(source: &DataSource) -> Result<Dataset> {
    match source {
        DataSource::Folder(p) => data::from_folder(p),
        DataSource::Manifest(p) => data::from_manifest(p),
    }
}

/// MODEL_DIR must be new or empty, unless resuming or forced.
fn prepare_out_dir(o: &TrainOptions) -> Result<()> {
    let busy = std::fs::read_dir(&o.out).is_ok_and(|mut d| d.next().is_some());
    if busy && !o.resume && !o.force {
        bail!(
            "{} is not empty: use --force to replace the model in it or --resume to continue",
            o.out.display()
        );
    }
    if o.resume && !fit::has_checkpoint(&o.out.join(".checkpoint")) {
        bail!("{}: no checkpoint to resume from", o.out.display());
    }
    if busy && o.force && !o.resume {
        // A run that ends before it fits anything must not leave the last run's model behind
        // as if it were its own.
        for name in ["model.pt", "config.json", "metrics.json", ".checkpoint"] {
            let p = o.out.join(name);
            let gone = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            match gone {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot remove {}", p.display()))
                }
                _ => {}
            }
        }
    }
    std::fs::create_dir_all(&o.out).with_context(|| format!("cannot create {}", o.out.display()))
}

/// The trained model's config: the starting model's input recipe with the new labels.
fn trained_config(base: &ModelConfig, ds: &Dataset, o: &TrainOptions) -> Result<ModelConfig> {
    let mut cfg = base.clone();
    let abs = std::path::absolute(&o.out).unwrap_or_else(|_| o.out.clone());
    cfg.name = abs
        .file_name()
        .map_or_else(|| "trained".into(), |n| n.to_string_lossy().into_owned());
    cfg.labels = ds.labels.clone();
    cfg.labels_file = None;
    cfg.label_set = format!("custom{}", ds.labels.len());
    cfg.file = "model.pt".into();
    cfg.torch_version = env!("VIDCLS_LIBTORCH_VERSION").into();
    // The base's download card and precision record describe the base's weights, not these.
    cfg.pretrained = None;
    cfg.reduced_precision = None;
    // Chosen again on this run's validation videos (`score`).
    cfg.default_views = None;
    Ok(cfg)
}

/// Everything that decides the result: a resume must match it.
fn run_fingerprint(ds: &Dataset, o: &TrainOptions) -> String {
    let root = match &o.data {
        DataSource::Folder(p) => p.clone(),
        DataSource::Manifest(p) => p.parent().unwrap_or(Path::new(".")).to_path_buf(),
    };
    let plan = serde_json::to_string(&o.plan).unwrap_or_default();
    format!(
        "{}-{:016x}",
        data::fingerprint(ds, &root),
        crate::inputs::fnv1a(
            format!(
                "{plan}{:?}{:?} threads={} device={:?}",
                o.start, o.from, o.threads, o.device
            )
            .as_bytes(),
            0
        )
    )
}

/// A fresh start (new head, probe) or the checkpoint's state.
fn start_state(
    o: &TrainOptions,
    model: &mut Trainable,
    bank: &bank::Bank,
    cfg: &ModelConfig,
    files: &fit::Files,
    fingerprint: &str,
) -> Result<(fit::State, bool)> {
    if o.resume {
        let state = files.load_state()?.context("no checkpoint state")?;
        if state.fingerprint != fingerprint {
            bail!("the checkpoint in {} was made with other data or settings; start again with --force", o.out.display());
        }
        return Ok((state, true));
    }
    tch::manual_seed(o.plan.seed as i64);
    model.replace_head(cfg.labels.len())?;
    if o.start == Start::Scratch {
        model.reinitialise()?;
    }
    let probed = o.start != Start::Scratch && (o.plan.probe_first || o.start == Start::Frozen);
    let probe_val = if probed {
        fit::probe(model, bank, cfg, &o.plan)?
    } else {
        None
    };
    fit::stop_if_interrupted()?;
    let mut state = fit::State {
        epoch: 0,
        step: 0,
        best_epoch: None,
        best_val: 0.0,
        history: Vec::new(),
        fingerprint: fingerprint.to_string(),
        tally: fit::Tally::default(),
        planned: 0,
        probe: probe_val,
    };
    if probed {
        // The probe is "epoch 0": fine-tuning replaces it only with a better validation score
        // (without validation clips, with any training score).
        model.save(&files.best)?;
        state.best_epoch = Some(0);
        state.best_val = probe_val.map_or(0.0, |v| v.selection());
    }
    Ok((state, false))
}

/// model.pt, config.json and metrics.json; then the precision record of these weights,
/// measured on the validation clips, into config.json.
fn write_outputs(
    o: &TrainOptions,
    model: &Trainable,
    mut cfg: ModelConfig,
    m: &Metrics,
    bank: &bank::Bank,
) -> Result<()> {
    let weights = o.out.join("model.pt");
    model.save(&weights)?;
    stamp(&mut cfg, o, model, m)?;
    cfg.default_views = m.default_views;
    let config = o.out.join("config.json");
    write_json(&config, &cfg)?;
    write_json(&o.out.join("metrics.json"), m)?;
    let source = crate::model::ModelSource::Files { config, weights };
    if let Some(record) = precision_record(&source, bank, &cfg) {
        cfg.reduced_precision = Some(record);
        write_json(&o.out.join("config.json"), &cfg)?;
    }
    Ok(())
}

/// bf16's top-1 agreement with fp32 on the validation clips (what `predict` sees of them),
/// as `models pull` measures it; none without validation clips.
fn precision_record(
    source: &crate::model::ModelSource,
    bank: &bank::Bank,
    cfg: &ModelConfig,
) -> Option<crate::model::ReducedPrecision> {
    let val = bank.indices(Split::Val);
    let frames = bank.clips.get(*val.first()?)?.first()?.size()[0] as usize;
    let clip = |k: usize| bank::centre_view(&bank.clips[val[k]], cfg).unsqueeze(0);
    match crate::model::calibrate::measure_on(source, frames, val.len(), clip, "videos") {
        Ok(record) => Some(record),
        Err(e) => {
            eprintln!("vidcls: warning: no precision record ({e:#}); --precision auto keeps fp32");
            None
        }
    }
}

/// Where the weights came from, what they hold and how they were made.
fn stamp(cfg: &mut ModelConfig, o: &TrainOptions, model: &Trainable, m: &Metrics) -> Result<()> {
    let bytes = std::fs::metadata(o.out.join("model.pt"))?.len();
    cfg.weights = crate::model::config::Weights {
        source: format!(
            "trained:vidcls train start={:?} seed={} epochs={}",
            o.start,
            o.plan.seed,
            m.epochs.len()
        )
        .to_lowercase(),
        sha256: None,
    };
    cfg.parameters = Some(
        model
            .parameters()?
            .iter()
            .map(|(_, t)| t.numel() as u64)
            .sum(),
    );
    cfg.provenance = Some(serde_json::json!({
        "vidcls": env!("CARGO_PKG_VERSION"),
        "from": format!("{:?}", o.from),
        "start": o.start,
        "data_fingerprint": m.data_fingerprint,
        "seed": o.plan.seed,
        "plan": o.plan,
        "best_epoch": m.best_epoch,
        "val_top1": m.val_top1,
        "test_top1": m.test_top1,
        "model_bytes": bytes,
    }));
    Ok(())
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    crate::atomic::write(path, crate::atomic::Existing::Replace, text.as_bytes())
}

fn report_skipped(skipped: &[Skipped]) {
    for s in skipped {
        eprintln!(
            "vidcls: skipped {}: {}",
            terminal(&s.path),
            terminal(&s.reason)
        );
    }
}

/// Warns when the largest class has more than three times the clips of the smallest; the loss
/// weighs classes by inverse frequency either way.
fn warn_imbalance(labels: &[String], usable: &[usize]) {
    let (min, max) = (usable.iter().min(), usable.iter().max());
    if let (Some(&min), Some(&max)) = (min, max) {
        if max > 3 * min.max(1) {
            let counts: Vec<String> = labels
                .iter()
                .zip(usable)
                .map(|(l, n)| format!("{l} {n}"))
                .collect();
            eprintln!(
                "vidcls: warning: classes are imbalanced ({}); the loss weighs each class by the inverse of its size",
                counts.join(", ")
            );
        }
    }
}

/// The held-out figures and a confusion matrix (the test clips', else the validation clips').
fn render_summary(m: &Metrics) -> String {
    let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}%", v * 100.0));
    let best = m.best_epoch.map_or("-".into(), |e| e.to_string());
    let (mut s, which, matrix) = match (&m.test_confusion, m.test_top1) {
        (Some(c), Some(t)) => (
            format!(
                "vidcls: validation top-1 (selection score) {} (best epoch {best}); test top-1 {} \
                 on {} held-out clips\n",
                pct(m.val_top1),
                pct(Some(t)),
                m.test_clips.iter().sum::<usize>()
            ),
            "test",
            c,
        ),
        _ => (
            format!(
                "vidcls: validation top-1 (selection score, optimistic) {} (best epoch {best}); \
                 no test split\n",
                pct(m.val_top1)
            ),
            "validation",
            &m.confusion,
        ),
    };
    s += &format!("vidcls: kept {}\n", m.kept);
    s += &render_views(m);
    s += &format!("vidcls: confusion on the {which} clips (rows: truth, columns: prediction)\n");
    s + &render_confusion(&m.labels, matrix)
}

/// Which default views were chosen, and the validation figures they were chosen on.
fn render_views(m: &Metrics) -> String {
    let Some(v) = m.default_views else {
        return "vidcls: no validation videos, so no default views: predict takes 1 clip per \
                video unless --clips is given\n"
            .into();
    };
    let clips: Vec<String> = m
        .val_top1_by_clips
        .iter()
        .map(|f| f.clips.to_string())
        .collect();
    let tops: Vec<String> = m
        .val_top1_by_clips
        .iter()
        .map(|f| format!("{:.1}%", f.val_top1 * 100.0))
        .collect();
    format!(
        "vidcls: default views {} clip(s) per video (validation top-1 with {} clips: {}; \
         predict -m uses them unless --clips is given)\n",
        v.clips,
        clips.join(" / "),
        tops.join(" / ")
    )
}

/// Rows `index label`, columns headed by the same indices.
fn render_confusion(labels: &[String], matrix: &[Vec<usize>]) -> String {
    let iw = labels.len().saturating_sub(1).to_string().len();
    let w = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let cw = matrix
        .iter()
        .flatten()
        .map(|c| c.to_string().len())
        .chain([iw])
        .max()
        .unwrap_or(1)
        + 2;
    let head: String = (0..labels.len()).map(|j| format!("{j:>cw$}")).collect();
    let mut s = format!("  {:iw$} {:w$}{head}\n", "", "");
    for (i, (l, row)) in labels.iter().zip(matrix).enumerate() {
        let cells: String = row.iter().map(|c| format!("{c:>cw$}")).collect();
        s += &format!("  {i:>iw$} {l:<w$}{cells}\n");
    }
    s
}

/// The listing's warnings, and files whose contents are on both sides of the split.
fn warn_about_data(ds: &Dataset) {
    for w in &ds.warnings {
        eprintln!("vidcls: warning: {}", terminal(w));
    }
    let side = |e: &data::Example| format!("{:?}", e.split.unwrap_or(Split::Train)).to_lowercase();
    for (a, b) in data::identical_across_splits(ds) {
        eprintln!(
            "vidcls: warning: {} ({}) and {} ({}) have the same contents: the held-out score \
             counts a clip it was trained on",
            terminal(&a.path.to_string_lossy()),
            side(a),
            terminal(&b.path.to_string_lossy()),
            side(b)
        );
    }
}

fn progress(quiet: bool, len: usize, what: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    let template = format!("{what} {{bar:30}} {{pos}}/{{len}}  ETA {{eta}}  {{wide_msg}}");
    pb.set_style(ProgressStyle::with_template(&template).expect("valid template"));
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(test: bool) -> Metrics {
        Metrics {
            labels: vec!["walk".into(), "run_fast".into()],
            start: Start::Pretrained,
            epochs: Vec::new(),
            epochs_planned: 12,
            best_epoch: Some(2),
            val_top1: Some(0.75),
            val_top1_by_clips: [(1, 0.625), (3, 0.75), (5, 0.75)]
                .map(|(clips, val_top1)| ClipsScore { clips, val_top1 })
                .to_vec(),
            default_views: Some(DefaultViews { clips: 3 }),
            probe_val_top1: Some(0.5),
            kept: "fine-tuned epoch 2: it beat the linear probe".into(),
            confusion: vec![vec![3, 1], vec![0, 4]],
            test_top1: test.then_some(0.5),
            test_confusion: test.then(|| vec![vec![1, 1], vec![1, 12]]),
            train_clips: vec![8, 8],
            val_clips: vec![4, 4],
            test_clips: if test { vec![2, 13] } else { vec![0, 0] },
            skipped: Vec::new(),
            stopped: Stop::Finished,
            decode_seconds: 0.0,
            train_seconds: 0.0,
            cache_mb: 0.0,
            data_fingerprint: String::new(),
        }
    }

    #[test]
    fn the_summary_labels_scores_and_columns() {
        let s = render_summary(&metrics(false));
        assert_eq!(
            s,
            "vidcls: validation top-1 (selection score, optimistic) 75.0% (best epoch 2); no test split\n\
             vidcls: kept fine-tuned epoch 2: it beat the linear probe\n\
             vidcls: default views 3 clip(s) per video (validation top-1 with 1 / 3 / 5 clips: \
             62.5% / 75.0% / 75.0%; predict -m uses them unless --clips is given)\n\
             vidcls: confusion on the validation clips (rows: truth, columns: prediction)\n\
             \x20             0  1\n\
             \x20 0 walk      3  1\n\
             \x20 1 run_fast  0  4\n"
        );
        let s = render_summary(&metrics(true));
        assert!(
            s.starts_with(
                "vidcls: validation top-1 (selection score) 75.0% (best epoch 2); test top-1 \
                 50.0% on 15 held-out clips\n\
                 vidcls: kept fine-tuned epoch 2: it beat the linear probe\n\
                 vidcls: default views 3 clip(s) per video"
            ),
            "{s}"
        );
        assert!(s.contains(")\nvidcls: confusion on the test clips"), "{s}");
        assert!(s.ends_with("  1 run_fast   1  12\n"), "{s}");
    }

    fn state(best: usize, probe: Option<(f64, f64)>, losses: &[f64]) -> fit::State {
        let epoch = |(k, &loss): (usize, &f64)| EpochLog {
            epoch: k + 1,
            loss: 1.0,
            train_top1: 0.5,
            val_top1: Some(1.0 - loss),
            val_loss: Some(loss),
            clips_per_s: 1.0,
            seconds: 1.0,
        };
        fit::State {
            epoch: losses.len(),
            step: 0,
            best_epoch: Some(best),
            best_val: 0.0,
            history: losses.iter().enumerate().map(epoch).collect(),
            fingerprint: String::new(),
            tally: Default::default(),
            planned: 12,
            probe: probe.map(|(top1, loss)| fit::Validation { top1, loss }),
        }
    }

    #[test]
    fn the_kept_model_is_named_with_the_figures_that_chose_it() {
        let p = Some((0.7, 0.6));
        let kept = kept_reason(Start::Pretrained, &state(2, p, &[0.7, 0.4, 0.5]));
        assert_eq!(
            kept,
            "fine-tuned epoch 2: it beat the linear probe on the validation videos (loss 0.400, \
             top-1 60.0% against loss 0.600, top-1 70.0%)"
        );
        let kept = kept_reason(Start::Pretrained, &state(0, p, &[0.7, 0.65]));
        assert!(
            kept.starts_with("the linear probe: no fine-tuned epoch beat it")
                && kept.ends_with("the best epoch's, 2, loss 0.650, top-1 35.0%)"),
            "{kept}"
        );
        let kept = kept_reason(Start::Pretrained, &state(0, p, &[]));
        assert!(kept.contains("ended before its first epoch"), "{kept}");
        let kept = kept_reason(Start::Frozen, &state(0, p, &[]));
        assert_eq!(kept, "the linear probe (--freeze)");
        let kept = kept_reason(Start::Scratch, &state(1, None, &[0.3, 0.5]));
        assert!(
            kept.starts_with("epoch 1: the best on the validation"),
            "{kept}"
        );
    }

    #[test]
    fn the_views_with_the_best_score_are_chosen_and_a_tie_goes_to_fewer_clips() {
        assert_eq!(
            fit::choose_views(&[(1, 0.5), (3, 0.75), (5, 0.75)]),
            Some(3)
        );
        assert_eq!(
            fit::choose_views(&[(5, 0.75), (3, 0.75), (1, 0.5)]),
            Some(3)
        );
        assert_eq!(fit::choose_views(&[(1, 0.8), (3, 0.75), (5, 0.9)]), Some(5));
        assert_eq!(fit::choose_views(&[(1, 0.8), (3, 0.8), (5, 0.8)]), Some(1));
        assert_eq!(fit::choose_views(&[]), None);
        let mut m = metrics(false);
        m.default_views = None;
        m.val_top1_by_clips.clear();
        assert!(render_summary(&m).contains("no validation videos, so no default views"));
    }

    #[test]
    fn the_resume_fingerprint_holds_threads_and_device() {
        let o = TrainOptions {
            data: DataSource::Folder("data".into()),
            out: "out".into(),
            from: ModelSource::BuiltIn,
            start: Start::Pretrained,
            plan: Plan {
                epochs: Some(1),
                batch_size: 4,
                lr: 1e-3,
                backbone_lr: 0.05,
                weight_decay: 0.0,
                seed: 0,
                probe_first: true,
            },
            val_fraction: 0.2,
            device: tch::Device::Cpu,
            threads: 2,
            decode: RunSettings {
                threads: 2,
                batch_size: 1,
                timeout: Duration::from_secs(1),
                ahead: 1,
            },
            time_limit: Duration::from_secs(600),
            cache_bytes: 1,
            resume: false,
            force: false,
            quiet: true,
        };
        let ds = Dataset {
            labels: vec!["a".into()],
            examples: Vec::new(),
            skipped: Vec::new(),
            warnings: Vec::new(),
        };
        let base = run_fingerprint(&ds, &o);
        assert_eq!(base, run_fingerprint(&ds, &o.clone()));
        let threads = TrainOptions {
            threads: 1,
            ..o.clone()
        };
        assert_ne!(base, run_fingerprint(&ds, &threads), "threads");
        let device = TrainOptions {
            device: tch::Device::Cuda(0),
            ..o
        };
        assert_ne!(base, run_fingerprint(&ds, &device), "device");
    }
}
