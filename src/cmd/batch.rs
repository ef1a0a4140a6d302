//! The steps every command that labels a batch of inputs shares (predict, embed, annotate,
//! watch): loading the model with `--precision auto`'s fallback, resuming, listing the jobs,
//! progress and the closing summary.

use crate::config::{self, ModelPlan, Request};
use crate::inputs::{self, Input};
use crate::model::{self, Model};
use crate::pipeline::Job;
use crate::report::{resume, FileError, RunSummary, Stage};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Loads the requested model. A reduced precision that `--precision auto` chose but the graph
/// cannot run on this device (a missing kernel) gives way to fp32, so auto never fails where
/// fp32 works; an explicit `--precision` fails with a hint instead.
pub fn load_model(plan: &ModelPlan, verbose: bool) -> Result<Model> {
    let precision = plan.load.precision;
    match Model::load(plan.source.clone(), &plan.load) {
        Ok(model) => Ok(model),
        Err(e) if precision == model::Precision::Fp32 => Err(e),
        Err(e) if plan.auto_precision => {
            if verbose {
                eprintln!(
                    "vidcls: --precision auto: {} does not run here ({e:#}); using fp32",
                    precision.name()
                );
            }
            let fp32 = model::LoadOptions {
                precision: model::Precision::Fp32,
                ..plan.load.clone()
            };
            Model::load(plan.source.clone(), &fp32)
        }
        Err(e) => Err(e.context(format!(
            "--precision {} (--precision fp32 works everywhere)",
            precision.name()
        ))),
    }
}

/// What `-v` says: model, device, precision, threads and sampling.
pub fn describe_run(model: &Model, s: &config::Settings) -> String {
    let spec = &s.clips.spec;
    format!(
        "model {} ({}, {}) on {:?}, {}{}; {} decode thread(s), {} torch thread(s); batch {}{}; {} frames x {} at {} fps, stride {}",
        model.config.name,
        model.config.architecture,
        model.origin(),
        model.device,
        model.precision.name(),
        if s.auto.0 { " (auto)" } else { "" },
        s.run.threads,
        tch::get_num_threads(),
        s.run.batch_size,
        if s.auto.1 { " (auto)" } else { "" },
        spec.frames,
        model.config.crop,
        spec.fps.map_or("native".to_string(), |f| f.to_string()),
        spec.stride
    )
}

/// The inputs an earlier run's output already holds (when resuming).
pub fn already_done(o: &config::Output) -> Result<resume::Done> {
    match (&o.path, o.resume) {
        (Some(out), true) => {
            resume::scan(out, o.format, o.retry_failed, o.csv_cells).context("--resume")
        }
        _ => Ok(resume::Done::default()),
    }
}

/// The inputs of this run in output order (sharded, less those already done), and how many
/// were skipped as done.
pub fn list_jobs(req: &Request, done: &resume::Done) -> (Vec<Job>, usize) {
    let listed = inputs::expand(&req.inputs, req.follow_links, &mut std::io::stdin().lock());
    let mut skipped = 0;
    let jobs = listed
        .into_iter()
        .filter(|i| req.shard.is_none_or(|s| s.contains(i.path())))
        .filter(|i| {
            let seen = done.paths.contains(i.path().to_string_lossy().as_ref());
            skipped += seen as usize;
            !seen
        })
        .map(|i| match i {
            Input::Video(p) => Ok(p),
            Input::Unlistable { path, error } => Err(FileError {
                path: path.to_string_lossy().into_owned(),
                stage: Stage::Input,
                error,
            }),
        })
        .collect();
    (jobs, skipped)
}

/// A bar on stderr when it is a terminal and the run is not quiet; hidden otherwise.
pub fn progress_bar(quiet: bool, len: usize) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} videos  {per_sec}  ETA {eta}  {wide_msg}",
        )
        .expect("valid template"),
    );
    pb
}

pub fn print_summary(summary: &RunSummary, chatter: config::Chatter) {
    if chatter.summary_json {
        eprintln!("{}", summary.json());
    } else if !chatter.quiet {
        eprintln!("vidcls: {}", summary.prose());
    }
}
