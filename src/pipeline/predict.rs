//! What `predict` plugs into the pipeline: views are preprocessed tensors, the forward pass is
//! the TorchScript model, and scored inputs become records for a [`RecordWriter`].

use super::ordered::Consumer;
use super::prepare::{prepare_each, ClipSettings, MakeViews, Piece, Shrink};
use super::runner::{Forward, Outcome, Scored};
use super::workers::StreamFn;
use crate::model::{aggregate, preprocess, top_k, Aggregate, Model, ModelConfig};
use crate::report::{
    label_set, segments, write_npy, FileError, Ran, Record, RecordWriter, RunSummary, SegmentRules,
    Stage, Timings, VideoResult, Window,
};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use tch::Tensor;

impl Forward for Model {
    type View = Tensor;
    fn run_batch(&self, views: &[Tensor]) -> Result<Vec<Vec<f64>>> {
        let batch = Tensor::f_stack(views, 0)?;
        self.forward(&batch)
    }
}

/// The model's pooled features instead of its logits (for embeddings and linear probes).
pub struct FeaturesOf<'a>(pub &'a Model);

impl Forward for FeaturesOf<'_> {
    type View = Tensor;
    fn run_batch(&self, views: &[Tensor]) -> Result<Vec<Vec<f64>>> {
        let batch = Tensor::f_stack(views, 0)?;
        self.0.features(&batch)
    }
}

/// The worker's job for `predict`: decode, preprocess into `crops` views per clip, hand them on
/// clip by clip, and (for parity checks) dump each input's views as `DIR/<index>.npy` (which
/// keeps them all).
pub fn predict_prepare(
    cfg: ModelConfig,
    clips: ClipSettings,
    crops: usize,
    dump: Option<PathBuf>,
) -> Box<StreamFn<Piece<Tensor>>> {
    Box::new(move |index, path: &Path, emit| {
        let make = MakeViews {
            frame: &|size, first| resize_rows(size, first, &cfg),
            views: &|frames: &[preprocess::Resized]| {
                preprocess::resized_to_views(frames, &cfg, crops)
            },
        };
        match &dump {
            None => prepare_each(path, &clips, &make, emit),
            Some(dir) => {
                prepare_and_dump(path, &clips, &make, &dir.join(format!("{index}.npy")), emit)
            }
        }
    })
}

/// [`prepare_each`], with every view kept and written to `file` before the input's last piece.
fn prepare_and_dump(
    path: &Path,
    clips: &ClipSettings,
    make: &MakeViews<'_, preprocess::Resized, Tensor>,
    file: &Path,
    emit: &mut dyn FnMut(Piece<Tensor>) -> bool,
) -> Result<(), FileError> {
    let (mut all, mut done) = (Vec::new(), None);
    prepare_each(path, clips, make, &mut |piece| match piece {
        Piece::Done { .. } => {
            done = Some(piece);
            true
        }
        Piece::Clip(ref c) => {
            all.extend(c.views.iter().map(Tensor::shallow_clone));
            emit(piece)
        }
        _ => emit(piece),
    })?;
    if let Some(done) = done {
        let fail = |e| FileError::new(path.to_string_lossy(), Stage::Output, &e);
        dump_views(file, &all).map_err(fail)?;
        emit(done);
    }
    Ok(())
}

impl Shrink<preprocess::Resized> for preprocess::FrameResize {
    fn finish(self: Box<Self>) -> Result<preprocess::Resized> {
        preprocess::FrameResize::finish(*self)
    }
}

/// The model's resize of a frame of `size` in a clip whose first frame is `first` (both height
/// x width), fed the frame's rows as they are converted.
pub fn resize_rows(
    size: (u32, u32),
    first: (u32, u32),
    cfg: &ModelConfig,
) -> Result<Box<dyn Shrink<preprocess::Resized>>> {
    Ok(Box::new(preprocess::FrameResize::new(size, first, cfg)?))
}

/// All views of an input, stacked (views x C x T x H x W), as a float32 `.npy` file.
fn dump_views(path: &Path, all: &[Tensor]) -> Result<()> {
    let t = Tensor::f_stack(all, 0)?
        .to_kind(tch::Kind::Float)
        .contiguous();
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let data = Vec::<f32>::try_from(t.flatten(0, -1))?;
    write_npy(path, &data, &shape, crate::atomic::Existing::Replace)
        .context("cannot dump the model input")
}

/// How per-view logits become labels.
#[derive(Debug, Clone)]
pub struct Labelling {
    pub model: String,
    pub labels: Vec<String>,
    pub aggregate: Aggregate,
    pub top_k: usize,
    pub crops: usize,
    pub all_scores: bool,
    /// Merge the windows' scores into action segments instead of a record per window.
    pub segments: Option<SegmentRules>,
    /// With segments: the window records too, before the segments (for reports that draw
    /// the time line the segments come from).
    pub windows_too: bool,
    /// How the model runs, for each record.
    pub ran: Option<Ran>,
}

