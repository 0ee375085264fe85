//! The HTTP layer of a peer: responses, silence, endless and stalled bodies via hyper;
//! the misbehaviours hyper refuses to produce (raw bytes, endless headers, an immediate
//! GOAWAY) written by hand.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use super::HttpBehavior;
use super::conn::linger_close;
use super::response::{Body, Response};
use super::scope::Scope;

/// The largest request head read before a hand-written answer.
const MAX_HEAD: usize = 64 * 1024;

/// What the byte stream carries, as negotiated.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) enum Proto {
    /// HTTP/1.1 (TLS without ALPN `h2`).
    H1,
    /// HTTP/2 (ALPN `h2`).
    H2,
    /// Plaintext: HTTP/1.1, or HTTP/2 with prior knowledge, detected by hyper.
    Auto,
}

/// Anything a peer can serve HTTP on: a `TcpStream` or a server `TlsStream`.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Serves one connection with `http`.
///
/// Misbehaviours that only exist in HTTP/1.1 (`Raw`, `EndlessHeaders`) are written as
/// HTTP/1.1 whatever was negotiated (an HTTP/2 client then sees a protocol error), and
/// `H2Goaway` is written as HTTP/2 frames whatever was negotiated. Give such peers the
/// ALPN that matches if the probe must get past the protocol.
pub(super) async fn serve<S: Io>(mut io: S, proto: Proto, http: &HttpBehavior, scope: &Scope) {
    match http {
        HttpBehavior::Respond(rsp) => {
            serve_hyper(io, proto, Reply::Respond(Arc::new(rsp.clone())), scope).await;
        }
        HttpBehavior::Silent => serve_hyper(io, proto, Reply::Silent, scope).await,
        HttpBehavior::CloseAfterHandshake => linger_close(io).await,
        HttpBehavior::Raw(bytes) => {
            if read_head(&mut io).await && io.write_all(bytes).await.is_ok() {
                linger_close(io).await;
            }
        }
        HttpBehavior::EndlessHeaders => {
            if read_head(&mut io).await {
                endless_headers(&mut io).await;
            }
        }
        HttpBehavior::EndlessBody => serve_hyper(io, proto, Reply::EndlessBody, scope).await,
        HttpBehavior::HalfResponse => serve_hyper(io, proto, Reply::HalfResponse, scope).await,
        HttpBehavior::Grpc(super::GrpcBehavior::Oversized(bytes)) => {
            super::grpc::serve_oversized(io, *bytes, scope).await;
        }
        HttpBehavior::Grpc(g) => super::grpc::serve(io, g, scope).await,
        HttpBehavior::H2Goaway => {
            if io.write_all(&SETTINGS_THEN_GOAWAY).await.is_ok() {
                let _ = io.flush().await;
                linger_close(io).await;
            }
        }
    }
}

/// What the hyper service answers.
#[derive(Clone)]
enum Reply {
    Respond(Arc<Response>),
    /// The service never completes: the request stays unanswered until the client
    /// leaves (hyper notices, on HTTP/1.1 and HTTP/2 alike, and drops the service).
    Silent,
    EndlessBody,
    HalfResponse,
}

async fn serve_hyper<S: Io>(io: S, proto: Proto, reply: Reply, scope: &Scope) {
    let service = service_fn(move |_req: hyper::Request<Incoming>| {
        let reply = reply.clone();
        async move { answer(reply).await }
    });
    let io = TokioIo::new(io);
    let result = match proto {
        Proto::H1 => hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await
            .map_err(Into::into),
        Proto::H2 => hyper::server::conn::http2::Builder::new(scope.clone())
            .serve_connection(io, service)
            .await
            .map_err(Into::into),
        Proto::Auto => {
            hyper_util::server::conn::auto::Builder::new(scope.clone())
                .serve_connection(io, service)
                .await
        }
    };
    if let Err(error) = result {
        debug!(%error, "peer HTTP connection ended");
    }
}

async fn answer(reply: Reply) -> Result<hyper::Response<Body>, Infallible> {
    Ok(match reply {
        Reply::Respond(rsp) => rsp.to_hyper(),
        Reply::Silent => std::future::pending().await,
        Reply::EndlessBody => {
            // No content-length: HTTP/1.1 goes chunked, HTTP/2 sends DATA forever.
            let mut rsp = hyper::Response::new(Endless.boxed());
            rsp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/octet-stream"),
            );
            rsp
        }
        Reply::HalfResponse => {
            let mut rsp = hyper::Response::new(Half { sent: false }.boxed());
            rsp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain"),
            );
            rsp
        }
    })
}

/// A body that never ends. Back-pressure comes from the socket, and tokio's cooperative
/// budget on socket writes keeps the loop from starving other tasks.
struct Endless;

static ENDLESS_CHUNK: [u8; 16 * 1024] = [b'x'; 16 * 1024];

impl hyper::body::Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ENDLESS_CHUNK)))))
    }
}

/// Promises 1000 bytes, sends 10, then stalls until the client leaves.
struct Half {
    sent: bool,
}

impl hyper::body::Body for Half {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent {
            // Never woken: the stream ends only when the client or the server leaves.
            return Poll::Pending;
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"0123456789")))))
    }

    fn size_hint(&self) -> SizeHint {
        // hyper turns the exact hint into `content-length: 1000`.
        SizeHint::with_exact(1000)
    }
}

/// An empty SETTINGS frame, then GOAWAY(last-stream-id 0, NO_ERROR): the server is
/// draining and refuses every stream, as an Envoy or gRPC server at max connection age
/// does (RFC 9113 §6.5, §6.8).
const SETTINGS_THEN_GOAWAY: [u8; 26] = [
    0, 0, 0, 0x4, 0, 0, 0, 0, 0, // SETTINGS: length 0, type 4, flags 0, stream 0
    0, 0, 8, 0x7, 0, 0, 0, 0, 0, // GOAWAY: length 8, type 7, flags 0, stream 0
    0, 0, 0, 0, // last stream id 0
    0, 0, 0, 0, // error code NO_ERROR
];

/// `HTTP/1.1 200 OK` and then header lines, forever (until the client leaves).
async fn endless_headers<S: Io>(io: &mut S) {
    if io.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
        return;
    }
    let mut line = Vec::with_capacity(128);
    for n in 0u64.. {
        line.clear();
        line.extend_from_slice(format!("x-endless-{n}: ").as_bytes());
        line.extend_from_slice(&ENDLESS_CHUNK[..64]);
        line.extend_from_slice(b"\r\n");
        if io.write_all(&line).await.is_err() {
            return;
        }
    }
}

/// Reads until the end of a request head (`\r\n\r\n`) or `MAX_HEAD` bytes; `false` when
/// the client left first.
async fn read_head<S: AsyncRead + Unpin>(io: &mut S) -> bool {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    loop {
        let n = match io.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        // Look for the terminator across the chunk boundary too.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if head[from..].windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= MAX_HEAD {
            return true;
        }
    }
}
