//! Threads and bounded channels joining the stages:
//! decode workers -> (bounded) -> one model runner batching views across videos -> one writer.
//!
//! Memory stays bounded by the channel capacity whatever the number of inputs; the writer
//! restores input order whatever the number of threads.

use crate::cli::Aggregate;
use crate::decode::{plan_clips, ClipPlan, SamplingSpec, Video};
use crate::model::{aggregate, preprocess, top_k, Model, ModelConfig};
use crate::report::{FileError, Record, Timings, VideoResult, Writer};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tch::Tensor;

/// How each video is turned into views and scores.
#[derive(Debug, Clone)]
pub struct Settings {
    pub spec: SamplingSpec,
    pub crops: usize,
    pub aggregate: Aggregate,
    pub batch_size: usize,
    pub threads: usize,
    pub top_k: usize,
    /// `--timeline`: (window, hop) in seconds.
    pub timeline: Option<(f64, f64)>,
    pub all_scores: bool,
    pub dump_inputs: Option<PathBuf>,
    /// Per-input limit on decoding and preprocessing.
    pub timeout: Duration,
}

/// An input to label (`Ok`) or one already known to fail (`Err`), in output order.
pub type Job = std::result::Result<PathBuf, FileError>;

/// Counts for the summary line.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub inputs: usize,
    pub ok: usize,
    pub failed: usize,
    pub records: usize,
    pub views: usize,
    pub elapsed: Duration,
    /// The reader of our output went away (`| head`): stop quietly.
    pub closed_pipe: bool,
}

/// A group of views that yields one record: a whole video, or one window of it.
struct Unit {
    window: Option<[f64; 2]>,
    views: Vec<Tensor>,
    frame_times: Vec<Vec<f64>>,
    clips: usize,
    padded: usize,
}

struct Prepared {
    index: usize,
    path: String,
    duration: f64,
    warnings: Vec<String>,
    units: Vec<Unit>,
    decode_ms: f64,
    preprocess_ms: f64,
}

enum Decoded {
    Ok(Prepared),
    Err(usize, FileError),
}

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn fail(path: &Path, stage: &str, err: &anyhow::Error) -> FileError {
    FileError {
        path: path_string(path),
        stage: stage.into(),
        error: format!("{err:#}"),
    }
}

/// Time windows of a video for `--timeline`; the last one ends at the video's end.
pub fn windows(duration: f64, window: f64, hop: f64) -> Vec<[f64; 2]> {
    let mut out = Vec::new();
    let mut start = 0.0;
    loop {
        let end = (start + window).min(duration);
        out.push([start, end]);
        if start + window >= duration - 1e-9 {
            break;
        }
        start += hop;
    }
    out
}

