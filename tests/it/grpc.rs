//! `[target.grpc]` (SPEC §13) against tonic servers (the demo's gRPC peers: the
//! generated `grpc.health.v1.Health` server, trailers-only error answers, a padded
//! answer, a stalled call), over mTLS and h2c: every row of §13's table, ALPN, the
//! bounds, and the `verify_strict` companion.

use std::time::{Duration, Instant};

use mtls_prober::config::{Expect, GrpcCheck, Mode, Origin, PeerExpectation, Target};
use mtls_prober::demo::peers::GrpcBehavior;
use mtls_prober::demo::pki::LeafSpec;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::common::tools::{ListeningPeer, peer_source, require};
use crate::common::*;

const SERVICE: &str = "prod.v1.Api";

fn grpc_target(addr: std::net::SocketAddr, mode: Mode, service: &str) -> Target {
    let mut t = target(addr, mode);
    t.grpc = Some(GrpcCheck {
        service: service.into(),
        authority: None,
    });
    if mode != Mode::Plaintext {
        t.alpn = vec!["h2".into()];
    }
    t
}

/// A STRICT mesh server speaking gRPC over TLS with ALPN `alpn`.
async fn grpc_peer(pki: &Pki, behavior: GrpcBehavior, alpn: &[&[u8]]) -> PeerServer {
    let config = pki.strict(&pki.server_leaf(), &ServerOpts::default().with_alpn(alpn));
    peer(Behavior::Tls {
        config,
        http: HttpBehavior::Grpc(behavior),
    })
    .await
}

async fn ask(pki: &Pki, behavior: GrpcBehavior, service: &str) -> mtls_prober::report::ProbeReport {
    let server = grpc_peer(pki, behavior, &[b"h2"]).await;
    probe(pki, grpc_target(server.addr(), Mode::Mtls, service)).await
}

#[tokio::test]
async fn serving_passes_and_is_reported() {
    let pki = Pki::new();
    let r = ask(
        &pki,
        GrpcBehavior::health(SERVICE, ServingStatus::Serving),
        SERVICE,
    )
    .await;
    assert_pass(&r);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["grpc"],
        serde_json::json!({"service": SERVICE, "status": "OK", "code": 0, "message": null,
                           "health": "SERVING"})
    );
    assert_eq!(json["http"]["status"], 200);
    assert_eq!(json["tls"]["alpn"], "h2");
    assert!(
        r.to_text()
            .contains("gRPC Health/Check service \"prod.v1.Api\": OK SERVING")
    );
    // The server as a whole (service "").
    let r = ask(
        &pki,
        GrpcBehavior::health(SERVICE, ServingStatus::Serving),
        "",
    )
    .await;
    assert_pass(&r);
}

#[tokio::test]
async fn the_health_answers_of_spec_13() {
    let pki = Pki::new();
    use tonic::Code;
    let envoy_tls = "upstream connect error or disconnect/reset before headers. reset reason: \
                     connection failure, transport failure reason: TLS error: 268435581:SSL \
                     routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED";
    let cases = [
        (
            GrpcBehavior::health(SERVICE, ServingStatus::NotServing),
            SERVICE,
            "unexpected_status",
            "NOT_SERVING",
        ),
        (
            GrpcBehavior::health(SERVICE, ServingStatus::Unknown),
            SERVICE,
            "unexpected_status",
            "reports UNKNOWN",
        ),
        (
            GrpcBehavior::health(SERVICE, ServingStatus::Serving),
            "other.v1.Unknown",
            "unexpected_status",
            "NOT_FOUND: the health service does not know service \"other.v1.Unknown\"",
        ),
        // Trailers-only answers (tonic sends every error as one).
        (
            GrpcBehavior::Status(
                Code::Unimplemented,
                "unknown service grpc.health.v1.Health".into(),
            ),
            SERVICE,
            "unexpected_status",
            "UNIMPLEMENTED",
        ),
        (
            GrpcBehavior::Status(Code::PermissionDenied, "RBAC: access denied".into()),
            SERVICE,
            "rbac_denied",
            "PERMISSION_DENIED",
        ),
        (
            GrpcBehavior::Status(Code::Unauthenticated, "missing token".into()),
            SERVICE,
            "rbac_denied",
            "UNAUTHENTICATED",
        ),
        (
            GrpcBehavior::Status(Code::Unavailable, envoy_tls.into()),
            SERVICE,
            "upstream_tls_error",
            "CERTIFICATE_VERIFY_FAILED",
        ),
        (
            GrpcBehavior::Status(Code::Unavailable, "no healthy upstream".into()),
            SERVICE,
            "upstream_unavailable",
            "no healthy upstream",
        ),
        (
            GrpcBehavior::Status(Code::Internal, "boom".into()),
            SERVICE,
            "unexpected_status",
            "INTERNAL (13)",
        ),
    ];
    for (behavior, service, reason, fragment) in cases {
        let r = ask(&pki, behavior, service).await;
        assert_failure(&r, "request", reason, &[fragment]);
        assert!(r.grpc.is_some(), "{r:?}");
    }
}

