//! Decoded picture -> packed, upright RGB24: swscale for the pixel format, Rust for the rotation.
//!
//! The conversion keeps the decoded size (resizing belongs to the model stage) and uses swscale's
//! plain bilinear flags with its default colour matrix, which is what PyAV's `to_ndarray("rgb24")`
//! and hence torchvision's `read_video` do.
//!
//! A picture is converted in bands of rows ([`FrameRows::feed`]): swscale writes one band of
//! output rows at a time (`sws_receive_slice`; each output row is computed from the whole decoded
//! picture, so a band is the same bytes as those rows of a whole-picture conversion), every
//! [`RowSink`] reads it (the model's resize, a thumbnail), and its memory is given back before
//! the next band. No full-size RGB picture is held, except for pictures turned a quarter
//! (display rotation 90 or 270), whose every upright row reads every decoded row.

use super::{Frame, RowSink};
use anyhow::{Context as _, Result};
use ffmpeg_next::ffi;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::frame::Video as AvFrame;
use ffmpeg_next::software::scaling::{Context as AvScaler, Flags as AvScaleFlags};
use std::path::Path;
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
    /// Bytes of RGB per band instead of [`BAND_BYTES`] (tests: bands of a row or two).
    band_bytes: Option<usize>,
}

/// Row alignment of swscale's output: the alignment `av_frame_get_buffer` gives a frame, so
/// swscale takes the same code path as it would writing into one.
const ROW_ALIGN: usize = 64;

/// About this many bytes of RGB are converted at a time (one band of rows).
const BAND_BYTES: usize = 1 << 20;

/// A decoded picture on its way to upright RGB24, handed out in bands of rows
/// ([`FrameRows::feed`]) or whole ([`FrameRows::into_frame`]).
pub struct FrameRows<'a> {
    /// Upright size (after the display rotation).
    pub width: u32,
    pub height: u32,
    /// Presentation time in seconds relative to the stream's first frame.
    pub time: f64,
    frame: &'a AvFrame,
    rotation: i32,
    converter: &'a mut RgbConverter,
    /// Named in errors: the input the picture comes from.
    origin: Option<&'a Path>,
}

impl<'a> FrameRows<'a> {
    /// `frame`, to be turned clockwise by `rotation` degrees (0, 90, 180 or 270; anything else
    /// counts as 0).
    pub(crate) fn new(
        frame: &'a AvFrame,
        rotation: i32,
        time: f64,
        converter: &'a mut RgbConverter,
        origin: Option<&'a Path>,
    ) -> Result<FrameRows<'a>> {
        let (width, height) = (frame.width(), frame.height());
        anyhow::ensure!(
            width > 0 && height > 0,
            "decoder returned an empty {width}x{height} picture"
        );
        let rotation = if matches!(rotation, 90 | 180 | 270) {
            rotation
        } else {
            0
        };
        let (width, height) = if rotation % 180 == 0 {
            (width, height)
        } else {
            (height, width)
        };
        Ok(FrameRows {
            width,
            height,
            time,
            frame,
            rotation,
            converter,
            origin,
        })
    }

    /// Converts the rows that any of `sinks` wants and gives each band to every sink, top to
    /// bottom (a band can hold rows a sink does not want).
    pub fn feed(self, sinks: &mut [&mut dyn RowSink]) -> Result<()> {
        let (origin, time) = (self.origin, self.time);
        let (frame, rotation) = (self.frame, self.rotation);
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let result = match rotation {
            0 => self.converter.bands(frame, false, &mut Upright { sinks }),
            180 => self.converter.bands(
                frame,
                true,
                &mut Turned {
                    sinks,
                    height: h,
                    row: w * 3,
                    band: Vec::new(),
                },
            ),
            _ => {
                // Every upright row reads every decoded row: convert the whole picture, then
                // hand out upright bands gathered from its columns.
                let mut whole = Whole(Vec::with_capacity(w * h * 3));
                let band_bytes = self.converter.band_bytes();
                self.converter
                    .bands(frame, false, &mut whole)
                    .map(|()| quarter_turn_bands(&whole.0, (w, h), rotation, band_bytes, sinks))
            }
        };
        result.with_context(|| match origin {
            Some(p) => format!("{}: frame at {time:.3} s", p.display()),
            None => format!("frame at {time:.3} s"),
        })
    }

    /// The whole upright picture.
    pub fn into_frame(self) -> Result<Frame> {
        let (width, height, time) = (self.width, self.height, self.time);
        let mut all = Whole(Vec::with_capacity(width as usize * height as usize * 3));
        self.feed(&mut [&mut all])?;
        Ok(Frame {
            width,
            height,
            data: all.0,
            time,
        })
    }
}

