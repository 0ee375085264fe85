//! The listener's rustls configuration, built from one snapshot of the agent's
//! [`Credentials`]: our certificate and key to present, the trust bundle to verify
//! clients with.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::sign::SingleCertAndKey;
use rustls::{RootCertStore, ServerConfig};

use crate::config::ClientAuth;
use crate::identity::Credentials;

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

    let mut roots = RootCertStore::empty();
    roots.extend(bundle.anchors().iter().cloned());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let verifier = match client_auth {
        ClientAuth::Require => verifier,
        // A client without a certificate is let in; one that sends a certificate must
        // still chain to the bundle, or the handshake fails.
        ClientAuth::Optional => verifier.allow_unauthenticated(),
    }
    .build()
    .map_err(|e| {
        format!(
            "cannot verify clients with the trust bundle {}: {e}",
            bundle.file.display()
        )
    })?;

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
