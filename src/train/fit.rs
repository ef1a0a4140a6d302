//! The optimisation: a linear probe on frozen features (the head's start, or the whole of
//! `--freeze`), then fine-tuning of the whole network on augmented clips, with a checkpoint
//! after every epoch and on a signal.

use super::bank::{augmented_view, centre_crop, centre_view, Bank};
use super::data::{Rng, Split};
use super::optim::AdamW;
use crate::atomic::Existing;
use crate::model::{aggregate, top_k, Aggregate, ModelConfig, Trainable};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Kind, Reduction, Tensor};

/// How to optimise.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    /// Epochs of fine-tuning; `None`: as many as the time limit allows (see [`AUTO_EPOCHS`]).
    pub epochs: Option<usize>,
    pub batch_size: usize,
    pub lr: f64,
    /// The pretrained backbone learns at `lr * backbone_lr` (1 from scratch).
    pub backbone_lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Start the head from a linear probe before fine-tuning.
    pub probe_first: bool,
}

/// The pretrained backbone's rate as a share of the head's. At 1/20 the features hardly
/// moved and fine-tuning seldom beat the probe; at the head's own rate it forgot more than it
/// learnt (docs/TRAINING.md).
pub const BACKBONE_LR: f64 = 0.3;

/// One epoch's numbers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochLog {
    pub epoch: usize,
    pub loss: f64,
    pub train_top1: f64,
    pub val_top1: Option<f64>,
    /// Mean negative log-probability of the true label on the validation videos (the
    /// selection score; see [`Validation`]).
    #[serde(default)]
    pub val_loss: Option<f64>,
    pub clips_per_s: f64,
    pub seconds: f64,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    Finished,
    /// Validation had not improved for [`patience`] epochs.
    NoImprovement,
    TimeLimit,
    Signal(i32),
}

/// Bounds of the schedule sized to the time limit: after the first epoch is timed, the run
/// plans as many epochs as fit in the time left, at least the first and at most the second.
/// Schedules of 30 and 60 epochs scored below 12 on held-out videos (docs/TRAINING.md): more
/// epochs fit the training videos, not the actions, so the time limit shortens the schedule
/// of a slow model and does not lengthen that of a fast one.
pub const AUTO_EPOCHS: (usize, usize) = (2, 12);

/// Epochs without a better validation score after which fine-tuning stops: a quarter of the
/// schedule, at least 4.
pub fn patience(planned: usize) -> usize {
    (planned / 4).max(4)
}

/// The epochs a schedule sized to `deadline` spans, from the first epoch's cost in seconds
/// (training and validation); the final scoring is given one more epoch's time.
fn sized_schedule(deadline: Instant, epoch_secs: f64) -> usize {
    let (min, max) = AUTO_EPOCHS;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .as_secs_f64();
    let more = (left / epoch_secs.max(1e-3) - 1.0).floor().max(0.0) as usize;
    (1 + more).clamp(min, max)
}

/// What survives an interruption: where the loop stands and the best epoch so far.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// The epoch in progress and the next step in it.
    pub epoch: usize,
    pub step: usize,
    pub best_epoch: Option<usize>,
    pub best_val: f64,
    pub history: Vec<EpochLog>,
    /// What the run was started with; a resume with anything else is refused.
    pub fingerprint: String,
    /// The epoch in progress so far (kept across an interruption, so its log is whole).
    #[serde(default)]
    pub tally: Tally,
    /// Epochs the schedule spans: `--epochs`, else sized to the time limit after the first.
    #[serde(default)]
    pub planned: usize,
    /// The linear probe's validation figures ("epoch 0"), when it was fitted and scored.
    #[serde(default)]
    pub probe: Option<Validation>,
}

/// Running sums of an epoch's training steps.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Tally {
    pub loss_sum: f64,
    pub right: usize,
    pub seen: usize,
}

impl Tally {
    fn add(&mut self, t: Tally) {
        self.loss_sum += t.loss_sum;
        self.right += t.right;
        self.seen += t.seen;
    }
}

/// Where the run keeps its files: the best model so far and the checkpoint.
pub struct Files {
    pub best: PathBuf,
    pub checkpoint: PathBuf,
}