/// Rows of the decoded picture as swscale writes them (decoded row numbers, top down or
/// bottom up), on their way to the sinks.
trait Bands {
    /// Whether decoded row `y` is needed.
    fn wants(&self, y: usize) -> bool;
    /// Packed RGB24 rows of the decoded picture, the first being decoded row `first`.
    fn take(&mut self, first: usize, rows: &[u8]);
}

/// Rotation 0: decoded rows are upright rows.
struct Upright<'s, 'k> {
    sinks: &'s mut [&'k mut dyn RowSink],
}

impl Bands for Upright<'_, '_> {
    fn wants(&self, y: usize) -> bool {
        self.sinks.iter().any(|s| s.wants(y as u32))
    }
    fn take(&mut self, first: usize, rows: &[u8]) {
        for s in self.sinks.iter_mut() {
            s.rows(first as u32, rows);
        }
    }
}

/// Rotation 180: upright row y is decoded row `height - 1 - y`, read right to left.
struct Turned<'s, 'k> {
    sinks: &'s mut [&'k mut dyn RowSink],
    height: usize,
    row: usize,
    band: Vec<u8>,
}

impl Bands for Turned<'_, '_> {
    fn wants(&self, y: usize) -> bool {
        let upright = (self.height - 1 - y) as u32;
        self.sinks.iter().any(|s| s.wants(upright))
    }
    fn take(&mut self, first: usize, rows: &[u8]) {
        let n = rows.len() / self.row;
        self.band.clear();
        for r in rows.chunks_exact(self.row).rev() {
            for px in r.chunks_exact(3).rev() {
                self.band.extend_from_slice(px);
            }
        }
        let upright = (self.height - first - n) as u32;
        for s in self.sinks.iter_mut() {
            s.rows(upright, &self.band);
        }
    }
}

/// Every row, collected into one packed picture.
struct Whole(Vec<u8>);

impl Bands for Whole {
    fn wants(&self, _y: usize) -> bool {
        true
    }
    fn take(&mut self, _first: usize, rows: &[u8]) {
        self.0.extend_from_slice(rows);
    }
}

impl RowSink for Whole {
    fn rows(&mut self, _first: u32, data: &[u8]) {
        self.0.extend_from_slice(data);
    }
}

/// Upright bands of a `w` x `h` packed picture turned clockwise by 90 or 270 degrees: the
/// upright picture is `h` wide and `w` high; with 90 its pixel (x, y) is source (y, h - 1 - x),
/// with 270 source (w - 1 - y, x).
fn quarter_turn_bands(
    src: &[u8],
    (w, h): (usize, usize),
    rotation: i32,
    band_bytes: usize,
    sinks: &mut [&mut dyn RowSink],
) {
    let (uw, uh) = (h, w);
    let rows = band_rows(band_bytes, uw * 3, 1, uh);
    let mut band = Vec::with_capacity(rows * uw * 3);
    for first in (0..uh).step_by(rows) {
        let last = (first + rows).min(uh);
        if !(first..last).any(|y| sinks.iter().any(|s| s.wants(y as u32))) {
            continue;
        }
        band.clear();
        for y in first..last {
            for x in 0..uw {
                let (sx, sy) = if rotation == 90 {
                    (y, h - 1 - x)
                } else {
                    (w - 1 - y, x)
                };
                let i = (sy * w + sx) * 3;
                band.extend_from_slice(&src[i..i + 3]);
            }
        }
        for s in sinks.iter_mut() {
            s.rows(first as u32, &band);
        }
    }
}

/// Rows per band for rows of `row` bytes: about `bytes`, a multiple of `align`, at most
/// `height` (rounded up to `align`).
fn band_rows(bytes: usize, row: usize, align: usize, height: usize) -> usize {
    let align = align.max(1);
    (bytes / row.max(1))
        .clamp(1, height.max(1))
        .next_multiple_of(align)
}

