//! Loading the agent's identity files: the trust bundle and the client certificate/key.
//!
//! Everything is parsed and checked completely before it is handed out, so a reload can
//! keep the previous identity when the new files are broken. Errors name the file and
//! what was wrong; they never include key material (only lengths and labels).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, TrustAnchor, UnixTime};
use sha2::{Digest, Sha256};

use super::spiffe::SpiffeId;
use crate::tls::chain_cache::ChainCache;
use crate::tls::peer::{CertSummary, hex};

/// A problem with one of the identity files.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct IdentityError {
    /// The file at fault.
    pub file: PathBuf,
    /// What is wrong with it, and what was expected.
    pub problem: String,
}

impl IdentityError {
    fn new(file: &Path, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.problem)
    }
}

impl std::error::Error for IdentityError {}

/// A root in the trust bundle, with what is needed to name it in reports.
#[derive(Debug)]
pub struct Root {
    /// The certificate as given.
    pub der: CertificateDer<'static>,
    /// SHA-256 of the DER, lowercase hex: the `root_sha256` label value.
    pub sha256: String,
    /// Its subject, RFC 4514 style.
    pub subject: String,
    subject_raw: Vec<u8>,
    anchor: TrustAnchor<'static>,
}

/// The CA bundle used to verify peers (and our own chain).
///
/// From a file, every root verifies every peer. From the SPIFFE Workload API it is a
/// trust-anchor store keyed by trust domain ([`Self::per_domain`]): a peer is verified
/// only with the bundle of its own trust domain, never a pooled set (SPEC §13).
#[derive(Debug)]
pub struct TrustBundle {
    /// The file it came from (for Workload API bundles: the endpoint).
    pub file: PathBuf,
    roots: Vec<Root>,
    anchors: Vec<TrustAnchor<'static>>,
    /// SHA-256 over the file content, to detect changes.
    pub content_sha256: [u8; 32],
    /// Chain links verified against these roots; a new bundle starts empty.
    chain_cache: ChainCache,
    /// Workload API bundles by trust domain; `None` for a file.
    domains: Option<Domains>,
}

/// The per-trust-domain part of a Workload API bundle.
#[derive(Debug)]
struct Domains {
    /// Our own trust domain (the SVID's): the bundle for peers without a SPIFFE ID.
    own: String,
    /// Each trust domain's anchors and root subjects, by trust domain name.
    by_name: std::collections::BTreeMap<String, DomainRoots>,
}

#[derive(Debug)]
struct DomainRoots {
    anchors: Vec<TrustAnchor<'static>>,
    subjects: Vec<String>,
}

impl TrustBundle {
    /// Reads and parses a PEM bundle of one or more CA certificates.
    pub fn load(file: &Path) -> Result<Self, IdentityError> {
        let bytes = read(file)?;
        Self::from_pem(file, &bytes)
    }

    /// Parses a PEM bundle already in memory; `file` names it in errors.
    pub fn from_pem(file: &Path, bytes: &[u8]) -> Result<Self, IdentityError> {
        let certs = parse_certs(
            file,
            bytes,
            "a PEM trust bundle (one or more CERTIFICATE blocks)",
        )?;
        Self::from_certs(file, certs, sha256(bytes))
    }

