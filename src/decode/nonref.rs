//! When a packet may be decoded with the decoder's non-reference frames dropped
//! (`skip_frame = AVDISCARD_NONREF`), so a clip read after a keyframe seek does not decode the
//! B-frames no planned time shows.
//!
//! Promise: dropping never changes which frame a planned time takes. A time `t` takes the last
//! frame stamped at or before `t + eps` (see `video.rs`), so a frame stamped `p` is taken by
//! exactly the times in `[p - eps, n - eps)`, where `n` is the stamp of the frame displayed
//! after it. A packet is sent for dropping only when that interval holds no wanted time, with
//! `n` bounded from above by `q`, the smallest stamp above `p` among the packets already read
//! (sent or waiting in the look-ahead). A bound is enough: a larger `q` only widens the
//! interval checked. The times wanted are the clip's planned times and everything from its last
//! time on, since reading goes on forward from there without a seek for the next clip.
//!
//! `q` must be a frame the decoder outputs, and the frames must come out in stamp order with
//! the stamps of their packets; so dropping happens only:
//! - for codecs whose non-reference frames are exactly those no other frame needs (H.264,
//!   HEVC), in containers that carry timestamps;
//! - for packets stamped after the first keyframe read since the last seek (leading frames,
//!   which may not decode after a seek, are never dropped and never serve as `q`, and the first
//!   frame output after a seek, which also answers earlier times, is never dropped);
//! - while every packet since that keyframe has a timestamp, none repeats one, none is flagged
//!   corrupt or to be discarded (those are neither dropped nor used as `q`);
//! - once the first frames of the file came out with strictly increasing timestamps equal to
//!   their packets', and as long as every later one does. Any breach turns dropping off for the
//!   rest of the file.
//!
//! Everything that reads every frame (counting, `frame_times`, the keyframe scan) sets no
//! wanted times, and then nothing is dropped.

use std::collections::{BTreeSet, VecDeque};
use std::ops::Bound::{Excluded, Unbounded};

/// Packets read ahead of the decoder, so the frame displayed after a B-frame is usually known
/// (a B-frame run without pyramid shows its successor one packet later in decoding order).
pub(super) const LOOK_AHEAD: usize = 4;

/// Stamps of the last packets read, searched for `q` (well beyond any reorder depth).
const WINDOW: usize = 64;

/// Frames of a file that must come out with consistent timestamps before anything is dropped.
const PROBATION: u32 = 4;

/// The times a clip takes frames at.
struct Wanted {
    /// Sorted, as the reader clamps them (finite, >= 0).
    times: Vec<f64>,
    eps: f64,
}

/// The dropping rule's state for one opened video.
pub(super) struct NonRef {
    /// The codec and container allow it, and nothing has breached the rule's assumptions.
    allowed: bool,
    /// Frames output with consistent timestamps (counted up to [`PROBATION`]).
    consistent: u32,
    wanted: Option<Wanted>,
    /// Stamp of the first keyframe packet read since the last seek.
    key: Option<i64>,
    /// Stamps of usable packets read since `key`, in reading order (the last [`WINDOW`]) and
    /// sorted.
    recent: VecDeque<i64>,
    seen: BTreeSet<i64>,
    /// Stamp of the last frame output since the last seek.
    last_out: Option<i64>,
}

impl NonRef {
    /// `allowed`: the codec drops only frames no other frame refers to and the stream is timed.
    pub(super) fn new(allowed: bool) -> NonRef {
        NonRef {
            allowed,
            consistent: 0,
            wanted: None,
            key: None,
            recent: VecDeque::new(),
            seen: BTreeSet::new(),
            last_out: None,
        }
    }

    /// Turns dropping off (or back on where the stream allows it) for the rest of the file.
    pub(super) fn set_allowed(&mut self, allowed: bool) {
        self.allowed = allowed;
    }

    /// Whether packets may still be dropped in this file.
    pub(super) fn allowed(&self) -> bool {
        self.allowed
    }

    /// Times the clip being read takes frames at (already clamped as the reader clamps them),
    /// with the reader's timestamp tolerance.
    pub(super) fn want(&mut self, times: &[f64], eps: f64) {
        let mut times = times.to_vec();
        times.sort_by(f64::total_cmp);
        self.wanted = Some(Wanted { times, eps });
    }

    /// No clip is being read: every frame is wanted.
    pub(super) fn want_all(&mut self) {
        self.wanted = None;
    }

    /// The decoder was flushed (a seek or a reopen): packets read from now on start afresh.
    pub(super) fn reset(&mut self) {
        self.key = None;
        self.recent.clear();
        self.seen.clear();
        self.last_out = None;
    }

