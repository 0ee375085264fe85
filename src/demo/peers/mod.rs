//! The broken peers: one real loopback server per failure class (SPEC §9).
//!
//! `mtls-prober demo` and the integration tests run the same servers, so the demo shows
//! exactly the failures the tests prove. Every server binds `127.0.0.1:0` before
//! [`spawn`] returns (the bind is the readiness signal: connect at once, never sleep),
//! serves each connection on a task of its own, and stops everything when its
//! [`PeerServer`] is dropped.
//!
//! The servers are real: rustls for TLS (its alerts are the alerts a probe must
//! classify), hyper for HTTP (also for silence, endless and stalled bodies), tonic for
//! gRPC, and
//! hand-written bytes only for what no correct stack would send (a reset after the
//! ClientHello, a bogus status line, endless headers, an immediate GOAWAY).

mod conn;
mod grpc;
mod http;
mod response;
mod scope;
#[cfg(test)]
mod tests;
mod tls;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

pub use self::grpc::GrpcBehavior;
pub use self::response::Response;
use self::scope::Scope;
pub use self::tls::{ClientAuth, ServerOpts, server_config};

/// A running server; dropping it stops the accept loop and every open connection.
pub struct PeerServer {
    addr: SocketAddr,
    scope: Scope,
    open: watch::Receiver<usize>,
    accepted: Arc<std::sync::atomic::AtomicU64>,
    // Sockets that make the behaviour and must live exactly as long as the server: the
    // never-accepting listener and the connections that fill its queue, or the bound
    // but not listening socket that reserves a refused port.
    _listener: Option<TcpListener>,
    _fillers: Vec<TcpStream>,
    _reserved: Option<TcpSocket>,
}

impl PeerServer {
    /// The address to probe (always on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The number of connections the server holds open right now, as a watch: wait on
    /// it (`wait_for(|n| *n == 0)`) to see a departed client released, without sleeping.
    pub fn open_connections(&self) -> watch::Receiver<usize> {
        self.open.clone()
    }

    /// How many connections the server has accepted since it started (the server-side
    /// count of probes made against it).
    pub fn accepted(&self) -> u64 {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn new(
        addr: SocketAddr,
        scope: Scope,
        open: watch::Receiver<usize>,
        accepted: Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        Self {
            addr,
            scope,
            open,
            accepted,
            _listener: None,
            _fillers: Vec::new(),
            _reserved: None,
        }
    }

    /// A server without tasks: its behaviour is made by the sockets it holds.
    fn holding(
        addr: SocketAddr,
        listener: Option<TcpListener>,
        fillers: Vec<TcpStream>,
        reserved: Option<TcpSocket>,
    ) -> Self {
        Self {
            addr,
            scope: Scope::default(),
            open: watch::channel(0).1,
            accepted: Arc::default(),
            _listener: listener,
            _fillers: fillers,
            _reserved: reserved,
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.scope.close();
    }
}

impl fmt::Debug for PeerServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerServer")
            .field("addr", &self.addr)
            .field("open_connections", &*self.open.borrow())
            .finish_non_exhaustive()
    }
}

/// How a peer treats each connection.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// TLS with this config; after the handshake serve HTTP with `http` (HTTP/2 when
    /// ALPN negotiated `h2`, else HTTP/1.1; no ALPN = HTTP/1.1). A failed handshake gets
    /// rustls' alert, then FIN.
    Tls {
        /// The server config (see [`server_config`]).
        config: Arc<rustls::ServerConfig>,
        /// What to do once the handshake is done.
        http: HttpBehavior,
    },
    /// Istio PERMISSIVE: TLS (as [`Behavior::Tls`]) when the first byte is 0x16 (a
    /// handshake record), plaintext HTTP with the same `http` otherwise. The first byte
    /// is peeked, not consumed.
    Permissive {
        /// The server config used when the client starts a handshake.
        config: Arc<rustls::ServerConfig>,
        /// What to do with requests, over TLS or not.
        http: HttpBehavior,
    },
    /// Plain HTTP only: a workload without a sidecar (HTTP/1.1, or HTTP/2 with prior
    /// knowledge).
    Plaintext {
        /// What to do with requests.
        http: HttpBehavior,
    },
    /// Accepts TCP, never reads or writes, holds the connection until the client leaves
    /// (a NetworkPolicy that drops after the SYN-ACK, a hung process).
    Blackhole,
    /// Reads the client's first TLS record (the ClientHello) and then acts.
    AfterClientHello(RawAction),
}

