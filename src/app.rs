//! The `vidcls` command: parses flags, runs a subcommand, maps the outcome to an exit code
//! (0 all inputs done, 1 some inputs failed, 2 usage or fatal error).

use crate::cli::{Cli, Command, PredictArgs, ProbeArgs};
use crate::config::{self, Request};
use crate::decode::{probe, VideoMeta};
use crate::exit::ExitCode;
use crate::inputs::{self, Input};
use crate::model::{self, Model};
use crate::pipeline::{self, Ending, Job, RecordOut, RecordSink};
use crate::report::{self, escape, resume, FileError, RunSummary, Stage};
use crate::sink::Sink;
use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::{IsTerminal, Write};

/// Entry point of the binary.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::Success,
        Err(err) => {
            eprintln!("vidcls: {}", error_text(&err));
            ExitCode::Fatal
        }
    };
    code.into()
}

/// `{err:#}` for stderr: each message of the chain escaped for a terminal (names in it cannot
/// start lines or send escape sequences), except that libtorch's reports keep their line breaks.
pub(crate) fn error_text(err: &anyhow::Error) -> String {
    let shown = |c: &(dyn std::error::Error + 'static)| {
        let text = c.to_string();
        if c.is::<tch::TchError>() {
            escape::terminal_lines(&text)
        } else {
            escape::terminal(&text).into_owned()
        }
    };
    err.chain().map(shown).collect::<Vec<_>>().join(": ")
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let pipe = Some(std::io::ErrorKind::BrokenPipe);
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().map(|e| e.kind()) == pipe
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|e| e.io_error_kind())
                == pipe
    })
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    if let Some(source) = source_args(&cli.command) {
        crate::decode::set_access(config::access(source)?);
    }
    match cli.command {
        Command::Predict(args) => predict(*args),
        Command::Train(args) => train(&args),
        Command::Embed(args) => crate::embed::run(*args),
        Command::Annotate(args) => crate::annotate::run(*args),
        Command::Watch(args) => crate::watch::run(*args),
        Command::Probe(args) => probe_cmd(args),
        Command::Models(args) => crate::cmd::models::run(args),
        Command::Version => {
            println!("{}", crate::version::collect());
            Ok(ExitCode::Success)
        }
        Command::Completions(args) => crate::dist::completions_cmd(args),
        Command::Man(args) => crate::dist::man_cmd(args),
    }
}

/// The flags of the commands that open inputs, which say what opening may do.
fn source_args(command: &Command) -> Option<&crate::cli::SourceArgs> {
    match command {
        Command::Predict(a) => Some(&a.source),
        Command::Embed(a) => Some(&a.source),
        Command::Annotate(a) => Some(&a.source),
        Command::Probe(a) => Some(&a.source),
        _ => None,
    }
}

fn predict(args: PredictArgs) -> Result<ExitCode> {
    tch::set_num_threads(config::cores() as i32);
    let req = Request::from_args(args)?;
    let model = load_model(&req)?;
    let settings = req.settings(&model);
    if req.chatter.verbose {
        eprintln!("vidcls: {}", describe_run(&model, &settings));
    }
    if let Some(dir) = &settings.dump_inputs {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let done = already_done(&req.output)?;
    let (jobs, skipped) = list_jobs(&req, &done);
    if req.output.format.is_subtitles() && jobs.len() > 1 {
        anyhow::bail!(
            "subtitles hold one video's segments, and {} inputs were given: run once per video",
            jobs.len()
        );
    }
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

fn train(args: &crate::cli::TrainArgs) -> Result<ExitCode> {
    let threads = args.threads.map_or_else(config::cores, |t| t as usize);
    tch::set_num_threads(threads as i32);
    let options = config::train_options(args)?;
    match crate::train::run(&options)? {
        crate::train::Ended::Complete => {
            if !args.quiet {
                eprintln!(
                    "vidcls: wrote {} (use it with: vidcls predict -m {} VIDEOS)",
                    options.out.display(),
                    options.out.display()
                );
            }
            Ok(ExitCode::Success)
        }
        crate::train::Ended::Interrupted(sig) => Ok(ExitCode::Signal(sig)),
    }
}

/// Loads the requested model. A reduced precision that `--precision auto` chose but the graph
/// cannot run on this device (a missing kernel) gives way to fp32, so auto never fails where
/// fp32 works; an explicit `--precision` fails with a hint instead.
pub(crate) fn load_model(req: &Request) -> Result<Model> {
    let precision = req.load.precision;
    match Model::load(req.model.clone(), &req.load) {
        Ok(model) => Ok(model),
        Err(e) if precision == model::Precision::Fp32 => Err(e),
        Err(e) if req.auto_precision => {
            if req.chatter.verbose {
                eprintln!(
                    "vidcls: --precision auto: {} does not run here ({e:#}); using fp32",
                    precision.name()
                );
            }
            let fp32 = model::LoadOptions {
                precision: model::Precision::Fp32,
                ..req.load.clone()
            };
            Model::load(req.model.clone(), &fp32)
        }
        Err(e) => Err(e.context(format!(
            "--precision {} (--precision fp32 works everywhere)",
            precision.name()
        ))),
    }
}

/// What `-v` says: model, device, precision, threads and sampling.
pub(crate) fn describe_run(model: &Model, s: &config::Settings) -> String {
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
pub(crate) fn already_done(o: &config::Output) -> Result<resume::Done> {
    match (&o.path, o.resume) {
        (Some(out), true) => {
            resume::scan(out, o.format, o.retry_failed, o.csv_cells).context("--resume")
        }
        _ => Ok(resume::Done::default()),
    }
}

/// The inputs of this run in output order (sharded, less those already done), and how many
/// were skipped as done.
pub(crate) fn list_jobs(req: &Request, done: &resume::Done) -> (Vec<Job>, usize) {
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
pub(crate) fn progress_bar(quiet: bool, len: usize) -> ProgressBar {
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

pub(crate) fn print_summary(summary: &RunSummary, chatter: config::Chatter) {
    if chatter.summary_json {
        eprintln!("{}", summary.json());
    } else if !chatter.quiet {
        eprintln!("vidcls: {}", summary.prose());
    }
}

#[derive(Serialize)]
struct Probed<'a> {
    path: String,
    #[serde(flatten)]
    meta: &'a VideoMeta,
}

#[derive(Serialize)]
struct ProbeError {
    path: String,
    error: String,
}

fn probe_cmd(args: ProbeArgs) -> Result<ExitCode> {
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for p in &args.inputs {
        let path = p.to_string_lossy().into_owned();
        let line = match probe(p, args.count) {
            Ok(meta) => serde_json::to_string(&Probed { path, meta: &meta })?,
            Err(e) => {
                failed = true;
                eprintln!("vidcls: {}", error_text(&e));
                serde_json::to_string(&ProbeError {
                    path,
                    error: format!("{e:#}"),
                })?
            }
        };
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::from_failures(failed))
}