    /// A packet entered the look-ahead: `pts` its stamp, `usable` false when it is flagged
    /// corrupt or to be discarded.
    pub(super) fn read(&mut self, pts: Option<i64>, key: bool, usable: bool) {
        if self.key.is_none() {
            match pts {
                Some(p) if key && usable => self.key = Some(p),
                _ => return,
            }
        }
        let Some(p) = pts else {
            self.allowed = false;
            return;
        };
        if !usable {
            return;
        }
        if !self.seen.insert(p) {
            // Two packets with one stamp: which shows when is not known from stamps.
            self.allowed = false;
            return;
        }
        self.recent.push_back(p);
        if self.recent.len() > WINDOW {
            if let Some(old) = self.recent.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    /// A frame came out of the decoder with stamp `pts` and best-effort timestamp `best`.
    pub(super) fn output(&mut self, pts: Option<i64>, best: Option<i64>) {
        match pts {
            Some(p) if best == Some(p) && self.last_out.is_none_or(|last| p > last) => {
                self.last_out = Some(p);
                self.consistent = self.consistent.saturating_add(1);
            }
            _ => self.allowed = false,
        }
    }

    /// Whether the packet stamped `pts` may be sent with non-reference frames dropped;
    /// `seconds` turns a stamp into the time the reader gives its frame.
    pub(super) fn may_drop(&self, pts: Option<i64>, seconds: impl Fn(i64) -> f64) -> bool {
        if !self.allowed || self.consistent < PROBATION {
            return false;
        }
        let (Some(wanted), Some(p), Some(key)) = (&self.wanted, pts, self.key) else {
            return false;
        };
        if p <= key || !self.seen.contains(&p) {
            return false;
        }
        let Some(&q) = self.seen.range((Excluded(p), Unbounded)).next() else {
            return false;
        };
        let shown_from = seconds(p).max(0.0);
        let shown_until = seconds(q).max(0.0);
        !wanted.takes(shown_from, shown_until)
    }
}

impl Wanted {
    /// Whether a frame shown from `from` until `until` (seconds) is taken by a wanted time:
    /// one with `from <= t + eps < until`, or any time from the last planned one on.
    fn takes(&self, from: f64, until: f64) -> bool {
        let eps = self.eps;
        let Some(&last) = self.times.last() else {
            return true;
        };
        if until > last + eps {
            return true;
        }
        let first = self.times.partition_point(|t| t + eps < from);
        self.times.get(first).is_some_and(|t| t + eps < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 0.0005;

    fn seconds(ts: i64) -> f64 {
        ts as f64 / 1000.0
    }

    /// Reads packets in decoding order (stamps in ms), the first a keyframe, and outputs
    /// enough frames to pass probation.
    fn ready(stamps: &[i64]) -> NonRef {
        let mut n = NonRef::new(true);
        for (i, &p) in stamps.iter().enumerate() {
            n.read(Some(p), i == 0, true);
        }
        for out in 0..PROBATION {
            n.output(Some(-100 + i64::from(out)), Some(-100 + i64::from(out)));
        }
        n
    }

    #[test]
    fn drops_only_frames_no_wanted_time_takes() {
        // Display 0 33 67 100 133, decoded as I0 P133 B67 b33 b100 (B-pyramid).
        let mut n = ready(&[0, 133, 67, 33, 100]);
        n.want(&[0.1, 0.2], EPS);
        // b33 shows [33, 67): no wanted time there.
        assert!(n.may_drop(Some(33), seconds));
        // b100 shows [100, 133): 0.1 takes it.
        assert!(!n.may_drop(Some(100), seconds));
        // A time within half a tick of 67 takes 67, not 33.
        n.want(&[0.0665, 0.2], EPS);
        assert!(n.may_drop(Some(33), seconds));
        // One just below the tolerance takes 33.
        n.want(&[0.0660, 0.2], EPS);
        assert!(!n.may_drop(Some(33), seconds));
        // The keyframe and unknown stamps are never dropped; nor is the newest frame (no
        // successor known), nor anything past the clip's last time.
        n.want(&[5.0], EPS);
        assert!(!n.may_drop(Some(0), seconds));
        assert!(!n.may_drop(Some(50), seconds));
        assert!(!n.may_drop(Some(133), seconds));
        n.want(&[0.05], EPS);
        assert!(!n.may_drop(Some(100), seconds));
        // Outside a clip nothing is dropped.
        n.want_all();
        assert!(!n.may_drop(Some(33), seconds));
    }

    #[test]
    fn leading_frames_and_breaches_stop_dropping() {
        // Read after a seek: a leading frame (stamp before the keyframe's) is never dropped.
        let mut n = ready(&[100, 300, 33, 200, 150]);
        n.want(&[1.0], EPS);
        assert!(!n.may_drop(Some(33), seconds));
        assert!(n.may_drop(Some(150), seconds));
        // After a reset nothing is known until a keyframe is read again.
        n.reset();
        n.read(Some(150), false, true);
        n.read(Some(200), false, true);
        assert!(!n.may_drop(Some(150), seconds));
        // A repeated stamp turns dropping off for good.
        let mut n = ready(&[0, 133, 67, 33, 33]);
        n.want(&[1.0], EPS);
        assert!(!n.may_drop(Some(67), seconds));
        // So does a packet without a stamp, and a frame out of order.
        let mut n = ready(&[0, 133, 67]);
        n.want(&[1.0], EPS);
        assert!(n.may_drop(Some(67), seconds));
        n.read(None, false, true);
        assert!(!n.may_drop(Some(67), seconds));
        let mut n = ready(&[0, 133, 67]);
        n.want(&[1.0], EPS);
        n.output(Some(-200), Some(-200));
        assert!(!n.may_drop(Some(67), seconds));
        // Before probation nothing is dropped; a corrupt packet is no successor.
        let mut n = NonRef::new(true);
        n.read(Some(0), true, true);
        n.read(Some(133), false, false);
        n.read(Some(67), false, true);
        n.want(&[1.0], EPS);
        assert!(!n.may_drop(Some(67), seconds));
        for out in 0..PROBATION {
            n.output(Some(i64::from(out)), Some(i64::from(out)));
        }
        assert!(!n.may_drop(Some(67), seconds));
        n.read(Some(100), false, true);
        assert!(n.may_drop(Some(67), seconds));
    }
}
