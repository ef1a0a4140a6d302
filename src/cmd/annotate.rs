//! `vidcls annotate IN -o OUT.mp4`: a copy of a video with the top labels of the moment drawn on
//! every frame.
//!
//! The labels come from `predict`'s own pipeline with windows (as `--timeline`): the same
//! decoding, sampling, preprocessing, model and aggregation. Each window's labels show over the
//! part of the video nearest to it (the rule segments use, `report::window_spans`). The overlay
//! stage then decodes the video again, draws them and encodes the copy.

use crate::atomic::{self, Existing};
use crate::cli::{self, AnnotateArgs, PredictArgs};
use crate::config::{self, Request};
use crate::decode::Video;
use crate::exit::ExitCode;
use crate::model::Model;
use crate::overlay::{self, Caption, Style};
use crate::pipeline::{self, Consumer, Labelling, Outcome};
use crate::report::{window_spans, FileError, Record, VideoResult, Window};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Runs `vidcls annotate`.
pub fn run(args: AnnotateArgs) -> Result<ExitCode> {
    tch::set_num_threads(config::cores() as i32);
    check_paths(&args)?;
    let req = Request::from_args(predict_args(&args))?;
    let model = crate::cmd::batch::load_model(&req)?;
    let settings = req.settings(&model);
    let windows = match label_windows(&args.input, &model, &settings)? {
        Ok(w) => w,
        Err(e) => {
            eprintln!("vidcls: {}", e.shown());
            return Ok(ExitCode::from_failures(true));
        }
    };
    let rotation = Video::open(&args.input)?.meta().rotation;
    let style = Style {
        font: args.font.clone(),
        crf: args.crf,
    };
    crate::interrupt::install().context("cannot install signal handlers")?;
    let existing = Existing::replace_if(args.force);
    let written = atomic::write_with(&args.output, existing, |_, tmp| {
        overlay::annotate(&args.input, tmp, &captions(&windows), rotation, &style)
    })
    .with_context(|| format!("cannot annotate {}", args.input.display()))?;
    if !args.chatter.quiet {
        eprintln!(
            "vidcls: wrote {}: {} frames, {} window(s){}",
            args.output.display(),
            written.frames,
            windows.len(),
            if written.audio { ", audio copied" } else { "" }
        );
    }
    Ok(ExitCode::Success)
}

/// The output may be written and the font exists.
fn check_paths(a: &AnnotateArgs) -> Result<()> {
    atomic::check_dest(&a.output, Existing::replace_if(a.force))?;
    if !a.font.is_file() {
        bail!(
            "--font {}: no such file (Debian's fonts-dejavu-core has the default)",
            a.font.display()
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

/// `annotate`'s flags as the `predict` flags they share, so both are checked and mapped by the
/// same code (`config::Request`): windows as with `--timeline`.
fn predict_args(a: &AnnotateArgs) -> PredictArgs {
    PredictArgs {
        model: a.model.clone(),
        device: a.device.clone(),
        format: cli::Format::Jsonl,
        top_k: a.top_k,
        force: a.force,
        views: a.views.clone(),
        precision: a.precision,
        run: a.run.clone(),
        timeline: true,
        window: a.window,
        hop: a.hop,
        chatter: a.chatter.clone(),
        source: a.source.clone(),
        ..PredictArgs::defaults(vec![a.input.clone()])
    }
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
