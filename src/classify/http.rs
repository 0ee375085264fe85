//! Request-stage classification: HTTP responses and errors.
//!
//! Mesh proxies answer in recognisable ways:
//! - Istio/Envoy RBAC deny: 403, `content-type: text/plain`, body `RBAC: access denied`,
//!   `server: istio-envoy` (or `envoy`).
//! - Envoy upstream failures: 503 with a body starting `upstream connect error or
//!   disconnect/reset before headers`, naming `TLS error`/`TLS_error`, `SSL routines` or
//!   `CERTIFICATE_VERIFY_FAILED` when the upstream mTLS handshake failed; `no healthy
//!   upstream` when the cluster has no endpoints.
//! - Linkerd's proxy synthesises empty-bodied responses carrying an `l5d-proxy-error`
//!   header with the error message: 403 for authorization denials, 502/503/504 for
//!   failures toward the upstream.

use http::HeaderMap;

use super::tls::escape_bytes;
use super::{Failure, Reason};
use crate::config::StatusSet;

/// How many body bytes are kept for classification and details.
pub const BODY_PREFIX_LEN: usize = 512;

/// What the classifier sees of a response.
#[derive(Clone, Copy, Debug)]
pub struct ResponseView<'a> {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: &'a HeaderMap,
    /// The first bytes of the body (up to [`BODY_PREFIX_LEN`]).
    pub body_prefix: &'a [u8],
}

impl ResponseView<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn server(&self) -> &str {
        self.header("server").unwrap_or("")
    }

    fn is_envoy(&self) -> bool {
        let server = self.server().to_ascii_lowercase();
        server.contains("envoy")
            || self
                .headers
                .keys()
                .any(|k| k.as_str().starts_with("x-envoy-"))
    }

    fn linkerd_error(&self) -> Option<&str> {
        self.header("l5d-proxy-error")
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(self.body_prefix).into_owned()
    }

    /// `server: …; body: "…"` for details, bounded and escaped.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.header("server") {
            parts.push(format!("server: {}", truncate(s, 60)));
        }
        if let Some(e) = self.linkerd_error() {
            parts.push(format!("l5d-proxy-error: {}", truncate(e, 160)));
        }
        if !self.body_prefix.is_empty() {
            let shown = &self.body_prefix[..self.body_prefix.len().min(160)];
            parts.push(format!("body: \"{}\"", escape_bytes(shown)));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join("; "))
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

const UPSTREAM_TLS_MARKERS: &[&str] = &[
    "tls error",
    "tls_error",
    "ssl routines",
    "certificate_verify_failed",
    "tls handshake",
    "certificate",
];

/// Whether a proxy's error text names a TLS failure toward the upstream (Envoy's
/// `TLS error`, BoringSSL's `SSL routines`, `CERTIFICATE_VERIFY_FAILED`, …); also used
/// for gRPC `UNAVAILABLE` messages, which carry the same text.
pub fn names_upstream_tls_failure(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    UPSTREAM_TLS_MARKERS.iter().any(|m| lower.contains(m))
}

