//! One input's pieces, from its decode worker to the runner: a queue bounded by weight (views),
//! so a worker holds at most `limit` views ready before the runner takes them, whatever the
//! length of the input. A piece heavier than the limit still goes through an empty queue.

use std::collections::VecDeque;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

struct State<T> {
    items: VecDeque<(T, usize)>,
    weight: usize,
    sender_gone: bool,
    receiver_gone: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    moved: Condvar,
    limit: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The worker's end.
pub struct Sender<T>(Arc<Shared<T>>);

/// The runner's end.
pub struct Receiver<T>(Arc<Shared<T>>);

/// A queue that holds at most `limit` weight (and any one piece when empty).
pub fn bounded<T>(limit: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            weight: 0,
            sender_gone: false,
            receiver_gone: false,
        }),
        moved: Condvar::new(),
        limit,
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Sender<T> {
    /// Queues `item` of `weight`, waiting while the queue is full; `Err(item)` once the receiver
    /// is gone. Returns whether it had to wait.
    pub fn send(&self, item: T, weight: usize) -> Result<bool, T> {
        let mut s = self.0.lock();
        let mut waited = false;
        while !s.receiver_gone && weight > 0 && s.weight > 0 && s.weight + weight > self.0.limit {
            waited = true;
            s = self.0.moved.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if s.receiver_gone {
            return Err(item);
        }
        s.weight += weight;
        s.items.push_back((item, weight));
        self.0.moved.notify_all();
        Ok(waited)
    }
}

impl<T> Receiver<T> {
    /// The next item, waiting up to `timeout`; `Disconnected` once the sender is gone and the
    /// queue is empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let mut s = self.0.lock();
        if s.items.is_empty() && !s.sender_gone {
            s = self
                .0
                .moved
                .wait_timeout(s, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        match s.items.pop_front() {
            Some((item, weight)) => {
                s.weight -= weight;
                self.0.moved.notify_all();
                Ok(item)
            }
            None if s.sender_gone => Err(RecvTimeoutError::Disconnected),
            None => Err(RecvTimeoutError::Timeout),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.lock().sender_gone = true;
        self.0.moved.notify_all();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.receiver_gone = true;
        s.items.clear();
        s.weight = 0;
        self.0.moved.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::from_millis(1);

    #[test]
    fn holds_at_most_the_limit() {
        let (tx, rx) = bounded::<u32>(3);
        let worker = std::thread::spawn(move || {
            let mut waited = Vec::new();
            for i in 0..4 {
                waited.push(tx.send(i, 2).unwrap());
            }
            waited
        });
        std::thread::sleep(Duration::from_millis(100));
        // The first piece (2) fits; the second (2 + 2 > 3) waits until the first is taken.
        assert_eq!(rx.0.lock().weight, 2);
        let got: Vec<u32> = (0..4)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, [0, 1, 2, 3]);
        assert!(worker.join().unwrap()[1], "the second piece did not wait");
        assert_eq!(rx.recv_timeout(NOW), Err(RecvTimeoutError::Disconnected));
    }

    #[test]
    fn a_heavy_piece_goes_through_an_empty_queue_and_weightless_ones_never_wait() {
        let (tx, rx) = bounded::<&str>(1);
        assert_eq!(tx.send("big", 10), Ok(false));
        assert_eq!(tx.send("end", 0), Ok(false));
        assert_eq!(rx.recv_timeout(NOW), Ok("big"));
        assert_eq!(rx.recv_timeout(NOW), Ok("end"));
        assert_eq!(rx.recv_timeout(NOW), Err(RecvTimeoutError::Timeout));
    }

    #[test]
    fn a_waiting_sender_is_released_when_the_receiver_goes() {
        let (tx, rx) = bounded::<u32>(1);
        tx.send(0, 1).unwrap();
        let worker = std::thread::spawn(move || tx.send(1, 1));
        std::thread::sleep(Duration::from_millis(50));
        drop(rx);
        assert_eq!(worker.join().unwrap(), Err(1));
    }
}