#[tokio::test]
async fn a_proxys_own_http_answer_is_classified_as_http() {
    let pki = Pki::new();
    for (response, reason) in [
        (Response::istio_rbac_denied(), "rbac_denied"),
        (Response::envoy_upstream_tls_error(), "upstream_tls_error"),
        (
            Response::envoy_no_healthy_upstream(),
            "upstream_unavailable",
        ),
        (Response::status(404), "unexpected_status"),
    ] {
        let config = pki.strict(
            &pki.server_leaf(),
            &ServerOpts::default().with_alpn(&[b"h2"]),
        );
        let server = peer(Behavior::Tls {
            config,
            http: HttpBehavior::Respond(response),
        })
        .await;
        let r = probe(&pki, grpc_target(server.addr(), Mode::Mtls, SERVICE)).await;
        assert_failure(&r, "request", reason, &["HTTP"]);
        assert_eq!(
            r.grpc.as_ref().and_then(|g| g.status),
            None,
            "no grpc-status"
        );
    }
}

#[tokio::test]
async fn oversized_and_stalled_answers_are_cut_off() {
    let pki = Pki::new();
    let started = Instant::now();
    let r = ask(&pki, GrpcBehavior::Oversized(1 << 20), SERVICE).await;
    assert_failure(
        &r,
        "request",
        "protocol_error",
        &["over the limit", "cut off"],
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    let server = grpc_peer(&pki, GrpcBehavior::Stall, &[b"h2"]).await;
    let mut t = grpc_target(server.addr(), Mode::Mtls, SERVICE);
    t.timeout = Duration::from_millis(600);
    let started = Instant::now();
    let r = probe(&pki, t).await;
    assert_failure(
        &r,
        "request",
        "request_timeout",
        &["no gRPC answer within 600ms"],
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn a_server_without_h2_is_alpn_mismatch() {
    let pki = Pki::new();
    let serving = GrpcBehavior::health(SERVICE, ServingStatus::Serving);
    for (alpn, fragment) in [
        // rustls refuses an offer it shares nothing with (alert no_application_protocol).
        (&[&b"http/1.1"[..]][..], "no_application_protocol"),
        // A server without ALPN completes the handshake, choosing nothing.
        (&[][..], "negotiated no application protocol"),
    ] {
        let server = grpc_peer(&pki, serving.clone(), alpn).await;
        let r = probe(&pki, grpc_target(server.addr(), Mode::Mtls, SERVICE)).await;
        assert_failure(&r, "tls", "alpn_mismatch", &[fragment, "gRPC needs h2"]);
    }
}

#[tokio::test]
async fn h2c_in_plaintext_and_the_strict_companion() {
    let pki = Pki::new();
    let serving = GrpcBehavior::health(SERVICE, ServingStatus::Serving);
    // A plaintext gRPC server (no sidecar): h2c with prior knowledge.
    let server = peer(Behavior::Plaintext {
        http: HttpBehavior::Grpc(serving.clone()),
    })
    .await;
    let r = probe(&pki, grpc_target(server.addr(), Mode::Plaintext, SERVICE)).await;
    assert_pass(&r);
    assert_eq!(r.grpc.as_ref().and_then(|g| g.health), Some("SERVING"));

    let companion = |addr| {
        let mut t = grpc_target(addr, Mode::Plaintext, SERVICE);
        t.expect = Expect::Reject;
        t.peer = PeerExpectation::Insecure;
        t.origin = Origin::StrictCompanion { of: "x".into() };
        t
    };
    // STRICT: the TLS endpoint refuses the h2c preface.
    let strict = grpc_peer(&pki, serving.clone(), &[b"h2"]).await;
    let r = probe(&pki, companion(strict.addr())).await;
    assert_pass(&r);
    // PERMISSIVE: the plaintext call is answered, so STRICT is not in force.
    let config = pki.strict(&pki.server_leaf(), &ServerOpts::default());
    let permissive = peer(Behavior::Permissive {
        config,
        http: HttpBehavior::Grpc(serving.clone()),
    })
    .await;
    let r = probe(&pki, companion(permissive.addr())).await;
    assert_failure(
        &r,
        "expectation",
        "plaintext_accepted",
        &["answered the gRPC health check (OK, SERVING)"],
    );
    // Even a NOT_SERVING answer proves plaintext got through.
    let permissive = peer(Behavior::Permissive {
        config: pki.strict(&pki.server_leaf(), &ServerOpts::default()),
        http: HttpBehavior::Grpc(GrpcBehavior::health(SERVICE, ServingStatus::NotServing)),
    })
    .await;
    let r = probe(&pki, companion(permissive.addr())).await;
    assert_failure(&r, "expectation", "plaintext_accepted", &["NOT_SERVING"]);
    // A PERMISSION_DENIED over plaintext is a refusal (an AuthorizationPolicy that
    // requires mTLS principals answers plaintext that way).
    let denying = peer(Behavior::Plaintext {
        http: HttpBehavior::Grpc(GrpcBehavior::Status(
            tonic::Code::PermissionDenied,
            "RBAC: access denied".into(),
        )),
    })
    .await;
    assert_pass(&probe(&pki, companion(denying.addr())).await);
}

// === a third-party gRPC server: Python grpcio (grpc-core) ===

/// Python grpcio's Health servicer over TLS, requiring client certificates from
/// `client_ca`; `mode` is `grpc` or `http1` (Python's own HTTPS server).
fn python_peer(pki: &Pki, client_ca: &str, mode: &str) -> Option<ListeningPeer> {
    if !require("python3", &["-c", "import grpc, grpc_health.v1.health"]) {
        return None;
    }
    // With the DNS name the probe sends as SNI: grpc-core logs an error for every
    // handshake whose SNI its certificate does not carry.
    let leaf = pki
        .intermediate
        .issue(&LeafSpec::spiffe(SERVER_ID).with_dns("api.prod.svc.cluster.local"))
        .unwrap();
    let (chain, key) = pki.write_leaf("python-server", &leaf);
    Some(ListeningPeer::start(
        "python3",
        &[
            &peer_source("grpc_health_peer.py"),
            &chain.display().to_string(),
            &key.display().to_string(),
            client_ca,
            mode,
        ],
    ))
}

#[tokio::test]
async fn grpcio_health_answers() {
    let pki = Pki::new();
    let ca = pki.path("root-cert.pem").display().to_string();
    let Some(py) = python_peer(&pki, &ca, "grpc") else {
        return;
    };
    for service in [SERVICE, ""] {
        let r = probe(&pki, grpc_target(py.addr, Mode::Mtls, service)).await;
        assert_pass(&r);
        assert_eq!(r.grpc.as_ref().and_then(|g| g.health), Some("SERVING"));
    }
    let r = probe(&pki, grpc_target(py.addr, Mode::Mtls, "prod.v1.Down")).await;
    assert_failure(
        &r,
        "request",
        "unexpected_status",
        &["NOT_SERVING", "prod.v1.Down"],
    );
    let r = probe(&pki, grpc_target(py.addr, Mode::Mtls, "prod.v1.Nope")).await;
    assert_failure(
        &r,
        "request",
        "unexpected_status",
        &["NOT_FOUND", "prod.v1.Nope"],
    );
}

#[tokio::test]
async fn grpcio_refuses_our_certificate_silently() {
    let pki = Pki::new();
    let foreign = pki.path("foreign.pem");
    std::fs::write(&foreign, pki.foreign.cert_pem()).unwrap();
    let Some(py) = python_peer(&pki, &foreign.display().to_string(), "grpc") else {
        return;
    };
    // grpc-core closes after the handshake without an alert: a silent refusal, the
    // same tls reasons as for HTTP.
    let r = probe(&pki, grpc_target(py.addr, Mode::Mtls, SERVICE)).await;
    assert_failure(&r, "tls", "client_cert_rejected", &["silent"]);
    let r = probe(&pki, grpc_target(py.addr, Mode::Tls, SERVICE)).await;
    assert_failure(&r, "tls", "client_cert_required", &[]);
}

#[tokio::test]
async fn an_http1_only_server_is_alpn_mismatch() {
    let pki = Pki::new();
    let ca = pki.path("root-cert.pem").display().to_string();
    let Some(py) = python_peer(&pki, &ca, "http1") else {
        return;
    };
    let r = probe(&pki, grpc_target(py.addr, Mode::Mtls, SERVICE)).await;
    assert_failure(&r, "tls", "alpn_mismatch", &["gRPC needs h2"]);
}

#[tokio::test]
async fn the_probe_command_checks_grpc_ad_hoc() {
    let run = |addr: std::net::SocketAddr, output: &'static str| async move {
        tokio::process::Command::new(agent::BIN)
            .args(["probe", &addr.to_string(), "--mode", "plaintext"])
            .args(["--grpc-service", SERVICE, "--output", output])
            .output()
            .await
            .unwrap()
    };
    let serving = peer(Behavior::Plaintext {
        http: HttpBehavior::Grpc(GrpcBehavior::health(SERVICE, ServingStatus::Serving)),
    })
    .await;
    let o = run(serving.addr(), "json").await;
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(line["grpc"]["health"], "SERVING");
    assert_eq!(line["grpc"]["service"], SERVICE);
    assert_eq!(line["http"]["status"], 200);

    let down = peer(Behavior::Plaintext {
        http: HttpBehavior::Grpc(GrpcBehavior::health(SERVICE, ServingStatus::NotServing)),
    })
    .await;
    let o = run(down.addr(), "text").await;
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("request/unexpected_status"), "{text}");
    assert!(text.contains("OK NOT_SERVING"), "{text}");
}
