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

use crate::config::{self, WatchPlan};
use crate::decode::{plan_clips, shown_at, Access, Frame, FrameStream, SamplingSpec};
use crate::exit::ExitCode;
use crate::model::{aggregate, preprocess, top_k, Model, ModelConfig};
use crate::pipeline::Forward;
use crate::pipeline::Labelling;
use crate::report::{
    label_set, FileError, Gap, LiveRecord, LiveWindow, LiveWriter, SegmentStream, Stage, Timings,
    VideoResult, Window,
};
use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Where records go, and whether to say each window's lag on stderr.
struct Out {
    writer: LiveWriter,
    verbose: bool,
}

impl Out {
    /// `-o FILE` (refused if it exists, unless forced) or stdout.
    fn open(p: &WatchPlan) -> Result<Out> {
        let out: Box<dyn Write + Send> = match &p.output {
            Some(path) => Box::new(crate::sink::create_streamed(
                path,
                crate::atomic::Existing::replace_if(p.force),
            )?),
            None => Box::new(std::io::stdout()),
        };
        Ok(Out {
            writer: LiveWriter::new(out, p.text),
            verbose: p.verbose,
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
        crate::pipeline::written(self.writer.write(r))
    }
}

pub fn run(plan: WatchPlan) -> Result<ExitCode> {
    tch::set_num_threads(config::cores() as i32);
    let req = &plan.request;
    let model = crate::cmd::batch::load_model(&req.model, plan.verbose)?;
    let settings = req.settings(&model);
    let cut = Plan::new(&plan, &settings)?;
    let shown = plan.source.to_string_lossy().into_owned();
    crate::interrupt::install().context("cannot install signal handlers")?;
    if plan.verbose {
        eprintln!(
            "vidcls: watching {shown}: windows of {:.2} s every {:.2} s, {} frames at {} fps; reconnect {}",
            cut.window,
            cut.hop,
            cut.spec.frames,
            cut.fps,
            if plan.reconnect { "on" } else { "off" }
        );
    }
    let out = Mutex::new(Out::open(&plan)?);
    let slot = Slot::new(plan.live_lag);
    let labeller = Labeller {
        model: &model,
        cfg: &model.config,
        labelling: &settings.labelling,
        shown: shown.clone(),
        delay: plan.forward_delay,
    };
    let reader = Reader {
        source: &plan.source,
        plan: &cut,
        reconnect: plan.reconnect,
        limit: plan.duration,
        started: Instant::now(),
        slot: &slot,
        out: &out,
    };
    let ended = std::thread::scope(|scope| -> Result<Result<()>> {
        let worker = scope.spawn(|| labeller.label_windows(&slot, &out));
        let decoded = reader.run();
        slot.close();
        let worked = worker
            .join()
            .map_err(|_| anyhow::anyhow!("model thread panicked"))?;
        Ok(decoded.and(worked))
    })?;
    ended.map_or_else(|e| failed(e, shown, &out), |()| Ok(ExitCode::Success))
}

/// The run's error as the source's error record (stage `open` when it never opened).
fn failed(e: anyhow::Error, shown: String, out: &Mutex<Out>) -> Result<ExitCode> {
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
            label_set: Some(label_set(&l.labels)),
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
    access: Access,
}

impl Plan {
    /// One clip per window at the model's sampling (unless flags say otherwise); windows one
    /// clip long unless `--window` says otherwise.
    fn new(p: &WatchPlan, settings: &config::Settings) -> Result<Plan> {
        let spec = SamplingSpec {
            clips: 1,
            ..settings.clips.spec.clone()
        };
        let fps = spec.fps.unwrap_or(30.0);
        let window = match p.window {
            Some(w) => window_seconds(w, fps)?,
            None => spec.span(fps),
        };
        Ok(Plan {
            hop: p.hop.unwrap_or(window),
            window,
            fps,
            spec,
            max_pixels: settings.clips.max_pixels,
            access: settings.clips.access.clone(),
        })
    }
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
    /// Timestamps this close count as equal (the stream's [`FrameStream::tolerance`]).
    eps: f64,
}

impl Windows<'_> {
    fn new(plan: &Plan) -> Windows<'_> {
        Windows {
            plan,
            kept: VecDeque::new(),
            next_sample: 0.0,
            next_start: 0.0,
            offset: 0.0,
            last: f64::NEG_INFINITY,
            eps: 1e-6,
        }
    }

    /// Goes on at `offset` after a reconnect: the stream's times restart at 0.
    fn resume_at(&mut self, offset: f64) {
        self.offset = offset;
        self.kept.clear();
        self.next_sample = offset;
        self.next_start = self.next_start.max(offset);
    }

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
        t + self.offset + self.eps >= self.next_sample
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

