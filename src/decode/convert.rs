//! Decoded picture -> packed, upright RGB24: swscale for the pixel format, Rust for the rotation.
//!
//! The conversion keeps the decoded size (resizing belongs to the model stage) and uses swscale's
//! plain bilinear flags with its default colour matrix, which is what PyAV's `to_ndarray("rgb24")`
//! and hence torchvision's `read_video` do.

use anyhow::{Context as _, Result};
use ffmpeg_next::ffi;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::frame::Video as AvFrame;
use ffmpeg_next::software::scaling::{Context as AvScaler, Flags as AvScaleFlags};
use std::ptr;

/// A swscale context for one input format and size.
struct Scaler {
    format: Pixel,
    width: u32,
    height: u32,
    sws: AvScaler,
}

// SAFETY: the swscale context is owned by this value alone and only used through `&mut self`;
// swscale keeps no thread-local state, so moving it to another thread is sound (ffmpeg-next
// only leaves the marker off). This lets a `Video` move between threads.
unsafe impl Send for Scaler {}

/// Converts decoded frames to RGB24, reusing the swscale context until the input format or size
/// changes (streams may change both mid-way).
#[derive(Default)]
pub(crate) struct RgbConverter {
    scaler: Option<Scaler>,
}

/// Row alignment of swscale's output: the alignment `av_frame_get_buffer` gives a frame, so
/// swscale takes the same code path as it would writing into one.
const ROW_ALIGN: usize = 64;

