//! Below TLS and HTTP: blackhole, raw actions after the ClientHello, refused and
//! unreachable ports, and that nothing outlives its client or its server.

use super::*;

#[tokio::test]
async fn blackhole_is_silent_and_releases_a_departed_client() {
    let server = spawn(Behavior::Blackhole).await.unwrap();
    let mut open = server.open_connections();
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(FAKE_CLIENT_HELLO).await.unwrap();
    assert_quiet(&mut tcp).await;
    timeout(BOUND, open.wait_for(|n| *n == 1))
        .await
        .unwrap()
        .unwrap();
    drop(tcp);
    timeout(BOUND, open.wait_for(|n| *n == 0))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn dropping_the_server_closes_its_connections() {
    let server = spawn(Behavior::Blackhole).await.unwrap();
    let addr = server.addr();
    let mut open = server.open_connections();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    timeout(BOUND, open.wait_for(|n| *n == 1))
        .await
        .unwrap()
        .unwrap();
    drop(server);
    let mut buf = [0u8; 1];
    assert_eq!(
        timeout(BOUND, tcp.read(&mut buf)).await.unwrap().unwrap(),
        0
    );
    let err = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn after_client_hello_close_is_a_bare_fin() {
    let (_server, mut tcp) = after_hello(RawAction::Close).await;
    let (raw, err) = exchange(&mut tcp, b"").await;
    assert!(raw.is_empty() && err.is_none(), "{raw:?} {err:?}");
    // What a TLS client makes of it.
    let pki = pki();
    let (server, _) = after_hello(RawAction::Close).await;
    let err = tls_connect(&server, client(&pki, None, &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn after_client_hello_reset_is_a_rst() {
    let (_server, mut tcp) = after_hello(RawAction::Reset).await;
    let (raw, err) = exchange(&mut tcp, b"").await;
    assert!(raw.is_empty());
    assert_eq!(err.unwrap().kind(), io::ErrorKind::ConnectionReset);
    let pki = pki();
    let (server, _) = after_hello(RawAction::Reset).await;
    let err = tls_connect(&server, client(&pki, None, &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn after_client_hello_send_writes_then_closes() {
    let answer = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n".to_vec();
    let (_server, mut tcp) = after_hello(RawAction::Send(answer.clone())).await;
    let (raw, err) = exchange(&mut tcp, b"").await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(raw, answer);
}

#[tokio::test]
async fn after_client_hello_send_and_hold_stays_open() {
    let (_server, mut tcp) = after_hello(RawAction::SendAndHold(b"\x16\x03".to_vec())).await;
    let mut got = [0u8; 2];
    timeout(BOUND, tcp.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"\x16\x03");
    assert_quiet(&mut tcp).await;
}

#[tokio::test]
async fn after_client_hello_trickle_is_slow() {
    let every = Duration::from_millis(30);
    let (_server, mut tcp) = after_hello(RawAction::Trickle {
        bytes: b"abc".to_vec(),
        every,
    })
    .await;
    let start = Instant::now();
    let mut got = [0u8; 3];
    timeout(BOUND, tcp.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"abc");
    assert!(start.elapsed() >= every * 2, "{:?}", start.elapsed());
    assert_quiet(&mut tcp).await;
}

#[tokio::test]
async fn full_backlog_makes_connect_time_out() {
    let server = spawn_full_backlog().await.unwrap();
    let attempt = timeout(
        Duration::from_millis(300),
        TcpStream::connect(server.addr()),
    )
    .await;
    assert!(attempt.is_err(), "connect did not time out: {attempt:?}");
}

#[tokio::test]
async fn refused_addresses_refuse() {
    let err = TcpStream::connect(refused_addr().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    let reserved = spawn_refused().unwrap();
    let err = TcpStream::connect(reserved.addr()).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn departed_http1_clients_are_released() {
    for http in [
        HttpBehavior::Respond(Response::ok()),
        HttpBehavior::Silent,
        HttpBehavior::EndlessHeaders,
        HttpBehavior::EndlessBody,
        HttpBehavior::HalfResponse,
    ] {
        let server = spawn(Behavior::Plaintext { http: http.clone() })
            .await
            .unwrap();
        let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
        // Keep-alive request: the server must notice the client leaving, not a close.
        tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let _ = timeout(QUIET, tcp.read(&mut buf)).await;
        drop(tcp);
        assert_released(&server).await;
    }
}

#[tokio::test]
async fn departed_h2_clients_are_released() {
    let pki = pki();
    for http in [
        HttpBehavior::Respond(Response::ok()),
        HttpBehavior::Silent,
        HttpBehavior::EndlessBody,
        HttpBehavior::HalfResponse,
    ] {
        let server = spawn(Behavior::Tls {
            config: strict(&pki, &ServerOpts::default()),
            http: http.clone(),
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
        let conn = tokio::spawn(conn);
        let req = hyper::Request::get("https://localhost/")
            .body(Empty::<Bytes>::new())
            .unwrap();
        if let Ok(Ok(rsp)) = timeout(QUIET, send.send_request(req)).await {
            let mut body = rsp.into_body();
            let _ = timeout(QUIET, body.frame()).await;
        }
        drop(send);
        conn.abort();
        let _ = conn.await;
        assert_released(&server).await;
    }
}

#[tokio::test]
async fn failed_handshakes_and_held_connections_are_released() {
    let pki = pki();
    let tls = spawn(Behavior::Tls {
        config: strict(&pki, &ServerOpts::default()),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    let mut tcp = TcpStream::connect(tls.addr()).await.unwrap();
    let _ = exchange(&mut tcp, GET).await;
    drop(tcp);
    assert_released(&tls).await;

    let (held, tcp) = after_hello(RawAction::SendAndHold(b"x".to_vec())).await;
    drop(tcp);
    assert_released(&held).await;
}
