//! The `vidcls` command: parses flags, runs a subcommand, maps the outcome to an exit code
//! (0 all inputs done, 1 some inputs failed, 2 usage or fatal error).

use crate::cli::{Cli, Command, Format, ModelsArgs, PredictArgs, ProbeArgs};
use crate::decode::{probe, VideoMeta};
use crate::inputs::{self, Input, Shard};
use crate::model::{self, Model, ModelSource};
use crate::pipeline::{self, Job};
use crate::report::{resume, FileError, Writer};
use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("vidcls: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    ffmpeg_next::init().context("cannot initialise FFmpeg")?;
    match cli.command {
        Command::Predict(args) => predict(*args),
        Command::Probe(args) => probe_cmd(args),
        Command::Models(args) => models_cmd(args),
        Command::Version => {
            println!("{}", crate::version::collect());
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions(args) => crate::dist::completions_cmd(args),
        Command::Man(args) => crate::dist::man_cmd(args),
    }
}

/// Where results go: stdout, a file, or (JSON to a file) a temporary file renamed at the end.
struct Sink {
    out: Box<dyn Write + Send>,
    rename: Option<(PathBuf, PathBuf)>,
    header_done: bool,
}

fn open_sink(args: &PredictArgs, header_done: bool) -> Result<Sink> {
    let Some(path) = &args.output else {
        return Ok(Sink {
            out: Box::new(std::io::stdout()),
            rename: None,
            header_done: false,
        });
    };
    if args.resume {
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("cannot open {} for appending", path.display()))?;
        return Ok(Sink {
            out: Box::new(f),
            rename: None,
            header_done,
        });
    }
    if path.exists() && !args.force {
        bail!(
            "{} exists: use --force to overwrite it or --resume to continue it",
            path.display()
        );
    }
    if args.format == Format::Json {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        return Ok(Sink {
            out: Box::new(f),
            rename: Some((tmp, path.clone())),
            header_done: false,
        });
    }
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Sink {
        out: Box::new(f),
        rename: None,
        header_done: false,
    })
}

fn predict(args: PredictArgs) -> Result<ExitCode> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    tch::set_num_threads(cores as i32);
    let shard: Option<Shard> = args.shard.as_deref().map(str::parse).transpose()?;
    let source = model::resolve(args.model.as_deref())?;
    let device = model::parse_device(&args.device)?;
    let model = Model::load(
        source,
        device,
        args.precision,
        args.frames.map(|f| f as usize),
    )?;
    let settings = crate::config::settings(&args, &model.config)?;
    if args.verbose {
        let from = match &model.source {
            ModelSource::BuiltIn => "built in".to_string(),
            ModelSource::Files { weights, .. } => weights.display().to_string(),
        };
        eprintln!(
            "vidcls: model {} ({}, {}) on {:?}, {:?}; {} decode thread(s), {} torch thread(s); {} frames x {} at {} fps, stride {}",
            model.config.name,
            model.config.architecture,
            from,
            model.device,
            args.precision,
            settings.threads,
            tch::get_num_threads(),
            settings.spec.frames,
            model.config.crop,
            settings.spec.fps.map_or("native".to_string(), |f| f.to_string()),
            settings.spec.stride
        );
    }
    if let Some(dir) = &settings.dump_inputs {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }

    let listed = inputs::expand(&args.inputs, args.follow, &mut std::io::stdin().lock());
    let done = match (&args.output, args.resume) {
        (Some(out), true) => resume::scan(out, args.format)?,
        _ => resume::Done::default(),
    };
    let mut skipped = 0;
    let jobs: Vec<Job> = listed
        .into_iter()
        .filter(|i| shard.is_none_or(|s| s.contains(i.path())))
        .filter(|i| {
            let seen = done.paths.contains(i.path().to_string_lossy().as_ref());
            skipped += seen as usize;
            !seen
        })
        .map(|i| match i {
            Input::Video(p) => Ok(p),
            Input::Unlistable { path, error } => Err(FileError {
                path: path.to_string_lossy().into_owned(),
                stage: "input".into(),
                error,
            }),
        })
        .collect();

    let sink = open_sink(&args, done.has_header)?;
    crate::interrupt::remove_on_interrupt(sink.rename.as_ref().map(|(tmp, _)| tmp.clone()));
    crate::interrupt::install().context("cannot install signal handlers")?;
    let writer = Writer::new(args.format, sink.out, sink.header_done);
    let progress = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let pb =
            ProgressBar::with_draw_target(Some(jobs.len() as u64), ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} videos  {per_sec}  ETA {eta}  {wide_msg}",
            )
            .expect("valid template"),
        );
        pb
    };
    let stats = pipeline::run(jobs, &model, &settings, writer, progress.clone())?;
    progress.finish_and_clear();
    if let Some((tmp, dest)) = sink.rename {
        std::fs::rename(&tmp, &dest)
            .with_context(|| format!("cannot move results to {}", dest.display()))?;
    }
    if stats.closed_pipe {
        return Ok(ExitCode::SUCCESS);
    }
    if !args.quiet {
        let secs = stats.elapsed.as_secs_f64().max(1e-9);
        let resumed = if skipped > 0 {
            format!(", {skipped} already done")
        } else {
            String::new()
        };
        eprintln!(
            "vidcls: {} input(s): {} classified, {} failed{resumed}; {} record(s), {} view(s) in {:.1} s ({:.2} videos/s, {:.2} views/s)",
            stats.inputs,
            stats.ok,
            stats.failed,
            stats.records,
            stats.views,
            secs,
            stats.ok as f64 / secs,
            stats.views as f64 / secs
        );
    }
    Ok(if stats.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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
                eprintln!("vidcls: {e:#}");
                serde_json::to_string(&ProbeError {
                    path,
                    error: format!("{e:#}"),
                })?
            }
        };
        writeln!(out, "{line}")?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Serialize)]