/// The bands `[first, last)` of a picture `height` rows high, `rows` at a time, from the top or
/// from the bottom (band edges stay multiples of `rows` either way).
fn band_ranges(height: usize, rows: usize, bottom_up: bool) -> Vec<(usize, usize)> {
    let mut v: Vec<(usize, usize)> = (0..height)
        .step_by(rows)
        .map(|first| (first, (first + rows).min(height)))
        .collect();
    if bottom_up {
        v.reverse();
    }
    v
}

impl RgbConverter {
    /// Packed RGB24 rows (`width * height * 3` bytes) of `frame`, rotated clockwise by
    /// `rotation` degrees (0, 90, 180 or 270); returns the data with the upright width and height.
    pub(crate) fn convert(
        &mut self,
        frame: &AvFrame,
        rotation: i32,
    ) -> Result<(Vec<u8>, u32, u32)> {
        let f = FrameRows::new(frame, rotation, 0.0, self, None)?.into_frame()?;
        Ok((f.data, f.width, f.height))
    }

    /// Converts `frame` band by band (top down, or bottom up with `bottom_up`), skipping bands
    /// that hold no row `out` wants, and gives each converted band to `out`.
    fn bands(&mut self, frame: &AvFrame, bottom_up: bool, out: &mut dyn Bands) -> Result<()> {
        let (format, width, height) = (frame.format(), frame.width(), frame.height());
        let (w, h) = (width as usize, height as usize);
        let row = w * 3;
        let wanted =
            |out: &dyn Bands, (first, last): (usize, usize)| (first..last).any(|y| out.wants(y));
        if format == Pixel::RGB24 {
            // Already RGB: bands are copies of the decoded rows.
            let stride = frame.stride(0);
            let data = frame.data(0);
            let mut band = Vec::new();
            for range in band_ranges(h, band_rows(self.band_bytes(), row, 1, h), bottom_up) {
                if !wanted(&*out, range) {
                    continue;
                }
                give_band(
                    out,
                    &mut band,
                    range,
                    &data[range.0 * stride..],
                    (stride, row),
                );
            }
            return Ok(());
        }
        let scaler = self.scaler_for(format, width, height)?;
        // SAFETY: the pointer is used only while `scaler` is borrowed here.
        let sws = unsafe { scaler.sws.as_mut_ptr() };
        let stride = row.next_multiple_of(ROW_ALIGN);
        // SAFETY: a valid context.
        let align = unsafe { ffi::sws_receive_slice_alignment(sws) } as usize;
        let rows = if is_bayer(format) {
            // swscale converts Bayer pictures through an intermediate picture: whole only.
            h
        } else {
            band_rows(self.band_bytes(), stride, align, h)
        };
        // One spare aligned row: swscale's SIMD writers may store a little past a row's end.
        let canvas = Canvas::new(stride * (h + 1))?;
        let target = Target::new(&canvas, width, height, stride)?;
        // SAFETY: `target` and `frame` are refcounted frames of the size and formats the
        // context was made for; `Started` ends the frame on every path out.
        let started = unsafe {
            let ret = ffi::sws_frame_start(sws, target.0, frame.as_ptr());
            anyhow::ensure!(
                ret >= 0,
                "cannot start converting a {format:?} picture ({ret})"
            );
            Started(sws)
        };
        // SAFETY: the whole decoded picture is present.
        let ret = unsafe { ffi::sws_send_slice(sws, 0, height) };
        anyhow::ensure!(ret >= 0, "cannot convert a {format:?} picture ({ret})");
        let mut band = Vec::new();
        for (first, last) in band_ranges(h, rows, bottom_up) {
            if !wanted(&*out, (first, last)) {
                continue;
            }
            // SAFETY: the band lies inside the picture, its edges multiples of the alignment
            // swscale asks for (the last one ends at the picture's end).
            let ret = unsafe { ffi::sws_receive_slice(sws, first as u32, (last - first) as u32) };
            anyhow::ensure!(
                ret >= 0,
                "cannot convert rows {first}..{last} of a {format:?} picture to RGB ({ret})"
            );
            let converted = canvas.bytes(first * stride, (last - first) * stride);
            give_band(out, &mut band, (first, last), converted, (stride, row));
            canvas.release(first * stride, last * stride);
        }
        drop(started);
        drop(target);
        Ok(())
    }

