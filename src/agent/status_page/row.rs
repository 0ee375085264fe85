//! One edge of the table: its state, its place in the order and its `<tr>`.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::time::SystemTime;

use super::html::{Esc, Expiry, Percent, Relative, Span, esc};
use crate::agent::view::EdgeView;
use crate::classify::Reason;
use crate::config::{Expect, Origin, Target};
use crate::report::ProbeReport;
use crate::tls::peer::PeerInfo;

/// Display bounds, in bytes. Config-derived text is bounded too: a discovered name or a
/// reload error is not something to trust to be short.
const MAX_NAME: usize = 256;
const MAX_ADDRESS: usize = 300;
/// A hostile peer controls `detail` (alert text, `server` header, body snippets).
pub(super) const MAX_DETAIL: usize = 2048;
const MAX_ID: usize = 512;
const MAX_SHORT: usize = 128;

/// Column headings, in the order [`write_row`] writes the cells.
pub(super) const HEADINGS: [&str; 14] = [
    "State",
    "Target",
    "Address",
    "Mode → expect",
    "Stage",
    "Reason",
    "Detail",
    "Peer SPIFFE ID",
    "Peer cert expiry",
    "TLS / HTTP",
    "Success ratio",
    "Probes / passes",
    "Last probe",
    "Hint",
];

/// What an edge's last probe says, from worst to best.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) enum State {
    /// `plaintext_accepted` or `unexpected_success`: STRICT is not in force.
    Violation,
    /// Any other failure.
    Fail,
    /// No probe completed yet.
    Pending,
    /// An `expect = "reject"` probe was refused, as it should be.
    Refused,
    /// Passed.
    Pass,
}

impl State {
    /// The state of an edge from its last report.
    pub(super) fn of(edge: &EdgeView) -> Self {
        match &edge.last {
            None => Self::Pending,
            Some(r) if r.ok && r.expect == Expect::Reject => Self::Refused,
            Some(r) if r.ok => Self::Pass,
            Some(r) => match r.reason {
                Some(Reason::PlaintextAccepted | Reason::UnexpectedSuccess) => Self::Violation,
                _ => Self::Fail,
            },
        }
    }

    /// Sort group: violations, failures, pending, passing (refusals are passes).
    const fn rank(self) -> u8 {
        match self {
            Self::Violation => 0,
            Self::Fail => 1,
            Self::Pending => 2,
            Self::Refused | Self::Pass => 3,
        }
    }

    /// The row's CSS class.
    pub(super) const fn class(self) -> &'static str {
        match self {
            Self::Violation => "violation",
            Self::Fail => "fail",
            Self::Pending => "pending",
            Self::Refused => "refused",
            Self::Pass => "pass",
        }
    }

    /// The state cell's text: the colour must not be the only carrier of meaning
    /// (text browsers, colour blindness).
    const fn label(self) -> &'static str {
        match self {
            Self::Violation => "FAIL: NOT STRICT",
            Self::Fail => "FAIL",
            Self::Pending => "PENDING",
            Self::Refused => "PASS (refused)",
            Self::Pass => "PASS",
        }
    }

    const fn failed(self) -> bool {
        matches!(self, Self::Violation | Self::Fail)
    }
}

/// A row to draw: which edge, and whether it is indented under its parent.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) struct Placed {
    /// Index into the edges.
    pub(super) index: usize,
    /// A `verify_strict` companion drawn under its target.
    pub(super) child: bool,
}

/// The table order. Each `verify_strict` companion is drawn right under its target, so
/// target and companion form a group that sorts by its *worst* member: a passing target
/// whose companion accepts plaintext lands at the very top, with the violation
/// indented below it. Groups sort by rank, then name; companions likewise within their
/// group. A companion whose target is not in `edges` stands alone. O(n log n).
pub(super) fn order(edges: &[EdgeView], states: &[State]) -> Vec<Placed> {
    let name = |i: usize| edges[i].target.name.as_str();
    let is_companion = |e: &EdgeView| matches!(e.target.origin, Origin::StrictCompanion { .. });
    let parents: HashMap<&str, usize> = edges
        .iter()
        .enumerate()
        .filter(|(_, e)| !is_companion(e))
        .map(|(i, e)| (e.target.name.as_str(), i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); edges.len()];
    let mut tops = Vec::with_capacity(edges.len());
    for (i, e) in edges.iter().enumerate() {
        let parent = match &e.target.origin {
            Origin::StrictCompanion { of } => parents.get(of.as_str()).copied(),
            _ => None,
        };
        match parent {
            Some(p) => children[p].push(i),
            None => tops.push(i),
        }
    }
    let key = |i: usize| (states[i].rank(), name(i), i);
    let mut groups: Vec<((u8, &str, usize), usize)> = tops
        .into_iter()
        .map(|i| {
            let worst = children[i].iter().map(|&c| states[c].rank()).min();
            let rank = worst.map_or(states[i].rank(), |w| w.min(states[i].rank()));
            ((rank, name(i), i), i)
        })
        .collect();
    groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut placed = Vec::with_capacity(edges.len());
    for (_, top) in groups {
        placed.push(Placed {
            index: top,
            child: false,
        });
        let kids = &mut children[top];
        kids.sort_unstable_by_key(|&c| key(c));
        placed.extend(kids.iter().map(|&index| Placed { index, child: true }));
    }
    placed
}