impl Files {
    fn model(&self) -> PathBuf {
        self.checkpoint.join("model.pt")
    }
    fn optim(&self) -> PathBuf {
        self.checkpoint.join("optim.ot")
    }
    fn state(&self) -> PathBuf {
        self.checkpoint.join("state.json")
    }

    pub fn load_state(&self) -> Result<Option<State>> {
        let p = self.state();
        if !p.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p)?;
        Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!("{}: not a vidcls training checkpoint", p.display())
        })?))
    }

    fn save(&self, model: &Trainable, opt: &AdamW, state: &State) -> Result<()> {
        std::fs::create_dir_all(&self.checkpoint)
            .with_context(|| format!("cannot create {}", self.checkpoint.display()))?;
        model.save(&self.model())?;
        opt.save(&self.optim())?;
        let text = serde_json::to_string_pretty(state)?;
        crate::atomic::write(&self.state(), Existing::Replace, text.as_bytes())
    }
}

/// Class weights inversely proportional to frequency (mean 1), so a rare class counts as much
/// as a common one.
pub fn class_weights(counts: &[usize]) -> Vec<f64> {
    let k = counts.len() as f64;
    let n: usize = counts.iter().sum();
    counts
        .iter()
        .map(|&c| n as f64 / (k * c.max(1) as f64))
        .collect()
}

/// A signal arrived before anything worth keeping was made: the run ends, writing nothing.
#[derive(Debug, Clone, Copy)]
pub struct Interrupted(pub i32);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by signal {}", self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Fails with [`Interrupted`] once a signal has arrived.
pub fn stop_if_interrupted() -> Result<()> {
    match crate::interrupt::requested() {
        Some(sig) => Err(Interrupted(sig).into()),
        None => Ok(()),
    }
}

/// Features (eval mode, N x D on the CPU) of the centre crop of each (video, clip) in
/// `items`, a batch at a time: only one batch of f32 crops exists at once beside the f16
/// cache. Stops at a signal.
fn features_of(
    model: &Trainable,
    bank: &Bank,
    cfg: &ModelConfig,
    items: &[(usize, usize)],
    batch: usize,
) -> Result<Tensor> {
    let mut out = Vec::new();
    for chunk in items.chunks(batch.max(1)) {
        stop_if_interrupted()?;
        let views: Vec<Tensor> = chunk
            .iter()
            .map(|&(i, c)| centre_view(&bank.clips[i][c..=c], cfg))
            .collect();
        out.push(
            model
                .features(&Tensor::stack(&views, 0))?
                .to_device(tch::Device::Cpu),
        );
    }
    Ok(Tensor::cat(&out, 0))
}

