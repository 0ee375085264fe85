//! The request stage: one HTTP/1.1 or h2 request (h2 when ALPN chose it), the response
//! head, and a body read up to `max_body_bytes`. The connection is driven in the
//! probe's own task (no spawned connection task), so dropping the probe drops it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use http::header::{HOST, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, timeout_at};

use super::{Run, ms};
use crate::classify::http::{BODY_PREFIX_LEN, ResponseView, classify_response, response_refusal};
use crate::classify::net::human_ms;
use crate::classify::tls::{
    HandshakeContext, escape_bytes, find_io_error, find_rustls_error, is_tls_alert_record,
    rustls_failure, silent_refusal,
};
use crate::classify::{Failure, Reason};
use crate::config::{HttpCheck, Target};
use crate::report::HttpInfo;
use crate::tls::capture::CaptureSlot;

/// Largest response head hyper will buffer (HTTP/1.1) or accept (h2 header list).
pub(super) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How far the response got, readable after a timeout dropped the exchange.
#[derive(Default)]
pub(super) struct Progress {
    pub(super) head: AtomicBool,
    pub(super) body_bytes: AtomicU64,
}

/// Sends the request over `io` and classifies the answer.
#[allow(clippy::too_many_arguments)]
pub(super) async fn exchange<IO>(
    io: IO,
    h2: bool,
    target: &Target,
    http: &HttpCheck,
    run: &mut Run,
    app: &CaptureSlot,
    hs: HandshakeContext<'_>,
    tls: bool,
) -> Result<(), Failure>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let progress = Progress::default();
    let request = build_request(target, http, h2, tls)?;
    let result = timeout_at(
        run.deadline,
        send(
            TokioIo::new(io),
            h2,
            request,
            http.max_body_bytes,
            &progress,
        ),
    )
    .await;
    run.report.timings_ms.request = Some(ms(started.elapsed()));
    let response = match result {
        Err(_) => {
            let received = app.lock().bytes_read;
            return Err(Failure::new(
                Reason::RequestTimeout,
                if progress.head.load(Ordering::Relaxed) {
                    format!(
                        "the response body did not complete within {} ({} body bytes received)",
                        human_ms(target.timeout),
                        progress.body_bytes.load(Ordering::Relaxed)
                    )
                } else {
                    format!(
                        "no complete response head within {} ({received} bytes received)",
                        human_ms(target.timeout)
                    )
                },
            ));
        }
        Ok(Err(e)) => {
            let seen = Seen {
                silent: run.silent_since_handshake(),
                head: progress.head.load(Ordering::Relaxed),
            };
            return Err(error_failure(e, app, &hs, tls, seen));
        }
        Ok(Ok(r)) => r,
    };
    run.report.http = Some(HttpInfo::from_head(response.status, &response.headers));
    if response.json && response.status == 200 {
        run.report.far_side = super::far_side::parse(&response.body_prefix).map(Box::new);
    }
    let prefix = &response.body_prefix[..response.body_prefix.len().min(BODY_PREFIX_LEN)];
    let view = ResponseView {
        status: response.status,
        headers: &response.headers,
        body_prefix: prefix,
    };
    classify_response(&view, &http.expect_status).map_err(|mut f| {
        if let Some(refusal) = response_refusal(&view) {
            f.refused_by_peer = true;
            if !matches!(f.reason, Reason::RbacDenied) {
                f.detail = format!("{} — {refusal}", f.detail);
            }
        }
        f
    })
}

struct Response {
    status: u16,
    headers: HeaderMap,
    /// The first [`BODY_PREFIX_LEN`] bytes, or for a JSON answer the first
    /// [`far_side::MAX_BODY`](super::far_side::MAX_BODY) (the far side's view).
    body_prefix: Vec<u8>,
    /// `content-type: application/json`.
    json: bool,
}

pub(super) enum ExchangeError {
    Hyper(hyper::Error),
    BodyTooLarge(usize),
}

impl From<hyper::Error> for ExchangeError {
    fn from(e: hyper::Error) -> Self {
        Self::Hyper(e)
    }
}

async fn send<IO>(
    io: TokioIo<IO>,
    h2: bool,
    request: Request<Empty<Bytes>>,
    max_body: usize,
    progress: &Progress,
) -> Result<Response, ExchangeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Each protocol's exchange is boxed: the probe's future would otherwise be as large
    // as the larger of the two (h2's connection state) for every probe in flight.
    if h2 {
        Box::pin(send_h2(io, request, max_body, progress)).await
    } else {
        Box::pin(send_h1(io, request, max_body, progress)).await
    }
}