/// Writes one `<tr>`: cells in [`HEADINGS`] order.
pub(super) fn write_row(
    out: &mut String,
    edge: &EdgeView,
    state: State,
    child: bool,
    now: SystemTime,
) -> fmt::Result {
    let indent = if child { " child" } else { "" };
    write!(out, "<tr class=\"edge {}{indent}\">", state.class())?;
    state_cell(out, edge, state, now)?;
    target_cell(out, &edge.target, child)?;
    address_cell(out, &edge.target, edge.last.as_deref())?;
    write!(
        out,
        "<td>{} → {}<br><small>every {}</small></td>",
        edge.target.mode.as_str(),
        edge.target.expect.as_str(),
        humantime::format_duration(edge.target.interval)
    )?;
    failure_cells(out, edge.last.as_deref(), state)?;
    let peer = edge.last.as_deref().and_then(|r| r.peer.as_ref());
    peer_cells(out, peer, now)?;
    tls_cell(out, edge.last.as_deref())?;
    ratio_cell(out, &edge.success_ratio)?;
    write!(
        out,
        "<td class=\"num\">{} / {}</td>",
        edge.probes, edge.passes
    )?;
    last_probe_cell(out, edge.last.as_deref(), now)?;
    hint_cell(out, edge.last.as_deref(), state)?;
    out.write_str("</tr>\n")
}

fn state_cell(out: &mut String, edge: &EdgeView, state: State, now: SystemTime) -> fmt::Result {
    write!(out, "<td class=\"state\">{}", state.label())?;
    if let Some(since) = edge.since {
        let held = now.duration_since(since).unwrap_or_default();
        write!(out, "<br><small>for {}</small>", Span(held))?;
    }
    out.write_str("</td>")
}

fn target_cell(out: &mut String, target: &Target, child: bool) -> fmt::Result {
    out.write_str("<td class=\"target\">")?;
    if child {
        // The CSS indent is invisible in a text browser; the glyph is not.
        out.write_str("<span class=\"tree\">└ </span>")?;
    }
    write!(out, "{}", esc(&target.name, MAX_NAME))?;
    match (&target.origin, child) {
        (Origin::StrictCompanion { .. }, true) => {
            out.write_str("<br><small>STRICT check: plaintext must be refused</small>")?;
        }
        (Origin::StrictCompanion { of }, false) => {
            write!(
                out,
                "<br><small>STRICT check of {}</small>",
                esc(of, MAX_NAME)
            )?;
        }
        (Origin::Discovered { of }, _) => {
            write!(
                out,
                "<br><small>discovered by {}</small>",
                esc(of, MAX_NAME)
            )?;
        }
        (Origin::Configured, _) => {}
    }
    out.write_str("</td>")
}

/// The configured `host:port`, and the address actually connected to when it differs.
fn address_cell(out: &mut String, target: &Target, last: Option<&ProbeReport>) -> fmt::Result {
    let configured = target.address.to_string();
    write!(out, "<td class=\"addr\">{}", esc(&configured, MAX_ADDRESS))?;
    if let Some(r) = last.filter(|r| r.address != configured) {
        write!(out, "<br><small>→ {}</small>", esc(&r.address, MAX_ADDRESS))?;
    }
    out.write_str("</td>")
}

/// Stage, reason (linked to its runbook section) and detail.
fn failure_cells(out: &mut String, last: Option<&ProbeReport>, state: State) -> fmt::Result {
    let Some(r) = last else {
        return out.write_str("<td></td><td></td><td class=\"detail\">not probed yet</td>");
    };
    let detail = esc(r.detail.as_deref().unwrap_or(""), MAX_DETAIL);
    match state {
        State::Fail | State::Violation => {
            let stage = r.stage.or(r.reason.map(Reason::stage));
            write!(out, "<td>{}</td>", stage.map_or("", |s| s.as_str()))?;
            match r.reason {
                // Relative: resolves against wherever the page is served from.
                Some(reason) => write!(
                    out,
                    "<td class=\"reason\"><a href=\"docs/runbook.md#{0}\">{0}</a></td>",
                    reason.as_str()
                )?,
                None => out.write_str("<td class=\"reason\">unknown</td>")?,
            }
            write!(out, "<td class=\"detail\">{detail}</td>")
        }
        State::Refused => write!(
            out,
            "<td></td><td></td><td class=\"detail\"><span class=\"note\">refused as \
             expected</span>: {detail}</td>"
        ),
        State::Pass | State::Pending => {
            write!(out, "<td></td><td></td><td class=\"detail\">{detail}</td>")
        }
    }
}

