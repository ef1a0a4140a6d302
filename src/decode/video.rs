//! FFmpeg side of the decode stage: open, seek, decode, pick frames by presentation time.
//!
//! Frame for a time `t` (seconds from the stream's first frame): the frame a player shows at
//! `t`, i.e. the last decoded frame whose presentation time is `<= t + eps`, where `eps` is half
//! a tick of the stream's time base plus 1 µs (timestamps are rounded to ticks, so a frame stamped
//! within half a tick of `t` counts as being at `t`; with a 1 ms time base, 2/30 s still takes
//! frame 2 stamped 67 ms). A `t` before the first frame takes the first frame. A `t` at or past
//! the end of the last frame (its timestamp plus its duration) takes the last frame and counts as
//! padding.
//!
//! Reading is forward-only between seeks: a clip whose first time lies more than
//! [`SEEK_AHEAD`] seconds beyond the decoded position (and whose keyframe lies beyond it too), or
//! before it, seeks to the keyframe at or before that time; if the first frame decoded there is
//! already later than the time, it seeks further back, down to the start. After the last packet
//! the decoder is drained, so the final frames are reachable.

use super::convert::{display_rotation, normalise_rotation, FrameRows, RgbConverter};
use super::nonref::{NonRef, LOOK_AHEAD};
use super::sample::FALLBACK_FPS;
use super::{Access, Clip, ClipOf, ClipPlan, VideoMeta};
use anyhow::{bail, Context as _, Result};
use ffmpeg_next::codec::context::Context as AvCodecContext;
use ffmpeg_next::codec::packet::side_data::Type as AvSideDataType;
use ffmpeg_next::codec::packet::Ref as _;
use ffmpeg_next::codec::Id as AvCodecId;
use ffmpeg_next::decoder::Video as AvDecoder;
use ffmpeg_next::error::EAGAIN;
use ffmpeg_next::ffi;
use ffmpeg_next::format::context::Input as AvInput;
use ffmpeg_next::format::stream::Disposition;
use ffmpeg_next::frame::Video as AvFrame;
use ffmpeg_next::media::Type as AvMediaType;
use ffmpeg_next::Discard as AvDiscard;
use ffmpeg_next::{Error as AvError, Packet as AvPacket, Rational};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Seconds within which a frame's timestamp counts as a time (module docs): half a tick of a
/// time base of `tick` seconds, plus 1 µs.
pub fn tolerance(tick: f64) -> f64 {
    0.5 * tick + 1e-6
}

/// The frame a player shows at `t` among `frames` (in time order), by the rule of the module
/// docs: the last stamped at or before `t + eps`; the first one for times before it.
pub fn shown_at<'a>(
    frames: impl IntoIterator<Item = &'a super::Frame>,
    t: f64,
    eps: f64,
) -> Option<&'a super::Frame> {
    let mut frames = frames.into_iter();
    let mut shown = frames.next()?;
    for f in frames {
        if f.time > t + eps {
            break;
        }
        shown = f;
    }
    Some(shown)
}

/// Seek forward only when the target is more than this many seconds past the decoded position;
/// closer targets are reached faster by decoding on.
pub const SEEK_AHEAD: f64 = 2.0;

/// Packets and seconds `probe` reads from the start to estimate the keyframe interval.
const KEYFRAME_SCAN_PACKETS: usize = 3000;
const KEYFRAME_SCAN_SECONDS: f64 = 60.0;

/// Default largest picture, in pixels, that is converted: 8192 x 8192 (67.1 Mpx). It takes
/// every 8K format (7680x4320 UHD, 8192x4320 DCI) and keeps one input's pictures to a few
/// hundred MB: the input holds two decoded pictures (1.5 bytes per pixel each in YUV 4:2:0)
/// and converts to RGB in bands of about 1 MB, except for pictures turned a quarter by their
/// display matrix, which are converted whole (3 bytes per pixel).
pub const DEFAULT_MAX_PIXELS: u64 = 8192 * 8192;

/// Consecutive decoder errors after which a stream counts as undecodable rather than damaged.
const MAX_ERRORS_IN_A_ROW: usize = 1000;

/// Sets libav's own logging to quiet once per process: what matters reaches the user through
/// our errors and warnings instead.
pub(super) fn init_ffmpeg() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Registration is a no-op on FFmpeg >= 5; an error here would resurface at open.
        let _ = ffmpeg_next::init();
        ffmpeg_next::util::log::set_level(if std::env::var_os("VIDCLS_DEBUG_AV").is_some() {
            ffmpeg_next::util::log::Level::Debug
        } else {
            ffmpeg_next::util::log::Level::Quiet
        });
    });
}

/// A decoded picture with its presentation interval in seconds from the stream's start.
struct Decoded {
    frame: AvFrame,
    time: f64,
    end: f64,
}

