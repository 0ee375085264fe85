//! The scheduled edges: one queue of due times, a task per probe while it runs, all
//! probes sharing one semaphore.
//!
//! - A probe never overlaps with itself: an edge's next slot is queued only when its
//!   probe has ended.
//! - At most `max_concurrency` probes are in flight (the semaphore); a slow or hostile
//!   edge holds one permit for at most its timeout and delays no other edge's schedule.
//! - Edges whose last probe timed out share at most half of the permits (a second
//!   semaphore they take first), so a mass of blackholed targets needing more permits
//!   than exist can only make *themselves* late: the healthy edges always find a free
//!   permit in the other half instead of queueing behind timeouts (issue 6: 1,000
//!   blackholed edges with the defaults need 500 permits of 256).
//! - Start times are spread over the interval by a hash of (source, target), so a
//!   restart or reload creates no thundering herd; the first round is compressed into
//!   the first `jitter × interval` so results (and readiness) come quickly, and the
//!   steady schedule (`start + interval × (k + phase)`) begins at once after it.
//! - Missed slots are skipped, never bursted; how late a probe starts against its slot
//!   is the schedule-lag histogram.
//! - An edge's first probe of the start-up round takes one of a share of the permits
//!   first (see [`first_share`]), for at most [`FIRST_PROBE_HOLD`]: the compressed
//!   first round is the agent's memory peak otherwise.
//! - The `watch` command reuses this with an observer and without metrics.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use schedule::{Due, Queue};

use super::metrics::{EdgeMetrics, Metrics, window_label};
use super::view::EdgeView;
use super::window::Windows;
use crate::classify::Reason;
use crate::config::Target;
use crate::identity::Credentials;
use crate::probe::{PreparedTarget, Prober};
use crate::report::ProbeReport;
use crate::sync::lock;

/// Called with every completed probe (the `watch` command's live view and report).
pub type Observer = Arc<dyn Fn(&ProbeReport, Option<&ProbeReport>) + Send + Sync>;

/// What the scheduler and every probe share.
struct Inner {
    source: String,
    prober: Prober,
    creds: watch::Receiver<Arc<Credentials>>,
    permits: Arc<Semaphore>,
    /// Taken before `permits` by edges whose last probe timed out: half of them.
    slow_permits: Arc<Semaphore>,
    /// Taken before `permits` by an edge's probe of the start-up round, held at most
    /// [`FIRST_PROBE_HOLD`] (see [`first_share`]).
    first_permits: Arc<Semaphore>,
    metrics: Option<Metrics>,
    windows: Vec<Duration>,
    /// The `window` label of each ratio, shared by every edge's series and view.
    window_labels: Arc<[Arc<str>]>,
    jitter: f64,
    base: Instant,
    shutdown: watch::Receiver<bool>,
    observer: Option<Observer>,
    log_transitions: bool,
    first_round_pending: AtomicUsize,
    first_round_done: Notify,
    /// Every edge's next slot.
    queue: Queue,
    /// The scheduler (started with the first edge) and the probes it started.
    tasks: Mutex<JoinSet<()>>,
    scheduler_started: AtomicBool,
}

/// One edge's state, shared between its probes, the scheduler and the readers (API,
/// status page).
pub struct Edge {
    state: Mutex<EdgeState>,
}

struct EdgeState {
    target: Arc<Target>,
    last: Option<Arc<ProbeReport>>,
    windows: Windows,
    probes: u64,
    passes: u64,
    since: Option<SystemTime>,
    metrics: Option<EdgeMetrics>,
    in_first_round: bool,
    sched: Sched,
}

/// Where an edge is in its schedule.
struct Sched {
    /// When the edge was added: its steady slots are `start + interval × (k + phase)`.
    start: Instant,
    /// Its next slot, or the slot of the probe running now.
    slot: Instant,
    /// Where it sits in the interval (see [`Inner::phase`]).
    phase: f64,
    /// Bumped when the edge is rescheduled out of turn (a new interval) or removed:
    /// queue entries of an older epoch are dropped.
    epoch: u32,
    /// Its next probe is its first.
    first: bool,
    /// Its last probe timed out (it takes a slow permit first).
    slow: bool,
    /// A probe is due or running: its slot is not in the queue.
    probing: bool,
    /// Aborts that probe when the edge is removed.
    task: Option<AbortHandle>,
    removed: bool,
    /// What the probes reuse (TLS config, server name), and the identity it was built
    /// with: rebuilt when either the target or the identity changed.
    prepared: Option<(Arc<PreparedTarget>, Arc<Credentials>)>,
}

