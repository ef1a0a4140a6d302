//! One function per command: its flags, taken by value, as its plan.

use super::request::{Chatter, LabelPlan, Output, Request, RunPlan};
use super::{
    access, cores, model_plan, positive, run_plan, seconds, segment_rules, views, window_spec,
};
use crate::cli::{self, AnnotateArgs, EmbedArgs, PredictArgs, ProbeArgs, TrainArgs, WatchArgs};
use crate::decode::Access;
use crate::inputs::Shard;
use crate::model::{self, Aggregate};
use crate::overlay::Style;
use crate::pipeline::RunSettings;
use crate::report::{CsvCells, Format};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `vidcls predict`'s plan.
pub fn predict(a: PredictArgs) -> Result<Request> {
    let views = views(a.views.clips, a.views.crops, &a.views.sampling)?;
    let run = run_plan(&a.run)?;
    let format: Format = a.format.into();
    let wants_segments = a.seg.segments || format.is_subtitles();
    let windowed = a.timeline || wants_segments;
    let given = [("--window", a.window), ("--hop", a.hop)];
    if let Some((flag, _)) = given.iter().find(|(_, v)| v.is_some() && !windowed) {
        bail!("{flag}: only with --timeline, --segments or -f srt/vtt");
    }
    let windows = windowed
        .then(|| window_spec(a.window.unwrap_or(DEFAULT_WINDOW), a.hop))
        .transpose()?;
    let segments = segment_rules(&a.seg, wants_segments)?;
    check_page_destination(format, a.out.output.is_some())?;
    let csv_cells = csv_cells(a.csv_raw, format)?;
    let shard = shard(a.shard.as_deref())?;
    Ok(Request {
        model: model_plan(&a.model, &a.views.sampling)?,
        inputs: a.inputs,
        follow_links: a.follow,
        shard,
        output: Output {
            path: a.out.output,
            format,
            force: a.out.force,
            resume: a.resume,
            retry_failed: a.retry_failed,
            csv_cells,
        },
        chatter: (&a.chatter).into(),
        access: access(&a.source)?,
        views,
        run,
        labels: LabelPlan {
            aggregate: a.aggregate.into(),
            top_k: a.top_k as usize,
            all_scores: a.all_scores,
            windows,
            segments,
            pictures: format == Format::Html,
        },
        dump_inputs: a.dump_inputs,
    })
}

/// `--csv-raw`: string cells as they are, only for CSV.
fn csv_cells(raw: bool, format: Format) -> Result<CsvCells> {
    match (raw, format) {
        (false, _) => Ok(CsvCells::Neutralised),
        (true, Format::Csv) => Ok(CsvCells::Raw),
        (true, _) => bail!("--csv-raw: only with -f csv"),
    }
}

/// `predict --window`'s default, in seconds.
const DEFAULT_WINDOW: f64 = 4.0;

/// `--shard K/N`.
fn shard(s: Option<&str>) -> Result<Option<Shard>> {
    s.map(str::parse).transpose()
}

/// An HTML page is for a file (or a pipe), not for a terminal.
fn check_page_destination(format: Format, to_file: bool) -> Result<()> {
    use std::io::IsTerminal;
    format.check_destination(!to_file && std::io::stdout().is_terminal())
}

/// `vidcls embed`'s plan: the batch run, with the index in the output folder.
#[derive(Debug, Clone)]
pub struct EmbedPlan {
    pub request: Request,
    /// The folder for the .npy files and the index.
    pub dir: PathBuf,
}

/// `vidcls embed`'s plan.
pub fn embed(a: EmbedArgs) -> Result<EmbedPlan> {
    let views = views(a.views.clips, a.views.crops, &a.views.sampling)?;
    let run = run_plan(&a.run)?;
    let windows = a.window.map(|w| window_spec(w, a.hop)).transpose()?;
    let shard = shard(a.shard.as_deref())?;
    let request = Request {
        model: model_plan(&a.model, &a.views.sampling)?,
        inputs: a.inputs,
        follow_links: a.follow,
        shard,
        output: Output {
            path: Some(index_path(&a.output, shard)),
            format: Format::Jsonl,
            force: a.force,
            resume: a.resume,
            retry_failed: a.retry_failed,
            csv_cells: CsvCells::Neutralised,
        },
        chatter: (&a.chatter).into(),
        access: access(&a.source)?,
        views,
        run,
        labels: unlabelled(1, windows),
        dump_inputs: None,
    };
    Ok(EmbedPlan {
        request,
        dir: a.output,
    })
}