/// Demuxer and decoder of the chosen stream, plus the stream's timing.
struct Source {
    input: AvInput,
    decoder: AvDecoder,
    stream: usize,
    /// Seconds per time-base tick.
    tick: f64,
    /// The stream's first timestamp in ticks (0 when unknown).
    start_pts: i64,
    /// The container carries no timestamps (raw elementary streams): frames are timed by count.
    untimed: bool,
}

impl Source {
    /// A timestamp of the stream in seconds from its first frame (the one ticks -> seconds rule).
    fn seconds(&self, ts: i64) -> f64 {
        ts.saturating_sub(self.start_pts) as f64 * self.tick
    }

    /// The stream timestamp of `t` seconds from its first frame (rounded down to a tick).
    fn ticks(&self, t: f64) -> i64 {
        self.start_pts + (t / self.tick).floor() as i64
    }
}

/// An opened video: demuxer, decoder and the stream's metadata.
pub struct Video {
    path: PathBuf,
    /// What FFmpeg opens: the path, or the file standard input was read into.
    open_path: PathBuf,
    _spool: Option<super::source::Spool>,
    /// The policy it was opened under (reopening keeps it).
    access: Access,
    meta: VideoMeta,
    warnings: Vec<String>,
    src: Source,
    /// Tolerance when comparing frame timestamps with wanted times (see the module docs).
    eps: f64,
    /// Duration assumed for a frame that states none: one frame at the native rate.
    frame_step: f64,
    /// The frame shown at the last wanted time, and a number that changes whenever it does
    /// (so a caller converts a frame that several times take only once).
    held: Option<Decoded>,
    held_id: u64,
    /// The next frame after `held`, decoded to learn where `held` ends.
    ahead: Option<Decoded>,
    /// Time of the last frame the decoder returned (for frames without timestamps).
    last_time: Option<f64>,
    /// Decoding began at the stream's start (not after a seek into the middle).
    at_start: bool,
    eof_sent: bool,
    drained: bool,
    corrupt_packets: usize,
    /// Stretches of the container the demuxer could not parse and skipped.
    damaged_chunks: usize,
    seeks: usize,
    frames_decoded: u64,
    read_error: Option<String>,
    /// Packets read but not yet sent to the decoder (see [`super::nonref`]).
    queue: VecDeque<AvPacket>,
    /// The demuxer has given its last packet (since the last seek).
    demuxed_all: bool,
    /// When the decoder may drop non-reference frames, and whether it is set to now.
    nonref: NonRef,
    dropping: bool,
    /// Frames are timed by their count from the start (see [`Source::untimed`]); no seeking.
    untimed: bool,
    /// The demuxer failed a seek: reading goes forward from the start, reopening to go back.
    unseekable: bool,
    converter: RgbConverter,
    /// Largest picture (width x height) converted; bigger ones are refused.
    max_pixels: u64,
    frames_converted: u64,
}

impl Video {
    /// Opens the best video stream of `path` under the default (strict) [`Access`] policy.
    pub fn open(path: &Path) -> Result<Video> {
        Video::open_under(path, &Access::default())
    }

    /// Opens the best video stream of `path` under `access`, with FFmpeg's automatic thread
    /// count (frame and slice threading both on).
    pub fn open_under(path: &Path, access: &Access) -> Result<Video> {
        init_ffmpeg();
        // A byte stream on stdin cannot be reopened or sought: read it into a file first.
        let spool = match super::source::locate(path) {
            super::source::Location::Stdin => Some(super::source::Spool::stdin()?),
            _ => None,
        };
        let open_path = spool.as_ref().map_or(path, |s| s.path()).to_path_buf();
        let src = open_source(&open_path, access)?;
        let meta = read_meta(&src);
        let src_untimed = src.untimed;
        let nonref = NonRef::new(drops_nonref_safely(&src));
        let mut video = Video {
            path: path.to_path_buf(),
            open_path,
            _spool: spool,
            access: access.clone(),
            eps: tolerance(src.tick),
            frame_step: 1.0 / native_fps(&meta),
            meta,
            warnings: Vec::new(),
            src,
            held: None,
            held_id: 0,
            ahead: None,
            last_time: None,
            at_start: true,
            eof_sent: false,
            drained: false,
            corrupt_packets: 0,
            damaged_chunks: 0,
            seeks: 0,
            frames_decoded: 0,
            read_error: None,
            queue: VecDeque::new(),
            demuxed_all: false,
            nonref,
            dropping: false,
            untimed: src_untimed,
            unseekable: false,
            converter: RgbConverter::default(),
            max_pixels: DEFAULT_MAX_PIXELS,
            frames_converted: 0,
        };
        if video.meta.duration <= 0.0 {
            video.meta.duration = video.measure_duration()?;
        }
        Ok(video)
    }

