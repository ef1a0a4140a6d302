//! Clip frames -> model input, torchvision's way: scale to [0, value_scale], bilinear resize
//! without antialias (align_corners = false), crop, normalise, C x T x H x W.

use super::config::{ModelConfig, Resize};
use crate::decode::{Frame, RowSink};
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// The most pixels a resized picture may have on a side. A picture of an extreme aspect ratio
/// resized so its short side is the model's would otherwise take memory in proportion to its
/// long side (an 8000 x 2 video: 64 x 256000 floats a frame); such an input is refused.
pub const MAX_RESIZED_SIDE: i64 = 2048;

/// The resize of an (h, w) frame, refused when a side would pass [`MAX_RESIZED_SIDE`].
pub fn checked_resized_size(resize: &Resize, h: u32, w: u32) -> Result<(i64, i64)> {
    let (oh, ow) = resized_size(resize, h, w);
    if oh.max(ow) > MAX_RESIZED_SIDE {
        let ratio = f64::from(h.max(w)) / f64::from(h.min(w).max(1));
        bail!(
            "a {w}x{h} picture resizes to {ow}x{oh} for this model, and at most \
             {MAX_RESIZED_SIDE} pixels a side are allowed: its aspect ratio ({ratio:.0}:1) is \
             too extreme (crop the video first)"
        );
    }
    Ok((oh, ow))
}

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