/// Decodes and preprocesses one video (runs on a decode worker).
fn prepare(index: usize, path: &Path, model_cfg: &ModelConfig, s: &Settings) -> Decoded {
    let t0 = Instant::now();
    // Only regular files: opening a FIFO or a device would block or never end.
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(m) => {
            let kind = if m.is_dir() {
                "a directory"
            } else {
                "not a regular file (FIFO, socket or device)"
            };
            return Decoded::Err(index, fail(path, "open", &anyhow::anyhow!("{kind}")));
        }
        Err(e) => return Decoded::Err(index, fail(path, "open", &anyhow::Error::new(e))),
    }
    let mut video = match Video::open(path) {
        Ok(v) => v,
        Err(e) => return Decoded::Err(index, fail(path, "open", &e)),
    };
    let duration = video.meta().duration;
    let fps = video.native_fps();
    let groups: Vec<(Option<[f64; 2]>, Vec<ClipPlan>)> = match s.timeline {
        Some((w, h)) => windows(duration, w, h)
            .into_iter()
            .map(|win| (Some(win), plan_clips(win[0], win[1], fps, &s.spec)))
            .collect(),
        None => vec![(None, plan_clips(0.0, duration, fps, &s.spec))],
    };
    let mut units = Vec::with_capacity(groups.len());
    let mut decode = Duration::ZERO;
    let mut pre = Duration::ZERO;
    let mut since = t0;
    for (window, plans) in groups {
        let mut unit = Unit {
            window,
            views: Vec::new(),
            frame_times: Vec::new(),
            clips: 0,
            padded: 0,
        };
        for plan in &plans {
            let clip = match video.read_clip(plan) {
                Ok(c) => c,
                Err(e) => return Decoded::Err(index, fail(path, "decode", &e)),
            };
            decode += since.elapsed();
            since = Instant::now();
            match preprocess::clip_to_views(&clip.frames, model_cfg, s.crops) {
                Ok(v) => unit.views.extend(v),
                Err(e) => return Decoded::Err(index, fail(path, "preprocess", &e)),
            }
            unit.frame_times
                .push(clip.frames.iter().map(|f| f.time).collect());
            unit.clips += 1;
            unit.padded += clip.padded;
            pre += since.elapsed();
            since = Instant::now();
        }
        units.push(unit);
    }
    Decoded::Ok(Prepared {
        index,
        path: path_string(path),
        duration,
        warnings: video.warnings().to_vec(),
        units,
        decode_ms: decode.as_secs_f64() * 1e3,
        preprocess_ms: pre.as_secs_f64() * 1e3,
    })
}

/// Keeps decode workers at most `window` inputs ahead of the model runner, so the runner's
/// reorder buffer (and memory) stays bounded even behind one slow video.
struct Gate {
    frontier: Mutex<usize>,
    moved: Condvar,
    window: usize,
}

impl Gate {
    fn new(window: usize) -> Gate {
        Gate {
            frontier: Mutex::new(0),
            moved: Condvar::new(),
            window,
        }
    }
    fn wait_for(&self, index: usize, stop: &AtomicBool) {
        let mut f = self.frontier.lock().unwrap_or_else(|e| e.into_inner());
        while index >= *f + self.window && !stop.load(Ordering::Relaxed) {
            f = self.moved.wait(f).unwrap_or_else(|e| e.into_inner());
        }
    }
    fn advance(&self, to: usize) {
        *self.frontier.lock().unwrap_or_else(|e| e.into_inner()) = to;
        self.moved.notify_all();
    }
    fn open_all(&self) {
        self.advance(usize::MAX / 2);
    }
}

/// A video whose views are in the model queue.
struct InFlight {
    prep: Prepared,
    logits: Vec<Vec<Option<Vec<f64>>>>,
    missing: usize,
    model_ms: f64,
    error: Option<FileError>,
}

impl InFlight {
    fn into_records(self, model: &Model, s: &Settings) -> Vec<Record> {
        if let Some(e) = self.error {
            return vec![Record::Err(e)];
        }
        let p = self.prep;
        let n_units = p.units.len().max(1) as f64;
        p.units
            .into_iter()
            .zip(self.logits)
            .map(|(u, logits)| {
                let logits: Vec<Vec<f64>> = logits.into_iter().flatten().collect();
                let scores = aggregate(&logits, s.aggregate);
                Record::Ok(VideoResult {
                    path: p.path.clone(),
                    model: model.config.name.clone(),
                    top_k: top_k(&scores, &model.config.labels, s.top_k),
                    clips: u.clips,
                    crops: s.crops,
                    duration: p.duration,
                    window: u.window,
                    frame_times: u.frame_times,
                    padded_frames: u.padded,
                    warnings: p.warnings.clone(),
                    scores: s.all_scores.then_some(scores),
                    timings: Timings {
                        decode_ms: p.decode_ms / n_units,
                        preprocess_ms: p.preprocess_ms / n_units,
                        model_ms: self.model_ms / n_units,
                    },
                })
            })
            .collect()
    }
}