    /// Duration of a stream whose container states none, or only a guess from the bitrate (raw
    /// elementary streams): read every packet (no decoding) to find where the last one ends,
    /// then reopen. A stream whose packets do not all carry a presentation time is timed by
    /// frame count from here on: raw H.264 and HEVC carry no times at all (their demuxer cannot
    /// seek by time), and raw MPEG video carries decoding times only, which FFmpeg's
    /// best-effort frame times turn into presentation times a frame late.
    fn measure_duration(&mut self) -> Result<f64> {
        let tick = self.src.tick;
        let mut end: f64 = 0.0;
        let mut count = 0u64;
        let mut stamped = true;
        while let Some(packet) = self.next_packet() {
            count += 1;
            stamped &= packet.pts().is_some();
            if let Some(ts) = packet.pts().or(packet.dts()).filter(|_| !self.untimed) {
                let duration = if packet.duration() > 0 {
                    packet.duration() as f64 * tick
                } else {
                    self.frame_step
                };
                end = end.max(self.src.seconds(ts) + duration);
            }
        }
        if !stamped {
            self.untimed = true;
            self.nonref.set_allowed(false);
        }
        self.reopen()?;
        self.seeks = 0;
        Ok(if end > 0.0 {
            end
        } else {
            count as f64 * self.frame_step
        })
    }

    /// The next packet of our stream, or `None` at the end of the input. The one place packets
    /// are read, with one policy: stretches the demuxer cannot parse are skipped and counted
    /// (it resyncs past them; too many in a row end the input), and a read error ends the
    /// input and is recorded.
    fn next_packet(&mut self) -> Option<AvPacket> {
        let mut damaged_in_row = 0;
        loop {
            let mut packet = AvPacket::empty();
            match packet.read(&mut self.src.input) {
                Ok(()) if packet.stream() == self.src.stream => return Some(packet),
                Ok(()) => {}
                Err(AvError::InvalidData) => {
                    self.damaged_chunks += 1;
                    damaged_in_row += 1;
                    if damaged_in_row > MAX_ERRORS_IN_A_ROW {
                        self.read_error = Some("the container keeps failing to parse".into());
                        return None;
                    }
                }
                Err(AvError::Eof) => return None,
                Err(e) => {
                    self.read_error = Some(e.to_string());
                    return None;
                }
            }
        }
    }

    pub fn meta(&self) -> &VideoMeta {
        &self.meta
    }

    /// Average frame rate used when the spec gives none.
    pub fn native_fps(&self) -> f64 {
        native_fps(&self.meta)
    }

