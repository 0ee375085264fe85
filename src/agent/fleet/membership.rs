//! What the fleet's membership is, given the lookups of the peers name so far: a small
//! state machine with the time passed in, so every rule is tested without DNS or sleep.
//!
//! - A successful lookup is the membership.
//! - A failed lookup keeps the last membership for [`GRACE_REFRESHES`] × `refresh`;
//!   after that, or when no lookup ever succeeded, the agent fails open.
//! - This agent's own address missing from the membership: fail open too (a wrong
//!   `self`, or a pod the Service does not list).
//! - At start, before the agent has ever shared, both of the last two wait up to one
//!   `refresh` first (the caller polls every [`STARTUP_POLL`] meanwhile): a new pod's
//!   address takes a moment to appear in the Service's DNS, and failing open for that
//!   moment would make every starting agent probe the whole matrix (a burst of N × M
//!   probes and short-lived series during a rollout).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::assign::Members;

/// How many refresh periods the last membership outlives a failing lookup (SPEC §12).
pub const GRACE_REFRESHES: u32 = 3;
/// How often the peers name is looked up while starting.
pub const STARTUP_POLL: Duration = Duration::from_secs(1);

/// What the agent does with the matrix.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum State {
    /// Starting: waiting (at most one refresh) for a membership that lists this agent.
    Starting {
        /// What it is waiting for.
        why: String,
    },
    /// Sharing the matrix among these members (this agent among them).
    Sharing(Arc<Members>),
    /// Probing every target.
    FailOpen {
        /// Why.
        why: String,
    },
}

/// The lookups so far.
#[derive(Debug)]
pub struct Tracker {
    peers: String,
    me: IpAddr,
    since: Instant,
    last: Option<(Instant, Arc<Members>)>,
    problem: Option<String>,
    shared: bool,
}

impl Tracker {
    /// A tracker for `peers` and this agent's address `me`, started at `now`.
    pub fn new(peers: &str, me: IpAddr, now: Instant) -> Self {
        Self {
            peers: peers.to_owned(),
            me,
            since: now,
            last: None,
            problem: None,
            shared: false,
        }
    }

    /// Whether this tracker follows `peers` for `me` (else the config changed: start a
    /// new one).
    pub fn follows(&self, peers: &str, me: IpAddr) -> bool {
        self.peers == peers && self.me == me
    }

    /// Whether the agent is still in its start-up wait at `now` (it polls faster then).
    pub fn waiting(&self, now: Instant, refresh: Duration) -> bool {
        !self.shared && now.saturating_duration_since(self.since) < refresh
    }

    /// Whether the agent has shared the matrix under this tracker.
    pub fn has_shared(&self) -> bool {
        self.shared
    }

    /// No start-up wait (the agent has shared before, under another `peers` or `self`).
    pub fn skip_startup_wait(&mut self) {
        self.shared = true;
    }

    /// Takes the outcome of one lookup made at `now`.
    pub fn observe(&mut self, now: Instant, lookup: Result<Vec<IpAddr>, String>) {
        match lookup {
            Ok(addrs) => {
                let members = Members::new(addrs);
                let same = self.last.as_ref().is_some_and(|(_, m)| **m == members);
                let members = match (&self.last, same) {
                    // Keep the shared instance: an unchanged membership compares equal
                    // by pointer downstream too.
                    (Some((_, m)), true) => m.clone(),
                    _ => Arc::new(members),
                };
                self.last = Some((now, members));
                self.problem = None;
            }
            Err(problem) => self.problem = Some(problem),
        }
    }