/// Records with the top `top_k` labels and nothing else (per window with `windows`).
fn unlabelled(top_k: usize, windows: Option<crate::pipeline::WindowSpec>) -> LabelPlan {
    LabelPlan {
        aggregate: Aggregate::Prob,
        top_k,
        all_scores: false,
        windows,
        segments: None,
        pictures: false,
    }
}

/// The index file in `dir`: one per shard, so parallel shards share the folder safely.
pub fn index_path(dir: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        None => dir.join("index.jsonl"),
        Some(s) => dir.join(format!("index-{}-of-{}.jsonl", s.k, s.n)),
    }
}

/// `vidcls annotate`'s plan.
#[derive(Debug, Clone)]
pub struct AnnotatePlan {
    /// The one input's windows (as with `--timeline`).
    pub request: Request,
    pub input: PathBuf,
    pub output: PathBuf,
    pub force: bool,
    pub style: Style,
}

/// `vidcls annotate`'s plan.
pub fn annotate(a: AnnotateArgs) -> Result<AnnotatePlan> {
    let views = views(a.views.clips, a.views.crops, &a.views.sampling)?;
    let run = run_plan(&a.run)?;
    let windows = Some(window_spec(a.window, a.hop)?);
    let request = Request {
        model: model_plan(&a.model, &a.views.sampling)?,
        inputs: vec![a.input.clone()],
        follow_links: false,
        shard: None,
        output: no_output(),
        chatter: (&a.chatter).into(),
        access: access(&a.source)?,
        views,
        run,
        labels: unlabelled(a.top_k as usize, windows),
        dump_inputs: None,
    };
    Ok(AnnotatePlan {
        request,
        input: a.input,
        output: a.output,
        force: a.force,
        style: Style {
            font: a.font,
            crf: a.crf,
        },
    })
}

/// A command whose records stay inside it.
fn no_output() -> Output {
    Output {
        path: None,
        format: Format::Jsonl,
        force: false,
        resume: false,
        retry_failed: false,
        csv_cells: CsvCells::Neutralised,
    }
}

/// `vidcls watch`'s plan.
#[derive(Debug, Clone)]
pub struct WatchPlan {
    /// The model, its views (one clip a window) and labels; the source's access policy.
    pub request: Request,
    pub source: PathBuf,
    /// `--window` (default: one clip's span, known once the model is) and `--hop`.
    pub window: Option<f64>,
    pub hop: Option<f64>,
    /// `Some(max lag)` when windows may be dropped (a live source).
    pub live_lag: Option<Duration>,
    pub reconnect: bool,
    /// Stop after this many seconds.
    pub duration: Option<f64>,
    /// Records as text lines for people (else JSON Lines).
    pub text: bool,
    pub output: Option<PathBuf>,
    pub force: bool,
    pub verbose: bool,
    /// Added to each forward pass (plays a slower model in tests).
    pub forward_delay: Duration,
}

/// `--max-lag`'s default, in seconds.
const DEFAULT_MAX_LAG: f64 = 1.0;

/// `vidcls watch`'s plan.
pub fn watch(a: WatchArgs) -> Result<WatchPlan> {
    let views = views(Some(1), 1, &a.sampling)?;
    let mut access = access(&a.source)?;
    access.network_timeout = seconds("--stall", a.stall)?;
    if let Some(w) = a.window {
        seconds("--window", w)?;
    }
    let hop = a.hop.map(super::hop).transpose()?;
    let duration = a.duration.map(|d| seconds("--duration", d)).transpose()?;
    let live_lag = live_lag(&a)?;
    let network = crate::decode::locate(&a.input).is_network();
    let request = Request {
        model: model_plan(&a.model, &a.sampling)?,
        inputs: vec![a.input.clone()],
        follow_links: false,
        shard: None,
        output: no_output(),
        chatter: Chatter {
            verbose: a.verbose,
            ..Chatter::default()
        },
        access,
        views,
        run: RunPlan {
            max_pixels: a.max_pixels,
            ..RunPlan::default()
        },
        labels: LabelPlan {
            all_scores: a.all_scores,
            segments: segment_rules(&a.seg, a.seg.segments)?,
            ..unlabelled(a.top_k as usize, None)
        },
        dump_inputs: None,
    };
    Ok(WatchPlan {
        request,
        window: a.window,
        hop,
        live_lag,
        reconnect: match (a.reconnect, a.no_reconnect) {
            (true, _) => true,
            (_, true) => false,
            _ => network,
        },
        duration,
        text: match a.format {
            Some(cli::WatchFormat::Text) => true,
            Some(cli::WatchFormat::Jsonl) => false,
            None => a.out.output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()),
        },
        output: a.out.output,
        force: a.out.force,
        verbose: a.verbose,
        forward_delay: Duration::from_millis(a.forward_delay_ms),
        source: a.input,
    })
}

