//! criterion micro-benchmarks of the agent's hot paths other than the handshake:
//! classification, recording a probe result (metrics, windows, the edge set), and
//! rendering `/metrics`, `/api/v1/edges` and the status page for 10,000 edges.
//!
//! `cargo bench --bench micro` (all), `cargo bench --bench micro -- render` (a group).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use mtls_prober::agent::edges::{EdgeSet, EdgeSetOptions};
use mtls_prober::agent::metrics::Metrics;
use mtls_prober::agent::view::AgentView;
use mtls_prober::agent::window::Windows;
use mtls_prober::classify::Reason;
use mtls_prober::classify::http::{ResponseView, classify_response};
use mtls_prober::classify::tls::{HandshakeContext, handshake_failure};
use mtls_prober::clock::SystemClock;
use mtls_prober::config::{Expect, Mode, StatusSet};
use mtls_prober::identity::Credentials;
use mtls_prober::probe::{Prober, Resolver};
use mtls_prober::report::{HttpInfo, ProbeReport, Timings, TlsInfo};
use mtls_prober::tls::peer::PeerInfo;

const EDGES: usize = 10_000;

fn report(target: &str, ok: bool, serial: &str) -> ProbeReport {
    let reason = (!ok).then_some(Reason::RbacDenied);
    ProbeReport {
        source: "node-a".into(),
        target: target.into(),
        address: "10.0.0.5:8443".into(),
        mode: Mode::Mtls,
        expect: Expect::Success,
        ok,
        stage: reason.map(Reason::stage),
        reason,
        detail: reason.map(|_| "HTTP 403 from istio-envoy: RBAC: access denied".into()),
        hint: reason.map(Reason::hint),
        timings_ms: Timings {
            resolve: Some(0.01),
            connect: Some(0.1),
            tls: Some(1.2),
            request: Some(0.4),
            total: 1.8,
        },
        tls: Some(TlsInfo {
            version: "TLS 1.3",
            cipher: "TLS_AES_128_GCM_SHA256",
            alpn: Some("http/1.1".into()),
        }),
        peer: Some(PeerInfo {
            spiffe_id: Some("spiffe://cluster.local/ns/prod/sa/api".into()),
            dns_sans: vec![],
            subject: String::new(),
            issuer: "O=cluster.local".into(),
            serial: serial.into(),
            not_before: "2026-01-14T12:00:00Z".into(),
            not_after: "2026-01-15T12:00:00Z".into(),
            chain_len: 1,
            root_sha256: Some(
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            ),
            not_after_time: SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000),
        }),
        http: Some(HttpInfo {
            status: 200,
            server: Some("istio-envoy".into()),
        }),
        far_side: None,
        grpc: None,
        at: "2026-11-23T10:00:00Z".into(),
    }
}

