//! The listener proven from the client side: real servers on `127.0.0.1:0`, real
//! rustls clients, PKI minted per test. The bound listener is the readiness signal;
//! timeouts below only turn a hang into a failure, they never synchronise.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{AlertDescription, ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::*;
use crate::demo::pki::{Ca, Leaf, LeafSpec};
use crate::identity::load::{ClientIdentity, TrustBundle};

/// Long enough for anything on a loaded loopback; a test that waits this long failed.
const BOUND: Duration = Duration::from_secs(5);

const SERVER_ID: &str = "spiffe://cluster.local/ns/monitoring/sa/mtls-prober";
const CLIENT_ID: &str = "spiffe://cluster.local/ns/monitoring/sa/peer-prober";

struct Pki {
    root: Ca,
    server: Leaf,
    client: Leaf,
}

fn pki() -> Pki {
    let root = Ca::root("serve test root").unwrap();
    let server = server_leaf(&root, SERVER_ID);
    let client = root.issue(&LeafSpec::spiffe(CLIENT_ID)).unwrap();
    Pki {
        root,
        server,
        client,
    }
}

/// Our agent's certificate; `localhost` so a plain webpki client can verify it.
fn server_leaf(root: &Ca, id: &str) -> Leaf {
    root.issue(&LeafSpec::spiffe(id).with_dns("localhost"))
        .unwrap()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Credentials as the identity module would hand them out for `leaf` under `root`.
fn creds(root: &Ca, leaf: &Leaf) -> Arc<Credentials> {
    let bundle = TrustBundle::from_certs(
        Path::new("root-cert.pem"),
        vec![root.cert().clone()],
        [0; 32],
    )
    .unwrap();
    let client = ClientIdentity::from_parts(
        Path::new("cert-chain.pem"),
        Path::new("key.pem"),
        leaf.chain.clone(),
        leaf.key(),
        &bundle,
        &provider(),
        SystemTime::now(),
        [0; 32],
    )
    .unwrap();
    Arc::new(Credentials {
        bundle: Ok(Arc::new(bundle)),
        client: Ok(Arc::new(client)),
    })
}

struct Server {
    addr: SocketAddr,
    creds: watch::Sender<Arc<Credentials>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(client_auth: ClientAuth, creds: Arc<Credentials>) -> Self {
        Self::start_with(client_auth, creds, Limits::default()).await
    }

    async fn start_with(client_auth: ClientAuth, creds: Arc<Credentials>, limits: Limits) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (creds_tx, creds_rx) = watch::channel(creds);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(run_with_limits(
            listener,
            client_auth,
            "node-a".to_owned(),
            creds_rx,
            limits,
            async {
                let _ = stop_rx.await;
            },
        ));
        Self {
            addr,
            creds: creds_tx,
            shutdown: Some(stop_tx),
            task,
        }
    }

    /// Stops the server and waits for `run` to return.
    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        timeout(BOUND, &mut self.task)
            .await
            .expect("run did not return after shutdown")
            .unwrap();
    }
}

fn client(root: &Ca, cert: Option<&Leaf>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(root.cert().clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match cert {
        Some(leaf) => builder
            .with_client_auth_cert(leaf.chain.clone(), leaf.key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn tls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    timeout(BOUND, TlsConnector::from(config).connect(name, tcp))
        .await
        .expect("handshake hung")
}

/// Writes `request`, reads until EOF or an error; returns the bytes and the error.
async fn exchange<S>(io: &mut S, request: &[u8]) -> (Vec<u8>, Option<io::Error>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Err(e) = io.write_all(request).await {
        return (Vec::new(), Some(e));
    }
    read_to_end(io).await
}

async fn read_to_end<S: AsyncRead + Unpin>(io: &mut S) -> (Vec<u8>, Option<io::Error>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match timeout(BOUND, io.read(&mut buf)).await.expect("read hung") {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e)),
        }
    }
}

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n{extra}connection: close\r\n\r\n")
        .into_bytes()
}