    fn band_bytes(&self) -> usize {
        self.band_bytes.unwrap_or(BAND_BYTES)
    }

    /// The swscale context for `format` at this size, made anew when either changed.
    fn scaler_for(&mut self, format: Pixel, width: u32, height: u32) -> Result<&mut Scaler> {
        let fresh = match &self.scaler {
            Some(s) => s.format != format || s.width != width || s.height != height,
            None => true,
        };
        if fresh {
            let sws = rgb_scaler(format, width, height)?;
            self.scaler = Some(Scaler {
                format,
                width,
                height,
                sws,
            });
        }
        self.scaler
            .as_mut()
            .context("internal error: no RGB converter")
    }
}

/// Gives `out` rows `first..last` of a picture, packed into `band`: `src` starts with row
/// `first`, each row `stride` bytes apart, of which the first `row` are RGB.
fn give_band(
    out: &mut dyn Bands,
    band: &mut Vec<u8>,
    (first, last): (usize, usize),
    src: &[u8],
    (stride, row): (usize, usize),
) {
    band.clear();
    for k in 0..last - first {
        band.extend_from_slice(&src[k * stride..k * stride + row]);
    }
    out.take(first, band);
}

/// A swscale context from `format` to RGB24 at the same size.
fn rgb_scaler(format: Pixel, width: u32, height: u32) -> Result<AvScaler> {
    AvScaler::get(
        format,
        width,
        height,
        Pixel::RGB24,
        width,
        height,
        AvScaleFlags::BILINEAR,
    )
    .with_context(|| format!("cannot convert {width}x{height} {format:?} pictures to RGB"))
}

/// Whether `format` is a raw Bayer pattern (converted whole, see [`RgbConverter::bands`]).
fn is_bayer(format: Pixel) -> bool {
    // SAFETY: the descriptor table is static; null for unknown formats.
    unsafe {
        let desc = ffi::av_pix_fmt_desc_get(format.into());
        !desc.is_null() && (*desc).flags & ffi::AV_PIX_FMT_FLAG_BAYER as u64 != 0
    }
}

/// Address space for a whole RGB picture of which only the band being converted is backed by
/// memory: swscale writes rows where a whole picture would have them, and each band's pages
/// go back to the system once it has been read.
struct Canvas {
    ptr: *mut u8,
    len: usize,
}

impl Canvas {
    fn new(len: usize) -> Result<Canvas> {
        // SAFETY: an anonymous private mapping; no memory is touched until written.
        let ptr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        anyhow::ensure!(
            ptr != libc::MAP_FAILED,
            "cannot reserve {len} bytes for an RGB picture"
        );
        Ok(Canvas {
            ptr: ptr.cast(),
            len,
        })
    }

    fn bytes(&self, start: usize, len: usize) -> &[u8] {
        assert!(start + len <= self.len);
        // SAFETY: inside the mapping, which lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.add(start), len) }
    }

    /// Gives back the pages that bytes `start..end` touch; they read as zero afterwards. Only
    /// called once those rows have been read, and before swscale writes the next band.
    fn release(&self, start: usize, end: usize) {
        const PAGE: usize = 4096;
        let first = start / PAGE * PAGE;
        let last = end.next_multiple_of(PAGE).min(self.len);
        if last > first {
            // SAFETY: a page-aligned range inside the mapping; failure only keeps the pages.
            unsafe {
                libc::madvise(
                    self.ptr.add(first).cast(),
                    last - first,
                    libc::MADV_DONTNEED,
                );
            }
        }
    }
}

