//! `vidcls embed`: each video's pooled penultimate-layer features (what the classifier reads),
//! one float32 `.npy` per video (rows x D: one row per window, or one for the whole video),
//! listed in a JSON Lines index beside them.
//!
//! The run is `predict`'s pipeline with another forward pass ([`pipeline::FeaturesOf`]) and
//! another consumer ([`FeatureSink`]): the same inputs, sampling, windows, sharding, ordering,
//! error records and `--resume`. A `.npy` file is written whole through a temporary file and a
//! rename, and before its index line, so an index line always names a complete file and a
//! killed or parallel run never leaves half of one under its final name.

use crate::atomic::Existing;
use crate::cmd::batch;
use crate::config::{self, EmbedPlan};
use crate::exit::ExitCode;
use crate::inputs::fnv1a;
use crate::pipeline::{self, Consumer, Ending, FeaturesOf, Outcome, RecordOut, Scored};
use crate::report::{self, write_npy, Features, FileError, Format, Record};
use crate::report::{Stage, Window};
use crate::sink::Sink;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Runs `vidcls embed`.
pub fn run(plan: EmbedPlan) -> Result<ExitCode> {
    tch::set_num_threads(config::cores() as i32);
    let EmbedPlan { request: req, dir } = plan;
    let model = batch::load_model(&req.model, req.chatter.verbose)?;
    let width = model.feature_width()?;
    let settings = req.settings(&model);
    if req.chatter.verbose {
        eprintln!(
            "vidcls: {}; {width} features per row",
            batch::describe_run(&model, &settings)
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let done = batch::already_done(&req.output)?;
    let (jobs, skipped) = batch::list_jobs(&req, &done);
    let sink = Sink::open(&req.output)?;
    crate::interrupt::install().context("cannot install signal handlers")?;
    let progress = batch::progress_bar(req.chatter.quiet, jobs.len());
    let mut consumer = FeatureSink {
        dir,
        model: model.config.name.clone(),
        width,
        out: RecordOut::new(
            report::writer(
                Format::Jsonl,
                sink.out,
                Default::default(),
                &Default::default(),
            ),
            progress.clone(),
        ),
    };
    let prepare =
        pipeline::predict_prepare(model.config.clone(), settings.clips, settings.crops, None);
    let inputs = jobs.len();
    let stats = pipeline::run(
        jobs,
        prepare,
        &FeaturesOf(&model),
        &mut consumer,
        &settings.run,
    )?;
    progress.finish_and_clear();
    if stats.ending == Ending::ClosedPipe {
        return Ok(ExitCode::Success);
    }
    let summary = consumer.out.summary(inputs, skipped, &stats);
    batch::print_summary(&summary, req.chatter);
    Ok(ExitCode::from_failures(summary.failed > 0))
}

/// The `.npy` name for an input: its file stem (letters, digits, `.`, `-`, `_`; at most 80
/// characters) and the hash of its whole path, so equal names in different folders differ and
/// a rerun picks the same name.
pub fn npy_name(path: &str) -> String {
    let stem: String = Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default()
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '_',
        })
        .take(80)
        .collect();
    format!("{stem}-{:016x}.npy", fnv1a(path.as_bytes(), 0))
}

/// Mean of each unit's view features: one row per unit.
fn unit_rows(s: &Scored, width: usize) -> Result<Vec<Vec<f32>>> {
    s.units
        .iter()
        .map(|u| {
            let mut mean = vec![0f64; width];
            for row in &u.rows {
                if row.len() != width {
                    anyhow::bail!("features have width {}, expected {width}", row.len());
                }
                for (m, v) in mean.iter_mut().zip(row) {
                    *m += v;
                }
            }
            let n = u.rows.len().max(1) as f64;
            Ok(mean.into_iter().map(|m| (m / n) as f32).collect())
        })
        .collect()
}

/// The `embed` consumer: writes each video's `.npy` file and its index line, in input order.
pub struct FeatureSink {
    pub dir: PathBuf,
    pub model: String,
    /// Feature width D.
    pub width: usize,
    pub out: RecordOut,
}

impl FeatureSink {
    /// Writes the `.npy` file of one scored input and returns its index record.
    fn save(&self, s: Scored) -> Result<Features, FileError> {
        let fail = |e: anyhow::Error| FileError::new(s.path.clone(), Stage::Output, &e);
        let rows = unit_rows(&s, self.width).map_err(fail)?;
        let name = npy_name(&s.path);
        let data: Vec<f32> = rows.concat();
        {
            // A signal waits until the file is whole and in place.
            let _whole = crate::interrupt::writing();
            // The folder is this command's output: a file left by an earlier run is replaced
            // (a link at the name is replaced, never followed).
            let dest = self.dir.join(&name);
            write_npy(&dest, &data, &[rows.len(), self.width], Existing::Replace).map_err(fail)?;
        }
        Ok(Features {
            path: s.path.clone(),
            npy: name,
            shape: [rows.len(), self.width],
            model: self.model.clone(),
            windows: s
                .units
                .iter()
                .map(|u| u.window.unwrap_or(Window::new(0.0, s.duration)))
                .collect(),
            frame_times: s.units.iter().map(|u| u.frame_times.clone()).collect(),
            warnings: s.warnings.clone(),
        })
    }
}

impl Consumer for FeatureSink {
    fn take(&mut self, outcome: Outcome) -> Result<bool> {
        let record = match outcome.and_then(|s| self.save(s)) {
            Ok(f) => {
                self.out.counts.ok += 1;
                Record::Features(f)
            }
            Err(e) => self.out.failed(e),
        };
        self.out.write(&[record])
    }

    fn finish(&mut self) -> Result<bool> {
        self.out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_names_differ_for_equal_basenames() {
        let a = npy_name("x/clip.mp4");
        let b = npy_name("y/clip.mp4");
        assert_ne!(a, b);
        assert!(a.starts_with("clip-") && a.ends_with(".npy"), "{a}");
        assert_eq!(a, npy_name("x/clip.mp4"));
        assert!(npy_name("d/a b;c.mp4").starts_with("a_b_c-"));
        assert!(npy_name(&format!("{}.mp4", "n".repeat(300))).len() < 110);
    }

    #[test]
    fn rows_are_view_means() {
        use crate::pipeline::ScoredUnit;
        let unit = |rows: Vec<Vec<f64>>| ScoredUnit {
            window: None,
            rows,
            frame_times: vec![],
            clips: 1,
            padded: 0,
            thumbnails: vec![],
        };
        let s = Scored {
            path: "v".into(),
            duration: 1.0,
            warnings: vec![],
            units: vec![
                unit(vec![vec![1.0, 2.0], vec![3.0, 6.0]]),
                unit(vec![vec![0.5, -1.0]]),
            ],
            decode_ms: 0.0,
            preprocess_ms: 0.0,
            model_ms: 0.0,
        };
        assert_eq!(
            unit_rows(&s, 2).unwrap(),
            vec![vec![2.0, 4.0], vec![0.5, -1.0]]
        );
        assert!(unit_rows(&s, 3).is_err());
    }
}