    /// Decodes the frames a plan asks for, seeking to the keyframe before it when that is ahead.
    ///
    /// Times should not decrease within a plan (those of [`super::plan_clips`] never do); a time
    /// earlier than the frame already passed costs a seek back.
    pub fn read_clip(&mut self, plan: &ClipPlan) -> Result<Clip> {
        let clip = self.read_clip_with(plan, &mut |f: FrameRows<'_>| f.into_frame())?;
        Ok(Clip {
            plan: clip.plan,
            frames: clip.frames,
            padded: clip.padded,
        })
    }

    /// [`Video::read_clip`], passing each frame through `map` when it is due: `map` gets the
    /// frame's rows as they are converted ([`FrameRows::feed`]), so only what `map` keeps stays
    /// in memory, never a full-size RGB picture. A frame that several planned times show is
    /// converted and mapped once, and its result cloned.
    ///
    /// While the clip is read the decoder drops non-reference frames that none of its times
    /// takes (see [`super::nonref`]); which frame a time takes is the same either way.
    pub fn read_clip_with<F: Clone>(
        &mut self,
        plan: &ClipPlan,
        map: &mut dyn FnMut(FrameRows<'_>) -> Result<F>,
    ) -> Result<ClipOf<F>> {
        let times: Vec<f64> = plan.times.iter().map(|&t| clamp_time(t)).collect();
        self.nonref.want(&times, self.eps);
        let clip = self.read_planned(plan, map);
        self.nonref.want_all();
        clip
    }

    /// The body of [`Video::read_clip_with`], with the wanted times set.
    fn read_planned<F: Clone>(
        &mut self,
        plan: &ClipPlan,
        map: &mut dyn FnMut(FrameRows<'_>) -> Result<F>,
    ) -> Result<ClipOf<F>> {
        let mut frames = Vec::with_capacity(plan.times.len());
        let mut times = Vec::with_capacity(plan.times.len());
        let mut last: Option<(u64, f64, F)> = None;
        let mut padded = 0;
        for &t in &plan.times {
            let t = clamp_time(t);
            self.position(t)?;
            let (id, pad) = self.frame_at(t)?;
            padded += usize::from(pad);
            let (time, mapped) = match last.take() {
                Some((last_id, time, mapped)) if last_id == id => (time, mapped),
                _ => {
                    let frame = self.convert_held()?;
                    let time = frame.time;
                    (time, map(frame)?)
                }
            };
            frames.push(mapped.clone());
            times.push(time);
            last = Some((id, time, mapped));
        }
        self.refresh_warnings();
        Ok(ClipOf {
            plan: plan.clone(),
            frames,
            times,
            padded,
        })
    }

    /// Refuses pictures of more than `pixels` (width x height) from now on; fails at once when
    /// the stream's stated size is already above it. The default is [`DEFAULT_MAX_PIXELS`].
    pub fn limit_pixels(&mut self, pixels: u64) -> Result<()> {
        self.max_pixels = pixels;
        check_pixels(&self.path, self.meta.width, self.meta.height, pixels)
    }

    /// How many decoded frames were converted to RGB since the file was opened: only those a
    /// clip shows, however many the decoder went through.
    pub fn frames_converted(&self) -> u64 {
        self.frames_converted
    }

    /// Non-fatal problems met so far (corrupt packets skipped, ...).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Presentation times (seconds) of every frame, decoded from the start in display order.
    /// Costs a full decode; meant for checks and diagnostics.
    pub fn frame_times(&mut self) -> Result<Vec<f64>> {
        if self.untimed {
            self.reopen()?;
        } else {
            self.rewind()?;
        }
        let mut times: Vec<f64> = self.ahead.take().map(|d| d.time).into_iter().collect();
        while let Some(d) = self.next_frame()? {
            times.push(d.time);
        }
        // Nothing held: the next read seeks back to where it needs to be.
        self.reset(false);
        self.refresh_warnings();
        Ok(times)
    }

    /// How many times reading has seeked (or reopened the file) since it was opened.
    pub fn seek_count(&self) -> usize {
        self.seeks
    }

    /// How many frames the decoder has returned since the file was opened, across seeks.
    pub fn frames_decoded(&self) -> u64 {
        self.frames_decoded
    }

    /// Whether clip reads may let the decoder drop non-reference frames that no planned time
    /// takes (on by default where the codec and timestamps allow it; see [`super::nonref`]).
    /// Turning it on where they do not allow it does nothing.
    pub fn drop_unused_frames(&mut self, on: bool) {
        self.nonref
            .set_allowed(on && !self.untimed && drops_nonref_safely(&self.src));
    }

    /// Whether the frame for `t` lies behind the decoding position (reaching it needs a seek).
    fn is_past(&self, t: f64) -> bool {
        match (&self.held, &self.ahead) {
            (Some(h), _) => h.time > t + self.eps,
            (None, Some(a)) => !self.at_start && a.time > t + self.eps,
            (None, None) => !self.at_start,
        }
    }

    /// Makes sure decoding can go forward from here to the frame for `t`, seeking if that is
    /// behind us or far ahead.
    fn position(&mut self, t: f64) -> Result<()> {
        let eps = self.eps;
        if self.untimed || self.unseekable {
            // Times are frame counts from the start, or the demuxer cannot seek: only reading
            // from the start reaches a time.
            return if self.is_past(t) {
                self.reopen()
            } else {
                Ok(())
            };
        }
        if self.is_past(t) {
            return self.seek(t);
        }
        if self.drained {
            return Ok(());
        }
        let pos = match (&self.ahead, &self.held) {
            (Some(d), _) | (None, Some(d)) => d.time,
            (None, None) => 0.0,
        };
        if t - pos <= SEEK_AHEAD {
            return Ok(());
        }
        match self.keyframe_before(t) {
            // Seeking would land behind where we are: decoding on is cheaper.
            Some(k) if k <= pos + eps => Ok(()),
            _ => self.seek(t),
        }
    }

    /// Time of the indexed keyframe at or before `t`, when the demuxer has an index.
    fn keyframe_before(&mut self, t: f64) -> Option<f64> {
        let ts = self.src.ticks(t);
        // SAFETY: the stream index is valid for this input, and the returned entry, if any,
        // is read before any other call can change the index.
        unsafe {
            let st = *(*self.src.input.as_ptr()).streams.add(self.src.stream);
            let entry =
                ffi::avformat_index_get_entry_from_timestamp(st, ts, ffi::AVSEEK_FLAG_BACKWARD);
            if entry.is_null() || (*entry).timestamp == ffi::AV_NOPTS_VALUE {
                None
            } else {
                Some(self.src.seconds((*entry).timestamp))
            }
        }
    }

    /// Seeks to the keyframe at or before `t`, further back while the first frame decoded there
    /// is later than `t`, and to the start as a last resort. Leaves that first frame in `ahead`.
    fn seek(&mut self, t: f64) -> Result<()> {
        let mut back = 0.0;
        loop {
            let target = t - back;
            if target <= 0.0 {
                return self.rewind();
            }
            let ts = self.src.ticks(target);
            // SAFETY: a valid, open input and stream index; timestamps in that stream's base.
            let ret = unsafe {
                ffi::avformat_seek_file(
                    self.src.input.as_mut_ptr(),
                    self.src.stream as i32,
                    i64::MIN,
                    ts,
                    ts,
                    0,
                )
            };
            self.seeks += 1;
            if ret < 0 {
                // The demuxer cannot seek, and a failed seek may leave it anywhere (FFmpeg's
                // generic seek reads ahead looking for the time, up to the end of the file):
                // start again from the first packet, and read forward only from now on.
                self.unseekable = true;
                return self.reopen();
            }
            self.reset(false);
            match self.next_frame()? {
                Some(d) if d.time <= t + self.eps => {
                    self.ahead = Some(d);
                    return Ok(());
                }
                _ => back = if back == 0.0 { 1.0 } else { back * 2.0 },
            }
        }
    }

    /// Goes back to the stream's first frame: a seek to its start, checked by decoding the
    /// first frame there, or reopening the file where that does not work.
    fn rewind(&mut self) -> Result<()> {
        self.seeks += 1;
        // SAFETY: a valid, open input and stream index.
        let ret = unsafe {
            ffi::av_seek_frame(
                self.src.input.as_mut_ptr(),
                self.src.stream as i32,
                self.src.start_pts,
                ffi::AVSEEK_FLAG_BACKWARD,
            )
        };
        if ret >= 0 {
            self.reset(true);
            if let Some(first) = self.next_frame()? {
                if first.time <= self.frame_step + self.eps {
                    self.ahead = Some(first);
                    return Ok(());
                }
            }
        }
        self.reopen()
    }

    /// Opens the file afresh and starts decoding from its first packet.
    fn reopen(&mut self) -> Result<()> {
        self.seeks += 1;
        self.src = open_source(&self.open_path, &self.access)?;
        self.reset(true);
        Ok(())
    }

    /// Forgets decoded frames, read-ahead packets and decoder state after a seek.
    fn reset(&mut self, at_start: bool) {
        self.src.decoder.flush();
        self.src.decoder.skip_frame(AvDiscard::Default);
        self.dropping = false;
        self.queue.clear();
        self.demuxed_all = false;
        self.nonref.reset();
        self.held = None;
        self.held_id += 1;
        self.ahead = None;
        self.last_time = None;
        self.at_start = at_start;
        self.eof_sent = false;
        self.drained = false;
    }

    /// Decodes forward to the frame shown at `t`; returns the held frame's id (see
    /// [`Video::held_id`]) and whether it is padding.
    fn frame_at(&mut self, t: f64) -> Result<(u64, bool)> {
        loop {
            if let Some(next) = &self.ahead {
                // The first frame also answers times before it (reached only at the start).
                if self.held.is_none() || next.time <= t + self.eps {
                    self.held = self.ahead.take();
                    self.held_id += 1;
                    continue;
                }
                break;
            }
            if self.drained {
                break;
            }
            self.ahead = self.next_frame()?;
        }
        let Some(held) = &self.held else {
            self.refresh_warnings();
            bail!(
                "{}: no decodable video frames{}",
                self.path.display(),
                self.problem_summary()
            );
        };
        let padded = self.ahead.is_none() && self.drained && t > held.end - self.eps;
        Ok((self.held_id, padded))
    }

    /// The held frame, ready to be converted to upright RGB24 band by band; refuses pictures
    /// above the pixel limit before converting anything.
    fn convert_held(&mut self) -> Result<FrameRows<'_>> {
        let held = self
            .held
            .as_ref()
            .context("internal error: no decoded frame")?;
        let (w, h) = (held.frame.width(), held.frame.height());
        check_pixels(&self.path, w, h, self.max_pixels)?;
        self.frames_converted += 1;
        FrameRows::new(
            &held.frame,
            self.meta.rotation,
            held.time,
            &mut self.converter,
            Some(&self.path),
        )
        .with_context(|| format!("{}: frame at {:.3} s", self.path.display(), held.time))
    }

    /// The decoder's next frame in presentation order, reading packets as needed; `None` once
    /// drained. Packets the decoder rejects are skipped and counted.
    fn next_frame(&mut self) -> Result<Option<Decoded>> {
        let mut errors_in_row = 0;
        loop {
            let mut frame = AvFrame::empty();
            match self.src.decoder.receive_frame(&mut frame) {
                Ok(()) => {
                    self.nonref.output(frame.pts(), frame.timestamp());
                    return Ok(Some(self.stamp(frame)));
                }
                Err(AvError::Eof) => {
                    self.drained = true;
                    return Ok(None);
                }
                Err(AvError::Other { errno }) if errno == EAGAIN => {}
                Err(_) => {
                    self.corrupt_packets += 1;
                    errors_in_row += 1;
                    if errors_in_row > MAX_ERRORS_IN_A_ROW {
                        bail!("{}: the decoder keeps failing", self.path.display());
                    }
                    continue;
                }
            }
            if self.eof_sent {
                // Drained but the decoder did not say so: nothing more will come.
                self.drained = true;
                return Ok(None);
            }
            if !self.feed() {
                errors_in_row += 1;
                if errors_in_row > MAX_ERRORS_IN_A_ROW {
                    bail!("{}: the decoder keeps failing", self.path.display());
                }
            } else {
                errors_in_row = 0;
            }
        }
    }

    /// Sends the next packet of our stream to the decoder, or end-of-stream after the last one.
    /// Where non-reference frames may be dropped, packets are read a few ahead so the frame
    /// shown after each is known, and each is sent with dropping on or off as the clip's times
    /// allow. Returns false when the packet was rejected (counted as corrupt).
    fn feed(&mut self) -> bool {
        let ahead = if self.nonref.allowed() { LOOK_AHEAD } else { 0 };
        while self.queue.len() <= ahead && !self.demuxed_all {
            match self.next_packet() {
                Some(packet) => {
                    // SAFETY: reading a plain field of a packet we own.
                    let discard = unsafe { (*packet.as_ptr()).flags } & ffi::AV_PKT_FLAG_DISCARD;
                    let usable = discard == 0 && !packet.is_corrupt();
                    self.nonref.read(packet.pts(), packet.is_key(), usable);
                    self.queue.push_back(packet);
                }
                None => self.demuxed_all = true,
            }
        }
        let Some(packet) = self.queue.pop_front() else {
            // End of input (or an unreadable rest, treated as the end): drain the decoder.
            let _ = self.src.decoder.send_eof();
            self.eof_sent = true;
            return true;
        };
        let drop = self
            .nonref
            .may_drop(packet.pts(), |ts| self.src.seconds(ts));
        if drop != self.dropping {
            self.src.decoder.skip_frame(if drop {
                AvDiscard::NonReference
            } else {
                AvDiscard::Default
            });
            self.dropping = drop;
        }
        match self.src.decoder.send_packet(&packet) {
            Ok(()) => true,
            Err(_) => {
                self.corrupt_packets += 1;
                false
            }
        }
    }

    /// Gives a decoded frame its time: best-effort timestamp, else pts, else one frame after the
    /// previous; never earlier than the previous frame and never before 0.
    fn stamp(&mut self, frame: AvFrame) -> Decoded {
        let tick = self.src.tick;
        let stamp = if self.untimed {
            None
        } else {
            frame.timestamp().or(frame.pts())
        };
        if stamp.is_none() && self.frames_decoded == 0 {
            // No timestamp on the very first frame: time every frame by its count.
            self.untimed = true;
        }
        let time = match stamp {
            Some(ts) => self.src.seconds(ts),
            None => self.last_time.map_or(0.0, |t| t + self.frame_step),
        };
        let time = time.max(self.last_time.unwrap_or(0.0)).max(0.0);
        let duration = frame.packet().duration;
        let duration = if duration > 0 {
            duration as f64 * tick
        } else {
            self.frame_step
        };
        self.last_time = Some(time);
        self.frames_decoded += 1;
        Decoded {
            frame,
            time,
            end: time + duration,
        }
    }

    /// Reads the packets near the start (keyframe interval) and, with `count`, decodes all.
    /// Only on a freshly opened video: it reads from wherever the demuxer stands.
    fn scan(&mut self, count: bool) -> Result<(Option<f64>, Option<u64>)> {
        let mut key_times = Vec::new();
        let mut first_time = None;
        let mut packets = 0usize;
        let mut collecting = true;
        let mut frames = 0u64;
        let mut frame = AvFrame::empty();
        while let Some(packet) = self.next_packet() {
            if collecting {
                packets += 1;
                let time = if self.untimed {
                    // Packets are frames in decoding order; near enough for keyframe spacing.
                    Some((packets - 1) as f64 * self.frame_step)
                } else {
                    packet.pts().or(packet.dts()).map(|ts| self.src.seconds(ts))
                };
                if let Some(time) = time {
                    let first = *first_time.get_or_insert(time);
                    if packet.is_key() {
                        key_times.push(time);
                    }
                    collecting = time - first < KEYFRAME_SCAN_SECONDS;
                }
                collecting &= packets < KEYFRAME_SCAN_PACKETS;
            }
            if !count {
                if collecting {
                    continue;
                }
                break;
            }
            if self.src.decoder.send_packet(&packet).is_err() {
                self.corrupt_packets += 1;
            }
            frames += self.count_frames(&mut frame);
        }
        if count {
            let _ = self.src.decoder.send_eof();
            frames += self.count_frames(&mut frame);
        }
        self.reset(false);
        self.refresh_warnings();
        key_times.sort_by(f64::total_cmp);
        let interval = match (key_times.first(), key_times.last()) {
            (Some(a), Some(b)) if key_times.len() > 1 && b > a => {
                Some((b - a) / (key_times.len() - 1) as f64)
            }
            _ => None,
        };
        Ok((interval, count.then_some(frames)))
    }

    /// Receives every frame the decoder has ready; returns how many.
    fn count_frames(&mut self, frame: &mut AvFrame) -> u64 {
        let mut n = 0;
        loop {
            match self.src.decoder.receive_frame(frame) {
                Ok(()) => n += 1,
                Err(AvError::Eof) => return n,
                Err(AvError::Other { errno }) if errno == EAGAIN => return n,
                Err(_) => self.corrupt_packets += 1,
            }
        }
    }

    /// Text for an error about missing frames: corrupt packets and read errors met on the way.
    fn problem_summary(&self) -> String {
        if self.warnings.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.warnings.join("; "))
        }
    }

