//! Request-stage classification of a `grpc.health.v1.Health/Check` answer (SPEC §13).
//!
//! A gRPC answer carries its status in `grpc-status` (and `grpc-message`), normally in
//! the trailers after the one response message, or in the headers of a
//! "trailers-only" answer (what servers and mesh proxies send for an error). An answer
//! without `grpc-status` is not gRPC at all — a proxy's or a plain HTTP server's own
//! response — and is classified like any HTTP response ([`super::http`]).
//!
//! | answer | reason |
//! |---|---|
//! | `OK` and health `SERVING` | pass |
//! | `OK` and health `NOT_SERVING`, `UNKNOWN`, `SERVICE_UNKNOWN` | `unexpected_status` |
//! | `NOT_FOUND` (unknown service), `UNIMPLEMENTED` (no Health service) | `unexpected_status` |
//! | `PERMISSION_DENIED`, `UNAUTHENTICATED` | `rbac_denied` (a refusal) |
//! | `UNAVAILABLE` naming an upstream TLS failure | `upstream_tls_error` |
//! | other `UNAVAILABLE` | `upstream_unavailable` |
//! | any other status | `unexpected_status` |
//! | no `grpc-status`, HTTP status other than 200 | as HTTP: 403 → `rbac_denied`, Envoy 503s → `upstream_*`, … |
//! | no `grpc-status` with HTTP 200, a malformed status or message | `protocol_error` |

use http::HeaderMap;
use prost::Message as _;
use tonic_health::pb::HealthCheckResponse;
use tonic_health::pb::health_check_response::ServingStatus;

use super::http::{
    BODY_PREFIX_LEN, ResponseView, classify_response, names_upstream_tls_failure, response_refusal,
};
use super::tls::escape_bytes;
use super::{Failure, Reason};
use crate::config::StatusSet;

/// The longest `grpc-message` kept for details (after percent-decoding), in bytes.
pub const MAX_MESSAGE_LEN: usize = 240;

/// The gRPC message framing prefix: a compressed flag and a 4-byte length.
pub const FRAME_PREFIX_LEN: usize = 5;

/// What the classifier sees of a gRPC answer.
#[derive(Clone, Copy, Debug)]
pub struct GrpcView<'a> {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: &'a HeaderMap,
    /// The trailers, if the stream ended with some.
    pub trailers: Option<&'a HeaderMap>,
    /// The DATA received (length-prefixed messages), as bounded by the exchange.
    pub body: &'a [u8],
}

/// What the answer said, for the report (`null` where absent).
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct GrpcAnswer {
    /// The `grpc-status` code, if the answer had a valid one.
    pub code: Option<u32>,
    /// The decoded, bounded `grpc-message`, if any.
    pub message: Option<String>,
    /// The health status of a successful call (`SERVING`, `NOT_SERVING`, …).
    pub health: Option<&'static str>,
}

impl GrpcAnswer {
    /// The canonical name of [`Self::code`] (`PERMISSION_DENIED`).
    pub fn code_name(&self) -> Option<&'static str> {
        self.code.map(code_name)
    }
}

/// The canonical upper-case name of a gRPC status code (`"UNAVAILABLE"`), `"CODE_<n>"`
/// for codes outside the 17 the protocol defines.
pub fn code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i).copied())
        .unwrap_or("undefined code")
}

/// Classifies the answer to a Health/Check of `service`: what it said, and whether it
/// passes.
pub fn classify_grpc(view: &GrpcView<'_>, service: &str) -> (GrpcAnswer, Result<(), Failure>) {
    // Trailers, else the headers of a trailers-only answer.
    let status_in = |m: &HeaderMap| m.get("grpc-status").is_some();
    let source = match view.trailers {
        Some(t) if status_in(t) => Some(t),
        _ if status_in(view.headers) => Some(view.headers),
        _ => None,
    };
    let Some(source) = source else {
        return (GrpcAnswer::default(), Err(not_grpc(view)));
    };
    let message = source
        .get("grpc-message")
        .map(|v| decode_message(v.as_bytes()))
        .filter(|m| !m.is_empty());
    let raw = source
        .get("grpc-status")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let Some(code) = parse_code(raw) else {
        let answer = GrpcAnswer {
            message,
            ..GrpcAnswer::default()
        };
        let f = Failure::new(
            Reason::ProtocolError,
            format!(
                "malformed grpc-status \"{}\"; expected a decimal status code",
                escape_bytes(&raw[..raw.len().min(24)])
            ),
        );
        return (answer, Err(f));
    };
    let mut answer = GrpcAnswer {
        code: Some(code),
        message,
        health: None,
    };
    let result = match code {
        0 => match health_status(view.body) {
            Ok(status) => {
                answer.health = Some(status);
                if status == "SERVING" {
                    Ok(())
                } else {
                    Err(Failure::new(
                        Reason::UnexpectedStatus,
                        format!("the health service reports {status} for {}", of(service)),
                    ))
                }
            }
            Err(problem) => Err(Failure::new(Reason::ProtocolError, problem)),
        },
        _ => Err(status_failure(code, answer.message.as_deref(), service)),
    };
    (answer, result)
}