struct ModelRow {
    name: String,
    architecture: String,
    frames: usize,
    size: u32,
    min_frames: usize,
    variable_frames: bool,
    parameters: Option<u64>,
    label_set: String,
    classes: usize,
    file: String,
    file_bytes: Option<u64>,
    weights: String,
}

fn models_cmd(args: ModelsArgs) -> Result<ExitCode> {
    let rows: Vec<ModelRow> = model::available()
        .into_iter()
        .map(|l| {
            let (file, bytes) = match &l.weights {
                None => (
                    "(built in)".to_string(),
                    Some(model::builtin::WEIGHTS.len() as u64),
                ),
                Some(p) => (
                    p.display().to_string(),
                    std::fs::metadata(p).ok().map(|m| m.len()),
                ),
            };
            ModelRow {
                name: l.config.name.clone(),
                architecture: l.config.architecture.clone(),
                frames: l.config.frames,
                size: l.config.crop,
                min_frames: l.config.min_frames,
                variable_frames: l.config.variable_frames,
                parameters: l.config.parameters,
                label_set: l.config.label_set.clone(),
                classes: l.config.labels.len(),
                file,
                file_bytes: bytes,
                weights: l.config.weights.source.clone(),
            }
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.architecture.clone(),
                format!("{}x{}", r.frames, r.size),
                r.parameters
                    .map_or("?".into(), |p| format!("{:.1}M", p as f64 / 1e6)),
                format!("{} ({})", r.label_set, r.classes),
                r.file_bytes
                    .map_or("missing".into(), |b| format!("{:.1} MB", b as f64 / 1e6)),
                r.weights.clone(),
            ]
        })
        .collect();
    let head = [
        "NAME",
        "ARCHITECTURE",
        "FRAMESxSIZE",
        "PARAMS",
        "LABELS",
        "FILE",
        "WEIGHTS",
    ]
    .map(String::from);
    let mut widths = [0usize; 7];
    for row in std::iter::once(&head).chain(&table) {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in std::iter::once(&head).chain(&table) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    if rows.iter().any(|r| r.file_bytes.is_none()) {
        writeln!(
            out,
            "\nmissing model files are made by scripts/export_models.py"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
