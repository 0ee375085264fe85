//! The invariants every input must satisfy, one checker per entry point. Each checker
//! calls the entry point itself and panics (with `assert!`) on a violation, so the
//! same oracle serves the proptest properties (which catch and shrink the panic) and
//! the cargo-fuzz targets (`fuzz/src/lib.rs` includes this file by path).
//!
//! Only the crate under test, its direct dependencies and `std` are used here, so the
//! file compiles in both places without proptest.

use std::collections::HashSet;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, Method, Response, StatusCode};
use mtls_prober::agent::serve::{
    HEALTHZ_PATH, L5D_CLIENT_ID, MAX_ECHOED_HEADER_BYTES, XFCC, healthz_response,
};
use mtls_prober::classify::grpc::{GrpcView, MAX_MESSAGE_LEN, classify_grpc, code_name};
use mtls_prober::classify::http::{ResponseView, classify_response, response_refusal};
use mtls_prober::classify::tls::{
    HandshakeContext, alert_name, find_rustls_error, handshake_failure, looks_like_plaintext,
};
use mtls_prober::classify::{Failure, Reason, Stage};
use mtls_prober::config::{
    self, Config, ConfigError, Env, Expect, Mode, Origin, PeerExpectation, StatusSet,
};
use mtls_prober::identity::load::{ClientIdentity, IdentityError, TrustBundle};
use mtls_prober::tls::peer::{CertSummary, PeerInfo};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::CertificateDer;

// === config ===

/// The longest interval, timeout, refresh, reload or window the loader may accept.
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Loads `toml` with `env`; checks that it never panics, that an error names `origin`,
/// that loading is deterministic, and the invariants of a valid config.
pub fn check_config(toml: &str, origin: &str, env: &Env) -> Result<Config, ConfigError> {
    let first = config::load_str(toml, origin, env);
    // Loading is deterministic, except for which of several unknown keys an error
    // names: the `config` crate keeps tables in a `HashMap`, so that one varies.
    let again = config::load_str(toml, origin, env);
    match (&first, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "loading the same input twice differs"),
        (Err(_), Err(_)) => {}
        _ => panic!("loading the same input twice: {first:?} then {again:?}"),
    }
    match &first {
        Ok(cfg) => check_valid_config(cfg, origin),
        Err(e) => check_config_error(e, origin),
    }
    first
}

/// An error names the origin (first, like a file path) and says something.
pub fn check_config_error(e: &ConfigError, origin: &str) {
    assert_eq!(e.file, Path::new(origin), "error names another file: {e}");
    let text = e.to_string();
    assert!(
        text.starts_with(origin),
        "the message does not start with the origin {origin:?}: {text:?}"
    );
    assert!(!e.problem.trim().is_empty(), "empty problem: {text:?}");
    if let Some(key) = &e.key {
        assert!(!key.is_empty(), "empty key in {text:?}");
    }
}

