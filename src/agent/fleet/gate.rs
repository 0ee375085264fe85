//! The gate in front of the edge set: every edge the config or a `[[discover]]` wants
//! is a candidate; the gate schedules the candidates this agent holds and, when the
//! rule changes (membership, epoch, fail-open), diffs what it holds against what it
//! should and calls the edge set's own `upsert`/`remove` — the paths a config reload
//! takes. Edges that stay keep their windows; edges that leave lose their series.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::assign::{self, Item};
use super::membership::State;
use crate::agent::edges::{EdgeSet, EdgeSink};
use crate::agent::view::{EdgeFleet, EdgeView, FleetView, Share};
use crate::config::{FleetConfig, FleetScope, Origin, Target};
use crate::sync::lock;

/// What decides which candidates this agent holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// No `[fleet]`: every edge is this agent's.
    Off,
    /// `[fleet]`: the state of the membership and the epoch.
    Fleet {
        /// The `[fleet]` settings.
        config: FleetConfig,
        /// Starting, sharing or failing open.
        state: State,
        /// The current epoch.
        epoch: u64,
    },
}

struct Candidate {
    target: Arc<Target>,
    /// Counts toward readiness when first scheduled (only edges of the first load).
    first_round: bool,
    held: bool,
}

struct Inner {
    rule: Rule,
    candidates: BTreeMap<String, Candidate>,
    /// Held candidates with `fleet = "shared"`.
    assigned: usize,
}

/// The gate. Cheap to share (`Arc`).
pub struct Gate {
    edges: EdgeSet,
    inner: Mutex<Inner>,
}

/// The assignment key and exclusion of an edge: a companion goes with its target, a
/// discovered agent is never probed by itself.
pub fn item(t: &Target) -> Item<'_> {
    match &t.origin {
        Origin::StrictCompanion { of } => Item {
            key: of,
            exclude: None,
        },
        Origin::Discovered { .. } => Item {
            key: &t.name,
            exclude: t.address.host.parse().ok(),
        },
        Origin::Configured => Item {
            key: &t.name,
            exclude: None,
        },
    }
}

/// Why `rule` gives `t` to this agent, if it does.
fn decide(rule: &Rule, t: &Target) -> Option<Share> {
    let Rule::Fleet {
        config,
        state,
        epoch,
    } = rule
    else {
        return Some(Share::All);
    };
    if t.fleet == FleetScope::All {
        return Some(Share::All);
    }
    match state {
        State::Starting { .. } => None,
        State::FailOpen { .. } => Some(Share::FailOpen),
        State::Sharing(members) => assign::holds(
            item(t),
            members,
            config.self_addr,
            config.probers_per_target,
            *epoch,
        )
        .then_some(Share::Assigned),
    }
}

impl Gate {
    /// A gate in front of `edges`, with `rule` in force.
    pub fn new(edges: EdgeSet, rule: Rule) -> Self {
        Self {
            edges,
            inner: Mutex::new(Inner {
                rule,
                candidates: BTreeMap::new(),
                assigned: 0,
            }),
        }
    }

    /// The names of every candidate (held or not).
    pub fn names(&self) -> Vec<String> {
        lock(&self.inner).candidates.keys().cloned().collect()
    }

    /// The candidates that came from the config (`[[target]]` and their
    /// `verify_strict` companions), not from a `[[discover]]`: what a reload diffs and
    /// reuses. The running copies themselves, not clones.
    pub fn configured(&self) -> Vec<Arc<Target>> {
        lock(&self.inner)
            .candidates
            .values()
            .filter(|c| !matches!(c.target.origin, Origin::Discovered { .. }))
            .map(|c| c.target.clone())
            .collect()
    }

    /// The rule in force.
    pub fn rule(&self) -> Rule {
        lock(&self.inner).rule.clone()
    }

    /// Puts `rule` in force: schedules the candidates it gives this agent and removes
    /// the others. Returns (added, removed).
    pub fn set_rule(&self, rule: Rule) -> (usize, usize) {
        let mut g = lock(&self.inner);
        if g.rule == rule {
            return (0, 0);
        }
        g.rule = rule;
        let Inner {
            rule,
            candidates,
            assigned,
        } = &mut *g;
        let settled = !matches!(
            rule,
            Rule::Fleet {
                state: State::Starting { .. },
                ..
            }
        );
        let (mut added, mut removed) = (0, 0);
        for (name, c) in candidates.iter_mut() {
            let want = decide(rule, &c.target).is_some();
            if want && !c.held {
                self.edges.upsert(c.target.clone(), c.first_round);
                c.held = true;
                added += 1;
            } else if !want && c.held {
                self.edges.remove(name);
                c.held = false;
                removed += 1;
            }
            if settled {
                c.first_round = false;
            }
        }
        *assigned = candidates.values().filter(|c| counts(c)).count();
        self.publish(&g);
        (added, removed)
    }

