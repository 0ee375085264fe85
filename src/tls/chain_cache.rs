//! Verified chain links, so that a probe verifies the peer's leaf against an issuer
//! already verified up to the trust anchor instead of verifying the whole chain again.
//!
//! A mesh peer presents `leaf, issuer[, more intermediates]` (Linkerd: trust anchor →
//! identity issuer → leaf; Istio with a plugged-in CA: root → intermediate → leaf).
//! Every probe gets a new leaf signature to check, but the intermediates and the anchor
//! are the same for hours: verifying them again costs one signature check per link
//! and probe. Here a path that webpki verified in full is remembered, keyed by the exact
//! DER of the intermediates the peer presented, inside the [`TrustBundle`] it was
//! verified against (a new bundle starts empty, so a reload or a rotated root drops
//! every entry). The next probe presenting exactly those intermediates:
//!
//! - checks the clock against the validity window of every intermediate of the cached
//!   path (the latest `not_before`, the earliest `not_after`); outside it, the full
//!   verification runs and reports the expiry in its own words;
//! - verifies the leaf with webpki against the leaf's issuer as its only anchor: the
//!   leaf's signature, its validity window, that it is no CA, and its extended key usage
//!   (serverAuth), exactly as in a full verification;
//! - on any failure there, runs the full verification, which decides and words the
//!   failure (another issuer, an expired leaf).
//!
//! The handshake itself is unchanged: every probe is a full handshake whose
//! CertificateVerify signature rustls checks, and the identity stage runs on every leaf.
//! What a hit skips is only what cannot change while the intermediates' DER and the
//! bundle stay the same: the intermediates' signatures, basic constraints, path length
//! (the leaf is an end entity, so the path's CA part is the one already verified) and
//! extended key usages. Chains whose anchor or intermediates carry name constraints are
//! never cached: those constrain each leaf's names, which a hit would not check.
//!
//! The cache is bounded ([`MAX_ENTRIES`], [`MAX_BYTES`]; least recently used out).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::load::TrustBundle;

/// The most verified paths kept per trust bundle (a mesh has a few issuers).
pub const MAX_ENTRIES: usize = 64;
/// The most bytes of certificates and anchors kept per trust bundle.
pub const MAX_BYTES: usize = 256 * 1024;

/// Hits and misses of every cache in the process (logged when the agent stops).
static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);

/// `(hits, misses)` of every chain verification in the process so far: a hit verified
/// only the leaf against a cached issuer, a miss verified the whole chain.
pub fn totals() -> (u64, u64) {
    (HITS.load(Ordering::Relaxed), MISSES.load(Ordering::Relaxed))
}

/// The verified paths of one trust bundle.
pub struct ChainCache {
    enabled: bool,
    state: Mutex<State>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct State {
    entries: Vec<Entry>,
    bytes: usize,
    /// Use counter, for least-recently-used eviction.
    tick: u64,
}

/// One verified path above a leaf.
struct Entry {
    /// The trust domain whose roots verified it (Workload API bundles), part of the key.
    trust_domain: Option<String>,
    /// The intermediates exactly as the peer presented them (the key).
    presented: Vec<CertificateDer<'static>>,
    /// The leaf's issuer in the verified path, as the anchor of the leaf's check.
    issuer: Arc<TrustAnchor<'static>>,
    /// The root the path reached (`root_sha256`).
    root_sha256: Option<String>,
    /// Every intermediate of the path is valid from `not_before` to `not_after`.
    not_before: UnixTime,
    not_after: UnixTime,
    bytes: usize,
    used: u64,
}

impl std::fmt::Debug for ChainCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (hits, misses) = self.stats();
        f.debug_struct("ChainCache")
            .field("enabled", &self.enabled)
            .field("hits", &hits)
            .field("misses", &misses)
            .finish_non_exhaustive()
    }
}

impl Default for ChainCache {
    fn default() -> Self {
        Self::new(true)
    }
}

