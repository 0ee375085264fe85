//! The fields of a presented certificate, parsed with x509-parser.
//!
//! Parsing is independent of verification: the peer's certificate is summarised even
//! when it is expired, untrusted or carries the wrong identity, because that is exactly
//! what the user needs to see (SPEC §8).

use std::time::{Duration, SystemTime};

use serde::Serialize;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::load::{TrustBundle, rfc3339};

/// The fields of one certificate that reports and checks need.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct CertSummary {
    /// Subject, RFC 4514 style (empty for typical mesh certificates).
    pub subject: String,
    /// Issuer, RFC 4514 style.
    pub issuer: String,
    /// Serial number, lowercase hex without separators.
    pub serial: String,
    /// The first `spiffe://` URI SAN, if any.
    pub spiffe_id: Option<String>,
    /// Every URI SAN (a SPIFFE certificate must have exactly one).
    pub uri_sans: Vec<String>,
    /// DNS SANs.
    pub dns_sans: Vec<String>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// Raw DER of the issuer name, to find the root it chains to.
    pub issuer_raw: Vec<u8>,
    /// Raw DER of the subject name.
    pub subject_raw: Vec<u8>,
}

impl CertSummary {
    /// Parses a DER certificate.
    pub fn parse(der: &[u8]) -> Result<Self, String> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| format!("malformed certificate: {e}"))?;
        let mut uri_sans = Vec::new();
        let mut dns_sans = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in san.value.general_names.iter().take(MAX_SANS) {
                match name {
                    GeneralName::URI(u) => uri_sans.push(clean(u)),
                    GeneralName::DNSName(d) => dns_sans.push(clean(d)),
                    _ => {}
                }
            }
        }
        let spiffe_id = uri_sans
            .iter()
            .find(|u| u.starts_with("spiffe://"))
            .cloned();
        let validity = cert.validity();
        Ok(Self {
            subject: clean(&cert.subject().to_string()),
            issuer: clean(&cert.issuer().to_string()),
            serial: hex(cert.raw_serial()),
            spiffe_id,
            uri_sans,
            dns_sans,
            not_before: system_time(validity.not_before.timestamp()),
            not_after: system_time(validity.not_after.timestamp()),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            subject_raw: cert.subject().as_raw().to_vec(),
        })
    }

    /// The subject, or the first SAN when the subject is empty (mesh certificates).
    pub fn subject_or_san(&self) -> &str {
        if !self.subject.is_empty() {
            return &self.subject;
        }
        self.spiffe_id
            .as_deref()
            .or(self.dns_sans.first().map(String::as_str))
            .unwrap_or("(empty subject)")
    }

    /// Whether the certificate names itself as issuer.
    pub fn is_self_issued(&self) -> bool {
        self.issuer_raw == self.subject_raw
    }
}

/// Names kept per certificate (real ones have a handful).
const MAX_SANS: usize = 64;
/// Longest name kept.
const MAX_NAME: usize = 512;

