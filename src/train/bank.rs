//! Decode each training video once: a few clips per video, resized as `predict` resizes them
//! (same decoder, sampling and arithmetic), kept in memory in half precision. Augmentation
//! then crops from them; validation takes the centre clip with `predict`'s centre crop, and
//! the held-out videos also keep the clips `predict --clips N` takes for each N of
//! [`VALIDATED_CLIPS`], so the model's default views are chosen on what `predict` would see.

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

/// The clips-per-video settings scored on the held-out videos, fewest first (the default views
/// are chosen among them).
pub const VALIDATED_CLIPS: [usize; 3] = [1, 3, CLIPS_PER_VIDEO];

/// Playback speeds of a training video's extra clips (speed jitter): the model samples at its
/// rate times each, so 0.8 shows the action 25 % faster and 1.25 shows it 20 % slower.
pub const SPEEDS: [f64; 2] = [0.8, 1.25];

/// The decoded clips of the usable videos.
pub struct Bank {
    /// Per video: `CLIPS_PER_VIDEO` clips, each T x C x H x W (resized, not cropped), f16.
    pub clips: Vec<Vec<Tensor>>,
    /// Per training video (empty for held-out ones): `CLIPS_PER_VIDEO` clips at each of
    /// [`SPEEDS`], for augmentation (none when the model samples at the video's own rate).
    pub jitter: Vec<Vec<Tensor>>,
    /// Per held-out video (empty for training videos): for each other entry of
    /// [`VALIDATED_CLIPS`], the clips `predict --clips N` takes; a clip the same as one already
    /// kept shares its memory.
    pub other: Vec<Vec<(usize, Vec<Tensor>)>>,
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

    /// The clips `predict --clips n` takes of video `i`: all of a training video's clips for
    /// `CLIPS_PER_VIDEO`; a held-out video's for each of [`VALIDATED_CLIPS`].
    pub fn predict_clips(&self, i: usize, n: usize) -> Option<&[Tensor]> {
        if n == CLIPS_PER_VIDEO {
            return Some(&self.clips[i]);
        }
        self.other[i]
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, c)| c.as_slice())
    }
}

/// Where clips are taken: the model's sampling, `clips` clips per video.
pub fn clip_settings(cfg: &ModelConfig, frames: usize, clips: usize) -> ClipSettings {
    ClipSettings {
        spec: SamplingSpec {
            frames,
            fps: cfg.sampling.fps,
            stride: cfg.sampling.stride,
            clips,
        },
        windows: None,
        thumbnails: None,
        max_pixels: crate::decode::DEFAULT_MAX_PIXELS,
        max_windows: 1,
        access: Default::default(),
    }
}

/// One video's decoded clips.
struct Decoded {
    path: String,
    clips: Vec<Tensor>,
    jitter: Vec<Tensor>,
    other: Vec<(usize, Vec<Tensor>)>,
}

/// A training video's clips at each of [`SPEEDS`]: the model's sampling at another rate.
fn jittered(path: &Path, cfg: &ModelConfig, frames: usize) -> Result<Vec<Tensor>, FileError> {
    let Some(fps) = cfg.sampling.fps else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for speed in SPEEDS {
        let mut at = cfg.clone();
        at.sampling.fps = Some(fps * speed);
        out.extend(clips_of(decode_clips(path, &at, frames, CLIPS_PER_VIDEO)?));
    }
    Ok(out)
}

/// Decodes `path` as `predict --clips n` would, resized and in f16, one tensor per clip.
fn decode_clips(
    path: &Path,
    cfg: &ModelConfig,
    frames: usize,
    n: usize,
) -> Result<Prepared<Tensor>, FileError> {
    let make = pipeline::MakeViews {
        frame: &|size, first| pipeline::resize_rows(size, first, cfg),
        views: &|f: &[Resized]| Ok(vec![stack_resized(f)?.to_kind(Kind::Half)]),
    };
    pipeline::prepare(path, &clip_settings(cfg, frames, n), &make)
}

/// A whole-video decode's clips, in time order.
fn clips_of(p: Prepared<Tensor>) -> Vec<Tensor> {
    p.units.into_iter().flat_map(|u| u.views).collect()
}

/// A held-out video's clips for the other settings of [`VALIDATED_CLIPS`]: each clip equal to
/// one already kept (the centre clip, mostly) shares its memory.
fn other_settings(
    path: &Path,
    cfg: &ModelConfig,
    frames: usize,
    kept: &[Tensor],
) -> Result<Vec<(usize, Vec<Tensor>)>, FileError> {
    let mut seen: Vec<Tensor> = kept.iter().map(Tensor::shallow_clone).collect();
    let mut out = Vec::new();
    for n in VALIDATED_CLIPS
        .into_iter()
        .filter(|&n| n != CLIPS_PER_VIDEO)
    {
        let clips = clips_of(decode_clips(path, cfg, frames, n)?)
            .into_iter()
            .map(
                |c| match seen.iter().find(|s| s.size() == c.size() && s.equal(&c)) {
                    Some(same) => same.shallow_clone(),
                    None => {
                        seen.push(c.shallow_clone());
                        c
                    }
                },
            )
            .collect();
        out.push((n, clips));
    }
    Ok(out)
}

