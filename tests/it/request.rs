//! The `request` stage: what mesh proxies and broken servers answer.

use std::time::{Duration, Instant};

use mtls_prober::config::{Mode, StatusSet};

use crate::common::*;

async fn answer(pki: &Pki, http: HttpBehavior) -> mtls_prober::report::ProbeReport {
    let server = pki.strict_peer(http).await;
    probe(pki, http_target(server.addr(), Mode::Mtls)).await
}

#[tokio::test]
async fn istio_and_linkerd_authorization_denials() {
    let pki = Pki::new();
    let r = answer(&pki, HttpBehavior::Respond(Response::istio_rbac_denied())).await;
    assert_failure(
        &r,
        "request",
        "rbac_denied",
        &["RBAC: access denied", "istio-envoy"],
    );
    assert_eq!(
        r.http.as_ref().map(|h| (h.status, h.server.as_deref())),
        Some((403, Some("istio-envoy")))
    );
    let r = answer(&pki, HttpBehavior::Respond(Response::linkerd_forbidden())).await;
    assert_failure(
        &r,
        "request",
        "rbac_denied",
        &["l5d-proxy-error", "unauthorized"],
    );
}

#[tokio::test]
async fn proxy_upstream_failures() {
    let pki = Pki::new();
    let r = answer(
        &pki,
        HttpBehavior::Respond(Response::envoy_upstream_tls_error()),
    )
    .await;
    assert_failure(
        &r,
        "request",
        "upstream_tls_error",
        &["503", "CERTIFICATE_VERIFY_FAILED"],
    );
    let r = answer(
        &pki,
        HttpBehavior::Respond(Response::envoy_no_healthy_upstream()),
    )
    .await;
    assert_failure(
        &r,
        "request",
        "upstream_unavailable",
        &["503", "no healthy upstream"],
    );
    let r = answer(&pki, HttpBehavior::Respond(Response::linkerd_unavailable())).await;
    assert_failure(
        &r,
        "request",
        "upstream_unavailable",
        &["l5d-proxy-error", "fail-fast"],
    );
}

#[tokio::test]
async fn other_statuses_against_expect_status() {
    let pki = Pki::new();
    let r = answer(&pki, HttpBehavior::Respond(Response::status(500))).await;
    assert_failure(
        &r,
        "request",
        "unexpected_status",
        &["HTTP 500", "expected 200-399"],
    );
    // A custom status set.
    let server = pki
        .strict_peer(HttpBehavior::Respond(Response::status(204)))
        .await;
    let mut t = http_target(server.addr(), Mode::Mtls);
    t.http.as_mut().unwrap().expect_status = StatusSet::from_ranges(vec![(200, 200)]);
    let r = probe(&pki, t).await;
    assert_failure(
        &r,
        "request",
        "unexpected_status",
        &["HTTP 204", "expected 200"],
    );
}

#[tokio::test]
async fn silent_or_stalled_responses_time_out() {
    let pki = Pki::new();
    for (http, fragment) in [
        (HttpBehavior::Silent, "no complete response head"),
        (HttpBehavior::HalfResponse, "body did not complete"),
    ] {
        let server = pki.strict_peer(http).await;
        let mut t = http_target(server.addr(), Mode::Mtls);
        t.timeout = Duration::from_millis(800);
        let started = Instant::now();
        let r = probe(&pki, t).await;
        assert_failure(&r, "request", "request_timeout", &[fragment]);
        assert!(started.elapsed() < Duration::from_millis(1600));
    }
}

#[tokio::test]
async fn closed_without_a_response() {
    let pki = Pki::new();
    let r = answer(&pki, HttpBehavior::CloseAfterHandshake).await;
    assert_failure(
        &r,
        "request",
        "connection_closed",
        &["without an HTTP response"],
    );
    // h2: GOAWAY before any stream.
    let r = answer(&pki, HttpBehavior::H2Goaway).await;
    assert_failure(&r, "request", "connection_closed", &["GOAWAY"]);
}

#[tokio::test]
async fn malformed_and_oversized_responses() {
    let pki = Pki::new();
    let config = pki.strict(
        &pki.server_leaf(),
        &ServerOpts::default().with_alpn(&[b"http/1.1"]),
    );
    for (http, fragment) in [
        (
            HttpBehavior::Raw(b"HTTP/9.9 OK maybe\r\n\r\n".to_vec()),
            "malformed response",
        ),
        (HttpBehavior::EndlessHeaders, "malformed response"),
        (HttpBehavior::EndlessBody, "max_body_bytes"),
    ] {
        let server = peer(Behavior::Tls {
            config: config.clone(),
            http,
        })
        .await;
        let started = Instant::now();
        let r = probe(&pki, http_target(server.addr(), Mode::Mtls)).await;
        assert_failure(&r, "request", "protocol_error", &[fragment]);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    // Over h2, an endless body is cut off the same way.
    let r = answer(&pki, HttpBehavior::EndlessBody).await;
    assert_failure(&r, "request", "protocol_error", &["max_body_bytes (65536)"]);
}
