//! The peer verifier: chain first (certificate stage), then identity (identity stage).
//!
//! For SPIFFE expectations the chain is verified against the bundle *without* any DNS
//! name check (mesh certificates carry a URI SAN, not the service's DNS name), then the
//! URI SAN is compared with the expectation — the same split linkerd2-proxy makes. For
//! a DNS expectation the name is checked with webpki after the chain. The verifier
//! also records the presented chain and its verdict into the probe's capture, so the
//! report shows the peer's certificate even when verification fails.
//!
//! This is a "dangerous" verifier in rustls' sense only because it replaces the default
//! one; it is at least as strict (same webpki path building, same signature checks),
//! except under `PeerExpectation::Insecure`, which only the ad-hoc
//! `--insecure-skip-verify` flag can select.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::capture::record;
use super::chain_cache::{Scope, verify_server_chain};
use super::peer::CertSummary;
use crate::classify::cert::chain_failure;
use crate::classify::{Failure, Reason};
use crate::config::PeerExpectation;
use crate::identity::load::TrustBundle;

/// Verifies the peer against a bundle and an identity expectation.
#[derive(Debug)]
pub struct PeerVerifier {
    bundle: Option<Arc<TrustBundle>>,
    expectation: PeerExpectation,
    algs: WebPkiSupportedAlgorithms,
}

impl PeerVerifier {
    /// A verifier; `bundle` may be `None` only with [`PeerExpectation::Insecure`].
    pub fn new(
        bundle: Option<Arc<TrustBundle>>,
        expectation: PeerExpectation,
        algs: WebPkiSupportedAlgorithms,
    ) -> Self {
        Self {
            bundle,
            expectation,
            algs,
        }
    }

    /// Verifies chain and identity; returns the SHA-256 of the root reached.
    pub fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Option<String>, Failure> {
        self.check_keeping_leaf(end_entity, intermediates, now, &mut None)
    }

    /// [`Self::check`], also handing back the leaf summary parsed for the identity stage
    /// (in `leaf`, whatever the verdict) so the probe's report does not parse it again.
    fn check_keeping_leaf(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        leaf: &mut Option<CertSummary>,
    ) -> Result<Option<String>, Failure> {
        if self.expectation == PeerExpectation::Insecure {
            return Ok(None);
        }
        let Some(bundle) = &self.bundle else {
            return Err(Failure::new(
                Reason::IdentityUnavailable,
                "no trust bundle is loaded to verify the peer",
            ));
        };
        let ee = webpki::EndEntityCert::try_from(end_entity).map_err(|e| {
            Failure::new(
                Reason::CertInvalid,
                format!("the peer's leaf certificate is malformed: {e}"),
            )
        })?;
        // Workload API bundles: only the bundle of the peer's own trust domain (from the
        // SPIFFE ID it claims) may vouch for it, never a pooled set (SPEC §13). Whether
        // that domain is acceptable at all is the identity stage's question, after the
        // chain. A file bundle verifies every peer with all its roots.
        let (anchors, parsed, domain) = if bundle.is_per_domain() {
            let summary = parse_leaf(end_entity)?;
            let td = summary.spiffe_id.as_deref().map(trust_domain_of);
            let anchors = bundle
                .anchors_for(td)
                .map_err(|e| Failure::new(Reason::CertUntrusted, e))?;
            let td = td.map(str::to_owned);
            (anchors, Some(summary), td)
        } else {
            (bundle.anchors(), None, None)
        };
        // Through the bundle's cache of verified chain links (`super::chain_cache`), kept
        // apart per trust domain: a path verified with one domain's roots never vouches
        // for a peer of another.
        let root = verify_server_chain(
            bundle,
            Scope {
                trust_domain: domain.as_deref(),
                anchors,
            },
            &ee,
            intermediates,
            now,
            self.algs.all,
        )
        .map_err(|e| chain_failure(&e, end_entity, intermediates, bundle, now))?;
        let summary = match parsed {
            Some(s) => s,
            None => parse_leaf(end_entity)?,
        };
        let verdict = check_summary(&self.expectation, &ee, &summary);
        *leaf = Some(summary);
        verdict.map(|()| root)
    }
}

/// The identity stage over a verified leaf.
pub fn check_identity(
    expectation: &PeerExpectation,
    ee: &webpki::EndEntityCert<'_>,
    leaf_der: &CertificateDer<'_>,
) -> Result<(), Failure> {
    check_summary(expectation, ee, &parse_leaf(leaf_der)?)
}

