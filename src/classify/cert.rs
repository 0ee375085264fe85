//! Certificate-stage classification: webpki chain errors → reasons with details that
//! name the concrete values (`not_after` vs the local clock, the issuer not found…).

use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, UnixTime};

use super::{Failure, Reason};
use crate::identity::load::{TrustBundle, rfc3339};
use crate::tls::peer::CertSummary;

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
                    "the chain does not reach the trust bundle: issuer \"{issuer}\" is not in \
                     {scope} (roots: {})",
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
        other => {
            let _ = now_t;
            Failure::new(
                Reason::CertInvalid,
                format!("the peer's chain is invalid: {other}"),
            )
        }
    }
}

fn serial_note(leaf: Option<&CertSummary>) -> String {
    leaf.map(|l| format!(" (leaf serial {}, {})", l.serial, l.subject_or_san()))
        .unwrap_or_default()
}

fn quote_list(items: &[&str]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration rounded to whole seconds, humanised ("1h 2m 3s").
pub fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

fn to_system(t: UnixTime) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(t.as_secs())
}