/// Checks a response against `expect_status`; outside it, says which layer answered.
pub fn classify_response(view: &ResponseView<'_>, expect: &StatusSet) -> Result<(), Failure> {
    if expect.contains(view.status) {
        return Ok(());
    }
    let status = view.status;
    let body = view.body_text().to_ascii_lowercase();
    if let Some(f) = client_cert_refused_over_http(status, &body, view) {
        return Err(f);
    }
    if status == 403 {
        if body.contains("rbac: access denied") {
            return Err(Failure::refusal(
                Reason::RbacDenied,
                format!(
                    "HTTP 403 from Istio's authorization layer (Envoy \"RBAC: access denied\"): \
                     the certificate was accepted, an AuthorizationPolicy denies this request{}",
                    view.describe()
                ),
            ));
        }
        if let Some(msg) = view.linkerd_error() {
            return Err(Failure::refusal(
                Reason::RbacDenied,
                format!(
                    "HTTP 403 from Linkerd's authorization policy (l5d-proxy-error: {}): the \
                     identity was accepted, policy denies it",
                    truncate(msg, 160)
                ),
            ));
        }
        if view.is_envoy() && (body.is_empty() || body.contains("access denied")) {
            return Err(Failure::refusal(
                Reason::RbacDenied,
                format!(
                    "HTTP 403 from the Envoy proxy's authorization{}",
                    view.describe()
                ),
            ));
        }
    }
    if matches!(status, 502..=504) {
        if let Some(msg) = view.linkerd_error() {
            let lower = msg.to_ascii_lowercase();
            let reason = if UPSTREAM_TLS_MARKERS.iter().any(|m| lower.contains(m)) {
                Reason::UpstreamTlsError
            } else {
                Reason::UpstreamUnavailable
            };
            return Err(Failure::new(
                reason,
                format!(
                    "HTTP {status} from the Linkerd proxy toward the upstream (l5d-proxy-error: {})",
                    truncate(msg, 200)
                ),
            ));
        }
        if body.contains("upstream connect error")
            || body.contains("disconnect/reset before headers")
        {
            let reason = if UPSTREAM_TLS_MARKERS.iter().any(|m| body.contains(m)) {
                Reason::UpstreamTlsError
            } else {
                Reason::UpstreamUnavailable
            };
            let what = if reason == Reason::UpstreamTlsError {
                "the mesh proxy's mTLS handshake toward the upstream failed"
            } else {
                "the mesh proxy could not connect to the upstream"
            };
            // Envoy names the cause after "reset reason:" / "transport failure reason:".
            let text = view.body_text();
            let cause = ["transport failure reason:", "reset reason:"]
                .iter()
                .find_map(|m| text.find(m).map(|i| text[i..].trim()))
                .map(|c| format!(": {}", truncate(c, 240).replace(char::is_control, " ")))
                .unwrap_or_default();
            return Err(Failure::new(
                reason,
                format!(
                    "HTTP {status} from {:.60}: {what}{cause}",
                    if view.server().is_empty() {
                        "the proxy"
                    } else {
                        view.server()
                    }
                ),
            ));
        }
        if body.contains("no healthy upstream")
            || body.contains("upstream request timeout")
            || body.contains("no_healthy_upstream")
        {
            return Err(Failure::new(
                Reason::UpstreamUnavailable,
                format!(
                    "HTTP {status}: the mesh proxy has no healthy upstream{}",
                    view.describe()
                ),
            ));
        }
    }
    Err(Failure::new(
        Reason::UnexpectedStatus,
        format!("HTTP {status}, expected {expect}{}", view.describe()),
    ))
}

/// nginx (and ingress-nginx) with `ssl_verify_client on` completes the handshake
/// whatever the client sent and refuses in HTTP instead: 400 "No required SSL
/// certificate was sent" (its internal 496) or 400 "The SSL certificate error" (495,
/// for an untrusted, expired or unverifiable client certificate). The layer that broke
/// is the server's client-certificate check, so these are the TLS reasons, not
/// `unexpected_status`; 495/496 are what a server with an `error_page` for them shows.
fn client_cert_refused_over_http(
    status: u16,
    body: &str,
    view: &ResponseView<'_>,
) -> Option<Failure> {
    let required = status == 496 || (status == 400 && body.contains(NGINX_NO_CERT));
    let rejected = status == 495 || (status == 400 && body.contains(NGINX_BAD_CERT));
    let (reason, what) = match (required, rejected) {
        (true, _) => (
            Reason::ClientCertRequired,
            "the server requires a client certificate and checks it after the handshake",
        ),
        (false, true) => (
            Reason::ClientCertRejected,
            "the server did not accept our client certificate (checked after the handshake)",
        ),
        (false, false) => return None,
    };
    Some(Failure::refusal(
        reason,
        format!("HTTP {status}: {what}{}", view.describe()),
    ))
}

/// nginx's body for a missing client certificate (lower-cased).
const NGINX_NO_CERT: &str = "no required ssl certificate was sent";
/// nginx's body for a client certificate that failed verification (lower-cased).
const NGINX_BAD_CERT: &str = "the ssl certificate error";

/// Phrases TLS servers use in a 400 answer to a plaintext request.
const TLS_REQUIRED_PHRASES: &[&str] = &[
    "plain http request was sent to https port",      // nginx
    "client sent an http request to an https server", // Go net/http
    "speaking plain http to an ssl-enabled server port", // Apache httpd
    "this combination of host and port requires tls", // Apache httpd 2.4
];

