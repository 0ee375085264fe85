//! The listener's rustls configuration, built from one snapshot of the agent's
//! [`Credentials`]: our certificate and key to present, the trust bundle to verify
//! clients with.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::sign::SingleCertAndKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::config::ClientAuth;
use crate::identity::Credentials;
use crate::tls::peer::CertSummary;

/// What every connection accepted while these credentials are current is served with.
/// A connection keeps the snapshot it started with across rotations.
#[derive(Debug)]
pub(super) struct Snapshot {
    /// The rustls server configuration.
    pub(super) config: Arc<ServerConfig>,
    /// Our SPIFFE ID, as presented in `config`'s certificate (the `spiffe_id` field).
    pub(super) spiffe_id: Option<Arc<str>>,
    /// Serial of the presented leaf, lowercase hex (for the rotation log line).
    pub(super) serial: String,
}

/// ALPN protocols offered, in preference order.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Builds the snapshot, or says why the listener cannot serve with `creds`. The reason
/// names the missing part and carries the identity module's message (which never
/// includes key material).
pub(super) fn snapshot(
    creds: &Credentials,
    client_auth: ClientAuth,
    provider: &Arc<CryptoProvider>,
) -> Result<Snapshot, String> {
    let bundle = creds
        .bundle
        .as_ref()
        .map_err(|e| format!("no trust bundle to verify clients with: {e}"))?;
    let identity = creds
        .client
        .as_ref()
        .map_err(|e| format!("no certificate to serve with: {e}"))?;

    let build = |anchors: &[rustls_pki_types::TrustAnchor<'static>]| {
        let mut roots = RootCertStore::empty();
        roots.extend(anchors.iter().cloned());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        match client_auth {
            ClientAuth::Require => verifier,
            // A client without a certificate is let in; one that sends a certificate
            // must still chain to the bundle, or the handshake fails.
            ClientAuth::Optional => verifier.allow_unauthenticated(),
        }
        .build()
        .map_err(|e| {
            format!(
                "cannot verify clients with the trust bundle {}: {e}",
                bundle.file.display()
            )
        })
    };
    let verifier: Arc<dyn ClientCertVerifier> = if bundle.is_per_domain() {
        // Workload API bundles: each client only with its own trust domain's bundle.
        let mut by_domain = std::collections::BTreeMap::new();
        for td in bundle.trust_domains() {
            let anchors = bundle.anchors_for(Some(td))?;
            by_domain.insert(td.to_owned(), build(anchors)?);
        }
        let own = build(bundle.anchors_for(None)?)?;
        Arc::new(PerDomainClientVerifier { by_domain, own })
    } else {
        build(bundle.anchors())?
    };

    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_client_cert_verifier(verifier)
        // The identity module already checked that the key matches the certificate
        // (`CertifiedKey::from_der`), and holds no key bytes we could re-parse anyway.
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(
            identity.certified_key.clone(),
        )));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    // Every probe must be a full handshake (SPEC §4): a resumed session would skip the
    // certificate exchange that the peer is trying to test. No cache, no tickets.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;

    Ok(Snapshot {
        config: Arc::new(config),
        spiffe_id: identity.spiffe_id.as_ref().map(|id| Arc::from(id.as_str())),
        serial: identity.leaf.serial.clone(),
    })
}

/// Verifies a client with the bundle of the trust domain its SPIFFE ID claims (ours for
/// a client without one), never a pooled set: the Workload API specification's rule,
/// as for the probes' own peer verification. Everything else (signatures, whether a
/// certificate is required) is webpki's, through the per-domain verifiers.
#[derive(Debug)]
struct PerDomainClientVerifier {
    by_domain: std::collections::BTreeMap<String, Arc<dyn ClientCertVerifier>>,
    own: Arc<dyn ClientCertVerifier>,
}

impl PerDomainClientVerifier {
    fn for_leaf(
        &self,
        end_entity: &CertificateDer<'_>,
    ) -> Result<&dyn ClientCertVerifier, rustls::Error> {
        let td = CertSummary::parse(end_entity)
            .ok()
            .and_then(|s| s.spiffe_id)
            .and_then(|id| {
                id.strip_prefix("spiffe://")
                    .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
            });
        match td {
            None => Ok(self.own.as_ref()),
            Some(td) => self.by_domain.get(&td).map(|v| v.as_ref()).ok_or(
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            ),
        }
    }
}

impl ClientCertVerifier for PerDomainClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.own.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.own.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints (as Istio and SPIRE-based servers send none): the roots of several
        // trust domains would only make clients pick by the wrong criterion.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.for_leaf(end_entity)?
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.own.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.own.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.own.supported_verify_schemes()
    }
}
