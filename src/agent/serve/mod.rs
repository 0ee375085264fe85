//! The `[serve]` listener: this agent as an mTLS target for its peers (SPEC §3, §7).
//!
//! Every agent presents its own workload certificate and answers `GET /healthz` with
//! how it saw the connection (its own SPIFFE ID, the client's verified SPIFFE ID, and
//! the identity headers a sidecar may have added). With `[[discover]]` pointing at the
//! agents' headless Service, a DaemonSet probes itself node to node.
//!
//! The listener is reachable from the whole cluster, so it is built to be cheap to
//! abuse: every stage is bounded in time and size ([`Limits`]), requests are never
//! read past their head, and a client refused by TLS gets the alert and nothing else.
//! Identity rotation swaps the rustls configuration for new connections only.

mod healthz;
mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::crypto::CryptoProvider;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::config::ClientAuth;
use crate::identity::Credentials;
use crate::identity::spiffe::SpiffeId;
use crate::tls::peer::CertSummary;
pub use healthz::{HEALTHZ_PATH, L5D_CLIENT_ID, MAX_ECHOED_HEADER_BYTES, XFCC, healthz_response};
use tls::Snapshot;

/// Bounds on what one client (or many) can make the listener hold.
#[derive(Clone, Debug)]
pub struct Limits {
    /// From accept to a finished TLS handshake; a client that stalls is dropped.
    pub handshake_timeout: Duration,
    /// HTTP/1: from the start of a request head (or of idleness between keep-alive
    /// requests) to its last byte.
    pub header_read_timeout: Duration,
    /// Hard cap on a connection's life, from accept; then it is shut down gracefully.
    pub max_connection_lifetime: Duration,
    /// Connections held at once (in handshake or serving). Beyond it, a new connection
    /// is accepted and closed at once, so the backlog does not fill up with clients
    /// that will never be served.
    pub max_connections: usize,
    /// HTTP/1 read buffer, which bounds the request head (hyper answers 431 beyond it).
    /// Raised to hyper's minimum of 8 KiB if set lower.
    pub max_h1_buf_size: usize,
    /// HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE` (the h2 crate answers 431 beyond it).
    pub max_h2_header_list_size: u32,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`.
    pub max_h2_concurrent_streams: u32,
    /// After shutdown (of the listener or of a connection at the end of its life), how
    /// long requests in flight get to finish before the connection is dropped.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_connection_lifetime: Duration::from_secs(60),
            max_connections: 256,
            max_h1_buf_size: 16 * 1024,
            max_h2_header_list_size: 16 * 1024,
            max_h2_concurrent_streams: 8,
            shutdown_grace: Duration::from_secs(1),
        }
    }
}

/// Serves `GET /healthz` over TLS with the agent's identity until `shutdown` resolves,
/// with the default [`Limits`].
///
/// `creds` is followed for rotations: a new value is turned into a new TLS
/// configuration as it arrives, and connections accepted from then on use it. While
/// the certificate or the trust bundle is unavailable, connections are accepted and
/// closed (the problem is logged once per distinct message). With
/// [`ClientAuth::Require`] a client must present a certificate chaining to the bundle;
/// with [`ClientAuth::Optional`] it may present none, but one that it presents must be
/// valid.
///
/// When `shutdown` resolves the listener is closed, connections get
/// [`Limits::shutdown_grace`] to finish, and the rest are dropped.
pub async fn run(
    listener: TcpListener,
    client_auth: ClientAuth,
    source: String,
    creds: watch::Receiver<Arc<Credentials>>,
    shutdown: impl Future<Output = ()> + Send,
) {
    run_with_limits(
        listener,
        client_auth,
        source,
        creds,
        Limits::default(),
        shutdown,
    )
    .await;
}

/// [`run`] with explicit [`Limits`].
pub async fn run_with_limits(
    listener: TcpListener,
    client_auth: ClientAuth,
    source: String,
    mut creds: watch::Receiver<Arc<Credentials>>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, ?client_auth, "serve: listening for peer probes");
    }
    let shared = Arc::new(Shared {
        source: Arc::from(source),
        http: http_builders(&limits),
        limits,
    });
    let mut tls = TlsState {
        client_auth,
        provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        current: Err(String::new()),
        last_problem: None,
    };
    tls.refresh(&mut creds);

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut watching = true;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            changed = creds.changed(), if watching => match changed {
                // Built here, as soon as it changes, not when the next client arrives.
                Ok(()) => tls.refresh(&mut creds),
                // The sender is gone (agent shutting down): keep the last snapshot.
                Err(_) => watching = false,
            },
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => {
                    // A client that connects right after a rotation was published must
                    // see it, even if this branch won the race against `changed()`.
                    if creds.has_changed().unwrap_or(false) {
                        tls.refresh(&mut creds);
                    }
                    while conns.try_join_next().is_some() {}
                    if conns.len() >= shared.limits.max_connections {
                        debug!("serve: connection limit reached, closing a new connection");
                        drop(tcp);
                        continue;
                    }
                    let Ok(snapshot) = &tls.current else {
                        // Logged once in `refresh`; a close is all the client learns.
                        drop(tcp);
                        continue;
                    };
                    let conn = Connection {
                        snapshot: snapshot.clone(),
                        shared: shared.clone(),
                        stop: stop_rx.clone(),
                    };
                    conns.spawn(conn.serve(tcp));
                }
                Err(error) => {
                    // Per-connection accept errors and fd exhaustion alike: log and go
                    // on, after a pause so a persistent error cannot spin a core.
                    debug!(%error, "serve: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }

    drop(listener);
    let _ = stop_tx.send(true);
    let drained = timeout(shared.limits.shutdown_grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        debug!(
            left = conns.len(),
            "serve: dropping connections after the grace period"
        );
        conns.shutdown().await;
    }
    info!("serve: stopped");
}

/// What every connection task shares.
struct Shared {
    source: Arc<str>,
    limits: Limits,
    http: HttpBuilders,
}

/// The current TLS configuration and the problem last logged.
struct TlsState {
    client_auth: ClientAuth,
    provider: Arc<CryptoProvider>,
    current: Result<Arc<Snapshot>, String>,
    last_problem: Option<String>,
}

impl TlsState {
    /// Rebuilds from the latest credentials; logs a problem only when it differs from
    /// the last one logged, so a reload loop on broken files does not flood the log.
    fn refresh(&mut self, creds: &mut watch::Receiver<Arc<Credentials>>) {
        let latest = creds.borrow_and_update().clone();
        match tls::snapshot(&latest, self.client_auth, &self.provider) {
            Ok(snapshot) => {
                let changed = match &self.current {
                    Ok(old) => old.serial != snapshot.serial,
                    Err(_) => true,
                };
                if self.last_problem.take().is_some() || changed {
                    info!(
                        serial = %snapshot.serial,
                        spiffe_id = snapshot.spiffe_id.as_deref().unwrap_or("(none)"),
                        "serve: accepting connections with this certificate"
                    );
                }
                self.current = Ok(Arc::new(snapshot));
            }
            Err(problem) => {
                if self.last_problem.as_ref() != Some(&problem) {
                    warn!(%problem, "serve: refusing connections until the identity is usable");
                    self.last_problem = Some(problem.clone());
                }
                self.current = Err(problem);
            }
        }
    }
}

/// hyper's smallest allowed HTTP/1 buffer (it asserts on anything less).
const MIN_H1_BUF_SIZE: usize = 8192;

/// The HTTP connection builders, one per ALPN outcome.
struct HttpBuilders {
    /// ALPN `h2`: HTTP/2 only.
    h2: auto::Builder<TokioExecutor>,
    /// ALPN `http/1.1`: HTTP/1.1 only.
    h1: auto::Builder<TokioExecutor>,
    /// No ALPN (e.g. `openssl s_client` without `-alpn`): detected from the preface.
    detect: auto::Builder<TokioExecutor>,
}

fn http_builders(limits: &Limits) -> HttpBuilders {
    let mut detect = auto::Builder::new(TokioExecutor::new());
    detect
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_h1_buf_size.max(MIN_H1_BUF_SIZE));
    detect
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_h2_header_list_size)
        .max_concurrent_streams(limits.max_h2_concurrent_streams)
        // Request bodies are never read, so there is no reason to let a client park
        // more than the protocol minimum of DATA in our buffers.
        .initial_connection_window_size(65_535)
        .initial_stream_window_size(16 * 1024);
    HttpBuilders {
        h2: detect.clone().http2_only(),
        h1: detect.clone().http1_only(),
        detect,
    }
}

/// One accepted connection and what it needs.
struct Connection {
    snapshot: Arc<Snapshot>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
}

impl Connection {
    /// TLS, then HTTP until the client leaves, the lifetime cap, or shutdown.
    async fn serve(mut self, tcp: TcpStream) {
        let limits = &self.shared.limits;
        let end_of_life = Instant::now() + limits.max_connection_lifetime;
        let _ = tcp.set_nodelay(true);

        let acceptor = TlsAcceptor::from(self.snapshot.config.clone());
        let handshake = timeout(
            limits.handshake_timeout.min(limits.max_connection_lifetime),
            acceptor.accept(tcp).into_fallible(),
        );
        let tls = tokio::select! {
            result = handshake => match result {
                Ok(Ok(tls)) => tls,
                Ok(Err((error, tcp))) => {
                    // rustls has already written its alert (if any); nothing else is
                    // sent: no HTTP response, no hint beyond the alert.
                    debug!(%error, "serve: TLS handshake failed");
                    tokio::select! {
                        () = close_refused(tcp) => {}
                        () = stopped(&mut self.stop) => {}
                    }
                    return;
                }
                Err(_) => {
                    debug!("serve: TLS handshake timed out");
                    return;
                }
            },
            () = stopped(&mut self.stop) => return,
        };

        let session = &tls.get_ref().1;
        let peer_spiffe_id = verified_peer_spiffe_id(session.peer_certificates());
        let builder = match session.alpn_protocol() {
            Some(b"h2") => &self.shared.http.h2,
            Some(_) => &self.shared.http.h1,
            None => &self.shared.http.detect,
        };

        let source = self.shared.source.clone();
        let own = self.snapshot.spiffe_id.clone();
        let service = service_fn(move |req: hyper::Request<Incoming>| {
            // The body is never polled: a GET has none, and anything a client sends
            // anyway stays in (bounded) transport buffers until the connection ends.
            let rsp = healthz_response(
                req.method(),
                req.uri().path(),
                req.headers(),
                &source,
                own.as_deref(),
                peer_spiffe_id.as_deref(),
            );
            std::future::ready(Ok::<_, Infallible>(rsp.map(Full::new)))
        });
        let conn = builder.serve_connection(TokioIo::new(tls), service);
        tokio::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    debug!(%error, "serve: HTTP connection ended with an error");
                }
                return;
            }
            () = sleep_until(end_of_life) => debug!("serve: connection reached its lifetime cap"),
            () = stopped(&mut self.stop) => {}
        }
        // HTTP/1: finish the request in flight, then close; HTTP/2: GOAWAY.
        conn.as_mut().graceful_shutdown();
        let _ = timeout(limits.shutdown_grace, conn).await;
    }
}

/// Resolves when the listener shuts down (or its controller is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The SPIFFE ID of a client certificate that the handshake verified. rustls only
/// completes a handshake with peer certificates after the client verifier accepted
/// them, so any certificate seen here is verified. `None` without a certificate, and
/// also when its URI SAN is not a well-formed SPIFFE ID (which also bounds its length).
fn verified_peer_spiffe_id(
    certs: Option<&[rustls_pki_types::CertificateDer<'static>]>,
) -> Option<Arc<str>> {
    let leaf = certs?.first()?;
    let id = CertSummary::parse(leaf).ok()?.spiffe_id?;
    id.parse::<SpiffeId>().ok()?;
    Some(Arc::from(id))
}

/// Closes a connection refused by TLS so that its alert arrives: FIN, then read and
/// discard briefly. Closing with unread bytes (the client's first request, written
/// right after its Finished) would make the kernel send RST, and a RST can destroy the
/// alert before the client reads it.
async fn close_refused(mut tcp: TcpStream) {
    const LINGER: Duration = Duration::from_secs(1);
    const MAX_DISCARD: usize = 64 * 1024;
    let _ = tcp.shutdown().await;
    let _ = timeout(LINGER, async {
        let mut buf = [0u8; 4096];
        let mut seen = 0;
        while seen < MAX_DISCARD {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen += n,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests;
