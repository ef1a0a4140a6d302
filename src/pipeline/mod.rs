//! Threads and bounded channels joining the stages:
//!
//! ```text
//! jobs -> decode workers (prepare: decode + preprocess) -> runner (batches views across
//!         inputs through a Forward) -> ordered consumer (records, features, ...)
//! ```
//!
//! Memory stays bounded by the channel capacities, each input's queue of views and the workers'
//! gate whatever the number and length of the inputs; the consumer sees inputs in input order whatever the number of threads. What an
//! input becomes (views), what runs on a batch ([`Forward`]) and what happens to the results
//! ([`Consumer`]) are the caller's: `predict` plugs in the model and the record writer.

mod ordered;
mod predict;
mod prepare;
mod queue;
mod runner;
mod workers;

pub use ordered::{Consumer, Ending};
pub use predict::{
    predict_prepare, resize_rows, written, FeaturesOf, Labelling, RecordOut, RecordSink, SinkCounts,
};
pub use prepare::{
    prepare, prepare_each, windows, ClipPiece, ClipSettings, MakeViews, Piece, Prepared, Shrink,
    Unit, WindowSpec,
};
pub use runner::{Forward, Outcome, Scored, ScoredUnit};
pub use workers::{PrepareFn, StreamFn};

use crate::report::FileError;
use anyhow::Result;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An input to process (`Ok`) or one already known to fail (`Err`), in output order.
pub type Job = std::result::Result<PathBuf, FileError>;

/// How the pipeline runs (not what it computes).
#[derive(Debug, Clone, PartialEq)]
pub struct RunSettings {
    /// Decode workers.
    pub threads: usize,
    /// Views per forward pass.
    pub batch_size: usize,
    /// Per-input limit on decoding and preprocessing.
    pub timeout: Duration,
    /// Views an input's worker may hold ready before the runner takes them (it then waits).
    pub ahead: usize,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunStats {
    pub views: usize,
    pub ending: Ending,
    pub elapsed: Duration,
}

/// Runs every job through `prepare`, `model` and `consumer`: each input's views go to the
/// model as its worker makes them.
pub fn run<F: Forward>(
    jobs: Vec<Job>,
    prepare: Box<StreamFn<Piece<F::View>>>,
    model: &F,
    consumer: &mut dyn Consumer,
    s: &RunSettings,
) -> Result<RunStats> {
    let started = Instant::now();
    let threads = s.threads.max(1);
    let (prep_tx, prep_rx) = mpsc::sync_channel(threads * 2);
    let (out_tx, out_rx) = mpsc::sync_channel(64);
    let work = workers::Work {
        jobs,
        prepare,
        ahead: workers::Ahead {
            weight: Piece::views,
            limit: s.ahead.max(1),
        },
    };
    let pool = workers::Pool::start(work, threads, s.timeout, prep_tx)?;
    let (views, ending) = std::thread::scope(|scope| {
        let consumer = std::thread::Builder::new()
            .name("consumer".into())
            .spawn_scoped(scope, || ordered::consume_in_order(out_rx, consumer))?;
        let inputs = workers::InOrder::new(&pool, prep_rx);
        let views = runner::Runner::new(model, s.batch_size, out_tx).run(inputs);
        pool.stop();
        let ending = consumer
            .join()
            .map_err(|_| anyhow::anyhow!("consumer thread panicked"))??;
        anyhow::Ok((views, ending))
    })?;
    Ok(RunStats {
        views,
        ending,
        elapsed: started.elapsed(),
    })
}

/// Prepares every job on `s.threads` workers and hands each result to `each` in input order
/// (no model): for work that needs the decoded views themselves, such as training. `each`
/// returns false to stop early.
pub fn prepare_in_order<P: Send + 'static>(
    jobs: Vec<Job>,
    prepare: Box<PrepareFn<P>>,
    s: &RunSettings,
    mut each: impl FnMut(usize, Result<P, FileError>) -> bool,
) -> Result<()> {
    let threads = s.threads.max(1);
    let (tx, rx) = mpsc::sync_channel(threads * 2);
    let work = workers::Work {
        jobs,
        prepare: workers::whole(prepare),
        ahead: workers::Ahead {
            weight: |_| 0,
            limit: 1,
        },
    };
    let pool = workers::Pool::start(work, threads, s.timeout, tx)?;
    for (idx, got) in workers::InOrder::new(&pool, rx) {
        let r = match got {
            workers::Got::Piece(p) => Ok(p),
            workers::Got::Failed(e) => Err(e),
            workers::Got::End => continue,
        };
        if !each(idx, r) {
            break;
        }
    }
    pool.stop();
    Ok(())
}

#[cfg(test)]
mod tests;
