//! `[fleet]` (SPEC §12) and the per-target `fleet` key.

use super::*;

/// `[fleet].probers_per_target` when unset: the shipped overlays' k.
pub(super) const DEFAULT_PROBERS_PER_TARGET: usize = 3;
/// `[fleet].rotate` when unset.
pub(super) const DEFAULT_ROTATE: Duration = Duration::from_secs(60 * 60);
/// `[fleet].refresh` when unset (as `[[discover]].refresh`).
pub(super) const DEFAULT_FLEET_REFRESH: Duration = Duration::from_secs(30);
/// The largest k: more probers per target than agents in any cluster one would run.
const MAX_PROBERS_PER_TARGET: usize = 10_000;

impl Cx<'_> {
    pub(super) fn fleet(
        &self,
        raw: RawFleet,
        agent: &AgentConfig,
    ) -> Result<FleetConfig, ConfigError> {
        let peers = self.required(
            "fleet.peers",
            raw.peers,
            "the DNS name that lists every agent, e.g. \
             \"mtls-prober.monitoring.svc.cluster.local\" (a headless Service)",
        )?;
        if peers.parse::<IpAddr>().is_ok() {
            return Err(self.err(
                "fleet.peers",
                format!(
                    "got the IP address {peers:?}; expected a DNS name whose addresses are the \
                     agents (a headless Service)"
                ),
            ));
        }
        self.at(
            "fleet.peers",
            check_dns_name(&peers).map_err(|p| format!("got {peers:?}: {p}")),
        )?;
        let self_addr = match raw.self_addr {
            Some(s) => self.at("fleet.self", parse_self_addr(&s))?,
            None => match self.env.get("POD_IP").filter(|v| !v.trim().is_empty()) {
                Some(ip) => self.at(
                    "fleet.self",
                    parse_self_addr(ip).map_err(|p| format!("from $POD_IP: {p}")),
                )?,
                None => {
                    return Err(self.err(
                        "fleet.self",
                        "not set and $POD_IP is unset; expected this agent's IP address as \
                         the peers name lists it (in Kubernetes: POD_IP from the downward API, \
                         status.podIP)",
                    ));
                }
            },
        };
        let probers_per_target = match raw.probers_per_target {
            Some(s) => self.at(
                "fleet.probers_per_target",
                parse_int_in(&s, 1, MAX_PROBERS_PER_TARGET, "a number of agents"),
            )?,
            None => DEFAULT_PROBERS_PER_TARGET,
        };
        let rotate = match raw.rotate {
            Some(s) => self.at("fleet.rotate", parse_rotate(&s, agent.interval))?,
            None => DEFAULT_ROTATE,
        };
        let refresh = self.duration_or("fleet.refresh", raw.refresh, DEFAULT_FLEET_REFRESH)?;
        Ok(FleetConfig {
            peers,
            self_addr,
            probers_per_target,
            rotate,
            refresh,
        })
    }

    /// A `[[target]]`'s or `[[discover]]`'s `fleet`: `shared` (default) or `all`.
    pub(super) fn fleet_scope(
        &self,
        key: &str,
        v: Option<&str>,
    ) -> Result<FleetScope, ConfigError> {
        match v.map(str::trim) {
            None | Some("shared") => Ok(FleetScope::Shared),
            Some("all") => Ok(FleetScope::All),
            Some(other) => Err(self.err(
                key,
                format!(
                    "got {other:?}; expected \"shared\" (probed by probers_per_target agents) \
                     or \"all\" (probed by every agent)"
                ),
            )),
        }
    }
}

/// An IP address as DNS lists it (no port, no brackets).
fn parse_self_addr(s: &str) -> Result<IpAddr, String> {
    s.trim().parse().map_err(|_| {
        format!(
            "got {s:?}; expected this agent's IP address as the peers name lists it, e.g. \
             \"10.0.3.7\" or \"fd00::7\""
        )
    })
}

/// `"0s"` (never), or a period of at least the agent's interval: an edge must be probed
/// at least once before it moves on.
fn parse_rotate(s: &str, interval: Duration) -> Result<Duration, String> {
    let t = s.trim();
    if humantime::parse_duration(t).is_ok_and(|d| d.is_zero()) {
        return Ok(Duration::ZERO);
    }
    let d = parse_positive_duration(s).map_err(|p| format!("{p}, or \"0s\" for never"))?;
    if d < interval {
        return Err(format!(
            "got {s:?}, shorter than agent.interval {}; expected \"0s\" (never) or a period \
             of at least the interval, so that every edge is probed before it moves",
            fmt_duration(interval)
        ));
    }
    Ok(d)
}
