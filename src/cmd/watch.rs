//! `vidcls watch SOURCE`: label a camera or a stream as it plays.
//!
//! Two threads and a queue of two windows between them:
//!
//! ```text
//! decode (this thread): FrameStream -> frames sampled at the model's rate, kept for one window
//!        -> each finished window's clip(s)  --put-->  slot (at most two windows)
//! model thread:  slot --take--> preprocess (model/preprocess.rs) -> Model::forward
//!        -> aggregate, top-k -> one record, flushed
//! ```
//!
//! Windows are dropped by lag, not by slot ([`Slot`]). A source that is not live (a file, or a
//! pipe that delivers faster than real time) waits for the model: every window is labelled. A
//! live one (network, device, `--live`) never waits: a window is dropped when the model gets to
//! it more than `--max-lag` seconds after its last frame arrived and a newer one waits, or when
//! the queue is full, so the lag stays under about `--max-lag` plus one forward pass and
//! memory holds at most a window of frames and three windows of clips, however long the run. A network source that drops is reopened with backoff (a gap record says for how
//! long); a source that ends ends the run.

use crate::cli::{self, WatchArgs};
use crate::config::{self, Request};
use crate::decode::{plan_clips, Frame, FrameStream, SamplingSpec};
use crate::exit::ExitCode;
use crate::model::{aggregate, preprocess, top_k, Model, ModelConfig};
use crate::pipeline::Forward;
use crate::pipeline::Labelling;
use crate::report::{FileError, Segment, SegmentStream, Stage, Timings, VideoResult, Window};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One window's labels, as soon as the model has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveWindow {
    #[serde(flatten)]
    pub result: VideoResult,
    /// Wall-clock time the record was written (seconds since the Unix epoch).
    pub wall_time: f64,
    /// Seconds from the window's last frame arriving to its record being written.
    pub lag_s: f64,
    /// Windows dropped so far because the model was busy (newest wins).
    pub dropped: u64,
}

/// The source stopped and was reopened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub path: String,
    /// Stream time (s) of the last frame before the gap.
    pub gap_after: f64,
    /// Wall-clock seconds without frames.
    pub gap_s: f64,
    pub reconnects: u32,
    pub reason: String,
    pub wall_time: f64,
}

/// What `watch` writes, one JSON object per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LiveRecord {
    Window(Box<LiveWindow>),
    Gap(Gap),
    /// With `--segments`: a segment, written when it closes.
    Segment(Segment),
    Err(FileError),
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A window ready for the model: its clips' frames.
struct Job {
    window: Window,
    clips: Vec<Vec<Frame>>,
    ready: Instant,
}

/// Windows between the decode thread and the model thread, at most [`QUEUED`] of them.
///
/// - Not live (a file, or a pipe that delivers faster than real time): the decode thread waits
///   while the queue is full, so every window is labelled and nothing is dropped.
/// - Live (a network source or a device, or `--live` / `--max-lag`): the decode thread never
///   waits. A window is dropped only when the model is behind: when it is taken more than
///   `max_lag` seconds after its last frame arrived and a newer one waits, or when a new window
///   finds the queue full (the oldest goes).
struct Slot {
    state: Mutex<SlotState>,
    wake: Condvar,
    /// Live: the lag past which a waiting window is dropped.
    max_lag: Option<Duration>,
}

/// Windows a [`Slot`] holds: two windows of clips at most, so memory stays flat.
const QUEUED: usize = 2;

#[derive(Default)]
struct SlotState {
    jobs: VecDeque<Job>,
    closed: bool,
    dropped: u64,
}

