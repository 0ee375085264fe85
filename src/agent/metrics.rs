//! The Prometheus metrics of SPEC §6, in one registry owned by the agent (never the
//! global one, so tests and several agents in one process do not share state).
//!
//! Label values are only: the configured `source` and target names, the closed sets of
//! `Stage`/`Reason`/result/phase/window, rustls' static version and cipher names, and
//! the presented certificate's fields (bounded in length). Per-edge series live in one
//! small struct per edge (see [`exposition`]), so recording a probe does no label
//! hashing and allocates nothing unless a certificate or TLS label changed.

mod exposition;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use self::exposition::{EdgeSeries, lock, write_edges};
use crate::report::ProbeReport;

/// Whole-probe duration buckets: loopback, same zone, cross zone, slow, near timeout.
/// Six buckets keep an edge at 18 series with the defaults (SPEC §6 allows 20).
pub const DURATION_BUCKETS: &[f64] = &[0.0025, 0.01, 0.05, 0.25, 1.0, 5.0];
/// Schedule-lag buckets: on time … an overloaded agent.
pub const LAG_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0];
/// Per-phase duration buckets (all edges together, so a finer scale is affordable).
pub const PHASE_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// The agent's metrics: the agent-wide ones in a prometheus registry, the per-edge ones
/// in [`exposition`]'s compact store (both rendered by [`Metrics::render`]).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    source: String,
    edges: Arc<Mutex<BTreeMap<String, Arc<Mutex<EdgeSeries>>>>>,
    /// Size of the last rendering, to size the next buffer once.
    last_render: Arc<AtomicUsize>,
    phase: HistogramVec,
    identity_not_after: GaugeVec,
    identity_reloads: IntCounterVec,
    config_reloads: IntCounterVec,
    targets: IntGauge,
    lag: Histogram,
    discovery: IntCounterVec,
    fleet_members: IntGaugeVec,
    fleet_assigned: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers every agent-wide metric for `source`.
    pub fn new(source: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                labels,
            )?;
            registry.register(Box::new(h.clone()))?;
            Ok::<_, prometheus::Error>(h)
        };
        let targets = IntGaugeVec::new(
            Opts::new("mtls_probe_targets", "Edges currently scheduled."),
            &["source"],
        )?;
        registry.register(Box::new(targets.clone()))?;
        let lag = histogram(
            "mtls_probe_schedule_lag_seconds",
            "How late probes start against their schedule (an overload signal).",
            &["source"],
            LAG_BUCKETS,
        )?;
        let int_gauge = |name: &str, help: &str| {
            let g = IntGaugeVec::new(Opts::new(name, help), &["source"])?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let m = Self {
            // Exported only with [fleet] (SPEC §12).
            fleet_members: int_gauge(
                "mtls_probe_fleet_members",
                "Agents of the fleet this agent shares the matrix with (0: failing open, probing every target).",
            )?,
            fleet_assigned: int_gauge(
                "mtls_probe_fleet_assigned",
                "Shared edges this agent probes as its share of the fleet's matrix.",
            )?,
            phase: histogram(
                "mtls_probe_phase_duration_seconds",
                "Per-phase probe durations, all edges together.",
                &["source", "phase"],
                PHASE_BUCKETS,
            )?,
            identity_not_after: gauge(
                "mtls_probe_identity_cert_not_after_timestamp_seconds",
                "The not_after of the agent's own certificate.",
                &["source"],
            )?,
            identity_reloads: counter(
                "mtls_probe_identity_reloads_total",
                "Identity file reloads after a change, by result.",
                &["source", "result"],
            )?,
            config_reloads: counter(
                "mtls_probe_config_reloads_total",
                "Config reloads, by result.",
                &["source", "result"],
            )?,
            discovery: counter(
                "mtls_probe_discovery_lookups_total",
                "DNS lookups of [[discover]] names, by result (an extension of SPEC §6).",
                &["source", "discover", "result"],
            )?,
            // Resolved once: these are touched on every probe.
            targets: targets.with_label_values(&[source]),
            lag: lag.with_label_values(&[source]),
            source: source.to_owned(),
            edges: Arc::default(),
            last_render: Arc::default(),
            registry: registry.clone(),
        };
        let build = GaugeVec::new(
            Opts::new("mtls_probe_build_info", "The running build (value 1)."),
            &["version"],
        )?;
        registry.register(Box::new(build.clone()))?;
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        for result in ["success", "failure"] {
            m.identity_reloads.with_label_values(&[source, result]);
            m.config_reloads.with_label_values(&[source, result]);
        }
        m.targets.set(0);
        Ok(m)
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> Vec<u8> {
        // One chunk (its size is unbounded); `Vec::from` takes the buffer without a copy.
        let mut parts = Vec::with_capacity(1);
        self.render_chunks(usize::MAX, |b| {
            parts.push(b);
            true
        });
        match parts.len() {
            1 => parts.pop().map(Vec::from).unwrap_or_default(),
            _ => parts.concat(),
        }
    }

    /// The exposition in pieces of about `chunk` bytes, each handed to `sink` as soon
    /// as it is written; stops when `sink` returns `false`. `/metrics` streams these, so
    /// a scrape of 10,000 edges holds a few chunks instead of its whole 17 MiB text.
    pub fn render_chunks(&self, chunk: usize, mut sink: impl FnMut(Bytes) -> bool) {
        let mut agent = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail for I/O reasons; a metric family the encoder
        // rejects would be a bug here, and leaves a partial but valid prefix.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut agent);
        // Snapshot the handles, then render without holding the map: a slow scrape must
        // not block edges from being added or removed.
        let edges: Vec<Arc<Mutex<EdgeSeries>>> = lock(&self.edges).values().cloned().collect();
        let capacity = chunk.min(self.last_render.load(Ordering::Relaxed)) + 4096;
        let mut out = String::with_capacity(capacity);
        out.push_str(&String::from_utf8_lossy(&agent));
        let mut total = 0;
        let mut flush = |s: &mut String| {
            total += s.len();
            let full = std::mem::replace(s, String::with_capacity(capacity));
            sink(Bytes::from(full.into_bytes()))
        };
        if write_edges(&mut out, &edges, chunk, &mut flush) && !out.is_empty() {
            flush(&mut out);
        }
        self.last_render.store(total, Ordering::Relaxed);
    }

    /// The number of edges scheduled.
    pub fn set_targets(&self, n: usize) {
        self.targets.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts a config reload.
    pub fn config_reload(&self, ok: bool) {
        self.config_reloads
            .with_label_values(&[&self.source, result(ok)])
            .inc();
    }

    /// Counts an identity reload.
    pub fn identity_reload(&self, ok: bool) {
        self.identity_reloads
            .with_label_values(&[&self.source, result(ok)])
            .inc();
    }

    /// Sets (or, with `None`, removes) our own certificate's expiry.
    pub fn set_identity_not_after(&self, t: Option<SystemTime>) {
        match t {
            Some(t) => self
                .identity_not_after
                .with_label_values(&[&self.source])
                .set(unix(t)),
            None => {
                let _ = self.identity_not_after.remove_label_values(&[&self.source]);
            }
        }
    }

    /// Counts a `[[discover]]` lookup.
    pub fn discovery_lookup(&self, discover: &str, ok: bool) {
        self.discovery
            .with_label_values(&[&self.source, discover, result(ok)])
            .inc();
    }

    /// Removes the lookup counters of a `[[discover]]` that left the config.
    pub fn forget_discovery(&self, discover: &str) {
        for r in ["success", "failure"] {
            let _ = self
                .discovery
                .remove_label_values(&[&self.source, discover, r]);
        }
    }

    /// Sets the fleet gauges: `Some((members, assigned))`, or `None` without `[fleet]`
    /// (the series disappear).
    pub fn set_fleet(&self, fleet: Option<(usize, usize)>) {
        let source = [self.source.as_str()];
        match fleet {
            Some((members, assigned)) => {
                let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
                self.fleet_members
                    .with_label_values(&source)
                    .set(n(members));
                self.fleet_assigned
                    .with_label_values(&source)
                    .set(n(assigned));
            }
            None => {
                let _ = self.fleet_members.remove_label_values(&source);
                let _ = self.fleet_assigned.remove_label_values(&source);
            }
        }
    }

    /// Observes how late a probe started.
    pub fn observe_lag(&self, lag: Duration) {
        self.lag.observe(lag.as_secs_f64());
    }

    /// The series of one edge, created now (`success` and `attempts_total` at 0, the
    /// others on first use); `windows` are the `window` labels of its success ratios.
    pub fn edge(&self, target: &str, windows: &Arc<[Arc<str>]>) -> EdgeMetrics {
        let series = Arc::new(Mutex::new(EdgeSeries::new(
            &self.source,
            target,
            windows.clone(),
        )));
        lock(&self.edges).insert(target.to_owned(), series.clone());
        let s = self.source.as_str();
        EdgeMetrics {
            target: target.into(),
            series,
            phases: [
                self.phase.with_label_values(&[s, "resolve"]),
                self.phase.with_label_values(&[s, "connect"]),
                self.phase.with_label_values(&[s, "tls"]),
                self.phase.with_label_values(&[s, "request"]),
            ],
        }
    }

    /// Records one probe into the edge's series; `ratios` are the current window ratios
    /// (in window order; `None` removes that window's series until a probe lands in it).
    pub fn record(
        &self,
        edge: &mut EdgeMetrics,
        report: &Arc<ProbeReport>,
        ratios: impl IntoIterator<Item = Option<f64>>,
    ) {
        let t = &report.timings_ms;
        for (h, ms) in edge
            .phases
            .iter()
            .zip([t.resolve, t.connect, t.tls, t.request])
        {
            if let Some(ms) = ms {
                h.observe(ms / 1000.0);
            }
        }
        let now = if report.ok {
            unix(SystemTime::now())
        } else {
            0.0
        };
        let mut s = lock(&edge.series);
        s.set_result(report.ok, now);
        if let Some(reason) = report.reason {
            s.count_failure(reason);
        }
        s.set_ratios(ratios);
        s.observe_duration(report.timings_ms.total / 1000.0);
        if let Some(peer) = &report.peer {
            s.set_peer(unix(peer.not_after_time), report);
        }
        if let Some(tls) = &report.tls {
            s.set_tls(tls.version, tls.cipher, tls.alpn.as_deref().unwrap_or(""));
        }
    }

    /// Removes every series of a removed edge.
    pub fn forget(&self, edge: EdgeMetrics) {
        let mut edges = lock(&self.edges);
        // Only if it is still this edge's store (not one created since under the name).
        if edges
            .get(&*edge.target)
            .is_some_and(|s| Arc::ptr_eq(s, &edge.series))
        {
            edges.remove(&*edge.target);
        }
    }
}

/// The series handles of one edge.
pub struct EdgeMetrics {
    target: Box<str>,
    series: Arc<Mutex<EdgeSeries>>,
    phases: [Histogram; 4],
}

impl std::fmt::Debug for EdgeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeMetrics")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

fn result(ok: bool) -> &'static str {
    if ok { "success" } else { "failure" }
}