    /// A bundle from DER certificates (tests, the demo).
    pub fn from_certs(
        file: &Path,
        certs: Vec<CertificateDer<'static>>,
        content_sha256: [u8; 32],
    ) -> Result<Self, IdentityError> {
        let mut roots = Vec::with_capacity(certs.len());
        for (i, der) in certs.into_iter().enumerate() {
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| {
                    IdentityError::new(
                        file,
                        format!("certificate #{} is not a usable CA certificate: {e}", i + 1),
                    )
                })?
                .to_owned();
            let summary = CertSummary::parse(&der).map_err(|e| {
                IdentityError::new(
                    file,
                    format!("certificate #{} cannot be parsed: {e}", i + 1),
                )
            })?;
            roots.push(Root {
                sha256: hex(&sha256(&der)),
                der,
                subject: summary.subject,
                subject_raw: summary.subject_raw,
                anchor,
            });
        }
        let anchors = roots.iter().map(|r| r.anchor.clone()).collect();
        Ok(Self {
            file: file.to_owned(),
            roots,
            anchors,
            content_sha256,
            chain_cache: ChainCache::default(),
            domains: None,
        })
    }

    /// This bundle without a chain cache: every peer chain is verified in full (the
    /// tests compare both).
    pub fn without_chain_cache(mut self) -> Self {
        self.chain_cache = ChainCache::new(false);
        self
    }

    /// The chain links verified against this bundle.
    pub fn chain_cache(&self) -> &ChainCache {
        &self.chain_cache
    }

    /// A Workload API bundle set: each trust domain's roots (`own` is the SVID's trust
    /// domain and must be among them). `origin` names the endpoint in messages.
    pub fn per_domain(
        origin: &Path,
        own: &str,
        bundles: Vec<(String, Vec<CertificateDer<'static>>)>,
        content_sha256: [u8; 32],
    ) -> Result<Self, IdentityError> {
        let mut all = Vec::new();
        let mut by_name = std::collections::BTreeMap::new();
        for (td, certs) in bundles {
            let named = origin.join(format!("bundle of trust domain {td}"));
            let part = Self::from_certs(&named, certs, [0; 32])?;
            by_name.insert(
                td,
                DomainRoots {
                    anchors: part.anchors.clone(),
                    subjects: part.roots.iter().map(|r| r.subject.clone()).collect(),
                },
            );
            all.extend(part.roots);
        }
        if !by_name.contains_key(own) {
            return Err(IdentityError::new(
                origin,
                format!(
                    "no trust bundle for our own trust domain {own} (bundles: {})",
                    by_name.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let anchors = all.iter().map(|r| r.anchor.clone()).collect();
        Ok(Self {
            file: origin.to_owned(),
            roots: all,
            anchors,
            content_sha256,
            chain_cache: ChainCache::default(),
            domains: Some(Domains {
                own: own.to_owned(),
                by_name,
            }),
        })
    }

    /// Every trust anchor (of every trust domain): for naming roots and for `[serve]`.
    /// Peer verification uses [`Self::anchors_for`].
    pub fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    /// The anchors a peer whose SPIFFE ID is in `trust_domain` (`None`: no SPIFFE ID)
    /// must chain to: every root of a file bundle; for Workload API bundles only the
    /// bundle of that trust domain (ours when `None`), or an error naming the domains
    /// that do have one.
    pub fn anchors_for(
        &self,
        trust_domain: Option<&str>,
    ) -> Result<&[TrustAnchor<'static>], String> {
        let Some(domains) = &self.domains else {
            return Ok(&self.anchors);
        };
        let td = trust_domain.unwrap_or(&domains.own);
        domains
            .by_name
            .get(td)
            .map(|d| d.anchors.as_slice())
            .ok_or_else(|| {
                format!(
                    "the Workload API at {} gave no trust bundle for trust domain {td} (bundles \
                     for: {})",
                    self.file.display(),
                    self.trust_domains().join(", ")
                )
            })
    }

    /// Whether peers are verified per trust domain (Workload API bundles).
    pub fn is_per_domain(&self) -> bool {
        self.domains.is_some()
    }

    /// The trust domains with a bundle (Workload API bundles; empty for a file).
    pub fn trust_domains(&self) -> Vec<&str> {
        self.domains
            .as_ref()
            .map(|d| d.by_name.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// What a peer of `trust_domain` was checked against, for details: the file and all
    /// root subjects, or the one trust domain's bundle and its subjects.
    pub fn scope_for(&self, trust_domain: Option<&str>) -> (String, Vec<&str>) {
        match &self.domains {
            None if self.file == Path::new(crate::tls::trust::SYSTEM_ROOTS) => {
                (crate::tls::trust::SYSTEM_ROOTS.to_owned(), self.subjects())
            }
            None => (
                format!("the roots of {}", self.file.display()),
                self.subjects(),
            ),
            Some(d) => {
                let td = trust_domain.unwrap_or(&d.own);
                let subjects = d
                    .by_name
                    .get(td)
                    .map(|r| r.subjects.iter().map(String::as_str).collect())
                    .unwrap_or_default();
                (
                    format!(
                        "the roots of {td}'s trust bundle from {}",
                        self.file.display()
                    ),
                    subjects,
                )
            }
        }
    }

    /// The roots in file order.
    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    /// The root a verified path ended at.
    pub fn root_for_anchor(&self, anchor: &TrustAnchor<'_>) -> Option<&Root> {
        self.roots.iter().find(|r| {
            r.anchor.subject == anchor.subject
                && r.anchor.subject_public_key_info == anchor.subject_public_key_info
        })
    }

    /// A root whose subject is `issuer_der` (raw DER of a Name), for naming the root an
    /// unverified chain would have reached.
    pub fn root_by_subject(&self, issuer_der: &[u8]) -> Option<&Root> {
        self.roots.iter().find(|r| r.subject_raw == issuer_der)
    }

    /// Subjects of all roots, for details like "issuer X not found in bundle [A, B]".
    pub fn subjects(&self) -> Vec<&str> {
        self.roots.iter().map(|r| r.subject.as_str()).collect()
    }
}

/// The agent's own client identity: certificate chain and key, checked against the bundle.
pub struct ClientIdentity {
    /// For rustls: chain + signing key.
    pub certified_key: Arc<CertifiedKey>,
    /// The leaf's fields.
    pub leaf: CertSummary,
    /// The leaf's SPIFFE ID, if it has one.
    pub spiffe_id: Option<SpiffeId>,
    /// SHA-256 over cert file + key file, to detect changes without keeping key bytes.
    pub content_sha256: [u8; 32],
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key: only what identifies the certificate.
        f.debug_struct("ClientIdentity")
            .field("subject", &self.leaf.subject)
            .field("serial", &self.leaf.serial)
            .field("spiffe_id", &self.spiffe_id)
            .field("not_after", &self.leaf.not_after)
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// Reads the cert chain and key, checks that they match, that the chain reaches
    /// `bundle` for client authentication, and that it is valid at `now`.
    pub fn load(
        cert_file: &Path,
        key_file: &Path,
        bundle: &TrustBundle,
        provider: &CryptoProvider,
        now: SystemTime,
    ) -> Result<Self, IdentityError> {
        let cert_bytes = read(cert_file)?;
        let key_bytes = read(key_file)?;
        Self::from_pem(
            cert_file,
            key_file,
            &cert_bytes,
            &key_bytes,
            bundle,
            provider,
            now,
        )
    }

    /// Parses a PEM chain and key already in memory (tests, fuzzing); `cert_file` and
    /// `key_file` only name them in errors. Same checks as [`Self::load`].
    pub fn from_pem(
        cert_file: &Path,
        key_file: &Path,
        cert_pem: &[u8],
        key_pem: &[u8],
        bundle: &TrustBundle,
        provider: &CryptoProvider,
        now: SystemTime,
    ) -> Result<Self, IdentityError> {
        let chain = parse_certs(
            cert_file,
            cert_pem,
            "a PEM certificate chain, leaf first (CERTIFICATE blocks)",
        )?;
        let key = parse_key(key_file, key_pem)?;
        let mut hasher = Sha256::new();
        hasher.update(cert_pem);
        hasher.update(key_pem);
        let content_sha256 = hasher.finalize().into();
        Self::from_parts(
            cert_file,
            key_file,
            chain,
            key,
            bundle,
            provider,
            now,
            content_sha256,
        )
    }

    /// Builds an identity from parsed parts (tests, the demo); same checks as [`Self::load`].
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        cert_file: &Path,
        key_file: &Path,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        bundle: &TrustBundle,
        provider: &CryptoProvider,
        now: SystemTime,
        content_sha256: [u8; 32],
    ) -> Result<Self, IdentityError> {
        let Some(first) = chain.first() else {
            return Err(IdentityError::new(
                cert_file,
                "expected a certificate chain, found none",
            ));
        };
        let leaf = CertSummary::parse(first).map_err(|e| {
            IdentityError::new(
                cert_file,
                format!("the first certificate cannot be parsed: {e}"),
            )
        })?;
        let certified_key = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
            let problem = match e {
                rustls::Error::InconsistentKeys(_) => format!(
                    "the private key does not match the certificate in {} (subject {}, serial {})",
                    cert_file.display(),
                    leaf.subject_or_san(),
                    leaf.serial
                ),
                // Only the error kind: rustls' key errors carry no key bytes, but keep it
                // to a fixed vocabulary anyway.
                _ => "the private key cannot be used for signing (unsupported algorithm or \
                      malformed key)"
                    .to_owned(),
            };
            IdentityError::new(key_file, problem)
        })?;
        let spiffe_id = leaf
            .spiffe_id
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: super::spiffe::SpiffeError| {
                IdentityError::new(
                    cert_file,
                    format!("the URI SAN is not a valid SPIFFE ID: {e}"),
                )
            })?;
        check_validity(cert_file, &leaf, now)?;
        verify_own_chain(cert_file, &certified_key.cert, bundle, provider, now)?;
        Ok(Self {
            certified_key: Arc::new(certified_key),
            leaf,
            spiffe_id,
            content_sha256,
        })
    }
}

fn check_validity(file: &Path, leaf: &CertSummary, now: SystemTime) -> Result<(), IdentityError> {
    if now > leaf.not_after {
        return Err(IdentityError::new(
            file,
            format!(
                "the certificate expired: not_after {} is before the local clock {}",
                rfc3339(leaf.not_after),
                rfc3339(now)
            ),
        ));
    }
    if now < leaf.not_before {
        return Err(IdentityError::new(
            file,
            format!(
                "the certificate is not yet valid: not_before {} is after the local clock {}",
                rfc3339(leaf.not_before),
                rfc3339(now)
            ),
        ));
    }
    Ok(())
}

fn verify_own_chain(
    file: &Path,
    chain: &[CertificateDer<'static>],
    bundle: &TrustBundle,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<(), IdentityError> {
    let ee = webpki::EndEntityCert::try_from(&chain[0])
        .map_err(|e| IdentityError::new(file, format!("the leaf certificate is malformed: {e}")))?;
    // Our own trust domain's bundle only, for Workload API bundles.
    let own_td = leaf_trust_domain(&chain[0]);
    let anchors = bundle
        .anchors_for(own_td.as_deref())
        .map_err(|e| IdentityError::new(file, e))?;
    let now = UnixTime::since_unix_epoch(
        now.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    ee.verify_for_usage(
        provider.signature_verification_algorithms.all,
        anchors,
        &chain[1..],
        now,
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| {
        let (scope, subjects) = bundle.scope_for(own_td.as_deref());
        let issuer = CertSummary::parse(chain.last().unwrap_or(&chain[0]))
            .map(|s| s.issuer)
            .unwrap_or_default();
        IdentityError::new(
            file,
            format!(
                "the chain does not verify against {scope} for client authentication: {} \
                 (chain ends at issuer \"{issuer}\"; bundle roots: {})",
                crate::tls::words::webpki_words(&e),
                subjects.join("; ")
            ),
        )
    })
}

/// The trust domain of a certificate's SPIFFE ID, if it has one.
fn leaf_trust_domain(der: &CertificateDer<'_>) -> Option<String> {
    let id = CertSummary::parse(der).ok()?.spiffe_id?;
    let rest = id.strip_prefix("spiffe://")?;
    Some(rest.split('/').next().unwrap_or(rest).to_owned())
}

fn read(file: &Path) -> Result<Vec<u8>, IdentityError> {
    crate::fsutil::read_small(file)
        .map_err(|e| IdentityError::new(file, format!("cannot read: {e}")))
}

fn parse_certs(
    file: &Path,
    bytes: &[u8],
    expected: &str,
) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| IdentityError::new(file, format!("expected {expected}: {}", pem_error(&e))))?;
    if certs.is_empty() {
        return Err(IdentityError::new(
            file,
            format!("expected {expected}, found no CERTIFICATE block"),
        ));
    }
    Ok(certs)
}

fn parse_key(file: &Path, bytes: &[u8]) -> Result<PrivateKeyDer<'static>, IdentityError> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|e| {
        IdentityError::new(
            file,
            format!(
                "expected a PEM private key (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY): {}",
                pem_error(&e)
            ),
        )
    })
}

