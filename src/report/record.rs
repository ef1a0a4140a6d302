//! The typed results that travel from the model stage to the writers.

use super::Thumbnail;
use crate::model::Prediction;
use serde::{Deserialize, Serialize};

/// Time spent per stage for one video, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub decode_ms: f64,
    pub preprocess_ms: f64,
    pub model_ms: f64,
}

/// A span of a video in seconds; written as `[start, end]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "[f64; 2]", into = "[f64; 2]")]
pub struct Window {
    pub start: f64,
    pub end: f64,
}

impl Window {
    pub fn new(start: f64, end: f64) -> Window {
        Window { start, end }
    }
}

impl From<[f64; 2]> for Window {
    fn from([start, end]: [f64; 2]) -> Window {
        Window { start, end }
    }
}

impl From<Window> for [f64; 2] {
    fn from(w: Window) -> [f64; 2] {
        [w.start, w.end]
    }
}

/// A classified video (or, with windows, one window of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoResult {
    pub path: String,
    pub model: String,
    pub top_k: Vec<Prediction>,
    /// Clips (temporal views) and crops (spatial views) aggregated.
    pub clips: usize,
    pub crops: usize,
    /// Video duration in seconds.
    pub duration: f64,
    /// Window bounds in seconds (timeline mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Presentation times (s) of the frames each clip used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frame_times: Vec<Vec<f64>>,
    /// Frames repeated to pad clips of videos shorter than one clip.
    pub padded_frames: usize,
    pub warnings: Vec<String>,
    /// Every class's aggregated score (only when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<Vec<f64>>,
    pub timings: Timings,
    /// Small pictures of frames the model saw (only for reports that show them; never
    /// serialised).
    #[serde(skip)]
    pub thumbnails: Vec<Thumbnail>,
    /// How the forward pass ran (absent in records written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran: Option<Ran>,
    /// Which label list the scores index ([`label_set`]): tells apart two models of one name
    /// (absent in records written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_set: Option<String>,
}

/// A short fingerprint of a model's label list, in order: the first 16 hex digits of the
/// SHA-256 of the list as JSON. Records with equal fingerprints index the same labels.
pub fn label_set(labels: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(labels).expect("strings serialise");
    Sha256::digest(json)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How the model ran for a record: device, precision and views per forward pass, whether
/// chosen by `auto` or by flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ran {
    pub device: String,
    pub precision: String,
    pub batch_size: usize,
}

/// Where an input failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Listing the inputs (missing path, unreadable directory).
    Input,
    /// Opening the file or its video stream.
    Open,
    /// Demuxing and decoding frames (also: gave up after the time limit).
    Decode,
    /// Resizing, cropping, normalising.
    Preprocess,
    /// The forward pass.
    Model,
    /// Writing the input's side files (dumped model inputs, features).
    Output,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Stage::Input => "input",
            Stage::Open => "open",
            Stage::Decode => "decode",
            Stage::Preprocess => "preprocess",
            Stage::Model => "model",
            Stage::Output => "output",
        };
        f.write_str(name)
    }
}

/// A failed input: which file, which stage, what went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileError {
    pub path: String,
    pub stage: Stage,
    pub error: String,
}

impl FileError {
    pub fn new(path: impl Into<String>, stage: Stage, err: &anyhow::Error) -> FileError {
        FileError {
            path: path.into(),
            stage,
            error: format!("{err:#}"),
        }
    }

    /// The failure as one line for a terminal, `PATH: STAGE failed: ERROR`, path and error
    /// escaped ([`super::escape::terminal`]).
    pub fn shown(&self) -> String {
        use super::escape::terminal;
        let (path, error) = (terminal(&self.path), terminal(&self.error));
        format!("{path}: {} failed: {error}", self.stage)
    }
}

/// A span of a video where one label holds (`predict --segments`; rules in
/// `report::segments`). Times in seconds, from the video's timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub path: String,
    pub start: f64,
    pub end: f64,
    pub label: String,
    /// The label's class index.
    pub index: usize,
    /// Mean score of the label over the windows the segment covers.
    pub score: f64,
}

/// One video's features (`vidcls embed`): where the `.npy` file is and what its rows are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    pub path: String,
    /// The `.npy` file, relative to the index file's folder.
    pub npy: String,
    /// Rows x feature width.
    pub shape: [usize; 2],
    pub model: String,
    /// The span each row comes from: a window, or the whole video.
    pub windows: Vec<Window>,
    /// Presentation times (s) of the frames each row's clips used, clip after clip.
    pub frame_times: Vec<Vec<Vec<f64>>>,
    pub warnings: Vec<String>,
}

/// What the writer gets for each input, in input order. Untagged: each kind is told apart by
/// its fields (a video result has `top_k`, an error `stage`, a segment `start`, features `npy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Record {
    Ok(VideoResult),
    Err(FileError),
    Segment(Segment),
    Features(Features),
}

impl Record {
    pub fn path(&self) -> &str {
        match self {
            Record::Ok(v) => &v.path,
            Record::Err(e) => &e.path,
            Record::Segment(s) => &s.path,
            Record::Features(f) => &f.path,
        }
    }
}