    /// The fleet's facts about `t`, `None` without `[fleet]` (or when this agent does
    /// not hold it).
    pub fn describe(&self, t: &Target) -> Option<EdgeFleet> {
        describe(&lock(&self.inner).rule, t)
    }

    /// Fills in [`EdgeView::fleet`] of every view, under one lock.
    pub fn annotate(&self, views: &mut [EdgeView]) {
        let rule = lock(&self.inner).rule.clone();
        for v in views {
            v.fleet = describe(&rule, &v.target);
        }
    }

    /// The agent-wide facts, `None` without `[fleet]`.
    pub fn view(&self) -> Option<FleetView> {
        let g = lock(&self.inner);
        let Rule::Fleet {
            config,
            state,
            epoch,
        } = &g.rule
        else {
            return None;
        };
        let (state_name, problem, members) = match state {
            State::Starting { why } => ("starting", Some(why.clone()), 0),
            State::Sharing(m) => ("sharing", None, m.len()),
            State::FailOpen { why } => ("fail_open", Some(why.clone()), 0),
        };
        let shared = g
            .candidates
            .values()
            .filter(|c| c.target.fleet == FleetScope::Shared)
            .count();
        Some(FleetView {
            state: state_name,
            problem,
            peers: config.peers.clone(),
            self_addr: config.self_addr,
            members,
            probers_per_target: config.probers_per_target,
            epoch: *epoch,
            next_rotation: assign::epoch_start(epoch.saturating_add(1), config.rotate),
            assigned: g.assigned,
            shared,
            all: g.candidates.len() - shared,
        })
    }

    /// `Err` while the fleet waits for its first membership (the agent is not ready).
    pub fn readiness(&self) -> Result<(), String> {
        match &lock(&self.inner).rule {
            Rule::Fleet {
                state: State::Starting { why },
                ..
            } => Err(format!("waiting for the fleet membership: {why}")),
            _ => Ok(()),
        }
    }

    /// The fleet gauges follow the rule and the share.
    fn publish(&self, g: &Inner) {
        let Some(m) = self.edges.metrics() else {
            return;
        };
        match &g.rule {
            Rule::Off => m.set_fleet(None),
            Rule::Fleet { state, .. } => {
                let members = match state {
                    State::Sharing(members) => members.len(),
                    _ => 0,
                };
                m.set_fleet(Some((members, g.assigned)));
            }
        }
    }
}

/// The fleet's facts about `t` under `rule`.
fn describe(rule: &Rule, t: &Target) -> Option<EdgeFleet> {
    let Rule::Fleet {
        config,
        state,
        epoch,
    } = rule
    else {
        return None;
    };
    let share = decide(rule, t)?;
    let probers = match (share, state) {
        (Share::Assigned, State::Sharing(members)) => Some(assign::holders(
            item(t),
            members,
            config.probers_per_target,
            *epoch,
        )),
        _ => None,
    };
    Some(EdgeFleet {
        share,
        probers,
        epoch: *epoch,
    })
}

/// Whether a candidate counts in `mtls_probe_fleet_assigned`.
fn counts(c: &Candidate) -> bool {
    c.held && c.target.fleet == FleetScope::Shared
}

impl EdgeSink for Gate {
    fn upsert(&self, target: Arc<Target>, first_round: bool) {
        let mut g = lock(&self.inner);
        let name = target.name.clone();
        let share = decide(&g.rule, &target);
        let before = g.candidates.get(&name);
        let held_before = before.is_some_and(|c| c.held);
        let counted_before = before.is_some_and(counts);
        // An unchanged target keeps the copy the gate and its edge already share: a
        // reload then holds one copy of each target, not the edge's old one beside the
        // gate's new one. (A reload's loader usually hands that same copy back
        // already: `config::load_reusing`.)
        let target = match before {
            Some(c) if Arc::ptr_eq(&c.target, &target) || *c.target == *target => c.target.clone(),
            _ => target,
        };
        let holds = share.is_some();
        if holds {
            // New or changed in place (the edge set keeps an unchanged one as it is).
            // The edge set shares this copy of the target.
            self.edges
                .upsert(target.clone(), first_round && !held_before);
        } else if held_before {
            self.edges.remove(&name);
        }
        let waiting = matches!(
            g.rule,
            Rule::Fleet {
                state: State::Starting { .. },
                ..
            }
        );
        let c = Candidate {
            target,
            first_round: first_round && !holds && waiting,
            held: holds,
        };
        g.assigned = g.assigned - usize::from(counted_before) + usize::from(counts(&c));
        g.candidates.insert(name, c);
        self.publish(&g);
    }

    fn remove(&self, name: &str) {
        let mut g = lock(&self.inner);
        if let Some(c) = g.candidates.remove(name) {
            if c.held {
                self.edges.remove(name);
            }
            g.assigned -= usize::from(counts(&c));
        }
        self.publish(&g);
    }
}

#[cfg(test)]
mod tests;