/// What `mtls_prober::config` documents about a config that loaded.
pub fn check_valid_config(cfg: &Config, origin: &str) {
    assert_eq!(cfg.origin, Path::new(origin));
    let a = &cfg.agent;
    assert!(!a.source.is_empty(), "empty source");
    assert!(!a.source.chars().any(char::is_control), "{:?}", a.source);
    assert!((0.0..1.0).contains(&a.jitter), "jitter {}", a.jitter);
    assert!(
        (1..=65536).contains(&a.max_concurrency),
        "{}",
        a.max_concurrency
    );
    assert!(!a.windows.is_empty(), "no windows");
    assert!(
        a.windows.windows(2).all(|w| w[0] < w[1]),
        "windows not distinct and ascending: {:?}",
        a.windows
    );
    for d in a.windows.iter().chain([&a.interval, &a.timeout]) {
        assert!(*d > Duration::ZERO && *d <= DAY, "duration {d:?}");
    }
    assert!(a.timeout <= a.interval, "agent timeout above interval");
    for s in &a.dns_servers {
        assert_ne!(s.port(), 0, "dns server port 0");
    }
    if let Some(id) = &cfg.identity {
        assert!(id.reload > Duration::ZERO && id.reload <= DAY);
        if !id.trust_domain_aliases.is_empty() {
            assert!(id.trust_domain.is_some(), "aliases without a trust domain");
        }
    }
    let needs_identity = cfg.serve.is_some()
        || cfg.targets.iter().any(|t| t.mode != Mode::Plaintext)
        || cfg
            .discover
            .iter()
            .any(|d| d.template.mode != Mode::Plaintext);
    if needs_identity {
        assert!(
            cfg.identity.is_some(),
            "TLS probes or [serve] without [identity]"
        );
    }

    let mut names = HashSet::new();
    for (i, t) in cfg.targets.iter().enumerate() {
        assert!(names.insert(t.name.as_str()), "duplicate name {:?}", t.name);
        assert!(!t.name.is_empty() && !t.name.chars().any(char::is_control));
        assert_ne!(t.address.port, 0, "port 0 in {}", t.address);
        assert!(t.interval > Duration::ZERO && t.interval <= DAY);
        assert!(t.timeout > Duration::ZERO && t.timeout <= t.interval);
        assert!(!t.tls_versions.is_empty(), "{}: no TLS version", t.name);
        for p in &t.alpn {
            assert!((1..=255).contains(&p.len()), "ALPN {p:?}");
        }
        if let Some(h) = &t.http {
            assert!(h.path.starts_with('/'), "path {:?}", h.path);
            assert!(!h.path.contains('#'), "path {:?}", h.path);
            assert!(!h.method.is_empty());
            assert!(h.max_body_bytes <= 16 * 1024 * 1024);
            assert!(!h.expect_status.ranges().is_empty());
            for &(lo, hi) in h.expect_status.ranges() {
                assert!(100 <= lo && lo <= hi && hi <= 599, "status range {lo}-{hi}");
            }
            for (name, value) in &h.headers {
                assert_eq!(
                    *name,
                    name.to_ascii_lowercase(),
                    "header name not lowercased"
                );
                assert!(
                    http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
                    "header name {name:?}"
                );
                assert!(
                    http::HeaderValue::from_str(value).is_ok(),
                    "header value {value:?}"
                );
            }
        }
        match &t.origin {
            Origin::Configured => {
                // A companion, when asked for, follows its target at once.
                if t.verify_strict {
                    let c = cfg.targets.get(i + 1).expect("companion missing");
                    assert_eq!(c.name, format!("{}/plaintext", t.name));
                    assert_eq!(c.mode, Mode::Plaintext);
                    assert_eq!(c.expect, Expect::Reject);
                    // The companion makes a request: the target's gRPC call, or HTTP.
                    assert_eq!(c.grpc, t.grpc);
                    assert_eq!(c.http.is_some(), t.grpc.is_none());
                }
                assert!(
                    t.http.is_none() || t.grpc.is_none(),
                    "{}: both [target.http] and [target.grpc]",
                    t.name
                );
                if t.grpc.is_some() && t.mode != Mode::Plaintext {
                    assert_eq!(t.alpn, ["h2"], "{}: gRPC offers h2 only", t.name);
                }
            }
            Origin::StrictCompanion { of } => {
                let prev = &cfg.targets[i.checked_sub(1).expect("companion first")];
                assert_eq!(&prev.name, of);
                assert!(prev.verify_strict);
            }
            Origin::Discovered { .. } => panic!("a configured target marked discovered"),
        }
        if let PeerExpectation::TrustDomain(tds) = &t.peer {
            assert!(!tds.is_empty(), "{}: empty trust-domain list", t.name);
        }
    }
    let mut discover_names = HashSet::new();
    for d in &cfg.discover {
        assert!(discover_names.insert(d.name.as_str()), "duplicate discover");
        assert_ne!(d.port, 0);
        assert!(d.refresh > Duration::ZERO && d.refresh <= DAY);
    }
}

// === key material in messages ===