/// Fits the head on frozen features: every kept clip of the training videos (centre crop)
/// against its label, full batch, class-weighted. Returns its validation figures, if any.
pub fn probe(
    model: &mut Trainable,
    bank: &Bank,
    cfg: &ModelConfig,
    plan: &Plan,
) -> Result<Option<Validation>> {
    model.set_train(false);
    let train = bank.indices(Split::Train);
    let mut items = Vec::new();
    let mut ys = Vec::new();
    for &i in &train {
        for c in 0..bank.clips[i].len() {
            items.push((i, c));
            ys.push(bank.labels[i] as i64);
        }
    }
    let x = features_of(model, bank, cfg, &items, plan.batch_size)?;
    let y = Tensor::from_slice(&ys);
    let classes = cfg.labels.len();
    let counts = super::data::per_class(classes, ys.iter().map(|&l| l as usize));
    let w_class = Tensor::from_slice(&class_weights(&counts)).to_kind(Kind::Float);
    tch::manual_seed(plan.seed as i64);
    let d = x.size()[1];
    let bound = 1.0 / (d as f64).sqrt();
    let w = Tensor::empty([classes as i64, d], (Kind::Float, tch::Device::Cpu))
        .uniform_(-bound, bound)
        .set_requires_grad(true);
    let b =
        Tensor::zeros([classes as i64], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let mut opt = AdamW::new(
        vec![(w.shallow_clone(), 1.0), (b.shallow_clone(), 1.0)],
        1e-3,
    );
    for step in 0..PROBE_STEPS {
        let lr = 1e-2 * (1.0 - step as f64 / PROBE_STEPS as f64).max(0.05);
        let logits = x.matmul(&w.tr()) + &b;
        let loss = logits.cross_entropy_loss(&y, Some(&w_class), Reduction::Mean, -100, 0.0);
        opt.zero_grad();
        loss.backward();
        opt.step(lr);
    }
    model.set_head(&w.detach(), &b.detach())?;
    let val = bank.indices(Split::Val);
    if val.is_empty() {
        return Ok(None);
    }
    Ok(Some(validate(model, bank, cfg, &val, plan.batch_size)?))
}

/// Full-batch steps of the linear probe.
const PROBE_STEPS: usize = 300;

/// Per video of `idx`, its class scores as `predict --clips n` gives them: the centre crop of
/// each clip it takes, the views' outputs combined as `predict` combines them by default
/// (`--aggregate prob`). A batch of clips at a time.
pub fn predict_scores(
    model: &mut Trainable,
    bank: &Bank,
    cfg: &ModelConfig,
    idx: &[usize],
    n: usize,
    batch: usize,
) -> Result<Vec<Vec<f64>>> {
    model.set_train(false);
    let _g = tch::no_grad_guard();
    let mut per_video = Vec::with_capacity(idx.len());
    let mut items = Vec::new();
    for &i in idx {
        let clips = bank
            .predict_clips(i, n)
            .with_context(|| format!("{}: no {n}-clip views were kept", bank.paths[i]))?;
        per_video.push(clips.len());
        items.extend(clips);
    }
    let mut rows: Vec<Vec<f64>> = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch.max(1)) {
        let views: Vec<Tensor> = chunk.iter().map(|c| centre_crop(c, cfg)).collect();
        let logits = model.forward(&Tensor::stack(&views, 0))?;
        rows.extend(Vec::<Vec<f64>>::try_from(
            logits.to_kind(Kind::Double).to_device(tch::Device::Cpu),
        )?);
    }
    let mut at = 0;
    Ok(per_video
        .into_iter()
        .map(|k| {
            at += k;
            aggregate(&rows[at - k..at], Aggregate::Prob)
        })
        .collect())
}

/// Top-1 on `idx` as `predict --clips n` labels them, and the predictions.
pub fn evaluate(
    model: &mut Trainable,
    bank: &Bank,
    cfg: &ModelConfig,
    idx: &[usize],
    n: usize,
    batch: usize,
) -> Result<(f64, Vec<usize>)> {
    let scores = predict_scores(model, bank, cfg, idx, n, batch)?;
    Ok(top1_of(bank, cfg, idx, &scores))
}

/// Top-1 of per-video `scores` against the labels of `idx`, and the predictions.
fn top1_of(
    bank: &Bank,
    cfg: &ModelConfig,
    idx: &[usize],
    scores: &[Vec<f64>],
) -> (f64, Vec<usize>) {
    let preds: Vec<usize> = scores
        .iter()
        .map(|s| top_k(s, &cfg.labels, 1).first().map_or(0, |p| p.index))
        .collect();
    let right = idx
        .iter()
        .zip(&preds)
        .filter(|(&i, &p)| bank.labels[i] == p)
        .count();
    (right as f64 / idx.len().max(1) as f64, preds)
}

/// A model's figures on the validation videos, each labelled as `predict --clips
/// SELECTION_CLIPS` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub top1: f64,
    pub loss: f64,
}

impl Validation {
    /// Higher is better. Epochs, and the probe against fine-tuning, are compared by the loss,
    /// not the top-1: on a few dozen videos the top-1 moves in steps of several points and
    /// rewards the luckiest of many epochs, where the loss also counts how sure each answer is.
    pub fn selection(&self) -> f64 {
        -self.loss
    }
}

/// Clips per video with which epochs are compared: all the kept ones, the most `predict`'s
/// default views can take, and the least noisy comparison.
pub const SELECTION_CLIPS: usize = super::bank::CLIPS_PER_VIDEO;

