//! What the watch remembers per edge: counts, failures by reason with their first and
//! last occurrence, and the certificates the peer presented. Bounded: reasons are a
//! closed set and at most [`MAX_CERTS`] distinct certificates are kept per edge.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::classify::Reason;
use crate::config::{Expect, Mode};
use crate::report::ProbeReport;

/// Distinct certificates remembered per edge (rotations during a watch are few).
pub const MAX_CERTS: usize = 16;

/// Everything the watch knows about one edge.
#[derive(Clone, Debug, Serialize)]
pub struct EdgeStats {
    /// The target name.
    pub target: String,
    /// The address last probed.
    pub address: String,
    /// Probe mode.
    pub mode: Mode,
    /// Expected outcome.
    pub expect: Expect,
    /// Probes completed.
    pub probes: u64,
    /// Of which passed.
    pub passes: u64,
    /// Failures by reason.
    pub failures: Vec<FailureStats>,
    /// Certificates presented, in order of first appearance.
    pub certificates: Vec<CertSeen>,
    /// The last probe's outcome: `None` passing, else the reason.
    #[serde(skip)]
    pub last: Option<Option<Reason>>,
}

/// One failure reason of an edge.
#[derive(Clone, Debug, Serialize)]
pub struct FailureStats {
    /// Stage.
    pub stage: &'static str,
    /// Reason.
    pub reason: Reason,
    /// How many probes failed this way.
    pub count: u64,
    /// When it first happened (RFC 3339).
    pub first_at: String,
    /// Its detail then.
    pub first_detail: String,
    /// When it last happened.
    pub last_at: String,
    /// Its detail then.
    pub last_detail: String,
}

/// A certificate the peer presented.
#[derive(Clone, Debug, Serialize)]
pub struct CertSeen {
    /// Serial, hex.
    pub serial: String,
    /// SPIFFE ID, if any.
    pub spiffe_id: Option<String>,
    /// Issuer.
    pub issuer: String,
    /// Expiry (RFC 3339).
    pub not_after: String,
    /// SHA-256 of the root.
    pub root_sha256: Option<String>,
    /// First probe that saw it.
    pub first_seen: String,
    /// Last probe that saw it.
    pub last_seen: String,
}

impl EdgeStats {
    /// Empty stats for the edge of `r`.
    pub fn new(r: &ProbeReport) -> Self {
        Self {
            target: r.target.clone(),
            address: r.address.clone(),
            mode: r.mode,
            expect: r.expect,
            probes: 0,
            passes: 0,
            failures: Vec::new(),
            certificates: Vec::new(),
            last: None,
        }
    }

    /// Adds one probe.
    pub fn record(&mut self, r: &ProbeReport) {
        self.probes += 1;
        r.address.clone_into(&mut self.address);
        if r.ok {
            self.passes += 1;
        }
        if let Some(reason) = r.reason {
            let detail = r.detail.clone().unwrap_or_default();
            match self.failures.iter_mut().find(|f| f.reason == reason) {
                Some(f) => {
                    f.count += 1;
                    f.last_at.clone_from(&r.at);
                    f.last_detail = detail;
                }
                None => self.failures.push(FailureStats {
                    stage: reason.stage().as_str(),
                    reason,
                    count: 1,
                    first_at: r.at.clone(),
                    first_detail: detail.clone(),
                    last_at: r.at.clone(),
                    last_detail: detail,
                }),
            }
        }
        if let Some(p) = &r.peer {
            let room = self.certificates.len() < MAX_CERTS;
            match self.certificates.iter_mut().find(|c| c.serial == p.serial) {
                Some(c) => c.last_seen.clone_from(&r.at),
                None if room => self.certificates.push(CertSeen {
                    serial: p.serial.clone(),
                    spiffe_id: p.spiffe_id.clone(),
                    issuer: p.issuer.clone(),
                    not_after: p.not_after.clone(),
                    root_sha256: p.root_sha256.clone(),
                    first_seen: r.at.clone(),
                    last_seen: r.at.clone(),
                }),
                None => {}
            }
        }
        self.last = Some(r.reason);
    }

    /// Passed / completed, or `None` before the first probe.
    pub fn ratio(&self) -> Option<f64> {
        (self.probes > 0).then(|| self.passes as f64 / self.probes as f64)
    }

    /// How often a STRICT check (`plaintext_accepted`, `unexpected_success`) fired.
    pub fn strict_violations(&self) -> u64 {
        self.failures
            .iter()
            .filter(|f| {
                matches!(
                    f.reason,
                    Reason::PlaintextAccepted | Reason::UnexpectedSuccess
                )
            })
            .map(|f| f.count)
            .sum()
    }

    /// Why this edge fails the gate, if it does.
    pub fn gate_failure(&self, min_ratio: f64) -> Option<String> {
        let strict = self.strict_violations();
        if strict > 0 {
            let f = self.failures.iter().find(|f| {
                matches!(
                    f.reason,
                    Reason::PlaintextAccepted | Reason::UnexpectedSuccess
                )
            });
            let reason = f.map_or("strict check", |f| f.reason.as_str());
            return Some(format!(
                "{}: {reason} fired {strict} time(s): STRICT is not in force",
                self.target
            ));
        }
        match self.ratio() {
            None => Some(format!("{}: no probe completed", self.target)),
            Some(r) if r < min_ratio => Some(format!(
                "{}: success ratio {} is under {min_ratio} ({} of {} probes passed{})",
                self.target,
                fmt_ratio(r),
                self.passes,
                self.probes,
                self.failures
                    .iter()
                    .max_by_key(|f| f.count)
                    .map(|f| format!("; mostly {}/{}", f.stage, f.reason))
                    .unwrap_or_default()
            )),
            Some(_) => None,
        }
    }
}

/// A ratio with enough digits to compare against 0.999, rounded down so that 0.99995
/// never reads as a clean 1.0000.
pub fn fmt_ratio(r: f64) -> String {
    format!("{:.4}", (r * 10_000.0).floor() / 10_000.0)
}

/// Stats of all edges, by name.
pub type AllStats = BTreeMap<String, EdgeStats>;

#[cfg(test)]
mod tests {
    use super::fmt_ratio;

    #[test]
    fn ratios_round_down() {
        assert_eq!(fmt_ratio(1.0), "1.0000");
        assert_eq!(fmt_ratio(0.99995), "0.9999");
        assert_eq!(fmt_ratio(0.0), "0.0000");
        assert_eq!(fmt_ratio(2.0 / 3.0), "0.6666");
    }
}
