//! The one resource of the `[serve]` listener, as a pure function: request parts in,
//! response out, no I/O. Kept apart from the connection handling so it can be tested
//! (and fuzzed) on arbitrary input without a socket or a certificate.

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use serde::Serialize;

/// The only path served.
pub const HEALTHZ_PATH: &str = "/healthz";

/// The largest header value echoed back; a longer one is reported as `null`. The
/// response must stay small whatever a client sends (the request head itself is capped
/// at 16 KiB by the HTTP layer).
pub const MAX_ECHOED_HEADER_BYTES: usize = 4096;

/// The header Envoy (Istio) sets with the downstream client certificate's identity.
pub const XFCC: &str = "x-forwarded-client-cert";

/// The header the Linkerd proxy sets with the meshed client's identity.
pub const L5D_CLIENT_ID: &str = "l5d-client-id";

/// The JSON body of `GET /healthz`, fields in the order SPEC §7 lists them.
#[derive(Serialize)]
struct Healthz<'a> {
    source: &'a str,
    spiffe_id: Option<&'a str>,
    peer_spiffe_id: Option<&'a str>,
    xfcc: Option<String>,
    l5d_client_id: Option<String>,
}

/// Answers one request to the `[serve]` listener.
///
/// * `GET /healthz` → 200, `application/json`:
///   `{"source", "spiffe_id", "peer_spiffe_id", "xfcc", "l5d_client_id"}`, where
///   `spiffe_id` is `own_spiffe_id` (the certificate this connection was served with),
///   `peer_spiffe_id` is the client's SPIFFE ID *as verified* by the TLS layer (the
///   caller must pass `None` for an unverified or absent certificate), and the last two
///   echo the `x-forwarded-client-cert` and `l5d-client-id` request headers, so a prober
///   behind a sidecar sees how the sidecar presented it.
/// * any other method on `/healthz` → 405 with `allow: GET`;
/// * any other path → 404.
///
/// `path` is the URI path without the query (`/healthz?x` is `/healthz`). An echoed
/// header is `null` when it is absent, longer than [`MAX_ECHOED_HEADER_BYTES`] (all its
/// occurrences joined with `", "`, the HTTP field-combination rule), not valid UTF-8, or
/// contains a control character. Never panics, whatever the input.
pub fn healthz_response(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    source: &str,
    own_spiffe_id: Option<&str>,
    peer_spiffe_id: Option<&str>,
) -> Response<Bytes> {
    if path != HEALTHZ_PATH {
        return text(
            StatusCode::NOT_FOUND,
            "not found: only GET /healthz is served\n",
        );
    }
    if method != Method::GET {
        let mut rsp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: only GET /healthz is served\n",
        );
        rsp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return rsp;
    }
    let body = Healthz {
        source,
        spiffe_id: own_spiffe_id,
        peer_spiffe_id,
        xfcc: echoed(headers, XFCC),
        l5d_client_id: echoed(headers, L5D_CLIENT_ID),
    };
    match serde_json::to_vec(&body) {
        Ok(json) => {
            let mut rsp = Response::new(Bytes::from(json));
            set_common(&mut rsp, "application/json");
            rsp
        }
        // Unreachable in practice (strings and options always serialize), but a
        // bounded error is cheaper to reason about than a panic in a request path.
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode response\n",
        ),
    }
}

