//! The watch's final report: a table on stdout, JSON for machines, Markdown for a
//! change ticket. All three render the same [`WatchReport`].

use std::fmt::Write as _;

use serde::Serialize;

use super::stats::{EdgeStats, fmt_ratio};

/// The outcome of a watch.
#[derive(Debug, Serialize)]
pub struct WatchReport {
    /// `pass` or `fail`.
    pub verdict: &'static str,
    /// Why it failed (one line per edge at fault); empty on pass.
    pub why: Vec<String>,
    /// The agent's source name.
    pub source: String,
    /// The config file.
    pub config: String,
    /// The gate.
    pub min_success_ratio: f64,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339.
    pub ended: String,
    /// Seconds planned.
    pub planned_seconds: f64,
    /// Seconds watched.
    pub watched_seconds: f64,
    /// Ended early by Ctrl-C.
    pub cut_short: bool,
    /// Per edge, in name order.
    pub edges: Vec<EdgeReport>,
    /// `[agent] runbook_base_url`, for the runbook links of the Markdown and JUnit
    /// reports.
    #[serde(skip)]
    pub runbook_base_url: Option<String>,
}

/// One edge in the report.
#[derive(Debug, Serialize)]
pub struct EdgeReport {
    /// Counts, failures and certificates.
    #[serde(flatten)]
    pub stats: EdgeStats,
    /// Passed / completed.
    pub ratio: Option<f64>,
    /// Whether the edge met the gate.
    pub held: bool,
}

impl WatchReport {
    /// Whether the gate passed.
    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }

    /// The runbook link for `reason`: under `runbook_base_url`, else the repository's
    /// file.
    pub fn runbook_url(&self, reason: crate::classify::Reason) -> String {
        crate::report::TextOptions {
            unverified: false,
            runbook_base_url: self.runbook_base_url.clone(),
        }
        .runbook_url(reason)
    }

    /// The table printed at the end.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let width = self
            .edges
            .iter()
            .map(|e| e.stats.target.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "{}  {:>8}  {:>6}  {:>6}  FAILURES",
            pad("EDGE", width),
            "RATIO",
            "PROBES",
            "PASSED"
        );
        for e in &self.edges {
            let failures = e
                .stats
                .failures
                .iter()
                .map(|f| format!("{}/{}×{}", f.stage, f.reason, f.count))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "{}  {:>8}  {:>6}  {:>6}  {}{}",
                pad(&e.stats.target, width),
                e.ratio.map(fmt_ratio).unwrap_or_else(|| "-".into()),
                e.stats.probes,
                e.stats.passes,
                if e.held { "" } else { "✗ " },
                failures
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{} — {} edges over {}{}; gate: every edge ≥ {} and no STRICT check fired",
            self.verdict.to_uppercase(),
            self.edges.len(),
            human_secs(self.watched_seconds),
            if self.cut_short { " (cut short)" } else { "" },
            self.min_success_ratio
        );
        for w in &self.why {
            let _ = writeln!(out, "  ✗ {w}");
        }
        out
    }

    /// The Markdown report for a change ticket.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# mTLS migration watch: {}",
            self.verdict.to_uppercase()
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "- Source: `{}`, config `{}`",
            md(&self.source),
            md(&self.config)
        );
        let _ = writeln!(
            out,
            "- Watched {} → {} ({} of {} planned{})",
            self.started,
            self.ended,
            human_secs(self.watched_seconds),
            human_secs(self.planned_seconds),
            if self.cut_short {
                ", **cut short**"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "- Gate: every edge ≥ {} success and no STRICT check (`plaintext_accepted`, `unexpected_success`) fired",
            self.min_success_ratio
        );
        if !self.why.is_empty() {
            let _ = writeln!(out, "\n## Why it failed\n");
            for w in &self.why {
                let _ = writeln!(out, "- {}", md(w));
            }
        }
        let _ = writeln!(out, "\n## Edges\n");
        let _ = writeln!(
            out,
            "| Edge | Mode | Expect | Probes | Passed | Ratio | Held | Failures |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|:---:|---|");
        for e in &self.edges {
            let failures = e
                .stats
                .failures
                .iter()
                .map(|f| format!("`{}/{}` ×{}", f.stage, f.reason, f.count))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
                md(&e.stats.target),
                e.stats.mode.as_str(),
                e.stats.expect.as_str(),
                e.stats.probes,
                e.stats.passes,
                e.ratio.map(fmt_ratio).unwrap_or_else(|| "-".into()),
                if e.held { "✓" } else { "✗" },
                failures
            );
        }
        let failing: Vec<_> = self
            .edges
            .iter()
            .filter(|e| !e.stats.failures.is_empty())
            .collect();
        if !failing.is_empty() {
            let _ = writeln!(out, "\n## Failures\n");
            for e in failing {
                for f in &e.stats.failures {
                    let _ = writeln!(
                        out,
                        "### `{}` — `{}/{}` ×{}\n",
                        md(&e.stats.target),
                        f.stage,
                        f.reason,
                        f.count
                    );
                    let _ = writeln!(out, "- first {}: {}", f.first_at, md(&f.first_detail));
                    let _ = writeln!(out, "- last {}: {}", f.last_at, md(&f.last_detail));
                    let _ = writeln!(out, "- runbook: <{}>\n", self.runbook_url(f.reason));
                }
            }
        }
        let _ = writeln!(out, "\n## Certificates seen\n");
        let _ = writeln!(
            out,
            "| Edge | SPIFFE ID | Serial | Not after | First seen | Last seen |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for e in &self.edges {
            for c in &e.stats.certificates {
                let _ = writeln!(
                    out,
                    "| `{}` | `{}` | `{}` | {} | {} | {} |",
                    md(&e.stats.target),
                    md(c.spiffe_id.as_deref().unwrap_or("-")),
                    c.serial,
                    c.not_after,
                    c.first_seen,
                    c.last_seen
                );
            }
        }
        out
    }
}

fn pad(s: &str, width: usize) -> String {
    format!("{s:<width$}")
}

/// Keeps peer-controlled text from breaking the Markdown table or injecting markup.
fn md(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '|' => '¦',
            '`' => '\'',
            '<' => '‹',
            '>' => '›',
            c if c.is_control() => ' ',
            c => c,
        })
        .take(600)
        .collect()
}

fn human_secs(s: f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(s.round() as u64)).to_string()
}
