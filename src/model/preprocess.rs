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
    resized_to_views(&resize_frames(frames, cfg)?, cfg, crops)
}

/// A frame after [`resize_frame`]: 1 x C x H x W float32. Cloning shares the tensor (it is
/// never written), so a frame that several times of a clip show is stored once.
#[derive(Debug)]
pub struct Resized(pub Tensor);

impl Clone for Resized {
    fn clone(&self) -> Self {
        Resized(self.0.shallow_clone())
    }
}

/// Views of a clip whose frames went through [`resize_frame`].
pub fn resized_to_views(
    frames: &[Resized],
    cfg: &ModelConfig,
    crops: usize,
) -> Result<Vec<Tensor>> {
    let clip = stack_resized(frames)?;
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
    stack_resized(&resize_frames(frames, cfg)?)
}

/// Frames resized one by one to the size the first one gives.
fn resize_frames(frames: &[Frame], cfg: &ModelConfig) -> Result<Vec<Resized>> {
    let Some(first) = frames.first() else {
        bail!("clip has no frames");
    };
    let size = (first.height, first.width);
    frames.iter().map(|f| resize_frame(f, size, cfg)).collect()
}

/// Frames from [`resize_frame`] as one T x C x H x W tensor.
pub fn stack_resized(frames: &[Resized]) -> Result<Tensor> {
    if frames.is_empty() {
        bail!("clip has no frames");
    }
    let tensors: Vec<&Tensor> = frames.iter().map(|f| &f.0).collect();
    Ok(Tensor::f_cat(&tensors, 0)?)
}

/// One frame scaled to `[0, value_scale]` and resized to the size a frame of `first`
/// (height, width) resizes to (frames of one clip can differ in size when a stream changes
/// resolution mid-way; each is resized to the clip's first frame's size), as 1 x C x H x W
/// float32.
///
/// The arithmetic is torchvision's: bilinear, no antialias, align_corners = false, on the
/// float picture. Only the at most 2 x 2 source pixels each output pixel reads are converted to
/// float, so a 10000 x 10000 frame costs a few MB here, not the 1.2 GB of a float copy. The
/// indices, weights and sums are libtorch's `upsample_bilinear2d` CPU kernel's; its vectorised
/// code rounds differently, so results agree to a few float32 ulps, not bit for bit
/// (`resize_frame_matches_upsample_bilinear2d` bounds the difference by 4e-6 of the value
/// range, far inside the parity tolerance).
pub fn resize_frame(frame: &Frame, first: (u32, u32), cfg: &ModelConfig) -> Result<Resized> {
    let (oh, ow) = resized_size(&cfg.resize, first.0, first.1);
    let crop = cfg.crop as i64;
    if oh < crop || ow < crop {
        bail!("resized frame {oh}x{ow} is smaller than the {crop}x{crop} crop");
    }
    let (h, w) = (frame.height as i64, frame.width as i64);
    if frame.data.len() as i64 != h * w * 3 {
        bail!(
            "frame buffer is {} bytes, expected {}",
            frame.data.len(),
            h * w * 3
        );
    }
    let scale = cfg.value_scale / 255.0;
    // SAFETY: `frame.data` holds h * w * 3 bytes (checked above) and outlives `pixels`, which
    // is only read by the selections below (they copy).
    let pixels = unsafe {
        Tensor::f_from_blob(
            frame.data.as_ptr(),
            &[h, w, 3],
            &[],
            Kind::Uint8,
            tch::Device::Cpu,
        )?
    };
    if (h, w) == (oh, ow) {
        let t = pixels.permute([2, 0, 1]).unsqueeze(0).to_kind(Kind::Float) * scale;
        return Ok(Resized(t.contiguous()));
    }
    let (r0, r1, hl0, hl1) = linear_taps(h, oh);
    let (c0, c1, wl0, wl1) = linear_taps(w, ow);
    // Rows, then columns: each selection is at most 2 x oh rows or 2 x ow columns.
    let rows0 = pixels.f_index_select(0, &r0)?;
    let rows1 = pixels.f_index_select(0, &r1)?;
    let px = |rows: &Tensor, cols: &Tensor| -> Result<Tensor> {
        Ok(rows.f_index_select(1, cols)?.to_kind(Kind::Float) * scale)
    };
    let (x00, x01) = (px(&rows0, &c0)?, px(&rows0, &c1)?);
    let (x10, x11) = (px(&rows1, &c0)?, px(&rows1, &c1)?);
    drop((rows0, rows1, pixels));
    // oh x ow x 3 pictures; the weights broadcast over columns (ow x 1) and rows (oh x 1 x 1).
    let (wl0, wl1) = (wl0.view([1, ow, 1]), wl1.view([1, ow, 1]));
    let (hl0, hl1) = (hl0.view([oh, 1, 1]), hl1.view([oh, 1, 1]));
    let top = x00 * &wl0 + x01 * &wl1;
    let bottom = x10 * &wl0 + x11 * &wl1;
    let out = top * hl0 + bottom * hl1;
    Ok(Resized(out.permute([2, 0, 1]).unsqueeze(0).contiguous()))
}