fn unix(t: SystemTime) -> f64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// The `window` label of a duration: `"5m"`, `"30m"`, `"1h"`.
pub fn window_label(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::exposition::bounded;
    use super::*;
    use crate::classify::Reason;
    use crate::config::{Expect, Mode};
    use crate::report::{Timings, TlsInfo};
    use crate::tls::peer::PeerInfo;

    fn report(ok: bool, reason: Option<Reason>, serial: &str) -> ProbeReport {
        ProbeReport {
            source: "node-a".into(),
            target: "prod/api".into(),
            address: "10.0.0.5:8443".into(),
            mode: Mode::Mtls,
            expect: Expect::Success,
            ok,
            stage: reason.map(Reason::stage),
            reason,
            detail: None,
            hint: None,
            timings_ms: Timings {
                resolve: Some(0.1),
                connect: Some(0.2),
                tls: Some(1.0),
                request: Some(0.5),
                total: 1.9,
            },
            tls: Some(TlsInfo {
                version: "TLS 1.3",
                cipher: "TLS_AES_128_GCM_SHA256",
                alpn: Some("h2".into()),
            }),
            peer: Some(PeerInfo {
                spiffe_id: Some("spiffe://cluster.local/ns/prod/sa/api".into()),
                dns_sans: vec![],
                subject: String::new(),
                issuer: "CN=Mesh".into(),
                serial: serial.into(),
                not_before: String::new(),
                not_after: String::new(),
                chain_len: 2,
                root_sha256: Some("ab".into()),
                not_after_time: SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000),
            }),
            http: None,
            far_side: None,
            grpc: None,
            at: String::new(),
        }
    }

    fn series_of(m: &Metrics, target: &str) -> Vec<String> {
        String::from_utf8(m.render())
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(&format!("target=\"{target}\"")))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn an_edge_costs_at_most_20_series_with_the_defaults() {
        let m = Metrics::new("node-a").unwrap();
        let windows: Arc<[Arc<str>]> = Arc::from([Arc::from("5m"), Arc::from("30m")]);
        let mut e = m.edge("prod/api", &windows);
        m.record(
            &mut e,
            &Arc::new(report(true, None, "01")),
            [Some(1.0), Some(1.0)],
        );
        let healthy = series_of(&m, "prod/api").len();
        assert_eq!(healthy, 18, "{:#?}", series_of(&m, "prod/api"));
        m.record(
            &mut e,
            &Arc::new(report(false, Some(Reason::RbacDenied), "01")),
            [Some(0.5), Some(0.5)],
        );
        m.record(
            &mut e,
            &Arc::new(report(false, Some(Reason::CertExpired), "01")),
            [Some(0.3), Some(0.3)],
        );
        assert_eq!(series_of(&m, "prod/api").len(), 20);
    }

    #[test]
    fn rotation_replaces_the_info_series_and_forget_removes_all() {
        let m = Metrics::new("node-a").unwrap();
        let windows: Arc<[Arc<str>]> = Arc::from([Arc::from("5m")]);
        let mut e = m.edge("prod/api", &windows);
        m.record(&mut e, &Arc::new(report(true, None, "01")), [Some(1.0)]);
        m.record(&mut e, &Arc::new(report(true, None, "02")), [Some(1.0)]);
        let info: Vec<_> = series_of(&m, "prod/api")
            .into_iter()
            .filter(|l| l.starts_with("mtls_probe_peer_cert_info"))
            .collect();
        assert_eq!(info.len(), 1, "{info:?}");
        assert!(info[0].contains("serial=\"02\""));
        m.forget(e);
        assert!(
            series_of(&m, "prod/api").is_empty(),
            "{:?}",
            series_of(&m, "prod/api")
        );
    }

    #[test]
    fn labels_are_closed_sets() {
        assert_eq!(window_label(Duration::from_secs(300)), "5m");
        assert_eq!(window_label(Duration::from_secs(1800)), "30m");
        assert_eq!(window_label(Duration::from_secs(5400)), "1h30m");
        assert_eq!(bounded(&"x".repeat(1000)).len(), exposition::MAX_CERT_LABEL);
    }
}