/// The figures of [`Validation`] on the videos `idx`.
pub fn validate(
    model: &mut Trainable,
    bank: &Bank,
    cfg: &ModelConfig,
    idx: &[usize],
    batch: usize,
) -> Result<Validation> {
    let scores = predict_scores(model, bank, cfg, idx, SELECTION_CLIPS, batch)?;
    let loss: f64 = scores
        .iter()
        .zip(idx)
        .map(|(s, &i)| -s[bank.labels[i]].max(1e-12).ln())
        .sum();
    Ok(Validation {
        top1: top1_of(bank, cfg, idx, &scores).0,
        loss: loss / idx.len().max(1) as f64,
    })
}

/// The clips-per-video setting with the best top-1; a tie goes to fewer clips.
pub fn choose_views(scores: &[(usize, f64)]) -> Option<usize> {
    scores
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|&(n, _)| n)
}

/// Forward passes (no gradients) in training mode over the training clips, so batch
/// normalisation's running statistics follow the current weights: a network trained from
/// scratch inherits statistics of the weights it replaced, and a few steps per epoch would not
/// move them far enough. Passes until [`NORM_PASSES`] batches (momentum 0.1 leaves ~4% of the
/// old statistics).
fn recalibrate_norms(
    model: &mut Trainable,
    bank: &Bank,
    cfg: &ModelConfig,
    train: &[usize],
    batch: usize,
) -> Result<()> {
    model.set_train(true);
    let _g = tch::no_grad_guard();
    let chunks: Vec<&[usize]> = train.chunks(batch.max(2)).filter(|c| c.len() > 1).collect();
    for c in chunks.iter().cycle().take(NORM_PASSES) {
        // Crops a batch at a time, as the probe makes them (memory).
        let views: Vec<Tensor> = c
            .iter()
            .map(|&i| centre_view(&bank.clips[i], cfg))
            .collect();
        let _ = model.forward(&Tensor::stack(&views, 0))?;
    }
    Ok(())
}

const NORM_PASSES: usize = 30;

/// Learning rate at a point of a run of `planned` epochs: a one-epoch linear warm-up, then a
/// cosine to zero (the first epoch's rates do not depend on `planned`, which a schedule sized
/// to the time limit learns only after it).
fn lr_at(plan: &Plan, planned: usize, epoch: usize, step: usize, steps: usize) -> f64 {
    let t = (epoch * steps + step) as f64;
    let warm = steps as f64;
    let total = (planned * steps).max(1) as f64;
    if t < warm {
        plan.lr * (0.1 + 0.9 * t / warm)
    } else {
        plan.lr * 0.5 * (1.0 + (std::f64::consts::PI * (t - warm) / (total - warm).max(1.0)).cos())
    }
}

/// What the loop needs besides the model.
pub struct Loop<'a> {
    pub bank: &'a Bank,
    pub cfg: &'a ModelConfig,
    pub plan: &'a Plan,
    pub files: &'a Files,
    pub deadline: Instant,
    pub progress: &'a ProgressBar,
    pub quiet: bool,
}

