//! The Prometheus metrics of SPEC §6, in one registry owned by the agent (never the
//! global one, so tests and several agents in one process do not share state).
//!
//! Label values are only: the configured `source` and target names, the closed sets of
//! `Stage`/`Reason`/result/phase/window, rustls' static version and cipher names, and
//! the presented certificate's fields (bounded in length). Per-edge handles are
//! resolved once, so recording a probe does no label hashing.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::classify::Reason;
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
/// Longest label value taken from a peer's certificate.
const MAX_CERT_LABEL: usize = 256;

/// The agent's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    source: String,
    success: GaugeVec,
    attempts: IntCounterVec,
    failures: IntCounterVec,
    ratio: GaugeVec,
    duration: HistogramVec,
    phase: HistogramVec,
    last_success: GaugeVec,
    peer_not_after: GaugeVec,
    peer_info: GaugeVec,
    tls_info: GaugeVec,
    identity_not_after: GaugeVec,
    identity_reloads: IntCounterVec,
    config_reloads: IntCounterVec,
    targets: IntGaugeVec,
    lag: HistogramVec,
    discovery: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every metric for `source`.
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
        let edge = &["source", "target"];
        let m = Self {
            success: gauge(
                "mtls_probe_success",
                "1 if the last probe of the edge passed, else 0.",
                edge,
            )?,
            attempts: counter(
                "mtls_probe_attempts_total",
                "Probes completed, by result.",
                &["source", "target", "result"],
            )?,
            failures: counter(
                "mtls_probe_failures_total",
                "Failed probes by the stage and reason of the failure.",
                &["source", "target", "stage", "reason"],
            )?,
            ratio: gauge(
                "mtls_probe_success_ratio",
                "Passed / completed probes of the edge in each configured window.",
                &["source", "target", "window"],
            )?,
            duration: histogram(
                "mtls_probe_duration_seconds",
                "Whole-probe duration.",
                edge,
                DURATION_BUCKETS,
            )?,
            phase: histogram(
                "mtls_probe_phase_duration_seconds",
                "Per-phase probe durations, all edges together.",
                &["source", "phase"],
                PHASE_BUCKETS,
            )?,
            last_success: gauge(
                "mtls_probe_last_success_timestamp_seconds",
                "Unix time of the last passed probe of the edge.",
                edge,
            )?,
            peer_not_after: gauge(
                "mtls_probe_peer_cert_not_after_timestamp_seconds",
                "The not_after of the leaf certificate the peer last presented.",
                edge,
            )?,
            peer_info: gauge(
                "mtls_probe_peer_cert_info",
                "The certificate the peer last presented (value 1).",
                &[
                    "source",
                    "target",
                    "spiffe_id",
                    "issuer",
                    "serial",
                    "root_sha256",
                ],
            )?,
            tls_info: gauge(
                "mtls_probe_tls_info",
                "The TLS parameters last negotiated with the peer (value 1).",
                &["source", "target", "version", "cipher", "alpn"],
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
            targets: {
                let g = IntGaugeVec::new(
                    Opts::new("mtls_probe_targets", "Edges currently scheduled."),
                    &["source"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            lag: histogram(
                "mtls_probe_schedule_lag_seconds",
                "How late probes start against their schedule (an overload signal).",
                &["source"],
                LAG_BUCKETS,
            )?,
            discovery: counter(
                "mtls_probe_discovery_lookups_total",
                "DNS lookups of [[discover]] names, by result (an extension of SPEC §6).",
                &["source", "discover", "result"],
            )?,
            source: source.to_owned(),
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
        m.targets.with_label_values(&[source]).set(0);
        Ok(m)
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 * 1024);
        // Encoding into a Vec cannot fail for I/O reasons; a metric family the encoder
        // rejects would be a bug here, and leaves a partial but valid prefix.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }

    /// The number of edges scheduled.
    pub fn set_targets(&self, n: usize) {
        self.targets
            .with_label_values(&[&self.source])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
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

    /// Observes how late a probe started.
    pub fn observe_lag(&self, lag: Duration) {
        self.lag
            .with_label_values(&[&self.source])
            .observe(lag.as_secs_f64());
    }

    /// The handles of one edge's series (created on first use).
    pub fn edge(&self, target: &str, windows: &[String]) -> EdgeMetrics {
        let l = [self.source.as_str(), target];
        EdgeMetrics {
            target: target.to_owned(),
            success: self.success.with_label_values(&l),
            ok: self.attempts.with_label_values(&[l[0], l[1], "success"]),
            failed: self.attempts.with_label_values(&[l[0], l[1], "failure"]),
            ratio: windows.iter().map(|w| (w.clone(), None)).collect(),
            duration: self.duration.with_label_values(&l),
            phases: [
                self.phase.with_label_values(&[l[0], "resolve"]),
                self.phase.with_label_values(&[l[0], "connect"]),
                self.phase.with_label_values(&[l[0], "tls"]),
                self.phase.with_label_values(&[l[0], "request"]),
            ],
            last_success: None,
            failures: BTreeMap::new(),
            peer_not_after: None,
            peer_info: None,
            tls_info: None,
        }
    }

    /// Records one probe into the edge's series; `ratios` are the current window ratios.
    pub fn record(&self, edge: &mut EdgeMetrics, report: &ProbeReport, ratios: &[Option<f64>]) {
        edge.success.set(if report.ok { 1.0 } else { 0.0 });
        if report.ok {
            edge.ok.inc();
            edge.last_success
                .get_or_insert_with(|| {
                    self.last_success
                        .with_label_values(&[&self.source, &edge.target])
                })
                .set(unix(SystemTime::now()));
        } else {
            edge.failed.inc();
        }
        if let Some(reason) = report.reason {
            edge.failures
                .entry(reason)
                .or_insert_with(|| {
                    self.failures.with_label_values(&[
                        &self.source,
                        &edge.target,
                        reason.stage().as_str(),
                        reason.as_str(),
                    ])
                })
                .inc();
        }
        for ((window, gauge), ratio) in edge.ratio.iter_mut().zip(ratios) {
            match ratio {
                Some(r) => gauge
                    .get_or_insert_with(|| {
                        self.ratio
                            .with_label_values(&[&self.source, &edge.target, window])
                    })
                    .set(*r),
                None => {
                    if gauge.take().is_some() {
                        let _ =
                            self.ratio
                                .remove_label_values(&[&self.source, &edge.target, window]);
                    }
                }
            }
        }
        edge.duration.observe(report.timings_ms.total / 1000.0);
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
        if let Some(peer) = &report.peer {
            edge.peer_not_after
                .get_or_insert_with(|| {
                    self.peer_not_after
                        .with_label_values(&[&self.source, &edge.target])
                })
                .set(unix(peer.not_after_time));
            let labels = [
                bounded(peer.spiffe_id.as_deref().unwrap_or("")),
                bounded(&peer.issuer),
                bounded(&peer.serial),
                bounded(peer.root_sha256.as_deref().unwrap_or("")),
            ];
            replace_info(
                &self.peer_info,
                &self.source,
                &edge.target,
                &mut edge.peer_info,
                labels,
            );
        }
        if let Some(tls) = &report.tls {
            let labels = [
                tls.version.to_owned(),
                tls.cipher.to_owned(),
                tls.alpn.clone().unwrap_or_default(),
            ];
            replace_info(
                &self.tls_info,
                &self.source,
                &edge.target,
                &mut edge.tls_info,
                labels,
            );
        }
    }

    /// Removes every series of a removed edge.
    pub fn forget(&self, edge: EdgeMetrics) {
        let (s, t) = (self.source.as_str(), edge.target.as_str());
        let _ = self.success.remove_label_values(&[s, t]);
        let _ = self.attempts.remove_label_values(&[s, t, "success"]);
        let _ = self.attempts.remove_label_values(&[s, t, "failure"]);
        for reason in edge.failures.keys() {
            let _ = self.failures.remove_label_values(&[
                s,
                t,
                reason.stage().as_str(),
                reason.as_str(),
            ]);
        }
        for (window, _) in &edge.ratio {
            let _ = self.ratio.remove_label_values(&[s, t, window]);
        }
        let _ = self.duration.remove_label_values(&[s, t]);
        let _ = self.last_success.remove_label_values(&[s, t]);
        let _ = self.peer_not_after.remove_label_values(&[s, t]);
        if let Some(l) = &edge.peer_info {
            let _ = self
                .peer_info
                .remove_label_values(&[s, t, &l[0], &l[1], &l[2], &l[3]]);
        }
        if let Some(l) = &edge.tls_info {
            let _ = self
                .tls_info
                .remove_label_values(&[s, t, &l[0], &l[1], &l[2]]);
        }
    }
}

/// Sets an info series to 1, removing the previous one first when its labels changed
/// (a rotated certificate must replace, not pile up).
fn replace_info<const N: usize>(
    vec: &GaugeVec,
    source: &str,
    target: &str,
    current: &mut Option<[String; N]>,
    labels: [String; N],
) {
    if current.as_ref() == Some(&labels) {
        return;
    }
    fn full<'a, const N: usize>(
        source: &'a str,
        target: &'a str,
        l: &'a [String; N],
    ) -> Vec<&'a str> {
        let mut v: Vec<&str> = vec![source, target];
        v.extend(l.iter().map(String::as_str));
        v
    }
    if let Some(old) = current.take() {
        let _ = vec.remove_label_values(&full(source, target, &old));
    }
    vec.with_label_values(&full(source, target, &labels))
        .set(1.0);
    *current = Some(labels);
}

/// The series handles of one edge.
pub struct EdgeMetrics {
    target: String,
    success: Gauge,
    ok: IntCounter,
    failed: IntCounter,
    ratio: Vec<(String, Option<Gauge>)>,
    duration: Histogram,
    phases: [Histogram; 4],
    last_success: Option<Gauge>,
    failures: BTreeMap<Reason, IntCounter>,
    peer_not_after: Option<Gauge>,
    peer_info: Option<[String; 4]>,
    tls_info: Option<[String; 3]>,
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

fn bounded(s: &str) -> String {
    if s.len() <= MAX_CERT_LABEL {
        return s.to_owned();
    }
    let mut end = MAX_CERT_LABEL;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The `window` label of a duration: `"5m"`, `"30m"`, `"1h"`.
pub fn window_label(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;
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
                version: "TLSv1_3",
                cipher: "TLS13_AES_128_GCM_SHA256",
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
        let windows = vec!["5m".to_owned(), "30m".to_owned()];
        let mut e = m.edge("prod/api", &windows);
        m.record(&mut e, &report(true, None, "01"), &[Some(1.0), Some(1.0)]);
        let healthy = series_of(&m, "prod/api").len();
        assert_eq!(healthy, 18, "{:#?}", series_of(&m, "prod/api"));
        m.record(
            &mut e,
            &report(false, Some(Reason::RbacDenied), "01"),
            &[Some(0.5), Some(0.5)],
        );
        m.record(
            &mut e,
            &report(false, Some(Reason::CertExpired), "01"),
            &[Some(0.3), Some(0.3)],
        );
        assert_eq!(series_of(&m, "prod/api").len(), 20);
    }

    #[test]
    fn rotation_replaces_the_info_series_and_forget_removes_all() {
        let m = Metrics::new("node-a").unwrap();
        let windows = vec!["5m".to_owned()];
        let mut e = m.edge("prod/api", &windows);
        m.record(&mut e, &report(true, None, "01"), &[Some(1.0)]);
        m.record(&mut e, &report(true, None, "02"), &[Some(1.0)]);
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
        assert_eq!(bounded(&"x".repeat(1000)).len(), MAX_CERT_LABEL);
    }
}