/// Status, lowercased headers, body of a raw HTTP/1.1 response.
fn parse(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    (status, headers, raw[end + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn rustls_error(e: &io::Error) -> &rustls::Error {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {e:?}"))
}

fn server_serial(tls: &TlsStream<TcpStream>) -> String {
    let certs = tls.get_ref().1.peer_certificates().unwrap();
    CertSummary::parse(&certs[0]).unwrap().serial
}

fn leaf_serial(leaf: &Leaf) -> String {
    CertSummary::parse(leaf.leaf()).unwrap().serial
}

/// One `GET /healthz` over HTTP/1.1; returns the parsed JSON.
async fn healthz_h1(addr: SocketAddr, config: Arc<ClientConfig>) -> serde_json::Value {
    let mut tls = tls_connect(addr, config).await.unwrap();
    let (raw, err) = exchange(&mut tls, &get("/healthz", "")).await;
    assert!(err.is_none(), "{err:?}");
    let (status, headers, body) = parse(&raw);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    serde_json::from_slice(&body).unwrap()
}

/// An HTTP/2 connection over `tls`; the handle ends when the server closes it.
async fn h2_client(
    tls: TlsStream<TcpStream>,
) -> (
    hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    JoinHandle<Result<(), hyper::Error>>,
) {
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    (send, tokio::spawn(conn))
}

async fn h2_get(
    send: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut req = hyper::Request::get("https://localhost/healthz");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let rsp = timeout(BOUND, send.send_request(req.body(Empty::new()).unwrap()))
        .await
        .expect("h2 request hung")
        .unwrap();
    let status = rsp.status().as_u16();
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

// === mTLS happy paths ===

#[tokio::test]
async fn http1_client_sees_both_identities_and_its_headers() {
    let pki = pki();
    let server = Server::start(ClientAuth::Require, creds(&pki.root, &pki.server)).await;
    let mut tls = tls_connect(
        server.addr,
        client(&pki.root, Some(&pki.client), &[b"http/1.1"]),
    )
    .await
    .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let request = get(
        "/healthz",
        "x-forwarded-client-cert: By=spiffe://cluster.local/ns/a/sa/b;URI=spiffe://cluster.local/ns/c/sa/d\r\n\
         l5d-client-id: web.default.serviceaccount.identity.linkerd.cluster.local\r\n",
    );
    let (raw, err) = exchange(&mut tls, &request).await;
    assert!(err.is_none(), "{err:?}");
    let (status, headers, body) = parse(&raw);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "source": "node-a",
            "spiffe_id": SERVER_ID,
            "peer_spiffe_id": CLIENT_ID,
            "xfcc": "By=spiffe://cluster.local/ns/a/sa/b;URI=spiffe://cluster.local/ns/c/sa/d",
            "l5d_client_id": "web.default.serviceaccount.identity.linkerd.cluster.local",
        })
    );
    server.stop().await;
}

#[tokio::test]
async fn http2_client_sees_both_identities_and_its_headers() {
    let pki = pki();
    let server = Server::start(ClientAuth::Require, creds(&pki.root, &pki.server)).await;
    let tls = tls_connect(
        server.addr,
        client(&pki.root, Some(&pki.client), &[b"h2", b"http/1.1"]),
    )
    .await
    .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, _conn) = h2_client(tls).await;
    let (status, json) = h2_get(&mut send, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(json["spiffe_id"], SERVER_ID);
    assert_eq!(json["peer_spiffe_id"], CLIENT_ID);
    assert!(json["xfcc"].is_null());
    assert!(json["l5d_client_id"].is_null());
    // A second request on the same connection, with the sidecar headers.
    let (status, json) = h2_get(
        &mut send,
        &[
            ("x-forwarded-client-cert", "Hash=abc"),
            ("l5d-client-id", "a.b"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json["xfcc"], "Hash=abc");
    assert_eq!(json["l5d_client_id"], "a.b");
    server.stop().await;
}

#[tokio::test]
async fn client_without_alpn_is_served_http1() {
    let pki = pki();
    let server = Server::start(ClientAuth::Require, creds(&pki.root, &pki.server)).await;
    let json = healthz_h1(server.addr, client(&pki.root, Some(&pki.client), &[])).await;
    assert_eq!(json["peer_spiffe_id"], CLIENT_ID);
    server.stop().await;
}

#[tokio::test]
async fn server_offers_no_session_resumption() {
    let pki = pki();
    let server = Server::start(ClientAuth::Require, creds(&pki.root, &pki.server)).await;
    // The same client config (and so the same session cache) twice: the second
    // handshake must be full too.
    let config = client(&pki.root, Some(&pki.client), &[b"http/1.1"]);
    for _ in 0..2 {
        let mut tls = tls_connect(server.addr, config.clone()).await.unwrap();
        let (raw, _) = exchange(&mut tls, &get("/healthz", "")).await;
        assert_eq!(parse(&raw).0, 200);
        assert_eq!(
            tls.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Full)
        );
    }
    server.stop().await;
}

// === refusals at the TLS layer ===

#[tokio::test]
async fn require_refuses_a_client_without_certificate_with_the_alert_only() {
    let pki = pki();
    let server = Server::start(ClientAuth::Require, creds(&pki.root, &pki.server)).await;
    // TLS 1.3: the client's handshake completes; the refusal is the first thing read.
    let mut tls = tls_connect(server.addr, client(&pki.root, None, &[]))
        .await
        .unwrap();
    let (raw, err) = exchange(&mut tls, &get("/healthz", "")).await;
    assert!(raw.is_empty(), "HTTP bytes leaked: {raw:?}");
    assert_eq!(
        rustls_error(&err.unwrap()),
        &rustls::Error::AlertReceived(AlertDescription::CertificateRequired)
    );
    server.stop().await;
}

#[tokio::test]
async fn require_refuses_a_certificate_from_a_foreign_root() {
    let pki = pki();
    let foreign = Ca::root("someone else").unwrap();
    let stranger = foreign
        .issue(&LeafSpec::spiffe("spiffe://other.local/ns/x/sa/y"))
        .unwrap();
    let server = Server::start(ClientAuth::Require, creds(&pki.root, &pki.server)).await;
    let mut tls = tls_connect(server.addr, client(&pki.root, Some(&stranger), &[]))
        .await
        .unwrap();
    let (raw, err) = exchange(&mut tls, &get("/healthz", "")).await;
    assert!(raw.is_empty(), "HTTP bytes leaked: {raw:?}");
    assert_eq!(
        rustls_error(&err.unwrap()),
        &rustls::Error::AlertReceived(AlertDescription::UnknownCA)
    );
    server.stop().await;
}

#[tokio::test]
async fn optional_serves_a_client_without_certificate() {
    let pki = pki();
    let server = Server::start(ClientAuth::Optional, creds(&pki.root, &pki.server)).await;
    let json = healthz_h1(server.addr, client(&pki.root, None, &[b"http/1.1"])).await;
    assert_eq!(json["spiffe_id"], SERVER_ID);
    assert!(json["peer_spiffe_id"].is_null());
    // And one with a certificate is still identified.
    let json = healthz_h1(server.addr, client(&pki.root, Some(&pki.client), &[])).await;
    assert_eq!(json["peer_spiffe_id"], CLIENT_ID);
    server.stop().await;
}

#[tokio::test]
async fn optional_still_refuses_an_invalid_certificate() {
    let pki = pki();
    let foreign = Ca::root("someone else").unwrap();
    let stranger = foreign
        .issue(&LeafSpec::spiffe("spiffe://other.local/ns/x/sa/y"))
        .unwrap();
    let expired = pki
        .root
        .issue(&LeafSpec::spiffe(CLIENT_ID).expired())
        .unwrap();
    let server = Server::start(ClientAuth::Optional, creds(&pki.root, &pki.server)).await;
    for (leaf, alert) in [
        (&stranger, AlertDescription::UnknownCA),
        (&expired, AlertDescription::CertificateExpired),
    ] {
        let mut tls = tls_connect(server.addr, client(&pki.root, Some(leaf), &[]))
            .await
            .unwrap();
        let (raw, err) = exchange(&mut tls, &get("/healthz", "")).await;
        assert!(raw.is_empty(), "HTTP bytes leaked: {raw:?}");
        assert_eq!(
            rustls_error(&err.unwrap()),
            &rustls::Error::AlertReceived(alert)
        );
    }
    server.stop().await;
}

// === identity rotation and outages ===

#[tokio::test]
async fn rotation_applies_to_new_connections_only() {
    let pki = pki();
    let server = Server::start(ClientAuth::Require, creds(&pki.root, &pki.server)).await;
    let config = client(&pki.root, Some(&pki.client), &[b"h2"]);

    // A connection from before the rotation…
    let old_tls = tls_connect(server.addr, config.clone()).await.unwrap();
    assert_eq!(server_serial(&old_tls), leaf_serial(&pki.server));
    let (mut old, _old_conn) = h2_client(old_tls).await;

    let rotated_id = "spiffe://cluster.local/ns/monitoring/sa/mtls-prober-v2";
    let rotated = server_leaf(&pki.root, rotated_id);
    assert_ne!(leaf_serial(&rotated), leaf_serial(&pki.server));
    server.creds.send(creds(&pki.root, &rotated)).unwrap();

    // …the next connection presents the new certificate and reports its identity…
    let tls = tls_connect(server.addr, config.clone()).await.unwrap();
    assert_eq!(server_serial(&tls), leaf_serial(&rotated));
    let (mut new, _new_conn) = h2_client(tls).await;
    assert_eq!(h2_get(&mut new, &[]).await.1["spiffe_id"], rotated_id);

    // …while the old one keeps what it was served with.
    assert_eq!(h2_get(&mut old, &[]).await.1["spiffe_id"], SERVER_ID);
    server.stop().await;
}

#[tokio::test]
async fn rotation_to_a_new_bundle_changes_which_clients_are_trusted() {
    let pki = pki();
    let server = Server::start(ClientAuth::Require, creds(&pki.root, &pki.server)).await;
    // The mesh moves to a new root: our new leaf and the bundle both come from it.
    let new_root = Ca::root("serve test root 2").unwrap();
    let new_leaf = server_leaf(&new_root, SERVER_ID);
    let new_client = new_root.issue(&LeafSpec::spiffe(CLIENT_ID)).unwrap();
    server.creds.send(creds(&new_root, &new_leaf)).unwrap();

    let json = healthz_h1(server.addr, client(&new_root, Some(&new_client), &[])).await;
    assert_eq!(json["peer_spiffe_id"], CLIENT_ID);
    // A client of the old root is now a stranger.
    let mut tls = tls_connect(server.addr, client(&new_root, Some(&pki.client), &[]))
        .await
        .unwrap();
    let (raw, err) = exchange(&mut tls, &get("/healthz", "")).await;
    assert!(raw.is_empty());
    assert_eq!(
        rustls_error(&err.unwrap()),
        &rustls::Error::AlertReceived(AlertDescription::UnknownCA)
    );
    server.stop().await;
}

#[tokio::test]
async fn unavailable_credentials_close_connections_until_they_return() {
    let pki = pki();
    let server = Server::start(ClientAuth::Require, Arc::new(Credentials::none())).await;
    let config = client(&pki.root, Some(&pki.client), &[]);

    // No TLS at all: the connection is closed, the handshake fails.
    assert!(tls_connect(server.addr, config.clone()).await.is_err());
    assert!(tls_connect(server.addr, config.clone()).await.is_err());
    assert!(!server.task.is_finished());

    server.creds.send(creds(&pki.root, &pki.server)).unwrap();
    let json = healthz_h1(server.addr, config.clone()).await;
    assert_eq!(json["spiffe_id"], SERVER_ID);

    // Losing only the certificate (the bundle still loads) closes connections again.
    let mut broken = (*creds(&pki.root, &pki.server)).clone();
    broken.client = Err("cert-chain.pem: the certificate expired".into());
    server.creds.send(Arc::new(broken)).unwrap();
    assert!(tls_connect(server.addr, config.clone()).await.is_err());
    assert!(!server.task.is_finished());
    server.stop().await;
}

// === HTTP errors and limits ===

#[tokio::test]
async fn wrong_path_and_method_get_short_errors() {
    let pki = pki();
    let server = Server::start(ClientAuth::Require, creds(&pki.root, &pki.server)).await;
    let config = client(&pki.root, Some(&pki.client), &[b"http/1.1"]);

    let mut tls = tls_connect(server.addr, config.clone()).await.unwrap();
    let (raw, _) = exchange(&mut tls, &get("/metrics", "")).await;
    let (status, _, body) = parse(&raw);
    assert_eq!(status, 404);
    assert!(body.len() < 100);
    assert!(!String::from_utf8_lossy(&body).contains("spiffe"));

    let mut tls = tls_connect(server.addr, config.clone()).await.unwrap();
    let post = b"POST /healthz HTTP/1.1\r\nhost: localhost\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello";
    let (raw, _) = exchange(&mut tls, post).await;
    let (status, headers, _) = parse(&raw);
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "allow"), Some("GET"));
    server.stop().await;
}

