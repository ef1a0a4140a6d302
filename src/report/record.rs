//! The typed results that travel from the model stage to the writers.

use serde::{Deserialize, Serialize};

/// One label of the top-k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub label: String,
    pub index: usize,
    pub score: f64,
}

/// Time spent per stage for one video, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub decode_ms: f64,
    pub preprocess_ms: f64,
    pub model_ms: f64,
}

/// A classified video (or, with `--timeline`, one window of it).
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
    pub window: Option<[f64; 2]>,
    /// Presentation times (s) of the frames each clip used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frame_times: Vec<Vec<f64>>,
    /// Frames repeated to pad clips of videos shorter than one clip.
    pub padded_frames: usize,
    pub warnings: Vec<String>,
    /// Every class's aggregated score (only with `--all-scores`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<Vec<f64>>,
    pub timings: Timings,
}

/// A failed input: which file, which stage, what went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileError {
    pub path: String,
    pub stage: String,
    pub error: String,
}

/// What the writer gets for each input, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Record {
    Ok(VideoResult),
    Err(FileError),
}