/// Every byte sequence of the generated private keys a message must not contain: each
/// 16-byte window of the DER, raw and as hex, and each 16-character window of the PEM
/// base64 body.
#[derive(Default)]
pub struct Secrets {
    der: HashSet<Vec<u8>>,
    hex: HashSet<String>,
    base64: HashSet<String>,
    /// The PEM body lines, for messages.
    lines: Vec<String>,
}

/// Window length in bytes (DER) and characters (base64).
pub const SECRET_WINDOW: usize = 16;

impl Secrets {
    /// Adds a private key: its DER and its PEM text.
    pub fn add(&mut self, der: &[u8], pem: &str) {
        for w in der.windows(SECRET_WINDOW) {
            self.der.insert(w.to_vec());
            self.hex.insert(mtls_prober::tls::peer::hex(w));
        }
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        let chars: Vec<char> = body.chars().collect();
        for w in chars.windows(SECRET_WINDOW) {
            self.base64.insert(w.iter().collect());
        }
        self.lines.extend(
            pem.lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= SECRET_WINDOW)
                .map(str::to_owned),
        );
    }

    /// Panics if `text` carries any of the key bytes, in any of the encodings.
    pub fn assert_absent(&self, text: &str, what: &str) {
        let bytes = text.as_bytes();
        for w in bytes.windows(SECRET_WINDOW) {
            assert!(
                !self.der.contains(w),
                "{what} contains raw key DER: {text:?}"
            );
            if let Ok(s) = std::str::from_utf8(w) {
                assert!(
                    !self.base64.contains(s),
                    "{what} contains key base64: {text:?}"
                );
            }
        }
        let lower = text.to_ascii_lowercase();
        for w in lower.as_bytes().windows(2 * SECRET_WINDOW) {
            if let Ok(s) = std::str::from_utf8(w) {
                assert!(!self.hex.contains(s), "{what} contains key hex: {text:?}");
            }
        }
        for line in &self.lines {
            assert!(
                !text.contains(line.as_str()),
                "{what} contains a key PEM line"
            );
        }
    }
}

// === identity ===

/// `TrustBundle::from_pem` on arbitrary bytes: never panics; an error names `file`
/// and carries no key material; a bundle has at least one root, each with a SHA-256.
pub fn check_bundle(file: &Path, bytes: &[u8], secrets: &Secrets) -> Option<TrustBundle> {
    match TrustBundle::from_pem(file, bytes) {
        Ok(b) => {
            assert!(!b.roots().is_empty(), "a bundle without roots");
            assert_eq!(b.roots().len(), b.anchors().len());
            for r in b.roots() {
                assert_eq!(r.sha256.len(), 64);
            }
            Some(b)
        }
        Err(e) => {
            check_identity_error(&e, &[file], secrets);
            None
        }
    }
}

/// `ClientIdentity::from_pem`: never panics; an error names one of the two files and
/// carries no key material; an identity's SPIFFE ID is the leaf's.
#[allow(clippy::too_many_arguments)]
pub fn check_identity(
    cert_file: &Path,
    key_file: &Path,
    cert_pem: &[u8],
    key_pem: &[u8],
    bundle: &TrustBundle,
    provider: &CryptoProvider,
    now: SystemTime,
    secrets: &Secrets,
) -> Result<ClientIdentity, IdentityError> {
    let r = ClientIdentity::from_pem(
        cert_file, key_file, cert_pem, key_pem, bundle, provider, now,
    );
    match &r {
        Ok(id) => {
            assert_eq!(
                id.spiffe_id.as_ref().map(|s| s.as_str().to_owned()),
                id.leaf.spiffe_id,
                "the identity's SPIFFE ID is not the leaf's"
            );
            assert!(id.leaf.not_before <= now && now <= id.leaf.not_after);
            // The Debug form is logged; it must not carry the key either.
            secrets.assert_absent(&format!("{id:?}"), "ClientIdentity's Debug");
        }
        Err(e) => check_identity_error(e, &[cert_file, key_file], secrets),
    }
    r
}