/// The leaf's summary, through the process's cache of parsed leaves (the same leaf
/// comes back on every probe of an edge until the peer rotates it).
fn parse_leaf(leaf_der: &CertificateDer<'_>) -> Result<CertSummary, Failure> {
    super::summary_cache::summarize(leaf_der)
        .map_err(|e| Failure::new(Reason::CertInvalid, format!("the peer's leaf: {e}")))
}

/// The identity stage over a verified leaf already summarised.
fn check_summary(
    expectation: &PeerExpectation,
    ee: &webpki::EndEntityCert<'_>,
    leaf: &CertSummary,
) -> Result<(), Failure> {
    match expectation {
        PeerExpectation::Insecure => Ok(()),
        PeerExpectation::DnsName(name) => {
            let server_name = ServerName::try_from(name.as_str()).map_err(|_| {
                Failure::new(
                    Reason::IdentityMismatch,
                    format!("invalid expected name {name}"),
                )
            })?;
            ee.verify_is_valid_for_subject_name(&server_name)
                .map_err(|_| {
                    Failure::new(
                        Reason::IdentityMismatch,
                        format!(
                            "the peer certificate is not valid for {name}: DNS SANs [{}]{}",
                            leaf.dns_sans.join(", "),
                            leaf.spiffe_id
                                .as_deref()
                                .map(|id| format!(", SPIFFE ID {id}"))
                                .unwrap_or_default()
                        ),
                    )
                })
        }
        PeerExpectation::SpiffeId(expected) => {
            let presented = presented_spiffe_id(leaf, expected.as_str())?;
            if presented == expected.as_str() {
                return Ok(());
            }
            let presented_td = trust_domain_of(presented);
            if presented_td != expected.trust_domain() {
                return Err(Failure::new(
                    Reason::TrustDomainMismatch,
                    format!(
                        "peer SPIFFE ID {presented} is in trust domain {presented_td}, expected \
                         {} ({expected})",
                        expected.trust_domain()
                    ),
                ));
            }
            Err(Failure::new(
                Reason::IdentityMismatch,
                format!("peer SPIFFE ID {presented}, expected {expected}"),
            ))
        }
        PeerExpectation::TrustDomain(domains) => {
            let expected = domains
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let presented = presented_spiffe_id(leaf, &format!("trust domain {expected}"))?;
            let td = trust_domain_of(presented);
            if domains.iter().any(|d| d.as_str() == td) {
                return Ok(());
            }
            Err(Failure::new(
                Reason::TrustDomainMismatch,
                format!(
                    "peer SPIFFE ID {presented} is in trust domain {td}, expected {}",
                    if domains.len() == 1 {
                        expected
                    } else {
                        format!("one of [{expected}]")
                    }
                ),
            ))
        }
    }
}

fn presented_spiffe_id<'a>(leaf: &'a CertSummary, expected: &str) -> Result<&'a str, Failure> {
    leaf.spiffe_id.as_deref().ok_or_else(|| {
        Failure::new(
            Reason::NoIdentity,
            format!(
                "the peer certificate carries no SPIFFE ID (URI SANs [{}], DNS SANs [{}], \
                 subject \"{}\"), expected {expected}",
                leaf.uri_sans.join(", "),
                leaf.dns_sans.join(", "),
                leaf.subject
            ),
        )
    })
}

fn trust_domain_of(id: &str) -> &str {
    let rest = id.strip_prefix("spiffe://").unwrap_or(id);
    rest.split('/').next().unwrap_or(rest)
}

/// What rustls is told when our verification fails; it picks the alert sent to the
/// server from it. Our own classification comes from the recorded verdict.
fn rustls_error(f: &Failure) -> rustls::Error {
    rustls::Error::InvalidCertificate(match f.reason {
        Reason::CertExpired => CertificateError::Expired,
        Reason::CertNotYetValid => CertificateError::NotValidYet,
        Reason::CertUntrusted => CertificateError::UnknownIssuer,
        Reason::IdentityMismatch | Reason::TrustDomainMismatch | Reason::NoIdentity => {
            CertificateError::ApplicationVerificationFailure
        }
        _ => CertificateError::BadEncoding,
    })
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut leaf = None;
        let result = self.check_keeping_leaf(end_entity, intermediates, now, &mut leaf);
        record(|c| {
            c.leaf = leaf;
            let mut chain = Vec::with_capacity(1 + intermediates.len());
            chain.push(end_entity.clone().into_owned());
            chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
            c.chain = Some(chain);
            match &result {
                Ok(root) => c.verified_root.clone_from(root),
                Err(f) => c.verdict = Some(f.clone()),
            }
        });
        match result {
            Ok(_) => Ok(ServerCertVerified::assertion()),
            Err(f) => Err(rustls_error(&f)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