    fn refresh_warnings(&mut self) {
        self.warnings.clear();
        if self.corrupt_packets > 0 {
            let n = self.corrupt_packets;
            self.warnings.push(format!(
                "skipped {n} corrupt packet{}",
                if n == 1 { "" } else { "s" }
            ));
        }
        if self.damaged_chunks > 0 {
            let n = self.damaged_chunks;
            self.warnings.push(format!(
                "skipped {n} damaged stretch{} of the container",
                if n == 1 { "" } else { "es" }
            ));
        }
        if let Some(e) = &self.read_error {
            self.warnings
                .push(format!("read error, treated as the end of the file: {e}"));
        }
    }
}

/// A planned time as the reader takes it: finite and not before the start.
fn clamp_time(t: f64) -> f64 {
    if t.is_finite() {
        t.max(0.0)
    } else {
        0.0
    }
}

/// Whether dropping non-reference frames leaves every other frame as it was and timestamps say
/// which frame shows when: H.264 and HEVC (a non-reference picture is one no other refers to),
/// in a container with timestamps. Other codecs decode every frame (VP8/VP9/AV1 have hidden
/// reference frames, MPEG-4 part 2 in AVI packs B-frames, intra-only codecs have nothing to drop).
fn drops_nonref_safely(src: &Source) -> bool {
    !src.untimed && matches!(src.decoder.id(), AvCodecId::H264 | AvCodecId::HEVC)
}

