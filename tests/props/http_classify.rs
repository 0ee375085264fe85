//! `classify_response` and `response_refusal` on Envoy-, Linkerd- and nginx-like
//! responses, mutated, and on arbitrary statuses, headers and bodies.

use http::{HeaderMap, HeaderName, HeaderValue};
use mtls_prober::classify::http::BODY_PREFIX_LEN;
use mtls_prober::config::StatusSet;
use proptest::prelude::*;

use super::oracles::check_http;
use super::support::{apply, cases, edits};

/// Bodies real proxies and servers send.
pub const BODIES: &[&str] = &[
    "RBAC: access denied",
    "upstream connect error or disconnect/reset before headers. retried and the latest reset \
     reason: remote connection failure, transport failure reason: TLS_error:|268435581:SSL \
     routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end",
    "upstream connect error or disconnect/reset before headers. reset reason: connection \
     failure, transport failure reason: TLS error: 268436502:SSL routines:OPENSSL_internal:\
     SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "upstream connect error or disconnect/reset before headers. reset reason: connection \
     failure, transport failure reason: delayed connect error: 111",
    "upstream connect error or disconnect/reset before headers. reset reason: connection \
     termination",
    "no healthy upstream",
    "upstream request timeout",
    "NO_HEALTHY_UPSTREAM",
    "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n\
     <body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP request \
     was sent to HTTPS port</center>\r\n</body>\r\n</html>\r\n",
    "<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>\r\n\
     <body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>No required SSL \
     certificate was sent</center>\r\n</body>\r\n</html>\r\n",
    "<html>\r\n<head><title>400 The SSL certificate error</title></head>\r\n</html>\r\n",
    "Client sent an HTTP request to an HTTPS server.\n",
    "You're speaking plain HTTP to an SSL-enabled server port.",
    "This combination of host and port requires TLS.",
    "access denied",
    "Forbidden",
    "",
];

/// Header names a mesh response carries.
const NAMES: &[&str] = &[
    "server",
    "l5d-proxy-error",
    "x-envoy-upstream-service-time",
    "x-envoy-overloaded",
    "x-envoy-ratelimited",
    "x-envoy-decorator-operation",
    "content-type",
    "content-length",
    "www-authenticate",
    "grpc-status",
    "l5d-client-id",
];

/// Header values proxies send.
const VALUES: &[&str] = &[
    "istio-envoy",
    "envoy",
    "Envoy/1.30",
    "nginx/1.25.3",
    "linkerd",
    "",
    "client is not authorized",
    "unauthorized request on route",
    "connect error: Connection refused (os error 111)",
    "TLS handshake failed: invalid peer certificate: UnknownIssuer",
    "service in fail-fast",
    "text/plain",
    "3",
];

fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        4 => proptest::sample::select(VALUES).prop_map(HeaderValue::from_static),
        2 => "[ -~\t]{0,80}".prop_filter_map("invalid value", |s| HeaderValue::from_str(&s).ok()),
        1 => prop::collection::vec(any::<u8>(), 0..80)
            .prop_filter_map("invalid value", |b| HeaderValue::from_bytes(&b).ok()),
        1 => (1usize..20_000).prop_map(|n| HeaderValue::from_str(&"envoy ".repeat(n / 6 + 1)).unwrap()),
    ]
}

fn header_name() -> impl Strategy<Value = HeaderName> {
    prop_oneof![
        4 => proptest::sample::select(NAMES).prop_map(HeaderName::from_static),
        1 => "x-envoy-[a-z-]{1,12}".prop_map(|s| HeaderName::from_bytes(s.as_bytes()).unwrap()),
        1 => "[a-z][a-z0-9-]{0,16}".prop_map(|s| HeaderName::from_bytes(s.as_bytes()).unwrap()),
    ]
}

pub fn headers() -> impl Strategy<Value = HeaderMap> {
    prop::collection::vec((header_name(), header_value()), 0..6).prop_map(|pairs| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k, v);
        }
        h
    })
}

/// Real bodies, damaged, with their case changed, or arbitrary; at most the prefix
/// length the prober keeps.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let real = proptest::sample::select(BODIES).prop_map(|b| b.as_bytes().to_vec());
    prop_oneof![
        3 => real.clone(),
        3 => (real.clone(), edits(4)).prop_map(|(b, e)| apply(b, &e)),
        1 => real.prop_map(|b| b.to_ascii_uppercase()),
        1 => (proptest::sample::select(BODIES), proptest::sample::select(BODIES))
            .prop_map(|(a, b)| format!("{a}{b}").into_bytes()),
        2 => prop::collection::vec(any::<u8>(), 0..BODY_PREFIX_LEN),
    ]
    .prop_map(|mut b| {
        b.truncate(BODY_PREFIX_LEN);
        b
    })
}

/// Statuses hyper would pass (100..=999), the interesting ones, and any u16.
fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => proptest::sample::select(&[200u16, 204, 301, 400, 403, 404, 426, 495, 496, 500, 502, 503, 504][..]),
        2 => 100u16..=999,
        1 => any::<u16>(),
    ]
}

/// The default 200-399, or up to four ranges as `expect_status` allows (100..=599).
fn expect() -> impl Strategy<Value = StatusSet> {
    prop_oneof![
        2 => Just(StatusSet::default_success()),
        1 => prop::collection::vec((100u16..=599, 0u16..100), 1..4).prop_map(|v| {
            StatusSet::from_ranges(v.into_iter().map(|(lo, w)| (lo, (lo + w).min(599))).collect())
        }),
    ]
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn classify_any_response(status in status(), headers in headers(), body in body(), expect in expect()) {
        check_http(status, &headers, &body, &expect);
    }

    /// The Envoy and Linkerd statuses with the Envoy and Linkerd bodies, every mix.
    #[test]
    fn classify_mesh_answers(
        status in proptest::sample::select(&[403u16, 502, 503, 504][..]),
        headers in headers(),
        body in body(),
    ) {
        check_http(status, &headers, &body, &StatusSet::default_success());
    }

    /// Envoy's upstream-failure body with an arbitrary cause after "reset reason:":
    /// the cause is quoted in the detail, which must stay one bounded line.
    #[test]
    fn upstream_cause_is_one_line(
        status in 502u16..=504,
        cause in prop::collection::vec(any::<u8>(), 0..300),
        headers in headers(),
    ) {
        let mut body = b"upstream connect error or disconnect/reset before headers. reset reason: ".to_vec();
        body.extend_from_slice(&cause);
        body.truncate(BODY_PREFIX_LEN);
        check_http(status, &headers, &body, &StatusSet::default_success());
    }
}
