//! `[identity] source = "workload-api"`: the X.509 SVID and the trust bundles come from
//! a SPIFFE Workload API (a SPIRE agent) instead of files (SPEC §13).
//!
//! The `spiffe` crate speaks the protocol (its tonic client, the `workload.spiffe.io`
//! header, parsing of SVIDs and DER bundles); this module decides what an update means
//! for the prober. Every update is checked as completely as the identity files are —
//! the key must match the certificate, the chain must reach our own trust domain's
//! bundle, the SVID must be valid now — before it replaces the running identity; a
//! malformed one is refused and the last good identity stays. Bundles stay keyed by
//! trust domain ([`TrustBundle::per_domain`]), so each peer is verified only with the
//! bundle of its own trust domain, never a pooled set.
//!
//! [`follow`] keeps one stream open (the Workload API pushes every rotation), and when
//! the endpoint is missing, refuses or the stream breaks, it keeps the last good SVID
//! (probes use it until its `not_after`, then fail `local/identity_unavailable`) and
//! reconnects with a capped, jittered exponential backoff.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ::spiffe::{WorkloadApiClient, WorkloadApiError, X509Context};
use futures_util::StreamExt as _;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use super::Credentials;
use super::load::{ClientIdentity, TrustBundle, rfc3339};
use crate::clock::Clock;
use crate::config::WorkloadApiConfig;

/// How long connecting and receiving the first X.509 context may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The first reconnect delay; doubled after every failed attempt up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// The longest reconnect delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A checked X.509 context: the selected SVID with its key, and every trust domain's
/// bundle.
#[derive(Debug)]
pub struct Fetched {
    /// The bundles, keyed by trust domain.
    pub bundle: TrustBundle,
    /// The selected SVID and its key, checked against our own trust domain's bundle.
    pub client: ClientIdentity,
    /// SHA-256 over the selected SVID, its key and every bundle: an update that leaves
    /// this unchanged changes nothing (SPIRE resends the same context at times).
    pub digest: [u8; 32],
}

impl Fetched {
    /// The credentials probes use.
    pub fn credentials(self) -> Credentials {
        Credentials {
            bundle: Ok(Arc::new(self.bundle)),
            client: Ok(Arc::new(self.client)),
        }
    }
}

/// What happened on the stream, for the agent's metrics and logs.
#[derive(Debug)]
pub enum Event {
    /// A changed, valid update was published (`identity_reloads_total{result="success"}`).
    Updated {
        /// The SVID's SPIFFE ID.
        spiffe_id: String,
        /// The SVID's serial, lowercase hex.
        serial: String,
        /// The SVID's `not_after`.
        not_after: SystemTime,
        /// The trust domains with a bundle.
        trust_domains: Vec<String>,
    },
    /// A malformed update was refused; the last good identity stays (`failure`).
    Rejected(String),
    /// The endpoint could not be reached or the stream broke (`failure`, once per
    /// outage); the last good identity stays until it expires.
    Lost(String),
}

