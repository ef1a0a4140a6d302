//! Clip frames -> model input, torchvision's way: scale to [0, value_scale], bilinear resize
//! without antialias (align_corners = false), crop, normalise, C x T x H x W.

use super::config::{ModelConfig, Resize};
use crate::decode::Frame;
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// Output size of a resize of an (h, w) frame; torchvision truncates the long side.
pub fn resized_size(resize: &Resize, h: u32, w: u32) -> (i64, i64) {
    match *resize {
        Resize::Exact { height, width } => (height as i64, width as i64),
        Resize::ShortSide { size } => {
            let s = size as f64;
            if h <= w {
                (size as i64, (s * w as f64 / h as f64) as i64)
            } else {
                ((s * h as f64 / w as f64) as i64, size as i64)
            }
        }
    }
}

/// Python's `round` (half to even), as torchvision's centre crop uses it.
fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && (r as i64) % 2 != 0 {
        (r - x.signum()) as i64
    } else {
        r as i64
    }
}

/// Top-left corners of the crops of an (h, w) image: 1 crop is the centre; 3 crops are the
/// start, centre and end of the longer side (PySlowFast's multi-view test).
pub fn crop_offsets(h: i64, w: i64, crop: i64, crops: usize) -> Vec<(i64, i64)> {
    let centre = (
        round_half_even((h - crop) as f64 / 2.0),
        round_half_even((w - crop) as f64 / 2.0),
    );
    if crops == 1 {
        return vec![centre];
    }
    if w >= h {
        vec![(centre.0, 0), centre, (centre.0, w - crop)]
    } else {
        vec![(0, centre.1), centre, (h - crop, centre.1)]
    }
}

/// Turns a clip's frames into `crops` views, each C x T x crop x crop float32 on the CPU.
pub fn clip_to_views(frames: &[Frame], cfg: &ModelConfig, crops: usize) -> Result<Vec<Tensor>> {
    let clip = resize_clip(frames, cfg)?;
    let (oh, ow) = (clip.size()[2], clip.size()[3]);
    let crop = cfg.crop as i64;
    Ok(crop_offsets(oh, ow, crop, crops)
        .into_iter()
        .map(|(top, left)| crop_view(&clip, cfg, top, left, crop))
        .collect())
}

/// The first half of preprocessing: a clip's frames scaled to `[0, value_scale]` and resized,
/// T x C x H x W float32 (no crop, no normalisation yet).
pub fn resize_clip(frames: &[Frame], cfg: &ModelConfig) -> Result<Tensor> {
    let Some(first) = frames.first() else {
        bail!("clip has no frames");
    };
    let (oh, ow) = resized_size(&cfg.resize, first.height, first.width);
    let crop = cfg.crop as i64;
    if oh < crop || ow < crop {
        bail!("resized frame {oh}x{ow} is smaller than the {crop}x{crop} crop");
    }
    let mut resized = Vec::with_capacity(frames.len());
    for f in frames {
        let (h, w) = (f.height as i64, f.width as i64);
        if f.data.len() as i64 != h * w * 3 {
            bail!(
                "frame buffer is {} bytes, expected {}",
                f.data.len(),
                h * w * 3
            );
        }
        // Frames of one clip can differ in size when a stream changes resolution mid-way;
        // each is resized on its own, which equals resizing the stack.
        let t = Tensor::from_slice(&f.data)
            .view([1, h, w, 3])
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float)
            * (cfg.value_scale / 255.0);
        let t = if (h, w) == (oh, ow) {
            t
        } else {
            t.f_upsample_bilinear2d([oh, ow], false, None, None)?
        };
        resized.push(t);
    }
    Ok(Tensor::cat(&resized, 0))
}

/// The second half: a `size` x `size` square at (top, left) of a resized clip (T x C x H x W),
/// resized to the model's crop if it differs, normalised, as C x T x crop x crop.
pub fn crop_view(clip: &Tensor, cfg: &ModelConfig, top: i64, left: i64, size: i64) -> Tensor {
    let crop = cfg.crop as i64;
    let mut v = clip.narrow(2, top, size).narrow(3, left, size);
    if size != crop {
        v = v.upsample_bilinear2d([crop, crop], false, None, None);
    }
    let mean = Tensor::from_slice(&cfg.mean)
        .to_kind(Kind::Float)
        .view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&cfg.std)
        .to_kind(Kind::Float)
        .view([1, 3, 1, 1]);
    ((v - mean) / std).permute([1, 0, 2, 3]).contiguous()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_side_truncates_long_side() {
        let r = Resize::ShortSide { size: 128 };
        assert_eq!(resized_size(&r, 240, 320), (128, 170)); // 170.67 -> 170
        assert_eq!(resized_size(&r, 320, 240), (170, 128));
        assert_eq!(resized_size(&r, 100, 100), (128, 128));
        let e = Resize::Exact {
            height: 128,
            width: 171,
        };
        assert_eq!(resized_size(&e, 5, 7), (128, 171));
    }

    #[test]
    fn centre_crop_rounds_like_python() {
        // (171 - 112) / 2 = 29.5 -> 30 (even); (129 - 112) / 2 = 8.5 -> 8
        assert_eq!(crop_offsets(128, 171, 112, 1), vec![(8, 30)]);
        assert_eq!(crop_offsets(129, 112, 112, 1), vec![(8, 0)]);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(3.5), 4);
        assert_eq!(round_half_even(3.4), 3);
    }

    #[test]
    fn three_crops_span_the_long_side() {
        assert_eq!(
            crop_offsets(128, 171, 112, 3),
            vec![(8, 0), (8, 30), (8, 59)]
        );
        assert_eq!(
            crop_offsets(200, 128, 112, 3),
            vec![(0, 8), (44, 8), (88, 8)]
        );
    }
}
