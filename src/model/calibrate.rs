//! A precision record measured on the weights a model actually has: top-1 agreement of bf16
//! with fp32 over deterministic calibration clips, as `--precision auto` reads it.

use super::{LoadOptions, Model, ModelConfig, ModelSource, Precision, ReducedPrecision};
use anyhow::Result;
use tch::{Device, Kind, Tensor};

/// Seed of the calibration clips (the exporter's calibration clips use the same).
const SEED: i64 = 12_000;

/// Runs `clips` calibration clips through the model in fp32 and in bf16 on the CPU and
/// returns the fraction whose top-1 agrees. A model that does not run in bf16 gets a record
/// without an agreement, so `--precision auto` never picks bf16 for it.
pub fn measure(source: &ModelSource, clips: usize) -> Result<ReducedPrecision> {
    let cfg = super::read_config(source)?;
    // A clip length the architecture takes, and no longer than 16 frames (the record is
    // about the weights; a long clip only costs time).
    let frames = if cfg.variable_frames {
        cfg.frames.min(16).max(cfg.min_frames)
    } else {
        cfg.frames
    };
    let input = calibration_clips(&cfg, frames, clips);
    measure_on(
        source,
        frames,
        clips,
        |i| input.narrow(0, i as i64, 1),
        "synthetic",
    )
}

/// The same record on given clips: `clip(i)` for i < `clips`, each 1 x 3 x `frames` x crop x
/// crop, normalised as the model wants (e.g. a trained model's validation clips, `from`
/// `videos`).
pub fn measure_on(
    source: &ModelSource,
    frames: usize,
    clips: usize,
    clip: impl Fn(usize) -> Tensor,
    from: &str,
) -> Result<ReducedPrecision> {
    let want = top1(&load(source, Precision::Fp32, frames)?, clips, &clip)?;
    let agreement = load(source, Precision::Bf16, frames)
        .and_then(|bf16| top1(&bf16, clips, &clip))
        .ok()
        .map(|got| {
            let same = got.iter().zip(&want).filter(|(a, b)| a == b).count();
            same as f64 / want.len().max(1) as f64
        });
    Ok(ReducedPrecision {
        clips,
        bf16_top1_agreement: agreement,
        fp16_top1_agreement: None,
        clips_from: Some(from.into()),
    })
}

fn load(source: &ModelSource, precision: Precision, frames: usize) -> Result<Model> {
    let opts = LoadOptions {
        device: Device::Cpu,
        precision,
        frames: Some(frames),
    };
    Model::load(source.clone(), &opts)
}

/// Smooth random pictures drifting sideways (clips x 3 x T x crop x crop), normalised with
/// the model's mean and std, from a fixed seed.
fn calibration_clips(cfg: &ModelConfig, frames: usize, clips: usize) -> Tensor {
    let _guard = tch::no_grad_guard();
    let c = cfg.crop as i64;
    let t = frames as i64;
    tch::manual_seed(SEED);
    let coarse = Tensor::rand(
        [clips as i64, 3, 1, (c / 8).max(2), (c / 8).max(2)],
        (Kind::Float, Device::Cpu),
    );
    let picture = coarse.upsample_trilinear3d([1, c, c], false, None, None, None);
    let frames: Vec<Tensor> = (0..t).map(|i| picture.roll([2 * i], [4])).collect();
    let clip = Tensor::cat(&frames, 2) * cfg.value_scale;
    let mean = Tensor::from_slice(&cfg.mean.map(|m| m as f32)).view([1, 3, 1, 1, 1]);
    let std = Tensor::from_slice(&cfg.std.map(|s| s as f32)).view([1, 3, 1, 1, 1]);
    (clip - mean) / std
}

/// The top-1 class of each clip, one clip a forward pass.
fn top1(model: &Model, clips: usize, clip: &impl Fn(usize) -> Tensor) -> Result<Vec<usize>> {
    (0..clips)
        .map(|i| {
            let logits = model.forward(&clip(i))?;
            let row = logits.first().cloned().unwrap_or_default();
            Ok(row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i))
        })
        .collect()
}
