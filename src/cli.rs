//! Command-line flags (clap derive). Raw flags only: `config.rs` validates them and maps them
//! to the stages' own types; nothing past `app.rs` sees this module.

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
    Predict(Box<PredictArgs>),
    /// Train a model for your own labels from DATA/<label>/<videos> (or a CSV manifest).
    Train(Box<TrainArgs>),
    /// Write each video's pooled features (the model's penultimate layer) as float32 .npy files.
    Embed(Box<EmbedArgs>),
    /// Write a copy of a video with the top label and score of each window drawn on its frames
    /// (H.264 in MP4, audio copied).
    Annotate(Box<AnnotateArgs>),
    /// Label a camera or a stream as it plays: one record per window, written as soon as the
    /// model has it (URLs, `pipe:` for a stream on stdin, /dev/video0 with --input-format v4l2).
    Watch(Box<WatchArgs>),
    /// Print each video's metadata as JSON (one object per line).
    Probe(ProbeArgs),
    /// List the models (built-in, installed, pullable); `vidcls models pull NAME` installs one.
    Models(ModelsArgs),
    /// Print versions of vidcls, libtorch and FFmpeg, and whether CUDA is available.
    Version,
    /// Write the records of earlier runs (JSON Lines, one file per shard) as a page, CSV,
    /// subtitles or text, without running a model; with --inputs, check they cover a list.
    Report(ReportArgs),
    /// Print a shell completion script to stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) to stdout, or write one page per subcommand into a directory.
    Man(ManArgs),
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
    /// SubRip subtitles, one cue per segment (implies --segments; one video).
    Srt,
    /// WebVTT subtitles, one cue per segment (implies --segments; one video).
    Vtt,
    /// One self-contained HTML page with pictures of the frames the model saw, score bars, a
    /// chart per video with --timeline/--segments and a sortable table; to -o FILE (renamed
    /// into place at the end) or to stdout when it is not a terminal.
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    /// The fastest the device runs that the model's export found agreeing with fp32:
    /// bf16 on a CPU with native bf16, fp16 or bf16 on CUDA, else fp32 (`-v` says which).
    Auto,
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

#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// Video files, directories (searched recursively for video extensions) or `-` for stdin.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    #[command(flatten)]
    pub model: ModelArgs,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Number of labels per video (at most 1000).
    #[arg(short = 'k', long, default_value_t = 5,
          value_parser = clap::value_parser!(u16).range(1..=crate::config::limits::TOP_K as i64))]
    pub top_k: u16,

    #[command(flatten)]
    pub out: OutputArgs,

    /// With -f csv: write path, label and error cells as they are, even those a spreadsheet
    /// would run as a formula (by default a cell starting with = + - @ gets a leading ').
    #[arg(long)]
    pub csv_raw: bool,

    /// Skip inputs already recorded in the output file and append the rest (jsonl, csv).
    #[arg(long, requires = "output")]
    pub resume: bool,

    /// With --resume: run the inputs that failed before again (their error records are
    /// removed from the output file first).
    #[arg(long, requires = "resume")]
    pub retry_failed: bool,

    #[command(flatten)]
    pub views: ViewArgs,

    /// How views (clips x crops) are combined.
    #[arg(long, value_enum, default_value_t = Aggregate::Prob)]
    pub aggregate: Aggregate,

    #[command(flatten)]
    pub run: RunArgs,

    /// One record per window of the video instead of one per video.
    #[arg(long)]
    pub timeline: bool,

    /// Window length in seconds (with --timeline, --segments or -f srt/vtt; default 4).
    #[arg(long, value_name = "SECS")]
    pub window: Option<f64>,

    /// Seconds between window starts (with --timeline, --segments or -f srt/vtt; default: the
    /// window length; at least 0.01).
    #[arg(long, value_name = "SECS")]
    pub hop: Option<f64>,

    #[command(flatten)]
    pub seg: SegmentArgs,

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

    #[command(flatten)]
    pub chatter: ChatterArgs,

    #[command(flatten)]
    pub source: SourceArgs,
}

/// Which model runs, where, and at what precision: shared by every command that runs one.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model name (from the model directories), a config .json or a TorchScript .pt file.
    /// Default: the built-in motion model.
    #[arg(short, long, value_name = "MODEL")]
    pub model: Option<String>,

    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,

    /// Numeric precision of the forward pass.
    #[arg(long, value_enum, default_value_t = Precision::Auto)]
    pub precision: Precision,
}

/// Where records go: shared by `predict` and `watch`.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Write to FILE instead of stdout (refuses to overwrite an existing file without
    /// --force).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
}

/// What a run says on stderr: shared by `predict` and `embed`.
#[derive(Debug, Clone, Args)]
pub struct ChatterArgs {
    /// No progress bar, no summary.
    #[arg(short, long)]
    pub quiet: bool,

