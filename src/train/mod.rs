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

pub use fit::{EpochLog, Plan, Stop};

use crate::model::{ModelConfig, ModelSource, Trainable};
use crate::pipeline::RunSettings;
use crate::report::escape::terminal;
use anyhow::{bail, Context, Result};
use data::{Dataset, Skipped, Split};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
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
    pub decode: RunSettings,
    pub time_limit: Option<Duration>,
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
    pub best_epoch: Option<usize>,
    pub val_top1: Option<f64>,
    pub probe_val_top1: Option<f64>,
    /// Rows: truth; columns: prediction (validation clips, best model).
    pub confusion: Vec<Vec<usize>>,
    pub train_clips: Vec<usize>,
    pub val_clips: Vec<usize>,
    pub skipped: Vec<Skipped>,
    pub stopped: Stop,
    pub decode_seconds: f64,
    pub train_seconds: f64,
    pub cache_mb: f64,
    pub data_fingerprint: String,
}

/// How the run ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Complete,
    Interrupted(i32),
}

pub fn run(o: &TrainOptions) -> Result<Ended> {
    let mut ds = list_data(&o.data)?;
    data::split(&mut ds, o.val_fraction, o.plan.seed);
    prepare_out_dir(o)?;
    crate::interrupt::install_polled().context("cannot install signal handlers")?;
    let mut model = Trainable::open(&o.from, o.device)?;
    let cfg = trained_config(&model.config, &ds, o)?;
    let t0 = Instant::now();
    let (bank, skipped) = decode_all(o, &ds, &cfg, model.config.frames)?;
    let decode_seconds = t0.elapsed().as_secs_f64();
    if let Some(sig) = crate::interrupt::requested() {
        return Ok(Ended::Interrupted(sig));
    }
    let fingerprint = run_fingerprint(&ds, o);
    let files = fit::Files {
        best: o.out.join("model.pt"),
        checkpoint: o.out.join(".checkpoint"),
    };
    let t1 = Instant::now();
    let (state, probe_val, resumed) =
        start_state(o, &mut model, &bank, &cfg, &files, &fingerprint)?;
    let deadline = fit::deadline(o.time_limit.map(|l| l.saturating_sub(t0.elapsed())));
    let (state, stop) = match o.start {
        Start::Frozen => (state, Stop::Finished),
        _ => fine_tune(o, &mut model, &bank, &cfg, &files, deadline, state, resumed)?,
    };
    if let Stop::Signal(sig) = stop {
        eprintln!(
            "vidcls: interrupted; checkpoint saved in {} (run the same command with --resume)",
            files.checkpoint.display()
        );
        return Ok(Ended::Interrupted(sig));
    }
    model.load_weights(&files.best)?;
    let mut metrics = score(o, &mut model, &bank, &cfg, &ds, state, stop)?;
    metrics.probe_val_top1 = probe_val;
    metrics.skipped = skipped;
    metrics.decode_seconds = decode_seconds;
    metrics.train_seconds = t1.elapsed().as_secs_f64();
    metrics.data_fingerprint = fingerprint;
    write_outputs(o, &model, cfg, &metrics)?;
    if !o.quiet {
        eprintln!("{}", render_confusion(&metrics));
    }
    let _ = std::fs::remove_dir_all(&files.checkpoint);
    Ok(Ended::Complete)
}

