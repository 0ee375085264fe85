//! Canned HTTP responses, including the exact error responses that mesh proxies send.
//!
//! The prober's HTTP classifier recognises proxies by status + headers + body, so the
//! canned proxy responses reproduce what the proxies' own code writes (each constructor
//! names its source). `date` and `content-length` are not listed: hyper adds both, as
//! Envoy's and Linkerd's HTTP codecs do.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;

/// The response body type of every hyper-served peer.
pub(super) type Body = BoxBody<Bytes, Infallible>;

/// An HTTP response a peer sends to every request.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Response {
    /// Status code (100..=999; anything else is answered as a 500 explaining why).
    pub status: u16,
    /// Header fields in order; names are sent lowercase (as Envoy and Linkerd do).
    pub headers: Vec<(String, String)>,
    /// The body; `content-length` is set from it.
    pub body: Bytes,
}

impl Response {
    /// 200, `content-type: text/plain`, `ok\n`: a healthy workload.
    pub fn ok() -> Self {
        Self::text(200, &[], "ok\n")
    }

    /// A bare status with a short plain-text body (`"503 Service Unavailable\n"`), as an
    /// application (not a proxy) would send it: no proxy headers.
    pub fn status(code: u16) -> Self {
        let reason = StatusCode::from_u16(code)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        Self::text(code, &[], &format!("{code} {reason}\n"))
    }

    /// What Istio's inbound sidecar sends when an AuthorizationPolicy denies a request.
    pub fn istio_rbac_denied() -> Self {
        // envoyproxy/envoy source/extensions/filters/http/rbac/rbac_filter.cc:
        //   sendLocalReply(Http::Code::Forbidden, "RBAC: access denied", …)
        // A local reply is `text/plain` (the reply comes before the router, so no
        // `x-envoy-upstream-service-time`). istio/istio
        // pilot/pkg/networking/util/proxy_headers.go: inbound listeners set
        // ServerName "istio-envoy".
        Self::text(403, &[("server", "istio-envoy")], "RBAC: access denied")
    }

    /// Envoy's 503 when its upstream mTLS handshake fails (here: the upstream's
    /// certificate did not verify), as an Istio client sidecar reports it.
    pub fn envoy_upstream_tls_error() -> Self {
        // envoyproxy/envoy source/common/router/router.cc Filter::onUpstreamReset:
        //   "upstream connect error or disconnect/reset before headers. "
        //   + ("retried and the latest " if the request was retried; Istio's default
        //   retry policy retries connect failures) + "reset reason: " + reason
        //   + ", transport failure reason: " + the TLS error; 503 unless the reset was a
        //   protocol error (502).
        // Reason string: source/common/http/utility.cc resetReasonToString
        //   (RemoteConnectionFailure → "remote connection failure").
        // TLS error format: source/extensions/transport_sockets/tls/ssl_socket.cc
        //   drainErrorQueue: "TLS_error:" + "|<code>:<lib>:<func>:<reason>" … + ":TLS_error_end"
        //   (BoringSSL: 268435581 = SSL routines CERTIFICATE_VERIFY_FAILED).
        // istio/istio pilot/pkg/networking/util/proxy_headers.go: outbound listeners keep
        // Envoy's default server name "envoy".
        Self::text(
            503,
            &[("server", "envoy")],
            "upstream connect error or disconnect/reset before headers. retried and the \
             latest reset reason: remote connection failure, transport failure reason: \
             TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:\
             TLS_error_end",
        )
    }

    /// Envoy's 503 when the upstream cluster has no healthy endpoint.
    pub fn envoy_no_healthy_upstream() -> Self {
        // envoyproxy/envoy source/common/router/router.cc
        //   Filter::sendNoHealthyUpstreamResponse:
        //   sendLocalReply(Http::Code::ServiceUnavailable, "no healthy upstream", …)
        Self::text(503, &[("server", "envoy")], "no healthy upstream")
    }