    /// End stderr with the run summary as one JSON object on one line (even with --quiet):
    /// inputs, classified, failed, already_done, records, views, elapsed_s.
    #[arg(long)]
    pub summary_json: bool,

    /// Say which device, threads and model were chosen.
    #[arg(short, long)]
    pub verbose: bool,
}

/// What opening an input may do: shared by every command that reads videos.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Let files be HLS playlists or ffconcat lists (FFmpeg's hls and concat demuxers). They
    /// make FFmpeg open the other files they name, so they are refused unless asked for.
    #[arg(long)]
    pub allow_playlists: bool,

    /// Protocols URLs may use, comma-separated (replaces the default list
    /// rtsp,rtsps,rtmp,rtmps,http,https,udp,tcp,srt,rtp,tls,httpproxy,crypto). Adding `file`
    /// lets a network playlist read local files.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub protocols: Option<Vec<String>>,

    /// FFmpeg input format to use instead of probing, like `ffmpeg -f` (`v4l2` for a camera
    /// such as /dev/video0, `mpegts` for a stream that needs it).
    #[arg(long, value_name = "FORMAT")]
    pub input_format: Option<String>,
}

/// How each video (or window) becomes views: shared by `predict` and `embed`.
#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// Clips per video (or per window), spread uniformly over it (1 = the centre clip; at most
    /// 256). Default: the model's default views (a trained model's), else 1.
    #[arg(long,
          value_parser = clap::value_parser!(u32).range(1..=crate::config::limits::CLIPS as i64))]
    pub clips: Option<u32>,

    /// Spatial crops per clip: 1 (centre) or 3 (both ends and centre of the long side).
    #[arg(long, default_value_t = 1, value_parser = parse_crops)]
    pub crops: u8,

    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// Which frames a clip takes: shared by every command that runs a model on videos.
#[derive(Debug, Clone, Args)]
pub struct SamplingArgs {
    /// Frames per clip (default: the model's; at most 256). Longer clips need a fully
    /// convolutional model.
    #[arg(long, value_parser = frames_parser())]
    pub frames: Option<u32>,

    /// Sampling rate in frames per second (default: the model's; at most 1000).
    #[arg(long)]
    pub fps: Option<f64>,

    /// Take every N-th frame at the sampling rate (default: the model's; at most 1000).
    #[arg(long, value_parser = stride_parser())]
    pub stride: Option<u32>,
}

/// Action segments: shared by `predict` and `watch`.
#[derive(Debug, Clone, Args)]
pub struct SegmentArgs {
    /// Merge windows into action segments {path, start, end, label, score}: a label starts
    /// at a window scoring at least --seg-on and lasts until one scores below --seg-off.
    #[arg(long)]
    pub segments: bool,

    /// Score at which a segment starts (with --segments).
    #[arg(long, default_value_t = 0.5, value_name = "SCORE")]
    pub seg_on: f64,

    /// Score below which a segment ends (with --segments; at most --seg-on).
    #[arg(long, default_value_t = 0.3, value_name = "SCORE")]
    pub seg_off: f64,

    /// Drop segments shorter than this many seconds (with --segments).
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub min_duration: f64,

    /// Join segments of a label at most this many seconds apart (with --segments).
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub max_gap: f64,
}

/// How the pipeline runs: shared by `predict` and `embed`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Views per forward pass, or `auto`: 1 on a CPU, 8 on CUDA (`-v` says which; at most
    /// 1024).
    #[arg(short, long, default_value = "auto", value_parser = parse_batch_size)]
    pub batch_size: BatchSize,

    /// Decode worker threads (default: one per core; at most 256).
    #[arg(short = 'j', long, value_parser = threads_parser())]
    pub threads: Option<u32>,

    /// Give up on an input whose decoding takes longer than this many seconds.
    #[arg(long, default_value_t = 300.0, value_name = "SECS")]
    pub timeout: f64,

    /// Refuse videos whose frames have more pixels than this (width x height; default
    /// 8192 x 8192, at most 268435456 = 16384 x 16384). Each decode worker holds two decoded
    /// frames, about 3 bytes per pixel in YUV 4:2:0.
    #[arg(long, value_name = "PIXELS", default_value_t = crate::decode::DEFAULT_MAX_PIXELS,
          value_parser = clap::value_parser!(u64).range(1..=crate::config::limits::PIXELS))]
    pub max_pixels: u64,

    /// Refuse inputs with more windows than this (with windows; at most 1000000). Each window
    /// keeps its scores (about 8 bytes per class and view) until the input's records are
    /// written.
    #[arg(long, value_name = "N", default_value_t = crate::config::limits::DEFAULT_WINDOWS,
          value_parser = clap::value_parser!(u64).range(1..=crate::config::limits::WINDOWS))]
    pub max_windows: u64,
}

