//! Decode workers: each takes the next input, prepares it with the caller's function and sends
//! what it makes to the runner piece by piece, through a queue of its own that holds a bounded
//! number of views (`queue.rs`), so an input of any length holds a bounded amount of memory. A
//! gate keeps the workers a bounded number of inputs ahead of the runner, and a stuck worker can
//! be given up on and replaced.

use super::queue;
use super::Job;
use crate::report::{FileError, Stage};
use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a worker makes of one input (`index`, `path`), as one whole result.
pub type PrepareFn<P> = dyn Fn(usize, &Path) -> Result<P, FileError> + Send + Sync;

/// What a worker makes of one input (`index`, `path`), handed on piece by piece to `emit`, which
/// waits while the runner is behind and returns false once nobody reads this input any more
/// (then the function should return).
pub type StreamFn<P> =
    dyn Fn(usize, &Path, &mut dyn FnMut(P) -> bool) -> Result<(), FileError> + Send + Sync;

/// One input's pieces, as its worker sends them: a failure ends them.
pub type Pieces<P> = queue::Receiver<Result<P, FileError>>;

/// The whole-result function as a stream of one piece.
pub fn whole<P: 'static>(prepare: Box<PrepareFn<P>>) -> Box<StreamFn<P>> {
    Box::new(move |index, path, emit| {
        emit(prepare(index, path)?);
        Ok(())
    })
}

/// How the pieces of an input are weighed, and how much weight (views) its queue holds.
#[derive(Clone, Copy)]
pub struct Ahead<P> {
    pub weight: fn(&P) -> usize,
    pub limit: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps decode workers at most `window` inputs ahead of the runner, so the runner's reorder
/// buffer (and memory) stays bounded even behind one slow input.
struct Gate {
    frontier: Mutex<usize>,
    moved: Condvar,
    window: usize,
}

impl Gate {
    fn wait_for(&self, index: usize, stop: &AtomicBool) {
        let mut f = lock(&self.frontier);
        while index >= *f + self.window && !stop.load(Ordering::Relaxed) {
            f = self.moved.wait(f).unwrap_or_else(|e| e.into_inner());
        }
    }
    fn advance(&self, to: usize) {
        *lock(&self.frontier) = to;
        self.moved.notify_all();
    }
}

/// When an input started, less the time its worker waited for the runner; its whole time once
/// the worker is done with it (the runner may still be reading its pieces).
struct Timer {
    since: Instant,
    waiting_since: Option<Instant>,
    took: Option<Duration>,
}

impl Timer {
    /// Past `limit` of its own time: while it waits for the runner, the time up to the wait.
    fn late(&self, limit: Duration) -> bool {
        match self.took {
            Some(took) => took > limit,
            None => {
                let until = self.waiting_since.unwrap_or_else(Instant::now);
                until.saturating_duration_since(self.since) > limit
            }
        }
    }
}

/// What the workers share.
struct Shared<P> {
    jobs: Vec<Job>,
    next: AtomicUsize,
    stop: AtomicBool,
    gate: Gate,
    prepare: Box<StreamFn<P>>,
    ahead: Ahead<P>,
    /// The inputs in progress (for the per-input time limit).
    started: Mutex<HashMap<usize, Timer>>,
    tx: SyncSender<(usize, Pieces<P>)>,
}

impl<P> Shared<P> {
    /// Sends one piece of input `index`; the time spent waiting for the runner does not count
    /// against the input's time limit. False once nobody reads the input.
    fn emit(&self, index: usize, tx: &queue::Sender<Result<P, FileError>>, piece: P) -> bool {
        let weight = (self.ahead.weight)(&piece);
        self.timer(index, |t| t.waiting_since = Some(Instant::now()));
        let sent = tx.send(Ok(piece), weight);
        self.timer(index, |t| {
            if let Some(w) = t.waiting_since.take() {
                t.since += w.elapsed();
            }
        });
        sent.is_ok()
    }

    fn timer(&self, index: usize, f: impl FnOnce(&mut Timer)) {
        if let Some(t) = lock(&self.started).get_mut(&index) {
            f(t);
        }
    }
}

/// The worker pool, as the runner sees it.
pub struct Pool<P: Send + 'static> {
    shared: Arc<Shared<P>>,
    timeout: Duration,
}

/// What a pool runs: the jobs, the function that prepares each, and how much of an input may
/// wait for the runner.
pub struct Work<P> {
    pub jobs: Vec<Job>,
    pub prepare: Box<StreamFn<P>>,
    pub ahead: Ahead<P>,
}