impl Drop for Canvas {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer referenced (the frame that pointed at
        // it is freed first).
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// An RGB24 `AVFrame` whose single plane is a [`Canvas`] (the buffer reference frees nothing:
/// the canvas owns the memory).
struct Target(*mut ffi::AVFrame);

unsafe extern "C" fn keep_canvas(_opaque: *mut libc::c_void, _data: *mut u8) {}

impl Target {
    fn new(canvas: &Canvas, width: u32, height: u32, stride: usize) -> Result<Target> {
        // SAFETY: a fresh frame's plain fields, pointing at memory that outlives it (the
        // caller drops the target before the canvas).
        unsafe {
            let f = ffi::av_frame_alloc();
            anyhow::ensure!(!f.is_null(), "out of memory");
            let target = Target(f);
            (*f).format = ffi::AVPixelFormat::AV_PIX_FMT_RGB24 as i32;
            (*f).width = width as i32;
            (*f).height = height as i32;
            (*f).data[0] = canvas.ptr;
            (*f).linesize[0] = i32::try_from(stride).context("picture too wide")?;
            (*f).buf[0] = ffi::av_buffer_create(
                canvas.ptr,
                canvas.len,
                Some(keep_canvas),
                ptr::null_mut(),
                0,
            );
            anyhow::ensure!(!(*f).buf[0].is_null(), "out of memory");
            Ok(target)
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // SAFETY: the frame allocated in `new`.
        unsafe { ffi::av_frame_free(&mut self.0) }
    }
}

/// A frame being converted: `sws_frame_end` when dropped.
struct Started(*mut ffi::SwsContext);

impl Drop for Started {
    fn drop(&mut self) {
        // SAFETY: a context with a started frame.
        unsafe { ffi::sws_frame_end(self.0) }
    }
}

/// Rotates packed RGB24 pixels clockwise by 90, 180 or 270 degrees (anything else: unchanged):
/// the whole-picture reference the bands are checked against. Returns the pixels and their new
/// width and height.
#[cfg(test)]
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

/// Pictures and the whole-picture conversion that banded conversion is checked against.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A `w` x `h` picture of `format` filled with noise (samples within the format's depth).
    pub(crate) fn noise_picture(format: Pixel, w: u32, h: u32, seed: u64) -> AvFrame {
        super::super::video::init_ffmpeg();
        let mut f = AvFrame::new(format, w, h);
        // SAFETY: a static descriptor of a known format.
        let depth = unsafe { (*ffi::av_pix_fmt_desc_get(format.into())).comp[0].depth };
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 40) as u32
        };
        for plane in 0..f.planes() {
            let data = f.data_mut(plane);
            if depth > 8 {
                for pair in data.chunks_exact_mut(2) {
                    let v = (next() & ((1 << depth) - 1)) as u16;
                    pair.copy_from_slice(&v.to_le_bytes());
                }
            } else {
                for b in data.iter_mut() {
                    *b = next() as u8;
                }
            }
        }
        f
    }