#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// Video files, directories (searched recursively for video extensions) or `-` for stdin.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Folder for the .npy files and the index (index.jsonl, or index-K-of-N.jsonl with
    /// --shard K/N); made if missing.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,

    #[command(flatten)]
    pub model: ModelArgs,

    /// One row per window of this many seconds (default: one row for the whole video).
    #[arg(long, value_name = "SECS")]
    pub window: Option<f64>,

    /// Seconds between window starts (with --window; default: the window length; at least
    /// 0.01).
    #[arg(long, requires = "window", value_name = "SECS")]
    pub hop: Option<f64>,

    #[command(flatten)]
    pub views: ViewArgs,

    #[command(flatten)]
    pub run: RunArgs,

    /// Only this part of the inputs, K of N (1-based), by a stable hash of each path.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,

    /// Follow symbolic links when walking directories.
    #[arg(short = 'L', long)]
    pub follow: bool,

    /// Skip inputs already in the index and append the rest.
    #[arg(long)]
    pub resume: bool,

    /// With --resume: run the inputs that failed before again.
    #[arg(long, requires = "resume")]
    pub retry_failed: bool,

    /// Start a new index even if one exists (its .npy files are overwritten as they come).
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,

    #[command(flatten)]
    pub chatter: ChatterArgs,

    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Clone, Args)]
pub struct AnnotateArgs {
    /// The video to annotate.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,

    /// The annotated copy (an MP4 file; refuses to overwrite without --force).
    #[arg(short, long, value_name = "OUT.mp4")]
    pub output: PathBuf,

    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub model: ModelArgs,

    /// Labels drawn per window.
    #[arg(short = 'k', long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=5))]
    pub top_k: u16,

    /// Window length in seconds: each window's labels show over the part of the video nearest
    /// to it.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub window: f64,

    /// Seconds between window starts (default: the window length; at least 0.01).
    #[arg(long, value_name = "SECS")]
    pub hop: Option<f64>,