/// Describes a PEM error without echoing file content (a key file's bytes are secret).
fn pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::NoItemsFound => "no matching PEM block found".into(),
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line".into(),
        pem::Error::IllegalSectionStart { line } => {
            format!("malformed BEGIN line ({} bytes)", line.len())
        }
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64".into(),
        pem::Error::Io(e) => format!("read error: {e}"),
        _ => "malformed PEM".into(),
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// RFC 3339 with seconds, UTC; times before 1970 show as 1970-01-01T00:00:00Z.
pub fn rfc3339(t: SystemTime) -> String {
    // humantime panics before 1970 (a certificate's UTCTime may say 1950) and fails after
    // 9999: clamp into its range.
    humantime::format_rfc3339_seconds(t.clamp(
        SystemTime::UNIX_EPOCH,
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(253_402_300_799),
    ))
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::pki::Ca;

    #[test]
    fn a_workload_api_bundle_keeps_each_trust_domain_apart() {
        let own = Ca::root("own root").unwrap();
        let partner = Ca::root("partner root").unwrap();
        let origin = Path::new("unix:///run/spire/agent.sock");
        let bundle = TrustBundle::per_domain(
            origin,
            "cluster.local",
            vec![
                ("cluster.local".into(), vec![own.cert().clone()]),
                ("partner.example".into(), vec![partner.cert().clone()]),
            ],
            [0; 32],
        )
        .unwrap();
        assert!(bundle.is_per_domain());
        assert_eq!(bundle.trust_domains(), ["cluster.local", "partner.example"]);
        let own_anchor = webpki::anchor_from_trusted_cert(own.cert()).unwrap();
        let partner_anchor = webpki::anchor_from_trusted_cert(partner.cert()).unwrap();
        // Each domain only its own roots; no SPIFFE ID means our own domain.
        for (td, want) in [
            (Some("cluster.local"), &own_anchor),
            (None, &own_anchor),
            (Some("partner.example"), &partner_anchor),
        ] {
            let anchors = bundle.anchors_for(td).unwrap();
            assert_eq!(anchors.len(), 1, "{td:?}");
            assert_eq!(anchors[0].subject, want.subject, "{td:?}");
        }
        let e = bundle.anchors_for(Some("stranger.example")).unwrap_err();
        assert!(
            e.contains("stranger.example") && e.contains("partner.example"),
            "{e}"
        );
        let (scope, subjects) = bundle.scope_for(Some("partner.example"));
        assert!(scope.contains("partner.example's trust bundle"), "{scope}");
        assert_eq!(subjects, ["O=mtls-prober test PKI, CN=partner root"]);
        // Every root, for naming and [serve]'s hints.
        assert_eq!(bundle.anchors().len(), 2);

        // A set without our own domain's bundle is refused.
        let e = TrustBundle::per_domain(
            origin,
            "cluster.local",
            vec![("partner.example".into(), vec![partner.cert().clone()])],
            [0; 32],
        )
        .unwrap_err();
        assert!(
            e.problem
                .contains("no trust bundle for our own trust domain"),
            "{e}"
        );

        // A file bundle verifies everyone with all its roots.
        let file = TrustBundle::from_certs(
            Path::new("ca.pem"),
            vec![own.cert().clone(), partner.cert().clone()],
            [0; 32],
        )
        .unwrap();
        assert!(!file.is_per_domain());
        assert_eq!(file.anchors_for(Some("partner.example")).unwrap().len(), 2);
    }
}