fn of(service: &str) -> String {
    if service.is_empty() {
        "the server as a whole (service \"\")".to_owned()
    } else {
        format!("service \"{}\"", escape_text(service))
    }
}

/// A non-OK `grpc-status`.
fn status_failure(code: u32, message: Option<&str>, service: &str) -> Failure {
    let name = code_name(code);
    let said = message
        .map(|m| format!(" (grpc-message: \"{m}\")"))
        .unwrap_or_default();
    match name {
        "NOT_FOUND" => Failure::new(
            Reason::UnexpectedStatus,
            format!(
                "gRPC status NOT_FOUND: the health service does not know {}{said}",
                of(service)
            ),
        ),
        "UNIMPLEMENTED" => Failure::new(
            Reason::UnexpectedStatus,
            format!(
                "gRPC status UNIMPLEMENTED: the server has no grpc.health.v1.Health service \
                 (or no Check method){said}"
            ),
        ),
        "PERMISSION_DENIED" | "UNAUTHENTICATED" => Failure::refusal(
            Reason::RbacDenied,
            format!(
                "gRPC status {name} from the authorization layer (mesh policy or the server's \
                 own): the certificate was accepted, policy denies this call{said}"
            ),
        ),
        "UNAVAILABLE" if message.is_some_and(names_upstream_tls_failure) => Failure::new(
            Reason::UpstreamTlsError,
            format!(
                "gRPC status UNAVAILABLE: the mesh proxy's mTLS handshake toward the upstream \
                 failed{said}"
            ),
        ),
        "UNAVAILABLE" => Failure::new(
            Reason::UpstreamUnavailable,
            format!(
                "gRPC status UNAVAILABLE: the server or a proxy on the path has no healthy \
                 upstream or cannot serve{said}"
            ),
        ),
        _ => Failure::new(
            Reason::UnexpectedStatus,
            format!("gRPC status {name} ({code}){said}"),
        ),
    }
}

/// An answer without `grpc-status`: an HTTP response, classified as one.
fn not_grpc(view: &GrpcView<'_>) -> Failure {
    let http = ResponseView {
        status: view.status,
        headers: view.headers,
        body_prefix: &view.body[..view.body.len().min(BODY_PREFIX_LEN)],
    };
    if view.status == 200 {
        let ct = view
            .headers
            .get("content-type")
            .map(|v| escape_bytes(&v.as_bytes()[..v.len().min(60)]))
            .unwrap_or_else(|| "none".into());
        return Failure::new(
            Reason::ProtocolError,
            format!(
                "HTTP 200 without grpc-status (content-type: {ct}): not a gRPC answer, or the \
                 stream ended without trailers"
            ),
        );
    }
    // No status passes: every HTTP answer here is a failure, named by its layer.
    let mut f = match classify_response(&http, &StatusSet::from_ranges(Vec::new())) {
        Err(f) => f,
        Ok(()) => Failure::new(Reason::UnexpectedStatus, "unreachable: no status passes"),
    };
    // "HTTP 404, expected <nothing>(server: …)" says the wrong thing for gRPC.
    let generic = format!("HTTP {}, expected ", view.status);
    if let Some(rest) = f.detail.strip_prefix(&generic) {
        f.detail = format!(
            "HTTP {} without grpc-status (a proxy's or a non-gRPC server's own answer); \
             expected a gRPC answer{rest}",
            view.status
        );
    }
    if let Some(refusal) = response_refusal(&http) {
        f.refused_by_peer = true;
        if f.reason != Reason::RbacDenied {
            f.detail = format!("{} — {refusal}", f.detail);
        }
    }
    f
}

fn parse_code(raw: &[u8]) -> Option<u32> {
    if raw.is_empty() || raw.len() > 10 || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(raw).ok()?.parse().ok()
}