/// `Some(max lag)` when windows may be dropped: any source but a regular file or `pipe:` (a
/// network URL, a device), or any source with `--live` / `--max-lag`.
fn live_lag(a: &WatchArgs) -> Result<Option<Duration>> {
    let stdin = crate::decode::locate(&a.input) == crate::decode::Location::Stdin;
    let file = std::fs::metadata(&a.input).is_ok_and(|m| m.is_file());
    let live = a.live || a.max_lag.is_some() || !(stdin || file);
    let lag = seconds("--max-lag", a.max_lag.unwrap_or(DEFAULT_MAX_LAG))?;
    Ok(live.then(|| Duration::from_secs_f64(lag)))
}

/// `vidcls probe`'s plan.
#[derive(Debug, Clone)]
pub struct ProbePlan {
    pub inputs: Vec<PathBuf>,
    /// Decode every frame to count them.
    pub count: bool,
    pub access: Access,
}

/// `vidcls probe`'s plan.
pub fn probe(a: ProbeArgs) -> Result<ProbePlan> {
    Ok(ProbePlan {
        access: access(&a.source)?,
        inputs: a.inputs,
        count: a.count,
    })
}

/// `vidcls train`'s flags as the train stage's options.
pub fn train(a: &TrainArgs) -> Result<crate::train::TrainOptions> {
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
    seconds("--time-limit", a.time_limit)?;
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
            epochs: a.epochs.map(|e| e as usize),
            batch_size: a.batch_size as usize,
            lr: a.lr.unwrap_or(if scratch { 3e-3 } else { 1e-3 }),
            backbone_lr: if scratch {
                1.0
            } else {
                crate::train::BACKBONE_LR
            },
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
        time_limit: Duration::from_secs_f64(a.time_limit),
        cache_bytes: (a.cache_mb as usize) << 20,
        resume: a.resume,
        force: a.force,
        quiet: a.quiet,
    })
}

/// `vidcls models`'s plan.
#[derive(Debug)]
pub enum ModelsPlan {
    /// The table (or JSON with `json`).
    List { json: bool },
    Pull {
        target: crate::hub::Target,
        options: crate::hub::PullOptions,
    },
}

/// `vidcls models`'s plan.
pub fn models(a: cli::ModelsArgs) -> Result<ModelsPlan> {
    let Some(cli::ModelsAction::Pull(p)) = a.action else {
        return Ok(ModelsPlan::List { json: a.json });
    };
    Ok(ModelsPlan::Pull {
        target: crate::hub::Target::parse(&p.target)?,
        options: crate::hub::PullOptions {
            offline: p.offline || crate::hub::offline_from_env(),
            from: p.from,
            http: crate::hub::Http {
                timeout: Duration::from_secs(p.timeout),
                token: None,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            },
            measure_precision: !p.no_precision_check,
        },
    })
}

/// `vidcls report`'s plan.
#[derive(Debug, Clone)]
pub struct ReportPlan {
    /// The JSON Lines files to read.
    pub records: Vec<PathBuf>,
    /// Where and how to write them (written whole: nothing to resume).
    pub output: Output,
    /// The run's input list, for coverage.
    pub inputs: Option<PathBuf>,
    /// Records of different models may be reported together.
    pub mixed: bool,
    pub quiet: bool,
}

