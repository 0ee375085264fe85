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
        // Streamed: the config is digested every `CONFIG_POLL`, and holding a file of
        // 10,000 targets whole each time would add its 2.4 MB to the peak.
        let mut content = Sha256::new();
        match crate::fsutil::stream_small(p, &mut |piece| content.update(piece)) {
            Ok(len) => {
                h.update(b"ok");
                h.update(len.to_le_bytes());
                h.update(content.finalize());
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::{Clock, FixedClock};
    use crate::config::{Expect, HostPort, Mode, Origin, PeerExpectation, Target, TlsVersion};
    use crate::demo::peers::{
        Behavior, ClientAuth, HttpBehavior, Response, ServerOpts, server_config, spawn,
    };
    use crate::demo::pki::{Ca, LeafSpec};
    use crate::probe::{Prober, Resolver};
    use crate::tls::peer::CertSummary;

    const ID: &str = "spiffe://cluster.local/ns/monitoring/sa/mtls-prober";
    const PEER: &str = "spiffe://cluster.local/ns/prod/sa/api";

    #[tokio::test]
    async fn broken_files_keep_the_old_identity_until_it_expires() {
        let root = Ca::root("root").unwrap();
        let ours = root.issue(&LeafSpec::spiffe(ID)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cfg = IdentityConfig {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            ca: dir.path().join("ca.pem"),
            reload: Duration::from_secs(1),
            trust_domain: None,
            trust_domain_aliases: Vec::new(),
            workload_api: None,
        };
        std::fs::write(&cfg.cert, ours.chain_pem()).unwrap();
        std::fs::write(&cfg.key, ours.key_pem()).unwrap();
        std::fs::write(&cfg.ca, root.cert_pem()).unwrap();
        let not_after = CertSummary::parse(ours.leaf()).unwrap().not_after;
        let clock = Arc::new(FixedClock::new(SystemTime::now()));
        let prober = Prober::new(Resolver::system(), clock.clone());
        let creds = Credentials::load(Some(&cfg), prober.provider(), clock.now());
        assert!(creds.client.is_ok());
        let (tx, rx) = watch::channel(Arc::new(creds));
        let mut reloader = IdentityReloader::new(
            prober.provider().clone(),
            Some(content_digest(&identity_paths(&cfg))),
        );
        assert!(matches!(
            reloader.poll(&cfg, clock.now(), &tx),
            IdentityOutcome::Unchanged
        ));

        // The key file is replaced by garbage, then deleted: both refused, once each.
        std::fs::write(&cfg.key, "not a key").unwrap();
        assert!(
            matches!(reloader.poll(&cfg, clock.now(), &tx), IdentityOutcome::Failed(p) if p.contains("key.pem"))
        );
        assert!(
            matches!(
                reloader.poll(&cfg, clock.now(), &tx),
                IdentityOutcome::Unchanged
            ),
            "counted once"
        );
        std::fs::remove_file(&cfg.key).unwrap();
        assert!(
            matches!(reloader.poll(&cfg, clock.now(), &tx), IdentityOutcome::Failed(p) if p.contains("cannot read"))
        );
        assert!(rx.borrow().client.is_ok(), "the old identity is kept");

        // Probes still present it while it is valid…
        let peer_leaf = root.issue(&LeafSpec::spiffe(PEER)).unwrap();
        let config = server_config(
            &peer_leaf,
            ClientAuth::Required(vec![root.cert().clone()]),
            &ServerOpts::default(),
        )
        .unwrap();
        let server = spawn(Behavior::Tls {
            config,
            http: HttpBehavior::Respond(Response::ok()),
        })
        .await
        .unwrap();
        let target = Arc::new(Target {
            name: "prod/api".into(),
            address: HostPort {
                host: "127.0.0.1".into(),
                port: server.addr().port(),
            },
            mode: Mode::Mtls,
            expect: Expect::Success,
            peer: PeerExpectation::SpiffeId(PEER.parse().unwrap()),
            server_name: "api.prod".into(),
            alpn: Vec::new(),
            tls_versions: vec![TlsVersion::V1_2, TlsVersion::V1_3],
            ca: None,
            verify_strict: false,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            http: None,
            grpc: None,
            origin: Origin::Configured,
            fleet: Default::default(),
        });
        let prepared = prober.prepare(target.clone(), &rx.borrow());
        let r = prober.run(&prepared, "node").await;
        assert!(r.ok, "{r:?}");
        // …and once the clock passes its not_after, fail without contacting the target.
        clock.set(not_after + Duration::from_secs(1));
        let before = server.accepted();
        let r = prober.run(&prepared, "node").await;
        assert_eq!(
            r.reason,
            Some(crate::classify::Reason::IdentityUnavailable),
            "{r:?}"
        );
        assert!(
            r.detail.as_deref().unwrap_or("").contains("expired"),
            "{r:?}"
        );
        assert_eq!(server.accepted(), before, "the target was not contacted");
    }
}
