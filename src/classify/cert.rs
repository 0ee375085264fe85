//! Certificate-stage classification: webpki chain errors → reasons with details that
//! name the concrete values (`not_after` vs the local clock, the issuer not found…).

use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, UnixTime};

use super::{Failure, Reason};
use crate::identity::load::{TrustBundle, rfc3339};
use crate::tls::peer::CertSummary;
use crate::tls::words::webpki_words;

/// Maps a webpki path-building error over the peer's chain to a failure.
pub fn chain_failure(
    err: &webpki::Error,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    bundle: &TrustBundle,
    now: UnixTime,
) -> Failure {
    let leaf = CertSummary::parse(end_entity).ok();
    let now_t = to_system(now);
    let which = |not_after_or_before: SystemTime, leaf_time: Option<SystemTime>| {
        if leaf_time == Some(not_after_or_before) {
            "the peer's leaf certificate".to_owned()
        } else {
            "a certificate in the peer's chain".to_owned()
        }
    };
    match err {
        webpki::Error::CertExpired { time, not_after } => {
            let na = to_system(*not_after);
            let subject = which(na, leaf.as_ref().map(|l| l.not_after));
            Failure::new(
                Reason::CertExpired,
                format!(
                    "{subject} expired: not_after {} is {} before the local clock {}{}",
                    rfc3339(na),
                    human(to_system(*time).duration_since(na).unwrap_or_default()),
                    rfc3339(to_system(*time)),
                    serial_note(leaf.as_ref())
                ),
            )
        }
        webpki::Error::CertNotValidYet { time, not_before } => {
            let nb = to_system(*not_before);
            let subject = which(nb, leaf.as_ref().map(|l| l.not_before));
            Failure::new(
                Reason::CertNotYetValid,
                format!(
                    "{subject} is not yet valid: not_before {} is {} after the local clock {} \
                     (clock skew or a future-dated certificate){}",
                    rfc3339(nb),
                    human(nb.duration_since(to_system(*time)).unwrap_or_default()),
                    rfc3339(to_system(*time)),
                    serial_note(leaf.as_ref())
                ),
            )
        }
        webpki::Error::UnknownIssuer => {
            let last = intermediates
                .last()
                .and_then(|c| CertSummary::parse(c).ok())
                .or(leaf.clone());
            let issuer = last.map(|c| c.issuer).unwrap_or_default();
            // Per trust domain for Workload API bundles: name the one that was used.
            let td = leaf
                .as_ref()
                .and_then(|l| l.spiffe_id.as_deref())
                .and_then(|id| id.strip_prefix("spiffe://"))
                .map(|rest| rest.split('/').next().unwrap_or(rest));
            let (scope, subjects) = bundle.scope_for(td);
            Failure::new(
                Reason::CertUntrusted,
                format!(
                    "the chain does not reach the trust bundle: its issuer \"{issuer}\" is not \
                     among {scope} ({})",
                    quote_list(&subjects)
                ),
            )
        }
        #[allow(deprecated)]
        webpki::Error::RequiredEkuNotFound | webpki::Error::RequiredEkuNotFoundContext(_) => {
            Failure::new(
                Reason::CertInvalid,
                "the peer's certificate is not valid for TLS servers: it lacks the serverAuth \
                 extended key usage",
            )
        }
        webpki::Error::CaUsedAsEndEntity => {
            let _ = now_t;
            let what = leaf
                .as_ref()
                .map(|l| format!(" ({}, serial {})", l.subject_or_san(), l.serial))
                .unwrap_or_default();
            Failure::new(
                Reason::CertInvalid,
                format!(
                    "the peer presented a CA certificate as its server certificate{what}: it \
                     has basicConstraints CA:TRUE, which TLS clients refuse for a leaf \
                     (`openssl req -x509` makes such a self-signed CA by default)"
                ),
            )
            .with_hint(CA_AS_LEAF_HINT)
        }
        other => Failure::new(
            Reason::CertInvalid,
            format!("the peer's chain is invalid: {}", webpki_words(other)),
        ),
    }
}

/// The hint for a CA certificate presented as a server's leaf, more precise than the
/// runbook's general `cert_invalid` line.
pub const CA_AS_LEAF_HINT: &str = "Issue a leaf signed by a CA (CA:FALSE, serverAuth) and trust \
     the CA; for a quick self-signed test cert add `-addext basicConstraints=critical,CA:FALSE` \
     to `openssl req -x509`.";

fn serial_note(leaf: Option<&CertSummary>) -> String {
    leaf.map(|l| format!(" (leaf serial {}, {})", l.serial, l.subject_or_san()))
        .unwrap_or_default()
}

fn quote_list(items: &[&str]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    // The system's store has ~150 roots: name a few, count the rest.
    const SHOWN: usize = 4;
    let mut out = items
        .iter()
        .take(SHOWN)
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        out.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    out
}

/// A duration rounded to whole seconds, humanised ("1h 2m 3s").
pub fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

fn to_system(t: UnixTime) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(t.as_secs())
}
