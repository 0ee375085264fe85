//! One edge of the table: its state, its place in the order and its `<tr>`.

use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

use super::html::{Expiry, Percent, Relative, Span, esc};
use crate::agent::view::EdgeView;
use crate::classify::Reason;
use crate::config::{Expect, Origin};
use crate::report::{FarSide, ProbeReport};
use crate::tls::peer::PeerInfo;

/// Display bounds, in bytes. Config-derived text is bounded too: a discovered name or a
/// reload error is not something to trust to be short.
const MAX_NAME: usize = 256;
const MAX_ADDRESS: usize = 300;
/// A hostile peer controls `detail` (alert text, `server` header, body snippets).
pub(super) const MAX_DETAIL: usize = 2048;
const MAX_ID: usize = 512;
const MAX_SHORT: usize = 128;

/// Column headings, in the order [`write_row`] writes the cells. Everything else an
/// edge has is in the `<details>` of its detail cell, so a row is one line at 1400 px.
pub(super) const HEADINGS: [&str; 6] = [
    "State",
    "Target",
    "Stage / reason",
    "Detail",
    "Ratio",
    "Peer cert",
];

/// How rows render what comes from the agent's config.
#[derive(Clone, Copy, Debug)]
pub(super) struct RowOptions<'a> {
    /// Where runbook links point; `#reason` is appended.
    pub(super) runbook: &'a str,
    /// Certificates with less than this left are flagged (see [`Expiry::of`]).
    pub(super) expiry_floor: std::time::Duration,
}

/// Short detail in the summary line; the whole detail is in the expanded row.
const MAX_SUMMARY: usize = 240;

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
            Self::Violation => "NOT STRICT",
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
    out: &mut dyn fmt::Write,
    edge: &EdgeView,
    state: State,
    child: bool,
    now: SystemTime,
    opts: &RowOptions<'_>,
) -> fmt::Result {
    let indent = if child { " child" } else { "" };
    let last = edge.last.as_deref();
    write!(out, "<tr class=\"edge {}{indent}\">", state.class())?;
    state_cell(out, edge, state, now)?;
    target_cell(out, edge, child)?;
    reason_cell(out, last, state, opts)?;
    detail_cell(out, edge, state, now, opts)?;
    ratio_cell(out, &edge.success_ratio)?;
    expiry_cell(out, last.and_then(|r| r.peer.as_ref()), now, opts)?;
    out.write_str("</tr>\n")
}

fn state_cell(
    out: &mut dyn fmt::Write,
    edge: &EdgeView,
    state: State,
    now: SystemTime,
) -> fmt::Result {
    write!(out, "<td class=\"state\">{}", state.label())?;
    if let Some(since) = edge.since {
        let held = now.duration_since(since).unwrap_or_default();
        write!(
            out,
            " <small title=\"in this state for\">{}</small>",
            Span(held)
        )?;
    }
    out.write_str("</td>")
}

fn target_cell(out: &mut dyn fmt::Write, edge: &EdgeView, child: bool) -> fmt::Result {
    let target = &edge.target;
    // The full name on hover: a cut name can hide the part that differs.
    write!(
        out,
        "<td class=\"target\" title=\"{}\">",
        esc(&target.name, MAX_NAME)
    )?;
    if child {
        // The CSS indent is invisible in a text browser; the glyph is not.
        out.write_str("<span class=\"tree\">└ </span>")?;
    }
    write!(out, "{}", esc(&target.name, MAX_NAME))?;
    super::fleet::write_edge(out, edge.fleet.as_ref())?;
    out.write_str("</td>")
}

/// `stage/reason`, the reason linked to its runbook section.
fn reason_cell(
    out: &mut dyn fmt::Write,
    last: Option<&ProbeReport>,
    state: State,
    opts: &RowOptions<'_>,
) -> fmt::Result {
    out.write_str("<td class=\"reason\">")?;
    match (last, state) {
        (Some(r), State::Fail | State::Violation) => match r.reason {
            Some(reason) => write!(
                out,
                "{}/<a href=\"{}#{reason}\">{reason}</a>",
                reason.stage(),
                esc(opts.runbook, MAX_ADDRESS)
            )?,
            None => out.write_str("unknown")?,
        },
        (Some(_), State::Refused) => out.write_str("refused as expected")?,
        (Some(_), _) => out.write_str("<span class=\"dim\">–</span>")?,
        (None, _) => out.write_str("<span class=\"dim\">not probed yet</span>")?,
    }
    out.write_str("</td>")
}