impl ChainCache {
    /// An empty cache; a disabled one verifies every chain in full (tests compare both).
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            state: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// `(hits, misses)` of this cache.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// How many paths it holds.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self, hit: bool) {
        let (mine, all) = if hit {
            (&self.hits, &HITS)
        } else {
            (&self.misses, &MISSES)
        };
        mine.fetch_add(1, Ordering::Relaxed);
        all.fetch_add(1, Ordering::Relaxed);
    }

    /// The issuer and root of a cached path for exactly these intermediates, if its
    /// window holds `now`.
    fn lookup(
        &self,
        trust_domain: Option<&str>,
        presented: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Option<(Arc<TrustAnchor<'static>>, Option<String>)> {
        let mut st = self.lock();
        st.tick += 1;
        let tick = st.tick;
        let e = st.entries.iter_mut().find(|e| {
            e.trust_domain.as_deref() == trust_domain
                && e.presented.len() == presented.len()
                && e.presented.iter().zip(presented).all(|(a, b)| a == b)
        })?;
        if now < e.not_before || now > e.not_after {
            return None;
        }
        e.used = tick;
        Some((e.issuer.clone(), e.root_sha256.clone()))
    }

    /// Remembers a path webpki verified in full, when it may be cached.
    fn insert(
        &self,
        trust_domain: Option<&str>,
        presented: &[CertificateDer<'_>],
        path: &webpki::VerifiedPath<'_>,
        root_sha256: Option<String>,
    ) {
        let Some(mut entry) = Entry::of(presented, path, root_sha256) else {
            return;
        };
        entry.trust_domain = trust_domain.map(str::to_owned);
        if entry.bytes > MAX_BYTES / 4 {
            return;
        }
        let mut st = self.lock();
        if st.entries.iter().any(|e| {
            e.trust_domain == entry.trust_domain && e.presented.iter().eq(entry.presented.iter())
        }) {
            return;
        }
        while !st.entries.is_empty()
            && (st.entries.len() >= MAX_ENTRIES || st.bytes + entry.bytes > MAX_BYTES)
        {
            let oldest = st
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.used)
                .map_or(0, |(i, _)| i);
            let gone = st.entries.swap_remove(oldest);
            st.bytes -= gone.bytes;
        }
        st.tick += 1;
        entry.used = st.tick;
        st.bytes += entry.bytes;
        st.entries.push(entry);
    }
}

impl Entry {
    /// The cacheable facts of a verified path: `None` without intermediates, with name
    /// constraints anywhere on the path, or when a validity window cannot be read.
    fn of(
        presented: &[CertificateDer<'_>],
        path: &webpki::VerifiedPath<'_>,
        root_sha256: Option<String>,
    ) -> Option<Self> {
        if path.anchor().name_constraints.is_some() {
            return None;
        }
        let mut not_before = UnixTime::since_unix_epoch(std::time::Duration::ZERO);
        let mut not_after = UnixTime::since_unix_epoch(std::time::Duration::from_secs(u64::MAX));
        let mut issuer = None;
        for cert in path.intermediate_certificates() {
            let der = cert.der();
            let (_, parsed) = X509Certificate::from_der(&der).ok()?;
            if !matches!(parsed.name_constraints(), Ok(None)) {
                return None;
            }
            let validity = parsed.validity();
            let nb = u64::try_from(validity.not_before.timestamp()).unwrap_or(0);
            let na = u64::try_from(validity.not_after.timestamp()).ok()?;
            not_before = not_before.max(UnixTime::since_unix_epoch(
                std::time::Duration::from_secs(nb),
            ));
            not_after = not_after.min(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                na,
            )));
            if issuer.is_none() {
                // The first intermediate of the path is the one that signed the leaf.
                issuer = Some(webpki::anchor_from_trusted_cert(&der).ok()?.to_owned());
            }
        }
        let issuer: TrustAnchor<'static> = issuer?;
        let presented: Vec<CertificateDer<'static>> =
            presented.iter().map(|c| c.clone().into_owned()).collect();
        let bytes = presented.iter().map(|c| c.len()).sum::<usize>()
            + issuer.subject.len()
            + issuer.subject_public_key_info.len()
            + 256;
        Some(Self {
            trust_domain: None,
            presented,
            issuer: Arc::new(issuer),
            root_sha256,
            not_before,
            not_after,
            bytes,
            used: 0,
        })
    }
}

/// The roots a chain is verified with: all of a file bundle's, or one trust domain's
/// of a Workload API bundle (named, so that the cache keeps each domain's paths apart).
pub struct Scope<'a> {
    /// The trust domain whose roots these are; `None` for a file bundle.
    pub trust_domain: Option<&'a str>,
    /// The trust anchors.
    pub anchors: &'a [TrustAnchor<'static>],
}

/// Verifies the peer's chain for server authentication with `scope`'s anchors of
/// `bundle`, through the bundle's cache: the narrow hook of the peer verifier. Returns
/// the SHA-256 of the root reached; errors are webpki's, from a full verification, for
/// the caller to classify.
pub fn verify_server_chain(
    bundle: &TrustBundle,
    scope: Scope<'_>,
    ee: &webpki::EndEntityCert<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    algs: &[&dyn SignatureVerificationAlgorithm],
) -> Result<Option<String>, webpki::Error> {
    let cache = bundle.chain_cache();
    let cacheable = cache.enabled && !intermediates.is_empty();
    if cacheable && let Some((issuer, root)) = cache.lookup(scope.trust_domain, intermediates, now)
    {
        let leaf = ee.verify_for_usage(
            algs,
            std::slice::from_ref(&*issuer),
            &[],
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        );
        if leaf.is_ok() {
            cache.count(true);
            return Ok(root);
        }
    }
    cache.count(false);
    let path = ee.verify_for_usage(
        algs,
        scope.anchors,
        intermediates,
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )?;
    let root = bundle
        .root_for_anchor(path.anchor())
        .map(|r| r.sha256.clone());
    if cacheable {
        cache.insert(scope.trust_domain, intermediates, &path, root.clone());
    }
    Ok(root)
}
