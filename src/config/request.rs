//! The plan of a command that runs a model over inputs (`predict`, `embed`, `annotate`,
//! `watch`): [`Request`] before the model loads, [`Settings`] once it is known.

use super::default_threads;
use crate::decode::{Access, SamplingSpec};
use crate::inputs::Shard;
use crate::model::{self, Aggregate, LoadOptions, ModelSource};
use crate::pipeline::{ClipSettings, Labelling, RunSettings, WindowSpec};
use crate::report::{CsvCells, Format, Ran, SegmentRules, ThumbSpec};
use std::path::PathBuf;
use std::time::Duration;

/// Where results go.
#[derive(Debug, Clone)]
pub struct Output {
    pub path: Option<PathBuf>,
    pub format: Format,
    pub force: bool,
    pub resume: bool,
    pub retry_failed: bool,
    pub csv_cells: CsvCells,
}

/// How the run reports itself on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Chatter {
    /// Progress bar and prose summary.
    pub quiet: bool,
    pub verbose: bool,
    pub summary_json: bool,
}

/// The model to load, and how.
#[derive(Debug, Clone)]
pub struct ModelPlan {
    pub source: ModelSource,
    pub load: LoadOptions,
    /// `--precision auto` chose `load.precision` (so fp32 may stand in if it fails to load).
    pub auto_precision: bool,
}

/// How each input (or window) becomes views; `None`: the model's own (its default views, its
/// sampling).
#[derive(Debug, Clone, PartialEq)]
pub struct Views {
    pub clips: Option<usize>,
    pub crops: usize,
    pub fps: Option<f64>,
    pub stride: Option<usize>,
}

/// How the pipeline runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// Views per forward pass; `None`: the device's choice.
    pub batch_size: Option<usize>,
    /// Decode workers; `None`: one per core.
    pub threads: Option<usize>,
    pub timeout: Duration,
    pub max_pixels: u64,
    pub max_windows: usize,
}

impl Default for RunPlan {
    fn default() -> RunPlan {
        RunPlan {
            batch_size: None,
            threads: None,
            timeout: Duration::from_secs(300),
            max_pixels: crate::decode::DEFAULT_MAX_PIXELS,
            max_windows: super::limits::DEFAULT_WINDOWS as usize,
        }
    }
}

/// What each input's records say.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelPlan {
    pub aggregate: Aggregate,
    pub top_k: usize,
    pub all_scores: bool,
    /// One record per window instead of one per input.
    pub windows: Option<WindowSpec>,
    /// Windows merged into segments.
    pub segments: Option<SegmentRules>,
    /// The records carry pictures of the frames the model saw (the HTML page).
    pub pictures: bool,
}

/// Everything a command that runs a model over inputs needs before the model is loaded.
#[derive(Debug, Clone)]
pub struct Request {
    pub model: ModelPlan,
    pub inputs: Vec<PathBuf>,
    pub follow_links: bool,
    pub shard: Option<Shard>,
    pub output: Output,
    pub chatter: Chatter,
    /// What opening an input may do.
    pub access: Access,
    pub views: Views,
    pub run: RunPlan,
    pub labels: LabelPlan,
    pub dump_inputs: Option<PathBuf>,
}

/// Everything such a command needs once the model is known.
#[derive(Debug, Clone)]
pub struct Settings {
    pub clips: ClipSettings,
    pub crops: usize,
    pub run: RunSettings,
    pub labelling: Labelling,
    pub dump_inputs: Option<PathBuf>,
    /// Which of precision and batch size `auto` chose (for `-v`).
    pub auto: (bool, bool),
}

impl Request {
    /// The run's settings for a loaded model (its sampling, unless the plan overrides it).
    pub fn settings(&self, model: &model::Model) -> Settings {
        let (v, l) = (&self.views, &self.labels);
        let batch_size = self
            .run
            .batch_size
            .unwrap_or_else(|| model::auto_batch_size(model.device));
        Settings {
            clips: ClipSettings {
                spec: self.sampling(model),
                windows: l.windows,
                thumbnails: l.pictures.then(|| thumb_spec(l.windows.is_some())),
                max_pixels: self.run.max_pixels,
                max_windows: self.run.max_windows,
                access: self.access.clone(),
            },
            crops: v.crops,
            run: RunSettings {
                threads: self.run.threads.unwrap_or_else(default_threads),
                batch_size,
                timeout: self.run.timeout,
                ahead: views_ahead(model, batch_size),
            },
            labelling: self.labelling(model, batch_size),
            dump_inputs: self.dump_inputs.clone(),
            auto: (self.model.auto_precision, self.run.batch_size.is_none()),
        }
    }

    /// The model's sampling, less what the plan overrides.
    fn sampling(&self, model: &model::Model) -> SamplingSpec {
        let (v, cfg) = (&self.views, &model.config.sampling);
        SamplingSpec {
            frames: model.frames,
            fps: v.fps.or(cfg.fps),
            stride: v.stride.unwrap_or(cfg.stride).max(1),
            clips: model.config.clips(v.clips),
        }
    }

    fn labelling(&self, model: &model::Model, batch_size: usize) -> Labelling {
        let (l, cfg) = (&self.labels, &model.config);
        Labelling {
            model: cfg.name.clone(),
            labels: cfg.labels.clone(),
            aggregate: l.aggregate,
            top_k: l.top_k,
            crops: self.views.crops,
            // The page charts every plotted class over the windows.
            all_scores: l.all_scores || (l.pictures && l.windows.is_some()),
            segments: l.segments,
            windows_too: l.pictures,
            ran: Some(Ran {
                device: model::device_name(model.device),
                precision: model.precision.name().to_string(),
                batch_size,
            }),
        }
    }
}

/// Views an input's worker may hold ready: [`super::limits::AHEAD_BYTES`] of them (float32 C x
/// T x crop x crop), at least one batch.
fn views_ahead(model: &model::Model, batch_size: usize) -> usize {
    let view_bytes = 3 * model.frames * model.config.crop as usize * model.config.crop as usize * 4;
    (super::limits::AHEAD_BYTES / view_bytes.max(1))
        .max(batch_size)
        .max(1)
}

/// The report's pictures: a strip of frames per video, or one frame per window.
pub fn thumb_spec(windowed: bool) -> ThumbSpec {
    ThumbSpec {
        height: 96,
        per_unit: if windowed { 1 } else { 8 },
    }
}