impl Labelling {
    /// One record per unit (the video, or each window), or the video's segments.
    pub fn records(&self, s: Scored) -> Vec<Record> {
        match &self.segments {
            Some(rules) if self.windows_too => {
                let segments = self.segment_records(&s, rules);
                let mut all = self.unit_records(s);
                all.extend(segments);
                all
            }
            Some(rules) => self.segment_records(&s, rules),
            None => self.unit_records(s),
        }
    }

    /// The segments of one video, from each window's aggregated scores (a unit without a
    /// window stands for the whole video).
    fn segment_records(&self, s: &Scored, rules: &SegmentRules) -> Vec<Record> {
        let (windows, scores): (Vec<Window>, Vec<Vec<f64>>) = s
            .units
            .iter()
            .map(|u| {
                let w = u.window.unwrap_or(Window::new(0.0, s.duration));
                (w, aggregate(&u.rows, self.aggregate))
            })
            .unzip();
        segments(&s.path, &windows, &scores, &self.labels, rules)
            .into_iter()
            .map(Record::Segment)
            .collect()
    }

    fn unit_records(&self, s: Scored) -> Vec<Record> {
        let n_units = s.units.len().max(1) as f64;
        let timings = Timings {
            decode_ms: s.decode_ms / n_units,
            preprocess_ms: s.preprocess_ms / n_units,
            model_ms: s.model_ms / n_units,
        };
        let labels = label_set(&self.labels);
        s.units
            .into_iter()
            .map(|u| {
                let scores = aggregate(&u.rows, self.aggregate);
                Record::Ok(VideoResult {
                    path: s.path.clone(),
                    model: self.model.clone(),
                    top_k: top_k(&scores, &self.labels, self.top_k),
                    clips: u.clips,
                    crops: self.crops,
                    duration: s.duration,
                    window: u.window,
                    frame_times: u.frame_times,
                    padded_frames: u.padded,
                    warnings: s.warnings.clone(),
                    scores: self.all_scores.then_some(scores),
                    timings: timings.clone(),
                    thumbnails: u.thumbnails,
                    ran: self.ran.clone(),
                    label_set: Some(labels.clone()),
                })
            })
            .collect()
    }
}

/// Counts of what a [`RecordSink`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounts {
    pub ok: usize,
    pub failed: usize,
    pub records: usize,
}

/// What every record-writing consumer shares: writes each input's records, counts them,
/// reports failures on stderr and moves the progress bar.
pub struct RecordOut {
    writer: Option<Box<dyn RecordWriter>>,
    pub progress: ProgressBar,
    pub counts: SinkCounts,
}

impl RecordOut {
    pub fn new(writer: Box<dyn RecordWriter>, progress: ProgressBar) -> RecordOut {
        RecordOut {
            writer: Some(writer),
            progress,
            counts: SinkCounts::default(),
        }
    }

    /// Counts and reports a failed input; returns its error record.
    pub fn failed(&mut self, e: FileError) -> Record {
        self.counts.failed += 1;
        self.progress.suspend(|| eprintln!("vidcls: {}", e.shown()));
        Record::Err(e)
    }

    /// Writes one input's records; `Ok(false)` when the reader went away.
    pub fn write(&mut self, records: &[Record]) -> Result<bool> {
        self.counts.records += records.len();
        let writer = self.writer.as_mut().expect("not finished");
        let ok = written(writer.write_input(records))?;
        self.progress.inc(1);
        Ok(ok)
    }

    pub fn finish(&mut self) -> Result<bool> {
        match self.writer.take() {
            Some(w) => written(w.finish()),
            None => Ok(true),
        }
    }

    /// The run summary from these counts and the pipeline's.
    pub fn summary(
        &self,
        inputs: usize,
        already_done: usize,
        stats: &super::RunStats,
    ) -> RunSummary {
        RunSummary {
            inputs,
            classified: self.counts.ok,
            failed: self.counts.failed,
            already_done,
            records: self.counts.records,
            views: stats.views,
            elapsed_s: stats.elapsed.as_secs_f64(),
        }
    }
}

/// The `predict` consumer: labels each scored input and writes its records.
pub struct RecordSink {
    pub labelling: Labelling,
    pub out: RecordOut,
}

/// `Ok(false)` for a closed pipe, the error for any other write failure (for consumers that
/// write records).
pub fn written(r: std::io::Result<()>) -> Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write results")),
    }
}

impl Consumer for RecordSink {
    fn take(&mut self, outcome: Outcome) -> Result<bool> {
        let records = match outcome {
            Ok(s) => {
                self.out.counts.ok += 1;
                self.labelling.records(s)
            }
            Err(e) => vec![self.out.failed(e)],
        };
        self.out.write(&records)
    }

    fn finish(&mut self) -> Result<bool> {
        self.out.finish()
    }
}