/// Views of a clip whose frames went through [`resize_frame`]: each crop is copied straight
/// from the frames into its C x T x crop x crop tensor and normalised there, so no whole
/// resized clip is assembled first (see [`crop_view`] for the arithmetic).
pub fn resized_to_views(
    frames: &[Resized],
    cfg: &ModelConfig,
    crops: usize,
) -> Result<Vec<Tensor>> {
    let Some(first) = frames.first() else {
        bail!("clip has no frames");
    };
    let (oh, ow) = (first.0.size()[2], first.0.size()[3]);
    let crop = cfg.crop as i64;
    crop_offsets(oh, ow, crop, crops)
        .into_iter()
        .map(|(top, left)| {
            let parts: Vec<Tensor> = frames
                .iter()
                .map(|f| f.0.get(0).narrow(1, top, crop).narrow(2, left, crop))
                .collect();
            Ok(normalise(Tensor::f_stack(&parts, 1)?, cfg))
        })
        .collect()
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
/// (height, width) resizes to, as 1 x C x H x W float32: [`FrameResize`] given the whole
/// frame as one band.
pub fn resize_frame(frame: &Frame, first: (u32, u32), cfg: &ModelConfig) -> Result<Resized> {
    let (h, w) = (frame.height as i64, frame.width as i64);
    if frame.data.len() as i64 != h * w * 3 {
        bail!(
            "frame buffer is {} bytes, expected {}",
            frame.data.len(),
            h * w * 3
        );
    }
    let mut resize = FrameResize::new((frame.height, frame.width), first, cfg)?;
    resize.rows(0, &frame.data);
    resize.finish()
}

/// The resize of one frame, fed its rows band by band as they are converted
/// ([`crate::decode::FrameRows::feed`]), so a frame of any size costs only the source pixels
/// the output reads.
///
/// The frame (`size`, height x width) is scaled to `[0, value_scale]` and resized to the size a
/// frame of `first` (height, width) resizes to (frames of one clip can differ in size when a
/// stream changes resolution mid-way; each is resized to the clip's first frame's size).
///
/// The arithmetic is torchvision's: bilinear, no antialias, align_corners = false, on the
/// float picture. Only the at most 2 x 2 source pixels each output pixel reads are kept (as
/// bytes, gathered from the bands that hold them) and converted to float, so a 10000 x 10000
/// frame costs a few MB here, not the 1.2 GB of a float copy. The indices, weights and sums
/// are libtorch's `upsample_bilinear2d` CPU kernel's; its vectorised code rounds differently,
/// so results agree to a few float32 ulps, not bit for bit
/// (`resize_frame_matches_upsample_bilinear2d` bounds the difference by 4e-6 of the value
/// range, far inside the parity tolerance). How the rows arrive (one band or many) changes
/// nothing: each output value is the same arithmetic on the same bytes.
pub struct FrameResize {
    /// Output height and width.
    oh: usize,
    ow: usize,
    /// Source width.
    w: usize,
    scale: f64,
    /// Same size in and out: the whole frame is kept, converted to float as it is.
    same: bool,
    /// Per output row: the two source rows it reads, and their weights.
    r0: Vec<i64>,
    r1: Vec<i64>,
    hl0: Vec<f32>,
    hl1: Vec<f32>,
    /// Per output column: the two source columns it reads, and their weights.
    c0: Vec<i64>,
    c1: Vec<i64>,
    wl0: Vec<f32>,
    wl1: Vec<f32>,
    /// Which source rows are read.
    needed: Vec<bool>,
    /// The source pixels read, oh x ow x 3 bytes each: rows r0 x columns c0, r0 x c1, r1 x c0,
    /// r1 x c1 (or, with `same`, the whole frame in `x00`).
    x00: Vec<u8>,
    x01: Vec<u8>,
    x10: Vec<u8>,
    x11: Vec<u8>,
}

impl FrameResize {
    /// A resize for a frame of `size` (height, width) in a clip whose first frame is `first`.
    pub fn new(size: (u32, u32), first: (u32, u32), cfg: &ModelConfig) -> Result<FrameResize> {
        let (oh, ow) = checked_resized_size(&cfg.resize, first.0, first.1)?;
        let crop = cfg.crop as i64;
        if oh < crop || ow < crop {
            bail!("resized frame {oh}x{ow} is smaller than the {crop}x{crop} crop");
        }
        let (h, w) = (size.0 as i64, size.1 as i64);
        if h < 1 || w < 1 {
            bail!("frame is {w}x{h}");
        }
        let same = (h, w) == (oh, ow);
        let (r0, r1, hl0, hl1) = linear_taps(h, oh);
        let (c0, c1, wl0, wl1) = linear_taps(w, ow);
        let mut needed = vec![same; h as usize];
        for &r in r0.iter().chain(&r1) {
            needed[r as usize] = true;
        }
        let (oh, ow) = (oh as usize, ow as usize);
        let len = oh * ow * 3;
        let (sparse, whole) = if same { (0, len) } else { (len, len) };
        Ok(FrameResize {
            oh,
            ow,
            w: w as usize,
            scale: cfg.value_scale / 255.0,
            same,
            r0,
            r1,
            hl0,
            hl1,
            c0,
            c1,
            wl0,
            wl1,
            needed,
            x00: vec![0; whole],
            x01: vec![0; sparse],
            x10: vec![0; sparse],
            x11: vec![0; sparse],
        })
    }

    /// The resized frame, once every wanted row has come: one pass over the gathered bytes
    /// into a C x H x W float picture. Each value is computed as libtorch's elementwise ops
    /// compute the same expression on tensors (byte to float, times `scale` rounded to f32,
    /// then the weighted sums, every step rounded to f32; Rust never fuses them into FMAs), so
    /// the result is bit for bit that of the tensor code it replaces
    /// (`banded_conversion_and_resize_equal_the_whole_frame`), without its temporaries.
    pub fn finish(self) -> Result<Resized> {
        let (oh, ow) = (self.oh, self.ow);
        let scale = self.scale as f32;
        let plane = oh * ow;
        let mut out = vec![0f32; 3 * plane];
        let px = |b: u8| f32::from(b) * scale;
        if self.same {
            for (p, rgb) in self.x00.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    out[c * plane + p] = px(rgb[c]);
                }
            }
        } else {
            for (p, (i, j)) in (0..oh)
                .flat_map(|i| (0..ow).map(move |j| (i, j)))
                .enumerate()
            {
                let (wl0, wl1, hl0, hl1) = (self.wl0[j], self.wl1[j], self.hl0[i], self.hl1[i]);
                for c in 0..3 {
                    let k = p * 3 + c;
                    let top = px(self.x00[k]) * wl0 + px(self.x01[k]) * wl1;
                    let bottom = px(self.x10[k]) * wl0 + px(self.x11[k]) * wl1;
                    out[c * plane + p] = top * hl0 + bottom * hl1;
                }
            }
        }
        let t = Tensor::f_from_slice(&out)?.f_view([1, 3, oh as i64, ow as i64])?;
        Ok(Resized(t))
    }

    /// Copies the columns `c0` and `c1` of source row `src` (packed) into output row `i` of
    /// `a` and `b`.
    fn gather(&mut self, src: &[u8], i: usize, first_of_pair: bool) {
        let ow = self.ow;
        let (a, b) = if first_of_pair {
            (&mut self.x00, &mut self.x01)
        } else {
            (&mut self.x10, &mut self.x11)
        };
        let a = &mut a[i * ow * 3..(i + 1) * ow * 3];
        let b = &mut b[i * ow * 3..(i + 1) * ow * 3];
        for j in 0..ow {
            let (s0, s1) = (self.c0[j] as usize * 3, self.c1[j] as usize * 3);
            a[j * 3..j * 3 + 3].copy_from_slice(&src[s0..s0 + 3]);
            b[j * 3..j * 3 + 3].copy_from_slice(&src[s1..s1 + 3]);
        }
    }
}