fn check_identity_error(e: &IdentityError, files: &[&Path], secrets: &Secrets) {
    let text = e.to_string();
    assert!(
        files.iter().any(|f| e.file == *f),
        "the error names {:?}, none of {files:?}: {text}",
        e.file
    );
    assert!(text.starts_with(&e.file.display().to_string()));
    assert!(!e.problem.trim().is_empty());
    secrets.assert_absent(&text, "the identity error");
    secrets.assert_absent(&format!("{e:?}"), "the identity error's Debug");
}

// === HTTP classification ===

/// The most a detail may add to the status set's own text: the fixed phrases plus the
/// bounded excerpts (server 60, l5d-proxy-error 200, body 160 bytes escaped 4:1, cause
/// 240).
pub const HTTP_DETAIL_MAX: usize = 1536;

/// `classify_response` and `response_refusal`: never panic; Ok exactly for the expected
/// statuses; a request-stage reason consistent with the status (or the TLS stage for
/// nginx's client-certificate refusals); bounded single-line details naming the status.
pub fn check_http(status: u16, headers: &HeaderMap, body_prefix: &[u8], expect: &StatusSet) {
    let view = ResponseView {
        status,
        headers,
        body_prefix,
    };
    let result = classify_response(&view, expect);
    let body = String::from_utf8_lossy(body_prefix).to_ascii_lowercase();
    let l5d = headers.get("l5d-proxy-error").and_then(|v| v.to_str().ok());
    if expect.contains(status) {
        assert!(result.is_ok(), "status {status} is in {expect} but failed");
    } else {
        let f = result.expect_err("a status outside the expected set passed");
        check_detail(&f.detail, HTTP_DETAIL_MAX + expect.to_string().len());
        assert!(
            f.detail.contains(&status.to_string()),
            "the detail does not name the status {status}: {:?}",
            f.detail
        );
        // nginx's client-certificate refusals come over HTTP but name the TLS layer.
        let no_cert = status == 496
            || (status == 400 && body.contains("no required ssl certificate was sent"));
        let bad_cert =
            status == 495 || (status == 400 && body.contains("the ssl certificate error"));
        if no_cert || bad_cert {
            assert_eq!(f.stage(), Stage::Tls);
        } else {
            assert_eq!(f.reason.stage(), Stage::Request);
        }
        match f.reason {
            Reason::ClientCertRequired => {
                assert!(no_cert, "client_cert_required for {status}");
                assert!(f.refused_by_peer);
            }
            Reason::ClientCertRejected => {
                assert!(bad_cert && !no_cert, "client_cert_rejected for {status}");
                assert!(f.refused_by_peer);
            }
            Reason::RbacDenied => {
                assert_eq!(status, 403);
                assert!(f.refused_by_peer);
            }
            Reason::UpstreamTlsError | Reason::UpstreamUnavailable => {
                assert!(
                    (502..=504).contains(&status),
                    "upstream reason for {status}"
                );
                assert!(!f.refused_by_peer);
            }
            Reason::UnexpectedStatus => {
                assert!(
                    f.detail.contains(&format!("expected {expect}")),
                    "{}",
                    f.detail
                );
                assert!(!f.refused_by_peer);
            }
            other => panic!("{other:?} from the HTTP classifier"),
        }
        // The phrases of SPEC §5 decide the reason whatever surrounds them.
        if status == 403 && body.contains("rbac: access denied") {
            assert_eq!(f.reason, Reason::RbacDenied, "{}", f.detail);
        }
        if status == 403 && l5d.is_some() {
            assert_eq!(f.reason, Reason::RbacDenied, "{}", f.detail);
        }
        if (502..=504).contains(&status) && l5d.is_none() {
            let upstream = body.contains("upstream connect error")
                || body.contains("disconnect/reset before headers");
            if upstream && body.contains("tls error") {
                assert_eq!(f.reason, Reason::UpstreamTlsError, "{}", f.detail);
            }
            if body.contains("no healthy upstream") && !upstream {
                assert_eq!(f.reason, Reason::UpstreamUnavailable, "{}", f.detail);
            }
        }
    }

    let refusal = response_refusal(&view);
    match status {
        403 | 426 => assert!(refusal.is_some(), "{status} is not a refusal"),
        400 => {}
        _ => assert!(refusal.is_none(), "{status} taken for a refusal"),
    }
    if let Some(text) = refusal {
        check_detail(&text, HTTP_DETAIL_MAX);
        assert!(text.contains(&status.to_string()), "{text:?}");
    }
}

