//! Success ratios over sliding time windows, in a fixed ring of time buckets.
//!
//! Memory per edge is bounded by the number of buckets (at most [`MAX_BUCKETS`] × 4
//! bytes) whatever the probe rate: a bucket holds pass/total counts, not probes. The
//! ratio over a window sums the buckets it covers, so it is exact to one bucket width
//! (the edge's interval by default).

use std::time::Duration;

/// Upper bound on buckets per edge (1.4 KiB of counts).
pub const MAX_BUCKETS: usize = 360;

/// Pass/total counts per time bucket, covering the largest window.
#[derive(Clone, Debug)]
pub struct Windows {
    bucket_ms: u64,
    /// Buckets each window spans, in window order.
    spans: Vec<u64>,
    ring: Box<[(u16, u16)]>,
    /// Epoch (time / bucket) of the newest bucket written, if any.
    head: Option<u64>,
}

impl Windows {
    /// Buckets of about `resolution` (the edge's interval), widened when needed so the
    /// largest window fits in [`MAX_BUCKETS`].
    pub fn new(resolution: Duration, windows: &[Duration]) -> Self {
        let largest = windows
            .iter()
            .max()
            .copied()
            .unwrap_or(Duration::from_secs(300));
        let min_bucket = largest.as_millis().div_ceil(MAX_BUCKETS as u128 - 1) as u64;
        let bucket_ms = (resolution.as_millis() as u64).max(min_bucket).max(1000);
        let spans: Vec<u64> = windows
            .iter()
            .map(|w| (w.as_millis() as u64).div_ceil(bucket_ms).max(1))
            .collect();
        let len = spans.iter().max().copied().unwrap_or(1) as usize + 1;
        Self {
            bucket_ms,
            spans,
            ring: vec![(0, 0); len].into_boxed_slice(),
            head: None,
        }
    }

    /// Records one probe outcome at `at_ms` (monotonic milliseconds).
    pub fn record(&mut self, at_ms: u64, ok: bool) {
        let epoch = at_ms / self.bucket_ms;
        let len = self.ring.len() as u64;
        match self.head {
            Some(head) if epoch + len <= head => return, // older than the ring
            Some(head) if epoch > head => {
                // Clear the buckets skipped since the last write (at most the ring).
                for e in (head + 1..=epoch).rev().take(self.ring.len()) {
                    self.ring[(e % len) as usize] = (0, 0);
                }
                self.head = Some(epoch);
            }
            Some(_) => {}
            None => {
                self.head = Some(epoch);
            }
        }
        let slot = &mut self.ring[(epoch % len) as usize];
        slot.1 = slot.1.saturating_add(1);
        if ok {
            slot.0 = slot.0.saturating_add(1);
        }
    }

    /// Passed / completed in each window ending at `now_ms`; `None` for a window in
    /// which no probe completed.
    pub fn ratios(&self, now_ms: u64) -> impl Iterator<Item = Option<f64>> + '_ {
        let now = now_ms / self.bucket_ms;
        let len = self.ring.len() as u64;
        self.spans.iter().map(move |&span| {
            let head = self.head?;
            let first = (now + 1)
                .saturating_sub(span)
                .max((head + 1).saturating_sub(len));
            let last = now.min(head);
            let (mut pass, mut total) = (0u64, 0u64);
            for e in first..=last {
                let (p, t) = self.ring[(e % len) as usize];
                pass += u64::from(p);
                total += u64::from(t);
            }
            (total > 0).then(|| pass as f64 / total as f64)
        })
    }

    /// Heap bytes used by the ring (for sizing docs and tests).
    pub fn heap_bytes(&self) -> usize {
        self.ring.len() * size_of::<(u16, u16)>() + self.spans.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;

    fn w(interval: u64, windows: &[u64]) -> Windows {
        let ws: Vec<_> = windows.iter().map(|s| Duration::from_secs(*s)).collect();
        Windows::new(Duration::from_secs(interval), &ws)
    }

    #[test]
    fn ratio_over_each_window() {
        let mut win = w(10, &[60, 300]);
        // 30 probes over 300 s: the first 24 pass, the last 6 (the last minute) fail.
        for i in 0..30 {
            win.record(i * 10 * S, i < 24);
        }
        let r: Vec<_> = win.ratios(299 * S).collect();
        assert_eq!(r[0], Some(0.0), "the last minute failed");
        assert_eq!(r[1], Some(24.0 / 30.0));
    }

    #[test]
    fn old_probes_leave_the_window() {
        let mut win = w(10, &[60, 300]);
        win.record(0, false);
        win.record(10 * S, true);
        assert_eq!(
            win.ratios(10 * S).collect::<Vec<_>>(),
            vec![Some(0.5), Some(0.5)]
        );
        // Much later: nothing in either window any more.
        assert_eq!(win.ratios(1000 * S).collect::<Vec<_>>(), vec![None, None]);
        // A probe after a long gap does not see stale buckets.
        win.record(1000 * S, true);
        assert_eq!(
            win.ratios(1000 * S).collect::<Vec<_>>(),
            vec![Some(1.0), Some(1.0)]
        );
    }

    #[test]
    fn memory_is_bounded_whatever_the_rate() {
        let win = w(1, &[300, 1800, 86_400]);
        assert!(win.ring.len() <= MAX_BUCKETS, "{}", win.ring.len());
        assert!(win.heap_bytes() < 2048);
        let mut win = w(1, &[60]);
        for i in 0..100_000u64 {
            win.record(i * 10, i % 4 != 0);
        }
        let r = win.ratios(100_000 * 10).next().unwrap().unwrap();
        assert!((r - 0.75).abs() < 0.01, "{r}");
    }

    #[test]
    fn no_probe_yet_is_none() {
        let win = w(10, &[300]);
        assert_eq!(win.ratios(0).next(), Some(None));
    }
}
