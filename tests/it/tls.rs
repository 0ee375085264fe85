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

/// The key-share groups of the ClientHello at the start of `bytes` (one TLS record).
fn key_share_groups(bytes: &[u8]) -> Vec<u16> {
    let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
    // record header (5), handshake header (4), version (2), random (32)
    let mut i = 5 + 4 + 2 + 32;
    i += 1 + bytes[i] as usize; // session id
    i += 2 + u16_at(i) as usize; // cipher suites
    i += 1 + bytes[i] as usize; // compression methods
    let end = i + 2 + u16_at(i) as usize;
    i += 2;
    while i < end {
        let (kind, len) = (u16_at(i), u16_at(i + 2) as usize);
        if kind == 0x0033 {
            let (mut j, stop) = (i + 6, i + 4 + len);
            let mut groups = Vec::new();
            while j < stop {
                groups.push(u16_at(j));
                j += 4 + u16_at(j + 2) as usize;
            }
            return groups;
        }
        i += 4 + len;
    }
    Vec::new()
}

#[tokio::test]
async fn later_probes_offer_the_group_the_server_chose_and_never_resume() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that does X25519 only and would resume sessions: it issues TLS 1.3
    // tickets and keeps a session cache (rustls' defaults).
    let pki = Pki::new();
    let leaf = pki.server_leaf();
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    let provider = std::sync::Arc::new(provider);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.root.cert().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(leaf.chain.clone(), leaf.key())
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    assert!(config.send_tls13_tickets > 0);
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Per connection: the groups of the ClientHello's key shares, and how it ended.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            // The whole first record, peeked so the TLS server reads it again.
            let mut want = 5;
            let hello = loop {
                let mut b = vec![0u8; want];
                if tcp.peek(&mut b).await.unwrap() < want {
                    tokio::task::yield_now().await;
                } else if want == 5 {
                    want += u16::from_be_bytes([b[3], b[4]]) as usize;
                } else {
                    break b;
                }
            };
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let kind = tls.get_ref().1.handshake_kind();
            let mut buf = vec![0u8; 4096];
            let mut have = 0;
            while !buf[..have].windows(4).any(|w| w == b"\r\n\r\n") {
                have += tls.read(&mut buf[have..]).await.unwrap();
            }
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            tls.shutdown().await.ok();
            tx.send((key_share_groups(&hello), kind)).unwrap();
        }
    });

    let prober = prober();
    let creds = pki.credentials(&prober);
    let mut t = http_target(addr, Mode::Mtls);
    t.alpn = vec!["http/1.1".into()];
    let prepared = prober.prepare(std::sync::Arc::new(t), &creds);
    let (x25519, hybrid) = (0x001d, 0x11ec);
    for n in 0..3 {
        let r = prober.run(&prepared, "test-node").await;
        assert_pass(&r);
        let (groups, kind) = rx.recv().await.unwrap();
        assert_eq!(kind, Some(rustls::HandshakeKind::Full), "probe {n}");
        if n == 0 {
            // No hint yet: the provider's first group (the hybrid) and X25519 beside it.
            assert_eq!(groups, vec![hybrid, x25519], "probe {n}");
        } else {
            // The server chose X25519: no ML-KEM key pair made for nothing.
            assert_eq!(groups, vec![x25519], "probe {n}");
        }
    }
}
