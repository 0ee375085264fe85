//! Summaries of peer leaf certificates, kept by their exact DER.
//!
//! Every probe reports the peer's leaf (subject, SANs, serial, validity) and checks its
//! identity from the same summary. An x509 parse of a mesh certificate is ≈ 10 µs and a
//! dozen allocations, ≈ 3 % of a whole mTLS probe, and an edge sees the same leaf on
//! every probe until the peer rotates it. The summary is a pure function of the DER
//! bytes, so a summary kept under the exact bytes is the summary a fresh parse would
//! give: nothing about the verdict depends on it being fresh (validity windows are
//! compared with the clock on every probe, by webpki and by the stages that read
//! `not_before`/`not_after`). A rotated certificate is new bytes, hence a new entry.
//!
//! Bounded in entries and bytes; when either bound would be passed the cache starts
//! over (a mesh with more distinct peers than it holds parses as before, plus a hash).
//! Only certificates that parse are kept: a malformed one is parsed, and refused, on
//! every probe.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use super::peer::CertSummary;
use crate::sync::lock;

/// Distinct leaves kept.
const MAX_ENTRIES: usize = 512;
/// DER bytes kept, all entries together.
const MAX_BYTES: usize = 1 << 20;
/// A leaf larger than this is parsed every time, never kept.
const MAX_DER: usize = 16 * 1024;

/// A bounded map from a leaf's DER to its summary.
#[derive(Debug, Default)]
pub struct SummaryCache {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Box<[u8]>, CertSummary>,
    bytes: usize,
}

/// The process's cache, shared by every probe.
static LEAVES: LazyLock<SummaryCache> = LazyLock::new(SummaryCache::default);

/// [`CertSummary::parse`] through the process's cache.
pub fn summarize(der: &[u8]) -> Result<CertSummary, String> {
    LEAVES.summarize(der)
}

impl SummaryCache {
    /// The summary of `der`: the kept one when these exact bytes were parsed before,
    /// else a fresh parse (kept when it succeeds and fits the bounds).
    pub fn summarize(&self, der: &[u8]) -> Result<CertSummary, String> {
        if let Some(s) = lock(&self.state).entries.get(der) {
            return Ok(s.clone());
        }
        // Parsed outside the lock: another probe's lookup does not wait for it.
        let summary = CertSummary::parse(der)?;
        if der.len() <= MAX_DER {
            let mut st = lock(&self.state);
            if st.entries.len() >= MAX_ENTRIES || st.bytes + der.len() > MAX_BYTES {
                st.entries.clear();
                st.bytes = 0;
            }
            if st
                .entries
                .insert(der.to_vec().into_boxed_slice(), summary.clone())
                .is_none()
            {
                st.bytes += der.len();
            }
        }
        Ok(summary)
    }

    /// Leaves kept.
    pub fn len(&self) -> usize {
        lock(&self.state).entries.len()
    }

    /// Whether no leaf is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn leaf(cn: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![format!("{cn}.test")]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn a_kept_summary_is_the_summary_of_those_exact_bytes() {
        let cache = SummaryCache::default();
        let a = leaf("svc");
        let first = cache.summarize(&a).unwrap();
        assert_eq!(first, CertSummary::parse(&a).unwrap());
        assert_eq!(cache.summarize(&a).unwrap(), first);
        assert_eq!(cache.len(), 1);
        // Rotated: same name, new key and serial, so new bytes and its own summary.
        let rotated = leaf("svc");
        let again = cache.summarize(&rotated).unwrap();
        assert_eq!(again, CertSummary::parse(&rotated).unwrap());
        assert_ne!(again.serial, first.serial);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn malformed_leaves_are_refused_every_time_and_never_kept() {
        let cache = SummaryCache::default();
        for _ in 0..2 {
            assert!(cache.summarize(b"\x30\x03\x02\x01\x01").is_err());
        }
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_is_bounded_in_entries() {
        let cache = SummaryCache::default();
        let der = leaf("one");
        // Fill it with the same summary under distinct byte strings (a trailing byte
        // x509-parser ignores would be a different certificate to a verifier; here it
        // only makes distinct keys).
        {
            let s = CertSummary::parse(&der).unwrap();
            let mut st = lock(&cache.state);
            for i in 0..MAX_ENTRIES {
                let mut k = der.clone();
                k.extend_from_slice(&i.to_be_bytes());
                st.bytes += k.len();
                st.entries.insert(k.into_boxed_slice(), s.clone());
            }
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        cache.summarize(&leaf("two")).unwrap();
        assert_eq!(cache.len(), 1, "started over instead of growing");
    }
}
