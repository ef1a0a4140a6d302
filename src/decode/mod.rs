//! Decode stage: a video file and a sampling spec in, clips of RGB frames with timestamps out.
//!
//! Promises: frames are chosen by presentation timestamp (never by packet or frame counter),
//! are upright as a player shows them (display-matrix rotation applied), and the decoder is
//! drained after the last packet so the final frames are reachable. No tch types in here.
//!
//! - Where clips go: [`plan_clips`] (`sample.rs`).
//! - Which frame a time takes: the one a player shows then; timestamps count as equal within
//!   half a time-base tick (`video.rs` spells the rule out).
//! - A video shorter than a clip is padded by repeating its last frame; [`Clip::padded`] says
//!   how many frames that took.
//! - Frames keep the decoded size: resizing and cropping belong to the model stage, which can
//!   read each frame's rows as they are converted, band by band ([`Video::read_clip_with`],
//!   [`FrameRows`]), so no full-size RGB picture is held. Pictures above a pixel limit
//!   ([`DEFAULT_MAX_PIXELS`] unless raised) are refused before conversion. The RGB
//!   conversion is swscale's default (as PyAV's `to_ndarray("rgb24")`).

mod convert;
mod nonref;
mod sample;
mod source;
mod stream;
mod video;

pub use crate::picture::{Frame, RowSink};
#[cfg(test)]
pub(crate) use convert::testing;
pub use convert::FrameRows;
pub use sample::{plan_clips, ClipPlan, SamplingSpec};
pub(crate) use source::open_input;
pub use source::{
    is_stream_name, locate, Access, Location, DEFAULT_PROTOCOLS, LIST_DEMUXERS, MEDIA_DEMUXERS,
};
pub use stream::{FrameStream, StreamFrame};
pub use video::{probe, shown_at, tolerance, Video, DEFAULT_MAX_PIXELS, SEEK_AHEAD};

use serde::Serialize;

/// What `vidcls probe` prints and what every prediction record carries about its source.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct VideoMeta {
    pub container: String,
    pub codec: String,
    /// Display size, after rotation.
    pub width: u32,
    pub height: u32,
    /// Clockwise rotation in degrees a player applies: 0, 90, 180 or 270.
    pub rotation: i32,
    pub avg_fps: Option<f64>,
    pub nominal_fps: Option<f64>,
    /// Seconds from the first frame's timestamp to the end of the last one.
    pub duration: f64,
    /// Frame count the container states, if it does.
    pub frame_count: Option<u64>,
    /// Frames actually decoded (only with `--count`).
    pub decoded_frames: Option<u64>,
    pub pix_fmt: String,
    /// Estimated seconds between keyframes (from the packets near the start).
    pub keyframe_interval: Option<f64>,
}

/// The frames of one clip after a caller's per-frame step ([`Video::read_clip_with`]).
#[derive(Debug, Clone)]
pub struct ClipOf<F> {
    pub plan: ClipPlan,
    pub frames: Vec<F>,
    /// Presentation time of each frame, in seconds.
    pub times: Vec<f64>,
    /// How many trailing frames repeat the last real frame because the video ended.
    pub padded: usize,
}

/// The frames of one clip, one per planned time.
#[derive(Debug, Clone)]
pub struct Clip {
    pub plan: ClipPlan,
    pub frames: Vec<Frame>,
    /// How many trailing frames repeat the last real frame because the video ended.
    pub padded: usize,
}