impl RowSink for FrameResize {
    fn wants(&self, y: u32) -> bool {
        self.needed.get(y as usize).copied().unwrap_or(false)
    }

    fn rows(&mut self, first: u32, data: &[u8]) {
        let row = self.w * 3;
        let first = first as i64;
        let n = (data.len() / row.max(1)) as i64;
        if self.same {
            let start = first as usize * row;
            let end = (start + data.len()).min(self.x00.len());
            self.x00[start..end].copy_from_slice(&data[..end - start]);
            return;
        }
        for i in 0..self.oh {
            for (rows, first_of_pair) in [(self.r0[i], true), (self.r1[i], false)] {
                if (first..first + n).contains(&rows) {
                    let at = (rows - first) as usize * row;
                    // The slice is copied out first: `gather` borrows `self` mutably.
                    let src = &data[at..at + row];
                    self.gather(src, i, first_of_pair);
                }
            }
        }
    }
}

/// Source indices and weights of a linear resize from `input` to `output` samples, as
/// libtorch computes them for align_corners = false (in float32): source position
/// `max(scale * (i + 0.5) - 0.5, 0)` with `scale = input / output`, index its floor (at most
/// input - 1), the next index unless at the edge, weights `1 - lambda` and `lambda`.
fn linear_taps(input: i64, output: i64) -> (Vec<i64>, Vec<i64>, Vec<f32>, Vec<f32>) {
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
    (i0, i1, l0, l1)
}

/// The second half: a `size` x `size` square at (top, left) of a resized clip (T x C x H x W),
/// resized to the model's crop if it differs, normalised, as C x T x crop x crop.
pub fn crop_view(clip: &Tensor, cfg: &ModelConfig, top: i64, left: i64, size: i64) -> Tensor {
    let crop = cfg.crop as i64;
    let mut v = clip.narrow(2, top, size).narrow(3, left, size);
    if size != crop {
        v = v.upsample_bilinear2d([crop, crop], false, None, None);
    }
    normalise(v.permute([1, 0, 2, 3]).contiguous(), cfg)
}

