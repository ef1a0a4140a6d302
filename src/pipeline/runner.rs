//! The model runner: takes the workers' pieces in input order, queues their views as they come,
//! and sends them through the model in batches of exactly `batch_size` views (the last one
//! excepted), so results do not depend on thread timing. Finished inputs go on to the ordered
//! consumer.

use super::prepare::{ClipPiece, Piece};
use super::workers::{Got, InOrder};
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

/// An input whose pieces are coming or whose views are in the queue.
struct InFlight {
    scored: Scored,
    missing: usize,
    error: Option<FileError>,
    /// Its last piece has come.
    complete: bool,
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

type Inputs<'i, V> = InOrder<'i, Piece<V>>;

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
    pub fn run(mut self, inputs: Inputs<'_, F::View>) -> usize {
        let _ = self.drive(inputs);
        self.views
    }

    fn drive(&mut self, mut inputs: Inputs<'_, F::View>) -> Result<(), Stopped> {
        loop {
            self.fill(&mut inputs)?;
            if self.queue.is_empty() {
                return Ok(());
            }
            self.forward_batch(&mut inputs)?;
        }
    }

    /// Takes pieces, in input order, until a batch is queued or none are left.
    fn fill(&mut self, inputs: &mut Inputs<'_, F::View>) -> Result<(), Stopped> {
        while !self.inputs_done && self.queue.len() < self.batch_size {
            match inputs.next() {
                Some((idx, Got::Piece(p))) => self.take(idx, p)?,
                Some((idx, Got::Failed(e))) => self.fail(idx, e)?,
                Some((idx, Got::End)) => self.end(idx)?,
                None => self.inputs_done = true,
            }
        }
        Ok(())
    }

    fn take(&mut self, idx: usize, piece: Piece<F::View>) -> Result<(), Stopped> {
        match piece {
            Piece::Opened { path, duration } => {
                let scored = Scored {
                    path,
                    duration,
                    warnings: Vec::new(),
                    units: Vec::new(),
                    decode_ms: 0.0,
                    preprocess_ms: 0.0,
                    model_ms: 0.0,
                };
                let f = InFlight {
                    scored,
                    missing: 0,
                    error: None,
                    complete: false,
                };
                self.flight.insert(idx, f);
            }
            Piece::Clip(clip) => self.admit(idx, clip),
            Piece::Done {
                warnings,
                decode_ms,
                preprocess_ms,
            } => {
                if let Some(f) = self.flight.get_mut(&idx) {
                    f.scored.warnings = warnings;
                    f.scored.decode_ms = decode_ms;
                    f.scored.preprocess_ms = preprocess_ms;
                    f.complete = true;
                }
                return self.finish_if_done(idx);
            }
        }
        Ok(())
    }

    /// Queues one clip's views, in the unit they belong to.
    fn admit(&mut self, idx: usize, clip: ClipPiece<F::View>) {
        let Some(f) = self.flight.get_mut(&idx).filter(|f| f.error.is_none()) else {
            return;
        };
        let units = &mut f.scored.units;
        if units.len() <= clip.unit {
            units.push(ScoredUnit {
                window: clip.window,
                rows: Vec::new(),
                frame_times: Vec::new(),
                clips: 0,
                padded: 0,
                thumbnails: Vec::new(),
            });
        }
        let u = units.len() - 1;
        let unit = &mut units[u];
        unit.frame_times.push(clip.times);
        unit.clips += 1;
        unit.padded += clip.padded;
        unit.thumbnails.extend(clip.thumbnails);
        for data in clip.views {
            self.queue.push_back(Pending {
                input: idx,
                unit: u,
                view: unit.rows.len(),
                data,
            });
            unit.rows.push(Vec::new());
            f.missing += 1;
            self.views += 1;
        }
    }

    /// An input failed in its worker: its queued views go, its error record goes on.
    fn fail(&mut self, idx: usize, e: FileError) -> Result<(), Stopped> {
        if self.flight.remove(&idx).is_some() {
            self.queue.retain(|p| p.input != idx);
        }
        self.send(idx, Err(e))
    }

    /// An input's worker is done with it; without its last piece, it stopped early.
    fn end(&mut self, idx: usize) -> Result<(), Stopped> {
        match self.flight.get(&idx) {
            Some(f) if !f.complete => {
                let e = anyhow::anyhow!("decoding stopped before the end of the input");
                let e = FileError::new(f.scored.path.clone(), Stage::Decode, &e);
                self.fail(idx, e)
            }
            _ => Ok(()),
        }
    }

    /// One forward pass over the next `batch_size` queued views.
    fn forward_batch(&mut self, inputs: &mut Inputs<'_, F::View>) -> Result<(), Stopped> {
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
            Err(e) => {
                self.fail_inputs(&touched, &e);
                // Their workers stop: nothing more is read from them.
                touched.iter().for_each(|&idx| inputs.skip(idx));
            }
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

    /// Sends an input on once all its pieces have come and its views are scored (or it
    /// failed).
    fn finish_if_done(&mut self, idx: usize) -> Result<(), Stopped> {
        let done = self
            .flight
            .get(&idx)
            .is_some_and(|f| f.error.is_some() || (f.complete && f.missing == 0));
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