/// Writes a float32 tensor as a NumPy `.npy` file (for parity checks).
fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    let t = t.to_kind(tch::Kind::Float).contiguous();
    let shape: Vec<String> = t.size().iter().map(|d| d.to_string()).collect();
    let shape = if shape.len() == 1 {
        format!("{},", shape[0])
    } else {
        shape.join(", ")
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({shape}), }}");
    while (header.len() + 11) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let data: Vec<f32> = Vec::<f32>::try_from(t.flatten(0, -1))?;
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// What the decode workers share.
struct Shared {
    jobs: Vec<Job>,
    next: AtomicUsize,
    stop: AtomicBool,
    gate: Gate,
    cfg: ModelConfig,
    settings: Settings,
    /// When each input in progress started (for the per-file time limit).
    started: Mutex<HashMap<usize, Instant>>,
}

/// A decode worker: takes the next input, decodes and preprocesses it, sends the result.
/// Detached, so a worker stuck inside a decoder cannot hold up the end of the run.
fn spawn_worker(shared: Arc<Shared>, tx: SyncSender<Decoded>, name: String) -> std::io::Result<()> {
    std::thread::Builder::new().name(name).spawn(move || {
        while !shared.stop.load(Ordering::Relaxed) {
            let i = shared.next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = shared.jobs.get(i) else { break };
            shared.gate.wait_for(i, &shared.stop);
            lock(&shared.started).insert(i, Instant::now());
            let msg = match job {
                Ok(path) => std::panic::catch_unwind(AssertUnwindSafe(|| {
                    prepare(i, path, &shared.cfg, &shared.settings)
                }))
                .unwrap_or_else(|_| {
                    Decoded::Err(
                        i,
                        fail(
                            path,
                            "decode",
                            &anyhow::anyhow!("internal error (panic) while decoding"),
                        ),
                    )
                }),
                Err(e) => Decoded::Err(i, e.clone()),
            };
            lock(&shared.started).remove(&i);
            if tx.send(msg).is_err() {
                break;
            }
        }
    })?;
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the whole batch. `jobs` are in output order; `writer` gets every record.
pub fn run(
    jobs: Vec<Job>,
    model: &Model,
    s: &Settings,
    writer: Writer,
    progress: ProgressBar,
) -> Result<Stats> {
    let started = Instant::now();
    let threads = s.threads.max(1);
    let shared = Arc::new(Shared {
        jobs,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        gate: Gate::new(threads * 2 + 2),
        cfg: model.config.clone(),
        settings: s.clone(),
        started: Mutex::new(HashMap::new()),
    });
    let (dec_tx, dec_rx) = mpsc::sync_channel::<Decoded>(threads * 2);
    let (out_tx, out_rx) = mpsc::sync_channel::<(usize, Vec<Record>)>(64);
    let writer_thread = {
        let (progress, shared) = (progress.clone(), shared.clone());
        std::thread::Builder::new()
            .name("writer".into())
            .spawn(move || write_in_order(out_rx, writer, progress, &shared.stop))?
    };
    for w in 0..threads {
        spawn_worker(shared.clone(), dec_tx.clone(), format!("decode-{w}"))?;
    }
    let mut stats = Stats {
        inputs: shared.jobs.len(),
        ..Stats::default()
    };
    let runner = Runner {
        model,
        s,
        out: &out_tx,
        progress: &progress,
        shared: &shared,
        tx: &dec_tx,
    };
    runner.run(dec_rx, &mut stats);
    shared.stop.store(true, Ordering::Relaxed);
    shared.gate.open_all();
    drop(out_tx);
    let written = writer_thread
        .join()
        .map_err(|_| anyhow::anyhow!("writer thread panicked"))?;
    let (ok, failed, records, closed) = written?;
    stats.ok = ok;
    stats.failed = failed;
    stats.records = records;
    stats.closed_pipe = closed;
    stats.elapsed = started.elapsed();
    Ok(stats)
}

/// The model runner. Views enter the queue in input order and go through the model in batches
/// of exactly `batch_size` (the last one excepted), so results do not depend on thread timing.
struct Runner<'a> {
    model: &'a Model,
    s: &'a Settings,
    out: &'a SyncSender<(usize, Vec<Record>)>,
    progress: &'a ProgressBar,
    shared: &'a Arc<Shared>,
    tx: &'a SyncSender<Decoded>,
}

