//! `load --server`: the target of every scenario, in a process of its own (pinned to
//! its own core by the parent), so its handshake CPU is never counted as the client's.
//!
//! Three loopback listeners: `healthy` (TLS 1.3, X25519, ECDSA P-256, client
//! certificate required, `GET /healthz` → 200 over HTTP/1.1), `watched` (the same, and
//! it records when each connection arrives, to measure one edge's schedule lag from
//! outside the agent), and `blackhole` (accepts TCP, never answers). It stops when its
//! stdin closes or after `--max-secs`, whichever comes first.

use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::pki;

/// Runs the server until stdin closes; prints `ready healthy=A watched=A blackhole=A`.
pub fn main(files_dir: &str, max_secs: u64) -> Result<(), String> {
    let files = pki::Files {
        ca: format!("{files_dir}/root.pem").into(),
        server_cert: format!("{files_dir}/server-chain.pem").into(),
        server_key: format!("{files_dir}/server-key.pem").into(),
        client_cert: format!("{files_dir}/client-chain.pem").into(),
        client_key: format!("{files_dir}/client-key.pem").into(),
    };
    let config = server_config(&files)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let started = Instant::now();
        let arrivals: Arc<Mutex<Vec<f64>>> = Arc::default();
        let acceptor = TlsAcceptor::from(config);
        let healthy = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let watched = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let blackhole = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "ready healthy={} watched={} blackhole={}",
            healthy.local_addr().map_err(|e| e.to_string())?,
            watched.local_addr().map_err(|e| e.to_string())?,
            blackhole.local_addr().map_err(|e| e.to_string())?,
        );
        tokio::spawn(serve_tls(healthy, acceptor.clone(), None, started));
        tokio::spawn(serve_tls(
            watched,
            acceptor,
            Some(arrivals.clone()),
            started,
        ));
        tokio::spawn(serve_blackhole(blackhole));
        // Commands on stdin: `arrivals` prints and clears the watched arrivals (ms since
        // start). EOF stops the server.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = tokio::time::sleep(Duration::from_secs(max_secs));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return Ok(()),
                cmd = rx.recv() => match cmd.as_deref() {
                    None => return Ok(()),
                    Some("arrivals") => {
                        let list = std::mem::take(&mut *arrivals.lock().unwrap());
                        let text: Vec<String> = list.iter().map(|t| format!("{t:.3}")).collect();
                        println!("arrivals {}", text.join(","));
                    }
                    Some(_) => println!("unknown command"),
                },
            }
        }
    })
}

fn server_config(files: &pki::Files) -> Result<Arc<ServerConfig>, String> {
    let provider = pki::provider(true);
    let mut roots = RootCertStore::empty();
    for c in pki::certs(&files.ca)? {
        roots.add(c).map_err(|e| e.to_string())?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            pki::certs(&files.server_cert)?,
            pki::key(&files.server_key)?,
        )
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Full handshakes only, like the agent's probes (SPEC §4).
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    arrivals: Option<Arc<Mutex<Vec<f64>>>>,
    started: Instant,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if let Some(a) = &arrivals {
            let mut a = a.lock().unwrap();
            if a.len() < 1_000_000 {
                a.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let service = service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                    Bytes::from_static(b"ok\n"),
                )))
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        });
    }
}

async fn serve_blackhole(listener: TcpListener) {
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        // Read and discard until the client leaves, never write: the ClientHello is
        // swallowed and the handshake never progresses.
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(120), tcp.read(&mut buf)).await
            {
                if n == 0 {
                    break;
                }
            }
        });
    }
}
