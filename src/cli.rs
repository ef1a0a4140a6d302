//! Command-line flags (clap derive). Raw flags only: validation and defaults that need the
//! model config happen in `config.rs`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Label what happens in videos: top-k actions from 3D-CNN action-recognition models.
#[derive(Debug, Parser)]
#[command(name = "vidcls", version = crate::version::SHORT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Predict the top-k actions of videos, directories of videos, or paths read from stdin (`-`).
    Predict(PredictArgs),
    /// Print each video's metadata as JSON (one object per line).
    Probe(ProbeArgs),
    /// List the models available (built-in and in the model directories).
    Models(ModelsArgs),
    /// Print versions of vidcls, libtorch and FFmpeg, and whether CUDA is available.
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Text,
    /// One JSON array of all records.
    Json,
    /// One JSON object per line, flushed per video.
    Jsonl,
    /// One row per (video, rank).
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    Fp32,
    Bf16,
    Fp16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Aggregate {
    /// Mean of per-view softmax probabilities.
    Prob,
    /// Softmax of the mean of per-view logits.
    Logit,
    /// Per-class maximum of per-view probabilities.
    Max,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Video files, directories (searched recursively for video extensions) or `-` for stdin.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Model name (from the model directories), a config .json or a TorchScript .pt file.
    /// Default: the built-in motion model.
    #[arg(short, long, value_name = "MODEL")]
    pub model: Option<String>,

    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Number of labels per video.
    #[arg(short = 'k', long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub top_k: u16,

    /// Write results to FILE instead of stdout (refuses to overwrite without --force).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,

    /// Skip inputs already recorded in the output file and append the rest (jsonl, csv).
    #[arg(long, requires = "output")]
    pub resume: bool,

    /// Clips per video, spread uniformly over it (1 = the centre clip).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub clips: u32,

    /// Spatial crops per clip: 1 (centre) or 3 (both ends and centre of the long side).
    #[arg(long, default_value_t = 1, value_parser = parse_crops)]
    pub crops: u8,

    /// Frames per clip (default: the model's). Longer clips need a fully convolutional model.
    #[arg(long)]
    pub frames: Option<u32>,

    /// Sampling rate in frames per second (default: the model's).
    #[arg(long)]
    pub fps: Option<f64>,

    /// Take every N-th frame at the sampling rate (default: the model's).
    #[arg(long)]
    pub stride: Option<u32>,

    /// How views (clips x crops) are combined.
    #[arg(long, value_enum, default_value_t = Aggregate::Prob)]
    pub aggregate: Aggregate,

    /// Views per forward pass.
    #[arg(short, long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,

    /// Numeric precision of the forward pass.
    #[arg(long, value_enum, default_value_t = Precision::Fp32)]
    pub precision: Precision,

    /// Decode worker threads (default: 1 per 2 cores, at least 1).
    #[arg(short = 'j', long)]
    pub threads: Option<u32>,

    /// One record per window of the video instead of one per video.
    #[arg(long)]
    pub timeline: bool,

    /// Window length in seconds (with --timeline).
    #[arg(long, default_value_t = 4.0, requires = "timeline")]
    pub window: f64,

    /// Seconds between window starts (with --timeline; default: the window length).
    #[arg(long, requires = "timeline")]
    pub hop: Option<f64>,

    /// Only this part of the inputs, K of N (1-based), by a stable hash of each path.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,

    /// Follow symbolic links when walking directories.
    #[arg(short = 'L', long)]
    pub follow: bool,

    /// Include every class's score in each record.
    #[arg(long)]
    pub all_scores: bool,

    /// Write each video's model input (views x C x T x H x W, float32 .npy) into DIR.
    #[arg(long, value_name = "DIR", hide = true)]
    pub dump_inputs: Option<PathBuf>,

    /// No progress bar, no summary.
    #[arg(short, long)]
    pub quiet: bool,

    /// Say which device, threads and model were chosen.
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Video files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Decode every frame to count them.
    #[arg(long)]
    pub count: bool,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_crops(s: &str) -> Result<u8, String> {
    match s {
        "1" => Ok(1),
        "3" => Ok(3),
        _ => Err(format!("{s:?} crops: use 1 or 3")),
    }
}