#[tokio::test]
async fn oversized_http1_head_gets_431_and_the_connection_closes() {
    let pki = pki();
    let server = Server::start(ClientAuth::Require, creds(&pki.root, &pki.server)).await;
    let mut tls = tls_connect(
        server.addr,
        client(&pki.root, Some(&pki.client), &[b"http/1.1"]),
    )
    .await
    .unwrap();
    let big = format!("x-forwarded-client-cert: {}\r\n", "a".repeat(20 * 1024));
    // The server may stop reading (and close) before the whole request is written.
    let (raw, _) = exchange(&mut tls, &get("/healthz", &big)).await;
    let (status, _, _) = parse(&raw);
    assert_eq!(status, 431);
    server.stop().await;
}

#[tokio::test]
async fn oversized_http2_headers_get_431() {
    let pki = pki();
    let server = Server::start(ClientAuth::Require, creds(&pki.root, &pki.server)).await;
    let tls = tls_connect(server.addr, client(&pki.root, Some(&pki.client), &[b"h2"]))
        .await
        .unwrap();
    let (mut send, _conn) = h2_client(tls).await;
    let big = "a".repeat(20 * 1024);
    let req = hyper::Request::get("https://localhost/healthz")
        .header("x-forwarded-client-cert", big)
        .body(Empty::new())
        .unwrap();
    let result = timeout(BOUND, send.send_request(req))
        .await
        .expect("h2 request hung");
    // The h2 client does not enforce the server's SETTINGS_MAX_HEADER_LIST_SIZE, so
    // the headers arrive and the server's h2 layer answers 431 itself (no echo).
    let rsp = result.unwrap();
    assert_eq!(rsp.status(), 431);
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_does_not_block_others_and_is_dropped_at_the_handshake_timeout() {
    let pki = pki();
    let limits = Limits {
        handshake_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server =
        Server::start_with(ClientAuth::Require, creds(&pki.root, &pki.server), limits).await;
    let mut slowloris = TcpStream::connect(server.addr).await.unwrap();

    let json = healthz_h1(server.addr, client(&pki.root, Some(&pki.client), &[])).await;
    assert_eq!(json["peer_spiffe_id"], CLIENT_ID);

    // The silent client is closed without a byte once the handshake timeout passes.
    let (raw, _) = read_to_end(&mut slowloris).await;
    assert!(raw.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_partial_request_head_is_dropped_at_the_header_timeout() {
    let pki = pki();
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server =
        Server::start_with(ClientAuth::Require, creds(&pki.root, &pki.server), limits).await;
    let mut tls = tls_connect(
        server.addr,
        client(&pki.root, Some(&pki.client), &[b"http/1.1"]),
    )
    .await
    .unwrap();
    let (raw, _) = exchange(&mut tls, b"GET /healthz HTTP/1.1\r\nhost: loc").await;
    // Closed (hyper may or may not say 408 first), never a 200.
    assert!(!raw.starts_with(b"HTTP/1.1 200"), "{raw:?}");
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let pki = pki();
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let server =
        Server::start_with(ClientAuth::Require, creds(&pki.root, &pki.server), limits).await;
    // Accepted first (the backlog is FIFO), it holds the only slot in its handshake.
    let _holder = TcpStream::connect(server.addr).await.unwrap();
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let (raw, _) = read_to_end(&mut tcp).await;
    assert!(raw.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn connections_are_closed_at_their_lifetime_cap() {
    let pki = pki();
    let limits = Limits {
        max_connection_lifetime: Duration::from_millis(500),
        ..Limits::default()
    };
    let server =
        Server::start_with(ClientAuth::Require, creds(&pki.root, &pki.server), limits).await;
    let tls = tls_connect(server.addr, client(&pki.root, Some(&pki.client), &[b"h2"]))
        .await
        .unwrap();
    let (mut send, conn) = h2_client(tls).await;
    assert_eq!(h2_get(&mut send, &[]).await.0, 200);
    // Idle from here on: the server sends GOAWAY and closes, ending the client's
    // connection future.
    timeout(BOUND, conn)
        .await
        .expect("connection outlived its cap")
        .unwrap()
        .ok();
    server.stop().await;
}

// === shutdown ===

#[tokio::test]
async fn shutdown_closes_the_listener_and_returns_promptly() {
    let pki = pki();
    let server = Server::start(ClientAuth::Require, creds(&pki.root, &pki.server)).await;
    let addr = server.addr;
    // In flight: one idle HTTP/2 connection, one stalled before TLS.
    let tls = tls_connect(addr, client(&pki.root, Some(&pki.client), &[b"h2"]))
        .await
        .unwrap();
    let (_send, conn) = h2_client(tls).await;
    let mut stalled = TcpStream::connect(addr).await.unwrap();

    let started = Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    timeout(BOUND, conn)
        .await
        .expect("h2 connection not closed")
        .unwrap()
        .ok();
    let (raw, _) = read_to_end(&mut stalled).await;
    assert!(raw.is_empty());
    assert_eq!(
        TcpStream::connect(addr).await.unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
}

/// Workload API credentials: our SVID under `root`, and per-trust-domain bundles.
fn workload_api_creds(root: &Ca, leaf: &Leaf, federated: (&str, &Ca)) -> Arc<Credentials> {
    let bundle = TrustBundle::per_domain(
        Path::new("unix:///run/spire/agent.sock"),
        "cluster.local",
        vec![
            ("cluster.local".to_owned(), vec![root.cert().clone()]),
            (federated.0.to_owned(), vec![federated.1.cert().clone()]),
        ],
        [0; 32],
    )
    .unwrap();
    let client = ClientIdentity::from_parts(
        Path::new("svid"),
        Path::new("svid"),
        leaf.chain.clone(),
        leaf.key(),
        &bundle,
        &provider(),
        SystemTime::now(),
        [0; 32],
    )
    .unwrap();
    Arc::new(Credentials {
        bundle: Ok(Arc::new(bundle)),
        client: Ok(Arc::new(client)),
    })
}

#[tokio::test]
async fn workload_api_bundles_verify_each_client_with_its_own_trust_domain() {
    let pki = pki();
    let partner = Ca::root("partner root").unwrap();
    let server = Server::start(
        ClientAuth::Require,
        workload_api_creds(&pki.root, &pki.server, ("partner.example", &partner)),
    )
    .await;
    // Our own domain, our root: served.
    let json = healthz_h1(server.addr, client(&pki.root, Some(&pki.client), &[])).await;
    assert_eq!(json["peer_spiffe_id"], CLIENT_ID);
    // The federated domain with its own root: served.
    let partner_client = partner
        .issue(&LeafSpec::spiffe("spiffe://partner.example/ns/pay/sa/gw"))
        .unwrap();
    let json = healthz_h1(server.addr, client(&pki.root, Some(&partner_client), &[])).await;
    assert_eq!(
        json["peer_spiffe_id"],
        "spiffe://partner.example/ns/pay/sa/gw"
    );
    // Our domain claimed under the partner's root: refused (a pooled set would take it).
    let impostor = partner.issue(&LeafSpec::spiffe(CLIENT_ID)).unwrap();
    let mut tls = tls_connect(server.addr, client(&pki.root, Some(&impostor), &[]))
        .await
        .unwrap();
    let (raw, err) = exchange(&mut tls, &get("/healthz", "")).await;
    assert!(raw.is_empty(), "HTTP bytes leaked: {raw:?}");
    assert!(
        matches!(rustls_error(&err.unwrap()), rustls::Error::AlertReceived(_)),
        "refused with an alert"
    );
    // A domain without a bundle: refused.
    let stranger = Ca::root("stranger")
        .unwrap()
        .issue(&LeafSpec::spiffe("spiffe://stranger.example/ns/x/sa/y"))
        .unwrap();
    let mut tls = tls_connect(server.addr, client(&pki.root, Some(&stranger), &[]))
        .await
        .unwrap();
    let (raw, err) = exchange(&mut tls, &get("/healthz", "")).await;
    assert!(raw.is_empty());
    assert!(err.is_some());
    server.stop().await;
}
