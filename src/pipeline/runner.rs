//! The model runner: takes prepared inputs in input order, queues their views, and sends them
//! through the model in batches of exactly `batch_size` views (the last one excepted), so
//! results do not depend on thread timing. Finished inputs go on to the ordered consumer.

use super::prepare::{Prepared, Unit};
use super::workers::InOrder;
use crate::report::{FileError, Stage, Thumbnail, Window};
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::SyncSender;
use std::time::Instant;

/// A forward pass over a batch of views: one output row per view.
pub trait Forward {
    type View: Send + 'static;
    fn run_batch(&self, views: &[Self::View]) -> anyhow::Result<Vec<Vec<f64>>>;
}

/// One unit's outputs: a row per view, with where the views came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredUnit {
    pub window: Option<Window>,
    pub rows: Vec<Vec<f64>>,
    pub frame_times: Vec<Vec<f64>>,
    pub clips: usize,
    pub padded: usize,
    pub thumbnails: Vec<Thumbnail>,
}

/// An input whose every view went through the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub path: String,
    pub duration: f64,
    pub warnings: Vec<String>,
    pub units: Vec<ScoredUnit>,
    pub decode_ms: f64,
    pub preprocess_ms: f64,
    pub model_ms: f64,
}

/// What the consumer gets for each input.
pub type Outcome = Result<Scored, FileError>;

/// Where a view belongs: (input, unit, view).
type Key = (usize, usize, usize);

/// A view waiting for a forward pass: (input, unit, view) and the view itself.
struct Pending<V> {
    input: usize,
    unit: usize,
    view: usize,
    data: V,
}

/// An input whose views are in the queue.
struct InFlight {
    scored: Scored,
    missing: usize,
    error: Option<FileError>,
}

pub struct Runner<'a, F: Forward> {
    model: &'a F,
    batch_size: usize,
    out: SyncSender<(usize, Outcome)>,
    queue: VecDeque<Pending<F::View>>,
    flight: HashMap<usize, InFlight>,
    /// Every input has been taken into the queue.
    inputs_done: bool,
    /// Views taken into the queue so far.
    pub views: usize,
}

/// Why the runner stopped early.
struct Stopped;

impl<'a, F: Forward> Runner<'a, F> {
    pub fn new(model: &'a F, batch_size: usize, out: SyncSender<(usize, Outcome)>) -> Self {
        Runner {
            model,
            batch_size: batch_size.max(1),
            out,
            queue: VecDeque::new(),
            flight: HashMap::new(),
            inputs_done: false,
            views: 0,
        }
    }

    /// Runs until every input is finished or the consumer went away; returns the number of
    /// views taken.
    pub fn run(mut self, inputs: InOrder<'_, Prepared<F::View>>) -> usize {
        let _ = self.drive(inputs);
        self.views
    }

    fn drive(&mut self, mut inputs: InOrder<'_, Prepared<F::View>>) -> Result<(), Stopped> {
        loop {
            self.fill(&mut inputs)?;
            if self.queue.is_empty() {
                return Ok(());
            }
            self.forward_batch()?;
        }
    }

    /// Takes inputs, in order, until a batch is queued or none are left.
    fn fill(&mut self, inputs: &mut InOrder<'_, Prepared<F::View>>) -> Result<(), Stopped> {
        while !self.inputs_done && self.queue.len() < self.batch_size {
            match inputs.next() {
                Some((idx, Ok(p))) => self.admit(idx, p)?,
                Some((idx, Err(e))) => self.send(idx, Err(e))?,
                None => self.inputs_done = true,
            }
        }
        Ok(())
    }

    fn admit(&mut self, idx: usize, prep: Prepared<F::View>) -> Result<(), Stopped> {
        let mut units = Vec::with_capacity(prep.units.len());
        let mut missing = 0;
        for (u, unit) in prep.units.into_iter().enumerate() {
            let Unit {
                window,
                views,
                frame_times,
                clips,
                padded,
                thumbnails,
            } = unit;
            units.push(ScoredUnit {
                window,
                rows: vec![Vec::new(); views.len()],
                frame_times,
                clips,
                padded,
                thumbnails,
            });
            for (v, data) in views.into_iter().enumerate() {
                self.queue.push_back(Pending {
                    input: idx,
                    unit: u,
                    view: v,
                    data,
                });
                missing += 1;
            }
        }
        self.views += missing;
        let scored = Scored {
            path: prep.path,
            duration: prep.duration,
            warnings: prep.warnings,
            units,
            decode_ms: prep.decode_ms,
            preprocess_ms: prep.preprocess_ms,
            model_ms: 0.0,
        };
        self.flight.insert(
            idx,
            InFlight {
                scored,
                missing,
                error: None,
            },
        );
        self.finish_if_done(idx)
    }

    /// One forward pass over the next `batch_size` queued views.
    fn forward_batch(&mut self) -> Result<(), Stopped> {
        let n = self.queue.len().min(self.batch_size);
        let batch: Vec<Pending<F::View>> = self.queue.drain(..n).collect();
        let (keys, data): (Vec<Key>, Vec<F::View>) = batch
            .into_iter()
            .map(|p| ((p.input, p.unit, p.view), p.data))
            .unzip();
        let t0 = Instant::now();
        let result = self.model.run_batch(&data).and_then(|rows| {
            if rows.len() == data.len() {
                Ok(rows)
            } else {
                anyhow::bail!(
                    "model returned {} rows for {} views",
                    rows.len(),
                    data.len()
                )
            }
        });
        let per_view_ms = t0.elapsed().as_secs_f64() * 1e3 / n as f64;
        let mut touched: Vec<usize> = keys.iter().map(|k| k.0).collect();
        touched.dedup();
        match result {
            Ok(rows) => self.store(&keys, rows, per_view_ms),
            Err(e) => self.fail_inputs(&touched, &e),
        }
        for idx in touched {
            self.finish_if_done(idx)?;
        }
        Ok(())
    }

    fn store(&mut self, keys: &[Key], rows: Vec<Vec<f64>>, per_view_ms: f64) {
        for (&(idx, u, v), row) in keys.iter().zip(rows) {
            if let Some(f) = self.flight.get_mut(&idx) {
                f.scored.units[u].rows[v] = row;
                f.missing -= 1;
                f.scored.model_ms += per_view_ms;
            }
        }
    }

    /// A failed batch fails every input it held; their views still queued go with them.
    fn fail_inputs(&mut self, inputs: &[usize], e: &anyhow::Error) {
        for idx in inputs {
            if let Some(f) = self.flight.get_mut(idx) {
                let path = f.scored.path.clone();
                f.error
                    .get_or_insert_with(|| FileError::new(path, Stage::Model, e));
            }
        }
        self.queue.retain(|p| !inputs.contains(&p.input));
    }

    /// Sends an input on once all its views are scored (or it failed).
    fn finish_if_done(&mut self, idx: usize) -> Result<(), Stopped> {
        let done = self
            .flight
            .get(&idx)
            .is_some_and(|f| f.missing == 0 || f.error.is_some());
        if !done {
            return Ok(());
        }
        let f = self.flight.remove(&idx).expect("present");
        let outcome = match f.error {
            Some(e) => Err(e),
            None => Ok(f.scored),
        };
        self.send(idx, outcome)
    }

    fn send(&self, idx: usize, outcome: Outcome) -> Result<(), Stopped> {
        self.out.send((idx, outcome)).map_err(|_| Stopped)
    }
}
