//! A source read once, front to back, as it arrives: the seam `vidcls watch` decodes live
//! streams through. No seeking and no reopening (a camera or a socket cannot rewind); frames
//! come in presentation order with their time in seconds from the first one, and only the
//! frames the caller wants are converted to RGB (with the same converter as [`super::Video`]).

use super::convert::RgbConverter;
use super::{Access, Frame};
use anyhow::Result;
use ffmpeg_next::decoder::Video as AvDecoder;
use ffmpeg_next::error::EAGAIN;
use ffmpeg_next::format::context::Input as AvInput;
use ffmpeg_next::frame::Video as AvFrame;
use ffmpeg_next::{Error as AvError, Packet as AvPacket};
use std::path::Path;

/// A decoded frame's time, and its picture when it was wanted.
pub struct StreamFrame {
    pub time: f64,
    pub frame: Option<Frame>,
}

/// An opened source decoded front to back.
pub struct FrameStream {
    input: AvInput,
    decoder: AvDecoder,
    stream: usize,
    tick: f64,
    rotation: i32,
    /// Timestamp (ticks) of the first frame: time 0.
    origin: Option<i64>,
    last_time: f64,
    frame_step: f64,
    eof_sent: bool,
    converter: RgbConverter,
    /// Seconds the container says it lasts (finite sources), if it says.
    pub duration: Option<f64>,
    /// Frames with more pixels are refused (the rule and message of `Video`).
    max_pixels: u64,
    /// The source, named in errors.
    path: std::path::PathBuf,
}

impl FrameStream {
    /// Opens `input` (file, URL, `pipe:` or device) under `access` (the opener of
    /// [`super::Video`]), refusing it when the stream's stated frame size is above `max_pixels`.
    pub fn open(input: &Path, access: &Access, max_pixels: u64) -> Result<FrameStream> {
        let o = super::video::open_stream(input, access, false)?;
        super::video::check_pixels(input, o.decoder.width(), o.decoder.height(), max_pixels)?;
        let total = o.input.duration();
        let duration = (total > 0 && total != ffmpeg_next::ffi::AV_NOPTS_VALUE)
            .then(|| total as f64 / f64::from(ffmpeg_next::ffi::AV_TIME_BASE));
        Ok(FrameStream {
            input: o.input,
            decoder: o.decoder,
            stream: o.stream,
            tick: o.tick,
            rotation: o.rotation,
            origin: None,
            last_time: 0.0,
            frame_step: 1.0 / o.fps,
            eof_sent: false,
            converter: RgbConverter::default(),
            duration,
            max_pixels,
            path: input.to_path_buf(),
        })
    }

    /// Seconds within which a frame's timestamp counts as a time (the rule of
    /// [`super::Video`]).
    pub fn tolerance(&self) -> f64 {
        super::tolerance(self.tick)
    }

    /// The next frame, its picture converted when `want(time)`; `None` at the end of the
    /// stream. A read error other than the end is returned (a network source that dropped).
    pub fn next(&mut self, want: &mut dyn FnMut(f64) -> bool) -> Result<Option<StreamFrame>> {
        loop {
            let mut frame = AvFrame::empty();
            match self.decoder.receive_frame(&mut frame) {
                Ok(()) => return self.deliver(frame, want).map(Some),
                Err(AvError::Eof) => return Ok(None),
                Err(AvError::Other { errno }) if errno == EAGAIN => {}
                // A damaged picture: skip it, as the file reader does.
                Err(_) => continue,
            }
            if self.eof_sent {
                return Ok(None);
            }
            self.feed()?;
        }
    }

    /// Sends the next packet of the stream to the decoder (end of stream after the last).
    fn feed(&mut self) -> Result<()> {
        loop {
            let mut packet = AvPacket::empty();
            match packet.read(&mut self.input) {
                Ok(()) if packet.stream() == self.stream => {
                    // A packet the decoder rejects is skipped (damaged data in a live stream).
                    let _ = self.decoder.send_packet(&packet);
                    return Ok(());
                }
                Ok(()) | Err(AvError::InvalidData) => {}
                Err(AvError::Eof) => {
                    let _ = self.decoder.send_eof();
                    self.eof_sent = true;
                    return Ok(());
                }
                Err(e) => return Err(anyhow::Error::new(e).context("reading the stream")),
            }
        }
    }

    fn deliver(
        &mut self,
        frame: AvFrame,
        want: &mut dyn FnMut(f64) -> bool,
    ) -> Result<StreamFrame> {
        let time = match frame.timestamp().or(frame.pts()) {
            Some(ts) => {
                let origin = *self.origin.get_or_insert(ts);
                ts.saturating_sub(origin) as f64 * self.tick
            }
            None => self.last_time + self.frame_step,
        };
        let time = time.max(self.last_time);
        self.last_time = time;
        // A stream may change size on the way: each picture is held to the limit.
        super::video::check_pixels(&self.path, frame.width(), frame.height(), self.max_pixels)?;
        let picture = if want(time) {
            let (data, width, height) = self.converter.convert(&frame, self.rotation)?;
            Some(Frame {
                width,
                height,
                data,
                time,
            })
        } else {
            None
        };
        Ok(StreamFrame {
            time,
            frame: picture,
        })
    }
}