/// Bytes of distinct storage among `clips` (clips that share memory count once).
fn distinct_bytes<'a>(clips: impl Iterator<Item = &'a Tensor>) -> usize {
    let mut seen = Vec::new();
    let mut bytes = 0;
    for t in clips {
        let at = t.data_ptr() as usize;
        if !seen.contains(&at) {
            seen.push(at);
            bytes += t.numel() * 2;
        }
    }
    bytes
}

/// Decodes every example on `run.threads` workers; unusable videos are skipped and listed.
/// Training videos also keep their [`SPEEDS`] clips when `jitter` (they are only for
/// fine-tuning). Fails when the cache would pass `limit_bytes`.
pub fn build(
    ds: &Dataset,
    cfg: &ModelConfig,
    frames: usize,
    run: &RunSettings,
    limit_bytes: usize,
    jitter: bool,
    progress: &ProgressBar,
) -> Result<(Bank, Vec<Skipped>)> {
    let c = cfg.clone();
    let held_out: Vec<bool> = ds
        .examples
        .iter()
        .map(|e| e.split.is_some_and(|s| s != Split::Train))
        .collect();
    let prepare = Box::new(move |i: usize, path: &Path| {
        let p = decode_clips(path, &c, frames, CLIPS_PER_VIDEO)?;
        check_length(&p, frames)?;
        let path_shown = p.path.clone();
        let clips = clips_of(p);
        let (other, jitter) = if held_out[i] {
            (other_settings(path, &c, frames, &clips)?, Vec::new())
        } else {
            let speeds = if jitter {
                jittered(path, &c, frames)?
            } else {
                Vec::new()
            };
            (Vec::new(), speeds)
        };
        Ok(Decoded {
            path: path_shown,
            clips,
            jitter,
            other,
        })
    });
    let jobs: Vec<Job> = ds.examples.iter().map(|e| Ok(e.path.clone())).collect();
    let mut bank = Bank {
        clips: Vec::new(),
        jitter: Vec::new(),
        other: Vec::new(),
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
            Ok(d) => {
                let all = d.other.iter().flat_map(|(_, c)| c);
                bank.bytes += distinct_bytes(d.clips.iter().chain(&d.jitter).chain(all));
                bank.clips.push(d.clips);
                bank.jitter.push(d.jitter);
                bank.other.push(d.other);
                bank.labels.push(e.label);
                bank.splits.push(e.split.unwrap_or(Split::Train));
                bank.paths.push(d.path);
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
    centre_crop(&clips[clips.len() / 2], cfg)
}

/// A clip's centre crop, as `predict` takes it (C x T x crop x crop, f32).
pub fn centre_crop(clip: &Tensor, cfg: &ModelConfig) -> Tensor {
    let clip = clip.to_kind(Kind::Float);
    let (h, w) = (clip.size()[2], clip.size()[3]);
    let crop = cfg.crop as i64;
    let (top, left) = crop_offsets(h, w, crop, 1)[0];
    crop_view(&clip, cfg, top, left, crop)
}

/// A training view: a random clip of video `i` (any position, any speed), a random square of
/// [`MIN_SCALE`]-100 % of the short side at a random place, resized to the crop. No flips: a
/// mirror turns left into right.
pub fn augmented_view(
    bank: &Bank,
    i: usize,
    cfg: &ModelConfig,
    rng: &mut super::data::Rng,
) -> Tensor {
    let (clips, jitter) = (&bank.clips[i], &bank.jitter[i]);
    let k = rng.below(clips.len() + jitter.len());
    let clip = clips.get(k).unwrap_or_else(|| &jitter[k - clips.len()]);
    let clip = clip.to_kind(Kind::Float);
    let (h, w) = (clip.size()[2], clip.size()[3]);
    let short = h.min(w) as f64;
    let scale = MIN_SCALE + (1.0 - MIN_SCALE) * rng.unit();
    let size = ((short * scale).round() as i64).clamp(1, h.min(w));
    let top = rng.below((h - size + 1) as usize) as i64;
    let left = rng.below((w - size + 1) as usize) as i64;
    crop_view(&clip, cfg, top, left, size)
}

/// The smallest crop of augmentation, as a share of the short side.
pub const MIN_SCALE: f64 = 0.8;
