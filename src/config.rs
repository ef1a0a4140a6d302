//! The face: flags -> the stages' own values, validated in one place (as ripgrep's `HiArgs`
//! and fd's `Config`). Two steps, because some defaults come from the model: [`Request`] before
//! the model loads, [`Settings`] after.

use crate::cli::{self, PredictArgs, TrainArgs};
use crate::decode::SamplingSpec;
use crate::inputs::Shard;
use crate::model::{self, Aggregate, LoadOptions, ModelSource, Precision};
use crate::pipeline::{ClipSettings, Labelling, RunSettings, WindowSpec};
use crate::report::{CsvCells, Format, Ran, SegmentRules, ThumbSpec};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Upper bounds of the counts flags drive, so that no flag value makes a run take memory or
/// time without end (docs/ARCHITECTURE.md, "Memory per input"). clap checks the integer flags
/// against them (each flag's help states its bound; `cli::tests::help_states_the_bounds`
/// keeps the two equal), [`Request`] and `watch` the others. Generous for real use.
pub mod limits {
    /// `--clips`: clips per video or window.
    pub const CLIPS: u32 = 256;
    /// `--frames`: frames per clip.
    pub const FRAMES: u32 = 256;
    /// `--stride`.
    pub const STRIDE: u32 = 1000;
    /// `--fps`: the sampling rate.
    pub const FPS: f64 = 1000.0;
    /// `--top-k`.
    pub const TOP_K: u16 = 1000;
    /// `--batch-size` (views per forward pass; clips per step in `train`).
    pub const BATCH_SIZE: u32 = 1024;
    /// `--threads`.
    pub const THREADS: u32 = 256;
    /// `--max-pixels`: 16384 x 16384.
    pub const PIXELS: u64 = 1 << 28;
    /// `--max-windows`: windows per input, and its default.
    pub const WINDOWS: u64 = 1_000_000;
    pub const DEFAULT_WINDOWS: u64 = 10_000;
    /// Windows per second of video: `--hop` at least its inverse.
    pub const WINDOWS_PER_SECOND: f64 = 100.0;
    /// Any number of seconds (`--timeout`, `--window`, `--time-limit`, `--duration`, ...): a
    /// year.
    pub const SECONDS: f64 = 366.0 * 86400.0;
    /// `watch`: frames a window keeps (`--window` x the sampling rate).
    pub const WATCH_FRAMES: f64 = 1000.0;
    /// `train --epochs`.
    pub const EPOCHS: u32 = 100_000;
    /// `train --cache-mb`: 1 TiB.
    pub const CACHE_MB: u64 = 1 << 20;
    /// Bytes of views an input's worker may hold ready before the model takes them (at least
    /// one batch's worth).
    pub const AHEAD_BYTES: usize = 64 << 20;
}

/// A number of seconds: positive, finite and at most [`limits::SECONDS`].
pub fn seconds(flag: &str, v: f64) -> Result<f64> {
    positive(flag, v, " of seconds")?;
    if v > limits::SECONDS {
        bail!(
            "{flag} {}: at most {} seconds (a year)",
            shown(v),
            limits::SECONDS
        );
    }
    Ok(v)
}