/// Decodes every video once; lists what was skipped; refuses data that cannot train.
fn decode_all(
    o: &TrainOptions,
    ds: &Dataset,
    cfg: &ModelConfig,
    frames: usize,
) -> Result<(bank::Bank, Vec<Skipped>)> {
    let bar = progress(o.quiet, ds.examples.len(), "decoding");
    let (bank, mut skipped) = bank::build(ds, cfg, frames, &o.decode, o.cache_bytes, &bar)?;
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
    deadline: Option<Instant>,
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

/// The best model's numbers on the validation clips (the run's timings are filled in after).
fn score(
    o: &TrainOptions,
    model: &mut Trainable,
    bank: &bank::Bank,
    cfg: &ModelConfig,
    ds: &Dataset,
    state: fit::State,
    stop: Stop,
) -> Result<Metrics> {
    let val = bank.indices(Split::Val);
    let (val_top1, preds) = fit::evaluate(model, bank, cfg, &val, o.plan.batch_size)?;
    let truth: Vec<usize> = val.iter().map(|&i| bank.labels[i]).collect();
    let train = bank.indices(Split::Train);
    Ok(Metrics {
        labels: ds.labels.clone(),
        start: o.start,
        epochs: state.history,
        best_epoch: state.best_epoch,
        val_top1: (!val.is_empty()).then_some(val_top1),
        probe_val_top1: None,
        confusion: fit::confusion(ds.labels.len(), &truth, &preds),
        train_clips: data::per_class(ds.labels.len(), train.iter().map(|&i| bank.labels[i])),
        val_clips: data::per_class(ds.labels.len(), truth.iter().copied()),
        skipped: Vec::new(),
        stopped: stop,
        decode_seconds: 0.0,
        train_seconds: 0.0,
        cache_mb: bank.bytes as f64 / 1e6,
        data_fingerprint: String::new(),
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
        crate::inputs::fnv1a(format!("{plan}{:?}{:?}", o.start, o.from).as_bytes(), 0)
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
) -> Result<(fit::State, Option<f64>, bool)> {
    if o.resume {
        let state = files.load_state()?.context("no checkpoint state")?;
        if state.fingerprint != fingerprint {
            bail!("the checkpoint in {} was made with other data or settings; start again with --force", o.out.display());
        }
        return Ok((state, None, true));
    }
    tch::manual_seed(o.plan.seed as i64);
    model.replace_head(cfg.labels.len())?;
    if o.start == Start::Scratch {
        model.reinitialise()?;
    }
    let probe_val = if o.start != Start::Scratch && (o.plan.probe_first || o.start == Start::Frozen)
    {
        fit::probe(model, bank, cfg, &o.plan)?
    } else {
        None
    };
    let mut state = fit::State {
        epoch: 0,
        step: 0,
        best_epoch: None,
        best_val: 0.0,
        history: Vec::new(),
        fingerprint: fingerprint.to_string(),
        tally: fit::Tally::default(),
    };
    if probe_val.is_some() || o.start == Start::Frozen {
        // The probe is "epoch 0": fine-tuning replaces it only with a better validation score.
        model.save(&files.best)?;
        state.best_epoch = Some(0);
        state.best_val = probe_val.unwrap_or(0.0);
    }
    Ok((state, probe_val, false))
}

fn write_outputs(
    o: &TrainOptions,
    model: &Trainable,
    mut cfg: ModelConfig,
    m: &Metrics,
) -> Result<()> {
    let weights = o.out.join("model.pt");
    model.save(&weights)?;
    let bytes = std::fs::read(&weights)?;
    cfg.weights = crate::model::config::Weights {
        source: format!(
            "trained:vidcls train start={:?} seed={} epochs={}",
            o.start, o.plan.seed, o.plan.epochs
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
        "model_bytes": bytes.len(),
    }));
    write_json(&o.out.join("config.json"), &cfg)?;
    write_json(&o.out.join("metrics.json"), m)
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

fn render_confusion(m: &Metrics) -> String {
    let w = m.labels.iter().map(|l| l.len()).max().unwrap_or(4).max(4);
    let mut s = format!(
        "vidcls: validation top-1 {} (best epoch {}); confusion (rows: truth)\n",
        m.val_top1
            .map_or("-".into(), |v| format!("{:.1}%", v * 100.0)),
        m.best_epoch.map_or("-".into(), |e| e.to_string())
    );
    for (l, row) in m.labels.iter().zip(&m.confusion) {
        let cells: Vec<String> = row.iter().map(|c| format!("{c:>4}")).collect();
        s.push_str(&format!("  {l:<w$} {}\n", cells.join("")));
    }
    s
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
