//! The agent's HTTP listener (SPEC §7): `/metrics`, `/healthz`, `/readyz`,
//! `/api/v1/edges` and the status page at `/`.
//!
//! Bounded like any listener exposed to a cluster: request heads must arrive within
//! [`HEADER_TIMEOUT`] and fit in [`MAX_HEAD`], request bodies are never read, and at
//! most [`MAX_CONNECTIONS`] connections are served at once (more are closed at once).
//! Every connection is its own task, so a slow client never delays a scrape.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::AgentState;
use super::status_page;
use super::view::EdgeView;

/// A request head must arrive within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 512;
/// A connection is closed after this long, whatever it is doing.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(120);
/// `/metrics` is streamed in chunks of this size (about 100 edges each).
pub const METRICS_CHUNK: usize = 256 * 1024;
/// Renderings of `/metrics`, `/api/v1/edges` and `/` at once. Each holds its whole
/// body (megabytes for thousands of edges), so concurrent scrapes queue instead of
/// multiplying the agent's peak memory.
pub const MAX_RENDERS: usize = 2;

/// Every response's body: a buffer, or the `/metrics` stream.
type Body = BoxBody<Bytes, Infallible>;

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AgentState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let renders = Arc::new(Semaphore::new(MAX_RENDERS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _peer)) = accepted else {
            // Out of file descriptors or similar: back off briefly so the loop does not
            // spin while the condition lasts.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let renders = renders.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                let renders = renders.clone();
                async move { Ok::<_, Infallible>(respond_to(state, renders, &req).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD);
            builder
                .http2()
                .max_header_list_size(MAX_HEAD as u32)
                .max_concurrent_streams(16);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(MAX_CONNECTION_AGE, conn).await;
            drop(slot);
        });
    }
}

/// Routes a request. The renderings that grow with the number of edges run on the
/// blocking pool: for 10,000 edges they take tens of milliseconds of CPU, which on the
/// runtime's worker would hold up every probe's timers and handshakes (the schedule
/// lag); on a blocking thread the kernel shares the core with the worker instead.
///
/// The snapshot of the edges they render is taken here, on the worker, though: it is
/// a few milliseconds of copying, and its ≈ 4 MB for 10,000 edges then come from (and
/// go back to) the allocator arena the probes use. Taken on a blocking thread, glibc
/// gave that thread an arena of its own, which kept the pages after the response and
/// raised the agent's peak by ≈ 4 MiB per rendering thread (measured: VmHWM with
/// scrapes and page views 64.9–65.6 → 61.3 MiB at 10,000 edges).
async fn respond_to(
    state: Arc<AgentState>,
    renders: Arc<Semaphore>,
    req: &Request<Incoming>,
) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if !matches!(
        path.as_str(),
        "/metrics" | "/api/v1/edges" | "/" | "/docs/runbook"
    ) {
        return route(&state, &method, &path);
    }
    let Ok(permit) = renders.acquire_owned().await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    };
    if path == "/metrics" && (method == Method::GET || method == Method::HEAD) {
        // Streamed: the rendering thread hands over chunk after chunk, at most two
        // ahead of the client, and stops if the client goes away.
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            state
                .metrics
                .render_chunks(METRICS_CHUNK, |chunk| tx.blocking_send(chunk).is_ok());
        });
        return with_headers(ChunkBody(rx).boxed(), StatusCode::OK, METRICS_TYPE);
    }
    if path == "/api/v1/edges" && (method == Method::GET || method == Method::HEAD) {
        // Streamed like /metrics: 10,000 edges are 7.7 MB of JSON, which buffered whole
        // (with the doublings of its growth) was the agent's peak memory.
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
        let views = state.edge_views();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            api_chunks(&state, &views, METRICS_CHUNK, |chunk| {
                tx.blocking_send(chunk).is_ok()
            });
            drop(views);
            crate::memory::release_freed();
        });
        return with_headers(ChunkBody(rx).boxed(), StatusCode::OK, "application/json");
    }
    if path == "/" && (method == Method::GET || method == Method::HEAD) {
        // Streamed too: the page for 10,000 edges is ≈ 10 MiB of HTML.
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
        let views = state.edge_views();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            status_page::render_chunks(&state.agent_view(), &views, METRICS_CHUNK, |chunk| {
                tx.blocking_send(chunk).is_ok()
            });
            drop(views);
            crate::memory::release_freed();
        });
        return with_headers(
            ChunkBody(rx).boxed(),
            StatusCode::OK,
            "text/html; charset=utf-8",
        );
    }
    let _permit = permit;
    match tokio::task::spawn_blocking(move || route(&state, &method, &path)).await {
        Ok(r) => r,
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n"),
    }
}

fn route(state: &AgentState, method: &Method, path: &str) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/metrics" => respond(StatusCode::OK, METRICS_TYPE, state.metrics.render()),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        // The status page links each reason to its runbook section (`#reason`); the
        // runbook is compiled in, so the links work from any agent without internet
        // access. The Markdown stays available as it is in the repository.
        "/docs/runbook" => respond(
            StatusCode::OK,
            "text/html; charset=utf-8",
            super::runbook::page().as_bytes().to_vec(),
        ),
        "/docs/runbook.md" => respond(
            StatusCode::OK,
            "text/markdown; charset=utf-8",
            crate::classify::RUNBOOK.as_bytes().to_vec(),
        ),
        "/readyz" => match state.readiness() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("not ready: {why}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /, /metrics, /api/v1/edges, /healthz, /readyz, /docs/runbook\n",
        ),
    }
}

/// The JSON array of `/api/v1/edges`, handed to `send` in chunks of about `chunk`
/// bytes; stops early when `send` returns `false` (the client went away).
fn api_chunks(
    state: &AgentState,
    views: &[EdgeView],
    chunk: usize,
    mut send: impl FnMut(Bytes) -> bool,
) {
    let mut buf = Vec::with_capacity(chunk + 4096);
    buf.push(b'[');
    for (i, v) in views.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        if let Err(e) = serde_json::to_writer(&mut buf, &v.api(&state.source)) {
            // Not reachable with these types (no maps with non-string keys); the
            // client gets a truncated array, which no JSON parser accepts.
            tracing::error!(error = %e, "encoding /api/v1/edges failed");
            return;
        }
        if buf.len() >= chunk
            && !send(Bytes::from(std::mem::replace(
                &mut buf,
                Vec::with_capacity(chunk + 4096),
            )))
        {
            return;
        }
    }
    buf.push(b']');
    send(Bytes::from(buf));
}

/// The Prometheus text format's content type.
const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A response body fed by a channel of chunks.
struct ChunkBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChunkBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(hyper::body::Frame::data(c))))
    }
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    respond(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    with_headers(Full::new(Bytes::from(body)).boxed(), status, content_type)
}

/// Every answer of the listener, buffered or streamed, gets the same headers.
///
/// The page and the API carry peer-controlled text (certificate names, details): it is
/// escaped, and these make the browser refuse anything that slipped through (no
/// scripts, no external loads, no framing, no content-type guessing).
fn with_headers(body: Body, status: StatusCode, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let all = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    let page = [
        (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    let html = content_type.starts_with("text/html");
    let h = r.headers_mut();
    for (name, value) in all.into_iter().chain(page.into_iter().filter(|_| html)) {
        h.insert(name, header::HeaderValue::from_static(value));
    }
    r
}

/// The status page needs its inline `<style>` and nothing else (no scripts: it
/// refreshes with a `<meta>`; links are navigation, which `default-src` does not cover).
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
