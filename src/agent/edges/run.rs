//! The scheduler and the probe task: when an edge's slot comes, a task takes its
//! permits, runs the probe, records it and queues the edge's next slot.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit, watch};
use tokio::time::Instant;

use super::schedule::{Due, next_slot, steady_slot};
use super::{Edge, FIRST_PROBE_HOLD, Inner, timed_out};
use crate::probe::PreparedTarget;
use crate::sync::lock;

/// Starts each edge's probe when its slot comes, until shutdown.
pub(super) async fn schedule(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.clone();
    let mut due = Vec::new();
    loop {
        let next = inner.queue.next();
        tokio::select! {
            () = sleep_until(next) => {}
            // An earlier slot than the one slept for; look again.
            () = inner.queue.earlier() => continue,
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        inner.queue.pop_due(Instant::now(), &mut due);
        for d in due.drain(..) {
            let Some(edge) = d.edge.upgrade() else {
                continue;
            };
            {
                let mut st = lock(&edge.state);
                let s = &mut st.sched;
                if s.removed || s.epoch != d.epoch || s.probing {
                    continue;
                }
                s.probing = true;
            }
            let task = {
                let mut tasks = lock(&inner.tasks);
                // Ended probes' cells stay allocated until joined.
                while tasks.try_join_next().is_some() {}
                tasks.spawn(probe(inner.clone(), edge.clone(), d.at))
            };
            let mut st = lock(&edge.state);
            if st.sched.removed {
                task.abort();
            } else if st.sched.probing {
                st.sched.task = Some(task);
            }
        }
    }
}

/// A permit of `permits` when `wanted` (`None` otherwise); `Err` when shutdown comes
/// first or the semaphore is closed.
async fn permit_if<'a>(
    wanted: bool,
    permits: &'a Semaphore,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<SemaphorePermit<'a>>, ()> {
    if !wanted {
        return Ok(None);
    }
    tokio::select! {
        p = permits.acquire() => p.map(Some).map_err(drop),
        _ = shutdown.changed() => Err(()),
    }
}

/// Sleeps until `at`, or forever when nothing is scheduled.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One probe of `edge` for its slot `slot`: permits, the probe, its record, and the
/// edge's next slot.
async fn probe(inner: Arc<Inner>, edge: Arc<Edge>, slot: Instant) {
    let mut shutdown = inner.shutdown.clone();
    if *shutdown.borrow() {
        return;
    }
    let (slow, start_up) = {
        let st = lock(&edge.state);
        (st.sched.slow, st.in_first_round)
    };
    // The start-up and slow shares are taken before the common permits.
    let Ok(first_permit) = permit_if(start_up, &inner.first_permits, &mut shutdown).await else {
        return;
    };
    let Ok(slow_permit) = permit_if(slow, &inner.slow_permits, &mut shutdown).await else {
        return;
    };
    let Ok(Some(_permit)) = permit_if(true, &inner.permits, &mut shutdown).await else {
        return;
    };
    let started = Instant::now();
    if let Some(m) = &inner.metrics {
        m.observe_lag(started.saturating_duration_since(slot));
    }
    let prepared = inner.prepared(&edge);
    // Boxed: the probe's future (TLS, hyper, classification state: ≈ 12 KB) would
    // otherwise be allocated with the task while it waits for its permits.
    let report = Box::pin(async {
        let probe = inner.prober.run(&prepared, &inner.source);
        let Some(first_permit) = first_permit else {
            return probe.await;
        };
        tokio::pin!(probe);
        tokio::select! {
            r = &mut probe => r,
            () = tokio::time::sleep(FIRST_PROBE_HOLD) => {
                drop(first_permit);
                probe.await
            }
        }
    })
    .await;
    drop(_permit);
    drop(slow_permit);
    let slow = timed_out(&report);
    inner.record(&edge, report);
    inner.reschedule(&edge, prepared.target.interval, slot, slow);
}

impl Inner {
    /// The edge's prepared target, rebuilt when its definition or the identity changed
    /// since it was built.
    fn prepared(&self, edge: &Edge) -> Arc<PreparedTarget> {
        let creds = self.creds.borrow().clone();
        let mut st = lock(&edge.state);
        if let Some((p, c)) = &st.sched.prepared
            && Arc::ptr_eq(&p.target, &st.target)
            && Arc::ptr_eq(c, &creds)
        {
            return p.clone();
        }
        let p = Arc::new(self.prober.prepare(st.target.clone(), &creds));
        st.sched.prepared = Some((p.clone(), creds));
        p
    }

    /// Queues the edge's next slot after its probe for `slot` ended (the probe ran with
    /// `interval`).
    fn reschedule(&self, edge: &Arc<Edge>, interval: Duration, slot: Instant, slow: bool) {
        let now = Instant::now();
        let mut st = lock(&edge.state);
        let current = st.target.interval;
        let s = &mut st.sched;
        s.task = None;
        s.probing = false;
        if s.removed {
            return;
        }
        s.slow = slow;
        let first = std::mem::take(&mut s.first);
        s.slot = if current != interval {
            // Redefined with another interval while probing.
            now + current.mul_f64(s.phase)
        } else if first {
            steady_slot(s.start, current, s.phase, now)
        } else {
            next_slot(slot, current, now)
        };
        let due = Due {
            at: s.slot,
            epoch: s.epoch,
            edge: Arc::downgrade(edge),
        };
        drop(st);
        self.queue.push(due);
    }
}