/// The one length-prefixed message of a unary answer, decoded as a
/// `HealthCheckResponse`; its status name.
fn health_status(body: &[u8]) -> Result<&'static str, String> {
    let Some((prefix, rest)) = body.split_first_chunk::<FRAME_PREFIX_LEN>() else {
        return Err(format!(
            "grpc-status OK but {} without a complete response message ({} bytes of DATA)",
            "the answer ended",
            body.len()
        ));
    };
    let [flag, len @ ..] = *prefix;
    let len = u32::from_be_bytes(len) as usize;
    if flag != 0 {
        return Err(format!(
            "the response message is compressed (flag {flag}) although the probe accepts no \
             compression"
        ));
    }
    let Some(message) = rest.get(..len) else {
        return Err(format!(
            "the response message announces {len} bytes but only {} arrived",
            rest.len()
        ));
    };
    if rest.len() > len {
        return Err(format!(
            "{} bytes of DATA after the response message: a unary call has exactly one",
            rest.len() - len
        ));
    }
    let response = HealthCheckResponse::decode(message)
        .map_err(|e| format!("the response message is not a HealthCheckResponse: {e}"))?;
    Ok(match ServingStatus::try_from(response.status) {
        Ok(ServingStatus::Serving) => "SERVING",
        Ok(ServingStatus::NotServing) => "NOT_SERVING",
        Ok(ServingStatus::ServiceUnknown) => "SERVICE_UNKNOWN",
        Ok(ServingStatus::Unknown) => "UNKNOWN",
        Err(_) => "an undefined status",
    })
}

