//! When each edge probes next: one queue of due times for every edge, and the slot
//! arithmetic.
//!
//! The queue replaces a task and a timer per edge. A sleeping edge used to be a whole
//! tokio task (≈ 780 bytes: the task cell, its `Sleep`, the waits for a redefinition and
//! for shutdown), 7.8 MB for 10,000 edges; in the queue it is one entry of 32 bytes, and
//! a task exists only while a probe is due or running.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::Edge;
use crate::sync::lock;

/// One edge's next slot.
pub(super) struct Due {
    /// When the probe is due.
    pub(super) at: Instant,
    /// The edge's schedule epoch when this entry was made: an entry whose edge has been
    /// rescheduled since (a new interval) or removed is stale and dropped when it comes up.
    pub(super) epoch: u32,
    /// Weak, so a removed edge is freed at once rather than at its next slot.
    pub(super) edge: Weak<Edge>,
}

// A min-heap on `at`: `BinaryHeap` pops its greatest element.
impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Due {}

/// The due times of every edge, earliest first.
#[derive(Default)]
pub(super) struct Queue {
    heap: Mutex<BinaryHeap<Due>>,
    /// Wakes the scheduler when an entry earlier than every other one arrives.
    earlier: Notify,
}

impl Queue {
    /// Adds an entry; wakes the scheduler if it is now the earliest.
    pub(super) fn push(&self, due: Due) {
        let mut heap = lock(&self.heap);
        let earliest = heap.peek().is_none_or(|first| due.at < first.at);
        heap.push(due);
        drop(heap);
        if earliest {
            // Kept as a permit if the scheduler is not waiting right now.
            self.earlier.notify_one();
        }
    }

    /// The earliest due time.
    pub(super) fn next(&self) -> Option<Instant> {
        lock(&self.heap).peek().map(|d| d.at)
    }

    /// Moves every entry due at `now` into `out`.
    pub(super) fn pop_due(&self, now: Instant, out: &mut Vec<Due>) {
        let mut heap = lock(&self.heap);
        while heap.peek().is_some_and(|d| d.at <= now) {
            if let Some(d) = heap.pop() {
                out.push(d);
            }
        }
    }

    /// Completes when an entry earlier than all others was pushed.
    pub(super) async fn earlier(&self) {
        self.earlier.notified().await;
    }
}

/// The first slot of an edge's steady schedule after its compressed first-round probe:
/// the next `start + interval × (k + phase)` after `now`.
///
/// The steady slots are the spread phases themselves, so the first interval after start
/// already runs at the full rate: every edge's extra first-round probe comes on top of
/// the schedule instead of pushing its steady phase a whole interval later. (Counting
/// the steady phase from the first-round probe left almost no probes between the end of
/// the compressed first round and one interval after start, then a ramp over a second
/// interval: a load run of 10,000 edges at 20 s counted 418 probes/s of the 500/s
/// scheduled over the minute after readiness.)
pub(super) fn steady_slot(start: Instant, interval: Duration, phase: f64, now: Instant) -> Instant {
    let first = start + interval.mul_f64(phase);
    if first > now {
        first
    } else {
        next_slot(first, interval, now)
    }
}

/// The slot after `slot`, skipping those already past at `now`: missed slots are
/// skipped, never bursted.
pub(super) fn next_slot(slot: Instant, interval: Duration, now: Instant) -> Instant {
    let mut next = slot + interval;
    if next <= now {
        // Jump over every missed slot at once (a long stall, a suspended machine).
        let behind = now.saturating_duration_since(next);
        let skipped = (behind.as_nanos() / interval.as_nanos().max(1)) + 1;
        next += interval * u32::try_from(skipped).unwrap_or(u32::MAX);
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steady_schedule_starts_in_the_first_interval() {
        let start = Instant::now();
        let s = Duration::from_secs;
        let every = s(20);
        // Phase 0.5, jitter 0.1: the first-round probe at 1 s, the steady slot at 10 s,
        // not one interval after the first probe (21 s or later).
        assert_eq!(steady_slot(start, every, 0.5, start + s(1)), start + s(10));
        // A steady slot already past (phase 0.01 → 0.2 s) moves to the next interval.
        assert_eq!(
            steady_slot(start, every, 0.01, start + Duration::from_millis(300)),
            start + Duration::from_millis(20_200)
        );
        // Over many edges the steady rate is reached at once: one probe per edge in
        // every interval-long window from the end of the first round on.
        let n = 10_000u32;
        let first_round_end = start + Duration::from_millis(2_001);
        let firsts: Vec<Instant> = (0..n)
            .map(|i| steady_slot(start, every, f64::from(i) / f64::from(n), first_round_end))
            .collect();
        let in_window = |from: Instant| {
            firsts
                .iter()
                .filter(|&&t| {
                    let k = (0..3).map(|k| t + every * k);
                    k.filter(|&t| t >= from && t < from + every).count() == 1
                })
                .count()
        };
        assert_eq!(in_window(first_round_end), n as usize);
        assert_eq!(in_window(start + s(7)), n as usize);
    }

    #[test]
    fn missed_slots_are_skipped_not_bursted() {
        let start = Instant::now();
        let every = Duration::from_secs(10);
        assert_eq!(
            next_slot(start, every, start + Duration::from_secs(5)),
            start + every
        );
        // 35 s late: the slots at 10, 20 and 30 s are skipped, the next is at 40 s.
        assert_eq!(
            next_slot(start, every, start + Duration::from_secs(35)),
            start + Duration::from_secs(40)
        );
        // Exactly on a slot boundary: that slot is past, the next one is due.
        assert_eq!(
            next_slot(start, every, start + Duration::from_secs(20)),
            start + Duration::from_secs(30)
        );
    }

    #[test]
    fn the_queue_pops_in_time_order_and_only_what_is_due() {
        let q = Queue::default();
        let t0 = Instant::now();
        for ms in [30, 10, 20, 50] {
            q.push(Due {
                at: t0 + Duration::from_millis(ms),
                epoch: u32::try_from(ms).unwrap(),
                edge: Weak::new(),
            });
        }
        assert_eq!(q.next(), Some(t0 + Duration::from_millis(10)));
        let mut out = Vec::new();
        q.pop_due(t0 + Duration::from_millis(30), &mut out);
        let popped: Vec<u32> = out.iter().map(|d| d.epoch).collect();
        assert_eq!(popped, [10, 20, 30]);
        assert_eq!(q.next(), Some(t0 + Duration::from_millis(50)));
    }
}