/// The set of scheduled edges.
#[derive(Clone)]
pub struct EdgeSet {
    inner: Arc<Inner>,
    entries: Arc<Mutex<BTreeMap<String, Arc<Edge>>>>,
}

/// Where edges are added and removed: the [`EdgeSet`] itself, or the fleet's gate in
/// front of it (which schedules only this agent's share). Config reloads and
/// `[[discover]]` go through this, so there is one way to add or remove an edge.
pub trait EdgeSink: Send + Sync + 'static {
    /// Adds or updates an edge (see [`EdgeSet::upsert`]); the sink keeps this copy of
    /// the target (a reload's unchanged targets are the running ones, not new copies).
    fn upsert(&self, target: Arc<Target>, first_round: bool);
    /// Removes an edge and its series (see [`EdgeSet::remove`]).
    fn remove(&self, name: &str);
}

impl<T: EdgeSink + ?Sized> EdgeSink for Arc<T> {
    fn upsert(&self, target: Arc<Target>, first_round: bool) {
        (**self).upsert(target, first_round);
    }

    fn remove(&self, name: &str) {
        (**self).remove(name);
    }
}

impl EdgeSink for EdgeSet {
    fn upsert(&self, target: Arc<Target>, first_round: bool) {
        Self::upsert(self, target, first_round);
    }

    fn remove(&self, name: &str) {
        Self::remove(self, name);
    }
}

/// Settings of an [`EdgeSet`].
pub struct EdgeSetOptions {
    /// The `source` label.
    pub source: String,
    /// Runs the probes.
    pub prober: Prober,
    /// The current identity.
    pub creds: watch::Receiver<Arc<Credentials>>,
    /// Probes in flight at once.
    pub max_concurrency: usize,
    /// Success-ratio windows.
    pub windows: Vec<Duration>,
    /// First-round spread as a fraction of the interval.
    pub jitter: f64,
    /// Metrics to record into (none for `watch`).
    pub metrics: Option<Metrics>,
    /// Stops scheduling when it turns `true`.
    pub shutdown: watch::Receiver<bool>,
    /// Sees every completed probe (with the edge's previous report).
    pub observer: Option<Observer>,
    /// Log one line per edge state change (the agent); the watch prints its own lines.
    pub log_transitions: bool,
}

