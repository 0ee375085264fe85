//! Fleet (SPEC §12): the agents of a DaemonSet share the matrix by rendezvous hashing,
//! so the cluster runs k × M edges instead of N × M. No coordinator, no API-server
//! access, no state on disk: every agent computes the same assignment alone.
//!
//! - [`assign`]: the pure assignment (who holds what), specified byte for byte.
//! - [`membership`]: what the membership is, given the lookups so far (grace, fail-open).
//! - [`gate`]: the candidates and the diff that schedules this agent's share through
//!   the edge set's own `upsert`/`remove`.
//! - [`run`]: the loop that feeds them: the peers name through the agent's resolver,
//!   the epoch from the agent's clock.

pub mod assign;
pub mod gate;
pub mod membership;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

pub use gate::{Gate, Rule};
use membership::{STARTUP_POLL, State, Tracker};

use crate::clock::Clock;
use crate::config::FleetConfig;
use crate::probe::Resolver;

/// The longest one lookup of the peers name may take (the resolver retries within it).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The rule for a freshly loaded config, before any lookup: everything without
/// `[fleet]`, nothing (starting) with it.
pub fn initial_rule(config: Option<&FleetConfig>, clock: &dyn Clock) -> Rule {
    match config {
        None => Rule::Off,
        Some(c) => Rule::Fleet {
            config: c.clone(),
            state: State::Starting {
                why: format!("{} not looked up yet", c.peers),
            },
            epoch: assign::epoch(clock.now(), c.rotate),
        },
    }
}

/// Feeds the gate until shutdown: resolves the peers every `refresh` (every second while
/// starting), recomputes the share on every membership change and at every epoch, and
/// follows `[fleet]` through config reloads.
pub async fn run(
    gate: Arc<Gate>,
    mut config: watch::Receiver<Option<FleetConfig>>,
    resolver: Resolver,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tracker: Option<Tracker> = None;
    let mut next_lookup = Instant::now();
    loop {
        let current = config.borrow_and_update().clone();
        let Some(cfg) = current else {
            tracker = None;
            let previous = gate.rule();
            let (added, _) = gate.set_rule(Rule::Off);
            if previous != Rule::Off {
                tracing::info!(added, "fleet off ([fleet] removed): probing every target");
            }
            tokio::select! {
                changed = config.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
            continue;
        };
        let t = match &mut tracker {
            Some(t) if t.follows(&cfg.peers, cfg.self_addr) => t,
            previous => {
                // A reload that changed `peers` or `self` starts a new tracker; an agent
                // that was already sharing does not wait again (it would drop its edges
                // for the wait).
                let shared = previous.as_ref().is_some_and(Tracker::has_shared);
                next_lookup = Instant::now();
                let mut t = Tracker::new(&cfg.peers, cfg.self_addr, Instant::now().into_std());
                if shared {
                    t.skip_startup_wait();
                }
                previous.insert(t)
            }
        };
        if Instant::now() >= next_lookup {
            let lookup =
                match tokio::time::timeout(LOOKUP_TIMEOUT, resolver.lookup(&cfg.peers)).await {
                    Ok(Ok(ips)) => Ok(ips),
                    Ok(Err(f)) => Err(f.detail),
                    Err(_) => Err(format!(
                        "the lookup of {} timed out after {}",
                        cfg.peers,
                        humantime::format_duration(LOOKUP_TIMEOUT)
                    )),
                };
            t.observe(Instant::now().into_std(), lookup);
            let every = if t.waiting(Instant::now().into_std(), cfg.refresh) {
                STARTUP_POLL.min(cfg.refresh)
            } else {
                cfg.refresh
            };
            next_lookup = Instant::now() + every;
        }
        let state = t.state(Instant::now().into_std(), cfg.refresh);
        let epoch = assign::epoch(clock.now(), cfg.rotate);
        let rule = Rule::Fleet {
            config: cfg.clone(),
            state,
            epoch,
        };
        let previous = gate.rule();
        let (added, removed) = gate.set_rule(rule.clone());
        log_change(&previous, &rule, added, removed, &gate);

        let mut wait = next_lookup.saturating_duration_since(Instant::now());
        if let Some(start) = assign::epoch_start(epoch.saturating_add(1), cfg.rotate) {
            // A millisecond past the boundary: `epoch` floors milliseconds.
            let until = start
                .duration_since(clock.now())
                .unwrap_or_default()
                .saturating_add(Duration::from_millis(1));
            wait = wait.min(until);
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = config.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

/// One log line per change of what the agent does: entering a state (fail-open once),
/// a membership change, a rotation. Never one per lookup.
fn log_change(previous: &Rule, now: &Rule, added: usize, removed: usize, gate: &Gate) {
    let Rule::Fleet {
        config,
        state,
        epoch,
    } = now
    else {
        return;
    };
    let (before, before_epoch) = match previous {
        Rule::Fleet { state, epoch, .. } => (Some(state), Some(*epoch)),
        Rule::Off => (None, None),
    };
    let assigned = gate.view().map_or(0, |v| v.assigned);
    match (before, state) {
        (Some(State::Sharing(old)), State::Sharing(new)) => {
            if old != new {
                let joined = new.addrs().filter(|a| !old.contains(*a)).count();
                let left = old.addrs().filter(|a| !new.contains(*a)).count();
                tracing::info!(
                    members = new.len(),
                    joined,
                    left,
                    added,
                    removed,
                    assigned,
                    "fleet membership changed; share recomputed"
                );
            } else if before_epoch != Some(*epoch) {
                tracing::info!(
                    epoch,
                    added,
                    removed,
                    assigned,
                    "fleet rotation: new epoch, share recomputed"
                );
            }
        }
        (_, State::Sharing(members)) => tracing::info!(
            peers = %config.peers,
            members = members.len(),
            probers_per_target = config.probers_per_target,
            epoch,
            assigned,
            added,
            removed,
            "fleet: sharing the matrix"
        ),
        (Some(State::FailOpen { .. }), State::FailOpen { .. })
        | (Some(State::Starting { .. }), State::Starting { .. }) => {}
        (_, State::FailOpen { why }) => tracing::warn!(
            problem = %why,
            added,
            "fleet failing open: this agent probes every target until the peers resolve \
             with its own address among them"
        ),
        (_, State::Starting { why }) => tracing::info!(
            problem = %why,
            "fleet: waiting for this agent's address among the peers before probing"
        ),
    }
}