/// A certificate name as text that is safe to print anywhere: control characters (a
/// hostile peer's CR/LF or terminal escapes) become `\xNN`, and it is bounded.
fn clean(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_NAME));
    for c in name.chars() {
        if out.len() >= MAX_NAME {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// The `peer` object of the probe JSON (SPEC §8).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerInfo {
    /// The SPIFFE ID (first `spiffe://` URI SAN).
    pub spiffe_id: Option<String>,
    /// DNS SANs.
    pub dns_sans: Vec<String>,
    /// Leaf subject.
    pub subject: String,
    /// Leaf issuer.
    pub issuer: String,
    /// Leaf serial, lowercase hex.
    pub serial: String,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    /// Certificates the peer sent.
    pub chain_len: usize,
    /// SHA-256 of the root the chain reaches (or would reach), lowercase hex.
    pub root_sha256: Option<String>,
    /// `not_after` as a time, for metrics.
    #[serde(skip)]
    pub not_after_time: SystemTime,
}

impl PeerInfo {
    /// Summarises a presented chain. `verified_root` is the root's SHA-256 when the
    /// chain verified; otherwise the root is looked up the way a verifier would have.
    pub fn from_chain(
        chain: &[rustls_pki_types::CertificateDer<'_>],
        verified_root: Option<&str>,
        bundle: Option<&TrustBundle>,
    ) -> Option<Self> {
        Self::from_chain_parsed(chain, None, verified_root, bundle)
    }

    /// [`Self::from_chain`] with the leaf already summarised (by the verifier, during
    /// the handshake): parsing it again would cost a second x509 parse per probe.
    /// `leaf` must be the summary of `chain[0]`; with `None` the leaf is parsed here.
    pub fn from_chain_parsed(
        chain: &[rustls_pki_types::CertificateDer<'_>],
        leaf: Option<CertSummary>,
        verified_root: Option<&str>,
        bundle: Option<&TrustBundle>,
    ) -> Option<Self> {
        let first = chain.first()?;
        let leaf = match leaf {
            Some(l) => l,
            None => CertSummary::parse(first).ok()?,
        };
        let root_sha256 = match verified_root {
            Some(r) => Some(r.to_owned()),
            None => would_be_root(chain, bundle),
        };
        Some(Self {
            not_before: rfc3339(leaf.not_before),
            not_after: rfc3339(leaf.not_after),
            chain_len: chain.len(),
            root_sha256,
            not_after_time: leaf.not_after,
            // Moved, not cloned: the summary is this probe's own.
            spiffe_id: leaf.spiffe_id,
            dns_sans: leaf.dns_sans,
            subject: leaf.subject,
            issuer: leaf.issuer,
            serial: leaf.serial,
        })
    }
}

/// The root an unverified chain points at: a self-issued certificate at its end, or a
/// bundle root named by its last issuer.
fn would_be_root(
    chain: &[rustls_pki_types::CertificateDer<'_>],
    bundle: Option<&TrustBundle>,
) -> Option<String> {
    let last_der = chain.last()?;
    let last = CertSummary::parse(last_der).ok()?;
    if last.is_self_issued() && chain.len() > 1 {
        return Some(hex(&sha2::Sha256::digest_bytes(last_der)));
    }
    bundle?
        .root_by_subject(&last.issuer_raw)
        .map(|r| r.sha256.clone())
}

/// Lowercase hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

fn system_time(unix: i64) -> SystemTime {
    if unix >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs())
    }
}

/// `Sha256::digest` returning bytes, so callers need not import the trait.
trait DigestBytes {
    fn digest_bytes(data: &[u8]) -> [u8; 32];
}

impl DigestBytes for sha2::Sha256 {
    fn digest_bytes(data: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        Self::digest(data).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::pki::{Ca, LeafSpec};

    #[test]
    fn summarises_spiffe_leaf() {
        let root = Ca::root("Test Root").unwrap();
        let leaf = root
            .issue(&LeafSpec::spiffe("spiffe://cluster.local/ns/a/sa/b").with_dns("b.a.svc"))
            .unwrap();
        let s = CertSummary::parse(leaf.leaf()).unwrap();
        assert_eq!(
            s.spiffe_id.as_deref(),
            Some("spiffe://cluster.local/ns/a/sa/b")
        );
        assert_eq!(s.dns_sans, vec!["b.a.svc".to_owned()]);
        assert_eq!(s.subject, "");
        assert!(s.issuer.contains("CN=Test Root"), "{}", s.issuer);
        assert_eq!(s.serial.len(), 32);
        assert!(s.not_before < SystemTime::now() && SystemTime::now() < s.not_after);
        assert_eq!(s.subject_or_san(), "spiffe://cluster.local/ns/a/sa/b");
        let r = CertSummary::parse(root.cert()).unwrap();
        assert!(r.is_self_issued());
        assert_eq!(s.issuer_raw, r.subject_raw);
    }

    #[test]
    fn a_stored_leaf_summary_gives_the_same_peer_info() {
        let root = Ca::root("Test Root").unwrap();
        let leaf = root
            .issue(&LeafSpec::spiffe("spiffe://cluster.local/ns/a/sa/b").with_dns("b.a.svc"))
            .unwrap();
        let chain = leaf.chain.clone();
        let parsed = CertSummary::parse(&chain[0]).unwrap();
        let reused = PeerInfo::from_chain_parsed(&chain, Some(parsed), Some("ab"), None);
        assert_eq!(reused, PeerInfo::from_chain(&chain, Some("ab"), None));
        assert!(reused.is_some());
    }

    #[test]
    fn names_are_safe_to_print() {
        assert_eq!(
            clean("a\r\nINJECTED: b.example"),
            "a\\x0d\\x0aINJECTED: b.example"
        );
        assert_eq!(clean("\u{1b}[31mred"), "\\x1b[31mred");
        assert!(clean(&"x".repeat(10_000)).len() <= MAX_NAME + 3);
        assert_eq!(clean("spiffe://td/ns/a/sa/b"), "spiffe://td/ns/a/sa/b");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(CertSummary::parse(b"\x30\x03\x02\x01\x01").is_err());
        assert!(CertSummary::parse(b"").is_err());
    }
}