/// Fine-tunes every parameter; the best epoch by validation top-1 is saved to `files.best`
/// as it happens. Resumes from `state` when given (model and optimiser from the checkpoint).
pub fn finetune(
    lp: &Loop,
    model: &mut Trainable,
    mut state: State,
    resumed: bool,
) -> Result<(State, Stop)> {
    let (bank, plan) = (lp.bank, lp.plan);
    let train = bank.indices(Split::Train);
    let steps = train.len().div_ceil(plan.batch_size.max(1));
    if resumed {
        model.load_weights(&lp.files.model())?;
    }
    let mut opt = optimiser(model, plan)?;
    if resumed {
        opt.load(&lp.files.optim())?;
    }
    let counts = super::data::per_class(lp.cfg.labels.len(), train.iter().map(|&i| bank.labels[i]));
    let weights = Tensor::from_slice(&class_weights(&counts))
        .to_kind(Kind::Float)
        .to_device(model.device);
    if state.planned == 0 {
        state.planned = plan.epochs.unwrap_or(AUTO_EPOCHS.1);
    }
    lp.progress.set_length((state.planned * steps) as u64);
    lp.progress
        .set_position((state.epoch * steps + state.step) as u64);
    while state.epoch < state.planned {
        let mut order = train.clone();
        Rng::new(plan.seed, &[state.epoch as u64, 0x0de7]).shuffle(&mut order);
        // From a pretrained model, normalisation layers keep their statistics (and dropout is
        // off): with a few dozen clips, batch statistics would pull the features away from
        // those the head was fitted on. From scratch they learn as usual.
        model.set_train(!plan.probe_first);
        let t0 = Instant::now();
        while state.step < steps {
            if let Some(stop) = should_stop(lp.deadline) {
                lp.files.save(model, &opt, &state)?;
                return Ok((state, stop));
            }
            let batch = &order[state.step * plan.batch_size
                ..((state.step + 1) * plan.batch_size).min(order.len())];
            let lr = lr_at(plan, state.planned, state.epoch, state.step, steps);
            let t = train_step(lp, model, &mut opt, &weights, batch, &state, lr)?;
            state.tally.add(t);
            state.step += 1;
            lp.progress.inc(1);
        }
        end_epoch(lp, model, &mut state, &train, t0)?;
        if state.epoch == 1 {
            // A schedule sized to the time limit has its length now.
            lp.progress.set_length((state.planned * steps) as u64);
        }
        lp.files.save(model, &opt, &state)?;
        let since_best = state.epoch - state.best_epoch.unwrap_or(0);
        if since_best >= patience(state.planned) && state.epoch < state.planned {
            return Ok((state, Stop::NoImprovement));
        }
    }
    Ok((state, Stop::Finished))
}

/// One optimisation step on `batch` (example indices); returns its share of the epoch's tally.
fn train_step(
    lp: &Loop,
    model: &mut Trainable,
    opt: &mut AdamW,
    weights: &Tensor,
    batch: &[usize],
    state: &State,
    lr: f64,
) -> Result<Tally> {
    let (bank, seed, epoch) = (lp.bank, lp.plan.seed, state.epoch as u64);
    let views: Vec<Tensor> = batch
        .iter()
        .map(|&i| {
            augmented_view(
                bank,
                i,
                lp.cfg,
                &mut Rng::new(seed, &[epoch, i as u64, 0xa09]),
            )
        })
        .collect();
    let y: Vec<i64> = batch.iter().map(|&i| bank.labels[i] as i64).collect();
    let y = Tensor::from_slice(&y).to_device(model.device);
    tch::manual_seed((seed ^ (epoch * 100_003 + state.step as u64)) as i64);
    let logits = model.forward(&Tensor::stack(&views, 0))?;
    let loss = logits.cross_entropy_loss(&y, Some(weights), Reduction::Mean, -100, 0.0);
    opt.zero_grad();
    loss.backward();
    opt.step(lr);
    let right = logits.argmax(1, false).eq_tensor(&y).sum(Kind::Int64);
    Ok(Tally {
        loss_sum: loss.double_value(&[]) * batch.len() as f64,
        right: right.int64_value(&[]) as usize,
        seen: batch.len(),
    })
}

/// Scores the epoch, keeps the model if it is the best so far, logs, and moves to the next.
fn end_epoch(
    lp: &Loop,
    model: &mut Trainable,
    state: &mut State,
    train: &[usize],
    started: Instant,
) -> Result<()> {
    let (bank, plan) = (lp.bank, lp.plan);
    let secs = started.elapsed().as_secs_f64();
    if !plan.probe_first {
        recalibrate_norms(model, bank, lp.cfg, train, plan.batch_size)?;
    }
    let val = bank.indices(Split::Val);
    let scored = if val.is_empty() {
        None
    } else {
        Some(validate(model, bank, lp.cfg, &val, plan.batch_size)?)
    };
    let t = std::mem::take(&mut state.tally);
    let log = EpochLog {
        epoch: state.epoch + 1,
        loss: t.loss_sum / t.seen.max(1) as f64,
        train_top1: t.right as f64 / t.seen.max(1) as f64,
        val_top1: scored.map(|v| v.top1),
        val_loss: scored.map(|v| v.loss),
        clips_per_s: t.seen as f64 / secs.max(1e-9),
        seconds: secs,
    };
    // Without validation clips, any epoch replaces the probe, and a later one an earlier one
    // only with a better training top-1.
    let score = scored.map_or(log.train_top1, |v| v.selection());
    if state.best_epoch.is_none() || score > state.best_val {
        state.best_val = score;
        state.best_epoch = Some(state.epoch + 1);
        model.save(&lp.files.best)?;
    }
    if state.epoch == 0 && plan.epochs.is_none() {
        state.planned = sized_schedule(lp.deadline, started.elapsed().as_secs_f64());
    }
    if !lp.quiet {
        lp.progress
            .suspend(|| eprintln!("vidcls: {}", describe(&log, state.planned)));
    }
    state.history.push(log);
    state.epoch += 1;
    state.step = 0;
    Ok(())
}