/// The detail, one line (cut by CSS), opening into everything else the edge has.
fn detail_cell(
    out: &mut dyn fmt::Write,
    edge: &EdgeView,
    state: State,
    now: SystemTime,
    opts: &RowOptions<'_>,
) -> fmt::Result {
    let last = edge.last.as_deref();
    let detail = last.and_then(|r| r.detail.as_deref()).unwrap_or("");
    out.write_str("<td class=\"detail\"><details><summary>")?;
    match (last, state) {
        (None, _) => out.write_str("<span class=\"dim\">not probed yet</span>")?,
        (Some(_), State::Pass) if detail.is_empty() => {
            out.write_str("<span class=\"dim\">all layers passed</span>")?;
        }
        _ => write!(out, "{}", esc(detail, MAX_SUMMARY))?,
    }
    out.write_str("</summary><dl>")?;
    if !detail.is_empty() {
        write!(
            out,
            "<dt>Detail</dt><dd class=\"full\">{}</dd>",
            esc(detail, MAX_DETAIL)
        )?;
    }
    if let (Some(r), true) = (last, state.failed())
        && let Some(h) = r.hint.or(r.reason.map(Reason::hint))
    {
        write!(out, "<dt>Hint</dt><dd>{}</dd>", esc(h, MAX_DETAIL))?;
    }
    let target = &edge.target;
    match &target.origin {
        Origin::StrictCompanion { of } => write!(
            out,
            "<dt>What</dt><dd>STRICT check of {}: plaintext must be refused</dd>",
            esc(of, MAX_NAME)
        )?,
        Origin::Discovered { of } => write!(
            out,
            "<dt>What</dt><dd>discovered by {}</dd>",
            esc(of, MAX_NAME)
        )?,
        Origin::Configured => {}
    }
    let configured = target.address.to_string();
    write!(out, "<dt>Address</dt><dd>{}", esc(&configured, MAX_ADDRESS))?;
    if let Some(r) = last.filter(|r| r.address != configured) {
        write!(out, " → {}", esc(&r.address, MAX_ADDRESS))?;
    }
    write!(
        out,
        "</dd><dt>Probe</dt><dd>{} → {}, every {}</dd>",
        target.mode.as_str(),
        target.expect.as_str(),
        humantime::format_duration(target.interval)
    )?;
    if let Some(p) = last.and_then(|r| r.peer.as_ref()) {
        peer_facts(out, p, now, opts)?;
    }
    if let Some(f) = last.and_then(|r| r.far_side.as_ref()) {
        far_side_facts(out, f)?;
    }
    tls_facts(out, last)?;
    out.write_str("<dt>Success</dt><dd>")?;
    for (i, (window, ratio)) in edge.success_ratio.iter().enumerate() {
        let sep = if i > 0 { " · " } else { "" };
        write!(out, "{sep}{} ", esc(window, MAX_SHORT))?;
        match ratio {
            Some(r) => write!(out, "{}", Percent(*r))?,
            None => out.write_str("–")?,
        }
    }
    write!(
        out,
        " ({} probes, {} passed)</dd>",
        edge.probes, edge.passes
    )?;
    if let Some(r) = last {
        write!(out, "<dt>Last probe</dt><dd>{}", esc(&r.at, MAX_SHORT))?;
        if let Ok(then) = humantime::parse_rfc3339_weak(&r.at) {
            write!(out, " ({})", Relative { then, now })?;
        }
        write!(out, ", {:.1} ms</dd>", r.timings_ms.total)?;
    }
    out.write_str("</dl></details></td>")
}

/// The peer's identity and leaf, in the expanded row.
fn peer_facts(
    out: &mut dyn fmt::Write,
    p: &PeerInfo,
    now: SystemTime,
    opts: &RowOptions<'_>,
) -> fmt::Result {
    out.write_str("<dt>Peer</dt><dd>")?;
    match (&p.spiffe_id, p.dns_sans.first()) {
        (Some(id), _) => write!(out, "<span class=\"id\">{}</span>", esc(id, MAX_ID))?,
        (None, Some(dns)) => write!(out, "no SPIFFE ID, DNS {}", esc(dns, MAX_ID))?,
        (None, None) => out.write_str("no SPIFFE ID")?,
    }
    write!(
        out,
        "<br>issuer {}, serial {}<br>valid {} .. {} (",
        esc(&p.issuer, MAX_ID),
        esc(&p.serial, MAX_SHORT),
        esc(&p.not_before, MAX_SHORT),
        esc(&p.not_after, MAX_SHORT)
    )?;
    let expiry = Expiry::of(not_before(p), p.not_after_time, now, opts.expiry_floor);
    expiry.write_relative(out, p.not_after_time, now)?;
    out.write_str(")</dd>")
}