impl RgbConverter {
    /// Packed RGB24 rows (`width * height * 3` bytes) of `frame`, rotated clockwise by
    /// `rotation` degrees (0, 90, 180 or 270); returns the data with the upright width and height.
    ///
    /// swscale writes into the returned buffer itself (rows padded to [`ROW_ALIGN`], then packed
    /// in place), so a picture costs one RGB buffer, not an intermediate frame and a copy.
    pub(crate) fn convert(
        &mut self,
        frame: &AvFrame,
        rotation: i32,
    ) -> Result<(Vec<u8>, u32, u32)> {
        let (format, width, height) = (frame.format(), frame.width(), frame.height());
        anyhow::ensure!(
            width > 0 && height > 0,
            "decoder returned an empty {width}x{height} picture"
        );
        let packed = if format == Pixel::RGB24 {
            pack_rows(frame, width, height)
        } else {
            let fresh = match &self.scaler {
                Some(s) => s.format != format || s.width != width || s.height != height,
                None => true,
            };
            if fresh {
                let sws = AvScaler::get(
                    format,
                    width,
                    height,
                    Pixel::RGB24,
                    width,
                    height,
                    AvScaleFlags::BILINEAR,
                )
                .with_context(|| {
                    format!("cannot convert {width}x{height} {format:?} pictures to RGB")
                })?;
                self.scaler = Some(Scaler {
                    format,
                    width,
                    height,
                    sws,
                });
            }
            let scaler = self
                .scaler
                .as_mut()
                .context("internal error: no RGB converter")?;
            let row = width as usize * 3;
            let stride = row.next_multiple_of(ROW_ALIGN);
            // One spare aligned row: swscale's SIMD writers may store a little past a row's end.
            let mut buf = vec![0u8; stride * (height as usize + 1)];
            let dst_data: [*mut u8; 4] = [
                buf.as_mut_ptr(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            ];
            let dst_stride: [i32; 4] =
                [i32::try_from(stride).context("picture too wide")?, 0, 0, 0];
            // SAFETY: `frame` is a decoded picture of the format and size this context was made
            // for; `buf` holds `height` rows of `stride >= width * 3` bytes (plus one spare).
            let ret = unsafe {
                let src = frame.as_ptr();
                ffi::sws_scale(
                    scaler.sws.as_mut_ptr(),
                    (*src).data.as_ptr() as *const *const u8,
                    (*src).linesize.as_ptr(),
                    0,
                    height as i32,
                    dst_data.as_ptr(),
                    dst_stride.as_ptr(),
                )
            };
            anyhow::ensure!(
                ret == height as i32,
                "cannot convert a {format:?} picture to RGB (swscale returned {ret})"
            );
            for y in 1..height as usize {
                buf.copy_within(y * stride..y * stride + row, y * row);
            }
            buf.truncate(row * height as usize);
            buf
        };
        Ok(rotate(packed, width, height, rotation))
    }
}

/// Copies the visible part of each row of an RGB24 picture, row by row by its stride.
fn pack_rows(frame: &AvFrame, width: u32, height: u32) -> Vec<u8> {
    let row = width as usize * 3;
    let stride = frame.stride(0);
    let data = frame.data(0);
    let mut packed = Vec::with_capacity(row * height as usize);
    for y in 0..height as usize {
        packed.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    packed
}

/// Rotates packed RGB24 pixels clockwise by 90, 180 or 270 degrees (anything else: unchanged).
/// Returns the pixels and their new width and height.
pub(crate) fn rotate(src: Vec<u8>, width: u32, height: u32, rotation: i32) -> (Vec<u8>, u32, u32) {
    if !matches!(rotation, 90 | 180 | 270) {
        return (src, width, height);
    }
    let (w, h) = (width as usize, height as usize);
    let px = |x: usize, y: usize| &src[(y * w + x) * 3..(y * w + x) * 3 + 3];
    match rotation {
        90 => {
            // Output is h wide, w high; its pixel (x, y) comes from source (y, h - 1 - x).
            let mut out = Vec::with_capacity(src.len());
            for y in 0..w {
                for x in 0..h {
                    out.extend_from_slice(px(y, h - 1 - x));
                }
            }
            (out, height, width)
        }
        180 => {
            let mut out = Vec::with_capacity(src.len());
            for y in (0..h).rev() {
                for x in (0..w).rev() {
                    out.extend_from_slice(px(x, y));
                }
            }
            (out, width, height)
        }
        270 => {
            // Output is h wide, w high; its pixel (x, y) comes from source (w - 1 - y, x).
            let mut out = Vec::with_capacity(src.len());
            for y in 0..w {
                for x in 0..h {
                    out.extend_from_slice(px(w - 1 - y, x));
                }
            }
            (out, height, width)
        }
        _ => (src, width, height),
    }
}

/// Clockwise rotation a player applies for a 3x3 display matrix (16.16 fixed point, as stored
/// in MP4/MOV), rounded to 0, 90, 180 or 270. This is `-av_display_rotation_get(matrix)` as the
/// `ffmpeg` tool uses it; mirroring in the matrix is ignored, as `ffmpeg` 5.1 ignores it.
pub(crate) fn display_rotation(matrix: &[i32; 9]) -> i32 {
    let fp = |v: i32| f64::from(v) / 65536.0;
    let scale0 = fp(matrix[0]).hypot(fp(matrix[3]));
    let scale1 = fp(matrix[1]).hypot(fp(matrix[4]));
    if scale0 == 0.0 || scale1 == 0.0 {
        return 0;
    }
    let clockwise = (fp(matrix[1]) / scale1)
        .atan2(fp(matrix[0]) / scale0)
        .to_degrees();
    normalise_rotation(clockwise)
}

/// Any angle in degrees -> the nearest of 0, 90, 180, 270.
pub(crate) fn normalise_rotation(degrees: f64) -> i32 {
    if !degrees.is_finite() {
        return 0;
    }
    let quarter = (degrees / 90.0).round() as i64;
    (quarter.rem_euclid(4) * 90) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x2 picture whose pixel (x, y) is [x, y, 0].
    fn picture() -> Vec<u8> {
        let mut v = Vec::new();
        for y in 0..2u8 {
            for x in 0..3u8 {
                v.extend_from_slice(&[x, y, 0]);
            }
        }
        v
    }

    fn at(data: &[u8], width: u32, x: u32, y: u32) -> (u8, u8) {
        let i = ((y * width + x) * 3) as usize;
        (data[i], data[i + 1])
    }

    #[test]
    fn rotate_90_moves_top_left_to_top_right() {
        let (out, w, h) = rotate(picture(), 3, 2, 90);
        assert_eq!((w, h), (2, 3));
        assert_eq!(at(&out, w, 1, 0), (0, 0));
        assert_eq!(at(&out, w, 0, 0), (0, 1), "bottom-left comes to top-left");
        assert_eq!(at(&out, w, 1, 2), (2, 0), "top-right goes to bottom-right");
    }

    #[test]
    fn rotate_180_reverses_both_axes() {
        let (out, w, h) = rotate(picture(), 3, 2, 180);
        assert_eq!((w, h), (3, 2));
        assert_eq!(at(&out, w, 0, 0), (2, 1));
        assert_eq!(at(&out, w, 2, 1), (0, 0));
    }

    #[test]
    fn rotate_270_moves_top_left_to_bottom_left() {
        let (out, w, h) = rotate(picture(), 3, 2, 270);
        assert_eq!((w, h), (2, 3));
        assert_eq!(at(&out, w, 0, 2), (0, 0));
        assert_eq!(at(&out, w, 0, 0), (2, 0), "top-right comes to top-left");
    }

    #[test]
    fn four_quarter_turns_are_the_identity() {
        let mut data = picture();
        let (mut w, mut h) = (3, 2);
        for _ in 0..4 {
            (data, w, h) = rotate(data, w, h, 90);
        }
        assert_eq!((w, h), (3, 2));
        assert_eq!(data, picture());
        assert_eq!(rotate(picture(), 3, 2, 0).0, picture());
    }

    /// The matrix of a counter-clockwise rotation by `angle` (`av_display_rotation_set(m, -angle)`).
    fn matrix_for_ccw(angle: f64) -> [i32; 9] {
        let r = angle.to_radians();
        let (c, s) = (r.cos(), r.sin());
        let fixed = |v: f64| (v * 65536.0).round() as i32;
        [fixed(c), fixed(-s), 0, fixed(s), fixed(c), 0, 0, 0, 1 << 30]
    }

    #[test]
    fn display_matrix_angles() {
        // ffmpeg's `-metadata:s:v rotate=90` (clockwise) stores a -90 degree counter-clockwise matrix.
        assert_eq!(display_rotation(&matrix_for_ccw(-90.0)), 90);
        assert_eq!(display_rotation(&matrix_for_ccw(90.0)), 270);
        assert_eq!(display_rotation(&matrix_for_ccw(180.0)), 180);
        assert_eq!(display_rotation(&matrix_for_ccw(0.0)), 0);
        assert_eq!(display_rotation(&[0; 9]), 0);
    }

    #[test]
    fn angles_normalise_to_quarter_turns() {
        assert_eq!(normalise_rotation(-90.0), 270);
        assert_eq!(normalise_rotation(450.0), 90);
        assert_eq!(normalise_rotation(179.6), 180);
        assert_eq!(normalise_rotation(-180.0), 180);
        assert_eq!(normalise_rotation(f64::NAN), 0);
    }
}
