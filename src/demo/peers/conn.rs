//! Per-connection behaviour below HTTP: the accept loop, TLS, PERMISSIVE sniffing, the
//! blackhole, the raw actions after a ClientHello, and how a peer closes.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use super::http::{self, Proto};
use super::scope::Scope;
use super::{Behavior, HttpBehavior, RawAction};

/// How long a closing peer keeps reading after its FIN (see [`linger_close`]).
const LINGER: Duration = Duration::from_secs(5);

/// The largest TLS record (TLSCiphertext: 2^14 + 2048) read as "the ClientHello".
const MAX_RECORD: usize = 16384 + 2048;

/// Accepts forever; every connection runs on a task of its own in `scope`, so a stuck
/// connection never blocks the accept loop.
pub(super) async fn accept_loop(
    listener: TcpListener,
    behavior: Arc<Behavior>,
    scope: Scope,
    open: watch::Sender<usize>,
    accepted: Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        match listener.accept().await {
            Ok((tcp, _peer)) => {
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                // Trickled bytes and tiny answers must leave at once.
                let _ = tcp.set_nodelay(true);
                // Counted before the spawn: a client that connected is visible at once.
                let guard = OpenGuard::new(open.clone());
                let behavior = behavior.clone();
                let conn_scope = scope.clone();
                scope.spawn(async move {
                    let _guard = guard;
                    handle(tcp, &behavior, &conn_scope).await;
                });
            }
            Err(error) => {
                // Per-connection failures (aborted handshakes) and fd exhaustion alike:
                // log and go on. A short back-off (not a synchronisation) keeps fd
                // exhaustion from turning this loop into a busy spin.
                debug!(%error, "peer accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Counts a connection as open for as long as it lives (also when its task is aborted).
struct OpenGuard(watch::Sender<usize>);

impl OpenGuard {
    fn new(open: watch::Sender<usize>) -> Self {
        open.send_modify(|n| *n += 1);
        Self(open)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

async fn handle(tcp: TcpStream, behavior: &Behavior, scope: &Scope) {
    match behavior {
        Behavior::Tls { config, http } => serve_tls(tcp, config.clone(), http, scope).await,
        Behavior::Permissive { config, http } => {
            // Istio's listener sniffs with a TLS inspector: a handshake record (0x16)
            // goes to the mTLS filter chain, anything else to the plaintext one.
            let mut first = [0u8; 1];
            match tcp.peek(&mut first).await {
                Ok(0) | Err(_) => {}
                Ok(_) if first[0] == 0x16 => serve_tls(tcp, config.clone(), http, scope).await,
                Ok(_) => http::serve(tcp, Proto::Auto, http, scope).await,
            }
        }
        Behavior::Plaintext { http } => http::serve(tcp, Proto::Auto, http, scope).await,
        Behavior::Blackhole => wait_for_departure(&tcp).await,
        Behavior::AfterClientHello(action) => after_client_hello(tcp, action).await,
    }
}

/// TLS handshake, then HTTP chosen by ALPN (`h2` → HTTP/2, else HTTP/1.1). A failed
/// handshake is closed the way rustls leaves it: its alert (if any) was already written
/// by tokio-rustls, then FIN.
async fn serve_tls(tcp: TcpStream, config: Arc<ServerConfig>, http: &HttpBehavior, scope: &Scope) {
    match TlsAcceptor::from(config).accept(tcp).into_fallible().await {
        Ok(tls) => {
            let proto = if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                Proto::H2
            } else {
                Proto::H1
            };
            http::serve(tls, proto, http, scope).await;
        }
        Err((error, tcp)) => {
            debug!(%error, "peer TLS handshake failed");
            linger_close(tcp).await;
        }
    }
}

/// Reads the first TLS record, then does `action`. A client that leaves before a whole
/// record arrived is simply let go.
async fn after_client_hello(mut tcp: TcpStream, action: &RawAction) {
    if read_first_record(&mut tcp).await.is_err() {
        return;
    }
    match action {
        RawAction::Close => linger_close(tcp).await,
        RawAction::Reset => {
            // SO_LINGER 0: close() discards the socket with a RST instead of a FIN.
            if let Err(error) = tcp.set_zero_linger() {
                debug!(%error, "SO_LINGER 0 failed; closing with FIN");
            }
            drop(tcp);
        }
        RawAction::Send(bytes) => {
            if tcp.write_all(bytes).await.is_ok() {
                linger_close(tcp).await;
            }
        }
        RawAction::SendAndHold(bytes) => {
            if tcp.write_all(bytes).await.is_ok() {
                drain(&mut tcp).await;
            }
        }
        RawAction::Trickle { bytes, every } => {
            for (i, byte) in bytes.iter().enumerate() {
                if i > 0 {
                    // The one sleep of the module: trickling is the behaviour under test.
                    tokio::time::sleep(*every).await;
                }
                if tcp.write_all(std::slice::from_ref(byte)).await.is_err() {
                    return;
                }
            }
            drain(&mut tcp).await;
        }
    }
}

/// Reads one TLS record (header + declared length, capped). If the first byte is not a
/// handshake record the client is not speaking TLS: act after the 5-byte header rather
/// than wait for a "length" made of ASCII.
async fn read_first_record(tcp: &mut TcpStream) -> io::Result<()> {
    let mut header = [0u8; 5];
    tcp.read_exact(&mut header).await?;
    if header[0] != 0x16 {
        return Ok(());
    }
    let len = usize::from(u16::from_be_bytes([header[3], header[4]])).min(MAX_RECORD);
    let mut body = vec![0u8; len];
    tcp.read_exact(&mut body).await?;
    Ok(())
}

/// Waits until the client closes or resets, without reading a byte: the blackhole never
/// consumes what the client sends, yet a departed client's socket is released.
async fn wait_for_departure(tcp: &TcpStream) {
    loop {
        match tcp.ready(Interest::READABLE).await {
            // FIN or RST (EPOLLRDHUP / EPOLLHUP); the flag is sticky.
            Ok(ready) if ready.is_read_closed() => return,
            Ok(_) => {
                // Data arrived. Leave it unread and forget this readiness event, so the
                // next wake-up is new data or the client leaving, not a busy loop.
                let _ = tcp.try_io(Interest::READABLE, || {
                    Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
                });
            }
            Err(_) => return,
        }
    }
}

/// Closes like a well-behaved server: FIN (after close_notify on TLS), then keeps
/// reading for a while. Closing with unread bytes in the receive buffer makes the
/// kernel send RST instead of FIN, and a RST can destroy the alert or response the
/// client has not read yet; lingering keeps "closed" and "reset" apart for the prober.
pub(super) async fn linger_close<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) {
    let _ = io.shutdown().await;
    let _ = tokio::time::timeout(LINGER, drain(&mut io)).await;
}

/// Reads and discards until the client closes (or the connection fails).
async fn drain<S: AsyncRead + Unpin>(io: &mut S) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = io.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}