    /// The conversion before bands: one `sws_scale` of the whole picture into one buffer
    /// (rows padded to [`ROW_ALIGN`] plus a spare row), packed, then rotated.
    pub(crate) fn whole_rgb(frame: &AvFrame, rotation: i32) -> (Vec<u8>, u32, u32) {
        let (format, width, height) = (frame.format(), frame.width(), frame.height());
        let row = width as usize * 3;
        let packed = if format == Pixel::RGB24 {
            let stride = frame.stride(0);
            let data = frame.data(0);
            (0..height as usize)
                .flat_map(|y| data[y * stride..y * stride + row].iter().copied())
                .collect()
        } else {
            let mut sws = rgb_scaler(format, width, height).unwrap();
            let stride = row.next_multiple_of(ROW_ALIGN);
            let mut buf = vec![0u8; stride * (height as usize + 1)];
            let dst_data = [
                buf.as_mut_ptr(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            ];
            let dst_stride = [stride as i32, 0, 0, 0];
            // SAFETY: as the conversion before bands did: a picture of the context's format
            // and size, a buffer of `height` rows of `stride` bytes plus one.
            let ret = unsafe {
                let src = frame.as_ptr();
                ffi::sws_scale(
                    sws.as_mut_ptr(),
                    (*src).data.as_ptr() as *const *const u8,
                    (*src).linesize.as_ptr(),
                    0,
                    height as i32,
                    dst_data.as_ptr(),
                    dst_stride.as_ptr(),
                )
            };
            assert_eq!(ret, height as i32);
            (0..height as usize)
                .flat_map(|y| buf[y * stride..y * stride + row].iter().copied())
                .collect()
        };
        rotate(packed, width, height, rotation)
    }

    /// `frame` converted in bands of about `band_bytes` bytes (None: the default size), fed
    /// to `sinks`.
    pub(crate) fn feed_in_bands(
        frame: &AvFrame,
        rotation: i32,
        band_bytes: Option<usize>,
        sinks: &mut [&mut dyn RowSink],
    ) -> Result<(u32, u32)> {
        let mut converter = RgbConverter {
            scaler: None,
            band_bytes,
        };
        let rows = FrameRows::new(frame, rotation, 0.0, &mut converter, None)?;
        let size = (rows.width, rows.height);
        rows.feed(sinks)?;
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{feed_in_bands, noise_picture, whole_rgb};
    use super::*;

    /// Rows as they arrive, by number; checks that each comes once and bands are whole rows.
    struct Rows {
        row: usize,
        got: Vec<Option<Vec<u8>>>,
        wanted: fn(u32) -> bool,
        bands: usize,
    }

    impl RowSink for Rows {
        fn wants(&self, y: u32) -> bool {
            (self.wanted)(y)
        }
        fn rows(&mut self, first: u32, data: &[u8]) {
            assert_eq!(data.len() % self.row, 0);
            self.bands += 1;
            for (k, r) in data.chunks_exact(self.row).enumerate() {
                let slot = &mut self.got[first as usize + k];
                assert!(slot.is_none(), "row {} came twice", first as usize + k);
                *slot = Some(r.to_vec());
            }
        }
    }

    /// Pixel formats decoders give (MJPEG's full-range 4:2:2 and 4:2:0, 10-bit, semi-planar,
    /// planar RGB, packed RGB) at odd and even sizes, turned every way, in bands of 1-2 rows,
    /// a few rows and one band: every row the sink wants is the whole-picture conversion's.
    #[test]
    fn bands_are_the_whole_picture_conversion() {
        let formats = [
            Pixel::YUV420P,
            Pixel::YUVJ420P,
            Pixel::YUVJ422P,
            Pixel::YUV444P,
            Pixel::YUV420P10LE,
            Pixel::NV12,
            Pixel::GBRP,
            Pixel::RGB24,
            Pixel::BGR24,
        ];
        let sizes = [(33, 17), (50, 36), (97, 64), (7, 3), (640, 10)];
        let wants: [fn(u32) -> bool; 2] = [|_| true, |y| y % 5 == 3];
        for (seed, &format) in formats.iter().enumerate() {
            for &(w, h) in &sizes {
                let pic = noise_picture(format, w, h, seed as u64);
                for rotation in [0, 90, 180, 270] {
                    let (want, uw, uh) = whole_rgb(&pic, rotation);
                    let row = uw as usize * 3;
                    for band_bytes in [Some(1), Some(3 * w as usize * 3), None] {
                        for wanted in wants {
                            let mut sink = Rows {
                                row,
                                got: vec![None; uh as usize],
                                wanted,
                                bands: 0,
                            };
                            let size = feed_in_bands(&pic, rotation, band_bytes, &mut [&mut sink])
                                .unwrap();
                            assert_eq!(size, (uw, uh));
                            let case = format!(
                                "{format:?} {w}x{h} turned {rotation}, bands of {band_bytes:?} bytes"
                            );
                            if band_bytes == Some(1) && wanted(0) && h > 2 {
                                assert!(sink.bands > 1, "{case}: one band");
                            }
                            for y in 0..uh as usize {
                                let expected = &want[y * row..(y + 1) * row];
                                match &sink.got[y] {
                                    Some(r) => assert!(r == expected, "{case}: row {y} differs"),
                                    None => assert!(!wanted(y as u32), "{case}: row {y} missing"),
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn only_bands_with_wanted_rows_are_converted() {
        let pic = noise_picture(Pixel::YUV420P, 64, 64, 1);
        let mut sink = Rows {
            row: 64 * 3,
            got: vec![None; 64],
            wanted: |y| y == 10 || y == 11,
            bands: 0,
        };
        feed_in_bands(&pic, 0, Some(1), &mut [&mut sink]).unwrap();
        assert_eq!(sink.bands, 1, "one band of two rows");
        assert_eq!(sink.got.iter().flatten().count(), 2);
    }

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