async fn send_h2<IO>(
    io: TokioIo<IO>,
    request: Request<Empty<Bytes>>,
    max_body: usize,
    progress: &Progress,
) -> Result<Response, ExchangeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    {
        let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .max_header_list_size(MAX_HEAD_BYTES as u32)
            .handshake(io)
            .await
            .map_err(ExchangeError::Hyper)?;
        drive(conn, async move {
            let resp = sender
                .send_request(request)
                .await
                .map_err(ExchangeError::Hyper)?;
            read(resp, max_body, progress).await
        })
        .await
    }
}

async fn send_h1<IO>(
    io: TokioIo<IO>,
    request: Request<Empty<Bytes>>,
    max_body: usize,
    progress: &Progress,
) -> Result<Response, ExchangeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    {
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(MAX_HEAD_BYTES)
            .handshake(io)
            .await
            .map_err(ExchangeError::Hyper)?;
        drive(conn, async move {
            let resp = sender
                .send_request(request)
                .await
                .map_err(ExchangeError::Hyper)?;
            read(resp, max_body, progress).await
        })
        .await
    }
}

/// Polls the connection and the exchange together until the exchange finishes. If the
/// connection ends first, the exchange still completes (with the data or error the
/// connection left behind).
pub(super) async fn drive<C, F, T, E>(conn: C, exchange: F) -> Result<T, E>
where
    C: Future<Output = Result<(), hyper::Error>>,
    F: Future<Output = Result<T, E>>,
    E: From<hyper::Error>,
{
    tokio::pin!(conn);
    tokio::pin!(exchange);
    tokio::select! {
        r = &mut exchange => r,
        c = &mut conn => {
            match c {
                // The connection's own error is the more precise one (parse errors,
                // resets); the exchange would only report "canceled".
                Err(e) if !e.is_canceled() => {
                    // Prefer a response that completed just before the error.
                    match futures_poll_once(&mut exchange) {
                        Some(Ok(r)) => Ok(r),
                        _ => Err(E::from(e)),
                    }
                }
                _ => exchange.await,
            }
        }
    }
}

/// Polls a future once without waiting.
fn futures_poll_once<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match std::pin::Pin::new(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

async fn read(
    resp: http::Response<Incoming>,
    max_body: usize,
    progress: &Progress,
) -> Result<Response, ExchangeError> {
    progress.head.store(true, Ordering::Relaxed);
    let (parts, mut body) = resp.into_parts();
    let json = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    // Kept in memory either way, so bounded: a JSON body is kept up to the far side's
    // bound (it is parsed only when it fits).
    let keep = if json {
        super::far_side::MAX_BODY + 1
    } else {
        BODY_PREFIX_LEN
    };
    let mut prefix = Vec::new();
    let mut total: usize = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(ExchangeError::Hyper)?;
        if let Some(data) = frame.data_ref() {
            total = total.saturating_add(data.len());
            progress.body_bytes.store(total as u64, Ordering::Relaxed);
            if total > max_body {
                return Err(ExchangeError::BodyTooLarge(max_body));
            }
            let room = keep.saturating_sub(prefix.len());
            prefix.extend_from_slice(&data[..room.min(data.len())]);
        }
    }
    Ok(Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body_prefix: prefix,
        json,
    })
}

fn build_request(
    target: &Target,
    http: &HttpCheck,
    h2: bool,
    tls: bool,
) -> Result<Request<Empty<Bytes>>, Failure> {
    let bad = |what: String| {
        Failure::new(
            Reason::ProtocolError,
            format!("cannot build the request: {what}"),
        )
    };
    let method = Method::from_bytes(http.method.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let mut authority = default_authority(target, tls);
    if let Some((_, v)) = http.headers.iter().find(|(k, _)| k == "host") {
        authority.clone_from(v);
    }
    let uri = if h2 {
        format!("https://{authority}{}", http.path)
    } else {
        http.path.clone()
    };
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(headers) = builder.headers_mut() {
        if !h2 {
            let v = HeaderValue::from_str(&authority).map_err(|e| bad(e.to_string()))?;
            headers.insert(HOST, v);
        }
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("mtls-prober/", env!("CARGO_PKG_VERSION"))),
        );
        for (k, v) in &http.headers {
            if k == "host" {
                continue;
            }
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| bad(e.to_string()))?;
            let value = HeaderValue::from_str(v).map_err(|e| bad(e.to_string()))?;
            headers.insert(name, value);
        }
    }
    builder.body(Empty::new()).map_err(|e| bad(e.to_string()))
}