/// Fails when a `width` x `height` picture is above `limit` pixels.
pub(super) fn check_pixels(path: &Path, width: u32, height: u32, limit: u64) -> Result<()> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limit {
        bail!(
            "{}: frames are {width}x{height} ({:.1} Mpx), above the limit of {limit} pixels \
             ({:.1} Mpx); --max-pixels raises it",
            path.display(),
            pixels as f64 / 1e6,
            limit as f64 / 1e6
        );
    }
    Ok(())
}

/// Metadata of one file opened under `access`; `count` decodes every frame to count them.
pub fn probe(path: &Path, count: bool, access: &Access) -> Result<VideoMeta> {
    let mut video = Video::open_under(path, access)?;
    let (keyframe_interval, decoded) = video.scan(count)?;
    let mut meta = video.meta.clone();
    meta.keyframe_interval = keyframe_interval;
    meta.decoded_frames = decoded;
    Ok(meta)
}

/// The average rate, else the nominal one, else the fallback rate.
fn native_fps(meta: &VideoMeta) -> f64 {
    meta.avg_fps.or(meta.nominal_fps).unwrap_or(FALLBACK_FPS)
}

/// An input opened under an access policy, with the decoder of its best video stream: the one
/// opener of the file reader ([`Video`]) and the stream reader ([`super::FrameStream`]), so
/// both pick the same stream, refuse a cover picture, and read time base, rotation and rate
/// alike.
pub(super) struct Opened {
    pub input: AvInput,
    pub decoder: AvDecoder,
    pub stream: usize,
    /// Seconds per timestamp tick.
    pub tick: f64,
    /// Timestamp of the stream's start (0 when the container gives none).
    pub start_pts: i64,
    /// Clockwise rotation a player applies.
    pub rotation: i32,
    /// The stream's rate: average, else nominal, else [`FALLBACK_FPS`].
    pub fps: f64,
}