/// How the far side (an agent's `[serve]`) saw us, in the expanded row.
fn far_side_facts(out: &mut dyn fmt::Write, f: &FarSide) -> fmt::Result {
    let seen = crate::probe::far_side::seen_identity(f);
    write!(
        out,
        "<dt>Far side</dt><dd>{} saw us as {}</dd>",
        esc(&f.source, MAX_NAME),
        esc(seen.as_deref().unwrap_or("no client identity"), MAX_ID)
    )
}

/// Negotiated TLS version, cipher and ALPN, and the HTTP status or gRPC answer if any.
fn tls_facts(out: &mut dyn fmt::Write, last: Option<&ProbeReport>) -> fmt::Result {
    if let Some(t) = last.and_then(|r| r.tls.as_ref()) {
        write!(
            out,
            "<dt>TLS</dt><dd>{} {}",
            esc(t.version, MAX_SHORT),
            esc(t.cipher, MAX_SHORT)
        )?;
        if let Some(alpn) = &t.alpn {
            write!(out, " · {}", esc(alpn, MAX_SHORT))?;
        }
        out.write_str("</dd>")?;
    }
    if let Some(h) = last.and_then(|r| r.http.as_ref()) {
        write!(out, "<dt>HTTP</dt><dd>{}", h.status)?;
        if let Some(server) = &h.server {
            write!(out, " <small>server: {}</small>", esc(server, MAX_SHORT))?;
        }
        out.write_str("</dd>")?;
    }
    if let Some(g) = last.and_then(|r| r.grpc.as_ref()) {
        // What the health service said: its health status when the call was OK, else the
        // gRPC status and message.
        let service = if g.service.is_empty() {
            "(server)"
        } else {
            g.service.as_str()
        };
        write!(out, "<dt>gRPC</dt><dd>{} ", esc(service, MAX_SHORT))?;
        match (g.health, g.status) {
            (Some(health), _) => write!(out, "{}", esc(health, MAX_SHORT))?,
            (None, Some(status)) => write!(out, "{}", esc(status, MAX_SHORT))?,
            (None, None) => out.write_str("no grpc-status")?,
        }
        if let Some(m) = &g.message {
            write!(out, " <small>{}</small>", esc(m, MAX_SHORT))?;
        }
        out.write_str("</dd>")?;
    }
    Ok(())
}

/// The shortest window's ratio (the others are in the expanded row).
fn ratio_cell(
    out: &mut dyn fmt::Write,
    ratios: &[(std::sync::Arc<str>, Option<f64>)],
) -> fmt::Result {
    let Some((window, ratio)) = ratios.first() else {
        return out.write_str("<td class=\"num\"></td>");
    };
    write!(
        out,
        "<td class=\"num\" title=\"success over {}\">",
        esc(window, MAX_SHORT)
    )?;
    match ratio {
        Some(r) if *r < 1.0 => write!(out, "<span class=\"partial\">{}</span>", Percent(*r))?,
        Some(r) => write!(out, "{}", Percent(*r))?,
        None => out.write_str("–")?,
    }
    out.write_str("</td>")
}

/// When the peer's leaf expires, highlighted by how much of its life is left.
fn expiry_cell(
    out: &mut dyn fmt::Write,
    peer: Option<&PeerInfo>,
    now: SystemTime,
    opts: &RowOptions<'_>,
) -> fmt::Result {
    let Some(p) = peer else {
        return out.write_str("<td class=\"expiry\"></td>");
    };
    let expiry = Expiry::of(not_before(p), p.not_after_time, now, opts.expiry_floor);
    write!(
        out,
        "<td class=\"{}\" title=\"not_after {}\">",
        expiry.class(),
        esc(&p.not_after, MAX_SHORT)
    )?;
    expiry.write_relative(out, p.not_after_time, now)?;
    out.write_str("</td>")
}

fn not_before(p: &PeerInfo) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(&p.not_before).ok()
}