/// A detail is non-empty, bounded, and one line: no control characters, so a peer's
/// bytes cannot forge log lines.
pub fn check_detail(detail: &str, max: usize) {
    assert!(!detail.is_empty(), "empty detail");
    assert!(
        detail.len() <= max,
        "detail of {} bytes, more than {max}: {:.300}…",
        detail.len(),
        detail
    );
    assert!(
        !detail.chars().any(|c| c.is_control() && c != '\t'),
        "control character in the detail: {detail:?}"
    );
}

// === gRPC classification ===

/// `classify_grpc`: never panics; Ok exactly for grpc-status 0 with a `SERVING`
/// message; the status is read from the trailers, else the headers (trailers-only);
/// `rbac_denied` only for PERMISSION_DENIED/UNAUTHENTICATED (and then a refusal),
/// `upstream_*` only for UNAVAILABLE; every other named status is `unexpected_status`
/// naming it; without grpc-status the HTTP rules apply (HTTP 200 is `protocol_error`);
/// the reported message is bounded and printable; bounded one-line detail.
pub fn check_grpc(
    status: u16,
    headers: &HeaderMap,
    trailers: Option<&HeaderMap>,
    body: &[u8],
    service: &str,
) {
    let view = GrpcView {
        status,
        headers,
        trailers,
        body,
    };
    let (answer, result) = classify_grpc(&view, service);
    let grpc_status = trailers
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| headers.get("grpc-status"));
    if let Some(m) = &answer.message {
        assert!(
            m.len() <= MAX_MESSAGE_LEN + '…'.len_utf8(),
            "message of {} bytes",
            m.len()
        );
        assert!(
            !m.chars().any(char::is_control),
            "control character in {m:?}"
        );
    }
    if answer.code.is_some() {
        assert!(grpc_status.is_some(), "a code without grpc-status");
    }
    let f = match result {
        Ok(()) => {
            assert_eq!(answer.code, Some(0), "passed without grpc-status 0");
            assert_eq!(answer.health, Some("SERVING"), "passed without SERVING");
            return;
        }
        Err(f) => f,
    };
    check_detail(
        &f.detail,
        HTTP_DETAIL_MAX + 2 * MAX_MESSAGE_LEN + 4 * service.len(),
    );
    if answer.health.is_some() {
        assert_eq!(answer.code, Some(0));
    }
    match (grpc_status, answer.code) {
        (Some(_), None) => assert_eq!(f.reason, Reason::ProtocolError, "{}", f.detail),
        (Some(_), Some(0)) => {
            assert!(
                matches!(f.reason, Reason::UnexpectedStatus | Reason::ProtocolError),
                "{:?} for grpc-status 0",
                f.reason
            );
            if f.reason == Reason::UnexpectedStatus {
                let health = answer.health.expect("a health status");
                assert!(f.detail.contains(health), "{}", f.detail);
            }
        }
        (Some(_), Some(code)) => {
            let name = code_name(code);
            let want = match name {
                "PERMISSION_DENIED" | "UNAUTHENTICATED" => vec![Reason::RbacDenied],
                "UNAVAILABLE" => vec![Reason::UpstreamTlsError, Reason::UpstreamUnavailable],
                _ => vec![Reason::UnexpectedStatus],
            };
            assert!(want.contains(&f.reason), "{:?} for {name}", f.reason);
            assert_eq!(f.refused_by_peer, f.reason == Reason::RbacDenied);
            assert!(f.detail.contains(name), "{name} not in {}", f.detail);
        }
        (None, _) => {
            assert!(f.detail.contains(&status.to_string()), "{}", f.detail);
            if status == 200 {
                assert_eq!(f.reason, Reason::ProtocolError);
            } else {
                assert!(
                    f.reason.stage() == Stage::Request
                        || matches!(
                            f.reason,
                            Reason::ClientCertRequired | Reason::ClientCertRejected
                        ),
                    "{:?} for an HTTP answer",
                    f.reason
                );
                if f.reason == Reason::RbacDenied {
                    assert_eq!(status, 403);
                }
            }
        }
    }
}