impl Runner<'_> {
    /// Sends a finished (or failed) video's records to the writer; false if the writer is gone.
    fn finish(&self, flight: &mut HashMap<usize, InFlight>, idx: usize) -> bool {
        if let Some(f) = flight.get(&idx) {
            if f.missing == 0 || f.error.is_some() {
                let f = flight.remove(&idx).expect("present");
                return self
                    .out
                    .send((idx, f.into_records(self.model, self.s)))
                    .is_ok();
            }
        }
        true
    }

    /// The input the runner waits for has run past the time limit: give up on it, and start
    /// a new worker in place of the one still stuck in it.
    fn check_time_limit(&self, next_in: usize, ready: &mut BTreeMap<usize, Decoded>) {
        let t0 = lock(&self.shared.started).get(&next_in).copied();
        if t0.is_some_and(|t| t.elapsed() > self.s.timeout) {
            lock(&self.shared.started).remove(&next_in);
            let path = match &self.shared.jobs[next_in] {
                Ok(p) => p.clone(),
                Err(e) => PathBuf::from(&e.path),
            };
            let e = anyhow::anyhow!(
                "gave up after {:.0} s (--timeout)",
                self.s.timeout.as_secs_f64()
            );
            ready.insert(next_in, Decoded::Err(next_in, fail(&path, "decode", &e)));
            let name = format!("decode-r{next_in}");
            if let Err(e) = spawn_worker(self.shared.clone(), self.tx.clone(), name) {
                self.progress.println(format!(
                    "vidcls: warning: cannot start a decode worker: {e}"
                ));
            }
        }
    }

    fn run(&self, rx: Receiver<Decoded>, stats: &mut Stats) {
        let (s, total) = (self.s, self.shared.jobs.len());
        // (video index, unit, view, tensor) waiting for a forward pass
        let mut queue: VecDeque<(usize, usize, usize, Tensor)> = VecDeque::new();
        let mut flight: HashMap<usize, InFlight> = HashMap::new();
        let mut ready: BTreeMap<usize, Decoded> = BTreeMap::new();
        let mut next_in = 0usize;
        loop {
            while next_in < total && queue.len() < s.batch_size {
                match rx.recv_timeout(Duration::from_millis(250)) {
                    Ok(d) => {
                        let idx = match &d {
                            Decoded::Ok(p) => p.index,
                            Decoded::Err(i, _) => *i,
                        };
                        // A late result of an input already given up on is dropped.
                        if idx >= next_in {
                            ready.insert(idx, d);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                self.check_time_limit(next_in, &mut ready);
                while let Some(d) = ready.remove(&next_in) {
                    next_in += 1;
                    self.shared.gate.advance(next_in);
                    let mut prep = match d {
                        Decoded::Err(i, e) => {
                            if self.out.send((i, vec![Record::Err(e)])).is_err() {
                                return;
                            }
                            continue;
                        }
                        Decoded::Ok(p) => p,
                    };
                    let idx = prep.index;
                    self.progress.set_message(prep.path.clone());
                    if let Some(dir) = &s.dump_inputs {
                        let all: Vec<&Tensor> = prep.units.iter().flat_map(|u| &u.views).collect();
                        if let Err(e) = Tensor::f_stack(&all, 0)
                            .map_err(anyhow::Error::from)
                            .and_then(|t| write_npy(&dir.join(format!("{idx}.npy")), &t))
                        {
                            self.progress
                                .println(format!("vidcls: warning: --dump-inputs: {e:#}"));
                        }
                    }
                    let mut logits = Vec::new();
                    let mut missing = 0;
                    for (u, unit) in prep.units.iter_mut().enumerate() {
                        logits.push(vec![None; unit.views.len()]);
                        for (v, t) in unit.views.drain(..).enumerate() {
                            queue.push_back((idx, u, v, t));
                            missing += 1;
                        }
                    }
                    stats.views += missing;
                    flight.insert(
                        idx,
                        InFlight {
                            prep,
                            logits,
                            missing,
                            model_ms: 0.0,
                            error: None,
                        },
                    );
                    if !self.finish(&mut flight, idx) {
                        return;
                    }
                }
            }
            if queue.is_empty() {
                if next_in >= total {
                    return;
                }
                continue;
            }
            let n = queue.len().min(s.batch_size);
            let batch: Vec<(usize, usize, usize, Tensor)> = queue.drain(..n).collect();
            let t0 = Instant::now();
            let result = Tensor::f_stack(&batch.iter().map(|b| &b.3).collect::<Vec<_>>(), 0)
                .map_err(anyhow::Error::from)
                .and_then(|x| self.model.forward(&x));
            let per_view_ms = t0.elapsed().as_secs_f64() * 1e3 / n as f64;
            let mut touched: Vec<usize> = Vec::new();
            match result {
                Ok(rows) => {
                    for ((idx, u, v, _), row) in batch.into_iter().zip(rows) {
                        if let Some(f) = flight.get_mut(&idx) {
                            f.logits[u][v] = Some(row);
                            f.missing -= 1;
                            f.model_ms += per_view_ms;
                        }
                        touched.push(idx);
                    }
                }
                Err(e) => {
                    for (idx, ..) in batch {
                        if let Some(f) = flight.get_mut(&idx) {
                            f.error
                                .get_or_insert_with(|| fail(Path::new(&f.prep.path), "model", &e));
                        }
                        touched.push(idx);
                    }
                    // Views of a failed video still queued are dropped with it.
                    queue.retain(|(idx, ..)| !touched.contains(idx));
                }
            }
            touched.dedup();
            for idx in touched {
                if !self.finish(&mut flight, idx) {
                    return;
                }
            }
        }
    }
}

/// The writer: restores input order, writes each input's records, counts, drives the bar.
fn write_in_order(
    rx: Receiver<(usize, Vec<Record>)>,
    mut writer: Writer,
    progress: ProgressBar,
    stop: &AtomicBool,
) -> Result<(usize, usize, usize, bool)> {
    let mut held: BTreeMap<usize, Vec<Record>> = BTreeMap::new();
    let mut next = 0usize;
    let (mut ok, mut failed, mut records) = (0, 0, 0);
    for (idx, recs) in rx {
        held.insert(idx, recs);
        while let Some(recs) = held.remove(&next) {
            next += 1;
            if recs.iter().any(|r| matches!(r, Record::Err(_))) {
                failed += 1;
                for r in &recs {
                    if let Record::Err(e) = r {
                        progress.suspend(|| {
                            eprintln!("vidcls: {}: {} failed: {}", e.path, e.stage, e.error)
                        });
                    }
                }
            } else {
                ok += 1;
            }
            records += recs.len();
            if let Err(e) = writer.write_input(&recs) {
                stop.store(true, Ordering::Relaxed);
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok((ok, failed, records, true));
                }
                return Err(anyhow::Error::new(e).context("cannot write results"));
            }
            progress.inc(1);
        }
    }
    match writer.finish() {
        Ok(()) => Ok((ok, failed, records, false)),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok((ok, failed, records, true)),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write results")),
    }
}

#[cfg(test)]
mod tests {
    use super::windows;

    #[test]
    fn windows_cover_the_video() {
        assert_eq!(
            windows(10.0, 4.0, 4.0),
            vec![[0.0, 4.0], [4.0, 8.0], [8.0, 10.0]]
        );
        assert_eq!(windows(8.0, 4.0, 4.0), vec![[0.0, 4.0], [4.0, 8.0]]);
        assert_eq!(windows(3.0, 4.0, 2.0), vec![[0.0, 3.0]]);
        assert_eq!(windows(6.0, 4.0, 2.0), vec![[0.0, 4.0], [2.0, 6.0]]);
    }
}
