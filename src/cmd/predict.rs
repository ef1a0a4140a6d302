//! `vidcls predict`: label each input with the model's top classes (or windows, segments).

use super::batch::{
    already_done, describe_run, list_jobs, load_model, print_summary, progress_bar,
};
use crate::config::{self, Request};
use crate::exit::ExitCode;
use crate::model;
use crate::pipeline::{self, Ending, RecordOut, RecordSink};
use crate::report;
use crate::sink::Sink;
use anyhow::{Context, Result};
use std::io::IsTerminal;

pub fn run(req: Request) -> Result<ExitCode> {
    tch::set_num_threads(config::cores() as i32);
    let model = load_model(&req.model, req.chatter.verbose)?;
    let settings = req.settings(&model);
    if req.chatter.verbose {
        eprintln!("vidcls: {}", describe_run(&model, &settings));
    }
    if let Some(dir) = &settings.dump_inputs {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let done = already_done(&req.output)?;
    let (jobs, skipped) = list_jobs(&req, &done);
    req.output.format.check_inputs(jobs.len())?;
    let sink = Sink::open(&req.output)?;
    crate::interrupt::install().context("cannot install signal handlers")?;
    let progress = progress_bar(req.chatter.quiet, jobs.len());
    let about = report::About {
        model: model.config.name.clone(),
        precision: model.precision.name().to_string(),
        device: crate::model::device_name(model.device),
    };
    let csv = report::CsvOptions {
        header_done: done.has_header,
        cells: req.output.csv_cells,
    };
    let writer = report::writer(req.output.format, sink.out, csv, &about);
    let mut consumer = RecordSink {
        labelling: settings.labelling.clone(),
        out: RecordOut::new(writer, progress.clone()),
    };
    let prepare = pipeline::predict_prepare(
        model.config.clone(),
        settings.clips.clone(),
        settings.crops,
        settings.dump_inputs.clone(),
    );
    let inputs = jobs.len();
    let stats = pipeline::run(jobs, prepare, &model, &mut consumer, &settings.run)?;
    progress.finish_and_clear();
    Sink::commit(sink.rename)?;
    if stats.ending == Ending::ClosedPipe {
        return Ok(ExitCode::Success);
    }
    let summary = consumer.out.summary(inputs, skipped, &stats);
    print_summary(&summary, req.chatter);
    if model.source == model::ModelSource::BuiltIn && !req.chatter.quiet {
        builtin_hint();
    }
    Ok(ExitCode::from_failures(summary.failed > 0))
}

/// The built-in model knows eight synthetic motions; someone reading its labels on a terminal
/// learns, in one line, where real ones come from.
fn builtin_hint() {
    if std::io::stderr().is_terminal() {
        eprintln!(
            "vidcls: the built-in model knows 8 synthetic motions; for real actions: \
             vidcls models pull r2plus1d_18 && vidcls predict -m r2plus1d_18 ..."
        );
    }
}