impl EdgeSet {
    /// An empty set.
    pub fn new(o: EdgeSetOptions) -> Self {
        let window_labels = o
            .windows
            .iter()
            .map(|w| Arc::from(window_label(*w)))
            .collect();
        Self {
            inner: Arc::new(Inner {
                source: o.source,
                prober: o.prober,
                creds: o.creds,
                permits: Arc::new(Semaphore::new(o.max_concurrency.max(1))),
                slow_permits: Arc::new(Semaphore::new(slow_share(o.max_concurrency))),
                first_permits: Arc::new(Semaphore::new(first_share(o.max_concurrency))),
                metrics: o.metrics,
                windows: o.windows,
                window_labels,
                jitter: o.jitter.clamp(0.0, 1.0),
                base: Instant::now(),
                shutdown: o.shutdown,
                observer: o.observer,
                log_transitions: o.log_transitions,
                first_round_pending: AtomicUsize::new(0),
                first_round_done: Notify::new(),
                queue: Queue::default(),
                tasks: Mutex::new(JoinSet::new()),
                scheduler_started: AtomicBool::new(false),
            }),
            entries: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// Adds an edge, or updates the definition of an existing one (its history — windows,
    /// counters, last report — is kept). `first_round` edges count toward readiness.
    /// The edge keeps this copy of the target, which the caller may share (the fleet's
    /// gate keeps every candidate; a reload hands back the running copy).
    pub fn upsert(&self, target: Arc<Target>, first_round: bool) {
        let mut entries = lock(&self.entries);
        if let Some(edge) = entries.get(&target.name) {
            let mut st = lock(&edge.state);
            if *st.target != *target {
                // The next probe picks the new definition up; the edge is rescheduled now
                // only when its interval moved. A reload that redefines 10,000 edges then
                // moves none of them at once.
                let moved = st.target.interval != target.interval;
                st.target = target;
                if moved {
                    let interval = st.target.interval;
                    let s = &mut st.sched;
                    s.epoch = s.epoch.wrapping_add(1);
                    if !s.probing {
                        // A probe running now reschedules itself when it ends.
                        s.slot = Instant::now() + interval.mul_f64(s.phase);
                        let due = Due {
                            at: s.slot,
                            epoch: s.epoch,
                            edge: Arc::downgrade(edge),
                        };
                        drop(st);
                        self.inner.queue.push(due);
                    }
                }
            }
            return;
        }
        let name = target.name.clone();
        let metrics = self
            .inner
            .metrics
            .as_ref()
            .map(|m| m.edge(&name, &self.inner.window_labels));
        if first_round {
            self.inner
                .first_round_pending
                .fetch_add(1, Ordering::SeqCst);
        }
        let start = Instant::now();
        let phase = self.inner.phase(&target);
        // The first round is compressed into `jitter × interval`.
        let slot = start + target.interval.mul_f64(phase * self.inner.jitter);
        let edge = Arc::new(Edge {
            state: Mutex::new(EdgeState {
                windows: Windows::new(target.interval, &self.inner.windows),
                target,
                last: None,
                probes: 0,
                passes: 0,
                since: None,
                metrics,
                in_first_round: first_round,
                sched: Sched {
                    start,
                    slot,
                    phase,
                    epoch: 0,
                    first: true,
                    slow: false,
                    probing: false,
                    task: None,
                    removed: false,
                    prepared: None,
                },
            }),
        });
        self.inner.queue.push(Due {
            at: slot,
            epoch: 0,
            edge: Arc::downgrade(&edge),
        });
        if !self.inner.scheduler_started.swap(true, Ordering::SeqCst) {
            let inner = self.inner.clone();
            lock(&self.inner.tasks).spawn(run::schedule(inner));
        }
        entries.insert(name, edge);
        if let Some(m) = &self.inner.metrics {
            m.set_targets(entries.len());
        }
    }

    /// Removes an edge: its probe stops and its series disappear.
    pub fn remove(&self, name: &str) {
        let mut entries = lock(&self.entries);
        let Some(edge) = entries.remove(name) else {
            return;
        };
        let mut st = lock(&edge.state);
        st.sched.removed = true;
        st.sched.epoch = st.sched.epoch.wrapping_add(1);
        st.sched.prepared = None;
        if let Some(task) = st.sched.task.take() {
            task.abort();
        }
        self.inner.leave_first_round(&mut st);
        if let (Some(m), Some(em)) = (&self.inner.metrics, st.metrics.take()) {
            m.forget(em);
        }
        if let Some(m) = &self.inner.metrics {
            m.set_targets(entries.len());
        }
    }

    /// The names of all edges.
    pub fn names(&self) -> Vec<String> {
        lock(&self.entries).keys().cloned().collect()
    }

    /// How many edges are scheduled.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Whether no edge is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every first-round edge has completed a probe.
    pub fn first_round_complete(&self) -> bool {
        self.inner.first_round_pending.load(Ordering::SeqCst) == 0
    }

    /// Waits until [`Self::first_round_complete`].
    pub async fn wait_first_round(&self) {
        loop {
            let notified = self.inner.first_round_done.notified();
            if self.first_round_complete() {
                return;
            }
            notified.await;
        }
    }

    /// Snapshots of every edge, in name order.
    pub fn views(&self) -> Vec<EdgeView> {
        let now_ms = self.inner.now_ms();
        let edges: Vec<Arc<Edge>> = lock(&self.entries).values().cloned().collect();
        edges
            .iter()
            .map(|edge| {
                let st = lock(&edge.state);
                EdgeView {
                    target: st.target.clone(),
                    last: st.last.clone(),
                    success_ratio: self
                        .inner
                        .window_labels
                        .iter()
                        .cloned()
                        .zip(st.windows.ratios(now_ms))
                        .collect(),
                    probes: st.probes,
                    passes: st.passes,
                    since: st.since,
                    fleet: None,
                }
            })
            .collect()
    }

    /// Records `report` for the edge `name` as if its task had just completed that probe
    /// (windows, counters, metrics, observer, readiness). Returns `false` when there is no
    /// such edge. The benchmarks fill 10,000 edges with it without probing anything.
    pub fn record(&self, name: &str, report: ProbeReport) -> bool {
        let edge = match lock(&self.entries).get(name) {
            Some(e) => e.clone(),
            None => return false,
        };
        self.inner.record(&edge, report);
        true
    }

    /// The metrics the edges record into (`None` for the `watch` command).
    pub fn metrics(&self) -> Option<&Metrics> {
        self.inner.metrics.as_ref()
    }

    /// Changes `max_concurrency` (a config reload).
    pub fn set_max_concurrency(&self, old: usize, new: usize) {
        resize(&self.inner.permits, old, new);
        resize(&self.inner.slow_permits, slow_share(old), slow_share(new));
        resize(
            &self.inner.first_permits,
            first_share(old),
            first_share(new),
        );
    }

    /// Waits for the probes to stop after shutdown was signalled (each finishes its
    /// in-flight probe, which its timeout bounds), at most `grace`.
    pub async fn drain(&self, grace: Duration) {
        let mut tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
    }
}

impl Inner {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn leave_first_round(&self, st: &mut EdgeState) {
        if std::mem::take(&mut st.in_first_round)
            && self.first_round_pending.fetch_sub(1, Ordering::SeqCst) == 1
        {
            self.first_round_done.notify_waiters();
        }
    }

    /// Where this edge sits in the interval: a stable fraction from (source, target).
    fn phase(&self, target: &Target) -> f64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.source.hash(&mut h);
        target.name.hash(&mut h);
        (h.finish() % 1_000_000) as f64 / 1_000_000.0
    }

    fn record(&self, edge: &Edge, report: ProbeReport) {
        let report = Arc::new(report);
        let now_ms = self.now_ms();
        let mut st = lock(&edge.state);
        if st.sched.removed {
            return;
        }
        let EdgeState {
            windows, metrics, ..
        } = &mut *st;
        windows.record(now_ms, report.ok);
        if let (Some(m), Some(em)) = (&self.metrics, metrics.as_mut()) {
            m.record(em, &report, windows.ratios(now_ms));
        }
        st.probes += 1;
        if report.ok {
            st.passes += 1;
        }
        let previous = st.last.as_ref().map(|r| (r.ok, r.reason));
        if previous != Some((report.ok, report.reason)) {
            st.since = Some(SystemTime::now());
            if self.log_transitions {
                log_transition(st.last.as_deref(), &report);
            }
        }
        if let Some(observer) = &self.observer {
            observer(&report, st.last.as_deref());
        }
        st.last = Some(report);
        self.leave_first_round(&mut st);
    }
}

/// One line per state change of an edge (pass→fail, fail→pass, reason change), never one
/// per probe.
fn log_transition(previous: Option<&ProbeReport>, r: &ProbeReport) {
    let was = previous.map(|p| match p.reason {
        Some(reason) => reason.as_str(),
        None => "pass",
    });
    let was = was.unwrap_or("new");
    match r.reason {
        None => tracing::info!(
            edge = %r.target,
            address = %r.address,
            previous = was,
            "edge passing"
        ),
        Some(reason) => tracing::warn!(
            edge = %r.target,
            address = %r.address,
            previous = was,
            stage = reason.stage().as_str(),
            reason = reason.as_str(),
            detail = r.detail.as_deref().unwrap_or(""),
            "edge failing"
        ),
    }
}

/// Permits for edges whose last probe timed out: half of `max_concurrency`, at least 1.
fn slow_share(max_concurrency: usize) -> usize {
    (max_concurrency / 2).max(1)
}

/// Permits for the start-up round's first probes: a quarter of `max_concurrency`, but
/// never fewer than 16 (or `max_concurrency` itself when that is smaller).
///
/// The first round puts every edge's first probe into `jitter × interval` (10,000 edges
/// in 2 s at 20 s), far more than the agent's core or the peers handle at once, so
/// without this bound every permit fills with handshakes waiting their turn, each holding
/// its TLS state and buffers (≈ 45 KB): 256 of them were the agent's peak memory. A
/// quarter carries the same throughput when the CPU or the peers are the limit (the
/// probes just wait less each) and leaves the rest to edges already on their steady
/// schedule. Only the start-up round takes it: a hand-over or a reload adds edges a few at
/// a time, and below 16 probes in flight the memory is no concern.
fn first_share(max_concurrency: usize) -> usize {
    (max_concurrency / 4).max(max_concurrency.min(16)).max(1)
}

/// How long a start-up probe holds its first-round permit. A probe still running after
/// this waits on a slow or silent peer, not on our CPU, and holds little beyond its
/// connection: it lets the next first probe start, so a mass of blackholed targets
/// delays readiness no more than their own timeouts do.
const FIRST_PROBE_HOLD: Duration = Duration::from_secs(1);

/// Grows or shrinks a semaphore from `old` to `new` permits (a config reload).
fn resize(permits: &Arc<Semaphore>, old: usize, new: usize) {
    if new > old {
        permits.add_permits(new - old);
    } else if old > new {
        // Permits in use are taken back as they are released.
        let permits = permits.clone();
        let n = u32::try_from(old - new).unwrap_or(u32::MAX);
        tokio::spawn(async move {
            if let Ok(p) = permits.acquire_many_owned(n).await {
                p.forget();
            }
        });
    }
}

/// Whether a probe ended by running out of time (a blackhole, a dropped SYN, a peer
/// that never answers): it held its permit for its whole timeout.
fn timed_out(report: &ProbeReport) -> bool {
    matches!(
        report.reason,
        Some(Reason::ConnectTimeout | Reason::HandshakeTimeout | Reason::RequestTimeout)
    )
}

mod run;
mod schedule;

#[cfg(test)]
mod tests;
