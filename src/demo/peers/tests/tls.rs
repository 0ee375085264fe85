//! TLS: what a client sees of the handshake, its alerts, versions, suites and ALPN.

use super::*;

#[tokio::test]
async fn strict_with_client_cert_answers_200() {
    let pki = pki();
    let server = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::default()),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    // No ALPN: HTTP/1.1.
    let mut tls = tls_connect(&server, client(&pki, Some(&pki.client), &[]))
        .await
        .unwrap();
    let (raw, _) = exchange(&mut tls, GET).await;
    let (status, headers, body) = parse(&raw);
    assert_eq!(status, 200);
    assert!(headers.contains(&("content-type".into(), "text/plain".into())));
    assert_eq!(body, b"ok\n");
}

#[tokio::test]
async fn strict_speaks_h2_when_alpn_says_so() {
    let pki = pki();
    let server = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::default()),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    let tls = tls_connect(&server, client(&pki, Some(&pki.client), &[b"h2"]))
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("https://localhost/healthz")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let rsp = timeout(BOUND, send.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rsp.status(), 200);
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "ok\n");
}

#[tokio::test]
async fn strict_without_client_cert_alerts_on_first_read() {
    let pki = pki();
    let server = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::default()),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    // TLS 1.3: the client's handshake completes; the refusal is the first thing read.
    let mut tls = tls_connect(&server, client(&pki, None, &[])).await.unwrap();
    let (raw, err) = exchange(&mut tls, GET).await;
    assert!(raw.is_empty());
    assert_eq!(
        rustls_error(&err.unwrap()),
        &rustls::Error::AlertReceived(AlertDescription::CertificateRequired)
    );
}

#[tokio::test]
async fn strict_with_foreign_client_cert_alerts_unknown_ca() {
    let pki = pki();
    let foreign = Ca::root("someone else").unwrap();
    let stranger = foreign
        .issue(&LeafSpec::spiffe("spiffe://other.local/ns/x/sa/y"))
        .unwrap();
    let server = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::default()),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    let mut tls = tls_connect(&server, client(&pki, Some(&stranger), &[]))
        .await
        .unwrap();
    let (_, err) = exchange(&mut tls, GET).await;
    assert_eq!(
        rustls_error(&err.unwrap()),
        &rustls::Error::AlertReceived(AlertDescription::UnknownCA)
    );
}

#[tokio::test]
async fn plaintext_to_a_tls_port_gets_a_decode_error_alert_then_fin() {
    let pki = pki();
    let server = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::default()),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (raw, err) = exchange(&mut tcp, GET).await;
    assert!(err.is_none(), "FIN expected, got {err:?}");
    // A plaintext TLS record: alert (21), TLS 1.2 record version, length 2, fatal (2),
    // decode_error (50).
    assert_eq!(raw, [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]);
}

#[tokio::test]
async fn tls12_only_server_refuses_a_tls13_only_client() {
    let pki = pki();
    let server = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::tls12_only()),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(pki.root.cert().clone()).unwrap();
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(pki.client.chain.clone(), pki.client.key())
        .unwrap();
    let err = tls_connect(&server, Arc::new(config)).await.unwrap_err();
    assert_eq!(
        rustls_error(&err),
        &rustls::Error::AlertReceived(AlertDescription::ProtocolVersion)
    );
}

