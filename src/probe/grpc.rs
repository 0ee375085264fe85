//! The gRPC request stage (SPEC §13): one `grpc.health.v1.Health/Check` call over the
//! connection the probe made — HTTP/2 negotiated by ALPN over TLS, or h2c with prior
//! knowledge in plaintext mode (and in a `verify_strict` companion).
//!
//! Driven like the HTTP request ([`super::request`]), in the probe's own task, with the
//! same bounds: the response head by `SETTINGS_MAX_HEADER_LIST_SIZE`, the DATA by
//! [`MAX_RESPONSE_BYTES`] (a message announcing more is cut off as soon as its length
//! prefix arrives), the whole call by the probe's deadline, which is also sent as
//! `grpc-timeout`. Transport failures (closes, resets, TLS alerts, GOAWAY) are
//! classified exactly as for HTTP; the answer itself by [`classify_grpc`].

use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_TYPE, TE, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, timeout_at};
use tonic_health::pb::HealthCheckRequest;

use super::request::{
    ExchangeError, MAX_HEAD_BYTES, Progress, Seen, default_authority, drive, error_failure,
};
use super::{Run, ms};
use crate::classify::grpc::{FRAME_PREFIX_LEN, GrpcView, classify_grpc};
use crate::classify::http::BODY_PREFIX_LEN;
use crate::classify::net::human_ms;
use crate::classify::tls::HandshakeContext;
use crate::classify::{Failure, Reason};
use crate::config::{GrpcCheck, Target};
use crate::report::{GrpcInfo, HttpInfo};
use crate::tls::capture::CaptureSlot;

/// The method called.
pub(super) const HEALTH_CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// The most DATA a health answer may carry (a `HealthCheckResponse` is 2 bytes).
pub(super) const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// Calls Health/Check over `io` and classifies the answer.
pub(super) async fn exchange<IO>(
    io: IO,
    target: &Target,
    grpc: &GrpcCheck,
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
    let request = build_request(target, grpc, tls, run.deadline)?;
    let result = timeout_at(run.deadline, call(TokioIo::new(io), request, &progress)).await;
    run.report.timings_ms.request = Some(ms(started.elapsed()));
    let answer = match result {
        Err(_) => {
            let received = app.lock().bytes_read;
            let what = if progress.head.load(Ordering::Relaxed) {
                format!(
                    "the gRPC answer did not complete within {} (headers received, {} bytes of \
                     DATA, no trailers)",
                    human_ms(target.timeout),
                    progress.body_bytes.load(Ordering::Relaxed)
                )
            } else {
                format!(
                    "no gRPC answer within {} ({received} bytes received)",
                    human_ms(target.timeout)
                )
            };
            return Err(Failure::new(Reason::RequestTimeout, what));
        }
        Ok(Err(CallError::TooLarge(n))) => {
            return Err(Failure::new(
                Reason::ProtocolError,
                format!(
                    "the gRPC answer carries {n} bytes or more, over the limit of \
                     {MAX_RESPONSE_BYTES} for a health check; cut off"
                ),
            ));
        }
        Ok(Err(CallError::Exchange(e))) => {
            let seen = Seen {
                silent: run.silent_since_handshake(),
                head: progress.head.load(Ordering::Relaxed),
            };
            return Err(error_failure(e, app, &hs, tls, seen));
        }
        Ok(Ok(a)) => a,
    };
    run.report.http = Some(HttpInfo::from_head(answer.status, &answer.headers));
    let view = GrpcView {
        status: answer.status,
        headers: &answer.headers,
        trailers: answer.trailers.as_ref(),
        body: &answer.data,
    };
    let (said, verdict) = classify_grpc(&view, &grpc.service);
    run.report.grpc = Some(Box::new(GrpcInfo {
        service: grpc.service.clone(),
        status: said.code_name(),
        code: said.code,
        message: said.message,
        health: said.health,
    }));
    verdict
}

/// The answer as received.
struct Answer {
    status: u16,
    headers: HeaderMap,
    data: BytesMut,
    trailers: Option<HeaderMap>,
}

enum CallError {
    Exchange(ExchangeError),
    /// At least this many bytes of DATA were announced or received.
    TooLarge(usize),
}

impl From<hyper::Error> for CallError {
    fn from(e: hyper::Error) -> Self {
        Self::Exchange(ExchangeError::Hyper(e))
    }
}

async fn call<IO>(
    io: TokioIo<IO>,
    request: Request<Full<Bytes>>,
    progress: &Progress,
) -> Result<Answer, CallError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .handshake(io)
        .await?;
    drive(conn, async move {
        let resp = sender.send_request(request).await?;
        read(resp, progress).await
    })
    .await
}

