//! The far side's view: when a target answers in the `[serve]` `/healthz` format
//! (SPEC §7: `source`, `spiffe_id`, `peer_spiffe_id`, `xfcc`, `l5d_client_id`), the
//! probe keeps how that agent saw the connection, and says so when it saw a client
//! identity other than ours: something on the path (a proxy or sidecar) terminated our
//! TLS and re-originated it.
//!
//! Bounded and strict: at most [`MAX_BODY`] bytes, exactly those five keys, strings or
//! null, each within the bounds the `[serve]` side itself keeps. Anything else is not
//! that format and is ignored.

use serde_json::Value;

use crate::report::FarSide;

/// The largest body parsed: two echoed headers (4 KiB each in `[serve]`), two SPIFFE IDs
/// (2 KiB each) and a source name, with room for JSON escapes.
pub const MAX_BODY: usize = 24 * 1024;
/// The longest `source` accepted (as `[agent].source`).
const MAX_SOURCE: usize = 253;
/// The longest SPIFFE ID accepted (the SPIFFE spec's URI limit).
const MAX_ID: usize = 2048;
/// The longest echoed header accepted (as `[serve]` echoes them).
const MAX_HEADER: usize = 4096;

/// Parses a `[serve]` `/healthz` body; `None` for anything else.
pub fn parse(body: &[u8]) -> Option<FarSide> {
    if body.len() > MAX_BODY || body.first() != Some(&b'{') {
        return None;
    }
    let Value::Object(map) = serde_json::from_slice::<Value>(body).ok()? else {
        return None;
    };
    const KEYS: [&str; 5] = [
        "source",
        "spiffe_id",
        "peer_spiffe_id",
        "xfcc",
        "l5d_client_id",
    ];
    if map.len() != KEYS.len() || !KEYS.iter().all(|k| map.contains_key(*k)) {
        return None;
    }
    let text = |key: &str, max: usize| -> Option<Option<String>> {
        match &map[key] {
            Value::Null => Some(None),
            Value::String(s) if s.len() <= max && !s.chars().any(char::is_control) => {
                Some(Some(s.clone()))
            }
            _ => None,
        }
    };
    Some(FarSide {
        source: text("source", MAX_SOURCE)??,
        spiffe_id: text("spiffe_id", MAX_ID)?,
        peer_spiffe_id: text("peer_spiffe_id", MAX_ID)?,
        xfcc: text("xfcc", MAX_HEADER)?,
        l5d_client_id: text("l5d_client_id", MAX_HEADER)?,
    })
}

/// The client identity the far side saw: the SPIFFE ID its TLS verified, else the
/// `URI` of the nearest hop in `x-forwarded-client-cert` (a sidecar terminated the TLS
/// and passed on what it verified).
pub fn seen_identity(f: &FarSide) -> Option<String> {
    if let Some(id) = &f.peer_spiffe_id {
        return Some(id.clone());
    }
    xfcc_uri(f.xfcc.as_deref()?)
}

/// A note for the report when the far side saw a client identity other than `ours`
/// (`None` when it saw ours, or when we presented none to compare with).
pub fn note(f: &FarSide, ours: Option<&str>) -> Option<String> {
    let ours = ours?;
    match seen_identity(f) {
        Some(seen) if seen == ours => None,
        Some(seen) => Some(format!(
            "the far side ({}) saw the client identity {seen}, not ours ({ours}): something on \
             the path terminates our TLS and re-originates it (a proxy or sidecar)",
            f.source
        )),
        None => Some(format!(
            "the far side ({}) saw no client identity although we presented {ours}: something \
             on the path terminates our TLS",
            f.source
        )),
    }
}

/// The `URI` of the last (nearest) element of an XFCC header. Elements are separated by
/// `,` and pairs by `;`, both except inside double quotes (Envoy quotes values that
/// contain them).
fn xfcc_uri(xfcc: &str) -> Option<String> {
    let last = split_unquoted(xfcc, ',').pop()?;
    split_unquoted(last, ';').into_iter().find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("uri")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|v| !v.is_empty())
    })
}

fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method};

    use super::*;
    use crate::agent::serve::healthz_response;

    const OURS: &str = "spiffe://cluster.local/ns/monitoring/sa/mtls-prober";
    const PROXY: &str = "spiffe://cluster.local/ns/edge/sa/gateway";

    /// The body our own `[serve]` writes, so the two ends cannot drift apart.
    fn served(peer: Option<&str>, xfcc: Option<&str>) -> Bytes {
        let mut headers = HeaderMap::new();
        if let Some(x) = xfcc {
            headers.insert("x-forwarded-client-cert", HeaderValue::from_str(x).unwrap());
        }
        healthz_response(
            &Method::GET,
            "/healthz",
            &headers,
            "node-b",
            Some("spiffe://cluster.local/ns/monitoring/sa/mtls-prober"),
            peer,
        )
        .into_body()
    }

    #[test]
    fn our_own_serve_body_is_read_and_compared() {
        let f = parse(&served(Some(OURS), None)).unwrap();
        assert_eq!(f.source, "node-b");
        assert_eq!(f.peer_spiffe_id.as_deref(), Some(OURS));
        assert_eq!(note(&f, Some(OURS)), None);
        // We presented nothing (plaintext, tls mode): nothing to compare.
        assert_eq!(note(&f, None), None);

        let f = parse(&served(Some(PROXY), None)).unwrap();
        let n = note(&f, Some(OURS)).unwrap();
        assert!(
            n.contains(&format!(
                "saw the client identity {PROXY}, not ours ({OURS})"
            )),
            "{n}"
        );
        assert!(n.starts_with("the far side (node-b)"), "{n}");

        let f = parse(&served(None, None)).unwrap();
        assert!(
            note(&f, Some(OURS))
                .unwrap()
                .contains("saw no client identity")
        );
    }

    #[test]
    fn a_sidecar_in_front_passes_on_what_it_verified() {
        // Envoy's XFCC: By= is the server, URI= the client; the last element is the
        // nearest hop. Quoted values may hold separators.
        let xfcc = format!(
            "By=spiffe://cluster.local/ns/a/sa/x;URI=spiffe://cluster.local/ns/z/sa/far,\
             By=spiffe://cluster.local/ns/monitoring/sa/mtls-prober;Hash=ab;Subject=\"O=x,CN=y;z\";URI={OURS}"
        );
        let f = parse(&served(None, Some(&xfcc))).unwrap();
        assert_eq!(seen_identity(&f).as_deref(), Some(OURS));
        assert_eq!(note(&f, Some(OURS)), None);
        let f = parse(&served(None, Some(&format!("uri=\"{PROXY}\"")))).unwrap();
        assert_eq!(seen_identity(&f).as_deref(), Some(PROXY));
    }

    #[test]
    fn anything_else_is_ignored() {
        for body in [
            &b""[..],
            b"ok\n",
            b"[]",
            b"{}",
            b"{\"status\":\"SERVING\"}",
            // A key more or less than the format has.
            b"{\"source\":\"a\",\"spiffe_id\":null,\"peer_spiffe_id\":null,\"xfcc\":null}",
            b"{\"source\":\"a\",\"spiffe_id\":null,\"peer_spiffe_id\":null,\"xfcc\":null,\"l5d_client_id\":null,\"x\":1}",
            // Wrong types, missing source, control characters.
            b"{\"source\":null,\"spiffe_id\":null,\"peer_spiffe_id\":null,\"xfcc\":null,\"l5d_client_id\":null}",
            b"{\"source\":\"a\",\"spiffe_id\":1,\"peer_spiffe_id\":null,\"xfcc\":null,\"l5d_client_id\":null}",
            b"{\"source\":\"a\\n\",\"spiffe_id\":null,\"peer_spiffe_id\":null,\"xfcc\":null,\"l5d_client_id\":null}",
            b"{\"source\":\"a\",\"spiffe_id\":null,\"peer_spiffe_id\":null,\"xfcc\":null,\"l5d_client_id\":null",
        ] {
            assert_eq!(parse(body), None, "{}", String::from_utf8_lossy(body));
        }
        let long = format!(
            "{{\"source\":\"{}\",\"spiffe_id\":null,\"peer_spiffe_id\":null,\"xfcc\":null,\"l5d_client_id\":null}}",
            "a".repeat(300)
        );
        assert_eq!(parse(long.as_bytes()), None);
        let mut huge = served(Some(OURS), None).to_vec();
        huge.resize(MAX_BODY + 1, b' ');
        assert_eq!(parse(&huge), None);
    }
}