/// `(v - mean) / std` per channel, in place on a C x T x H x W tensor of its own (each value
/// the same two float32 operations whatever the layout).
fn normalise(mut v: Tensor, cfg: &ModelConfig) -> Tensor {
    let per_channel = |x: &[f64]| {
        Tensor::from_slice(x)
            .to_kind(Kind::Float)
            .view([3, 1, 1, 1])
    };
    v -= per_channel(&cfg.mean);
    v /= per_channel(&cfg.std);
    v
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

    /// A `width` x `height` RGB frame of noise.
    fn noise_frame(height: u32, width: u32, seed: u64) -> Frame {
        use crate::decode::testing::{noise_picture, whole_rgb};
        let (data, width, height) = whole_rgb(
            &noise_picture(ffmpeg_next::format::Pixel::RGB24, width, height, seed),
            0,
        );
        Frame {
            width,
            height,
            data,
            time: 0.0,
        }
    }

    /// The two kinds of resize a config can ask for.
    fn both_resizes() -> [Resize; 2] {
        [
            Resize::ShortSide { size: 128 },
            Resize::Exact {
                height: 128,
                width: 171,
            },
        ]
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
            for resize in both_resizes() {
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

    /// The resize before frames came in bands: the whole frame as a tensor, the rows and then
    /// the columns each output pixel reads selected from it, the same sums.
    fn resize_by_selection(frame: &Frame, first: (u32, u32), cfg: &ModelConfig) -> Tensor {
        let (oh, ow) = resized_size(&cfg.resize, first.0, first.1);
        let (h, w) = (frame.height as i64, frame.width as i64);
        let scale = cfg.value_scale / 255.0;
        let pixels = Tensor::from_slice(&frame.data).view([h, w, 3]);
        if (h, w) == (oh, ow) {
            let t = pixels.permute([2, 0, 1]).unsqueeze(0).to_kind(Kind::Float) * scale;
            return t.contiguous();
        }
        let tensors = |(a, b, c, d): (Vec<i64>, Vec<i64>, Vec<f32>, Vec<f32>)| {
            (
                Tensor::from_slice(&a),
                Tensor::from_slice(&b),
                Tensor::from_slice(&c),
                Tensor::from_slice(&d),
            )
        };
        let (r0, r1, hl0, hl1) = tensors(linear_taps(h, oh));
        let (c0, c1, wl0, wl1) = tensors(linear_taps(w, ow));
        let rows0 = pixels.index_select(0, &r0);
        let rows1 = pixels.index_select(0, &r1);
        let px =
            |rows: &Tensor, cols: &Tensor| rows.index_select(1, cols).to_kind(Kind::Float) * scale;
        let (x00, x01) = (px(&rows0, &c0), px(&rows0, &c1));
        let (x10, x11) = (px(&rows1, &c0), px(&rows1, &c1));
        let (wl0, wl1) = (wl0.view([1, ow, 1]), wl1.view([1, ow, 1]));
        let (hl0, hl1) = (hl0.view([oh, 1, 1]), hl1.view([oh, 1, 1]));
        let top = x00 * &wl0 + x01 * &wl1;
        let bottom = x10 * &wl0 + x11 * &wl1;
        let out = top * hl0 + bottom * hl1;
        out.permute([2, 0, 1]).unsqueeze(0).contiguous()
    }

    /// Banded conversion + resize is bit for bit the whole-picture conversion followed by the
    /// resize from the whole frame: odd and even sizes, pixel formats decoders give (MJPEG's
    /// full-range 4:2:2, 4:4:4, 10-bit, packed RGB), turned 0, 90 and 180 degrees, bands of a
    /// row or two, a few rows, or one; shrinking, enlarging and same-size resizes.
    #[test]
    fn banded_conversion_and_resize_equal_the_whole_frame() {
        use crate::decode::testing::{feed_in_bands, noise_picture, whole_rgb};
        use ffmpeg_next::format::Pixel;
        let mut cfg: ModelConfig =
            serde_json::from_str(include_str!("../../configs/motion.json")).unwrap();
        let formats = [
            Pixel::YUV420P,
            Pixel::YUVJ422P,
            Pixel::YUV444P,
            Pixel::RGB24,
            Pixel::YUV420P10LE,
        ];
        let sizes = [(301, 171), (128, 171), (97, 501), (80, 60)];
        for (seed, &format) in formats.iter().enumerate() {
            for &(w, h) in &sizes {
                let pic = noise_picture(format, w, h, seed as u64);
                for rotation in [0, 90, 180] {
                    for resize in both_resizes() {
                        cfg.resize = resize.clone();
                        let (data, uw, uh) = whole_rgb(&pic, rotation);
                        let whole = Frame {
                            width: uw,
                            height: uh,
                            data,
                            time: 0.0,
                        };
                        let theirs = resize_by_selection(&whole, (uh, uw), &cfg);
                        for band_bytes in [Some(1), Some(7 * w as usize * 3), None] {
                            let mut ours = FrameResize::new((uh, uw), (uh, uw), &cfg).unwrap();
                            feed_in_bands(&pic, rotation, band_bytes, &mut [&mut ours]).unwrap();
                            let ours = ours.finish().unwrap().0;
                            assert!(
                                ours.equal(&theirs),
                                "{format:?} {w}x{h} turned {rotation}, {resize:?}, bands of \
                                 {band_bytes:?} bytes: differs from the whole frame by {}",
                                (ours - &theirs).abs().max().double_value(&[])
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn extreme_aspect_ratios_are_refused_before_any_allocation() {
        let cfg: ModelConfig =
            serde_json::from_str(include_str!("../../configs/motion.json")).unwrap();
        for (h, w) in [(2, 8000), (8000, 2), (2, 100_000)] {
            let e = FrameResize::new((h, w), (h, w), &cfg).err().unwrap();
            let e = e.to_string();
            assert!(
                e.contains("aspect ratio") && e.contains(&format!("{w}x{h}")),
                "{e}"
            );
        }
        // 64 x 2048 is the widest picture the built-in model takes (32:1).
        assert!(FrameResize::new((2, 64), (2, 64), &cfg).is_ok());
        assert!(FrameResize::new((2, 65), (2, 65), &cfg).is_err());
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