/// An optimiser over the model's parameters; the head learns at the full rate.
fn optimiser(model: &Trainable, plan: &Plan) -> Result<AdamW> {
    Ok(AdamW::new(
        model
            .parameters()?
            .into_iter()
            .map(|(name, t)| {
                (
                    t,
                    if name.starts_with("fc.") {
                        1.0
                    } else {
                        plan.backbone_lr
                    },
                )
            })
            .collect(),
        plan.weight_decay,
    ))
}

fn should_stop(deadline: Instant) -> Option<Stop> {
    if let Some(sig) = crate::interrupt::requested() {
        return Some(Stop::Signal(sig));
    }
    (Instant::now() >= deadline).then_some(Stop::TimeLimit)
}

pub fn describe(log: &EpochLog, epochs: usize) -> String {
    let val = log
        .val_top1
        .map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
    format!(
        "epoch {}/{epochs}: loss {:.3}, train {:.1}%, val {val}, {:.0} clips/s ({:.1} s)",
        log.epoch,
        log.loss,
        log.train_top1 * 100.0,
        log.clips_per_s,
        log.seconds
    )
}

/// The time left before `limit` from now.
/// Confusion counts (rows: truth, columns: prediction).
pub fn confusion(classes: usize, truth: &[usize], pred: &[usize]) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; classes]; classes];
    for (&t, &p) in truth.iter().zip(pred) {
        m[t][p] += 1;
    }
    m
}

/// Whether `path` holds a checkpoint.
pub fn has_checkpoint(checkpoint: &Path) -> bool {
    checkpoint.join("state.json").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_fills_the_time_left_within_its_bounds() {
        let at = |secs: u64| Instant::now() + std::time::Duration::from_secs(secs);
        // 105 s left at 10 s an epoch: 9 more after the first, one epoch's time kept back.
        assert_eq!(sized_schedule(at(105), 10.0), 10);
        assert_eq!(sized_schedule(at(5), 10.0), AUTO_EPOCHS.0);
        assert_eq!(sized_schedule(at(100_000), 1.0), AUTO_EPOCHS.1);
    }

    #[test]
    fn patience_is_a_quarter_of_the_schedule_and_at_least_four() {
        assert_eq!(patience(2), 4);
        assert_eq!(patience(20), 5);
        assert_eq!(patience(12), 4);
        assert_eq!(patience(30), 7);
    }

    #[test]
    fn the_rate_warms_up_over_one_epoch_then_decays_to_zero_by_the_planned_end() {
        let plan = Plan {
            epochs: None,
            batch_size: 4,
            lr: 1.0,
            backbone_lr: 0.3,
            weight_decay: 0.0,
            seed: 0,
            probe_first: true,
        };
        // The first epoch does not depend on the schedule's length (it is sized after it).
        assert_eq!(lr_at(&plan, 5, 0, 3, 10), lr_at(&plan, 50, 0, 3, 10));
        assert!((lr_at(&plan, 5, 1, 0, 10) - 1.0).abs() < 1e-9);
        assert!(lr_at(&plan, 5, 4, 9, 10) < 0.01);
        assert!(lr_at(&plan, 50, 4, 9, 10) > 0.9);
    }

    #[test]
    fn a_lower_validation_loss_is_a_better_selection_score() {
        let sure = Validation {
            top1: 0.75,
            loss: 0.4,
        };
        let lucky = Validation {
            top1: 0.80,
            loss: 0.7,
        };
        assert!(sure.selection() > lucky.selection());
    }
}