/// Opens `path` under `access` and the decoder of its best video stream. `frame_threads`:
/// decode with frame threads as well as slice threads (faster for files; a live stream wants
/// each frame as soon as it arrives, so slice threads only).
pub(super) fn open_stream(path: &Path, access: &Access, frame_threads: bool) -> Result<Opened> {
    let shown = path.display();
    let input = super::source::open_input(path, access)?;
    let stream = input
        .streams()
        .best(AvMediaType::Video)
        .with_context(|| format!("{shown}: no video stream"))?;
    if stream.disposition().contains(Disposition::ATTACHED_PIC) {
        bail!("{shown}: no video stream (only a cover picture)");
    }
    let time_base = stream.time_base();
    let mut ctx = AvCodecContext::from_parameters(stream.parameters())
        .with_context(|| format!("{shown}: cannot read the video stream's parameters"))?;
    // SAFETY: plain fields of a codec context that is not open yet.
    unsafe {
        let raw = ctx.as_mut_ptr();
        (*raw).thread_count = 0;
        (*raw).thread_type = if frame_threads {
            ffi::FF_THREAD_FRAME | ffi::FF_THREAD_SLICE
        } else {
            ffi::FF_THREAD_SLICE
        };
    }
    let mut opening = ctx.decoder();
    opening.set_packet_time_base(time_base);
    let codec = opening.id().name();
    let decoder = opening
        .video()
        .with_context(|| format!("{shown}: cannot open a decoder for {codec} video"))?;
    let fps = rational(stream.avg_frame_rate())
        .or(rational(stream.rate()))
        .unwrap_or(FALLBACK_FPS);
    Ok(Opened {
        stream: stream.index(),
        tick: rational(time_base).filter(|t| *t > 0.0).unwrap_or(1e-6),
        start_pts: match stream.start_time() {
            ffi::AV_NOPTS_VALUE => 0,
            s => s,
        },
        rotation: stream_rotation(&stream),
        fps,
        decoder,
        input,
    })
}