/// How far the peer got before an exchange failed.
#[derive(Clone, Copy)]
pub(super) struct Seen {
    /// The server asked for a client certificate and nothing at all has arrived since
    /// the handshake (see [`super::Run::silent_since_handshake`]).
    pub(super) silent: bool,
    /// The response head arrived.
    pub(super) head: bool,
}

/// `server_name` (else the address's host) and the port unless it is the scheme's
/// default: the `Host` / `:authority` of a request.
pub(super) fn default_authority(target: &Target, tls: bool) -> String {
    let default_port = if tls { 443 } else { 80 };
    let host = if target.server_name.is_empty() {
        &target.address.host
    } else {
        &target.server_name
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    if target.address.port == default_port {
        host
    } else {
        format!("{host}:{}", target.address.port)
    }
}

pub(super) fn error_failure(
    err: ExchangeError,
    app: &CaptureSlot,
    hs: &HandshakeContext<'_>,
    tls: bool,
    seen: Seen,
) -> Failure {
    let err = match err {
        ExchangeError::BodyTooLarge(max) => {
            return Failure::new(
                Reason::ProtocolError,
                format!("the response body exceeds max_body_bytes ({max}); cut off"),
            );
        }
        ExchangeError::Hyper(e) => e,
    };
    let c = app.lock();
    // A TLS 1.3 server's refusal of our certificate arrives here, on the first read.
    // The transport recorded it; hyper's h2 path only keeps the error's text.
    if let Some(r) = c.read_error.as_ref().and_then(|e| e.tls.as_ref()) {
        return rustls_failure(r, hs);
    }
    if let Some(r) = find_rustls_error(&err) {
        return rustls_failure(r, hs);
    }
    if !tls && is_tls_alert_record(&c.first_bytes) {
        return Failure::refusal(
            Reason::ProtocolError,
            format!(
                "the peer answered the plaintext request with a TLS alert record (\"{}\"): this \
                 port speaks TLS",
                escape_bytes(&c.first_bytes)
            ),
        );
    }
    if !tls && matches!(c.first_bytes.as_slice(), [22, 3, ..]) {
        return Failure::refusal(
            Reason::ProtocolError,
            "the peer answered the plaintext request with a TLS handshake record: this port \
             speaks TLS",
        );
    }
    let text = error_chain(&err);
    if let Some(h2e) = find_h2_error(&err) {
        // A reset of our one stream before any response head is a refusal without a
        // response too (nginx's `return 444` over h2 resets the stream).
        let reset_unanswered = h2e.is_reset() && !seen.head;
        if h2e.is_go_away() || h2e.reason() == Some(h2::Reason::REFUSED_STREAM) || reset_unanswered
        {
            return Failure::refusal(
                Reason::ConnectionClosed,
                format!(
                    "the peer refused the request at the HTTP/2 layer ({}) without a response",
                    h2e.reason()
                        .map(|r| format!("GOAWAY/RST_STREAM {r:?}"))
                        .unwrap_or_else(|| "GOAWAY".into())
                ),
            );
        }
    }
    let io_kind = find_io_error(&err)
        .map(std::io::Error::kind)
        .or(c.read_error.as_ref().map(|e| e.kind));
    let closed = err.is_incomplete_message()
        || err.is_closed()
        || matches!(
            io_kind,
            Some(
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            )
        );
    if closed && seen.silent {
        let reset = io_kind.is_some_and(|k| k != std::io::ErrorKind::UnexpectedEof);
        return silent_refusal(hs, reset);
    }
    if closed && c.bytes_read == 0 {
        return Failure::refusal(
            Reason::ConnectionClosed,
            format!(
                "the peer closed the connection {} without an HTTP response ({text})",
                if tls {
                    "after the TLS handshake"
                } else {
                    "after connecting"
                }
            ),
        );
    }
    if err.is_incomplete_message() || closed {
        return Failure::new(
            Reason::ProtocolError,
            format!(
                "the response stopped half-way: the connection closed after {} bytes ({text})",
                c.bytes_read
            ),
        );
    }
    let shown = &c.first_bytes[..c.first_bytes.len().min(24)];
    Failure::new(
        Reason::ProtocolError,
        format!(
            "malformed response: {text} (first bytes \"{}\")",
            escape_bytes(shown)
        ),
    )
}

/// `hyper error: cause: cause`, for details.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

fn find_h2_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a h2::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(h) = e.downcast_ref::<h2::Error>() {
            return Some(h);
        }
        cur = e.source();
    }
    None
}
