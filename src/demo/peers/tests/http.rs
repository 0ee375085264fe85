//! HTTP: canned answers, silence, endless and stalled responses, GOAWAY.

use super::*;

#[tokio::test]
async fn plaintext_answers_http() {
    let server = spawn(Behavior::Plaintext {
        http: HttpBehavior::Respond(Response::status(503)),
    })
    .await
    .unwrap();
    let (status, headers, body) = parse(&ok_plaintext(server.addr()).await);
    assert_eq!(status, 503);
    assert_eq!(body, b"503 Service Unavailable\n");
    assert!(headers.iter().any(|(k, _)| k == "date"));
}

#[tokio::test]
async fn canned_responses_are_read_back_exactly() {
    for canned in [
        Response::ok(),
        Response::istio_rbac_denied(),
        Response::envoy_upstream_tls_error(),
        Response::envoy_no_healthy_upstream(),
        Response::linkerd_forbidden(),
        Response::linkerd_unavailable(),
        Response::nginx_plain_http_to_https(),
    ] {
        let server = spawn(Behavior::Plaintext {
            http: HttpBehavior::Respond(canned.clone()),
        })
        .await
        .unwrap();
        let (status, headers, body) = parse(&ok_plaintext(server.addr()).await);
        assert_eq!(status, canned.status);
        for header in &canned.headers {
            assert!(
                headers.contains(header),
                "{header:?} missing in {headers:?}"
            );
        }
        let length = body.len().to_string();
        assert!(headers.contains(&("content-length".into(), length)));
        assert_eq!(body, canned.body);
    }
}

#[tokio::test]
async fn istio_rbac_denied_is_envoys_local_reply() {
    let rsp = Response::istio_rbac_denied();
    assert_eq!(rsp.status, 403);
    assert_eq!(rsp.body, "RBAC: access denied");
    assert!(
        rsp.headers
            .contains(&("server".into(), "istio-envoy".into()))
    );
    assert!(!rsp.headers.iter().any(|(k, _)| k.starts_with("x-envoy")));
}

#[tokio::test]
async fn silent_never_answers() {
    let server = spawn(Behavior::Plaintext {
        http: HttpBehavior::Silent,
    })
    .await
    .unwrap();
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(GET).await.unwrap();
    assert_quiet(&mut tcp).await;
}

#[tokio::test]
async fn silent_h2_stream_stays_unanswered() {
    let pki = pki();
    let server = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::default()),
        http: HttpBehavior::Silent,
    })
    .await
    .unwrap();
    let tls = tls_connect(&server, client(&pki, Some(&pki.client), &[b"h2"]))
        .await
        .unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("https://localhost/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    assert!(timeout(QUIET, send.send_request(req)).await.is_err());
}

#[tokio::test]
async fn raw_bytes_are_sent_verbatim() {
    let bogus = b"HTTP/1.1 2x0 Bogus\r\n\r\n".to_vec();
    let server = spawn(Behavior::Plaintext {
        http: HttpBehavior::Raw(bogus.clone()),
    })
    .await
    .unwrap();
    assert_eq!(ok_plaintext(server.addr()).await, bogus);
}

#[tokio::test]
async fn endless_headers_never_end_the_head() {
    let server = spawn(Behavior::Plaintext {
        http: HttpBehavior::EndlessHeaders,
    })
    .await
    .unwrap();
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(GET).await.unwrap();
    let mut head = vec![0u8; 256 * 1024];
    timeout(BOUND, tcp.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert!(head.starts_with(b"HTTP/1.1 200 OK\r\nx-endless-0: "));
    assert!(!head.windows(4).any(|w| w == b"\r\n\r\n"));
}

#[tokio::test]
async fn endless_body_keeps_sending() {
    let server = spawn(Behavior::Plaintext {
        http: HttpBehavior::EndlessBody,
    })
    .await
    .unwrap();
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(GET).await.unwrap();
    let mut got = vec![0u8; 2 * 1024 * 1024];
    timeout(BOUND, tcp.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let (status, headers, _) = parse(&got[..end + 4]);
    assert_eq!(status, 200);
    assert!(headers.contains(&("transfer-encoding".into(), "chunked".into())));
    assert!(!headers.iter().any(|(k, _)| k == "content-length"));
}

#[tokio::test]
async fn half_response_stalls_after_ten_bytes() {
    let server = spawn(Behavior::Plaintext {
        http: HttpBehavior::HalfResponse,
    })
    .await
    .unwrap();
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(GET).await.unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"0123456789") {
        let mut buf = [0u8; 1024];
        let n = timeout(BOUND, tcp.read(&mut buf)).await.unwrap().unwrap();
        assert_ne!(n, 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let (status, headers, body) = parse(&got);
    assert_eq!(status, 200);
    assert!(headers.contains(&("content-length".into(), "1000".into())));
    assert_eq!(body, b"0123456789");
    assert_quiet(&mut tcp).await;
}

#[tokio::test]
async fn h2_goaway_makes_an_h2_client_fail() {
    let pki = pki();
    let server = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::default()),
        http: HttpBehavior::H2Goaway,
    })
    .await
    .unwrap();
    let tls = tls_connect(&server, client(&pki, Some(&pki.client), &[b"h2"]))
        .await
        .unwrap();
    let outcome = timeout(BOUND, async {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        let req = hyper::Request::get("https://localhost/")
            .body(Empty::<Bytes>::new())
            .unwrap();
        send.send_request(req).await
    })
    .await
    .expect("h2 client hung");
    assert!(outcome.is_err(), "{outcome:?}");
}
