//! `expect = "reject"` and `verify_strict` companions (SPEC §4).

use std::time::Duration;

use mtls_prober::config::{Expect, Mode, Origin, PeerExpectation};

use crate::common::*;

fn reject(mut t: mtls_prober::config::Target) -> mtls_prober::config::Target {
    t.expect = Expect::Reject;
    t
}

/// The `<name>/plaintext` companion of a target, as the config expands it.
fn companion(addr: std::net::SocketAddr) -> mtls_prober::config::Target {
    let mut t = reject(http_target(addr, Mode::Plaintext));
    t.alpn.clear();
    t.peer = PeerExpectation::Insecure;
    t.origin = Origin::StrictCompanion { of: "x".into() };
    t
}

#[tokio::test]
async fn strict_refusals_pass_reject_probes() {
    let pki = Pki::new();
    let server = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    // No client certificate: refused with certificate_required.
    let r = probe(&pki, reject(target(server.addr(), Mode::Tls))).await;
    assert_pass(&r);
    assert!(
        r.detail
            .as_deref()
            .unwrap()
            .contains("client_cert_required"),
        "{:?}",
        r.detail
    );
    // Plaintext: rustls answers with a TLS alert record.
    let r = probe(&pki, companion(server.addr())).await;
    assert_pass(&r);
    assert!(
        r.detail.as_deref().unwrap().contains("TLS alert record"),
        "{:?}",
        r.detail
    );
    // nginx answers plaintext on its TLS port with 400 "plain HTTP request…".
    let nginx = peer(Behavior::Plaintext {
        http: HttpBehavior::Respond(Response::nginx_plain_http_to_https()),
    })
    .await;
    assert_pass(&probe(&pki, companion(nginx.addr())).await);
    // An authorization deny refuses too.
    let denied = pki
        .strict_peer(HttpBehavior::Respond(Response::istio_rbac_denied()))
        .await;
    assert_pass(&probe(&pki, reject(http_target(denied.addr(), Mode::Mtls))).await);
}

#[tokio::test]
async fn permissive_workload_accepts_plaintext() {
    let pki = Pki::new();
    let config = pki.strict(&pki.server_leaf(), &ServerOpts::default());
    let server = peer(Behavior::Permissive {
        config,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    // The mTLS edge itself is healthy…
    assert_pass(&probe(&pki, http_target(server.addr(), Mode::Mtls)).await);
    // …but its companion gets a plaintext answer: STRICT is not in force.
    let r = probe(&pki, companion(server.addr())).await;
    assert_failure(
        &r,
        "expectation",
        "plaintext_accepted",
        &["HTTP 200", "STRICT"],
    );
    // Even a plaintext error status is an answer.
    let plain = peer(Behavior::Plaintext {
        http: HttpBehavior::Respond(Response::status(404)),
    })
    .await;
    let r = probe(&pki, companion(plain.addr())).await;
    assert_failure(&r, "expectation", "plaintext_accepted", &["HTTP 404"]);
}

#[tokio::test]
async fn a_server_without_client_auth_lets_a_reject_probe_through() {
    let pki = Pki::new();
    let config =
        server_config(&pki.server_leaf(), ClientAuth::None, &ServerOpts::default()).unwrap();
    let server = peer(Behavior::Tls {
        config,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let r = probe(&pki, reject(target(server.addr(), Mode::Tls))).await;
    assert_failure(
        &r,
        "expectation",
        "unexpected_success",
        &["without a client certificate"],
    );
    let r = probe(&pki, reject(http_target(server.addr(), Mode::Tls))).await;
    assert_failure(&r, "expectation", "unexpected_success", &["HTTP 200"]);
}

#[tokio::test]
async fn refused_or_silent_connections_prove_nothing() {
    let pki = Pki::new();
    let refused = mtls_prober::demo::peers::spawn_refused().unwrap();
    let r = probe(&pki, reject(target(refused.addr(), Mode::Tls))).await;
    assert_failure(&r, "connect", "connection_refused", &[]);
    let blackhole = peer(Behavior::Blackhole).await;
    let mut t = reject(target(blackhole.addr(), Mode::Tls));
    t.timeout = Duration::from_millis(500);
    let r = probe(&pki, t).await;
    assert_failure(&r, "tls", "handshake_timeout", &[]);
}
