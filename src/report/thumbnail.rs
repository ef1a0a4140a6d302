//! Small JPEG pictures of the frames the model saw, for reports people look at (`--format html`).
//!
//! Made on the decode workers from the sampled clip's own RGB frames (so the picture is the
//! evidence), only when a report asks for them: [`ThumbSpec`] says how many and how tall.
//! Shrinking is an area average (each output pixel is the mean of the input pixels it covers);
//! encoding is `jpeg-encoder`, a dependency-free JPEG encoder.

use crate::picture::{Frame, RowSink};
use anyhow::{Context, Result};

/// How many thumbnails each unit (a whole video, or a window) keeps, and their height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThumbSpec {
    /// Height in pixels; the width keeps the frame's aspect ratio.
    pub height: u32,
    /// Frames per unit, spread evenly over the frames its clips used.
    pub per_unit: usize,
}

/// One frame as a small JPEG.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    /// Presentation time of the frame (s).
    pub time: f64,
    pub width: u32,
    pub height: u32,
    pub jpeg: Vec<u8>,
}

/// JPEG quality: small files that still show what happens.
const QUALITY: u8 = 70;

/// A frame shrunk to thumbnail size, not yet encoded: cheap to make for every frame a clip
/// converts (and to clone, for a frame several times show), so only the picked ones are
/// encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Small {
    pub time: f64,
    pub width: u32,
    pub height: u32,
    pub rgb: std::sync::Arc<Vec<u8>>,
}

impl Small {
    /// `frame` shrunk to `height` pixels (never enlarged), keeping its aspect ratio.
    pub fn of(frame: &Frame, height: u32) -> Small {
        let mut s = SmallRows::new(frame.width, frame.height, frame.time, height);
        s.rows(0, &frame.data);
        s.finish()
    }

    /// Encoded as JPEG.
    pub fn encode(&self) -> Result<Thumbnail> {
        let mut jpeg = Vec::with_capacity(self.rgb.len() / 8);
        jpeg_encoder::Encoder::new(&mut jpeg, QUALITY)
            .encode(
                &self.rgb,
                self.width as u16,
                self.height as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .context("cannot encode a thumbnail")?;
        Ok(Thumbnail {
            time: self.time,
            width: self.width,
            height: self.height,
            jpeg,
        })
    }
}

/// The thumbnails among one clip's shrunk frames: `picks` count a unit's frames over all its
/// clips (from [`spread`]), and this clip's first frame is number `offset`.
pub fn thumbnails_in(smalls: &[Small], offset: usize, picks: &[usize]) -> Result<Vec<Thumbnail>> {
    picks
        .iter()
        .filter_map(|&i| smalls.get(i.checked_sub(offset)?))
        .map(Small::encode)
        .collect()
}

/// `k` indices out of `0..n`, evenly spread (the centre of each of `k` equal parts), no
/// repeats.
pub fn spread(n: usize, k: usize) -> Vec<usize> {
    let k = k.min(n);
    let mut out: Vec<usize> = (0..k).map(|i| ((2 * i + 1) * n) / (2 * k)).collect();
    out.dedup();
    out
}

/// `frame` shrunk to `height` pixels (never enlarged) and encoded as JPEG.
pub fn thumbnail(frame: &Frame, height: u32) -> Result<Thumbnail> {
    Small::of(frame, height).encode()
}

/// A [`Small`] made from a frame's rows as they are converted, top to bottom, band by band
/// (the decoder's `FrameRows::feed`): an area-average downscale (each output pixel is the
/// rounded mean of the input pixels it covers) that holds one output row of sums at a time.
pub struct SmallRows {
    time: f64,
    /// Source and thumbnail sizes.
    w: usize,
    h: usize,
    tw: usize,
    th: usize,
    /// The thumbnail row being summed, and its sums (tw x 3).
    ty: usize,
    sums: Vec<u64>,
    out: Vec<u8>,
}

impl SmallRows {
    /// For a `width` x `height` frame shown at `time`, shrunk to `thumb_height` pixels (never
    /// enlarged), keeping its aspect ratio.
    pub fn new(width: u32, height: u32, time: f64, thumb_height: u32) -> SmallRows {
        let th = thumb_height.clamp(1, height.max(1));
        let tw = ((width as u64 * th as u64 + height as u64 / 2) / height.max(1) as u64).max(1);
        let (tw, th) = (tw as usize, th as usize);
        SmallRows {
            time,
            w: width as usize,
            h: height.max(1) as usize,
            tw,
            th,
            ty: 0,
            sums: vec![0; tw * 3],
            out: Vec::with_capacity(tw * th * 3),
        }
    }

    /// Source rows `[y0, y1)` of thumbnail row `ty`.
    fn span(&self, ty: usize) -> (usize, usize) {
        let (h, th) = (self.h, self.th);
        let y0 = ty * h / th;
        (y0, ((ty + 1) * h / th).max(y0 + 1))
    }

    /// Source columns `[x0, x1)` of thumbnail column `tx`.
    fn columns(&self, tx: usize) -> (usize, usize) {
        let (w, tw) = (self.w, self.tw);
        let x0 = tx * w / tw;
        (x0, ((tx + 1) * w / tw).max(x0 + 1))
    }

