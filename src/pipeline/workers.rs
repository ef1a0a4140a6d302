//! Decode workers: each takes the next input, prepares it with the caller's function and sends
//! the result to the runner. A gate keeps them a bounded number of inputs ahead of the runner,
//! and a stuck worker can be given up on and replaced.

use super::Job;
use crate::report::{FileError, Stage};
use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a worker makes of one input (`index`, `path`).
pub type PrepareFn<P> = dyn Fn(usize, &Path) -> Result<P, FileError> + Send + Sync;

/// An input's outcome from a worker, tagged with its index.
pub type Prepped<P> = (usize, Result<P, FileError>);

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

/// What the workers share.
struct Shared<P> {
    jobs: Vec<Job>,
    next: AtomicUsize,
    stop: AtomicBool,
    gate: Gate,
    prepare: Box<PrepareFn<P>>,
    /// When each input in progress started (for the per-input time limit).
    started: Mutex<HashMap<usize, Instant>>,
    tx: SyncSender<Prepped<P>>,
}

/// The worker pool, as the runner sees it.
pub struct Pool<P: Send + 'static> {
    shared: Arc<Shared<P>>,
    timeout: Duration,
}

impl<P: Send + 'static> Pool<P> {
    /// Starts `threads` workers over `jobs`; results go to `tx`.
    pub fn start(
        jobs: Vec<Job>,
        prepare: Box<PrepareFn<P>>,
        threads: usize,
        timeout: Duration,
        tx: SyncSender<Prepped<P>>,
    ) -> std::io::Result<Pool<P>> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            jobs,
            next: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            gate: Gate {
                frontier: Mutex::new(0),
                moved: Condvar::new(),
                window: threads * 2 + 2,
            },
            prepare,
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
        let t0 = lock(&self.shared.started).get(&index).copied()?;
        if t0.elapsed() <= self.timeout {
            return None;
        }
        lock(&self.shared.started).remove(&index);
        let path = match &self.shared.jobs[index] {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(e) => e.path.clone(),
        };
        let e = anyhow::anyhow!(
            "gave up after {:.0} s (--timeout)",
            self.timeout.as_secs_f64()
        );
        if let Err(e) = self.spawn(format!("decode-r{index}")) {
            eprintln!("vidcls: warning: cannot start a decode worker: {e}");
        }
        Some(FileError::new(path, Stage::Decode, &e))
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

/// The workers' results in input order: an input that runs past the time limit comes out as
/// its error record (and its late result, if any, is dropped).
pub struct InOrder<'a, P: Send + 'static> {
    pool: &'a Pool<P>,
    rx: Receiver<Prepped<P>>,
    /// Results that arrived ahead of their turn.
    ready: BTreeMap<usize, Result<P, FileError>>,
    next: usize,
}

impl<'a, P: Send + 'static> InOrder<'a, P> {
    pub fn new(pool: &'a Pool<P>, rx: Receiver<Prepped<P>>) -> Self {
        InOrder {
            pool,
            rx,
            ready: BTreeMap::new(),
            next: 0,
        }
    }
}

impl<P: Send + 'static> Iterator for InOrder<'_, P> {
    type Item = Prepped<P>;

    fn next(&mut self) -> Option<Prepped<P>> {
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
            if let Some(e) = self.pool.give_up_if_late(self.next) {
                self.ready.insert(self.next, Err(e));
            }
        }
    }
}

/// A worker's loop: next input, prepare it (a panic becomes an error record), send.
fn work<P>(shared: &Shared<P>) {
    while !shared.stop.load(Ordering::Relaxed) {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(job) = shared.jobs.get(i) else { break };
        shared.gate.wait_for(i, &shared.stop);
        lock(&shared.started).insert(i, Instant::now());
        let result = match job {
            Ok(path) => std::panic::catch_unwind(AssertUnwindSafe(|| (shared.prepare)(i, path)))
                .unwrap_or_else(|_| {
                    let e = anyhow::anyhow!("internal error (panic) while decoding");
                    Err(FileError::new(path.to_string_lossy(), Stage::Decode, &e))
                }),
            Err(e) => Err(e.clone()),
        };
        lock(&shared.started).remove(&i);
        if shared.tx.send((i, result)).is_err() {
            break;
        }
    }
}
