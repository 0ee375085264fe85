//! Each behaviour proven from the client side with plain clients (raw TCP, tokio-rustls,
//! hyper), not with the prober: these tests pin what the prober will be up against.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{AlertDescription, ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::*;
use crate::demo::pki::{Ca, KeyAlg, Leaf, LeafSpec};

mod http;
mod tcp;
mod tls;

/// Long enough for anything on loopback; a test that waits this long has failed.
const BOUND: Duration = Duration::from_secs(1);
/// How long "nothing arrives" is watched.
const QUIET: Duration = Duration::from_millis(200);

const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
const FAKE_CLIENT_HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00];

struct Pki {
    root: Ca,
    server: Leaf,
    client: Leaf,
}

fn pki() -> Pki {
    let root = Ca::root("peers test root").unwrap();
    let server = root
        .issue(&LeafSpec::spiffe("spiffe://cluster.local/ns/demo/sa/server").with_dns("localhost"))
        .unwrap();
    let client = root
        .issue(&LeafSpec::spiffe(
            "spiffe://cluster.local/ns/demo/sa/prober",
        ))
        .unwrap();
    Pki {
        root,
        server,
        client,
    }
}

fn strict(pki: &Pki, opts: &ServerOpts) -> Arc<rustls::ServerConfig> {
    server_config(
        &pki.server,
        ClientAuth::Required(vec![pki.root.cert().clone()]),
        opts,
    )
    .unwrap()
}

fn client(pki: &Pki, cert: Option<&Leaf>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.root.cert().clone()).unwrap();
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

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

async fn tls_connect(
    server: &PeerServer,
    config: Arc<ClientConfig>,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(server.addr()).await?;
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

/// Status, lowercased headers, body of a raw HTTP/1.1 response.
fn parse(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of head");
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

fn rustls_error(e: &io::Error) -> &rustls::Error {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {e:?}"))
}

async fn assert_quiet<S: AsyncRead + Unpin>(io: &mut S) {
    let mut buf = [0u8; 64];
    let r = timeout(QUIET, io.read(&mut buf)).await;
    assert!(r.is_err(), "expected silence, got {r:?}");
}

async fn ok_plaintext(addr: SocketAddr) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let (raw, err) = exchange(&mut tcp, GET).await;
    assert!(err.is_none(), "{err:?}");
    raw
}

async fn after_hello(action: RawAction) -> (PeerServer, TcpStream) {
    let server = spawn(Behavior::AfterClientHello(action)).await.unwrap();
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(FAKE_CLIENT_HELLO).await.unwrap();
    (server, tcp)
}

/// Waits until only the accept loop is left: every connection task and every HTTP/2
/// stream task ended after its client left. Yields instead of sleeping; bounded.
async fn assert_released(server: &PeerServer) {
    let mut open = server.open_connections();
    timeout(BOUND, open.wait_for(|n| *n == 0))
        .await
        .expect("a connection outlived its client")
        .unwrap();
    timeout(BOUND, async {
        while server.scope.live_tasks() > 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a task outlived its client");
}
