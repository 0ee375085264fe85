//! The `local`, `resolve` and `connect` stages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mtls_prober::clock::SystemClock;
use mtls_prober::config::{HostPort, Mode};
use mtls_prober::identity::Credentials;
use mtls_prober::probe::{Prober, Resolver};

use crate::common::*;
use mtls_prober::demo::dns::DnsServer;

#[tokio::test]
async fn refused_port() {
    let pki = Pki::new();
    let server = mtls_prober::demo::peers::spawn_refused().unwrap();
    let r = probe(&pki, target(server.addr(), Mode::Mtls)).await;
    assert_failure(
        &r,
        "connect",
        "connection_refused",
        &[&server.addr().to_string()],
    );
    assert_eq!(r.timings_ms.connect, None);
    assert!(r.timings_ms.resolve.is_some());
}

#[tokio::test]
async fn full_accept_queue_times_out_the_connect() {
    let pki = Pki::new();
    let server = mtls_prober::demo::peers::spawn_full_backlog()
        .await
        .unwrap();
    let mut t = target(server.addr(), Mode::Mtls);
    t.timeout = Duration::from_millis(600);
    let started = Instant::now();
    let r = probe(&pki, t).await;
    assert_failure(
        &r,
        "connect",
        "connect_timeout",
        &[&server.addr().to_string(), "600ms"],
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn names_resolve_through_the_configured_dns_server() {
    let pki = Pki::new();
    let dns = DnsServer::start().await.unwrap();
    let server = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    dns.set("api.prod.test", &[server.addr().ip()]);
    dns.set("empty.prod.test", &[]);
    let prober = Prober::new(Resolver::new(&[dns.addr()]), Arc::new(SystemClock));
    let creds = pki.credentials(&prober);
    let run = |host: &str| {
        let mut t = http_target(server.addr(), Mode::Mtls);
        t.address = HostPort {
            host: host.into(),
            port: server.addr().port(),
        };
        let prepared = prober.prepare(Arc::new(t), &creds);
        let prober = prober.clone();
        async move { prober.run(&prepared, "node").await }
    };
    let r = run("api.prod.test").await;
    assert_pass(&r);
    assert_eq!(r.address, server.addr().to_string());
    let r = run("missing.prod.test").await;
    assert_failure(&r, "resolve", "dns_not_found", &["missing.prod.test"]);
    let r = run("empty.prod.test").await;
    assert_failure(&r, "resolve", "dns_not_found", &["empty.prod.test"]);
    dns.fail(true);
    let r = run("other.prod.test").await;
    assert_failure(&r, "resolve", "dns_error", &["other.prod.test"]);
}

#[tokio::test]
async fn broken_own_identity_means_the_target_is_not_contacted() {
    let pki = Pki::new();
    let server = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let prober = prober();
    let mut cfg = pki.identity_config();
    cfg.key = pki.path("missing-key.pem");
    let creds = Credentials::load(Some(&cfg), prober.provider(), std::time::SystemTime::now());
    let prepared = prober.prepare(Arc::new(target(server.addr(), Mode::Mtls)), &creds);
    let r = prober.run(&prepared, "node").await;
    assert_failure(
        &r,
        "local",
        "identity_unavailable",
        &["missing-key.pem", "not contacted"],
    );
    assert_eq!(r.timings_ms.resolve, None);
    assert_eq!(*server.open_connections().borrow(), 0);
    // A plaintext or tls target does not need the key and still runs.
    let prepared = prober.prepare(Arc::new(http_target(server.addr(), Mode::Tls)), &creds);
    let r = prober.run(&prepared, "node").await;
    assert_failure(&r, "tls", "client_cert_required", &[]);
}