/// A flag's number as given, short (1e300, not three hundred digits).
fn shown(v: f64) -> String {
    if v.abs() >= 1e9 {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

impl From<cli::Format> for Format {
    fn from(f: cli::Format) -> Format {
        match f {
            cli::Format::Text => Format::Text,
            cli::Format::Json => Format::Json,
            cli::Format::Jsonl => Format::Jsonl,
            cli::Format::Csv => Format::Csv,
            cli::Format::Srt => Format::Srt,
            cli::Format::Vtt => Format::Vtt,
            cli::Format::Html => Format::Html,
        }
    }
}

/// `--precision`: a fixed one, or `auto` resolved for this model (its config's export-time
/// record) on this device (`model::auto_precision`).
fn precision(p: cli::Precision, source: &ModelSource, device: tch::Device) -> Result<Precision> {
    Ok(match p {
        cli::Precision::Auto => {
            let cfg = model::read_config(source)?;
            model::auto_precision(&cfg, device, model::cpu_has_native_bf16())
        }
        cli::Precision::Fp32 => Precision::Fp32,
        cli::Precision::Bf16 => Precision::Bf16,
        cli::Precision::Fp16 => Precision::Fp16,
    })
}

impl From<cli::Aggregate> for Aggregate {
    fn from(a: cli::Aggregate) -> Aggregate {
        match a {
            cli::Aggregate::Prob => Aggregate::Prob,
            cli::Aggregate::Logit => Aggregate::Logit,
            cli::Aggregate::Max => Aggregate::Max,
        }
    }
}

/// Decode workers by default: one per core. A worker waits while the runner is a few inputs
/// behind, so with a slow model they cost memory, not time; with a fast one decoding is the
/// whole cost and every core decodes (docs/BENCHMARKS.md, the defaults section).
pub fn default_threads() -> usize {
    cores().max(1)
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chatter {
    /// Progress bar and prose summary.
    pub quiet: bool,
    pub verbose: bool,
    pub summary_json: bool,
}

/// Everything `predict` needs before the model is loaded.
#[derive(Debug, Clone)]
pub struct Request {
    pub model: ModelSource,
    pub load: LoadOptions,
    pub inputs: Vec<PathBuf>,
    pub follow_links: bool,
    pub shard: Option<Shard>,
    pub output: Output,
    pub chatter: Chatter,
    /// `--precision auto` chose `load.precision` (so fp32 may stand in if it fails to load).
    pub auto_precision: bool,
    args: PredictArgs,
}

/// Everything `predict` needs once the model is known.
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

fn positive(flag: &str, v: f64, unit: &str) -> Result<f64> {
    if !(v.is_finite() && v > 0.0) {
        bail!("{flag} {v}: must be a positive number{unit}");
    }
    Ok(v)
}

/// `--fps`: positive, at most [`limits::FPS`].
pub fn fps(v: f64) -> Result<f64> {
    positive("--fps", v, "")?;
    if v > limits::FPS {
        bail!(
            "--fps {}: at most {} frames per second",
            shown(v),
            limits::FPS
        );
    }
    Ok(v)
}

/// `--hop`: seconds, at most [`limits::WINDOWS_PER_SECOND`] windows a second.
pub fn hop(v: f64) -> Result<f64> {
    seconds("--hop", v)?;
    let least = 1.0 / limits::WINDOWS_PER_SECOND;
    if v < least {
        bail!(
            "--hop {v}: at most {} windows a second (use --hop {least} or more)",
            limits::WINDOWS_PER_SECOND
        );
    }
    Ok(v)
}

/// Views an input's worker may hold ready: [`limits::AHEAD_BYTES`] of them (float32 C x T x
/// crop x crop), at least one batch.
fn views_ahead(model: &model::Model, batch_size: usize) -> usize {
    let view_bytes = 3 * model.frames * model.config.crop as usize * model.config.crop as usize * 4;
    (limits::AHEAD_BYTES / view_bytes.max(1))
        .max(batch_size)
        .max(1)
}

impl Request {
    pub fn from_args(args: PredictArgs) -> Result<Request> {
        if let Some(f) = args.views.fps {
            fps(f)?;
        }
        seconds("--timeout", args.run.timeout)?;
        window_spec(&args)?;
        segment_rules(&args)?;
        check_page_destination(&args)?;
        if args.csv_raw && args.format != cli::Format::Csv {
            bail!("--csv-raw: only with -f csv");
        }
        let shard = args.shard.as_deref().map(str::parse).transpose()?;
        let model = model::resolve(args.model.as_deref())?;
        let device = model::parse_device(&args.device).context("--device")?;
        let precision = precision(args.precision, &model, device)?;
        Ok(Request {
            model,
            auto_precision: args.precision == cli::Precision::Auto,
            load: LoadOptions {
                device,
                precision,
                frames: args.views.frames.map(|f| f as usize),
            },
            inputs: args.inputs.clone(),
            follow_links: args.follow,
            shard,
            output: Output {
                path: args.output.clone(),
                format: args.format.into(),
                force: args.force,
                resume: args.resume,
                retry_failed: args.retry_failed,
                csv_cells: if args.csv_raw {
                    CsvCells::Raw
                } else {
                    CsvCells::Neutralised
                },
            },
            chatter: Chatter {
                quiet: args.chatter.quiet,
                verbose: args.chatter.verbose,
                summary_json: args.chatter.summary_json,
            },
            args,
        })
    }

    /// The run's settings for a loaded model (its sampling, unless flags override it).
    pub fn settings(&self, model: &model::Model) -> Settings {
        let (a, cfg) = (&self.args, &model.config);
        let spec = SamplingSpec {
            frames: model.frames,
            fps: a.views.fps.or(cfg.sampling.fps),
            stride: a
                .views
                .stride
                .map_or(cfg.sampling.stride, |s| s as usize)
                .max(1),
            clips: a.views.clips as usize,
        };
        let batch_size = match a.run.batch_size {
            cli::BatchSize::Auto => model::auto_batch_size(model.device),
            cli::BatchSize::Fixed(n) => n as usize,
        };
        let windows = window_spec(a).expect("checked in from_args");
        let pictures = a.format == cli::Format::Html;
        Settings {
            clips: ClipSettings {
                spec,
                windows,
                thumbnails: pictures.then(|| thumb_spec(windows.is_some())),
                max_pixels: a.run.max_pixels,
                max_windows: a.run.max_windows as usize,
            },
            crops: a.views.crops as usize,
            run: RunSettings {
                threads: a.run.threads.map_or_else(default_threads, |n| n as usize),
                batch_size,
                timeout: Duration::from_secs_f64(a.run.timeout),
                ahead: views_ahead(model, batch_size),
            },
            labelling: Labelling {
                model: cfg.name.clone(),
                labels: cfg.labels.clone(),
                aggregate: a.aggregate.into(),
                top_k: a.top_k as usize,
                crops: a.views.crops as usize,
                // The page charts every plotted class over the windows.
                all_scores: a.all_scores || (pictures && windows.is_some()),
                segments: segment_rules(a).expect("checked in from_args"),
                windows_too: pictures,
                ran: Some(Ran {
                    device: model::device_name(model.device),
                    precision: model.precision.name().to_string(),
                    batch_size,
                }),
            },
            dump_inputs: a.dump_inputs.clone(),
            auto: (
                self.auto_precision,
                a.run.batch_size == cli::BatchSize::Auto,
            ),
        }
    }
}

/// The report's pictures: a strip of frames per video, or one frame per window.
fn thumb_spec(windowed: bool) -> ThumbSpec {
    ThumbSpec {
        height: 96,
        per_unit: if windowed { 1 } else { 8 },
    }
}

/// An HTML page is for a file (or a pipe), not for a terminal.
fn check_page_destination(args: &PredictArgs) -> Result<()> {
    use std::io::IsTerminal;
    if args.format == cli::Format::Html && args.output.is_none() && std::io::stdout().is_terminal()
    {
        bail!("--format html writes a whole page: give -o FILE.html (or redirect stdout)");
    }
    Ok(())
}

/// Whether records are segments: `--segments`, or a subtitle format (which shows segments).
fn wants_segments(args: &PredictArgs) -> bool {
    args.seg.segments || matches!(args.format, cli::Format::Srt | cli::Format::Vtt)
}

/// `--seg-on/--seg-off/--min-duration/--max-gap` as segment rules, when segments are asked for.
fn segment_rules(args: &PredictArgs) -> Result<Option<SegmentRules>> {
    if !wants_segments(args) {
        return Ok(None);
    }
    let a = &args.seg;
    let rules = SegmentRules {
        on: a.seg_on,
        off: a.seg_off,
        min_duration: a.min_duration,
        max_gap: a.max_gap,
    };
    rules.check().map_err(|m| {
        anyhow::anyhow!(
            "--seg-on {} --seg-off {} --min-duration {} --max-gap {}: {m}",
            a.seg_on,
            a.seg_off,
            a.min_duration,
            a.max_gap
        )
    })?;
    Ok(Some(rules))
}

/// `--timeline` or segments, with `--window W --hop H`, as a window spec.
fn window_spec(args: &PredictArgs) -> Result<Option<WindowSpec>> {
    if !(args.timeline || wants_segments(args)) {
        return Ok(None);
    }
    let length = seconds("--window", args.window)?;
    let hop = hop(args.hop.unwrap_or(args.window))?;
    Ok(Some(WindowSpec { length, hop }))
}

/// `vidcls train`'s flags as the train stage's options.
pub fn train_options(a: &TrainArgs) -> Result<crate::train::TrainOptions> {
    use crate::train::{DataSource, Plan, Start, TrainOptions};
    let data = match (&a.data, &a.manifest) {
        (_, Some(m)) => DataSource::Manifest(m.clone()),
        (Some(d), None) => DataSource::Folder(d.clone()),
        (None, None) => bail!("give DATA or --manifest"),
    };
    if !(0.0..0.9).contains(&a.val_fraction) {
        bail!(
            "--val-fraction {}: use a share from 0 to 0.9",
            a.val_fraction
        );
    }
    if let Some(t) = a.time_limit {
        seconds("--time-limit", t)?;
    }
    if let Some(lr) = a.lr {
        positive("--lr", lr, "")?;
    }
    let start = match (a.freeze, a.scratch) {
        (true, _) => Start::Frozen,
        (_, true) => Start::Scratch,
        _ => Start::Pretrained,
    };
    let scratch = start == Start::Scratch;
    Ok(TrainOptions {
        data,
        out: a.output.clone(),
        from: model::resolve(a.from.as_deref()).context("--from")?,
        start,
        plan: Plan {
            epochs: a.epochs as usize,
            batch_size: a.batch_size as usize,
            lr: a.lr.unwrap_or(if scratch { 3e-3 } else { 1e-3 }),
            backbone_lr: if scratch { 1.0 } else { 0.05 },
            weight_decay: 1e-4,
            seed: a.seed,
            probe_first: !scratch,
        },
        val_fraction: a.val_fraction,
        device: model::parse_device(&a.device).context("--device")?,
        threads: a.threads.map_or_else(cores, |t| t as usize),
        decode: RunSettings {
            threads: cores(),
            batch_size: 1,
            timeout: Duration::from_secs(300),
            ahead: 1,
        },
        time_limit: a.time_limit.map(Duration::from_secs_f64),
        cache_bytes: (a.cache_mb as usize) << 20,
        resume: a.resume,
        force: a.force,
        quiet: a.quiet,
    })
}

/// `--allow-playlists`, `--protocols` and `--input-format` as the decode stage's access policy.
pub fn access(a: &cli::SourceArgs) -> Result<crate::decode::Access> {
    let mut access = crate::decode::Access {
        allow_playlists: a.allow_playlists,
        input_format: a.input_format.clone(),
        ..Default::default()
    };
    if let Some(list) = &a.protocols {
        let list: Vec<String> = list
            .iter()
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty())
            .collect();
        if let Some(bad) = list
            .iter()
            .find(|p| !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            bail!(
                "--protocols: {bad:?} is not a protocol name (e.g. --protocols rtsp,rtp,udp,tcp)"
            );
        }
        if list.is_empty() {
            bail!("--protocols: name at least one protocol");
        }
        access.protocols = list;
    }
    Ok(access)
}
