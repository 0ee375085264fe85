//! `classify_grpc` on gRPC answers as servers and proxies send them — a framed
//! `HealthCheckResponse` with the status in trailers, trailers-only errors, Envoy's and
//! Linkerd's messages — mutated, and on arbitrary statuses, headers, trailers and DATA.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::http_classify::{BODIES, headers};
use super::oracles::check_grpc;
use super::support::{apply, cases, edits};

/// grpc-status values: every defined code, out-of-range and malformed ones.
const STATUSES: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "10",
    "11",
    "12",
    "13",
    "14",
    "15",
    "16",
    "17",
    "99",
    "4294967295",
    "99999999999",
    "-1",
    "OK",
    "",
    " 0",
    "0x0",
    "00",
];

/// grpc-message values (percent-encoded as on the wire).
const MESSAGES: &[&str] = &[
    "RBAC%3A%20access%20denied",
    "upstream connect error or disconnect/reset before headers. reset reason: connection \
     failure, transport failure reason: TLS error: 268435581:SSL routines:OPENSSL_internal:\
     CERTIFICATE_VERIFY_FAILED",
    "no healthy upstream",
    "unknown service prod.v1.Api",
    "%E2%9C%93 ok",
    "%0A%0D%00",
    "%",
    "%zz%4",
    "",
];

fn framed(status: i32) -> Vec<u8> {
    // A HealthCheckResponse is field 1 as a varint.
    let mut msg = Vec::new();
    if status != 0 {
        msg.push(0x08);
        let mut v = status as u32 as u64;
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                msg.push(b);
                break;
            }
            msg.push(b | 0x80);
        }
    }
    let mut out = vec![0];
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(&msg);
    out
}

fn status_map() -> impl Strategy<Value = HeaderMap> {
    (
        proptest::sample::select(STATUSES),
        proptest::option::of(proptest::sample::select(MESSAGES)),
        headers(),
    )
        .prop_map(|(status, message, mut h)| {
            h.insert(
                HeaderName::from_static("grpc-status"),
                HeaderValue::from_static(status),
            );
            if let Some(m) = message.and_then(|m| HeaderValue::from_str(m).ok()) {
                h.insert(HeaderName::from_static("grpc-message"), m);
            }
            h
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let real = prop_oneof![
        (-1i32..5).prop_map(framed),
        proptest::sample::select(BODIES).prop_map(|b| b.as_bytes().to_vec()),
    ];
    prop_oneof![
        3 => real.clone(),
        2 => (real, edits(4)).prop_map(|(b, e)| apply(b, &e)),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => proptest::sample::select(&[200u16, 403, 404, 502, 503, 504][..]),
        1 => any::<u16>(),
    ]
}

fn service() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z.]{1,30}", ".{0,40}"]
}

proptest! {
    #![proptest_config(cases(512))]

    /// An answer with its status in the trailers (or, trailers-only, in the headers).
    #[test]
    fn classify_grpc_answers(
        status in status(),
        headers in headers(),
        trailers_only in any::<bool>(),
        statuses in status_map(),
        body in body(),
        service in service(),
    ) {
        if trailers_only {
            let mut h = headers;
            h.extend(statuses);
            check_grpc(status, &h, None, &body, &service);
        } else {
            check_grpc(status, &headers, Some(&statuses), &body, &service);
        }
    }

    /// Anything at all, with or without trailers.
    #[test]
    fn classify_anything(
        status in any::<u16>(),
        headers in headers(),
        trailers in proptest::option::of(headers()),
        body in prop::collection::vec(any::<u8>(), 0..128),
        service in service(),
    ) {
        check_grpc(status, &headers, trailers.as_ref(), &body, &service);
    }
}
