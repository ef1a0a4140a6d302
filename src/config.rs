//! Flags + model config -> one validated run configuration. "auto" and terminal checks are
//! resolved here, so the stages get plain values.

use crate::cli::PredictArgs;
use crate::decode::SamplingSpec;
use crate::model::ModelConfig;
use crate::pipeline::Settings;
use anyhow::{bail, Result};

/// Decode workers by default: one per two cores (libtorch's threads use the rest), at least 1.
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 2).max(1)
}

/// Command-line overrides on top of the model's sampling.
pub fn sampling(args: &PredictArgs, cfg: &ModelConfig) -> Result<SamplingSpec> {
    let fps = match args.fps {
        Some(f) if !(f.is_finite() && f > 0.0) => bail!("--fps {f}: must be a positive number"),
        Some(f) => Some(f),
        None => cfg.sampling.fps,
    };
    Ok(SamplingSpec {
        frames: args.frames.map_or(cfg.frames, |f| f as usize),
        fps,
        stride: args
            .stride
            .map_or(cfg.sampling.stride, |s| s as usize)
            .max(1),
        clips: args.clips as usize,
    })
}

pub fn settings(args: &PredictArgs, cfg: &ModelConfig) -> Result<Settings> {
    if args.stride == Some(0) {
        bail!("--stride 0: must be at least 1");
    }
    if args.frames == Some(0) {
        bail!("--frames 0: must be at least 1");
    }
    let timeline = if args.timeline {
        let hop = args.hop.unwrap_or(args.window);
        if !(args.window.is_finite() && args.window > 0.0) {
            bail!(
                "--window {}: must be a positive number of seconds",
                args.window
            );
        }
        if !(hop.is_finite() && hop > 0.0) {
            bail!("--hop {hop}: must be a positive number of seconds");
        }
        Some((args.window, hop))
    } else {
        None
    };
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!(
            "--timeout {}: must be a positive number of seconds",
            args.timeout
        );
    }
    let threads = match args.threads {
        Some(0) => bail!("--threads 0: need at least one decode worker"),
        Some(n) => n as usize,
        None => default_threads(),
    };
    Ok(Settings {
        spec: sampling(args, cfg)?,
        crops: args.crops as usize,
        aggregate: args.aggregate,
        batch_size: args.batch_size as usize,
        threads,
        top_k: args.top_k as usize,
        timeline,
        all_scores: args.all_scores,
        dump_inputs: args.dump_inputs.clone(),
        timeout: std::time::Duration::from_secs_f64(args.timeout),
    })
}
