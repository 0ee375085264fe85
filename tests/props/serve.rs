//! `healthz_response`, the `[serve]` listener's request handler, on arbitrary methods,
//! paths, headers and identities.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use mtls_prober::agent::serve::{L5D_CLIENT_ID, MAX_ECHOED_HEADER_BYTES, XFCC};
use proptest::prelude::*;

use super::oracles::check_healthz;
use super::support::cases;

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        4 => Just(Method::GET),
        2 => proptest::sample::select(
            &["POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "get", "BREW"][..]
        )
        .prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 1..24)
            .prop_filter_map("not a token", |b| Method::from_bytes(&b).ok()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("/healthz".to_owned()),
        2 => proptest::sample::select(
            &["/", "", "/healthz/", "/HEALTHZ", "//healthz", "/healthz%00", "/metrics", "*"][..]
        )
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Values around the echo limit, XFCC-like, and arbitrary legal header bytes.
fn echo_value() -> impl Strategy<Value = HeaderValue> {
    let limit = MAX_ECHOED_HEADER_BYTES;
    prop_oneof![
        2 => "By=spiffe://cluster\\.local/ns/[a-z]{1,8}/sa/[a-z]{1,8};Hash=[0-9a-f]{8};URI=spiffe://[a-z.]{1,12}/[a-z/]{0,12}"
            .prop_map(|s| HeaderValue::from_str(&s).unwrap()),
        1 => "[a-z0-9.]{1,40}\\.identity\\.linkerd\\.cluster\\.local"
            .prop_map(|s| HeaderValue::from_str(&s).unwrap()),
        2 => (limit - 8..limit + 8).prop_map(|n| HeaderValue::from_str(&"a".repeat(n)).unwrap()),
        1 => (limit / 2 - 4..limit / 2 + 4).prop_map(|n| HeaderValue::from_str(&"\"\\".repeat(n / 2)).unwrap()),
        2 => prop::collection::vec(any::<u8>(), 0..64)
            .prop_filter_map("invalid value", |b| HeaderValue::from_bytes(&b).ok()),
        1 => "\\PC{0,32}".prop_filter_map("invalid value", |s| HeaderValue::from_bytes(s.as_bytes()).ok()),
        1 => (1usize..200_000).prop_map(|n| HeaderValue::from_str(&"x".repeat(n)).unwrap()),
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    let name = prop_oneof![
        3 => Just(HeaderName::from_static(XFCC)),
        3 => Just(HeaderName::from_static(L5D_CLIENT_ID)),
        1 => "[a-z][a-z0-9-]{0,12}".prop_map(|s| HeaderName::from_bytes(s.as_bytes()).unwrap()),
    ];
    prop::collection::vec((name, echo_value()), 0..5).prop_map(|pairs| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k, v);
        }
        h
    })
}

fn identity() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        "spiffe://cluster\\.local/ns/[a-z]{1,8}/sa/[a-z]{1,8}",
        any::<String>(),
    ])
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn any_request(
        method in method(),
        path in path(),
        headers in headers(),
        source in any::<String>(),
        own in identity(),
        peer in identity(),
    ) {
        check_healthz(&method, &path, &headers, &source, own.as_deref(), peer.as_deref());
    }
}
