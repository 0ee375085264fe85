//! Live reloads of the identity files and the config file.
//!
//! Both follow one rule: the new input is read and validated completely first; only a
//! fully valid one replaces the running one. A broken one keeps what runs, counts a
//! `result="failure"`, and logs why — once per distinct content, not once per poll.
//! Change is detected by content (SHA-256), not mtime: Kubernetes swaps secret and
//! ConfigMap volumes with an atomic symlink flip (`..data`) that mtime may not show.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::config::IdentityConfig;
use crate::identity::{Credentials, load_parts};

/// A digest of files' contents (or of the errors reading them).
pub fn content_digest(paths: &[&Path]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in paths {
        h.update(p.as_os_str().as_encoded_bytes());
        match std::fs::read(p) {
            Ok(bytes) => {
                h.update(b"ok");
                h.update((bytes.len() as u64).to_le_bytes());
                h.update(&bytes);
            }
            Err(e) => {
                h.update(b"err");
                h.update(format!("{:?}", e.kind()).as_bytes());
            }
        }
    }
    h.finalize().into()
}

/// The identity files of a config, in a fixed order.
pub fn identity_paths(cfg: &IdentityConfig) -> [&Path; 3] {
    [&cfg.cert, &cfg.key, &cfg.ca]
}

/// What happened to one identity reload attempt.
#[derive(Debug)]
pub enum IdentityOutcome {
    /// The files did not change since the last attempt.
    Unchanged,
    /// A complete, valid new identity was published.
    Reloaded,
    /// The new files are broken; the previous identity stays (if it was valid).
    Failed(String),
}

/// Tracks the identity files and publishes complete, valid identities.
pub struct IdentityReloader {
    last_digest: Option<[u8; 32]>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl IdentityReloader {
    /// A reloader; `initial` is the digest of what was loaded at start.
    pub fn new(provider: Arc<rustls::crypto::CryptoProvider>, initial: Option<[u8; 32]>) -> Self {
        Self {
            last_digest: initial,
            provider,
        }
    }

    /// Re-reads the files if their content changed and publishes a valid new identity.
    pub fn poll(
        &mut self,
        cfg: &IdentityConfig,
        now: SystemTime,
        creds: &watch::Sender<Arc<Credentials>>,
    ) -> IdentityOutcome {
        let digest = content_digest(&identity_paths(cfg));
        if self.last_digest == Some(digest) {
            return IdentityOutcome::Unchanged;
        }
        self.last_digest = Some(digest);
        let (bundle, client) = load_parts(cfg, &self.provider, now);
        match (bundle, client) {
            (Ok(b), Ok(c)) => {
                creds.send_replace(Arc::new(Credentials {
                    bundle: Ok(Arc::new(b)),
                    client: Ok(Arc::new(c)),
                }));
                IdentityOutcome::Reloaded
            }
            (bundle, client) => {
                let problem = [bundle.as_ref().err(), client.as_ref().err()]
                    .into_iter()
                    .flatten()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                let current_valid = {
                    let c = creds.borrow();
                    c.bundle.is_ok() && c.client.is_ok()
                };
                if !current_valid {
                    // Nothing valid to keep: publish what we know, so probes say why.
                    creds.send_replace(Arc::new(Credentials {
                        bundle: bundle.map(Arc::new).map_err(|e| e.to_string()),
                        client: client.map(Arc::new).map_err(|e| e.to_string()),
                    }));
                }
                IdentityOutcome::Failed(problem)
            }
        }
    }
}