/// `vidcls report`'s plan.
pub fn report(a: cli::ReportArgs) -> Result<ReportPlan> {
    let format: Format = a.format.into();
    check_page_destination(format, a.out.output.is_some())?;
    let csv_cells = csv_cells(a.csv_raw, format)?;
    Ok(ReportPlan {
        records: a.records,
        output: Output {
            path: a.out.output,
            format,
            force: a.out.force,
            resume: false,
            retry_failed: false,
            csv_cells,
        },
        inputs: a.inputs,
        mixed: a.mixed,
        quiet: a.quiet,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(argv: &[&str]) -> cli::Command {
        let all = std::iter::once("vidcls").chain(argv.iter().copied());
        cli::Cli::try_parse_from(all)
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
            .command
    }

    /// The batch plan of a command that runs a model over inputs.
    fn request(argv: &[&str]) -> Result<Request> {
        match parse(argv) {
            cli::Command::Predict(a) => predict(*a),
            cli::Command::Embed(a) => embed(*a).map(|p| p.request),
            cli::Command::Annotate(a) => annotate(*a).map(|p| p.request),
            cli::Command::Watch(a) => watch(*a).map(|p| p.request),
            other => panic!("{other:?} has no request"),
        }
    }

    const SHARED: &[&str] = &[
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--frames",
        "8",
        "--fps",
        "10",
        "--stride",
        "2",
        "--protocols",
        "rtsp,udp",
    ];

    #[test]
    fn every_command_maps_the_shared_flags_to_the_same_plan() {
        let with = |head: &[&str], tail: &[&str]| -> Vec<String> {
            [head, SHARED, tail]
                .concat()
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
        let lines = [
            with(&["predict"], &["v.mp4"]),
            with(&["embed", "-o", "d"], &["v.mp4"]),
            with(&["annotate", "-o", "x.mp4"], &["v.mp4"]),
            with(&["watch"], &["v.mp4"]),
        ];
        let plans: Vec<Request> = lines
            .iter()
            .map(|l| request(&l.iter().map(String::as_str).collect::<Vec<_>>()).unwrap())
            .collect();
        let first = &plans[0];
        assert_eq!(first.model.load.frames, Some(8));
        assert_eq!((first.views.fps, first.views.stride), (Some(10.0), Some(2)));
        assert_eq!(first.access.protocols, ["rtsp", "udp"]);
        for (p, line) in plans.iter().zip(&lines) {
            assert_eq!(p.model.source, first.model.source, "{line:?}");
            assert_eq!(p.model.load, first.model.load, "{line:?}");
            assert!(!p.model.auto_precision, "{line:?}");
            assert_eq!(
                (p.views.fps, p.views.stride),
                (Some(10.0), Some(2)),
                "{line:?}"
            );
            assert_eq!(p.access.protocols, first.access.protocols, "{line:?}");
            assert_eq!(p.inputs, [PathBuf::from("v.mp4")], "{line:?}");
        }
    }

    #[test]
    fn bad_combinations_give_one_line_naming_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["predict", "--csv-raw", "a"], "--csv-raw"),
            (&["predict", "--window", "2", "a"], "--window"),
            (&["predict", "--hop", "1", "a"], "--hop"),
            (&["predict", "--timeline", "--hop", "0.001", "a"], "--hop"),
            (&["predict", "--timeline", "--window", "0", "a"], "--window"),
            (
                &[
                    "predict",
                    "--segments",
                    "--seg-on",
                    "0.2",
                    "--seg-off",
                    "0.5",
                    "a",
                ],
                "--seg-on",
            ),
            (&["predict", "--fps", "0", "a"], "--fps"),
            (&["predict", "--timeout", "0", "a"], "--timeout"),
            (&["predict", "--shard", "3/2", "a"], "--shard"),
            (&["predict", "--protocols", "a b", "a"], "--protocols"),
            (&["predict", "--device", "tpu", "a"], "--device"),
            (&["embed", "--window", "0", "-o", "d", "a"], "--window"),
            (&["annotate", "--hop", "0", "-o", "x.mp4", "a"], "--hop"),
            (&["watch", "--stall", "0", "a"], "--stall"),
            (&["watch", "--max-lag=-1", "a"], "--max-lag"),
            (&["watch", "--duration", "1e300", "a"], "--duration"),
            (&["watch", "--window", "nan", "a"], "--window"),
        ];
        for (argv, flag) in cases {
            let e = request(argv)
                .err()
                .unwrap_or_else(|| panic!("{argv:?} accepted"));
            let text = format!("{e:#}");
            assert!(
                text.starts_with(flag),
                "{argv:?}: {text:?} does not start with {flag}"
            );
            assert!(!text.contains('\n'), "{argv:?}: {text:?} is not one line");
        }
    }

    #[test]
    fn subtitles_take_windows_without_segments() {
        let r = request(&["predict", "-f", "srt", "--window", "1", "--hop", "0.5", "a"]).unwrap();
        let w = r.labels.windows.unwrap();
        assert_eq!((w.length, w.hop), (1.0, 0.5));
        assert!(r.labels.segments.is_some());
        let t = request(&["predict", "--timeline", "a"]).unwrap();
        assert_eq!(t.labels.windows.unwrap().length, DEFAULT_WINDOW);
        assert!(request(&["predict", "a"]).unwrap().labels.windows.is_none());
    }

    #[test]
    fn index_per_shard() {
        let d = Path::new("out");
        assert_eq!(index_path(d, None), d.join("index.jsonl"));
        let s = Shard { k: 2, n: 4 };
        assert_eq!(index_path(d, Some(s)), d.join("index-2-of-4.jsonl"));
    }
}