impl<P: Send + 'static> Pool<P> {
    /// Starts `threads` workers over `work`; each input's pieces go to `tx` as they are made.
    pub fn start(
        work: Work<P>,
        threads: usize,
        timeout: Duration,
        tx: SyncSender<(usize, Pieces<P>)>,
    ) -> std::io::Result<Pool<P>> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            jobs: work.jobs,
            next: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            gate: Gate {
                frontier: Mutex::new(0),
                moved: Condvar::new(),
                window: threads * 2 + 2,
            },
            prepare: work.prepare,
            ahead: work.ahead,
            started: Mutex::new(HashMap::new()),
            tx,
        });
        let pool = Pool { shared, timeout };
        for w in 0..threads {
            pool.spawn(format!("decode-{w}"))?;
        }
        Ok(pool)
    }

    /// How many inputs the run has.
    pub fn inputs(&self) -> usize {
        self.shared.jobs.len()
    }

    /// The runner has taken every input before `index`: workers may run further ahead.
    pub fn advance(&self, index: usize) {
        self.shared.gate.advance(index);
    }

    /// Stops handing out inputs and releases workers waiting at the gate.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.gate.advance(usize::MAX / 2);
    }

    /// If input `index` has run past the time limit: forgets it, starts a new worker in place
    /// of the one still stuck in it, and returns its error record.
    pub fn give_up_if_late(&self, index: usize) -> Option<FileError> {
        let stuck = {
            let mut started = lock(&self.shared.started);
            if !started.get(&index)?.late(self.timeout) {
                return None;
            }
            started.remove(&index)?.took.is_none()
        };
        let path = match &self.shared.jobs[index] {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(e) => e.path.clone(),
        };
        let e = anyhow::anyhow!(
            "gave up after {:.0} s (--timeout)",
            self.timeout.as_secs_f64()
        );
        if stuck {
            if let Err(e) = self.spawn(format!("decode-r{index}")) {
                eprintln!("vidcls: warning: cannot start a decode worker: {e}");
            }
        }
        Some(FileError::new(path, Stage::Decode, &e))
    }

    /// The runner is done with input `index`.
    fn forget(&self, index: usize) {
        lock(&self.shared.started).remove(&index);
    }

    /// A detached worker, so one stuck inside a decoder cannot hold up the end of the run.
    fn spawn(&self, name: String) -> std::io::Result<()> {
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || work(&shared))?;
        Ok(())
    }
}

/// How often the waiting side looks at the time limit.
const POLL: Duration = Duration::from_millis(250);

/// What the runner gets of an input, in order.
#[derive(Debug)]
pub enum Got<P> {
    /// The next piece.
    Piece(P),
    /// The input failed (or ran past the time limit); nothing more comes from it.
    Failed(FileError),
    /// Its worker is done with it.
    End,
}

/// The workers' pieces in input order: every piece of one input, then the next input's. An
/// input that runs past the time limit ends with its error record (and what its worker still
/// sends is dropped).
pub struct InOrder<'a, P: Send + 'static> {
    pool: &'a Pool<P>,
    rx: Receiver<(usize, Pieces<P>)>,
    /// Inputs whose pieces started coming ahead of their turn.
    ready: BTreeMap<usize, Pieces<P>>,
    next: usize,
    /// The input being read.
    current: Option<(usize, Pieces<P>)>,
}

impl<'a, P: Send + 'static> InOrder<'a, P> {
    pub fn new(pool: &'a Pool<P>, rx: Receiver<(usize, Pieces<P>)>) -> Self {
        InOrder {
            pool,
            rx,
            ready: BTreeMap::new(),
            next: 0,
            current: None,
        }
    }

    /// Stops reading input `index` (its worker stops at its next piece); the next piece comes
    /// from the input after it.
    pub fn skip(&mut self, index: usize) {
        if self.current.as_ref().is_some_and(|c| c.0 == index) {
            self.current = None;
            self.pool.forget(index);
        }
    }

    /// The pieces of input `next`, once its worker has started it.
    fn start_next(&mut self) -> Option<(usize, Pieces<P>)> {
        if self.next >= self.pool.inputs() {
            return None;
        }
        loop {
            if let Some(r) = self.ready.remove(&self.next) {
                let idx = self.next;
                self.next += 1;
                self.pool.advance(self.next);
                return Some((idx, r));
            }
            match self.rx.recv_timeout(POLL) {
                Ok((idx, r)) if idx >= self.next => {
                    self.ready.insert(idx, r);
                }
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

impl<P: Send + 'static> Iterator for InOrder<'_, P> {
    type Item = (usize, Got<P>);

    fn next(&mut self) -> Option<(usize, Got<P>)> {
        loop {
            if self.current.is_none() {
                self.current = Some(self.start_next()?);
            }
            let (idx, pieces) = self.current.as_ref().expect("set above");
            let idx = *idx;
            let got = match pieces.recv_timeout(POLL) {
                // A piece that comes in time goes on; one from an input past its time limit
                // ends the input (pieces that keep coming must not hide a slow decode).
                Ok(Ok(p)) => match self.pool.give_up_if_late(idx) {
                    None => return Some((idx, Got::Piece(p))),
                    Some(e) => Got::Failed(e),
                },
                Ok(Err(e)) => Got::Failed(e),
                Err(RecvTimeoutError::Disconnected) => Got::End,
                Err(RecvTimeoutError::Timeout) => match self.pool.give_up_if_late(idx) {
                    Some(e) => Got::Failed(e),
                    None => continue,
                },
            };
            self.current = None;
            self.pool.forget(idx);
            return Some((idx, got));
        }
    }
}

/// A worker's loop: next input, prepare it piece by piece (a failure, or a panic, becomes its
/// error record).
fn work<P>(shared: &Shared<P>) {
    while !shared.stop.load(Ordering::Relaxed) {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(job) = shared.jobs.get(i) else { break };
        shared.gate.wait_for(i, &shared.stop);
        let (tx, rx) = queue::bounded(shared.ahead.limit);
        if shared.tx.send((i, rx)).is_err() {
            break;
        }
        lock(&shared.started).insert(
            i,
            Timer {
                since: Instant::now(),
                waiting_since: None,
                took: None,
            },
        );
        let result = match job {
            Ok(path) => std::panic::catch_unwind(AssertUnwindSafe(|| {
                (shared.prepare)(i, path, &mut |p| shared.emit(i, &tx, p))
            }))
            .unwrap_or_else(|_| {
                let e = anyhow::anyhow!("internal error (panic) while decoding");
                Err(FileError::new(path.to_string_lossy(), Stage::Decode, &e))
            }),
            Err(e) => Err(e.clone()),
        };
        shared.timer(i, |t| t.took = Some(t.since.elapsed()));
        if let Err(e) = result {
            let _ = tx.send(Err(e), 0);
        }
    }
}
