//! `vidcls annotate IN -o OUT.mp4`: a copy of a video with the top labels of the moment drawn on
//! every frame.
//!
//! The labels come from `predict`'s own pipeline with windows (as `--timeline`): the same
//! decoding, sampling, preprocessing, model and aggregation. Each window's labels show over the
//! part of the video nearest to it (the rule segments use, `report::window_spans`). The overlay
//! stage then decodes the video again, draws them and encodes the copy.

use crate::atomic::{self, Existing};
use crate::config::{self, AnnotatePlan};
use crate::decode::Video;
use crate::exit::ExitCode;
use crate::model::Model;
use crate::overlay::{self, Caption};
use crate::pipeline::{self, Consumer, Labelling, Outcome};
use crate::report::{window_spans, FileError, Record, VideoResult, Window};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Runs `vidcls annotate`.
pub fn run(plan: AnnotatePlan) -> Result<ExitCode> {
    tch::set_num_threads(config::cores() as i32);
    check_paths(&plan)?;
    let req = &plan.request;
    let model = crate::cmd::batch::load_model(&req.model, req.chatter.verbose)?;
    let settings = req.settings(&model);
    let windows = match label_windows(&plan.input, &model, &settings)? {
        Ok(w) => w,
        Err(e) => {
            eprintln!("vidcls: {}", e.shown());
            return Ok(ExitCode::from_failures(true));
        }
    };
    let rotation = Video::open_under(&plan.input, &req.access)?.meta().rotation;
    crate::interrupt::install().context("cannot install signal handlers")?;
    let existing = Existing::replace_if(plan.force);
    let captions = captions(&windows);
    let written = atomic::write_with(&plan.output, existing, |_, tmp| {
        overlay::annotate(
            &plan.input,
            tmp,
            &captions,
            rotation,
            &plan.style,
            &req.access,
        )
    })
    .with_context(|| format!("cannot annotate {}", plan.input.display()))?;
    if !req.chatter.quiet {
        eprintln!(
            "vidcls: wrote {}: {} frames, {} window(s){}",
            plan.output.display(),
            written.frames,
            windows.len(),
            if written.audio { ", audio copied" } else { "" }
        );
    }
    Ok(ExitCode::Success)
}

/// The output may be written and the font exists.
fn check_paths(p: &AnnotatePlan) -> Result<()> {
    atomic::check_dest(&p.output, Existing::replace_if(p.force))?;
    if !p.style.font.is_file() {
        bail!(
            "--font {}: no such file (Debian's fonts-dejavu-core has the default)",
            p.style.font.display()
        );
    }
    Ok(())
}

/// Each window's record (top labels), from `predict`'s pipeline, or the input's error.
fn label_windows(
    input: &Path,
    model: &Model,
    settings: &config::Settings,
) -> Result<std::result::Result<Vec<VideoResult>, FileError>> {
    let prepare = pipeline::predict_prepare(
        model.config.clone(),
        settings.clips.clone(),
        settings.crops,
        None,
    );
    let mut keep = Keep {
        labelling: settings.labelling.clone(),
        got: None,
    };
    let jobs = vec![Ok(input.to_path_buf())];
    pipeline::run(jobs, prepare, model, &mut keep, &settings.run)?;
    let records = keep.got.context("the pipeline returned no result")?;
    Ok(records.map(|recs| {
        recs.into_iter()
            .filter_map(|r| match r {
                Record::Ok(v) => Some(v),
                _ => None,
            })
            .collect()
    }))
}

/// Keeps the one input's records.
struct Keep {
    labelling: Labelling,
    got: Option<std::result::Result<Vec<Record>, FileError>>,
}

impl Consumer for Keep {
    fn take(&mut self, outcome: Outcome) -> Result<bool> {
        self.got = Some(outcome.map(|s| self.labelling.records(s)));
        Ok(true)
    }

    fn finish(&mut self) -> Result<bool> {
        Ok(true)
    }
}

/// A caption per window ("label 97%", several joined by " | "), from the start of the part
/// of the video nearest to it.
fn captions(windows: &[VideoResult]) -> Vec<Caption> {
    let spans: Vec<Window> = windows.iter().filter_map(|v| v.window).collect();
    window_spans(&spans)
        .into_iter()
        .zip(windows)
        .map(|(span, v)| Caption {
            start: span.start,
            text: caption_text(v),
        })
        .collect()
}

fn caption_text(v: &VideoResult) -> String {
    let labels: Vec<String> = v
        .top_k
        .iter()
        .map(|p| format!("{} {:.0}%", p.label, p.score * 100.0))
        .collect();
    labels.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Prediction;

    fn window(start: f64, end: f64, label: &str, score: f64) -> VideoResult {
        VideoResult {
            path: "v".into(),
            model: "m".into(),
            top_k: vec![Prediction {
                label: label.into(),
                index: 0,
                score,
            }],
            clips: 1,
            crops: 1,
            duration: 4.0,
            window: Some(Window::new(start, end)),
            frame_times: vec![],
            padded_frames: 0,
            warnings: vec![],
            scores: None,
            timings: Default::default(),
            thumbnails: vec![],
            ran: None,
            label_set: None,
        }
    }

    #[test]
    fn captions_start_where_windows_become_nearest() {
        // Overlapping 2-s windows every second: each takes over halfway through the overlap.
        let w = [
            window(0.0, 2.0, "a", 0.5),
            window(1.0, 3.0, "b", 0.966),
            window(2.0, 4.0, "c", 1.0),
        ];
        let got: Vec<(f64, String)> = captions(&w)
            .into_iter()
            .map(|c| (c.start, c.text))
            .collect();
        assert_eq!(
            got,
            vec![
                (0.0, "a 50%".to_string()),
                (1.5, "b 97%".to_string()),
                (2.5, "c 100%".to_string())
            ]
        );
    }

    #[test]
    fn several_labels_share_a_caption() {
        let mut v = window(0.0, 1.0, "zoom_in", 0.9);
        v.top_k.push(Prediction {
            label: "move_up".into(),
            index: 1,
            score: 0.05,
        });
        assert_eq!(caption_text(&v), "zoom_in 90% | move_up 5%");
    }
}
