//! rustls server configurations for the peers: which leaf, which client roots, which
//! versions, suites and ALPN.

use std::sync::Arc;

use rustls::crypto::aws_lc_rs;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{CipherSuite, ProtocolVersion, RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::CertificateDer;

use crate::demo::pki::Leaf;

/// Whether and how the server asks for a client certificate.
#[derive(Clone, Debug)]
pub enum ClientAuth {
    /// No CertificateRequest: plain server-side TLS.
    None,
    /// Asks for a certificate, accepts a client without one, verifies one that is sent
    /// against these roots.
    Optional(Vec<CertificateDer<'static>>),
    /// Requires a certificate that chains to these roots (Istio STRICT, Linkerd).
    Required(Vec<CertificateDer<'static>>),
}

/// Protocol knobs of a peer's TLS server.
#[derive(Clone, Debug)]
pub struct ServerOpts {
    /// Versions the server accepts (default: TLS 1.2 and 1.3).
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// ALPN protocols in preference order (default: `h2`, `http/1.1`); empty = no ALPN,
    /// and a client offering ALPN then simply gets none.
    pub alpn: Vec<Vec<u8>>,
    /// Offer only the TLS 1.2 ECDHE-RSA suites (and so no TLS 1.3). With an ECDSA leaf
    /// no suite is usable, so every client fails with `handshake_failure`
    /// (`no_common_cipher`).
    pub tls12_suites_only_rsa: bool,
}

impl Default for ServerOpts {
    fn default() -> Self {
        Self {
            versions: vec![&rustls::version::TLS12, &rustls::version::TLS13],
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            tls12_suites_only_rsa: false,
        }
    }
}

impl ServerOpts {
    /// TLS 1.2 only (a legacy server; a TLS 1.3-only client gets `protocol_version`).
    pub fn tls12_only() -> Self {
        Self {
            versions: vec![&rustls::version::TLS12],
            ..Self::default()
        }
    }

    /// TLS 1.3 only.
    pub fn tls13_only() -> Self {
        Self {
            versions: vec![&rustls::version::TLS13],
            ..Self::default()
        }
    }

    /// The same options with these ALPN protocols (empty = no ALPN).
    pub fn with_alpn(mut self, protocols: &[&[u8]]) -> Self {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }
}

/// A TLS server config presenting `leaf`; the roots of `client_auth` verify client
/// certificates.
///
/// Session resumption is off (no session cache, no TLS 1.3 tickets): a probe must see a
/// full handshake every time (SPEC §4), and no ticket is written after the handshake,
/// so what a client reads first is the application's answer or an alert.
pub fn server_config(
    leaf: &Leaf,
    client_auth: ClientAuth,
    opts: &ServerOpts,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut provider = aws_lc_rs::default_provider();
    let mut versions = opts.versions.clone();
    if opts.tls12_suites_only_rsa {
        provider.cipher_suites.retain(|suite| {
            matches!(
                suite.suite(),
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
                    | CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
                    | CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
            )
        });
        // TLS 1.3 has no suite left; keeping the version would only turn a suite
        // mismatch into a different error for TLS 1.3 clients.
        versions.retain(|v| v.version != ProtocolVersion::TLSv1_3);
    }
    let provider = Arc::new(provider);
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional(roots) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(root_store(roots)?, provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| rustls::Error::General(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        ClientAuth::Required(roots) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(root_store(roots)?, provider)
                    .build()
                    .map_err(|e| rustls::Error::General(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(leaf.chain.clone(), leaf.key())?;
    config.alpn_protocols = opts.alpn.clone();
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

fn root_store(roots: Vec<CertificateDer<'static>>) -> Result<Arc<RootCertStore>, rustls::Error> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root)?;
    }
    Ok(Arc::new(store))
}