    /// Linkerd's inbound proxy denying a request by authorization policy: 403, empty
    /// body, the reason in `l5d-proxy-error`.
    pub fn linkerd_forbidden() -> Self {
        // linkerd/linkerd2-proxy linkerd/app/inbound/src/http/server.rs ServerRescue:
        //   HttpRouteUnauthorized → SyntheticHttpResponse::permission_denied (403,
        //   close_connection: false); linkerd/app/inbound/src/policy/http.rs:
        //   #[error("unauthorized request on route")] struct HttpRouteUnauthorized.
        // linkerd/app/core/src/errors/respond.rs http_response: `content-length: 0`, the
        // message in `l5d-proxy-error` (emitted to meshed clients, i.e. over mTLS).
        Self {
            status: 403,
            headers: vec![header("l5d-proxy-error", "unauthorized request on route")],
            body: Bytes::new(),
        }
    }

    /// Linkerd's outbound proxy failing a request because the upstream service has no
    /// available endpoint (its balancer is in fail-fast).
    pub fn linkerd_unavailable() -> Self {
        // linkerd/linkerd2-proxy linkerd/app/outbound/src/http/server.rs ServerRescue:
        //   FailFastError | LoadShedError → SyntheticHttpResponse::unavailable (503,
        //   close_connection: true); linkerd/stack/src/failfast.rs:
        //   #[error("service in fail-fast")], wrapped in the stack's context. With
        //   close_connection, linkerd/app/core/src/errors/respond.rs adds
        //   `connection: close` (HTTP/1.1) and `l5d-proxy-connection: close`.
        // (Older proxies answered connect failures with 502 and timeouts with 504 and
        // the same headers; the header, not the status, marks a proxy error.)
        Self {
            status: 503,
            headers: vec![
                header(
                    "l5d-proxy-error",
                    "logical service 10.96.0.10:8080: route default.http: \
                     backend default.service: service in fail-fast",
                ),
                header("connection", "close"),
                header("l5d-proxy-connection", "close"),
            ],
            body: Bytes::new(),
        }
    }

    /// nginx's answer to plaintext HTTP on an `ssl` port: 400 with its HTML page.
    pub fn nginx_plain_http_to_https() -> Self {
        // nginx src/http/ngx_http_special_response.c: ngx_http_error_497_page (status
        // 497 is sent as 400) followed by ngx_http_error_tail; `Connection: close`
        // because nginx closes the connection after this error.
        Self {
            status: 400,
            headers: vec![
                header("server", "nginx"),
                header("content-type", "text/html"),
                header("connection", "close"),
            ],
            body: Bytes::from_static(
                b"<html>\r\n\
                  <head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n\
                  <body>\r\n\
                  <center><h1>400 Bad Request</h1></center>\r\n\
                  <center>The plain HTTP request was sent to HTTPS port</center>\r\n\
                  <hr><center>nginx</center>\r\n\
                  </body>\r\n\
                  </html>\r\n",
            ),
        }
    }

    /// A `text/plain` response with extra headers.
    fn text(status: u16, extra: &[(&str, &str)], body: &str) -> Self {
        let mut headers = vec![header("content-type", "text/plain")];
        headers.extend(extra.iter().map(|(k, v)| header(k, v)));
        Self {
            status,
            headers,
            body: Bytes::from(body.to_owned()),
        }
    }

    /// The hyper response; an invalid status or header becomes a 500 that says why, so
    /// a typo in a canned response is visible instead of a dropped connection.
    pub(super) fn to_hyper(&self) -> hyper::Response<Body> {
        let mut builder = hyper::Response::builder().status(self.status);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(Full::new(self.body.clone()).boxed())
            .unwrap_or_else(|error| {
                let mut rsp = hyper::Response::new(
                    Full::new(Bytes::from(format!("invalid canned response: {error}\n"))).boxed(),
                );
                *rsp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                rsp
            })
    }
}

fn header(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_status_becomes_a_500_not_a_panic() {
        let rsp = Response {
            status: 1000,
            headers: vec![],
            body: Bytes::new(),
        };
        assert_eq!(rsp.to_hyper().status(), StatusCode::INTERNAL_SERVER_ERROR);
        let rsp = Response {
            status: 200,
            headers: vec![header("bad header", "x")],
            body: Bytes::new(),
        };
        assert_eq!(rsp.to_hyper().status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn status_has_a_short_body() {
        assert_eq!(Response::status(418).body, "418 I'm a teapot\n");
        assert_eq!(Response::status(599).body, "599 \n");
    }
}