/// Whether a response is the server refusing the request (what `expect = "reject"`
/// accepts): a 403, a 426 Upgrade Required, or a 400 that says TLS is required.
pub fn response_refusal(view: &ResponseView<'_>) -> Option<String> {
    match view.status {
        403 => Some(format!("the server answered HTTP 403{}", view.describe())),
        426 => Some(format!(
            "the server answered HTTP 426 Upgrade Required: TLS is required{}",
            view.describe()
        )),
        400 => {
            let body = view.body_text().to_ascii_lowercase();
            TLS_REQUIRED_PHRASES
                .iter()
                .any(|p| body.contains(p))
                .then(|| {
                    format!(
                        "the TLS endpoint refused plaintext with HTTP 400{}",
                        view.describe()
                    )
                })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn classify(
        status: u16,
        h: &[(&'static str, &'static str)],
        body: &str,
    ) -> Result<(), Failure> {
        let headers = headers(h);
        classify_response(
            &ResponseView {
                status,
                headers: &headers,
                body_prefix: body.as_bytes(),
            },
            &StatusSet::default_success(),
        )
    }

    #[test]
    fn mesh_responses() {
        const ISTIO: &[(&str, &str)] = &[("server", "istio-envoy"), ("content-type", "text/plain")];
        let istio = ISTIO;
        type Case = (
            u16,
            &'static [(&'static str, &'static str)],
            &'static str,
            Reason,
        );
        let cases: Vec<Case> = vec![
            (403, istio, "RBAC: access denied", Reason::RbacDenied),
            (
                403,
                &[("l5d-proxy-error", "client is not authorized")],
                "",
                Reason::RbacDenied,
            ),
            (403, &[("server", "envoy")], "", Reason::RbacDenied),
            (
                403,
                &[("server", "nginx")],
                "forbidden",
                Reason::UnexpectedStatus,
            ),
            (
                503,
                istio,
                "upstream connect error or disconnect/reset before headers. retried and the \
                 latest reset reason: remote connection failure, transport failure reason: \
                 TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end",
                Reason::UpstreamTlsError,
            ),
            (
                503,
                istio,
                "upstream connect error or disconnect/reset before headers. reset reason: \
                 connection failure, transport failure reason: TLS error: 268435581:SSL \
                 routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED",
                Reason::UpstreamTlsError,
            ),
            (
                503,
                istio,
                "upstream connect error or disconnect/reset before headers. reset reason: \
                 connection failure, transport failure reason: delayed connect error: 111",
                Reason::UpstreamUnavailable,
            ),
            (
                503,
                istio,
                "no healthy upstream",
                Reason::UpstreamUnavailable,
            ),
            (
                504,
                istio,
                "upstream request timeout",
                Reason::UpstreamUnavailable,
            ),
            (
                502,
                &[(
                    "l5d-proxy-error",
                    "connect error: Connection refused (os error 111)",
                )],
                "",
                Reason::UpstreamUnavailable,
            ),
            (
                502,
                &[(
                    "l5d-proxy-error",
                    "TLS handshake failed: invalid peer certificate: UnknownIssuer",
                )],
                "",
                Reason::UpstreamTlsError,
            ),
            (
                503,
                &[("server", "nginx")],
                "maintenance",
                Reason::UnexpectedStatus,
            ),
            (
                400,
                &[("server", "nginx/1.22.1")],
                "<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>",
                Reason::ClientCertRequired,
            ),
            (
                400,
                &[("server", "nginx")],
                "<html>\r\n<head><title>400 The SSL certificate error</title></head>",
                Reason::ClientCertRejected,
            ),
            (496, &[], "", Reason::ClientCertRequired),
            (495, &[], "", Reason::ClientCertRejected),
            (
                400,
                &[("server", "nginx")],
                "bad request",
                Reason::UnexpectedStatus,
            ),
            (500, &[], "boom", Reason::UnexpectedStatus),
            (404, istio, "", Reason::UnexpectedStatus),
        ];
        for (status, h, body, want) in cases {
            let f = classify(status, h, body).unwrap_err();
            assert_eq!(f.reason, want, "{status} {body}: {}", f.detail);
            // A client-certificate refusal is what `expect = "reject"` wants to see.
            let refusal = matches!(
                want,
                Reason::ClientCertRequired | Reason::ClientCertRejected | Reason::RbacDenied
            );
            assert_eq!(f.refused_by_peer, refusal, "{status} {body}");
            assert!(f.detail.contains(&status.to_string()), "{}", f.detail);
        }
        assert!(classify(200, &[], "ok").is_ok());
        assert!(classify(301, &[], "").is_ok());
    }

    #[test]
    fn unexpected_status_names_expectation_and_body() {
        let f = classify(500, &[("server", "gunicorn")], "Internal\r\nError").unwrap_err();
        assert_eq!(
            f.detail,
            "HTTP 500, expected 200-399 (server: gunicorn; body: \"Internal\\r\\nError\")"
        );
    }

    #[test]
    fn refusals() {
        let h = headers(&[("server", "nginx")]);
        let view = |status, body: &'static str| ResponseView {
            status,
            headers: &h,
            body_prefix: body.as_bytes(),
        };
        assert!(response_refusal(&view(403, "")).is_some());
        assert!(response_refusal(&view(426, "")).is_some());
        assert!(
            response_refusal(&view(
                400,
                "<html><center>The plain HTTP request was sent to HTTPS port</center>"
            ))
            .is_some()
        );
        assert!(
            response_refusal(&view(
                400,
                "Client sent an HTTP request to an HTTPS server."
            ))
            .is_some()
        );
        assert!(response_refusal(&view(400, "bad request")).is_none());
        assert!(response_refusal(&view(200, "")).is_none());
        assert!(response_refusal(&view(503, "")).is_none());
    }
}
