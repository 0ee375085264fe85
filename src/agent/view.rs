//! Read-only views of the agent's state, for the status page and `/api/v1/edges`.
//! Renderers take these and never touch the agent's locks or metrics.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::Serialize;

use crate::config::Target;
use crate::report::ProbeReport;

/// One edge as the status page and the API see it.
#[derive(Clone, Debug)]
pub struct EdgeView {
    /// The edge's target (name, address, mode, expect, expectation…).
    pub target: std::sync::Arc<Target>,
    /// The last completed probe, if any. Shared with the edge's state: a snapshot of
    /// 10,000 edges copies pointers, not reports.
    pub last: Option<std::sync::Arc<ProbeReport>>,
    /// Success ratio per configured window, in window order: (label like "5m", ratio or
    /// `None` when no probe completed in that window).
    pub success_ratio: Vec<(std::sync::Arc<str>, Option<f64>)>,
    /// Probes completed since the edge was created.
    pub probes: u64,
    /// Of which passed.
    pub passes: u64,
    /// When the edge last changed state (pass↔fail or reason), if ever.
    pub since: Option<SystemTime>,
    /// Why this agent probes it and who else does (`None` without `[fleet]`).
    pub fleet: Option<EdgeFleet>,
}

/// The agent-wide facts the status page shows above the edge table.
#[derive(Clone, Debug)]
pub struct AgentView {
    /// The `source` label.
    pub source: String,
    /// Crate version.
    pub version: &'static str,
    /// When the agent started.
    pub started: SystemTime,
    /// `Ok` when ready, else why not (the `/readyz` body).
    pub ready: Result<(), String>,
    /// Our SPIFFE ID, if the identity is loaded and has one.
    pub identity_spiffe_id: Option<String>,
    /// Our certificate's `not_after`, if loaded.
    pub identity_not_after: Option<SystemTime>,
    /// Why the identity (or its last reload) failed, if it did.
    pub identity_problem: Option<String>,
    /// The config file and whether its last reload failed (and why).
    pub config_file: String,
    /// The last config reload error, if the running config is older than the file.
    pub config_problem: Option<String>,
    /// Our certificate's `not_before`, if loaded (its lifetime sets the expiry warning).
    pub identity_not_before: Option<SystemTime>,
    /// `[agent] runbook_base_url`: where runbook links point; `None` = this agent's
    /// own `docs/runbook`.
    pub runbook_base_url: Option<String>,
    /// `[agent] cert_expiry_warn_floor`.
    pub cert_expiry_warn_floor: std::time::Duration,
    /// Which share of the matrix this agent holds (`None` without `[fleet]`).
    pub fleet: Option<FleetView>,
}

/// Why this agent probes an edge (the API's `fleet.share`).
#[derive(Clone, Copy, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Share {
    /// It is among the `k` agents the assignment picked.
    Assigned,
    /// The target has `fleet = "all"`: every agent probes it.
    All,
    /// The fleet fails open: every agent probes everything.
    FailOpen,
}

/// The fleet's facts about one edge, for `/api/v1/edges` and the status page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EdgeFleet {
    /// Why this agent probes it.
    pub share: Share,
    /// The agents that probe it now, computed (not asked): the `k` of the assignment,
    /// this agent among them. `None` when every agent does (`all`, failing open).
    pub probers: Option<Vec<IpAddr>>,
    /// The epoch of this assignment (`floor(unix time / rotate)`, 0 without rotation).
    pub epoch: u64,
}

/// The agent-wide fleet facts (status page header, `AgentView`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleetView {
    /// `starting`, `sharing` or `fail_open`.
    pub state: &'static str,
    /// Why it is starting or failing open.
    pub problem: Option<String>,
    /// The peers name.
    pub peers: String,
    /// This agent's address.
    #[serde(rename = "self")]
    pub self_addr: IpAddr,
    /// Agents seen (0 unless sharing: `mtls_probe_fleet_members`).
    pub members: usize,
    /// k.
    pub probers_per_target: usize,
    /// The current epoch.
    pub epoch: u64,
    /// When the assignment moves next (`None` without rotation).
    pub next_rotation: Option<SystemTime>,
    /// Shared edges this agent probes (`mtls_probe_fleet_assigned`).
    pub assigned: usize,
    /// Shared edges in the whole matrix.
    pub shared: usize,
    /// Edges every agent probes (`fleet = "all"`).
    pub all: usize,
}

/// `/api/v1/edges`: the SPEC §8 object plus `success_ratio` per window. An edge not
/// probed yet has `ok`, `at` and the layer fields `null`.
#[derive(Debug, Serialize)]
pub struct ApiEdge<'a> {
    /// The last report's fields (or the target's, before the first probe).
    #[serde(flatten)]
    pub report: ApiReport<'a>,
    /// `{"5m": 0.99, "30m": 1.0}`; `null` for a window without probes.
    pub success_ratio: serde_json::Map<String, serde_json::Value>,
    /// With `[fleet]`: `{"share": "assigned"|"all"|"fail_open", "probers": [...]|null, "epoch": n}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<&'a EdgeFleet>,
}

/// Either a report or a placeholder for an edge not probed yet.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ApiReport<'a> {
    /// The last probe.
    Probed(&'a ProbeReport),
    /// Not probed yet.
    Pending(PendingEdge<'a>),
}

/// The §8 shape for an edge that has not completed a probe yet.
#[derive(Debug, Serialize)]
pub struct PendingEdge<'a> {
    /// Source label.
    pub source: &'a str,
    /// Target name.
    pub target: &'a str,
    /// Configured `host:port`.
    pub address: String,
    /// Mode.
    pub mode: crate::config::Mode,
    /// Expect.
    pub expect: crate::config::Expect,
    /// Always `null`.
    pub ok: Option<bool>,
    /// Always `null`.
    pub stage: Option<()>,
    /// Always `null`.
    pub reason: Option<()>,
    /// "not probed yet".
    pub detail: &'static str,
    /// Always `null`.
    pub hint: Option<()>,
    /// Always `null`.
    pub timings_ms: Option<()>,
    /// Always `null`.
    pub tls: Option<()>,
    /// Always `null`.
    pub peer: Option<()>,
    /// Always `null`.
    pub http: Option<()>,
    /// Always `null`.
    pub far_side: Option<()>,
    /// Always `null`.
    pub at: Option<()>,
}

impl EdgeView {
    /// The `/api/v1/edges` object for this edge.
    pub fn api<'a>(&'a self, source: &'a str) -> ApiEdge<'a> {
        let report = match &self.last {
            Some(r) => ApiReport::Probed(r.as_ref()),
            None => ApiReport::Pending(PendingEdge {
                source,
                target: &self.target.name,
                address: self.target.address.to_string(),
                mode: self.target.mode,
                expect: self.target.expect,
                ok: None,
                stage: None,
                reason: None,
                detail: "not probed yet",
                hint: None,
                timings_ms: None,
                tls: None,
                peer: None,
                http: None,
                far_side: None,
                at: None,
            }),
        };
        let success_ratio = self
            .success_ratio
            .iter()
            .map(|(w, r)| {
                let v = r
                    .and_then(serde_json::Number::from_f64)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number);
                (w.to_string(), v)
            })
            .collect();
        ApiEdge {
            report,
            success_ratio,
            fleet: self.fleet.as_ref(),
        }
    }
}
