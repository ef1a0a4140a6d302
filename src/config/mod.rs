//! The face: flags -> typed plans, validated in one place (as ripgrep's `LowArgs -> HiArgs`
//! and fd's `Config`). `app.rs` hands each command's flags here by value and the command's room
//! in `src/cmd/` gets back its plan; nothing below this module sees a flag.
//!
//! - [`Request`] (`request.rs`): what a command that runs a model over inputs needs before the
//!   model loads; [`Settings`], what it needs once the model is known (some defaults are the
//!   model's).
//! - `commands.rs`: one function per command from its flags to its plan ([`predict`],
//!   [`embed`], [`annotate`], [`watch`], [`probe`], [`train`]).
//! - This file: the bounds every flag is held to ([`limits`]) and the mapping of the flag groups
//!   the commands share (model, views, run, source, chatter).

mod commands;
mod request;

pub use commands::{
    annotate, embed, index_path, models, predict, probe, report, train, watch, AnnotatePlan,
    EmbedPlan, ModelsPlan, ProbePlan, ReportPlan, WatchPlan,
};
pub use request::{
    thumb_spec, Chatter, LabelPlan, ModelPlan, Output, Request, RunPlan, Settings, Views,
};

use crate::cli;
use crate::model::{self, Aggregate, ModelSource, Precision};
use crate::report::Format;
use anyhow::{bail, Result};

/// Upper bounds of the counts flags drive, so that no flag value makes a run take memory or
/// time without end (docs/ARCHITECTURE.md, "Memory per input"). clap checks the integer flags
/// against them (each flag's help states its bound; `cli::tests::help_states_the_bounds`
/// keeps the two equal), the plans the others. Generous for real use.
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
pub(crate) fn precision(
    p: cli::Precision,
    source: &ModelSource,
    device: tch::Device,
) -> Result<Precision> {
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

pub(crate) fn positive(flag: &str, v: f64, unit: &str) -> Result<f64> {
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

/// `--allow-playlists`, `--protocols` and `--input-format` as the decode stage's access policy.
pub(crate) fn access(a: &cli::SourceArgs) -> Result<crate::decode::Access> {
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

/// `-m/--device/--precision` as the model to load and how.
pub(crate) fn model_plan(a: &cli::ModelArgs, s: &cli::SamplingArgs) -> Result<ModelPlan> {
    use anyhow::Context as _;
    let source = model::resolve(a.model.as_deref())?;
    let device = model::parse_device(&a.device).context("--device")?;
    let precision = precision(a.precision, &source, device)?;
    Ok(ModelPlan {
        source,
        load: model::LoadOptions {
            device,
            precision,
            frames: s.frames.map(|f| f as usize),
        },
        auto_precision: a.precision == cli::Precision::Auto,
    })
}

/// `--clips/--crops` and the sampling flags as views (the model fills in what is not given).
pub(crate) fn views(clips: Option<u32>, crops: u8, s: &cli::SamplingArgs) -> Result<Views> {
    if let Some(f) = s.fps {
        fps(f)?;
    }
    Ok(Views {
        clips: clips.map(|c| c as usize),
        crops: crops as usize,
        fps: s.fps,
        stride: s.stride.map(|s| s as usize),
    })
}

/// How the pipeline runs, from its flags.
pub(crate) fn run_plan(a: &cli::RunArgs) -> Result<RunPlan> {
    Ok(RunPlan {
        batch_size: match a.batch_size {
            cli::BatchSize::Auto => None,
            cli::BatchSize::Fixed(n) => Some(n as usize),
        },
        threads: a.threads.map(|n| n as usize),
        timeout: std::time::Duration::from_secs_f64(seconds("--timeout", a.timeout)?),
        max_pixels: a.max_pixels,
        max_windows: a.max_windows as usize,
    })
}

impl From<&cli::ChatterArgs> for Chatter {
    fn from(a: &cli::ChatterArgs) -> Chatter {
        Chatter {
            quiet: a.quiet,
            verbose: a.verbose,
            summary_json: a.summary_json,
        }
    }
}

/// `--window W --hop H` as a window spec (the hop defaults to the window).
pub(crate) fn window_spec(window: f64, hop: Option<f64>) -> Result<crate::pipeline::WindowSpec> {
    let length = seconds("--window", window)?;
    let hop = self::hop(hop.unwrap_or(length))?;
    Ok(crate::pipeline::WindowSpec { length, hop })
}

/// `--seg-on/--seg-off/--min-duration/--max-gap` as segment rules, when `wanted`.
pub(crate) fn segment_rules(
    a: &cli::SegmentArgs,
    wanted: bool,
) -> Result<Option<crate::report::SegmentRules>> {
    if !wanted {
        return Ok(None);
    }
    let rules = crate::report::SegmentRules {
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