    /// The state at `now`.
    pub fn state(&mut self, now: Instant, refresh: Duration) -> State {
        let waiting = self.waiting(now, refresh);
        let grace = refresh * GRACE_REFRESHES;
        let state = match (&self.last, &self.problem) {
            (Some((at, members)), problem)
                if problem.is_none() || now.saturating_duration_since(*at) < grace =>
            {
                if members.contains(self.me) {
                    State::Sharing(members.clone())
                } else {
                    let why = format!(
                        "this agent's address {} (fleet.self) is not among the {} addresses of {}",
                        self.me,
                        members.len(),
                        self.peers
                    );
                    if waiting {
                        State::Starting { why }
                    } else {
                        State::FailOpen { why }
                    }
                }
            }
            (Some((at, _)), problem) => State::FailOpen {
                why: format!(
                    "{} has not resolved for {} (the last membership is kept for {} × \
                     refresh): {}",
                    self.peers,
                    humantime::format_duration(round_secs(now.saturating_duration_since(*at))),
                    GRACE_REFRESHES,
                    problem.as_deref().unwrap_or("")
                ),
            },
            (None, problem) => {
                let why = format!(
                    "{} never resolved: {}",
                    self.peers,
                    problem.as_deref().unwrap_or("no lookup yet")
                );
                if waiting {
                    State::Starting { why }
                } else {
                    State::FailOpen { why }
                }
            }
        };
        if matches!(state, State::Sharing(_)) {
            self.shared = true;
        }
        state
    }
}

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const REFRESH: Duration = Duration::from_secs(30);

    fn ips(list: &[&str]) -> Result<Vec<IpAddr>, String> {
        Ok(list.iter().map(|s| ip(s)).collect())
    }

    fn kind(s: &State) -> &'static str {
        match s {
            State::Starting { .. } => "starting",
            State::Sharing(_) => "sharing",
            State::FailOpen { .. } => "fail_open",
        }
    }

    #[test]
    fn shares_keeps_the_last_membership_for_three_refreshes_then_fails_open() {
        let t0 = Instant::now();
        let mut t = Tracker::new("agents", ip("10.0.0.1"), t0);
        assert_eq!(kind(&t.state(t0, REFRESH)), "starting");
        t.observe(t0, ips(&["10.0.0.1", "10.0.0.2"]));
        let State::Sharing(m) = t.state(t0, REFRESH) else {
            panic!()
        };
        assert_eq!(m.len(), 2);
        // DNS fails: the membership is kept for 3 × refresh after the last success.
        let at = |s: u64| t0 + Duration::from_secs(s);
        t.observe(at(30), Err("SERVFAIL".into()));
        assert_eq!(t.state(at(89), REFRESH), State::Sharing(m.clone()));
        let State::FailOpen { why } = t.state(at(90), REFRESH) else {
            panic!()
        };
        assert!(why.contains("agents has not resolved for 1m 30s"), "{why}");
        assert!(why.ends_with("SERVFAIL"), "{why}");
        // And back to sharing with the next good answer.
        t.observe(at(120), ips(&["10.0.0.2", "10.0.0.1"]));
        assert_eq!(t.state(at(120), REFRESH), State::Sharing(m));
    }

    #[test]
    fn self_missing_or_never_resolved_fails_open_after_the_startup_wait() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut t = Tracker::new("agents", ip("10.0.0.9"), t0);
        t.observe(t0, ips(&["10.0.0.1"]));
        let State::Starting { why } = t.state(at(1), REFRESH) else {
            panic!()
        };
        assert!(why.contains("10.0.0.9 (fleet.self) is not among the 1 addresses"));
        assert_eq!(kind(&t.state(at(30), REFRESH)), "fail_open");

        let mut t = Tracker::new("agents", ip("10.0.0.9"), t0);
        t.observe(t0, Err("NXDOMAIN".into()));
        assert_eq!(kind(&t.state(at(29), REFRESH)), "starting");
        let State::FailOpen { why } = t.state(at(30), REFRESH) else {
            panic!()
        };
        assert_eq!(why, "agents never resolved: NXDOMAIN");

        // Once it has shared, losing itself from the list fails open at once (no wait).
        let mut t = Tracker::new("agents", ip("10.0.0.1"), t0);
        t.observe(t0, ips(&["10.0.0.1"]));
        assert_eq!(kind(&t.state(t0, REFRESH)), "sharing");
        t.observe(at(1), ips(&["10.0.0.2"]));
        assert_eq!(kind(&t.state(at(1), REFRESH)), "fail_open");
    }

    #[test]
    fn an_unchanged_membership_is_the_same_instance() {
        let t0 = Instant::now();
        let mut t = Tracker::new("agents", ip("10.0.0.1"), t0);
        t.observe(t0, ips(&["10.0.0.1", "10.0.0.2"]));
        let State::Sharing(a) = t.state(t0, REFRESH) else {
            panic!()
        };
        t.observe(t0, ips(&["10.0.0.2", "10.0.0.1", "10.0.0.1"]));
        let State::Sharing(b) = t.state(t0, REFRESH) else {
            panic!()
        };
        assert!(Arc::ptr_eq(&a, &b));
        assert!(t.follows("agents", ip("10.0.0.1")));
        assert!(!t.follows("agents", ip("10.0.0.2")));
    }
}
