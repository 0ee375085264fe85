//! Per-target rustls `ClientConfig`s.
//!
//! Built once per (target, identity generation) and shared by every probe of the
//! target. Session resumption is disabled: every probe must make a full handshake so a
//! rotated peer certificate is seen at the next probe (SPEC §4). Only the server's
//! choice of key-exchange group is remembered ([`KxHintsOnly`]).

use std::sync::Arc;

use rustls::client::{ResolvesClientCert, Resumption, Tls12Resumption};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, SignatureScheme};

use super::capture::record;
use super::kx_hint::KxHintsOnly;
use super::verifier::PeerVerifier;
use crate::config::{Mode, PeerExpectation, Target, TlsVersion};
use crate::identity::load::TrustBundle;

/// Builds the `ClientConfig` for a TLS or mTLS target.
///
/// `client_key` is presented when the server asks for a certificate (mode `mtls`);
/// with `None` an empty certificate is sent (mode `tls`). Either way the request is
/// recorded, which tells `client_cert_required` apart from other handshake failures.
pub fn client_config(
    target: &Target,
    bundle: Option<Arc<TrustBundle>>,
    client_key: Option<Arc<CertifiedKey>>,
    provider: &Arc<CryptoProvider>,
    time: Arc<dyn TimeProvider>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = target
        .tls_versions
        .iter()
        .map(|v| match v {
            TlsVersion::V1_2 => &rustls::version::TLS12,
            TlsVersion::V1_3 => &rustls::version::TLS13,
        })
        .collect();
    let expectation = if target.mode == Mode::Plaintext {
        PeerExpectation::Insecure
    } else {
        target.peer.clone()
    };
    let verifier = PeerVerifier::new(
        bundle,
        expectation,
        provider.signature_verification_algorithms,
    );
    let mut config = ClientConfig::builder_with_details(provider.clone(), time)
        .with_protocol_versions(&versions)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(RecordingResolver { key: client_key }));
    config.alpn_protocols = target.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    config.resumption = Resumption::store(Arc::new(KxHintsOnly::default()))
        .tls12_resumption(Tls12Resumption::Disabled);
    Ok(Arc::new(config))
}

/// Presents `key` (or nothing) and records that the server asked.
#[derive(Debug)]
struct RecordingResolver {
    key: Option<Arc<CertifiedKey>>,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        // rustls sends an empty Certificate when our key cannot sign with any scheme the
        // server accepts; mirror that so "sent" means a certificate really went out.
        let sent = self
            .key
            .as_ref()
            .is_some_and(|k| k.key.choose_scheme(sigschemes).is_some());
        record(|c| {
            c.cert_requested = true;
            c.cert_sent = sent;
        });
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}