fn classification(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify");
    let expect = StatusSet::default_success();
    let mut ok_headers = HeaderMap::new();
    ok_headers.insert("content-type", HeaderValue::from_static("text/plain"));
    let mut envoy = HeaderMap::new();
    envoy.insert("server", HeaderValue::from_static("envoy"));
    envoy.insert("content-type", HeaderValue::from_static("text/plain"));
    let envoy_body = b"upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, transport failure reason: TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end";
    g.bench_function("http_200", |b| {
        b.iter(|| {
            classify_response(
                black_box(&ResponseView {
                    status: 200,
                    headers: &ok_headers,
                    body_prefix: b"ok\n",
                }),
                &expect,
            )
        })
    });
    g.bench_function("http_503_envoy_upstream_tls", |b| {
        b.iter(|| {
            classify_response(
                black_box(&ResponseView {
                    status: 503,
                    headers: &envoy,
                    body_prefix: envoy_body,
                }),
                &expect,
            )
        })
    });
    let ctx = HandshakeContext {
        cert_requested: true,
        cert_sent: true,
        first_bytes: &[22, 3, 3, 0, 122],
        bytes_read: 900,
        offered_versions: "1.3",
        offered_alpn: "http/1.1",
        after_handshake: false,
    };
    g.bench_function("tls_alert_bad_certificate", |b| {
        b.iter_batched(
            || {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate),
                )
            },
            |e| handshake_failure(black_box(&e), &ctx),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn recording(c: &mut Criterion) {
    let mut g = c.benchmark_group("record");
    let windows: Arc<[Arc<str>]> = Arc::from([Arc::from("5m"), Arc::from("30m")]);
    let m = Metrics::new("node-a").unwrap();
    let mut e = m.edge("prod/api", &windows);
    let pass = Arc::new(report("prod/api", true, "01"));
    let fail = Arc::new(report("prod/api", false, "01"));
    g.bench_function("metrics_record_pass", |b| {
        b.iter(|| m.record(&mut e, black_box(&pass), [Some(1.0), Some(1.0)]))
    });
    g.bench_function("metrics_record_fail", |b| {
        b.iter(|| m.record(&mut e, black_box(&fail), [Some(0.5), Some(0.9)]))
    });
    let mut w = Windows::new(
        Duration::from_secs(10),
        &[Duration::from_secs(300), Duration::from_secs(1800)],
    );
    let mut t = 0u64;
    g.bench_function("windows_record_and_ratios", |b| {
        b.iter(|| {
            t += 10_000;
            w.record(t, !t.is_multiple_of(7));
            w.ratios(t).fold(0.0, |a, r| a + r.unwrap_or(0.0))
        })
    });
    let (rt, set, names) = edge_set(1, false);
    g.bench_function("edge_set_record", |b| {
        b.iter_batched(
            || report("prod/api", true, "01"),
            |r| set.record(&names[0], r),
            BatchSize::SmallInput,
        )
    });
    drop(set);
    drop(rt);
    g.finish();
}

/// An edge set of `n` plaintext edges whose tasks never probe (shutdown is already
/// signalled, so each task ends at its first slot without a probe).
fn edge_set(n: usize, with_metrics: bool) -> (tokio::runtime::Runtime, EdgeSet, Vec<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut toml = String::from("[agent]\nsource = \"node-a\"\nlisten = \"127.0.0.1:0\"\n");
    for i in 0..n {
        toml.push_str(&format!(
            "[[target]]\nname = \"ns{}/svc-{i:05}\"\naddress = \"127.0.0.1:1\"\nmode = \"plaintext\"\n[target.http]\npath = \"/healthz\"\n",
            i % 50
        ));
    }
    let config = mtls_prober::config::load_str(&toml, "bench.toml", &Default::default()).unwrap();
    let metrics = with_metrics.then(|| Metrics::new("node-a").unwrap());
    let (_tx, shutdown) = tokio::sync::watch::channel(true);
    let (_ctx, creds) = tokio::sync::watch::channel(Arc::new(Credentials::load(
        None,
        &Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        SystemTime::now(),
    )));
    let set = rt.block_on(async {
        let set = EdgeSet::new(EdgeSetOptions {
            source: "node-a".into(),
            prober: Prober::new(Resolver::new(&[]), Arc::new(SystemClock)),
            creds,
            max_concurrency: 256,
            windows: vec![Duration::from_secs(300), Duration::from_secs(1800)],
            jitter: 0.1,
            metrics,
            shutdown,
            observer: None,
            log_transitions: false,
        });
        for t in &config.targets {
            set.upsert(t.clone(), false);
        }
        set
    });
    let names = set.names();
    (rt, set, names)
}

fn rendering(c: &mut Criterion) {
    let mut g = c.benchmark_group("render");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let (rt, set, names) = edge_set(EDGES, true);
    for (i, name) in names.iter().enumerate() {
        // One edge in 20 failing, like a mesh mid-migration.
        let mut r = report(name, i % 20 != 0, &format!("{i:032x}"));
        r.source = "node-a".into();
        set.record(name, r);
    }
    let m = set_metrics(&set);
    g.bench_function("metrics_10k_edges", |b| b.iter(|| m.render()));
    g.bench_function("views_10k_edges", |b| b.iter(|| set.views()));
    g.bench_function("api_edges_json_10k_edges", |b| {
        b.iter(|| {
            let views = set.views();
            let api: Vec<_> = views.iter().map(|v| v.api("node-a")).collect();
            serde_json::to_vec(&api).unwrap()
        })
    });
    let agent = AgentView {
        source: "node-a".into(),
        version: "0.1.0",
        started: SystemTime::now(),
        ready: Ok(()),
        identity_spiffe_id: Some("spiffe://cluster.local/ns/monitoring/sa/mtls-prober".into()),
        identity_not_after: Some(SystemTime::now() + Duration::from_secs(86_400)),
        identity_problem: None,
        config_file: "/etc/mtls-prober/probes.toml".into(),
        config_problem: None,
        fleet: None,
        identity_not_before: None,
        runbook_base_url: None,
        cert_expiry_warn_floor: Duration::from_secs(3600),
    };
    g.bench_function("status_page_10k_edges", |b| {
        b.iter(|| mtls_prober::agent::status_page::render(&agent, &set.views()))
    });
    g.finish();
    drop(set);
    drop(rt);
}

fn set_metrics(set: &EdgeSet) -> Metrics {
    set.metrics().cloned().unwrap()
}

criterion_group!(benches, classification, recording, rendering);
criterion_main!(benches);