async fn read(resp: http::Response<Incoming>, progress: &Progress) -> Result<Answer, CallError> {
    progress.head.store(true, Ordering::Relaxed);
    let (parts, mut body) = resp.into_parts();
    // Not gRPC (a proxy's or an HTTP server's own answer): only the start of its body
    // is classified, as for HTTP probes, so the rest is never read.
    let grpc = parts
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let mut data = BytesMut::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        match frame.into_data() {
            Ok(chunk) if !grpc => {
                let room = BODY_PREFIX_LEN.saturating_sub(data.len());
                data.extend_from_slice(&chunk[..room.min(chunk.len())]);
                if data.len() >= BODY_PREFIX_LEN {
                    break;
                }
            }
            Ok(chunk) => {
                if data.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(CallError::TooLarge(data.len() + chunk.len()));
                }
                data.extend_from_slice(&chunk);
                progress
                    .body_bytes
                    .store(data.len() as u64, Ordering::Relaxed);
                // A message announcing more than the limit is cut off at once, not
                // after the server has streamed it.
                if let Some(prefix) = data.first_chunk::<FRAME_PREFIX_LEN>() {
                    let [_, len @ ..] = *prefix;
                    let announced = u32::from_be_bytes(len) as usize;
                    if announced > MAX_RESPONSE_BYTES - FRAME_PREFIX_LEN {
                        return Err(CallError::TooLarge(announced + FRAME_PREFIX_LEN));
                    }
                }
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers = Some(t);
                }
            }
        }
    }
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        data,
        trailers,
    })
}

fn build_request(
    target: &Target,
    grpc: &GrpcCheck,
    tls: bool,
    deadline: Instant,
) -> Result<Request<Full<Bytes>>, Failure> {
    let bad = |what: String| {
        Failure::new(
            Reason::ProtocolError,
            format!("cannot build the gRPC request: {what}"),
        )
    };
    let authority = grpc
        .authority
        .clone()
        .unwrap_or_else(|| default_authority(target, tls));
    let scheme = if tls { "https" } else { "http" };
    let uri = format!("{scheme}://{authority}{HEALTH_CHECK_PATH}");
    let message = HealthCheckRequest {
        service: grpc.service.clone(),
    }
    .encode_to_vec();
    let mut body = Vec::with_capacity(FRAME_PREFIX_LEN + message.len());
    body.push(0);
    body.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    body.extend_from_slice(&message);
    // The server may stop as soon as our budget is spent (gRPC over HTTP/2: at most 8
    // digits, so milliseconds up to ~27 h).
    let left = deadline
        .saturating_duration_since(Instant::now())
        .as_millis();
    let grpc_timeout = format!("{}m", left.clamp(1, 99_999_999));
    let mut builder = Request::builder().method(Method::POST).uri(uri);
    if let Some(h) = builder.headers_mut() {
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert(TE, HeaderValue::from_static("trailers"));
        h.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("mtls-prober/", env!("CARGO_PKG_VERSION"), " grpc")),
        );
        h.insert(
            "grpc-timeout",
            HeaderValue::from_str(&grpc_timeout).map_err(|e| bad(e.to_string()))?,
        );
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Expect, HostPort, Mode, Origin, PeerExpectation, TlsVersion};

    fn target(port: u16) -> Target {
        Target {
            name: "api".into(),
            address: HostPort {
                host: "10.0.0.5".into(),
                port,
            },
            mode: Mode::Mtls,
            expect: Expect::Success,
            peer: PeerExpectation::DnsName("api.prod".into()),
            server_name: "api.prod".into(),
            alpn: vec!["h2".into()],
            tls_versions: vec![TlsVersion::V1_3],
            verify_strict: false,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            ca: None,
            http: None,
            grpc: None,
            origin: Origin::Configured,
            fleet: crate::config::FleetScope::Shared,
        }
    }

    #[tokio::test]
    async fn the_request_is_a_health_check_call() {
        let check = GrpcCheck {
            service: "prod.v1.Api".into(),
            authority: None,
        };
        let deadline = Instant::now() + Duration::from_millis(2500);
        let req = build_request(&target(9090), &check, true, deadline).unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(
            req.uri().to_string(),
            "https://api.prod:9090/grpc.health.v1.Health/Check"
        );
        let h = req.headers();
        assert_eq!(h["content-type"], "application/grpc");
        assert_eq!(h["te"], "trailers");
        let timeout = h["grpc-timeout"].to_str().unwrap();
        let ms: u64 = timeout.strip_suffix('m').unwrap().parse().unwrap();
        assert!((2000..=2500).contains(&ms), "{timeout}");
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let expected = HealthCheckRequest {
            service: "prod.v1.Api".into(),
        }
        .encode_to_vec();
        assert_eq!(body[0], 0, "not compressed");
        assert_eq!(&body[1..5], &(expected.len() as u32).to_be_bytes());
        assert_eq!(&body[5..], &expected[..]);

        // h2c, the default port, and a configured authority.
        let check = GrpcCheck {
            service: String::new(),
            authority: Some("api.internal:8443".into()),
        };
        let req = build_request(&target(80), &check, false, deadline).unwrap();
        assert_eq!(
            req.uri().to_string(),
            "http://api.internal:8443/grpc.health.v1.Health/Check"
        );
        let check = GrpcCheck {
            service: String::new(),
            authority: None,
        };
        let req = build_request(&target(80), &check, false, deadline).unwrap();
        assert_eq!(req.uri().authority().unwrap().as_str(), "api.prod");
        // An empty service is an empty message: just the prefix.
        let body = req.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], &[0, 0, 0, 0, 0]);
    }
}
