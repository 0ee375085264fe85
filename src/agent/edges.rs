//! The scheduled edges: one task per edge, all sharing one semaphore.
//!
//! - A probe never overlaps with itself: each edge is a sequential loop.
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
//! - The `watch` command reuses this with an observer and without metrics.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::metrics::{EdgeMetrics, Metrics, window_label};
use super::view::EdgeView;
use super::window::Windows;
use crate::classify::Reason;
use crate::config::Target;
use crate::identity::Credentials;
use crate::probe::Prober;
use crate::report::ProbeReport;
use crate::sync::lock;

/// Called with every completed probe (the `watch` command's live view and report).
pub type Observer = Arc<dyn Fn(&ProbeReport, Option<&ProbeReport>) + Send + Sync>;

/// What every edge task shares.
struct Inner {
    source: String,
    prober: Prober,
    creds: watch::Receiver<Arc<Credentials>>,
    permits: Arc<Semaphore>,
    /// Taken before `permits` by edges whose last probe timed out: half of them.
    slow_permits: Arc<Semaphore>,
    metrics: Option<Metrics>,
    windows: Vec<Duration>,
    window_labels: Vec<String>,
    jitter: f64,
    base: Instant,
    shutdown: watch::Receiver<bool>,
    observer: Option<Observer>,
    log_transitions: bool,
    first_round_pending: AtomicUsize,
    first_round_done: Notify,
}

/// One edge's state, shared between its task and the readers (API, status page).
pub struct Edge {
    state: Mutex<EdgeState>,
    /// Wakes the edge's task when `state.target` was replaced by one with another
    /// interval (a reload; other changes are picked up at the next probe). A `Notify`
    /// rather than a `watch` channel per edge: ≈ 40 bytes instead of ≈ 440, and a change
    /// made while the task is probing is kept as a permit for its next wait.
    redefined: Notify,
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
}

struct Entry {
    edge: Arc<Edge>,
    task: tokio::task::AbortHandle,
}

/// The set of scheduled edges.
#[derive(Clone)]
pub struct EdgeSet {
    inner: Arc<Inner>,
    entries: Arc<Mutex<BTreeMap<String, Entry>>>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

/// Where edges are added and removed: the [`EdgeSet`] itself, or the fleet's gate in
/// front of it (which schedules only this agent's share). Config reloads and
/// `[[discover]]` go through this, so there is one way to add or remove an edge.
pub trait EdgeSink: Send + Sync + 'static {
    /// Adds or updates an edge (see [`EdgeSet::upsert`]).
    fn upsert(&self, target: Target, first_round: bool);
    /// Removes an edge and its series (see [`EdgeSet::remove`]).
    fn remove(&self, name: &str);
}

impl<T: EdgeSink + ?Sized> EdgeSink for Arc<T> {
    fn upsert(&self, target: Target, first_round: bool) {
        (**self).upsert(target, first_round);
    }

    fn remove(&self, name: &str) {
        (**self).remove(name);
    }
}

impl EdgeSink for EdgeSet {
    fn upsert(&self, target: Target, first_round: bool) {
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
        let window_labels = o.windows.iter().map(|w| window_label(*w)).collect();
        Self {
            inner: Arc::new(Inner {
                source: o.source,
                prober: o.prober,
                creds: o.creds,
                permits: Arc::new(Semaphore::new(o.max_concurrency.max(1))),
                slow_permits: Arc::new(Semaphore::new(slow_share(o.max_concurrency))),
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
            }),
            entries: Arc::new(Mutex::new(BTreeMap::new())),
            tasks: Arc::new(Mutex::new(JoinSet::new())),
        }
    }

    /// Adds an edge, or updates the definition of an existing one (its history — windows,
    /// counters, last report — is kept). `first_round` edges count toward readiness.
    pub fn upsert(&self, target: Target, first_round: bool) {
        self.upsert_shared(Arc::new(target), first_round);
    }

