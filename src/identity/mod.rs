//! The agent's own identity: certificate chain, private key and trust bundle.
//!
//! This module never imports `probe`: it loads and checks files, and hands out
//! immutable, validated snapshots ([`Credentials`]).

pub mod load;
pub mod spiffe;

use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;

use crate::config::IdentityConfig;
use load::{ClientIdentity, IdentityError, TrustBundle};

/// The identity material as currently loaded: each part is either usable or the reason
/// it is not (shown as `local/identity_unavailable` by the probes that need it).
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The trust bundle, needed by `mtls` and `tls` probes.
    pub bundle: Result<Arc<TrustBundle>, String>,
    /// Our certificate and key, needed by `mtls` probes.
    pub client: Result<Arc<ClientIdentity>, String>,
}

impl Credentials {
    /// No identity configured at all (plaintext-only configs, `--insecure-skip-verify`).
    pub fn none() -> Self {
        Self {
            bundle: Err("no [identity] is configured (no trust bundle)".into()),
            client: Err("no [identity] is configured (no client certificate)".into()),
        }
    }

    /// Loads what `cfg` names. Problems are kept per part, never fatal: a probe that
    /// does not need the broken part still runs.
    pub fn load(cfg: Option<&IdentityConfig>, provider: &CryptoProvider, now: SystemTime) -> Self {
        let Some(cfg) = cfg else {
            return Self::none();
        };
        let (bundle, client) = load_parts(cfg, provider, now);
        Self {
            bundle: bundle.map(Arc::new).map_err(|e| e.to_string()),
            client: client.map(Arc::new).map_err(|e| e.to_string()),
        }
    }
}

/// Loads the bundle, then the client identity checked against it.
pub fn load_parts(
    cfg: &IdentityConfig,
    provider: &CryptoProvider,
    now: SystemTime,
) -> (
    Result<TrustBundle, IdentityError>,
    Result<ClientIdentity, IdentityError>,
) {
    let bundle = TrustBundle::load(&cfg.ca);
    let client = match &bundle {
        Ok(b) => ClientIdentity::load(&cfg.cert, &cfg.key, b, provider, now),
        Err(e) => Err(IdentityError {
            file: cfg.cert.clone(),
            problem: format!(
                "cannot be checked against the trust bundle, which failed to load ({e})"
            ),
        }),
    };
    (bundle, client)
}