#[tokio::test]
async fn rsa_only_suites_with_an_ecdsa_leaf_share_no_cipher() {
    let pki = pki();
    let opts = ServerOpts {
        tls12_suites_only_rsa: true,
        ..ServerOpts::default()
    };
    let server = spawn(Behavior::Tls {
        config: strict(&pki, &opts),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    let err = tls_connect(&server, client(&pki, Some(&pki.client), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        rustls_error(&err),
        &rustls::Error::AlertReceived(AlertDescription::HandshakeFailure)
    );
}

#[tokio::test]
async fn rsa_only_suites_with_an_rsa_leaf_work_over_tls12() {
    let pki = pki();
    let rsa = pki
        .root
        .issue(&LeafSpec::dns(&["localhost"]).with_alg(KeyAlg::Rsa2048))
        .unwrap();
    let opts = ServerOpts {
        tls12_suites_only_rsa: true,
        ..ServerOpts::default()
    };
    let config = server_config(&rsa, ClientAuth::None, &opts).unwrap();
    let server = spawn(Behavior::Tls {
        config,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    let tls = tls_connect(&server, client(&pki, None, &[])).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
}

#[tokio::test]
async fn permissive_answers_plaintext_and_mtls() {
    let pki = pki();
    let server = spawn(Behavior::Permissive {
        config: strict(&pki, &ServerOpts::default()),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    let (status, _, body) = parse(&ok_plaintext(server.addr()).await);
    assert_eq!((status, &body[..]), (200, &b"ok\n"[..]));

    let mut tls = tls_connect(&server, client(&pki, Some(&pki.client), &[]))
        .await
        .unwrap();
    let (raw, _) = exchange(&mut tls, GET).await;
    let (status, _, body) = parse(&raw);
    assert_eq!((status, &body[..]), (200, &b"ok\n"[..]));
}

#[tokio::test]
async fn close_after_handshake_sends_close_notify_and_fin() {
    let pki = pki();
    let server = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::default()),
        http: HttpBehavior::CloseAfterHandshake,
    })
    .await
    .unwrap();
    let mut tls = tls_connect(&server, client(&pki, Some(&pki.client), &[]))
        .await
        .unwrap();
    let (raw, err) = exchange(&mut tls, GET).await;
    assert!(raw.is_empty());
    assert!(err.is_none(), "clean close expected, got {err:?}");

    let plain = spawn(Behavior::Plaintext {
        http: HttpBehavior::CloseAfterHandshake,
    })
    .await
    .unwrap();
    assert!(ok_plaintext(plain.addr()).await.is_empty());
}

#[tokio::test]
async fn tls13_only_server_refuses_a_tls12_only_client() {
    let pki = pki();
    let server = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::tls13_only()),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(pki.root.cert().clone()).unwrap();
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let err = tls_connect(&server, Arc::new(config)).await.unwrap_err();
    assert_eq!(
        rustls_error(&err),
        &rustls::Error::AlertReceived(AlertDescription::ProtocolVersion)
    );
}

#[tokio::test]
async fn alpn_without_overlap_is_refused_and_no_alpn_is_http1() {
    let pki = pki();
    let h2_only = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::default().with_alpn(&[b"h2"])),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    let err = tls_connect(&h2_only, client(&pki, Some(&pki.client), &[b"http/1.1"]))
        .await
        .unwrap_err();
    assert_eq!(
        rustls_error(&err),
        &rustls::Error::AlertReceived(AlertDescription::NoApplicationProtocol)
    );

    // A server without ALPN ignores the client's offer and speaks HTTP/1.1.
    let no_alpn = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::default().with_alpn(&[])),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    let mut tls = tls_connect(&no_alpn, client(&pki, Some(&pki.client), &[b"h2"]))
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    let (raw, _) = exchange(&mut tls, GET).await;
    assert_eq!(parse(&raw).0, 200);
}

#[tokio::test]
async fn strict_over_tls12_refuses_a_missing_cert_during_the_handshake() {
    let pki = pki();
    let server = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::tls12_only()),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    // TLS 1.2: the client's handshake itself fails, and rustls names the alert
    // certificate_required (a TLS 1.3 alert) even in TLS 1.2.
    let err = tls_connect(&server, client(&pki, None, &[]))
        .await
        .unwrap_err();
    assert_eq!(
        rustls_error(&err),
        &rustls::Error::AlertReceived(AlertDescription::CertificateRequired)
    );
}

#[tokio::test]
async fn strict_with_expired_client_cert_alerts_certificate_expired() {
    let pki = pki();
    let expired = pki
        .root
        .issue(&LeafSpec::spiffe("spiffe://cluster.local/ns/demo/sa/prober").expired())
        .unwrap();
    let server = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::default()),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    let mut tls = tls_connect(&server, client(&pki, Some(&expired), &[]))
        .await
        .unwrap();
    let (_, err) = exchange(&mut tls, GET).await;
    assert_eq!(
        rustls_error(&err.unwrap()),
        &rustls::Error::AlertReceived(AlertDescription::CertificateExpired)
    );
}
