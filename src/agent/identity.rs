//! Following the agent's identity while it runs: the files polled every `reload`, or
//! the SPIFFE Workload API's stream (SPEC §13). Both end in the same metrics, the same
//! status-page problem and the same log lines.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::reload::{IdentityOutcome, IdentityReloader};
use super::{AgentState, lock};
use crate::config;
use crate::identity::Credentials;
use crate::identity::load::rfc3339;
use crate::identity::workload::Event;

/// Where the agent's identity comes from, and what its task needs.
pub(super) enum IdentitySource {
    /// Files polled by [`identity_loop`], which publishes on this sender.
    Files(watch::Sender<Arc<Credentials>>),
    /// The Workload API stream (already followed); its events.
    WorkloadApi(
        config::WorkloadApiConfig,
        tokio::sync::mpsc::UnboundedReceiver<Event>,
    ),
}

/// The start-up line: what was loaded, or why nothing was.
pub(super) fn log_identity(creds: &Credentials, configured: bool) {
    match (&creds.bundle, &creds.client) {
        (Ok(b), Ok(c)) => tracing::info!(
            spiffe_id = %c.spiffe_id.as_ref().map(ToString::to_string).unwrap_or_default(),
            serial = %c.leaf.serial,
            not_after = %rfc3339(c.leaf.not_after),
            roots = b.roots().len(),
            "identity loaded"
        ),
        (bundle, client) if configured => tracing::warn!(
            bundle = %bundle.as_ref().err().map(String::as_str).unwrap_or("ok"),
            client = %client.as_ref().err().map(String::as_str).unwrap_or("ok"),
            "identity not loaded; mtls probes fail with local/identity_unavailable until the files are valid"
        ),
        _ => {}
    }
}

/// Re-reads the identity files every `reload` (or when the config names other files).
pub(super) async fn identity_loop(
    state: Arc<AgentState>,
    mut reloader: IdentityReloader,
    creds_tx: watch::Sender<Arc<Credentials>>,
    changed: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let cfg = lock(&state.current).identity.clone();
        let period = cfg.as_ref().map_or(Duration::from_secs(30), |c| c.reload);
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = changed.notified() => {}
            _ = shutdown.changed() => return,
        }
        let Some(cfg) = cfg.or_else(|| lock(&state.current).identity.clone()) else {
            continue;
        };
        match reloader.poll(&cfg, state.clock.now(), &creds_tx) {
            IdentityOutcome::Unchanged => {}
            IdentityOutcome::Reloaded => {
                state.metrics.identity_reload(true);
                *lock(&state.identity_problem) = None;
                let creds = creds_tx.borrow().clone();
                if let Ok(c) = &creds.client {
                    state.metrics.set_identity_not_after(Some(c.leaf.not_after));
                    tracing::info!(
                        serial = %c.leaf.serial,
                        not_after = %rfc3339(c.leaf.not_after),
                        "identity reloaded; new handshakes use it"
                    );
                }
            }
            IdentityOutcome::Failed(problem) => {
                identity_failed(&state, "identity reload failed", problem);
            }
        }
    }
}

/// `[identity] source = "workload-api"`: turns the stream's events into the same
/// metrics, status-page problem and logs as file reloads.
pub(super) async fn workload_api_events(
    state: Arc<AgentState>,
    socket: String,
    mut events: tokio::sync::mpsc::UnboundedReceiver<Event>,
) {
    while let Some(event) = events.recv().await {
        match event {
            Event::Updated {
                spiffe_id,
                serial,
                not_after,
                trust_domains,
            } => {
                state.metrics.identity_reload(true);
                state.metrics.set_identity_not_after(Some(not_after));
                *lock(&state.identity_problem) = None;
                tracing::info!(
                    socket = %socket,
                    spiffe_id = %spiffe_id,
                    serial = %serial,
                    not_after = %rfc3339(not_after),
                    trust_domains = %trust_domains.join(","),
                    "identity updated from the Workload API; new handshakes use it"
                );
            }
            Event::Rejected(problem) | Event::Lost(problem) => {
                identity_failed(&state, "Workload API update failed", problem);
            }
        }
    }
}

/// A failed reload or update, from either source: counted, shown on the page, and
/// logged with how long the identity in use still holds (the last good one is kept
/// until it expires).
fn identity_failed(state: &AgentState, what: &str, problem: String) {
    state.metrics.identity_reload(false);
    let kept = state
        .creds
        .borrow()
        .client
        .as_ref()
        .ok()
        .map(|c| c.leaf.not_after);
    match kept {
        Some(na) => tracing::warn!(
            problem = %problem,
            kept_until = %rfc3339(na),
            "{what}; keeping the previous identity until it expires"
        ),
        None => tracing::warn!(
            problem = %problem,
            "{what}; no valid identity (mtls probes fail with local/identity_unavailable)"
        ),
    }
    *lock(&state.identity_problem) = Some(problem);
}