    /// TrueType font for the labels.
    #[arg(
        long,
        value_name = "FILE.ttf",
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
    )]
    pub font: PathBuf,

    /// libx264 quality: constant rate factor, 0 (lossless) to 51.
    #[arg(long, default_value_t = 18, value_parser = clap::value_parser!(u8).range(0..=51))]
    pub crf: u8,

    #[command(flatten)]
    pub views: ViewArgs,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub chatter: ChatterArgs,

    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// A folder with one subfolder of videos per label (searched recursively).
    #[arg(
        value_name = "DATA",
        required_unless_present = "manifest",
        conflicts_with = "manifest"
    )]
    pub data: Option<PathBuf>,

    /// A CSV with the columns path,label and optionally split (train, val or test) and group
    /// (a recording's clips stay on one side) instead of DATA; relative paths are relative to
    /// the manifest.
    #[arg(long, value_name = "FILE.csv")]
    pub manifest: Option<PathBuf>,

    /// Folder to write the model into (model.pt, config.json, metrics.json).
    #[arg(short, long, value_name = "MODEL_DIR")]
    pub output: PathBuf,

    /// Start from this model (name, model folder, config .json); default: the built-in one.
    #[arg(long, value_name = "MODEL")]
    pub from: Option<String>,

    /// Train only a new linear head on frozen features (fast; a linear probe).
    #[arg(long, conflicts_with = "scratch")]
    pub freeze: bool,

    /// Train the architecture from random weights (needs much more data).
    #[arg(long)]
    pub scratch: bool,

    /// Passes over the training videos when fine-tuning (default: as many as --time-limit
    /// allows, at most 12; at most 100000).
    #[arg(long,
          value_parser = clap::value_parser!(u32).range(1..=crate::config::limits::EPOCHS as i64))]
    pub epochs: Option<u32>,

    /// Time for the whole run in seconds, decoding included: the schedule is sized to it, and
    /// when it runs out the best epoch so far is kept.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub time_limit: f64,

    /// Clips per optimisation step (at most 1024).
    #[arg(short, long, default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=crate::config::limits::BATCH_SIZE as i64))]
    pub batch_size: u32,

    /// Peak learning rate (default: 1e-3 from a pretrained model, 3e-3 from scratch).
    #[arg(long)]
    pub lr: Option<f64>,

    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,

    /// Torch threads (default: one per core; at most 256). Same seed, data and threads -> same
    /// weights.
    #[arg(long, value_parser = threads_parser())]
    pub threads: Option<u32>,

    /// Seed of the split, the new head, the shuffling and the augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Share of each label's videos held out for validation (when the manifest gives no split).
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f64,

    /// Most memory the decoded clips may take, in MB (at most 1048576).
    #[arg(long, default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(0..=crate::config::limits::CACHE_MB))]
    pub cache_mb: u64,

    /// Continue an interrupted run from MODEL_DIR's checkpoint (same data and flags).
    #[arg(long)]
    pub resume: bool,

    /// Replace what MODEL_DIR holds.
    #[arg(long)]
    pub force: bool,

    /// No progress bars, no per-epoch lines.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchFormat {
    /// One line per window for people.
    Text,
    /// One JSON object per line, flushed per window.
    Jsonl,
}

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// A URL (rtsp://, rtmp://, http(s)://, udp://, tcp://, srt://), `pipe:` for a video byte
    /// stream on stdin, a device with --input-format, or a file.
    #[arg(value_name = "SOURCE")]
    pub input: PathBuf,

    #[command(flatten)]
    pub model: ModelArgs,

    /// Labels per window (at most 1000).
    #[arg(short = 'k', long, default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=crate::config::limits::TOP_K as i64))]
    pub top_k: u16,

    /// Window length in seconds (default: the span of one of the model's clips). A window keeps
    /// its frames at the sampling rate: at most 1000 of them.
    #[arg(long, value_name = "SECS")]
    pub window: Option<f64>,

    /// Seconds between window starts (default: the window length; at least 0.01).
    #[arg(long, value_name = "SECS")]
    pub hop: Option<f64>,

    #[command(flatten)]
    pub sampling: SamplingArgs,

    /// Output format (default: text on a terminal, JSON Lines otherwise).
    #[arg(short, long, value_enum)]
    pub format: Option<WatchFormat>,

    #[command(flatten)]
    pub out: OutputArgs,

    /// Refuse a source whose frames have more pixels than this (width x height; default
    /// 8192 x 8192, at most 268435456 = 16384 x 16384), as predict does.
    #[arg(long, value_name = "PIXELS", default_value_t = crate::decode::DEFAULT_MAX_PIXELS,
          value_parser = clap::value_parser!(u64).range(1..=crate::config::limits::PIXELS))]
    pub max_pixels: u64,

    /// Treat the source as live (drop windows when the model falls behind) even if it is a file
    /// or a pipe; network sources and devices are live already.
    #[arg(long)]
    pub live: bool,

    /// Live sources: drop a waiting window once its last frame arrived more than SECS ago and a
    /// newer one waits (default 1; implies --live).
    #[arg(long, value_name = "SECS")]
    pub max_lag: Option<f64>,

    /// Reopen the source with backoff when it stops (the default for network URLs).
    #[arg(long, conflicts_with = "no_reconnect")]
    pub reconnect: bool,

    /// End the run when the source stops, even for a network URL.
    #[arg(long)]
    pub no_reconnect: bool,

    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// Seconds a network source may send nothing before it counts as lost (and is reopened).
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub stall: f64,

    #[command(flatten)]
    pub seg: SegmentArgs,

    /// Include every class's score in each record.
    #[arg(long)]
    pub all_scores: bool,

    /// Say what is watched, and each window's lag as it is written.
    #[arg(short, long)]
    pub verbose: bool,

    /// Milliseconds added to each forward pass (to test a model slower than the stream).
    #[arg(long, default_value_t = 0, hide = true)]
    pub forward_delay_ms: u64,

    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Video files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Decode every frame to count them.
    #[arg(long)]
    pub count: bool,

    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub action: Option<ModelsAction>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Download, verify and install pretrained weights: a name from `vidcls models`, a model
    /// card (.json), or a Hugging Face Hub repo as hf:ORG/REPO[@REVISION] (HF_ENDPOINT,
    /// HF_TOKEN). Installs under ${XDG_CACHE_HOME:-~/.cache}/vidcls/ (VIDCLS_CACHE_DIR).
    Pull(PullArgs),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// r2plus1d_18, a card file (.json), or hf:ORG/REPO[@REVISION].
    #[arg(value_name = "MODEL")]
    pub target: String,
    /// Install from a weights file (a card's model) or a folder with config.json and
    /// model.safetensors (a Hub repo) downloaded by hand; checked as a download is.
    #[arg(long, value_name = "PATH")]
    pub from: Option<PathBuf>,
    /// Never touch the network (also VIDCLS_OFFLINE=1): only --from can install.
    #[arg(long)]
    pub offline: bool,
    /// Seconds to wait for a silent server before giving up (the partial download is kept
    /// for the next try to resume).
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// Skip measuring bf16 against fp32 on the installed weights (then `--precision auto`
    /// runs the model in fp32).
    #[arg(long)]
    pub no_precision_check: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write vidcls.1 and vidcls-SUBCOMMAND.1 into DIR (created if missing) instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `--batch-size`: chosen by the device, or a fixed number of views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    Auto,
    Fixed(u32),
}