/// Opens the demuxer and the decoder of the best video stream, for reading clips.
fn open_source(path: &Path, access: &Access) -> Result<Source> {
    let o = open_stream(path, access, true)?;
    // SAFETY: an open input always has its input format.
    let untimed = unsafe { (*(*o.input.as_ptr()).iformat).flags & ffi::AVFMT_NOTIMESTAMPS != 0 };
    Ok(Source {
        input: o.input,
        decoder: o.decoder,
        stream: o.stream,
        tick: o.tick,
        start_pts: o.start_pts,
        untimed,
    })
}

/// A rational as f64, `None` when it is 0/x, x/0 or negative.
pub(super) fn rational(r: Rational) -> Option<f64> {
    (r.numerator() > 0 && r.denominator() > 0).then(|| f64::from(r))
}

/// The stream's metadata as `probe` reports it (keyframe interval and decoded count come later).
fn read_meta(src: &Source) -> VideoMeta {
    let input = &src.input;
    let Some(stream) = input.stream(src.stream) else {
        return VideoMeta {
            container: input.format().name().to_string(),
            codec: String::new(),
            width: 0,
            height: 0,
            rotation: 0,
            avg_fps: None,
            nominal_fps: None,
            duration: 0.0,
            frame_count: None,
            decoded_frames: None,
            pix_fmt: String::new(),
            keyframe_interval: None,
        };
    };
    let rotation = stream_rotation(&stream);
    let (mut width, mut height) = (src.decoder.width(), src.decoder.height());
    if rotation % 180 != 0 {
        std::mem::swap(&mut width, &mut height);
    }
    let pix_fmt = src
        .decoder
        .format()
        .descriptor()
        .map_or_else(|| "unknown".to_string(), |d| d.name().to_string());
    VideoMeta {
        container: input.format().name().to_string(),
        codec: src.decoder.id().name().to_string(),
        width,
        height,
        rotation,
        avg_fps: rational(stream.avg_frame_rate()),
        nominal_fps: rational(stream.rate()),
        duration: stream_duration(input, &stream, src.tick, src.start_pts),
        frame_count: u64::try_from(stream.frames()).ok().filter(|n| *n > 0),
        decoded_frames: None,
        pix_fmt,
        keyframe_interval: None,
    }
}

/// Seconds from the stream's first timestamp to its end: the stream's own duration, else the
/// container's less the stream's offset into it; 0 when neither is known, or when FFmpeg only
/// guessed them from the bitrate (raw MPEG video states a nominal rate that may be far off):
/// then the caller measures. When the file holds only this stream and the container's
/// duration is longer, that wins: ffmpeg's MP4 muxer can write a track duration that stops
/// short of the last frames (variable rate with B-frames).
fn stream_duration(
    input: &AvInput,
    stream: &ffmpeg_next::Stream,
    tick: f64,
    start_pts: i64,
) -> f64 {
    // SAFETY: reading a plain field of an open format context.
    let method = unsafe { (*input.as_ptr()).duration_estimation_method };
    if method == ffi::AVDurationEstimationMethod::AVFMT_DURATION_FROM_BITRATE {
        return 0.0;
    }
    let own = stream.duration();
    let own = (own > 0 && own != ffi::AV_NOPTS_VALUE).then_some(own as f64 * tick);
    let total = input.duration();
    let container = (total > 0 && total != ffi::AV_NOPTS_VALUE).then(|| {
        let time_base = f64::from(ffi::AV_TIME_BASE);
        // SAFETY: reading a plain field of an open format context.
        let container_start = unsafe { (*input.as_ptr()).start_time };
        let container_start = if container_start == ffi::AV_NOPTS_VALUE {
            0.0
        } else {
            container_start as f64 / time_base
        };
        let offset = (start_pts as f64 * tick - container_start).max(0.0);
        (total as f64 / time_base - offset).max(0.0)
    });
    match (own, container) {
        (Some(own), Some(container)) if input.nb_streams() == 1 => own.max(container),
        (Some(own), _) => own,
        (None, Some(container)) => container,
        (None, None) => 0.0,
    }
}

/// Clockwise display rotation of a stream: its display matrix, else the legacy `rotate` tag.
pub(super) fn stream_rotation(stream: &ffmpeg_next::Stream) -> i32 {
    for side in stream.side_data() {
        if side.kind() == AvSideDataType::DisplayMatrix {
            let data = side.data();
            if data.len() >= 36 {
                let mut matrix = [0i32; 9];
                for (m, bytes) in matrix.iter_mut().zip(data.chunks_exact(4)) {
                    *m = i32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                }
                return display_rotation(&matrix);
            }
        }
    }
    stream
        .metadata()
        .get("rotate")
        .and_then(|r| r.trim().parse::<f64>().ok())
        .map_or(0, normalise_rotation)
}
