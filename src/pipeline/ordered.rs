//! The consumer side: restores input order and hands each input's outcome to a [`Consumer`]
//! (the predict writer, a feature writer, ...), on its own thread.

use super::runner::Outcome;
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::mpsc::Receiver;

/// Takes each input's outcome, in input order.
pub trait Consumer: Send {
    /// Handles one input. `Ok(false)`: the reader of our output went away; stop quietly.
    fn take(&mut self, outcome: Outcome) -> Result<bool>;
    /// Called once after the last input (not after a stop).
    fn finish(&mut self) -> Result<bool>;
}

/// How the consumer thread ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every input was handled.
    Complete,
    /// The reader of our output went away (`| head`).
    ClosedPipe,
}

/// Feeds `consumer` in input order until the channel closes. Returning early drops `rx`, which
/// stops the runner, which stops the workers.
pub fn consume_in_order(
    rx: Receiver<(usize, Outcome)>,
    consumer: &mut dyn Consumer,
) -> Result<Ending> {
    let mut held: BTreeMap<usize, Outcome> = BTreeMap::new();
    let mut next = 0usize;
    for (idx, outcome) in rx {
        held.insert(idx, outcome);
        while let Some(outcome) = held.remove(&next) {
            next += 1;
            if !consumer.take(outcome)? {
                return Ok(Ending::ClosedPipe);
            }
        }
    }
    Ok(if consumer.finish()? {
        Ending::Complete
    } else {
        Ending::ClosedPipe
    })
}