fn parse_batch_size(s: &str) -> Result<BatchSize, String> {
    let most = crate::config::limits::BATCH_SIZE;
    match s {
        "auto" => Ok(BatchSize::Auto),
        n => match n.parse::<u32>() {
            Ok(n) if (1..=most).contains(&n) => Ok(BatchSize::Fixed(n)),
            _ => Err(format!(
                "{s:?}: use auto or a number of views from 1 to {most}"
            )),
        },
    }
}

fn frames_parser() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=crate::config::limits::FRAMES as i64)
}

fn stride_parser() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=crate::config::limits::STRIDE as i64)
}

fn threads_parser() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=crate::config::limits::THREADS as i64)
}

fn parse_crops(s: &str) -> Result<u8, String> {
    match s {
        "1" => Ok(1),
        "3" => Ok(3),
        _ => Err(format!("{s:?} crops: use 1 or 3")),
    }
}

/// `vidcls report`: records of earlier runs -> any output format, without a model.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// JSON Lines files vidcls wrote (predict's records, one file per --shard K/N, ...).
    #[arg(required = true, value_name = "RECORDS")]
    pub records: Vec<PathBuf>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(flatten)]
    pub out: OutputArgs,

    /// With -f csv: write string cells as they are (as predict --csv-raw).
    #[arg(long)]
    pub csv_raw: bool,

    /// The run's input list, one path per line (as the records name them): inputs missing
    /// from the records, recorded twice or failed are listed, and the exit code is 1.
    #[arg(long, value_name = "FILE")]
    pub inputs: Option<PathBuf>,

    /// Report records of different models or label lists together.
    #[arg(long)]
    pub mixed: bool,

    /// No summary on stderr (problems are still listed).
    #[arg(short, long)]
    pub quiet: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn predict(args: &[&str]) -> Result<PredictArgs, clap::Error> {
        let mut all = vec!["vidcls", "predict"];
        all.extend(args);
        match Cli::try_parse_from(all)?.command {
            Command::Predict(p) => Ok(*p),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn command_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Each bounded flag's help states the bound `config::limits` holds, and the parser keeps it.
    #[test]
    fn help_states_the_bounds() {
        use crate::config::limits as l;
        let cases: [(&str, &str, String); 13] = [
            ("predict", "clips", l::CLIPS.to_string()),
            ("predict", "frames", l::FRAMES.to_string()),
            ("predict", "stride", l::STRIDE.to_string()),
            ("predict", "fps", l::FPS.to_string()),
            ("predict", "top_k", l::TOP_K.to_string()),
            ("predict", "batch_size", l::BATCH_SIZE.to_string()),
            ("predict", "threads", l::THREADS.to_string()),
            ("predict", "max_pixels", l::PIXELS.to_string()),
            ("predict", "max_windows", l::WINDOWS.to_string()),
            ("predict", "hop", (1.0 / l::WINDOWS_PER_SECOND).to_string()),
            ("train", "epochs", l::EPOCHS.to_string()),
            ("watch", "window", l::WATCH_FRAMES.to_string()),
            ("watch", "max_pixels", l::PIXELS.to_string()),
        ];
        let cli = Cli::command();
        for (command, arg, bound) in cases {
            let sub = cli.find_subcommand(command).unwrap();
            let a = sub.get_arguments().find(|a| a.get_id() == arg).unwrap();
            let help = a.get_help().unwrap().to_string();
            assert!(
                help.contains(&format!("at most {bound}"))
                    || help.contains(&format!("at least {bound}")),
                "{command} --{arg}: {help:?} does not state {bound}"
            );
        }
        let over = |flag: &str, v: String| predict(&[flag, &v, "a"]).is_err();
        assert!(over("--clips", (l::CLIPS + 1).to_string()));
        assert!(!over("--clips", l::CLIPS.to_string()));
        assert!(over("--frames", (l::FRAMES + 1).to_string()));
        assert!(over("-k", (l::TOP_K + 1).to_string()));
        assert!(over("-b", (l::BATCH_SIZE + 1).to_string()));
        assert!(!over("-b", l::BATCH_SIZE.to_string()));
        assert!(over("-j", (l::THREADS + 1).to_string()));
        assert!(over("--max-pixels", (l::PIXELS + 1).to_string()));
        assert!(over("--max-windows", (l::WINDOWS + 1).to_string()));
    }

    #[test]
    fn predict_defaults() {
        let p = predict(&["a.mp4"]).unwrap();
        assert_eq!(p.format, Format::Text);
        assert_eq!(p.top_k, 5);
        assert_eq!(
            (p.views.clips, p.views.crops, p.run.batch_size),
            (None, 1, BatchSize::Auto)
        );
        assert!(predict(&["-b", "0", "a"]).is_err() && predict(&["-b", "x", "a"]).is_err());
        assert_eq!(p.run.max_pixels, 8192 * 8192);
        assert_eq!(
            predict(&["--max-pixels", "100000000", "a"])
                .unwrap()
                .run
                .max_pixels,
            100_000_000
        );
        assert!(predict(&["--max-pixels", "0", "a"]).is_err());
        assert_eq!(p.model.device, "auto");
        assert_eq!(p.model.precision, Precision::Auto);
        assert_eq!(p.aggregate, Aggregate::Prob);
        assert!(p.model.model.is_none() && p.out.output.is_none() && !p.resume && !p.timeline);
        assert!(!p.retry_failed && !p.chatter.summary_json);
    }

    #[test]
    fn predict_flags() {
        let p = predict(&[
            "-m",
            "r2plus1d_18",
            "-f",
            "jsonl",
            "-k",
            "3",
            "-o",
            "x.jsonl",
            "--resume",
            "--retry-failed",
            "--summary-json",
            "--clips",
            "10",
            "--crops",
            "3",
            "--frames",
            "32",
            "--fps",
            "7.5",
            "--stride",
            "2",
            "--aggregate",
            "logit",
            "-b",
            "4",
            "--precision",
            "bf16",
            "-j",
            "3",
            "--shard",
            "2/4",
            "-L",
            "--all-scores",
            "-q",
            "--device",
            "cuda:1",
            "a",
            "b",
        ])
        .unwrap();
        assert_eq!(p.model.model.as_deref(), Some("r2plus1d_18"));
        assert_eq!(
            (p.format, p.top_k, p.views.clips, p.views.crops),
            (Format::Jsonl, 3, Some(10), 3)
        );
        assert_eq!(
            (
                p.views.sampling.frames,
                p.views.sampling.fps,
                p.views.sampling.stride
            ),
            (Some(32), Some(7.5), Some(2))
        );
        assert_eq!(
            (p.aggregate, p.run.batch_size, p.model.precision),
            (Aggregate::Logit, BatchSize::Fixed(4), Precision::Bf16)
        );
        assert_eq!((p.run.threads, p.shard.as_deref()), (Some(3), Some("2/4")));
        assert!(p.resume && p.retry_failed && p.chatter.summary_json);
        assert!(p.follow && p.all_scores && p.chatter.quiet);
        assert_eq!(p.inputs.len(), 2);
        assert_eq!(p.model.device, "cuda:1");
        let t = predict(&["--timeline", "--window", "2", "--hop", "1", "v"]).unwrap();
        assert!(t.timeline && t.window == Some(2.0) && t.hop == Some(1.0));
    }

    #[test]
    fn segment_flags() {
        let p = predict(&["v"]).unwrap();
        assert!(!p.seg.segments);
        assert_eq!(
            (
                p.seg.seg_on,
                p.seg.seg_off,
                p.seg.min_duration,
                p.seg.max_gap
            ),
            (0.5, 0.3, 1.0, 1.0)
        );
        let p = predict(&[
            "--segments",
            "--window",
            "1",
            "--hop",
            "0.5",
            "--seg-on",
            "0.7",
            "--seg-off",
            "0.4",
            "--min-duration",
            "2",
            "--max-gap",
            "0.5",
            "-f",
            "srt",
            "v",
        ])
        .unwrap();
        assert!(p.seg.segments && !p.timeline && p.window == Some(1.0) && p.hop == Some(0.5));
        assert_eq!(
            (
                p.seg.seg_on,
                p.seg.seg_off,
                p.seg.min_duration,
                p.seg.max_gap
            ),
            (0.7, 0.4, 2.0, 0.5)
        );
        assert_eq!(p.format, Format::Srt);
        assert_eq!(predict(&["-f", "vtt", "v"]).unwrap().format, Format::Vtt);
        assert_eq!(predict(&["-f", "html", "v"]).unwrap().format, Format::Html);
    }

    fn embed(args: &[&str]) -> Result<EmbedArgs, clap::Error> {
        let mut all = vec!["vidcls", "embed"];
        all.extend(args);
        match Cli::try_parse_from(all)?.command {
            Command::Embed(e) => Ok(*e),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn embed_flags() {
        let e = embed(&["-o", "out", "a.mp4"]).unwrap();
        assert_eq!(e.output, PathBuf::from("out"));
        assert!(e.window.is_none() && e.hop.is_none() && e.model.model.is_none());
        assert_eq!(
            (e.views.clips, e.views.crops, e.run.batch_size),
            (None, 1, BatchSize::Auto)
        );
        assert_eq!(
            (e.model.device.as_str(), e.model.precision),
            ("auto", Precision::Auto)
        );
        assert!(!e.resume && !e.force && !e.chatter.quiet && !e.chatter.summary_json && !e.follow);
        for bad in [
            vec!["a"],
            vec!["-o", "d"],
            vec!["-o", "d", "--hop", "1", "a"],
            vec!["-o", "d", "--resume", "--force", "a"],
            vec!["-o", "d", "--retry-failed", "a"],
            vec!["-o", "d", "--crops", "2", "a"],
        ] {
            assert!(embed(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn embed_takes_every_flag() {
        let e = embed(&[
            "-o",
            "d",
            "-m",
            "s3d",
            "--device",
            "cpu",
            "--precision",
            "bf16",
            "--window",
            "2",
            "--hop",
            "1",
            "--clips",
            "2",
            "--crops",
            "3",
            "--frames",
            "16",
            "--fps",
            "5",
            "--stride",
            "2",
            "-b",
            "4",
            "-j",
            "2",
            "--timeout",
            "9",
            "--shard",
            "1/2",
            "-L",
            "--resume",
            "--retry-failed",
            "-q",
            "--summary-json",
            "-v",
            "a",
            "b",
        ])
        .unwrap();
        assert_eq!(e.model.model.as_deref(), Some("s3d"));
        assert_eq!((e.window, e.hop), (Some(2.0), Some(1.0)));
        assert_eq!(
            (
                e.views.clips,
                e.views.crops,
                e.views.sampling.frames,
                e.views.sampling.fps
            ),
            (Some(2), 3, Some(16), Some(5.0))
        );
        assert_eq!(
            (e.views.sampling.stride, e.run.batch_size, e.run.threads),
            (Some(2), BatchSize::Fixed(4), Some(2))
        );
        assert_eq!((e.run.timeout, e.shard.as_deref()), (9.0, Some("1/2")));
        assert!(
            e.follow
                && e.resume
                && e.retry_failed
                && e.chatter.quiet
                && e.chatter.summary_json
                && e.chatter.verbose
        );
        assert_eq!(e.model.precision, Precision::Bf16);
        assert_eq!(e.inputs.len(), 2);
    }

    #[test]
    fn predict_rejects_bad_flags() {
        for bad in [
            vec![],
            vec!["--crops", "2", "a"],
            vec!["--top-k", "0", "a"],
            vec!["--clips", "0", "a"],
            vec!["-f", "xml", "a"],
            vec!["--resume", "a"],
            vec!["-o", "x.jsonl", "--retry-failed", "a"],
            vec!["--precision", "int8", "a"],
            vec!["-b", "0", "a"],
        ] {
            assert!(predict(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn train_flags() {
        let t = match Cli::try_parse_from(["vidcls", "train", "data", "-o", "m"])
            .unwrap()
            .command
        {
            Command::Train(t) => *t,
            other => panic!("parsed as {other:?}"),
        };
        assert_eq!(t.data.as_deref(), Some(std::path::Path::new("data")));
        assert_eq!((t.epochs, t.batch_size, t.seed), (None, 16, 0));
        assert_eq!(t.time_limit, 600.0);
        assert!(!t.freeze && !t.scratch && !t.resume && t.lr.is_none());
        let args = [
            "vidcls",
            "train",
            "--manifest",
            "m.csv",
            "-o",
            "m",
            "--from",
            "r2plus1d_18",
            "--freeze",
            "--epochs",
            "3",
            "--time-limit",
            "60",
            "-b",
            "4",
            "--lr",
            "0.01",
            "--device",
            "cpu",
            "--threads",
            "2",
            "--seed",
            "9",
            "--val-fraction",
            "0.3",
            "--cache-mb",
            "100",
            "--resume",
            "-q",
        ];
        let t = match Cli::try_parse_from(args).unwrap().command {
            Command::Train(t) => *t,
            other => panic!("parsed as {other:?}"),
        };
        assert!(t.data.is_none() && t.freeze && t.resume && t.quiet);
        assert_eq!(
            (t.epochs, t.batch_size, t.threads, t.seed),
            (Some(3), 4, Some(2), 9)
        );
        assert_eq!((t.lr, t.time_limit, t.cache_mb), (Some(0.01), 60.0, 100));
        for bad in [
            vec!["vidcls", "train", "-o", "m"],
            vec!["vidcls", "train", "d"],
            vec!["vidcls", "train", "d", "--manifest", "m.csv", "-o", "m"],
            vec!["vidcls", "train", "d", "-o", "m", "--freeze", "--scratch"],
            vec!["vidcls", "train", "d", "-o", "m", "--epochs", "0"],
        ] {
            assert!(Cli::try_parse_from(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn annotate_flags() {
        let parse = |args: &[&str]| -> Result<AnnotateArgs, clap::Error> {
            let all = ["vidcls", "annotate"].iter().chain(args);
            match Cli::try_parse_from(all)?.command {
                Command::Annotate(a) => Ok(*a),
                other => panic!("parsed as {other:?}"),
            }
        };
        let a = parse(&["in.mp4", "-o", "out.mp4"]).unwrap();
        assert_eq!((a.top_k, a.window, a.hop, a.crf), (1, 1.0, None, 18));
        assert!(a.font.ends_with("DejaVuSans-Bold.ttf") && !a.force && a.model.model.is_none());
        let a = parse(&[
            "in.mp4",
            "-o",
            "o.mp4",
            "--force",
            "-m",
            "s3d",
            "--device",
            "cpu",
            "--precision",
            "bf16",
            "-k",
            "3",
            "--window",
            "2",
            "--hop",
            "1",
            "--font",
            "f.ttf",
            "--crf",
            "23",
            "--clips",
            "2",
            "-b",
            "4",
            "-q",
        ])
        .unwrap();
        assert_eq!((a.top_k, a.window, a.hop, a.crf), (3, 2.0, Some(1.0), 23));
        assert_eq!(
            (a.model.model.as_deref(), a.model.device.as_str()),
            (Some("s3d"), "cpu")
        );
        assert_eq!(
            (a.model.precision, a.views.clips, a.run.batch_size),
            (Precision::Bf16, Some(2), BatchSize::Fixed(4))
        );
        assert!(a.force && a.chatter.quiet && a.font == std::path::Path::new("f.ttf"));
        for bad in [
            vec!["in.mp4"],
            vec!["-o", "o.mp4"],
            vec!["in.mp4", "-o", "o.mp4", "-k", "6"],
            vec!["in.mp4", "-o", "o.mp4", "--crf", "52"],
            vec!["a.mp4", "b.mp4", "-o", "o.mp4"],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn watch_flags() {
        let parse = |args: &[&str]| -> Result<WatchArgs, clap::Error> {
            let all = ["vidcls", "watch"].iter().chain(args);
            match Cli::try_parse_from(all)?.command {
                Command::Watch(w) => Ok(*w),
                other => panic!("parsed as {other:?}"),
            }
        };
        let w = parse(&["udp://127.0.0.1:1234"]).unwrap();
        assert_eq!(
            (w.window, w.hop, w.duration, w.top_k),
            (None, None, None, 3)
        );
        assert!(!w.reconnect && !w.no_reconnect && w.format.is_none());
        let w = parse(&[
            "pipe:",
            "--window",
            "2",
            "--hop",
            "0.5",
            "--duration",
            "9",
            "--reconnect",
            "-f",
            "jsonl",
            "-o",
            "x.jsonl",
            "-k",
            "1",
            "-v",
            "--forward-delay-ms",
            "300",
            "--input-format",
            "mpegts",
            "--all-scores",
        ])
        .unwrap();
        assert_eq!(
            (w.window, w.hop, w.duration),
            (Some(2.0), Some(0.5), Some(9.0))
        );
        assert!(w.reconnect && w.verbose && w.all_scores);
        assert_eq!(
            (w.format, w.top_k, w.forward_delay_ms),
            (Some(WatchFormat::Jsonl), 1, 300)
        );
        assert_eq!(w.source.input_format.as_deref(), Some("mpegts"));
        assert!(parse(&["x", "--reconnect", "--no-reconnect"]).is_err());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn source_flags() {
        let p = predict(&["v"]).unwrap();
        assert!(!p.source.allow_playlists);
        assert!(p.source.protocols.is_none() && p.source.input_format.is_none());
        let p = predict(&[
            "--allow-playlists",
            "--protocols",
            "rtsp,rtp,udp",
            "--input-format",
            "v4l2",
            "/dev/video0",
        ])
        .unwrap();
        assert!(p.source.allow_playlists);
        assert_eq!(
            p.source.protocols.unwrap(),
            ["rtsp", "rtp", "udp"].map(String::from)
        );
        assert_eq!(p.source.input_format.as_deref(), Some("v4l2"));
        let c = Cli::try_parse_from(["vidcls", "probe", "--allow-playlists", "x"]).unwrap();
        assert!(matches!(c.command, Command::Probe(p) if p.source.allow_playlists));
    }

    #[test]
    fn other_subcommands() {
        let c = Cli::try_parse_from(["vidcls", "probe", "--count", "x.mp4"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Probe(ProbeArgs { count: true, .. })
        ));
        let c = Cli::try_parse_from(["vidcls", "models", "--json"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Models(ModelsArgs {
                json: true,
                action: None
            })
        ));
        let c = Cli::try_parse_from(["vidcls", "models", "pull", "hf:o/r@v", "--offline"]).unwrap();
        let Command::Models(ModelsArgs {
            action: Some(ModelsAction::Pull(p)),
            ..
        }) = c.command
        else {
            panic!("not a pull")
        };
        assert_eq!(
            (p.target.as_str(), p.offline, p.timeout),
            ("hf:o/r@v", true, 30)
        );
        assert!(Cli::try_parse_from(["vidcls", "models", "pull", "x", "--timeout", "0"]).is_err());
        assert!(matches!(
            Cli::try_parse_from(["vidcls", "version"]).unwrap().command,
            Command::Version
        ));
    }
}
