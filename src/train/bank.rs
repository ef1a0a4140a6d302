//! Decode each training video once: a few clips per video, resized as `predict` resizes them
//! (same decoder, sampling and arithmetic), kept in memory in half precision. Augmentation
//! then crops from them; validation takes the centre clip with `predict`'s centre crop.

use super::data::{Dataset, Skipped, Split};
use crate::decode::SamplingSpec;
use crate::model::preprocess::{crop_offsets, crop_view, stack_resized, Resized};
use crate::model::ModelConfig;
use crate::pipeline::{self, ClipSettings, Job, Prepared, RunSettings};
use crate::report::{FileError, Stage};
use anyhow::{bail, Result};
use indicatif::ProgressBar;
use std::path::Path;
use tch::{Kind, Tensor};

/// Clips kept per video, spread uniformly over it; the middle one is `predict`'s centre clip.
pub const CLIPS_PER_VIDEO: usize = 5;

/// The decoded clips of the usable videos.
pub struct Bank {
    /// Per video: `CLIPS_PER_VIDEO` clips, each T x C x H x W (resized, not cropped), f16.
    pub clips: Vec<Vec<Tensor>>,
    pub labels: Vec<usize>,
    pub splits: Vec<Split>,
    pub paths: Vec<String>,
    pub bytes: usize,
}

impl Bank {
    pub fn indices(&self, split: Split) -> Vec<usize> {
        (0..self.labels.len())
            .filter(|&i| self.splits[i] == split)
            .collect()
    }
}

/// Where clips are taken: the model's sampling, `CLIPS_PER_VIDEO` clips per video.
pub fn clip_settings(cfg: &ModelConfig, frames: usize) -> ClipSettings {
    ClipSettings {
        spec: SamplingSpec {
            frames,
            fps: cfg.sampling.fps,
            stride: cfg.sampling.stride,
            clips: CLIPS_PER_VIDEO,
        },
        windows: None,
        thumbnails: None,
        max_pixels: crate::decode::DEFAULT_MAX_PIXELS,
        max_windows: 1,
    }
}

/// Decodes every example on `run.threads` workers; unusable videos are skipped and listed.
/// Fails when the cache would pass `limit_bytes`.
pub fn build(
    ds: &Dataset,
    cfg: &ModelConfig,
    frames: usize,
    run: &RunSettings,
    limit_bytes: usize,
    progress: &ProgressBar,
) -> Result<(Bank, Vec<Skipped>)> {
    let clips = clip_settings(cfg, frames);
    let c = cfg.clone();
    let prepare = Box::new(move |_: usize, path: &Path| {
        let make = pipeline::MakeViews {
            frame: &|size, first| pipeline::resize_rows(size, first, &c),
            views: &|f: &[Resized]| Ok(vec![stack_resized(f)?.to_kind(Kind::Half)]),
        };
        let p = pipeline::prepare(path, &clips, &make)?;
        check_length(&p, frames)?;
        Ok(p)
    });
    let jobs: Vec<Job> = ds.examples.iter().map(|e| Ok(e.path.clone())).collect();
    let mut bank = Bank {
        clips: Vec::new(),
        labels: Vec::new(),
        splits: Vec::new(),
        paths: Vec::new(),
        bytes: 0,
    };
    let mut skipped = Vec::new();
    let mut over = false;
    pipeline::prepare_in_order(jobs, prepare, run, |i, r| {
        progress.inc(1);
        let e = &ds.examples[i];
        match r {
            Ok(p) => {
                let clips: Vec<Tensor> = p.units.into_iter().flat_map(|u| u.views).collect();
                bank.bytes += clips.iter().map(|t| t.numel() * 2).sum::<usize>();
                bank.clips.push(clips);
                bank.labels.push(e.label);
                bank.splits.push(e.split.unwrap_or(Split::Train));
                bank.paths.push(p.path);
            }
            Err(err) => skipped.push(Skipped {
                path: err.path,
                reason: format!("{}: {}", err.stage, err.error),
            }),
        }
        over = bank.bytes > limit_bytes;
        !over
    })?;
    if over {
        bail!(
            "the decoded clips need more than {} MB of memory (--cache-mb); use fewer or \
             shorter videos, or raise the limit",
            limit_bytes >> 20
        );
    }
    Ok((bank, skipped))
}

/// A video so short that most of its centre clip would repeat the last frame is not used.
fn check_length(p: &Prepared<Tensor>, frames: usize) -> Result<(), FileError> {
    let centre = p.units.first().map_or(0, |u| u.padded / u.clips.max(1));
    if centre * 2 > frames {
        let e = anyhow::anyhow!(
            "too short ({:.2} s): {centre} of a clip's {frames} frames would be padding",
            p.duration
        );
        return Err(FileError::new(p.path.clone(), Stage::Decode, &e));
    }
    Ok(())
}

/// The clip `predict` would see: the centre clip, centre crop (C x T x crop x crop, f32).
pub fn centre_view(clips: &[Tensor], cfg: &ModelConfig) -> Tensor {
    let clip = clips[clips.len() / 2].to_kind(Kind::Float);
    let (h, w) = (clip.size()[2], clip.size()[3]);
    let crop = cfg.crop as i64;
    let (top, left) = crop_offsets(h, w, crop, 1)[0];
    crop_view(&clip, cfg, top, left, crop)
}

/// A training view: a random clip of the video, a random square of 80-100 % of the short side
/// at a random place, resized to the crop. No flips: a mirror turns left into right.
pub fn augmented_view(clips: &[Tensor], cfg: &ModelConfig, rng: &mut super::data::Rng) -> Tensor {
    let clip = clips[rng.below(clips.len())].to_kind(Kind::Float);
    let (h, w) = (clip.size()[2], clip.size()[3]);
    let short = h.min(w) as f64;
    let size = ((short * (0.8 + 0.2 * rng.unit())).round() as i64).clamp(1, h.min(w));
    let top = rng.below((h - size + 1) as usize) as i64;
    let left = rng.below((w - size + 1) as usize) as i64;
    crop_view(&clip, cfg, top, left, size)
}