/// Connects, fetches one X.509 context and checks it (`check`, `probe`).
pub async fn fetch_once(
    cfg: &WorkloadApiConfig,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<Fetched, String> {
    let fetch = async {
        let client = connect(&cfg.socket).await?;
        client
            .fetch_x509_context()
            .await
            .map_err(|e| describe(&cfg.socket, &e))
    };
    let ctx = tokio::time::timeout(FETCH_TIMEOUT, fetch)
        .await
        .map_err(|_| {
            format!(
                "the Workload API at {} sent no X.509 context within {}s",
                cfg.socket,
                FETCH_TIMEOUT.as_secs()
            )
        })??;
    check(&ctx, cfg, provider, now)
}

/// How long a long-running command waits at start for the Workload API's first answer
/// (a local SPIRE agent answers in milliseconds; one that is not there must not hold
/// up the endpoints).
pub const FIRST_ANSWER_WAIT: Duration = Duration::from_secs(5);

/// Spawns [`follow`] and waits up to [`FIRST_ANSWER_WAIT`] for its first answer (an
/// SVID, or the reason there is none), so a first round of probes started right after
/// uses the SVID when the Workload API answers at once. Returns the event stream.
pub async fn spawn_follow(
    cfg: WorkloadApiConfig,
    provider: Arc<CryptoProvider>,
    clock: Arc<dyn Clock>,
    creds: watch::Sender<Arc<Credentials>>,
    shutdown: watch::Receiver<bool>,
) -> mpsc::UnboundedReceiver<Event> {
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let mut first = creds.subscribe();
    tokio::spawn(follow(cfg, provider, clock, creds, events_tx, shutdown));
    let _ = tokio::time::timeout(FIRST_ANSWER_WAIT, first.changed()).await;
    events_rx
}

/// Follows the X.509 context stream until `shutdown`: every changed, valid update is
/// published on `creds` (used from the next probe) and reported on `events`.
///
/// While no identity has ever been valid, `creds` carries the reason, so probes say why
/// they fail; afterwards a lost stream or a malformed update keeps the last good one.
pub async fn follow(
    cfg: WorkloadApiConfig,
    provider: Arc<CryptoProvider>,
    clock: Arc<dyn Clock>,
    creds: watch::Sender<Arc<Credentials>>,
    events: mpsc::UnboundedSender<Event>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut state = Follower {
        cfg,
        provider,
        clock,
        creds,
        events,
        last_digest: None,
        outage: false,
    };
    let mut backoff = MIN_BACKOFF;
    loop {
        let got_update = tokio::select! {
            got = state.one_stream() => got,
            _ = shutdown.changed() => return,
        };
        if got_update {
            backoff = MIN_BACKOFF;
        }
        let wait = jittered(backoff);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The stream follower's state between connections.
struct Follower {
    cfg: WorkloadApiConfig,
    provider: Arc<CryptoProvider>,
    clock: Arc<dyn Clock>,
    creds: watch::Sender<Arc<Credentials>>,
    events: mpsc::UnboundedSender<Event>,
    last_digest: Option<[u8; 32]>,
    /// A `Lost` event was sent and no update arrived since (one failure per outage).
    outage: bool,
}

impl Follower {
    /// Connects and follows one stream until it ends; whether any message arrived.
    async fn one_stream(&mut self) -> bool {
        let opened = tokio::time::timeout(FETCH_TIMEOUT, async {
            let client = connect(&self.cfg.socket).await?;
            client
                .stream_x509_contexts()
                .await
                .map_err(|e| describe(&self.cfg.socket, &e))
        })
        .await;
        let mut stream = match opened {
            Ok(Ok(s)) => s,
            Ok(Err(problem)) => {
                self.lost(problem);
                return false;
            }
            Err(_) => {
                self.lost(format!(
                    "the Workload API at {} did not answer within {}s",
                    self.cfg.socket,
                    FETCH_TIMEOUT.as_secs()
                ));
                return false;
            }
        };
        let mut got = false;
        while let Some(item) = stream.next().await {
            got = true;
            match item {
                Ok(ctx) => self.update(&ctx),
                Err(e) if is_malformed(&e) => self.reject(describe(&self.cfg.socket, &e)),
                Err(e) => {
                    self.lost(describe(&self.cfg.socket, &e));
                    return got;
                }
            }
        }
        self.lost(format!(
            "the Workload API at {} closed the X.509 context stream",
            self.cfg.socket
        ));
        got
    }

    fn update(&mut self, ctx: &X509Context) {
        self.outage = false;
        let fetched = match check(ctx, &self.cfg, &self.provider, self.clock.now()) {
            Ok(f) => f,
            Err(problem) => return self.reject(problem),
        };
        if self.last_digest == Some(fetched.digest) {
            return;
        }
        self.last_digest = Some(fetched.digest);
        let event = Event::Updated {
            spiffe_id: fetched
                .client
                .spiffe_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            serial: fetched.client.leaf.serial.clone(),
            not_after: fetched.client.leaf.not_after,
            trust_domains: fetched
                .bundle
                .trust_domains()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        };
        self.creds.send_replace(Arc::new(fetched.credentials()));
        let _ = self.events.send(event);
    }

    /// A malformed update: refused, counted, the last good identity kept.
    fn reject(&mut self, problem: String) {
        self.publish_problem_if_nothing_valid(&problem);
        let _ = self.events.send(Event::Rejected(problem));
    }

    /// The endpoint is gone or the stream broke: reported once per outage.
    fn lost(&mut self, problem: String) {
        self.publish_problem_if_nothing_valid(&problem);
        if !self.outage {
            self.outage = true;
            let _ = self.events.send(Event::Lost(problem));
        }
    }

    /// With no valid identity yet, the probes should say why; a valid one is kept.
    fn publish_problem_if_nothing_valid(&self, problem: &str) {
        let valid = {
            let c = self.creds.borrow();
            c.bundle.is_ok() && c.client.is_ok()
        };
        if !valid {
            self.creds
                .send_replace(Arc::new(Credentials::unavailable(problem)));
        }
    }
}

impl Credentials {
    /// Nothing usable, for this reason (both parts).
    pub fn unavailable(problem: &str) -> Self {
        Self {
            bundle: Err(problem.to_owned()),
            client: Err(problem.to_owned()),
        }
    }
}

/// The credentials to start with, before the first X.509 context arrived.
pub fn waiting(cfg: &WorkloadApiConfig) -> Credentials {
    Credentials::unavailable(&format!(
        "waiting for the first X.509 SVID from the Workload API at {}",
        cfg.socket
    ))
}

async fn connect(socket: &str) -> Result<WorkloadApiClient, String> {
    WorkloadApiClient::connect_to(socket)
        .await
        .map_err(|e| describe(socket, &e))
}

/// A Workload API error for logs and details: the endpoint and the crate's message (it
/// never includes key material: SVID parse errors name only the field or the check).
fn describe(socket: &str, e: &WorkloadApiError) -> String {
    let mut text = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(inner) = cur {
        let s = inner.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cur = inner.source();
    }
    format!("Workload API {socket}: {text}")
}

/// Errors about the content of an update (the stream itself is fine).
fn is_malformed(e: &WorkloadApiError) -> bool {
    matches!(
        e,
        WorkloadApiError::X509Svid(_)
            | WorkloadApiError::X509Bundle(_)
            | WorkloadApiError::SpiffeId(_)
            | WorkloadApiError::MissingRequiredField { .. }
            | WorkloadApiError::InvalidResponseField { .. }
            | WorkloadApiError::EmptyResponse
    )
}

/// Selects the SVID and checks the context completely (SPEC §13): the first SVID, or
/// the one whose hint is `svid_hint`; its key must match its certificate, its chain
/// must reach its own trust domain's bundle for client authentication, and it must be
/// valid at `now`.
pub fn check(
    ctx: &X509Context,
    cfg: &WorkloadApiConfig,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<Fetched, String> {
    let svids = ctx.svids();
    let svid = match &cfg.svid_hint {
        None => svids.first(),
        Some(hint) => svids.iter().find(|s| s.hint() == Some(hint.as_str())),
    }
    .ok_or_else(|| match &cfg.svid_hint {
        Some(hint) => format!(
            "Workload API {}: no X.509 SVID has the hint {hint:?} (identity.svid_hint); \
             the SVIDs: {}",
            cfg.socket,
            svids
                .iter()
                .map(|s| format!(
                    "{} (hint {:?})",
                    s.spiffe_id(),
                    s.hint().unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!(
            "Workload API {}: the update carries no X.509 SVID",
            cfg.socket
        ),
    })?;

    let own = svid.spiffe_id().trust_domain_name().to_owned();
    let mut hasher = Sha256::new();
    let mut bundles: Vec<(String, Vec<CertificateDer<'static>>)> = Vec::new();
    for (td, bundle) in ctx.bundle_set().iter() {
        let certs: Vec<CertificateDer<'static>> = bundle
            .authorities()
            .iter()
            .map(|c| CertificateDer::from(c.as_bytes().to_vec()))
            .collect();
        hasher.update(td.as_str().as_bytes());
        for c in &certs {
            hasher.update((c.len() as u64).to_le_bytes());
            hasher.update(c.as_ref());
        }
        bundles.push((td.as_str().to_owned(), certs));
    }
    // Sorted by the crate's map order; sort ourselves so the digest is stable.
    bundles.sort_by(|a, b| a.0.cmp(&b.0));
    let origin = PathBuf::from(&cfg.socket);
    let chain: Vec<CertificateDer<'static>> = svid
        .cert_chain()
        .iter()
        .map(|c| CertificateDer::from(c.as_bytes().to_vec()))
        .collect();
    for c in &chain {
        hasher.update((c.len() as u64).to_le_bytes());
        hasher.update(c.as_ref());
    }
    // The key enters the digest only to detect a change; the digest is never shown.
    hasher.update(svid.private_key().as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();

    let bundle = TrustBundle::per_domain(&origin, &own, bundles, digest)
        .map_err(|e| format!("Workload API {}: {}", cfg.socket, e.problem))?;
    let named = Path::new(&cfg.socket).join(format!("X.509 SVID {}", svid.spiffe_id()));
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        svid.private_key().as_bytes().to_vec(),
    ));
    let client =
        ClientIdentity::from_parts(&named, &named, chain, key, &bundle, provider, now, digest)
            .map_err(|e| format!("{}: {}", e.file.display(), e.problem))?;
    Ok(Fetched {
        bundle,
        client,
        digest,
    })
}

/// `d` ± 20 %, so agents restarted together do not reconnect in lockstep.
fn jittered(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    // A fraction in [-0.2, 0.2) from the clock's low bits: spread, not security.
    let frac = f64::from(nanos % 1000) / 1000.0 * 0.4 - 0.2;
    d.mul_f64(1.0 + frac)
}

/// One line for logs and `check`: `spiffe://… (serial …, not_after …)`.
pub fn summary(client: &ClientIdentity) -> String {
    format!(
        "{} (serial {}, not_after {})",
        client
            .spiffe_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        client.leaf.serial,
        rfc3339(client.leaf.not_after)
    )
}
