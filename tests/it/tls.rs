//! The `tls` stage against real rustls peers: one server per reason.

use std::time::{Duration, Instant};

use mtls_prober::config::{Mode, TlsVersion};

use crate::common::*;

#[tokio::test]
async fn healthy_strict_peer_passes_over_tls13_and_h2() {
    let pki = Pki::new();
    let server = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let r = probe(&pki, http_target(server.addr(), Mode::Mtls)).await;
    assert_pass(&r);
    let tls = r.tls.as_ref().unwrap();
    assert_eq!((tls.version, tls.alpn.as_deref()), ("TLS 1.3", Some("h2")));
    assert_eq!(r.http.as_ref().map(|h| h.status), Some(200));
    assert!(r.timings_ms.request.is_some() && r.timings_ms.tls.is_some());
}

#[tokio::test]
async fn healthy_peer_over_http1_and_tls12() {
    let pki = Pki::new();
    let config = pki.strict(
        &pki.server_leaf(),
        &ServerOpts::tls12_only().with_alpn(&[b"http/1.1"]),
    );
    let server = peer(Behavior::Tls {
        config,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let r = probe(&pki, http_target(server.addr(), Mode::Mtls)).await;
    assert_pass(&r);
    let tls = r.tls.as_ref().unwrap();
    assert_eq!(
        (tls.version, tls.alpn.as_deref()),
        ("TLS 1.2", Some("http/1.1"))
    );
}

#[tokio::test]
async fn plaintext_server_is_not_tls() {
    let pki = Pki::new();
    let server = peer(Behavior::Plaintext {
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let r = probe(&pki, http_target(server.addr(), Mode::Mtls)).await;
    assert_failure(&r, "tls", "not_tls", &["HTTP/1.1 400"]);
}

#[tokio::test]
async fn close_or_reset_after_client_hello_is_peer_closed() {
    let pki = Pki::new();
    for (action, word) in [(RawAction::Close, "closed"), (RawAction::Reset, "reset")] {
        let server = peer(Behavior::AfterClientHello(action)).await;
        let r = probe(&pki, target(server.addr(), Mode::Mtls)).await;
        assert_failure(&r, "tls", "peer_closed", &[word, "0 bytes received"]);
    }
}

#[tokio::test]
async fn no_common_version() {
    let pki = Pki::new();
    let config = pki.strict(&pki.server_leaf(), &ServerOpts::tls12_only());
    let server = peer(Behavior::Tls {
        config,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let mut t = target(server.addr(), Mode::Mtls);
    t.tls_versions = vec![TlsVersion::V1_3];
    let r = probe(&pki, t).await;
    assert_failure(&r, "tls", "protocol_version", &["protocol_version", "1.3"]);
}

#[tokio::test]
async fn no_common_cipher() {
    let pki = Pki::new();
    let opts = ServerOpts {
        tls12_suites_only_rsa: true,
        ..ServerOpts::default()
    };
    let config = pki.strict(&pki.server_leaf(), &opts);
    let server = peer(Behavior::Tls {
        config,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let r = probe(&pki, target(server.addr(), Mode::Mtls)).await;
    assert_failure(&r, "tls", "no_common_cipher", &["handshake_failure"]);
}

#[tokio::test]
async fn strict_server_requires_a_client_certificate() {
    let pki = Pki::new();
    let server = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    // TLS 1.3: the alert comes after our Finished; with and without an HTTP request.
    let r = probe(&pki, target(server.addr(), Mode::Tls)).await;
    assert_failure(
        &r,
        "tls",
        "client_cert_required",
        &["certificate_required", "none was sent"],
    );
    let r = probe(&pki, http_target(server.addr(), Mode::Tls)).await;
    assert_failure(&r, "tls", "client_cert_required", &["certificate_required"]);
    // TLS 1.2: the refusal comes inside the handshake.
    let config = pki.strict(&pki.server_leaf(), &ServerOpts::tls12_only());
    let server = peer(Behavior::Tls {
        config,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let r = probe(&pki, target(server.addr(), Mode::Tls)).await;
    assert_failure(&r, "tls", "client_cert_required", &[]);
}

#[tokio::test]
async fn server_refuses_our_certificate() {
    let pki = Pki::new();
    // The server trusts only a foreign root for clients (trust bundle not rotated).
    let config = server_config(
        &pki.server_leaf(),
        ClientAuth::Required(vec![pki.foreign.cert().clone()]),
        &ServerOpts::default(),
    )
    .unwrap();
    let server = peer(Behavior::Tls {
        config,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let r = probe(&pki, http_target(server.addr(), Mode::Mtls)).await;
    assert_failure(&r, "tls", "client_cert_rejected", &["unknown_ca"]);
    let r = probe(&pki, target(server.addr(), Mode::Mtls)).await;
    assert_failure(
        &r,
        "tls",
        "client_cert_rejected",
        &["unknown_ca", "after the handshake"],
    );
}

#[tokio::test]
async fn no_common_application_protocol() {
    let pki = Pki::new();
    let config = pki.strict(
        &pki.server_leaf(),
        &ServerOpts::default().with_alpn(&[b"grpc-exp"]),
    );
    let server = peer(Behavior::Tls {
        config,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let r = probe(&pki, http_target(server.addr(), Mode::Mtls)).await;
    assert_failure(
        &r,
        "tls",
        "alpn_mismatch",
        &["no_application_protocol", "h2, http/1.1"],
    );
}

#[tokio::test]
async fn silent_and_trickling_peers_time_out_within_the_budget() {
    let pki = Pki::new();
    let blackhole = peer(Behavior::Blackhole).await;
    let trickle = peer(Behavior::AfterClientHello(RawAction::Trickle {
        bytes: vec![22, 3, 3, 0, 200, 2, 0, 0, 196, 3, 3],
        every: Duration::from_millis(100),
    }))
    .await;
    for server in [&blackhole, &trickle] {
        let mut t = target(server.addr(), Mode::Mtls);
        t.timeout = Duration::from_millis(700);
        let started = Instant::now();
        let r = probe(&pki, t).await;
        let took = started.elapsed();
        assert_failure(&r, "tls", "handshake_timeout", &["700ms"]);
        assert!(took < Duration::from_millis(1500), "took {took:?}");
    }
}

#[tokio::test]
async fn other_alerts_are_handshake_errors() {
    let pki = Pki::new();
    // A fatal internal_error alert right after the ClientHello.
    let server = peer(Behavior::AfterClientHello(RawAction::Send(vec![
        21, 3, 3, 0, 2, 2, 80,
    ])))
    .await;
    let r = probe(&pki, target(server.addr(), Mode::Mtls)).await;
    assert_failure(&r, "tls", "handshake_error", &["internal_error"]);
}