    /// The kept frame a player shows at `t` (the decode stage's rule).
    fn frame_at(&self, t: f64) -> Option<Frame> {
        shown_at(&self.kept, t, self.eps).cloned()
    }
}

/// Decodes the source (reopening it when asked) and hands each finished window to the slot.
struct Reader<'a> {
    source: &'a Path,
    plan: &'a Plan,
    reconnect: bool,
    /// `--duration`.
    limit: Option<f64>,
    started: Instant,
    slot: &'a Slot,
    out: &'a Mutex<Out>,
}

/// How reading one opened stream ended.
enum Flow {
    /// The run is over (time limit, or the model thread stopped).
    Stop,
    /// The stream ended (`None`) or failed.
    End(Option<anyhow::Error>),
}

impl Reader<'_> {
    fn past_limit(&self) -> bool {
        self.limit
            .is_some_and(|l| self.started.elapsed().as_secs_f64() >= l)
    }

    fn run(&self) -> Result<()> {
        let mut windows = Windows::new(self.plan);
        let (mut reconnects, mut last_time) = (0u32, 0.0f64);
        loop {
            let lost_at = Instant::now();
            let Some(mut stream) = self.open(&mut reconnects)? else {
                return Ok(());
            };
            if reconnects > 0 {
                if !self.gap(last_time, lost_at, reconnects)? {
                    return Ok(());
                }
                // Times go on from the last frame, past the gap.
                windows.resume_at(last_time + lost_at.elapsed().as_secs_f64());
            }
            windows.eps = stream.tolerance();
            let finite = stream.duration.is_some();
            let ended = match self.pump(&mut stream, &mut windows, &mut last_time) {
                Flow::Stop => return Ok(()),
                Flow::End(e) => e,
            };
            if !self.reconnect || finite && ended.is_none() || self.past_limit() {
                return self.finish(ended, last_time);
            }
            reconnects += 1;
        }
    }

    /// Opens the source; after a loss, tries again with backoff until it opens, or the time
    /// is up (`None`).
    fn open(&self, reconnects: &mut u32) -> Result<Option<FrameStream>> {
        loop {
            match FrameStream::open(self.source, &self.plan.access, self.plan.max_pixels) {
                Ok(s) => return Ok(Some(s)),
                Err(_) if self.reconnect && *reconnects > 0 && self.past_limit() => {
                    return Ok(None)
                }
                Err(_) if self.reconnect && *reconnects > 0 => {
                    backoff(*reconnects);
                    *reconnects += 1;
                }
                Err(e) => return Err(e.context(OpenFailed)),
            }
        }
    }

    /// Writes the gap record of a reconnect; false once the output is gone.
    fn gap(&self, last_time: f64, lost_at: Instant, reconnects: u32) -> Result<bool> {
        let gap = Gap {
            path: self.source.to_string_lossy().into_owned(),
            gap_after: last_time,
            gap_s: lost_at.elapsed().as_secs_f64(),
            reconnects,
            reason: "the source stopped".into(),
            wall_time: now(),
        };
        self.out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write(&LiveRecord::Gap(gap))
    }

    /// Decodes frames into windows for the slot until the stream ends or the run stops.
    fn pump(&self, stream: &mut FrameStream, windows: &mut Windows, last_time: &mut f64) -> Flow {
        loop {
            if self.past_limit() {
                return Flow::Stop;
            }
            let mut want = |t: f64| windows.wants(t);
            match stream.next(&mut want) {
                Ok(Some(f)) => {
                    *last_time = f.time + windows.offset;
                    for job in windows.push(f.time, f.frame) {
                        if !self.slot.put(job) {
                            return Flow::Stop;
                        }
                    }
                }
                Ok(None) => return Flow::End(None),
                Err(e) => return Flow::End(Some(e)),
            }
        }
    }

    /// The run's end when the source is not reopened: a live source that stops sending ends
    /// like one that closes; one that never sent a frame is an error.
    fn finish(&self, ended: Option<anyhow::Error>, last_time: f64) -> Result<()> {
        match ended {
            None => Ok(()),
            Some(e) if last_time > 0.0 => {
                eprintln!(
                    "vidcls: {}: the source stopped ({e:#})",
                    self.source.display()
                );
                Ok(())
            }
            Some(e) => Err(e),
        }
    }
}

/// Waits before the next attempt: 0.5 s, doubling to at most 8 s.
fn backoff(attempt: u32) {
    let secs = (0.5 * 2f64.powi(attempt.min(4) as i32)).min(8.0);
    std::thread::sleep(Duration::from_secs_f64(secs));
}
