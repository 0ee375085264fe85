//! The agent's own identity: certificate chain, private key and trust bundle.
//!
//! This module never imports `probe`: it loads and checks files (or follows the SPIFFE
//! Workload API, [`workload`]), and hands out immutable, validated snapshots
//! ([`Credentials`]).

pub mod load;
pub mod spiffe;
pub mod workload;

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
    /// does not need the broken part still runs. For the Workload API this is the
    /// waiting state; [`Self::fetch`] and [`workload::follow`] get the SVID.
    pub fn load(cfg: Option<&IdentityConfig>, provider: &CryptoProvider, now: SystemTime) -> Self {
        let Some(cfg) = cfg else {
            return Self::none();
        };
        if let Some(wa) = &cfg.workload_api {
            return workload::waiting(wa);
        }
        let (bundle, client) = load_parts(cfg, provider, now);
        Self {
            bundle: bundle.map(Arc::new).map_err(|e| e.to_string()),
            client: client.map(Arc::new).map_err(|e| e.to_string()),
        }
    }
}

impl Credentials {
    /// [`Self::load`], or one fetch from the Workload API (bounded by
    /// [`workload::FETCH_TIMEOUT`]): for the one-shot commands (`probe`).
    pub async fn fetch(
        cfg: Option<&IdentityConfig>,
        provider: &CryptoProvider,
        now: SystemTime,
    ) -> Self {
        match cfg.and_then(|c| c.workload_api.as_ref()) {
            Some(wa) => match workload::fetch_once(wa, provider, now).await {
                Ok(f) => f.credentials(),
                Err(problem) => Self::unavailable(&problem),
            },
            None => Self::load(cfg, provider, now),
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