    /// The thumbnail, once every row has come.
    pub fn finish(self) -> Small {
        Small {
            time: self.time,
            width: self.tw as u32,
            height: self.th as u32,
            rgb: std::sync::Arc::new(self.out),
        }
    }
}

impl RowSink for SmallRows {
    fn rows(&mut self, first: u32, data: &[u8]) {
        let row = self.w * 3;
        for (k, src) in data.chunks_exact(row.max(1)).enumerate() {
            let y = first as usize + k;
            if self.ty >= self.th {
                return;
            }
            let (y0, y1) = self.span(self.ty);
            if y < y0 {
                continue;
            }
            for tx in 0..self.tw {
                let (x0, x1) = self.columns(tx);
                let sum = &mut self.sums[tx * 3..tx * 3 + 3];
                for px in src[x0 * 3..x1 * 3].chunks_exact(3) {
                    for c in 0..3 {
                        sum[c] += px[c] as u64;
                    }
                }
            }
            if y + 1 == y1 {
                for tx in 0..self.tw {
                    let (x0, x1) = self.columns(tx);
                    let n = ((y1 - y0) * (x1 - x0)) as u64;
                    let sum = &mut self.sums[tx * 3..tx * 3 + 3];
                    self.out.extend(sum.iter().map(|s| ((s + n / 2) / n) as u8));
                    sum.fill(0);
                }
                self.ty += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32, px: impl Fn(u32, u32) -> [u8; 3]) -> Frame {
        let data = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| (0..3).map(move |c| (x, y, c))))
            .map(|(x, y, c)| px(x, y)[c])
            .collect();
        Frame {
            width: w,
            height: h,
            data,
            time: 1.5,
        }
    }

    #[test]
    fn spread_is_even_and_bounded() {
        assert_eq!(spread(16, 4), vec![2, 6, 10, 14]);
        assert_eq!(spread(16, 1), vec![8]);
        assert_eq!(spread(3, 8), vec![0, 1, 2]);
        assert_eq!(spread(0, 8), Vec::<usize>::new());
        assert_eq!(spread(5, 0), Vec::<usize>::new());
    }

    #[test]
    fn shrink_averages_areas() {
        // Left half black, right half white, 4x2 -> 2x1: one black, one white pixel.
        let f = frame(4, 2, |x, _| if x < 2 { [0; 3] } else { [255; 3] });
        assert_eq!(*Small::of(&f, 1).rgb, vec![0, 0, 0, 255, 255, 255]);
        // A checkerboard averages to grey.
        let f = frame(
            2,
            2,
            |x, y| if (x + y) % 2 == 0 { [0; 3] } else { [200; 3] },
        );
        assert_eq!(*Small::of(&f, 1).rgb, vec![100, 100, 100]);
    }

    #[test]
    fn rows_in_bands_shrink_as_the_whole_frame() {
        let f = frame(37, 29, |x, y| {
            [
                (x * 7 % 256) as u8,
                (y * 13 % 256) as u8,
                ((x * y) % 256) as u8,
            ]
        });
        let whole = Small::of(&f, 8);
        let row = 37 * 3;
        for band in [1, 2, 5, 29] {
            let mut s = SmallRows::new(37, 29, f.time, 8);
            for (i, rows) in f.data.chunks(band * row).enumerate() {
                s.rows((i * band) as u32, rows);
            }
            assert_eq!(s.finish(), whole, "bands of {band} rows");
        }
    }

    #[test]
    fn thumbnail_keeps_aspect_and_is_a_jpeg() {
        let f = frame(320, 240, |x, y| [(x % 256) as u8, (y % 256) as u8, 128]);
        let t = thumbnail(&f, 96).unwrap();
        assert_eq!((t.width, t.height, t.time), (128, 96, 1.5));
        assert_eq!(&t.jpeg[..2], &[0xFF, 0xD8], "JPEG start-of-image marker");
        assert_eq!(
            &t.jpeg[t.jpeg.len() - 2..],
            &[0xFF, 0xD9],
            "end-of-image marker"
        );
        // Never enlarged.
        let small = thumbnail(&frame(40, 30, |_, _| [9; 3]), 96).unwrap();
        assert_eq!((small.width, small.height), (40, 30));
    }

    #[test]
    fn thumbnails_pick_across_clips() {
        let clip = |t0: f64| -> Vec<Small> {
            (0..4)
                .map(|i| Frame {
                    time: t0 + i as f64,
                    ..frame(16, 8, |_, _| [0; 3])
                })
                .map(|f| Small::of(&f, 4))
                .collect()
        };
        let picks = spread(8, 2);
        let first = thumbnails_in(&clip(0.0), 0, &picks).unwrap();
        let second = thumbnails_in(&clip(10.0), 4, &picks).unwrap();
        let times: Vec<f64> = first.iter().chain(&second).map(|t| t.time).collect();
        assert_eq!(times, vec![2.0, 12.0]);
        assert_eq!((first[0].width, first[0].height), (8, 4));
    }
}
