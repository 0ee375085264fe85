//! `[[discover]]`: edges from the addresses of a DNS name (e.g. the agents' headless
//! Service), one edge per address named `<discover name>/<ip>`.
//!
//! Addresses that disappear from a successful answer are removed at once. When the
//! lookup itself fails, the last known edges stay for a grace period (a DNS outage must
//! not blank the matrix), then are removed; both are logged once per change.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::edges::EdgeSink;
use super::metrics::Metrics;
use crate::config::Discover;
use crate::probe::Resolver;

/// How many refresh periods discovered edges outlive a failing DNS.
pub const GRACE_REFRESHES: u32 = 3;

/// Resolves `d.dns` every `d.refresh` and keeps the edge set in sync until shutdown;
/// counts every lookup in `metrics` when given.
pub async fn run(
    d: Discover,
    edges: impl EdgeSink,
    resolver: Resolver,
    mut shutdown: watch::Receiver<bool>,
    first_round: bool,
    metrics: Option<Metrics>,
) {
    let grace = d.refresh * GRACE_REFRESHES;
    let mut known: BTreeSet<IpAddr> = BTreeSet::new();
    let mut last_ok = Instant::now();
    let mut failing: Option<String> = None;
    let mut first = first_round;
    loop {
        let lookup = tokio::time::timeout(
            d.refresh.max(Duration::from_secs(1)),
            resolver.lookup(&d.dns),
        )
        .await;
        if let Some(m) = &metrics {
            m.discovery_lookup(&d.name, matches!(lookup, Ok(Ok(_))));
        }
        match lookup {
            Ok(Ok(ips)) => {
                if let Some(problem) = failing.take() {
                    tracing::info!(discover = %d.name, dns = %d.dns, previous = %problem, "discovery lookup recovered");
                }
                last_ok = Instant::now();
                let now: BTreeSet<IpAddr> = ips.into_iter().collect();
                for gone in known.difference(&now) {
                    tracing::info!(discover = %d.name, address = %gone, "discovered address gone; edge removed");
                    edges.remove(&d.edge(*gone).name);
                }
                for new in now.difference(&known) {
                    tracing::info!(discover = %d.name, address = %new, "address discovered; edge added");
                    edges.upsert(Arc::new(d.edge(*new)), first);
                }
                known = now;
            }
            failed => {
                let problem = match failed {
                    Ok(Err(f)) => f.detail,
                    _ => format!("lookup of {} timed out", d.dns),
                };
                if failing.as_deref() != Some(problem.as_str()) {
                    tracing::warn!(discover = %d.name, dns = %d.dns, problem = %problem, kept = known.len(), grace = %humantime::format_duration(grace), "discovery lookup failed; keeping the last known edges for the grace period");
                    failing = Some(problem);
                }
                if !known.is_empty() && last_ok.elapsed() >= grace {
                    tracing::warn!(discover = %d.name, removed = known.len(), "discovery failing past the grace period; edges removed");
                    for ip in std::mem::take(&mut known) {
                        edges.remove(&d.edge(ip).name);
                    }
                }
            }
        }
        first = false;
        tokio::select! {
            () = tokio::time::sleep(d.refresh) => {}
            _ = shutdown.changed() => return,
        }
    }
}