/// Source indices and weights of a linear resize from `input` to `output` samples, as
/// libtorch computes them for align_corners = false (in float32): source position
/// `max(scale * (i + 0.5) - 0.5, 0)` with `scale = input / output`, index its floor (at most
/// input - 1), the next index unless at the edge, weights `1 - lambda` and `lambda`.
fn linear_taps(input: i64, output: i64) -> (Tensor, Tensor, Tensor, Tensor) {
    let n = output as usize;
    let (mut i0, mut i1) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut l0, mut l1) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let scale = input as f32 / output as f32;
    for i in 0..output {
        let (index, lambda) = if input == output {
            (i, 0.0f32)
        } else {
            let real = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
            let index = (real.floor() as i64).min(input - 1);
            (index, (real - index as f32).clamp(0.0, 1.0))
        };
        i0.push(index);
        i1.push(index + i64::from(index < input - 1));
        l0.push(1.0 - lambda);
        l1.push(lambda);
    }
    (
        Tensor::from_slice(&i0),
        Tensor::from_slice(&i1),
        Tensor::from_slice(&l0),
        Tensor::from_slice(&l1),
    )
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

    /// The reference: the whole frame to float, then libtorch's resize (what this module did
    /// before resizing from the selected pixels).
    fn resize_by_kernel(f: &Frame, oh: i64, ow: i64, scale: f64) -> Tensor {
        let (h, w) = (f.height as i64, f.width as i64);
        let t = Tensor::from_slice(&f.data)
            .view([1, h, w, 3])
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float)
            * scale;
        t.upsample_bilinear2d([oh, ow], false, None, None)
    }

    fn noise_frame(height: u32, width: u32, seed: u64) -> Frame {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let data = (0..height as usize * width as usize * 3)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        Frame {
            width,
            height,
            data,
            time: 0.0,
        }
    }

    #[test]
    fn resize_frame_matches_upsample_bilinear2d() {
        let mut cfg: ModelConfig =
            serde_json::from_str(include_str!("../../configs/motion.json")).unwrap();
        cfg.value_scale = 1.0;
        // Down both ways, down one way only, up, odd sizes, a size change within a clip.
        // A few float32 ulps apart at most; shifting the sample positions moves them by 0.08.
        let cases = [
            (240, 320, (240, 320)),
            (1080, 1920, (1080, 1920)),
            (97, 501, (97, 501)),
            (60, 80, (60, 80)),
            (128, 900, (128, 900)),
            (360, 640, (240, 320)),
        ];
        for (seed, &(h, w, first)) in cases.iter().enumerate() {
            for resize in [
                Resize::ShortSide { size: 128 },
                Resize::Exact {
                    height: 128,
                    width: 171,
                },
            ] {
                cfg.resize = resize.clone();
                let f = noise_frame(h, w, seed as u64);
                let (oh, ow) = resized_size(&cfg.resize, first.0, first.1);
                let ours = resize_frame(&f, first, &cfg).unwrap().0;
                let theirs = resize_by_kernel(&f, oh, ow, cfg.value_scale / 255.0);
                assert_eq!(ours.size(), theirs.size());
                let diff = (ours - theirs).abs().max().double_value(&[]);
                assert!(
                    diff <= 4e-6,
                    "{h}x{w} -> {oh}x{ow} ({resize:?}): differs from the kernel by {diff}"
                );
            }
        }
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