/// `grpc-message` is percent-encoded UTF-8 (gRPC over HTTP/2, "Responses"); decoded
/// leniently (a bad escape stays as written), bounded, control characters escaped.
fn decode_message(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len().min(MAX_MESSAGE_LEN * 3));
    let mut i = 0;
    while i < raw.len() && out.len() < MAX_MESSAGE_LEN * 4 {
        let b = raw[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (
                raw.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                raw.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            // Both digits are below 16, so the byte fits.
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    escape_text(&String::from_utf8_lossy(&out))
}

/// Control characters escaped, cut on a character boundary so that the text is at
/// most [`MAX_MESSAGE_LEN`] bytes, plus `…` when something was cut.
fn escape_text(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let piece = if c.is_control() {
            format!("\\x{:02x}", u32::from(c) & 0xff)
        } else {
            c.to_string()
        };
        if out.len() + piece.len() > MAX_MESSAGE_LEN {
            out.push('…');
            break;
        }
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn map(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn framed(status: i32) -> Vec<u8> {
        let msg = HealthCheckResponse { status }.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        out.extend_from_slice(&msg);
        out
    }

    fn run(
        status: u16,
        headers: &[(&'static str, &str)],
        trailers: Option<&[(&'static str, &str)]>,
        body: &[u8],
    ) -> (GrpcAnswer, Result<(), Failure>) {
        let h = map(headers);
        let t = trailers.map(map);
        classify_grpc(
            &GrpcView {
                status,
                headers: &h,
                trailers: t.as_ref(),
                body,
            },
            "api.v1.Api",
        )
    }

    const GRPC: &[(&str, &str)] = &[("content-type", "application/grpc")];

    #[test]
    fn the_table_of_spec_13() {
        let ok = Some(&[("grpc-status", "0")][..]);
        type Case = (
            u16,
            &'static [(&'static str, &'static str)],
            Option<&'static [(&'static str, &'static str)]>,
            Vec<u8>,
            Option<Reason>,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (200, GRPC, ok, framed(1), None, ""),
            (200, GRPC, ok, framed(2), Some(Reason::UnexpectedStatus), "NOT_SERVING"),
            (200, GRPC, ok, framed(0), Some(Reason::UnexpectedStatus), "UNKNOWN"),
            (200, GRPC, ok, framed(3), Some(Reason::UnexpectedStatus), "SERVICE_UNKNOWN"),
            // Trailers-only answers: the status is in the headers.
            (
                200,
                &[("content-type", "application/grpc"), ("grpc-status", "5")],
                None,
                vec![],
                Some(Reason::UnexpectedStatus),
                "NOT_FOUND",
            ),
            (
                200,
                &[("grpc-status", "12"), ("grpc-message", "unknown service")],
                None,
                vec![],
                Some(Reason::UnexpectedStatus),
                "UNIMPLEMENTED",
            ),
            (
                200,
                &[("grpc-status", "7"), ("grpc-message", "RBAC: access denied")],
                None,
                vec![],
                Some(Reason::RbacDenied),
                "RBAC: access denied",
            ),
            (200, &[("grpc-status", "16")], None, vec![], Some(Reason::RbacDenied), "UNAUTHENTICATED"),
            (
                200,
                &[
                    ("grpc-status", "14"),
                    (
                        "grpc-message",
                        "upstream connect error or disconnect/reset before headers. reset reason: \
                         connection failure, transport failure reason: TLS error: 268435581:SSL \
                         routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED",
                    ),
                ],
                None,
                vec![],
                Some(Reason::UpstreamTlsError),
                "CERTIFICATE_VERIFY_FAILED",
            ),
            (
                503,
                &[("grpc-status", "14"), ("grpc-message", "no healthy upstream")],
                None,
                vec![],
                Some(Reason::UpstreamUnavailable),
                "no healthy upstream",
            ),
            (200, GRPC, Some(&[("grpc-status", "13")]), vec![], Some(Reason::UnexpectedStatus), "INTERNAL (13)"),
            (200, GRPC, Some(&[("grpc-status", "99")]), vec![], Some(Reason::UnexpectedStatus), "undefined code (99)"),
            // No grpc-status: an HTTP answer.
            (
                403,
                &[("server", "istio-envoy"), ("content-type", "text/plain")],
                None,
                b"RBAC: access denied".to_vec(),
                Some(Reason::RbacDenied),
                "RBAC",
            ),
            (
                503,
                &[("server", "envoy")],
                None,
                b"upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: TLS error".to_vec(),
                Some(Reason::UpstreamTlsError),
                "HTTP 503",
            ),
            (404, &[("content-type", "text/html")], None, b"<html>".to_vec(), Some(Reason::UnexpectedStatus), "HTTP 404 without grpc-status"),
            (200, &[("content-type", "text/html")], None, b"<html>".to_vec(), Some(Reason::ProtocolError), "text/html"),
            // Malformed.
            (200, GRPC, Some(&[("grpc-status", "OK")]), vec![], Some(Reason::ProtocolError), "malformed grpc-status"),
            (200, GRPC, ok, vec![0, 0, 0], Some(Reason::ProtocolError), "without a complete response message"),
            (200, GRPC, ok, vec![1, 0, 0, 0, 2, 8, 1], Some(Reason::ProtocolError), "compressed"),
            (200, GRPC, ok, vec![0, 0, 0, 0, 9, 8], Some(Reason::ProtocolError), "announces 9 bytes"),
            (200, GRPC, ok, [framed(1), framed(1)].concat(), Some(Reason::ProtocolError), "exactly one"),
            (200, GRPC, ok, vec![0, 0, 0, 0, 2, 0xff, 0xff], Some(Reason::ProtocolError), "not a HealthCheckResponse"),
        ];
        for (status, headers, trailers, body, want, fragment) in cases {
            let (answer, result) = run(status, headers, trailers, &body);
            match (want, result) {
                (None, Ok(())) => assert_eq!(answer.health, Some("SERVING")),
                (Some(want), Err(f)) => {
                    assert_eq!(f.reason, want, "{headers:?} {trailers:?}: {}", f.detail);
                    assert!(
                        f.detail.contains(fragment),
                        "{fragment:?} not in {}",
                        f.detail
                    );
                }
                (want, got) => panic!("{headers:?} {trailers:?}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn the_answer_is_reported() {
        let (a, r) = run(200, GRPC, Some(&[("grpc-status", "0")]), &framed(2));
        assert_eq!(a.code_name(), Some("OK"));
        assert_eq!(a.health, Some("NOT_SERVING"));
        assert!(r.unwrap_err().detail.contains("service \"api.v1.Api\""));
        let (a, r) = run(
            200,
            &[
                ("grpc-status", "7"),
                ("grpc-message", "denied%20by%20policy%0A%zz"),
            ],
            None,
            &[],
        );
        assert_eq!(a.code, Some(7));
        assert_eq!(a.message.as_deref(), Some("denied by policy\\x0a%zz"));
        let f = r.unwrap_err();
        assert!(f.refused_by_peer, "PERMISSION_DENIED refuses like a 403");
        assert!(!f.detail.contains('\n'));
        // Long messages are cut.
        let long = "x".repeat(5000);
        let (a, _) = run(
            200,
            &[("grpc-status", "2"), ("grpc-message", &long)],
            None,
            &[],
        );
        assert!(a.message.unwrap().len() <= MAX_MESSAGE_LEN + '…'.len_utf8());
        // Also when the cut falls inside an escape or a multi-byte character.
        for filler in ["%0A", "é", "€€", "𝄞"] {
            let long = format!("{}{}", "x".repeat(237), filler.repeat(40));
            let (a, _) = run(
                200,
                &[("grpc-status", "2"), ("grpc-message", &long)],
                None,
                &[],
            );
            let m = a.message.unwrap();
            assert!(
                m.len() <= MAX_MESSAGE_LEN + '…'.len_utf8(),
                "{} bytes",
                m.len()
            );
            assert!(m.ends_with('…'));
        }
        // A trailers-only status wins over nothing; trailers win over headers.
        let (a, _) = run(
            200,
            &[("grpc-status", "14")],
            Some(&[("grpc-status", "0")]),
            &framed(1),
        );
        assert_eq!(a.code, Some(0));
    }

    #[test]
    fn code_names() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(14), "UNAVAILABLE");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(17), "undefined code");
        assert_eq!(code_name(u32::MAX), "undefined code");
    }
}