impl Slot {
    fn new(max_lag: Option<Duration>) -> Slot {
        Slot {
            state: Mutex::default(),
            wake: Condvar::new(),
            max_lag,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a window; false once the slot is closed (the model thread has stopped).
    fn put(&self, job: Job) -> bool {
        let mut s = self.lock();
        while self.max_lag.is_none() && s.jobs.len() >= QUEUED && !s.closed {
            s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if s.closed {
            return false;
        }
        if s.jobs.len() >= QUEUED {
            s.jobs.pop_front();
            s.dropped += 1;
        }
        s.jobs.push_back(job);
        self.wake.notify_all();
        true
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    /// The next window and the drops so far; `None` once closed and empty.
    fn take(&self) -> Option<(Job, u64)> {
        let mut s = self.lock();
        loop {
            if let Some(max) = self.max_lag {
                while s.jobs.len() > 1 && s.jobs[0].ready.elapsed() > max {
                    s.jobs.pop_front();
                    s.dropped += 1;
                }
            }
            if let Some(job) = s.jobs.pop_front() {
                self.wake.notify_all();
                return Some((job, s.dropped));
            }
            if s.closed {
                return None;
            }
            s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Closes the slot when the model thread stops, however it stops, so the decode thread never
/// waits for a reader that is gone.
struct CloseOnDrop<'a>(&'a Slot);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Where and how records go.
struct Out {
    out: Box<dyn Write + Send>,
    text: bool,
    verbose: bool,
}

impl Out {
    /// `-o FILE` or stdout; text on a terminal (or with `-f text`), JSON Lines otherwise.
    fn open(a: &WatchArgs) -> Result<Out> {
        let text = match a.format {
            Some(cli::WatchFormat::Text) => true,
            Some(cli::WatchFormat::Jsonl) => false,
            None => a.output.is_none() && std::io::stdout().is_terminal(),
        };
        let out: Box<dyn Write + Send> = match &a.output {
            Some(p) => Box::new(crate::sink::create_streamed(
                p,
                crate::atomic::Existing::replace_if(a.force),
            )?),
            None => Box::new(std::io::stdout()),
        };
        Ok(Out {
            out,
            text,
            verbose: a.verbose,
        })
    }

    /// Writes records in order; false once the output is gone.
    fn write_all(&mut self, records: impl IntoIterator<Item = LiveRecord>) -> Result<bool> {
        for r in records {
            if !self.write(&r)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn write(&mut self, r: &LiveRecord) -> Result<bool> {
        let mut buf = Vec::new();
        if self.text {
            render_text(&mut buf, r)?;
        } else {
            serde_json::to_writer(&mut buf, r)?;
            buf.push(b'\n');
        }
        let _whole = crate::interrupt::writing();
        crate::pipeline::written(self.out.write_all(&buf).and_then(|()| self.out.flush()))
    }
}

fn render_text(buf: &mut Vec<u8>, r: &LiveRecord) -> std::io::Result<()> {
    match r {
        LiveRecord::Window(w) => {
            let v = &w.result;
            let win = v.window.unwrap_or(Window::new(0.0, 0.0));
            let labels: Vec<String> = v
                .top_k
                .iter()
                .map(|p| format!("{} {:.0}%", p.label, p.score * 100.0))
                .collect();
            writeln!(
                buf,
                "[{:8.2}s-{:8.2}s]  {}  (lag {:.2} s{})",
                win.start,
                win.end,
                labels.join("  "),
                w.lag_s,
                if w.dropped > 0 {
                    format!(", {} dropped", w.dropped)
                } else {
                    String::new()
                }
            )
        }
        LiveRecord::Gap(g) => writeln!(
            buf,
            "-- source lost after {:.2} s ({}); back after {:.2} s (reconnect {})",
            g.gap_after, g.reason, g.gap_s, g.reconnects
        ),
        LiveRecord::Segment(g) => writeln!(
            buf,
            "== {:8.2}s-{:8.2}s  {} {:.0}%",
            g.start,
            g.end,
            g.label,
            g.score * 100.0
        ),
        LiveRecord::Err(e) => writeln!(buf, "{}\n  error ({}): {}", e.path, e.stage, e.error),
    }
}

/// `watch`'s flags as the `predict` flags they share (model, device, precision, views), so
/// they are checked and mapped by the same code.
fn predict_args(a: &WatchArgs) -> cli::PredictArgs {
    let mut p = cli::PredictArgs::defaults(vec![a.source.clone()]);
    p.model = a.model.clone();
    p.device = a.device.clone();
    p.precision = a.precision;
    p.top_k = a.top_k;
    p.views.frames = a.frames;
    p.views.fps = a.fps;
    p.views.stride = a.stride;
    p.all_scores = a.all_scores;
    p.seg = a.seg.clone();
    p.source = a.source_args.clone();
    p
}

/// Whether to reopen the source when it ends or fails.
fn reconnects(a: &WatchArgs, network: bool) -> bool {
    match (a.reconnect, a.no_reconnect) {
        (true, _) => true,
        (_, true) => false,
        _ => network,
    }
}

pub fn run(a: WatchArgs) -> Result<ExitCode> {
    tch::set_num_threads(config::cores() as i32);
    let mut access = config::access(&a.source_args)?;
    access.network_timeout = config::seconds("--stall", a.stall)?;
    crate::decode::set_access(access);
    let req = Request::from_args(predict_args(&a))?;
    let model = crate::cmd::batch::load_model(&req)?;
    let settings = req.settings(&model);
    let spec = SamplingSpec {
        clips: 1,
        ..settings.clips.spec.clone()
    };
    let cfg = model.config.clone();
    let fps = spec.fps.unwrap_or(30.0);
    let span = spec.span(fps);
    let window = match a.window {
        Some(w) => window_seconds(w, fps)?,
        None => span,
    };
    let hop = config::hop(a.hop.unwrap_or(window))?;
    let limit = a
        .duration
        .map(|d| config::seconds("--duration", d))
        .transpose()?;
    let shown = a.source.to_string_lossy().into_owned();
    let network = crate::decode::locate(&a.source).is_network();
    let reconnect = reconnects(&a, network);
    crate::interrupt::install().context("cannot install signal handlers")?;
    if a.verbose {
        eprintln!(
            "vidcls: watching {shown}: windows of {window:.2} s every {hop:.2} s, {} frames at {fps} fps; reconnect {}",
            spec.frames,
            if reconnect { "on" } else { "off" }
        );
    }
    let out = Arc::new(Mutex::new(Out::open(&a)?));
    let slot = Arc::new(Slot::new(live_lag(&a)?));
    let labeller = Labeller {
        model: &model,
        cfg: &cfg,
        labelling: &settings.labelling,
        shown: shown.clone(),
        delay: Duration::from_millis(a.forward_delay_ms),
    };
    let started = Instant::now();
    let ended = std::thread::scope(|scope| -> Result<Result<()>> {
        let worker = scope.spawn(|| labeller.label_windows(&slot, &out));
        let decoded = decode_loop(
            &a.source,
            &Plan {
                spec,
                fps,
                window,
                hop,
                max_pixels: a.max_pixels,
            },
            reconnect,
            limit,
            started,
            &slot,
            &out,
        );
        slot.close();
        let worked = worker
            .join()
            .map_err(|_| anyhow::anyhow!("model thread panicked"))?;
        Ok(decoded.and(worked))
    })?;
    match ended {
        Ok(()) => Ok(ExitCode::Success),
        Err(e) => {
            let stage = if e.downcast_ref::<OpenFailed>().is_some() {
                Stage::Open
            } else {
                Stage::Decode
            };
            let record = LiveRecord::Err(FileError::new(shown, stage, &e));
            out.lock()
                .unwrap_or_else(|e| e.into_inner())
                .write(&record)?;
            eprintln!("vidcls: {e:#}");
            Ok(ExitCode::SomeFailed)
        }
    }
}

/// The model thread's side: each window taken from the slot becomes a record (and, with
/// segments, the segments it closed).
struct Labeller<'a> {
    model: &'a Model,
    cfg: &'a ModelConfig,
    labelling: &'a Labelling,
    shown: String,
    /// Added to each forward pass (a hidden flag that plays a slower model in tests).
    delay: Duration,
}

impl Labeller<'_> {
    /// Labels windows until the slot closes or the output is gone.
    fn label_windows(&self, slot: &Slot, out: &Mutex<Out>) -> Result<()> {
        let _closes = CloseOnDrop(slot);
        let l = self.labelling;
        let mut segments = l
            .segments
            .map(|r| SegmentStream::new(&self.shown, &l.labels, r));
        while let Some((job, dropped)) = slot.take() {
            let t0 = Instant::now();
            let scores = self.scores(&job)?;
            let closed = segments
                .as_mut()
                .map_or_else(Vec::new, |s| s.push(job.window, scores.clone()));
            let record = LiveRecord::Window(Box::new(LiveWindow {
                result: self.result(&job, scores, t0),
                wall_time: now(),
                lag_s: job.ready.elapsed().as_secs_f64(),
                dropped,
            }));
            let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
            if o.verbose {
                eprintln!(
                    "vidcls: window {:.2}-{:.2} s, lag {:.2} s, {dropped} dropped",
                    job.window.start,
                    job.window.end,
                    job.ready.elapsed().as_secs_f64()
                );
            }
            let segments = closed.into_iter().map(LiveRecord::Segment);
            if !o.write_all(std::iter::once(record).chain(segments))? {
                return Ok(());
            }
        }
        // The stream ended: the segments still open close with it.
        let rest = segments
            .as_mut()
            .map_or_else(Vec::new, SegmentStream::finish);
        let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
        o.write_all(rest.into_iter().map(LiveRecord::Segment))?;
        Ok(())
    }

    /// The window's aggregated scores, one per class.
    fn scores(&self, job: &Job) -> Result<Vec<f64>> {
        let mut views = Vec::new();
        for clip in &job.clips {
            views.extend(preprocess::clip_to_views(clip, self.cfg, 1)?);
        }
        let rows = self.model.run_batch(&views)?;
        std::thread::sleep(self.delay);
        Ok(aggregate(&rows, self.labelling.aggregate))
    }

    /// The window's record, as `predict --timeline` writes it.
    fn result(&self, job: &Job, scores: Vec<f64>, t0: Instant) -> VideoResult {
        let l = self.labelling;
        VideoResult {
            path: self.shown.clone(),
            model: l.model.clone(),
            top_k: top_k(&scores, &l.labels, l.top_k),
            clips: job.clips.len(),
            crops: 1,
            duration: job.window.end,
            window: Some(job.window),
            frame_times: job
                .clips
                .iter()
                .map(|c| c.iter().map(|f| f.time).collect())
                .collect(),
            padded_frames: 0,
            warnings: Vec::new(),
            scores: l.all_scores.then_some(scores),
            timings: Timings {
                decode_ms: 0.0,
                preprocess_ms: 0.0,
                model_ms: t0.elapsed().as_secs_f64() * 1e3,
            },
            thumbnails: Vec::new(),
            ran: l.ran.clone(),
        }
    }
}

/// Marks the error of a source that could not be opened at all: its record's stage is `open`.
#[derive(Debug)]
struct OpenFailed;

impl std::fmt::Display for OpenFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cannot open the source")
    }
}

/// `--window`: a window keeps its frames at the sampling rate, at most
/// [`config::limits::WATCH_FRAMES`] of them.
fn window_seconds(w: f64, fps: f64) -> Result<f64> {
    config::seconds("--window", w)?;
    let most = config::limits::WATCH_FRAMES;
    if w * fps > most {
        anyhow::bail!(
            "--window {w}: {:.0} frames at {fps} fps; a window keeps at most {most} (use --window {:.1} or less)",
            w * fps,
            most / fps
        );
    }
    Ok(w)
}

/// How windows are cut from the stream.
struct Plan {
    spec: SamplingSpec,
    fps: f64,
    window: f64,
    hop: f64,
    /// `--max-pixels`: frames above it are refused.
    max_pixels: u64,
}

/// Frames sampled at the model's rate, kept while a window may still need them.
struct Windows<'a> {
    plan: &'a Plan,
    kept: VecDeque<Frame>,
    next_sample: f64,
    next_start: f64,
    /// Added to the stream's own times (it restarts at 0 after a reconnect).
    offset: f64,
    /// Time of the frame before the newest one.
    last: f64,
}

impl Windows<'_> {
    /// Skips the windows between a frame at `last` and the next at `t`, far later: they hold
    /// no frame of their own, and a stream that jumps ahead by days (a broken or crafted
    /// timestamp) would otherwise make a window for every hop of the gap. The last window
    /// that ends by `t` stays.
    fn skip_gap(&mut self, t: f64) {
        let (window, hop) = (self.plan.window, self.plan.hop);
        if self.next_start > self.last && self.next_start + window < t {
            self.next_start += ((t - window - self.next_start) / hop).floor() * hop;
        }
    }

    fn wants(&self, t: f64) -> bool {
        t + self.offset + 1e-6 >= self.next_sample
    }

    /// Takes one decoded frame; returns the windows it completes.
    fn push(&mut self, time: f64, frame: Option<Frame>) -> Vec<Job> {
        let t = time + self.offset;
        if let Some(mut f) = frame {
            f.time = t;
            self.kept.push_back(f);
            let step = 1.0 / self.plan.fps;
            self.next_sample += step;
            if self.next_sample < t {
                self.next_sample = t + step;
            }
        }
        let mut jobs = Vec::new();
        while t >= self.next_start + self.plan.window {
            self.skip_gap(t);
            let (start, end) = (self.next_start, self.next_start + self.plan.window);
            let clips: Vec<Vec<Frame>> = plan_clips(start, end, self.plan.fps, &self.plan.spec)
                .iter()
                .map(|p| p.times.iter().filter_map(|&t| self.frame_at(t)).collect())
                .filter(|c: &Vec<Frame>| !c.is_empty())
                .collect();
            if !clips.is_empty() {
                jobs.push(Job {
                    window: Window::new(start, end),
                    clips,
                    ready: Instant::now(),
                });
            }
            self.next_start += self.plan.hop;
        }
        self.last = t;
        // Keep only what the next window can use.
        while self.kept.get(1).is_some_and(|f| f.time <= self.next_start) {
            self.kept.pop_front();
        }
        jobs
    }

    /// The last kept frame at or before `t` (the first one for times before it).
    fn frame_at(&self, t: f64) -> Option<Frame> {
        self.kept
            .iter()
            .rev()
            .find(|f| f.time <= t + 1e-6)
            .or(self.kept.front())
            .cloned()
    }
}

/// Decodes the source (reopening it when asked) and hands each finished window to the slot.
fn decode_loop(
    source: &Path,
    plan: &Plan,
    reconnect: bool,
    limit: Option<f64>,
    started: Instant,
    slot: &Slot,
    out: &Mutex<Out>,
) -> Result<()> {
    let mut windows = Windows {
        plan,
        kept: VecDeque::new(),
        next_sample: 0.0,
        next_start: 0.0,
        offset: 0.0,
        last: f64::NEG_INFINITY,
    };
    let mut reconnects = 0u32;
    let mut last_time = 0.0f64;
    let past_limit = || limit.is_some_and(|l| started.elapsed().as_secs_f64() >= l);
    loop {
        let lost_at = Instant::now();
        let mut stream = match FrameStream::open(source, plan.max_pixels) {
            Ok(s) => s,
            Err(_) if reconnect && reconnects > 0 && past_limit() => return Ok(()),
            Err(_) if reconnect && reconnects > 0 => {
                backoff(reconnects);
                reconnects += 1;
                continue;
            }
            Err(e) => return Err(e.context(OpenFailed)),
        };
        if reconnects > 0 {
            let gap = Gap {
                path: source.to_string_lossy().into_owned(),
                gap_after: last_time,
                gap_s: lost_at.elapsed().as_secs_f64(),
                reconnects,
                reason: "the source stopped".into(),
                wall_time: now(),
            };
            if !out
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write(&LiveRecord::Gap(gap))?
            {
                return Ok(());
            }
            // Times go on from the last frame, past the gap.
            windows.offset = last_time + lost_at.elapsed().as_secs_f64();
            windows.kept.clear();
            windows.next_sample = windows.offset;
            windows.next_start = windows.next_start.max(windows.offset);
        }
        let finite = stream.duration.is_some();
        let ended = loop {
            if past_limit() {
                return Ok(());
            }
            let mut want = |t: f64| windows.wants(t);
            match stream.next(&mut want) {
                Ok(Some(f)) => {
                    last_time = f.time + windows.offset;
                    for job in windows.push(f.time, f.frame) {
                        if !slot.put(job) {
                            return Ok(());
                        }
                    }
                }
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        if !reconnect || finite && ended.is_none() || past_limit() {
            return match ended {
                None => Ok(()),
                // A live source that stops sending ends like one that closes.
                Some(e) if last_time > 0.0 => {
                    eprintln!("vidcls: {}: the source stopped ({e:#})", source.display());
                    Ok(())
                }
                Some(e) => Err(e),
            };
        }
        reconnects += 1;
    }
}

/// `Some(max lag)` when windows may be dropped: any source but a regular file or `pipe:` (a
/// network URL, a device), or any source with `--live` / `--max-lag`.
fn live_lag(a: &WatchArgs) -> Result<Option<Duration>> {
    let stdin = crate::decode::locate(&a.source) == crate::decode::Location::Stdin;
    let file = std::fs::metadata(&a.source).is_ok_and(|m| m.is_file());
    let live = a.live || a.max_lag.is_some() || !(stdin || file);
    let lag = config::seconds("--max-lag", a.max_lag.unwrap_or(DEFAULT_MAX_LAG))?;
    Ok(live.then(|| Duration::from_secs_f64(lag)))
}

/// `--max-lag`'s default, in seconds.
const DEFAULT_MAX_LAG: f64 = 1.0;

/// Waits before the next attempt: 0.5 s, doubling to at most 8 s.
fn backoff(attempt: u32) {
    let secs = (0.5 * 2f64.powi(attempt.min(4) as i32)).min(8.0);
    std::thread::sleep(Duration::from_secs_f64(secs));
}