/// Peer SPIFFE ID (issuer and serial on hover) and leaf expiry.
fn peer_cells(out: &mut String, peer: Option<&PeerInfo>, now: SystemTime) -> fmt::Result {
    let Some(p) = peer else {
        return out.write_str("<td class=\"id\"></td><td class=\"expiry\"></td>");
    };
    write!(
        out,
        "<td class=\"id\" title=\"issuer {}; serial {}\">",
        esc(&p.issuer, MAX_ID),
        esc(&p.serial, MAX_SHORT)
    )?;
    match (&p.spiffe_id, p.dns_sans.first()) {
        (Some(id), _) => write!(out, "{}", esc(id, MAX_ID))?,
        (None, Some(dns)) => write!(out, "<i>no SPIFFE ID</i><br>DNS {}", esc(dns, MAX_ID))?,
        (None, None) => out.write_str("<i>no SPIFFE ID</i>")?,
    }
    let expiry = Expiry::of(p.not_after_time, now);
    write!(
        out,
        "</td><td class=\"{}\">{}<br><small>",
        expiry.class(),
        esc(&p.not_after, MAX_SHORT)
    )?;
    expiry.write_relative(out, p.not_after_time, now)?;
    out.write_str("</small></td>")
}

/// Negotiated TLS version and ALPN (cipher on hover), and the HTTP status if any.
fn tls_cell(out: &mut String, last: Option<&ProbeReport>) -> fmt::Result {
    out.write_str("<td class=\"tls\"")?;
    let tls = last.and_then(|r| r.tls.as_ref());
    if let Some(t) = tls {
        write!(
            out,
            " title=\"{}\">{}",
            esc(t.cipher, MAX_SHORT),
            tls_version(t.version)
        )?;
        if let Some(alpn) = &t.alpn {
            write!(out, " · {}", esc(alpn, MAX_SHORT))?;
        }
    } else {
        out.write_str(">")?;
    }
    if let Some(h) = last.and_then(|r| r.http.as_ref()) {
        let br = if tls.is_some() { "<br>" } else { "" };
        write!(out, "{br}HTTP {}", h.status)?;
        if let Some(server) = &h.server {
            write!(out, " <small>{}</small>", esc(server, MAX_SHORT))?;
        }
    }
    out.write_str("</td>")
}

/// The version as the report names it (`TLS 1.3`).
fn tls_version(v: &str) -> Esc<'_> {
    esc(v, MAX_SHORT)
}

fn ratio_cell(out: &mut String, ratios: &[(String, Option<f64>)]) -> fmt::Result {
    out.write_str("<td class=\"num\">")?;
    for (i, (window, ratio)) in ratios.iter().enumerate() {
        let br = if i > 0 { "<br>" } else { "" };
        write!(out, "{br}{} ", esc(window, MAX_SHORT))?;
        match ratio {
            Some(r) if *r < 1.0 => write!(out, "<span class=\"partial\">{}</span>", Percent(*r))?,
            Some(r) => write!(out, "{}", Percent(*r))?,
            None => out.write_str("–")?,
        }
    }
    out.write_str("</td>")
}

fn last_probe_cell(out: &mut String, last: Option<&ProbeReport>, now: SystemTime) -> fmt::Result {
    let Some(r) = last else {
        return out.write_str("<td class=\"at\"></td>");
    };
    write!(out, "<td class=\"at\">{}", esc(&r.at, MAX_SHORT))?;
    if let Ok(then) = humantime::parse_rfc3339_weak(&r.at) {
        write!(out, "<br><small>{}</small>", Relative { then, now })?;
    }
    write!(out, "<br><small>{:.1} ms</small></td>", r.timings_ms.total)
}

fn hint_cell(out: &mut String, last: Option<&ProbeReport>, state: State) -> fmt::Result {
    let hint = last
        .filter(|_| state.failed())
        .and_then(|r| r.hint.or(r.reason.map(Reason::hint)));
    match hint {
        Some(h) => write!(out, "<td class=\"hint\">{}</td>", esc(h, MAX_DETAIL)),
        None => out.write_str("<td class=\"hint\"></td>"),
    }
}