// === [serve] /healthz ===

/// `healthz_response`: never panics; 404 off the path, 405 with `allow: GET` for other
/// methods, otherwise 200 with exactly the five fields of SPEC §7, the echoed headers
/// as the documented model says, and a body bounded by the inputs.
pub fn check_healthz(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    source: &str,
    own: Option<&str>,
    peer: Option<&str>,
) -> Response<Bytes> {
    let rsp = healthz_response(method, path, headers, source, own, peer);
    assert_eq!(rsp.headers()[CACHE_CONTROL], "no-store");
    if path != HEALTHZ_PATH {
        assert_eq!(rsp.status(), StatusCode::NOT_FOUND);
        assert!(rsp.body().len() < 128);
        return rsp;
    }
    if *method != Method::GET {
        assert_eq!(rsp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(rsp.headers()[ALLOW], "GET");
        assert!(rsp.body().len() < 128);
        return rsp;
    }
    assert_eq!(rsp.status(), StatusCode::OK);
    assert_eq!(rsp.headers()[CONTENT_TYPE], "application/json");
    // JSON escapes at most 6 bytes per input byte (\u00XX); the echoed headers are
    // free of control characters, so at most 2 (\" or \\).
    let bound = 6 * (source.len() + own.map_or(0, str::len) + peer.map_or(0, str::len))
        + 2 * 2 * MAX_ECHOED_HEADER_BYTES
        + 256;
    assert!(rsp.body().len() <= bound, "{} > {bound}", rsp.body().len());
    let json: serde_json::Value =
        serde_json::from_slice(rsp.body()).expect("the 200 body is not JSON");
    let obj = json.as_object().expect("the 200 body is not an object");
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    let mut want = vec![
        "source",
        "spiffe_id",
        "peer_spiffe_id",
        "xfcc",
        "l5d_client_id",
    ];
    want.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(got, want, "fields of the /healthz body");
    assert_eq!(obj["source"], source);
    assert_eq!(obj["spiffe_id"].as_str(), own);
    assert_eq!(obj["peer_spiffe_id"].as_str(), peer);
    assert_eq!(obj["spiffe_id"].is_null(), own.is_none());
    assert_eq!(obj["peer_spiffe_id"].is_null(), peer.is_none());
    for (field, name) in [("xfcc", XFCC), ("l5d_client_id", L5D_CLIENT_ID)] {
        let want = echo_model(headers, name);
        assert_eq!(obj[field].as_str(), want.as_deref(), "{field}");
        assert_eq!(obj[field].is_null(), want.is_none(), "{field}");
    }
    rsp
}

/// What `/healthz` echoes for a header, as documented: all occurrences joined with
/// `", "`, or nothing when absent, longer than the limit, not UTF-8 or with control
/// characters.
pub fn echo_model(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&[u8]> = headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
    if values.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    for v in values {
        let s = std::str::from_utf8(v).ok()?;
        if s.chars().any(char::is_control) {
            return None;
        }
        parts.push(s);
    }
    let joined = parts.join(", ");
    (joined.len() <= MAX_ECHOED_HEADER_BYTES).then_some(joined)
}

// === TLS classification ===

/// `handshake_failure`: never panics; a tls- or certificate-stage reason; plaintext
/// first bytes always mean `not_tls`; an alert is always the peer's refusal and named;
/// closes and resets without rustls error are `peer_closed`, except right after a
/// certificate request inside the handshake (a silent client-certificate refusal,
/// SPEC §4); bounded detail.
pub fn check_handshake(err: &io::Error, ctx: &HandshakeContext<'_>) -> Failure {
    let f = handshake_failure(err, ctx);
    assert!(
        matches!(f.reason.stage(), Stage::Tls | Stage::Certificate),
        "{:?} from the TLS classifier",
        f.reason
    );
    let rustls_err = find_rustls_error(err);
    let variable = err.to_string().len()
        + rustls_err.map_or(0, |e| e.to_string().len())
        + ctx.offered_versions.len()
        + ctx.offered_alpn.len()
        + 4 * ctx.first_bytes.len();
    check_detail(&f.detail, 512 + variable);
    if looks_like_plaintext(ctx.first_bytes) {
        assert_eq!(f.reason, Reason::NotTls, "{}", f.detail);
        return f;
    }
    match rustls_err {
        Some(rustls::Error::AlertReceived(alert)) => {
            assert!(f.refused_by_peer, "an alert is a refusal");
            assert!(f.detail.contains(&alert_name(*alert)), "{}", f.detail);
            assert_ne!(f.reason.stage(), Stage::Certificate);
            if *alert == rustls::AlertDescription::CertificateRequired {
                assert_eq!(f.reason, Reason::ClientCertRequired);
            }
            if f.reason == Reason::ClientCertRejected {
                assert!(ctx.cert_sent, "rejected a certificate that was not sent");
            }
        }
        Some(rustls::Error::InvalidCertificate(_)) => {
            assert_eq!(f.reason.stage(), Stage::Certificate, "{:?}", f.reason);
        }
        Some(_) => {
            assert_ne!(f.reason, Reason::ClientCertRejected);
            assert_ne!(f.reason, Reason::PeerClosed);
        }
        None => {
            let closed = matches!(
                err.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            );
            if closed && ctx.cert_requested && !ctx.after_handshake {
                // SPEC §4's silent refusal (TLS 1.2: closed right after our flight).
                let want = if ctx.cert_sent {
                    Reason::ClientCertRejected
                } else {
                    Reason::ClientCertRequired
                };
                assert_eq!(f.reason, want);
                assert!(f.refused_by_peer);
                assert!(f.detail.contains("silent"), "{}", f.detail);
            } else if closed {
                assert_eq!(f.reason, Reason::PeerClosed);
                assert!(f.refused_by_peer);
            } else {
                assert_eq!(f.reason, Reason::HandshakeError);
            }
        }
    }
    f
}

// === certificates ===

/// `CertSummary::parse`: never panics; on success the summary is self-consistent.
pub fn check_cert(der: &[u8]) -> Option<CertSummary> {
    match CertSummary::parse(der) {
        Ok(s) => {
            assert!(
                s.serial.len() % 2 == 0
                    && s.serial
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "serial {:?}",
                s.serial
            );
            if let Some(id) = &s.spiffe_id {
                assert!(id.starts_with("spiffe://"));
                assert_eq!(
                    s.uri_sans.iter().find(|u| u.starts_with("spiffe://")),
                    Some(id)
                );
            }
            assert!(!s.subject_or_san().is_empty());
            assert_eq!(s.is_self_issued(), s.issuer_raw == s.subject_raw);
            Some(s)
        }
        Err(e) => {
            assert!(!e.is_empty());
            None
        }
    }
}

/// `PeerInfo::from_chain`, what a probe reports of any chain a peer presents: never
/// panics; filled exactly when the leaf parses, with the chain's length and RFC 3339
/// times.
pub fn check_chain(chain: &[CertificateDer<'_>], bundle: Option<&TrustBundle>) {
    let leaf = chain.first().and_then(|c| CertSummary::parse(c).ok());
    let info = PeerInfo::from_chain(chain, None, bundle);
    assert_eq!(info.is_some(), leaf.is_some());
    if let (Some(info), Some(leaf)) = (info, leaf) {
        assert_eq!(info.chain_len, chain.len());
        assert_eq!(info.serial, leaf.serial);
        assert_eq!(info.not_after_time, leaf.not_after);
        for t in [&info.not_before, &info.not_after] {
            assert!(t.ends_with('Z') && t.len() >= 20, "not RFC 3339: {t:?}");
        }
        if let Some(root) = &info.root_sha256 {
            assert_eq!(root.len(), 64);
        }
    }
}