/// What an [`Behavior::AfterClientHello`] peer does once the ClientHello is in.
#[derive(Clone, Debug)]
pub enum RawAction {
    /// FIN without any byte (`peer_closed`).
    Close,
    /// RST: SO_LINGER 0, then close (`peer_closed`).
    Reset,
    /// Writes these bytes, then closes (e.g. an HTTP answer: `not_tls`).
    Send(Vec<u8>),
    /// Writes these bytes, then holds the connection silently.
    SendAndHold(Vec<u8>),
    /// Writes one byte every `every` (slowloris; `handshake_timeout`), then holds.
    Trickle {
        /// The bytes to trickle.
        bytes: Vec<u8>,
        /// The pause between two bytes.
        every: Duration,
    },
}

/// What a peer does at the HTTP layer (after TLS, or directly for plaintext).
#[derive(Clone, Debug)]
pub enum HttpBehavior {
    /// Every request gets this response.
    Respond(Response),
    /// Reads requests, never answers (`request_timeout`).
    Silent,
    /// Closes right after the TLS handshake, or on accept for plaintext: close_notify
    /// (TLS), FIN, no byte of HTTP (`connection_closed`; a TCP-level authorization deny).
    CloseAfterHandshake,
    /// Reads the request head, writes these raw bytes, closes (e.g. an invalid status
    /// line: `protocol_error`). Always HTTP/1.1-shaped, whatever ALPN said.
    Raw(Vec<u8>),
    /// `HTTP/1.1 200 OK` and an unending stream of header lines (`protocol_error`).
    /// Always HTTP/1.1-shaped, whatever ALPN said.
    EndlessHeaders,
    /// 200 without content-length and body bytes forever: chunked on HTTP/1.1, DATA
    /// frames on HTTP/2 (`protocol_error`, oversized).
    EndlessBody,
    /// 200 with `content-length: 1000`, 10 body bytes, then a stall until the client
    /// leaves (`request_timeout`).
    HalfResponse,
    /// An empty SETTINGS then GOAWAY(last stream 0, NO_ERROR) at once, then close: every
    /// HTTP/2 request is refused. Always HTTP/2 frames, whatever ALPN said.
    H2Goaway,
    /// A gRPC server (HTTP/2 only, whatever ALPN said) answering
    /// `grpc.health.v1.Health/Check` as described.
    Grpc(GrpcBehavior),
}

/// Binds 127.0.0.1:0, then spawns the accept loop (the bind is the readiness signal: a
/// client may connect as soon as this returns). Must be called inside a tokio runtime.
pub async fn spawn(behavior: Behavior) -> io::Result<PeerServer> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let scope = Scope::default();
    let (open_tx, open_rx) = watch::channel(0);
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    scope.spawn(conn::accept_loop(
        listener,
        Arc::new(behavior),
        scope.clone(),
        open_tx,
        accepted.clone(),
    ));
    Ok(PeerServer::new(addr, scope, open_rx, accepted))
}

/// How long a loopback connect may take before the accept queue counts as full. A
/// loopback handshake is answered by the kernel in microseconds; this only has to be
/// longer than a scheduling hiccup on a loaded machine.
const QUEUE_FULL_AFTER: Duration = Duration::from_millis(150);

/// Connections tried before giving up on filling the accept queue.
const MAX_FILLERS: usize = 8;

/// A listener whose accept queue is full, so further SYNs are dropped and a connect
/// times out (`connect_timeout` on loopback, without any non-loopback traffic).
///
/// The listener has a backlog of 0 and never accepts; the server itself connects until
/// a connect no longer completes (Linux drops a SYN when the accept queue is full, and
/// the client retransmits it for minutes). Takes about [`QUEUE_FULL_AFTER`] to return.
pub async fn spawn_full_backlog() -> io::Result<PeerServer> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0).into())?;
    let listener = socket.listen(0)?;
    let addr = listener.local_addr()?;
    let mut fillers = Vec::new();
    for _ in 0..MAX_FILLERS {
        match tokio::time::timeout(QUEUE_FULL_AFTER, TcpStream::connect(addr)).await {
            Ok(Ok(filler)) => fillers.push(filler),
            Ok(Err(error)) => return Err(error),
            Err(_elapsed) => {
                return Ok(PeerServer::holding(addr, Some(listener), fillers, None));
            }
        }
    }
    Err(io::Error::other(format!(
        "the accept queue of {addr} took {MAX_FILLERS} connections without filling"
    )))
}

/// An address where nothing listens (`connection_refused`): a port that was free a
/// moment ago. Another program may take the port later; the demo, which runs for long,
/// should prefer [`spawn_refused`].
pub fn refused_addr() -> io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    listener.local_addr()
}

/// A refused port that stays refused: the port is bound but not listening, so the
/// kernel answers every SYN with RST and no one else can take it while the server lives.
pub fn spawn_refused() -> io::Result<PeerServer> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0).into())?;
    let addr = socket.local_addr()?;
    Ok(PeerServer::holding(addr, None, Vec::new(), Some(socket)))
}