/// The value of header `name` as it may be echoed: every occurrence joined with `", "`,
/// or `None` when absent, too long, not UTF-8 or containing control characters.
fn echoed(headers: &HeaderMap, name: &'static str) -> Option<String> {
    let name = HeaderName::from_static(name);
    let mut out = String::new();
    for (i, value) in headers.get_all(&name).iter().enumerate() {
        // Checked before appending, so the work per request is bounded by the limit.
        let sep = if i == 0 { 0 } else { 2 };
        if out.len() + sep + value.len() > MAX_ECHOED_HEADER_BYTES {
            return None;
        }
        let s = std::str::from_utf8(value.as_bytes()).ok()?;
        if s.chars().any(char::is_control) {
            return None;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(s);
    }
    // Only absence is null: an empty value is what the client (or its sidecar) sent.
    headers.contains_key(&name).then_some(out)
}

fn text(status: StatusCode, body: &'static str) -> Response<Bytes> {
    let mut rsp = Response::new(Bytes::from_static(body.as_bytes()));
    *rsp.status_mut() = status;
    set_common(&mut rsp, "text/plain; charset=utf-8");
    rsp
}

fn set_common(rsp: &mut Response<Bytes>, content_type: &'static str) {
    let headers = rsp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The answer describes one connection; a cache in between must not replay it.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: Option<&str> = Some("spiffe://cluster.local/ns/monitoring/sa/mtls-prober");

    fn get(headers: &HeaderMap) -> serde_json::Value {
        let rsp = healthz_response(&Method::GET, "/healthz", headers, "node-a", OWN, None);
        assert_eq!(rsp.status(), StatusCode::OK);
        assert_eq!(rsp.headers()[CONTENT_TYPE], "application/json");
        serde_json::from_slice(rsp.body()).unwrap()
    }

    fn with(name: &'static str, values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(name, HeaderValue::from_bytes(v).unwrap());
        }
        headers
    }

    #[test]
    fn body_has_exactly_the_spec_fields_in_order() {
        let rsp = healthz_response(
            &Method::GET,
            "/healthz",
            &HeaderMap::new(),
            "node-a",
            OWN,
            Some("spiffe://cluster.local/ns/x/sa/y"),
        );
        assert_eq!(
            std::str::from_utf8(rsp.body()).unwrap(),
            r#"{"source":"node-a","spiffe_id":"spiffe://cluster.local/ns/monitoring/sa/mtls-prober","peer_spiffe_id":"spiffe://cluster.local/ns/x/sa/y","xfcc":null,"l5d_client_id":null}"#
        );
        assert_eq!(rsp.headers()[CACHE_CONTROL], "no-store");
    }

    #[test]
    fn missing_identities_are_null() {
        let rsp = healthz_response(&Method::GET, "/healthz", &HeaderMap::new(), "", None, None);
        let json: serde_json::Value = serde_json::from_slice(rsp.body()).unwrap();
        assert_eq!(json["source"], "");
        assert!(json["spiffe_id"].is_null());
        assert!(json["peer_spiffe_id"].is_null());
    }

    #[test]
    fn headers_are_echoed_and_joined() {
        let mut headers = with(XFCC, &[b"By=spiffe://a/b;URI=spiffe://c/d", b"By=x"]);
        headers.insert(
            L5D_CLIENT_ID,
            HeaderValue::from_static("web.ns.serviceaccount.identity.linkerd.cluster.local"),
        );
        let json = get(&headers);
        assert_eq!(json["xfcc"], "By=spiffe://a/b;URI=spiffe://c/d, By=x");
        assert_eq!(
            json["l5d_client_id"],
            "web.ns.serviceaccount.identity.linkerd.cluster.local"
        );
    }

    #[test]
    fn empty_header_is_empty_not_null() {
        assert_eq!(get(&with(XFCC, &[b""]))["xfcc"], "");
    }

    #[test]
    fn header_at_the_limit_is_echoed_one_byte_over_is_null() {
        let at = vec![b'a'; MAX_ECHOED_HEADER_BYTES];
        assert_eq!(
            get(&with(XFCC, &[&at]))["xfcc"].as_str().unwrap().len(),
            MAX_ECHOED_HEADER_BYTES
        );
        let over = vec![b'a'; MAX_ECHOED_HEADER_BYTES + 1];
        assert!(get(&with(XFCC, &[&over]))["xfcc"].is_null());
        // The limit is on the combined value, not per occurrence.
        let half = vec![b'a'; MAX_ECHOED_HEADER_BYTES / 2];
        assert!(get(&with(L5D_CLIENT_ID, &[&half, &half]))["l5d_client_id"].is_null());
    }

    #[test]
    fn huge_header_is_null() {
        let huge = vec![b'x'; 1 << 20];
        assert!(get(&with(XFCC, &[&huge]))["xfcc"].is_null());
    }

    #[test]
    fn non_utf8_or_control_characters_are_null() {
        // obs-text that is not UTF-8.
        assert!(get(&with(XFCC, &[b"caf\xe9"]))["xfcc"].is_null());
        // A tab is a legal header byte but not visible; U+0085 (NEL) is valid UTF-8
        // and legal obs-text, but a control character. (DEL and NUL never get this
        // far: `HeaderValue` refuses them.)
        assert!(get(&with(XFCC, &[b"a\tb"]))["xfcc"].is_null());
        assert!(get(&with(L5D_CLIENT_ID, &["a\u{85}b".as_bytes()]))["l5d_client_id"].is_null());
        // One bad occurrence spoils the combined value.
        assert!(get(&with(XFCC, &[b"ok", b"\xff"]))["xfcc"].is_null());
    }

    #[test]
    fn utf8_and_json_metacharacters_round_trip() {
        let value = "By=\"spiffe://td/ns/é\";URI=</script>\\";
        let json = get(&with(XFCC, &[value.as_bytes()]));
        assert_eq!(json["xfcc"], value);
    }

    #[test]
    fn other_paths_are_404() {
        for path in [
            "/",
            "/healthz/",
            "/HEALTHZ",
            "/metrics",
            "",
            "//healthz",
            "/healthz%00",
        ] {
            let rsp = healthz_response(&Method::GET, path, &HeaderMap::new(), "n", OWN, None);
            assert_eq!(rsp.status(), StatusCode::NOT_FOUND, "{path:?}");
            assert!(rsp.body().len() < 100);
            assert!(!rsp.body().windows(6).any(|w| w == b"spiffe"));
        }
    }

    #[test]
    fn other_methods_are_405_with_allow() {
        let odd = Method::from_bytes(b"BREW").unwrap();
        for method in [
            Method::POST,
            Method::HEAD,
            Method::DELETE,
            Method::OPTIONS,
            odd,
        ] {
            let rsp = healthz_response(&method, "/healthz", &HeaderMap::new(), "n", OWN, None);
            assert_eq!(rsp.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
            assert_eq!(rsp.headers()[ALLOW], "GET");
        }
    }

    #[test]
    fn arbitrary_inputs_never_panic() {
        // A cheap deterministic sweep over odd bytes in every input; the property is
        // "returns a bounded response", checked by the size assertion.
        let mut seed: u32 = 0x9e37_79b9;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..2000 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| (next() % 256) as u8).collect();
            let lossy = String::from_utf8_lossy(&bytes).into_owned();
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                headers.append(XFCC, v.clone());
                headers.append(L5D_CLIENT_ID, v);
            }
            let method = Method::from_bytes(&bytes).unwrap_or(Method::GET);
            for path in [lossy.as_str(), "/healthz"] {
                let rsp =
                    healthz_response(&method, path, &headers, &lossy, Some(&lossy), Some(&lossy));
                assert!(rsp.body().len() < 2 * MAX_ECHOED_HEADER_BYTES + 1024);
            }
        }
    }
}
