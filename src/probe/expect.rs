//! Applies `expect` (SPEC §4) to the outcome of the layers.

use super::Run;
use crate::classify::{Failure, Reason};
use crate::config::{Expect, Mode, Target};

/// Returns `(ok, failure, detail-when-ok)`.
pub(super) fn apply(
    target: &Target,
    run: &Run,
    outcome: Result<(), Failure>,
) -> (bool, Option<Failure>, Option<String>) {
    match (target.expect, outcome) {
        (Expect::Success, Ok(())) => (true, None, None),
        (Expect::Success, Err(f)) => (false, Some(f), None),
        // A refusal only proves something when it happened after the TCP connect, at the
        // layer under test: a refused or timed-out connection may just be a down service.
        (Expect::Reject, Err(f)) if run.connected && f.refused_by_peer => (
            true,
            None,
            Some(format!("{}/{}: {}", f.reason.stage(), f.reason, f.detail)),
        ),
        (Expect::Reject, Err(f)) => match &run.report.http {
            // Any HTTP answer that is not a refusal means the request was let through.
            Some(http) if f.reason.stage() == crate::classify::Stage::Request => (
                false,
                Some(let_through(target, answered(run, http.status))),
                None,
            ),
            _ => (false, Some(f), None),
        },
        (Expect::Reject, Ok(())) => {
            let what = match &run.report.http {
                Some(h) => answered(run, h.status),
                None if target.mode == Mode::Plaintext => "the TCP connection was accepted".into(),
                None => "the TLS handshake completed and the connection stayed open".into(),
            };
            (false, Some(let_through(target, what)), None)
        }
    }
}

/// "the peer answered HTTP 200", or what it answered to the gRPC health check.
fn answered(run: &Run, status: u16) -> String {
    match &run.report.grpc {
        Some(g) => format!(
            "the peer answered the gRPC health check ({}{})",
            g.status.unwrap_or("HTTP status only"),
            g.health.map(|h| format!(", {h}")).unwrap_or_default()
        ),
        None => format!("the peer answered HTTP {status}"),
    }
}

fn let_through(target: &Target, what: String) -> Failure {
    if target.mode == Mode::Plaintext {
        Failure::new(
            Reason::PlaintextAccepted,
            format!(
                "{what} over plaintext: the workload still takes traffic outside mTLS, so STRICT \
                 is not in force"
            ),
        )
    } else {
        let cert = if target.mode == Mode::Tls {
            " without a client certificate"
        } else {
            ""
        };
        Failure::new(
            Reason::UnexpectedSuccess,
            format!("{what}{cert}, but this probe expects to be refused"),
        )
    }
}