    /// [`Self::upsert`] of a target whose copy the caller shares (the fleet's gate
    /// keeps every candidate; the edge keeps the same allocation, not a second copy).
    pub fn upsert_shared(&self, target: Arc<Target>, first_round: bool) {
        let mut entries = lock(&self.entries);
        if let Some(e) = entries.get(&target.name) {
            let mut st = lock(&e.edge.state);
            if *st.target != *target {
                // The task picks the new definition up at its next probe; it is woken
                // now only when its schedule moves. A reload that redefines 10,000
                // edges then wakes none of them at once.
                let moved = st.target.interval != target.interval;
                st.target = target;
                drop(st);
                if moved {
                    e.edge.redefined.notify_one();
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
        let edge = Arc::new(Edge {
            state: Mutex::new(EdgeState {
                windows: Windows::new(target.interval, &self.inner.windows),
                target: target.clone(),
                last: None,
                probes: 0,
                passes: 0,
                since: None,
                metrics,
                in_first_round: first_round,
            }),
            redefined: Notify::new(),
        });
        let mut tasks = lock(&self.tasks);
        // Removed edges' tasks were aborted; their cells stay allocated until joined.
        while tasks.try_join_next().is_some() {}
        let task = tasks.spawn(edge_loop(self.inner.clone(), edge.clone(), target));
        drop(tasks);
        entries.insert(name, Entry { edge, task });
        if let Some(m) = &self.inner.metrics {
            m.set_targets(entries.len());
        }
    }

    /// Removes an edge: its task stops and its series disappear.
    pub fn remove(&self, name: &str) {
        let mut entries = lock(&self.entries);
        let Some(entry) = entries.remove(name) else {
            return;
        };
        entry.task.abort();
        let mut st = lock(&entry.edge.state);
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
        let edges: Vec<Arc<Edge>> = lock(&self.entries)
            .values()
            .map(|e| e.edge.clone())
            .collect();
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
            Some(e) => e.edge.clone(),
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
    }

    /// Waits for the edge tasks to stop after shutdown was signalled (each finishes its
    /// in-flight probe, which its timeout bounds), at most `grace`.
    pub async fn drain(&self, grace: Duration) {
        let mut tasks = std::mem::take(&mut *lock(&self.tasks));
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

async fn edge_loop(inner: Arc<Inner>, edge: Arc<Edge>, mut target: Arc<Target>) {
    let mut shutdown = inner.shutdown.clone();
    let mut creds = inner.creds.clone();
    let mut prepared = inner
        .prober
        .prepare(target.clone(), &creds.borrow_and_update());
    let phase = inner.phase(&target);
    let start = Instant::now();
    let mut slot = start + target.interval.mul_f64(phase * inner.jitter);
    let mut first = true;
    let mut slow = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(slot) => {}
            () = edge.redefined.notified() => {
                let new = lock(&edge.state).target.clone();
                if Arc::ptr_eq(&new, &target) {
                    continue;
                }
                if new.interval != target.interval {
                    slot = Instant::now() + new.interval.mul_f64(phase);
                }
                target = new;
                prepared = inner.prober.prepare(target.clone(), &creds.borrow());
                continue;
            }
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let slow_permit = if slow {
            tokio::select! {
                p = inner.slow_permits.acquire() => match p {
                    Ok(p) => Some(p),
                    Err(_) => return,
                },
                _ = shutdown.changed() => return,
            }
        } else {
            None
        };
        let permit = tokio::select! {
            p = inner.permits.acquire() => p,
            _ = shutdown.changed() => return,
        };
        let Ok(_permit) = permit else {
            return;
        };
        let started = Instant::now();
        if let Some(m) = &inner.metrics {
            m.observe_lag(started.saturating_duration_since(slot));
        }
        let current = lock(&edge.state).target.clone();
        let redefined = !Arc::ptr_eq(&current, &target);
        if redefined || creds.has_changed().unwrap_or(false) {
            target = current;
            prepared = inner
                .prober
                .prepare(target.clone(), &creds.borrow_and_update());
        }
        // Boxed: the probe's future (TLS, hyper, classification state: ≈ 12 KB) would
        // otherwise live inline in every edge task for the task's whole life, sleeping
        // included — 120 MB for 10,000 edges. Boxed, it exists only while probing.
        let report = Box::pin(inner.prober.run(&prepared, &inner.source)).await;
        drop(_permit);
        drop(slow_permit);
        slow = timed_out(&report);
        inner.record(&edge, report);
        slot = if first {
            first = false;
            steady_slot(start, target.interval, phase, Instant::now())
        } else {
            next_slot(slot, target.interval, Instant::now())
        };
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
fn steady_slot(start: Instant, interval: Duration, phase: f64, now: Instant) -> Instant {
    let first = start + interval.mul_f64(phase);
    if first > now {
        first
    } else {
        next_slot(first, interval, now)
    }
}

/// The slot after `slot`, skipping those already past at `now`: missed slots are
/// skipped, never bursted.
fn next_slot(slot: Instant, interval: Duration, now: Instant) -> Instant {
    let mut next = slot + interval;
    if next <= now {
        // Jump over every missed slot at once (a long stall, a suspended machine).
        let behind = now.saturating_duration_since(next);
        let skipped = (behind.as_nanos() / interval.as_nanos().max(1)) + 1;
        next += interval * u32::try_from(skipped).unwrap_or(u32::MAX);
    }
    next
}

/// Permits for edges whose last probe timed out: half of `max_concurrency`, at least 1.
fn slow_share(max_concurrency: usize) -> usize {
    (max_concurrency / 2).max(1)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::metrics::Metrics;
    use crate::clock::SystemClock;
    use crate::demo::peers::{self, Behavior, HttpBehavior, Response};
    use crate::probe::Resolver;

    fn target(name: &str, addr: std::net::SocketAddr, every: &str) -> String {
        format!(
            "[[target]]\nname = \"{name}\"\naddress = \"{addr}\"\nmode = \"plaintext\"\n\
             interval = \"{every}\"\ntimeout = \"{every}\"\n[target.http]\npath = \"/\"\n"
        )
    }

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timed_out_edges_cannot_starve_a_healthy_one() {
        // Eight blackholed edges whose timeout equals their interval would hold all four
        // permits; the healthy edge (every 100 ms) would queue behind them and get one
        // about every 200 ms, while the holes finish four probes per 400 ms: fewer
        // healthy probes than hole probes. Kept to half of the permits, the holes finish
        // two per 400 ms and the healthy edge runs on time (four per 400 ms): about twice
        // as many. Counting one against the other needs no clock in the test.
        let hole = peers::spawn(Behavior::Blackhole).await.unwrap();
        let ok = peers::spawn(Behavior::Plaintext {
            http: HttpBehavior::Respond(Response::ok()),
        })
        .await
        .unwrap();
        let mut toml = String::from("[agent]\nsource = \"t\"\njitter = 0\n");
        for i in 0..8 {
            toml.push_str(&target(&format!("hole/{i}"), hole.addr(), "400ms"));
        }
        toml.push_str(&target("healthy", ok.addr(), "100ms"));
        let config = crate::config::load_str(&toml, "t.toml", &Default::default()).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let observer: Observer = Arc::new(move |r: &ProbeReport, _: Option<&ProbeReport>| {
            let _ = tx.send((r.target.clone(), r.ok));
        });
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let creds = Credentials::load(None, &provider, SystemTime::now());
        let (_creds_tx, creds) = watch::channel(Arc::new(creds));
        let (_stop, shutdown) = watch::channel(false);
        let set = EdgeSet::new(EdgeSetOptions {
            source: "t".into(),
            prober: Prober::new(Resolver::new(&[]), Arc::new(SystemClock)),
            creds,
            max_concurrency: 4,
            windows: vec![Duration::from_secs(300)],
            jitter: 0.0,
            metrics: None,
            shutdown,
            observer: Some(observer),
            log_transitions: false,
        });
        for t in &config.targets {
            set.upsert(t.clone(), false);
        }
        // The first round tells the agent which edges time out; count after it.
        let mut first = std::collections::BTreeSet::new();
        while first.len() < 8 {
            let (target, _) = rx.recv().await.unwrap();
            if target.starts_with("hole/") {
                first.insert(target);
            }
        }
        let (mut holes, mut healthy) = (0, 0);
        while holes < 16 {
            let (target, ok) = rx.recv().await.unwrap();
            if target == "healthy" {
                assert!(ok, "the healthy edge failed");
                healthy += 1;
            } else {
                holes += 1;
            }
        }
        assert!(
            healthy >= holes,
            "the healthy edge was probed {healthy} times while the blackholed ones \
             finished {holes} probes (on time it would be about {})",
            2 * holes
        );
        set.remove("healthy");
    }

    #[tokio::test]
    async fn schedule_lag_counts_the_wait_for_a_permit() {
        // Three edges due at once, one permit, a peer that never answers (each probe
        // holds the permit for its 300 ms timeout): the second starts ≈ 0.3 s late and
        // the third ≈ 0.6 s late. The lag histogram (the SPEC's overload signal) must
        // show that queueing, not only the timer's own lateness.
        let silent = peers::spawn(Behavior::Plaintext {
            http: HttpBehavior::Silent,
        })
        .await
        .unwrap();
        let mut toml = String::from("[agent]\nsource = \"t\"\njitter = 0\n");
        for i in 0..3 {
            toml.push_str(
                &target(&format!("silent/{i}"), silent.addr(), "10s")
                    .replace("timeout = \"10s\"", "timeout = \"300ms\""),
            );
        }
        let config = crate::config::load_str(&toml, "t.toml", &Default::default()).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let observer: Observer = Arc::new(move |r: &ProbeReport, _: Option<&ProbeReport>| {
            let _ = tx.send(r.reason);
        });
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let creds = Credentials::load(None, &provider, SystemTime::now());
        let (_creds_tx, creds) = watch::channel(Arc::new(creds));
        let (_stop, shutdown) = watch::channel(false);
        let metrics = Metrics::new("t").unwrap();
        let set = EdgeSet::new(EdgeSetOptions {
            source: "t".into(),
            prober: Prober::new(Resolver::new(&[]), Arc::new(SystemClock)),
            creds,
            max_concurrency: 1,
            windows: vec![Duration::from_secs(300)],
            jitter: 0.0,
            metrics: Some(metrics.clone()),
            shutdown,
            observer: Some(observer),
            log_transitions: false,
        });
        for t in &config.targets {
            set.upsert(t.clone(), true);
        }
        for _ in 0..3 {
            assert_eq!(rx.recv().await.unwrap(), Some(Reason::RequestTimeout));
        }
        let text = String::from_utf8(metrics.render()).unwrap();
        let value = |series: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(series))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        };
        let lag = "mtls_probe_schedule_lag_seconds";
        assert_eq!(value(&format!("{lag}_count")), 3.0);
        assert_eq!(
            value(&format!("{lag}_bucket{{source=\"t\",le=\"0.1\"}}")),
            1.0
        );
        let sum = value(&format!("{lag}_sum"));
        assert!(
            (0.8..3.0).contains(&sum),
            "the queued probes' lags add up to {sum} s, expected ≈ 0.3 + 0.6"
        );
    }
}
