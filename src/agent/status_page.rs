//! The status page at `/`: server-rendered HTML, no external assets, no JavaScript.
//!
//! What an on-call engineer opens during an incident or the watch after a switch to
//! STRICT: the agent's own health on top (readiness, identity, config), then a summary
//! with failures counted by stage/reason, then one row per edge, worst first.
//!
//! The page is written into one pre-sized `String` with `fmt::Write`: no template
//! engine, no per-row allocations beyond a few small ones, linear in the number of
//! edges (plus one sort). Every string that came from config or from a peer goes through
//! [`html::esc`], which escapes `& < > " '` and bounds the length; the page's own
//! literals are the only raw markup.

mod fleet;
mod html;
mod row;

use std::fmt;
use std::time::SystemTime;

use self::html::{Expiry, Span, esc, rfc3339};
use self::row::{HEADINGS, RowOptions, State};
use super::view::{AgentView, EdgeView};
use crate::classify::Reason;

/// Reload interval of the page, seconds (a `<meta http-equiv="refresh">`: no JS needed).
const REFRESH_SECS: u32 = 10;
/// Bound for agent-level messages (reload errors can quote whole files).
const MAX_PROBLEM: usize = 4096;
/// Bound for the agent's own names (source, SPIFFE ID, config path).
const MAX_NAME: usize = 512;
/// Rough bytes per row, to size the buffer once.
const ROW_BYTES: usize = 1024;

/// Renders the page for the current wall-clock time in chunks of about `chunk` bytes,
/// each handed to `send` as it fills; stops when `send` returns `false`. `/` streams
/// these: 10,000 edges are ≈ 10 MiB of HTML, which rendered whole raised the agent's
/// peak memory by as much.
pub fn render_chunks(
    agent: &AgentView,
    edges: &[EdgeView],
    chunk: usize,
    send: impl FnMut(bytes::Bytes) -> bool,
) {
    let mut w = Chunks {
        buf: String::with_capacity(chunk + 4096),
        chunk,
        send,
    };
    // An error here is only `send` refusing more (the client went away).
    if write_page(&mut w, agent, edges, SystemTime::now()).is_ok() {
        (w.send)(bytes::Bytes::from(w.buf));
    }
}

/// A `fmt::Write` that hands its text on in chunks.
struct Chunks<F> {
    buf: String,
    chunk: usize,
    send: F,
}

impl<F: FnMut(bytes::Bytes) -> bool> fmt::Write for Chunks<F> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.buf.push_str(s);
        if self.buf.len() >= self.chunk {
            let full = std::mem::replace(&mut self.buf, String::with_capacity(self.chunk + 4096));
            if !(self.send)(bytes::Bytes::from(full)) {
                return Err(fmt::Error);
            }
        }
        Ok(())
    }
}

/// Renders the page for the current wall-clock time.
pub fn render(agent: &AgentView, edges: &[EdgeView]) -> String {
    render_at(agent, edges, SystemTime::now())
}

/// Renders the page as of `now` (tests pin the clock).
fn render_at(agent: &AgentView, edges: &[EdgeView], now: SystemTime) -> String {
    let mut out = String::with_capacity(8 * 1024 + edges.len() * ROW_BYTES);
    // Writing to a String never fails, and none of our Display impls invent errors.
    let _ = write_page(&mut out, agent, edges, now);
    out
}

fn write_page(
    out: &mut dyn fmt::Write,
    agent: &AgentView,
    edges: &[EdgeView],
    now: SystemTime,
) -> fmt::Result {
    let states: Vec<State> = edges.iter().map(State::of).collect();
    let tally = Tally::count(edges, &states);
    let runbook = agent.runbook_base_url.as_deref().unwrap_or(LOCAL_RUNBOOK);
    let opts = RowOptions {
        runbook,
        expiry_floor: agent.cert_expiry_warn_floor,
    };
    write_head(out, agent, &tally)?;
    write_banners(out, agent, &tally)?;
    write_facts(out, agent, now, &opts)?;
    write_summary(out, &tally, runbook)?;
    write_namespaces(out, edges, &states, runbook)?;
    write_table(out, edges, &states, now, &opts)?;
    write!(
        out,
        "<footer><p>Rendered {} · this page reloads every {REFRESH_SECS} s · \
         <a href=\"{}\">runbook</a> · machine-readable: \
         <a href=\"api/v1/edges\">/api/v1/edges</a>, <a href=\"metrics\">/metrics</a></p>\
         </footer>\n</body>\n</html>\n",
        rfc3339(now),
        esc(runbook, MAX_NAME)
    )
}

/// The runbook this agent serves itself (relative, so it works behind any prefix).
const LOCAL_RUNBOOK: &str = "docs/runbook";

/// Edge counts for the title, the banners and the summary.
#[derive(Debug, Default)]
struct Tally {
    total: usize,
    pass: usize,
    refused: usize,
    fail: usize,
    violations: usize,
    pending: usize,
    by_reason: [usize; Reason::ALL.len()],
}

impl Tally {
    fn count(edges: &[EdgeView], states: &[State]) -> Self {
        let mut t = Self {
            total: edges.len(),
            ..Self::default()
        };
        for (edge, state) in edges.iter().zip(states) {
            match state {
                State::Pass => t.pass += 1,
                State::Refused => t.refused += 1,
                State::Pending => t.pending += 1,
                State::Fail | State::Violation => {
                    t.fail += 1;
                    t.violations += usize::from(*state == State::Violation);
                    if let Some(reason) = edge.last.as_deref().and_then(|r| r.reason) {
                        t.by_reason[reason as usize] += 1;
                    }
                }
            }
        }
        t
    }
}

fn write_head(out: &mut dyn fmt::Write, agent: &AgentView, tally: &Tally) -> fmt::Result {
    out.write_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")?;
    write!(
        out,
        "<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    )?;
    // The failing count leads the title so it shows in a crowded tab bar.
    out.write_str("<title>")?;
    if tally.fail > 0 {
        write!(out, "{} failing · ", tally.fail)?;
    }
    write!(
        out,
        "mtls-prober · {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&agent.source, MAX_NAME)
    )?;
    writeln!(
        out,
        "<header><h1>mtls-prober · {}</h1></header>",
        esc(&agent.source, MAX_NAME)
    )
}

/// The facts that change what the rest of the page means, above everything else.
fn write_banners(out: &mut dyn fmt::Write, agent: &AgentView, tally: &Tally) -> fmt::Result {
    if let Some(problem) = &agent.identity_problem {
        writeln!(
            out,
            "<p class=\"banner identity\" role=\"alert\">Own identity problem: {}</p>",
            esc(problem, MAX_PROBLEM)
        )?;
    }
    if tally.violations > 0 {
        writeln!(
            out,
            "<p class=\"banner strict\" role=\"alert\">{} edge(s) let through traffic that must \
             be refused (plaintext_accepted / unexpected_success): STRICT mTLS is not in force \
             there. They are at the top of the table.</p>",
            tally.violations
        )?;
    }
    Ok(())
}

/// Source, version, uptime, readiness, own identity, config: a wrapped line of facts,
/// so the edges start high on the screen. Each fact is a `<div>` of the list, so one
/// more (the fleet share) fits without changing the layout.
fn write_facts(
    out: &mut dyn fmt::Write,
    agent: &AgentView,
    now: SystemTime,
    opts: &RowOptions<'_>,
) -> fmt::Result {
    out.write_str("<dl class=\"facts\">\n")?;
    let up = now.duration_since(agent.started).unwrap_or_default();
    writeln!(
        out,
        "<div><dt>Source</dt><dd>{}</dd></div><div><dt>Version</dt><dd>{}</dd></div>\
         <div><dt>Uptime</dt><dd title=\"since {}\">{}</dd></div>",
        esc(&agent.source, MAX_NAME),
        esc(agent.version, MAX_NAME),
        rfc3339(agent.started),
        Span(up),
    )?;
    match &agent.ready {
        Ok(()) => out.write_str("<div><dt>Readiness</dt><dd class=\"good\">ready</dd></div>\n")?,
        Err(why) => writeln!(
            out,
            "<div><dt>Readiness</dt><dd class=\"bad\">not ready: {}</dd></div>",
            esc(why, MAX_PROBLEM)
        )?,
    }
    write_identity(out, agent, now, opts)?;
    fleet::write_facts(out, agent.fleet.as_ref(), now)?;
    write!(
        out,
        "<div><dt>Config</dt><dd>{}",
        esc(&agent.config_file, MAX_NAME)
    )?;
    if let Some(problem) = &agent.config_problem {
        write!(
            out,
            "<br><span class=\"bad\">last reload failed, still running the previous \
             config: {}</span>",
            esc(problem, MAX_PROBLEM)
        )?;
    }
    out.write_str("</dd></div>\n</dl>\n")
}

fn write_identity(
    out: &mut dyn fmt::Write,
    agent: &AgentView,
    now: SystemTime,
    opts: &RowOptions<'_>,
) -> fmt::Result {
    out.write_str("<div><dt>Identity</dt><dd>")?;
    match &agent.identity_spiffe_id {
        Some(id) => write!(out, "<span class=\"id\">{}</span>", esc(id, MAX_NAME))?,
        None => out.write_str("<i>no SPIFFE ID loaded</i>")?,
    }
    if let Some(not_after) = agent.identity_not_after {
        let expiry = Expiry::of(agent.identity_not_before, not_after, now, opts.expiry_floor);
        let verb = if expiry == Expiry::Expired {
            ""
        } else {
            "expires "
        };
        write!(
            out,
            " <span class=\"{}\" title=\"{}\">{verb}",
            expiry.class(),
            rfc3339(not_after)
        )?;
        expiry.write_relative(out, not_after, now)?;
        out.write_str("</span>")?;
    }
    if let Some(problem) = &agent.identity_problem {
        write!(
            out,
            "<br><span class=\"bad\">problem: {}</span>",
            esc(problem, MAX_PROBLEM)
        )?;
    }
    out.write_str("</dd></div>\n")
}

/// "N edges: …", and the failures by stage/reason (folded: the table says it too).
fn write_summary(out: &mut dyn fmt::Write, t: &Tally, runbook: &str) -> fmt::Result {
    writeln!(
        out,
        "<p class=\"summary\"><b>{} edges</b>: <span class=\"{}\">{} failing</span> \
         ({} STRICT violations), <span class=\"good\">{} passing</span> \
         ({} of them refused as expected), {} pending.</p>",
        t.total,
        if t.fail > 0 { "bad" } else { "good" },
        t.fail,
        t.violations,
        t.pass + t.refused,
        t.refused,
        t.pending
    )?;
    let mut causes: Vec<(Reason, usize)> = Reason::ALL
        .into_iter()
        .map(|r| (r, t.by_reason[r as usize]))
        .filter(|&(_, n)| n > 0)
        .collect();
    if causes.is_empty() {
        return Ok(());
    }
    // Most frequent first; ties in SPEC order (which is layer order).
    causes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    write!(
        out,
        "<details class=\"causes\"><summary>Failures by cause ({} reasons)</summary><ul>",
        causes.len()
    )?;
    for (reason, n) in causes {
        write!(
            out,
            "<li>{n} × {}/<a href=\"{}#{reason}\">{reason}</a></li>",
            reason.stage(),
            esc(runbook, MAX_NAME)
        )?;
    }
    out.write_str("</ul></details>\n")
}

/// Failing namespaces shown as chips; the rest are folded into one line.
// Seven keep the summary to two lines at 1400 px, so the table starts on the first screen.
const MAX_NS_CHIPS: usize = 7;

/// One namespace's counts, for the summary above the table.
#[derive(Default)]
struct Namespace<'a> {
    name: &'a str,
    edges: usize,
    failing: usize,
    pending: usize,
    /// The worst state's most frequent reason: (violation first, count, reason).
    reasons: Vec<(bool, Reason)>,
}

/// The namespace of an edge: what its name has before the first `/` (`production` of
/// `production/api`), else the whole name.
fn namespace_of(name: &str) -> &str {
    name.split('/').next().unwrap_or(name)
}

/// Failing namespaces as chips (counts and the worst reason), then the healthy ones
/// folded into one line: usable with 300 edges in 60 namespaces.
fn write_namespaces(
    out: &mut dyn fmt::Write,
    edges: &[EdgeView],
    states: &[State],
    runbook: &str,
) -> fmt::Result {
    let mut by_ns: std::collections::BTreeMap<&str, Namespace<'_>> = Default::default();
    for (edge, state) in edges.iter().zip(states) {
        let name = namespace_of(&edge.target.name);
        let ns = by_ns.entry(name).or_insert_with(|| Namespace {
            name,
            ..Namespace::default()
        });
        ns.edges += 1;
        match state {
            State::Fail | State::Violation => {
                ns.failing += 1;
                if let Some(r) = edge.last.as_deref().and_then(|r| r.reason) {
                    ns.reasons.push((*state == State::Violation, r));
                }
            }
            State::Pending => ns.pending += 1,
            State::Pass | State::Refused => {}
        }
    }
    if by_ns.len() < 2 {
        return Ok(());
    }
    let (mut failing, healthy): (Vec<_>, Vec<_>) =
        by_ns.into_values().partition(|ns| ns.failing > 0);
    failing.sort_by(|a, b| b.failing.cmp(&a.failing).then(a.name.cmp(b.name)));
    out.write_str("<section class=\"ns\" aria-label=\"by namespace\">")?;
    // The worst few namespaces as chips; past that the table is the better list.
    let (shown, folded) = failing.split_at(failing.len().min(MAX_NS_CHIPS));
    for ns in shown {
        write!(
            out,
            "<span class=\"chip bad\"><b>{}</b> {}/{} failing",
            esc(ns.name, MAX_NAME),
            ns.failing,
            ns.edges
        )?;
        if let Some(r) = worst(&ns.reasons) {
            write!(out, " · <a href=\"{}#{r}\">{r}</a>", esc(runbook, MAX_NAME))?;
        }
        out.write_str("</span>")?;
    }
    if !folded.is_empty() {
        write!(
            out,
            "<details class=\"chip bad\"><summary>{} more namespace(s) failing</summary>",
            folded.len()
        )?;
        for (i, ns) in folded.iter().enumerate() {
            let sep = if i > 0 { " · " } else { "" };
            write!(
                out,
                "{sep}{} ({}/{})",
                esc(ns.name, MAX_NAME),
                ns.failing,
                ns.edges
            )?;
        }
        out.write_str("</details>")?;
    }
    if !healthy.is_empty() {
        let edges: usize = healthy.iter().map(|n| n.edges).sum();
        let pending: usize = healthy.iter().map(|n| n.pending).sum();
        write!(
            out,
            "<details class=\"chip good\"><summary>{} namespace(s) passing, {edges} edges{}</summary>",
            healthy.len(),
            if pending > 0 {
                format!(" ({pending} pending)")
            } else {
                String::new()
            }
        )?;
        for (i, ns) in healthy.iter().enumerate() {
            let sep = if i > 0 { " · " } else { "" };
            write!(out, "{sep}{} ({})", esc(ns.name, MAX_NAME), ns.edges)?;
        }
        out.write_str("</details>")?;
    }
    out.write_str("</section>\n")
}

/// A STRICT violation if there is one, else the most frequent reason (ties: layer
/// order).
fn worst(reasons: &[(bool, Reason)]) -> Option<Reason> {
    if let Some(&(_, r)) = reasons.iter().find(|(v, _)| *v) {
        return Some(r);
    }
    let mut counts = [0usize; Reason::ALL.len()];
    for &(_, r) in reasons {
        counts[r as usize] += 1;
    }
    Reason::ALL
        .into_iter()
        .filter(|r| counts[*r as usize] > 0)
        .max_by(|a, b| counts[*a as usize].cmp(&counts[*b as usize]).then(b.cmp(a)))
}

fn write_table(
    out: &mut dyn fmt::Write,
    edges: &[EdgeView],
    states: &[State],
    now: SystemTime,
    opts: &RowOptions<'_>,
) -> fmt::Result {
    if edges.is_empty() {
        return out.write_str("<p>No edges configured.</p>\n");
    }
    out.write_str("<table class=\"edges\">\n<thead><tr>")?;
    for (h, class) in HEADINGS.iter().zip(COLUMN_CLASSES) {
        write!(out, "<th class=\"{class}\">{h}</th>")?;
    }
    out.write_str("</tr></thead>\n<tbody>\n")?;
    for placed in row::order(edges, states) {
        let (edge, state) = (&edges[placed.index], states[placed.index]);
        row::write_row(out, edge, state, placed.child, now, opts)?;
    }
    out.write_str("</tbody>\n</table>\n")
}

/// The `<th>` classes, matching the cells' (for the column widths).
const COLUMN_CLASSES: [&str; 6] = ["state", "target", "reason", "detail", "num", "expiry"];

/// Inline styles only: the page must work with no network and no other endpoint.
///
/// Wide screens: a fixed table layout, one line per edge (names and details cut with
/// an ellipsis, whole on hover and in the opened row). Narrow screens (a phone, 420 px):
/// each edge becomes a block with state, target and reason on top and the detail under
/// them; the ratio and expiry move into the opened row.
const CSS: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:.5em 1em;color:#111;background:#fff}\
h1{font-size:1.2em;margin:0 0 .2em}\
.banner{padding:.4em .8em;margin:.3em 0;font-weight:700;border-radius:3px}\
.banner.identity{background:#b00020;color:#fff}\
.banner.strict{background:#4a0072;color:#fff}\
dl.facts{display:flex;flex-wrap:wrap;gap:.1em 1.4em;margin:.2em 0}\
dl.facts div{display:flex;gap:.4em;min-width:0}dl.facts dt{font-weight:600}\
dl.facts dd{margin:0;overflow-wrap:anywhere}\
.good{color:#1b6e2e;font-weight:600}.bad{color:#b00020;font-weight:700}.dim{color:#777}\
.expiry.soon{background:#ffe08a;font-weight:700}\
.expiry.expired{background:#b00020;color:#fff;font-weight:700}\
p.summary{margin:.3em 0}\
details.causes{margin:.2em 0}details.causes ul{margin:.2em 0;columns:3 18em}\
section.ns{display:flex;flex-wrap:wrap;gap:.25em;margin:.3em 0 .5em}\
.chip{border:1px solid #ccc;border-radius:3px;padding:0 .4em;white-space:nowrap}\
.chip.bad{background:#fde8ea;border-color:#f3b4bc;font-weight:400}\
.chip.good{background:#e7f5ea;border-color:#b7dcc0;color:#111;font-weight:400;white-space:normal}\
table.edges{border-collapse:collapse;width:100%;table-layout:fixed;line-height:1.25}\
th,td{border:1px solid #ccc;padding:.1em .4em;vertical-align:top;text-align:left}\
thead th{position:sticky;top:0;background:#f3f3f3}\
th.state{width:8.8em}th.target{width:22%}th.reason{width:17em}th.num{width:5.5em}\
th.expiry{width:8.5em}\
td.state,td.target,td.reason,td.num,td.expiry{white-space:nowrap;overflow:hidden;\
text-overflow:ellipsis}\
td.detail summary{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;cursor:pointer}\
td.detail dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.1em .8em;\
margin:.3em 0}td.detail dt{font-weight:600}td.detail dd{margin:0;overflow-wrap:anywhere}\
dd.full{white-space:pre-wrap}\
tr.pass td,tr.refused td{background:#e7f5ea}\
tr.fail td{background:#fde8ea}\
tr.violation td{background:#4a0072;color:#fff}tr.violation a{color:#ffd1ff}\
tr.pending td{background:#eee;color:#555}\
td.state{font-weight:700}\
tr.pass td.state,tr.refused td.state{color:#1b6e2e}tr.fail td.state{color:#b00020}\
tr.child td.target{padding-left:1.2em}.tree{color:#888}\
.partial{color:#b00020;font-weight:700}tr.violation .partial{color:#ffd1ff}\
small{opacity:.8}footer{margin-top:1em;color:#555}\
@media (max-width:760px){\
table.edges,table.edges tbody{display:block}table.edges thead{display:none}\
table.edges tr{display:flex;flex-wrap:wrap;border:1px solid #ccc;margin:0 0 .3em}\
table.edges td{display:block;border:0;min-width:0;box-sizing:border-box}\
td.state{flex:0 0 auto}td.target{flex:1 1 0}td.reason{flex:1 0 100%}\
td.detail{flex:1 0 100%}table.edges td.num,table.edges td.expiry{display:none}\
td.detail dl{grid-template-columns:minmax(0,1fr)}}";

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::config::{Expect, HostPort, Mode, Origin, PeerExpectation, Target, TlsVersion};
    use crate::report::{HttpInfo, ProbeReport, Timings, TlsInfo};
    use crate::tls::peer::PeerInfo;

    const NOW_UNIX: u64 = 1_795_000_000;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_UNIX)
    }

    fn target(name: &str, mode: Mode, expect: Expect, origin: Origin) -> Arc<Target> {
        Arc::new(Target {
            name: name.into(),
            address: HostPort {
                host: "api.production.svc.cluster.local".into(),
                port: 8080,
            },
            mode,
            expect,
            peer: PeerExpectation::DnsName("api.production.svc.cluster.local".into()),
            server_name: "api.production.svc.cluster.local".into(),
            alpn: vec!["h2".into()],
            tls_versions: vec![TlsVersion::V1_3],
            ca: None,
            verify_strict: false,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            http: None,
            grpc: None,
            origin,
            fleet: Default::default(),
        })
    }

    fn mtls(name: &str) -> Arc<Target> {
        target(name, Mode::Mtls, Expect::Success, Origin::Configured)
    }

    fn companion(of: &str) -> Arc<Target> {
        let origin = Origin::StrictCompanion { of: of.into() };
        target(
            &format!("{of}/plaintext"),
            Mode::Plaintext,
            Expect::Reject,
            origin,
        )
    }

    fn peer(spiffe_id: &str, not_after: SystemTime) -> PeerInfo {
        PeerInfo {
            spiffe_id: Some(spiffe_id.into()),
            dns_sans: vec![],
            subject: String::new(),
            issuer: "O=cluster.local".into(),
            serial: "0a1b".into(),
            not_before: "2026-01-01T00:00:00Z".into(),
            not_after: rfc3339(not_after).to_string(),
            chain_len: 2,
            root_sha256: None,
            not_after_time: not_after,
        }
    }

    /// A report for `t`: passed when `reason` is `None`.
    fn report(t: &Target, reason: Option<Reason>, detail: &str) -> ProbeReport {
        let ok = reason.is_none();
        ProbeReport {
            source: "node-a".into(),
            target: t.name.clone(),
            address: "10.0.0.5:8080".into(),
            mode: t.mode,
            expect: t.expect,
            ok,
            stage: reason.map(Reason::stage),
            reason,
            detail: (!detail.is_empty()).then(|| detail.to_owned()),
            hint: reason.map(Reason::hint),
            timings_ms: Timings {
                total: 2.5,
                ..Timings::default()
            },
            tls: (t.mode != Mode::Plaintext).then(|| TlsInfo {
                version: "TLS 1.3",
                cipher: "TLS_AES_128_GCM_SHA256",
                alpn: Some("h2".into()),
            }),
            peer: (t.mode != Mode::Plaintext).then(|| {
                peer(
                    "spiffe://cluster.local/ns/production/sa/api",
                    now() + Duration::from_secs(30 * 86_400),
                )
            }),
            http: None,
            far_side: None,
            grpc: None,
            at: rfc3339(now() - Duration::from_secs(4)).to_string(),
        }
    }

    fn edge(target: Arc<Target>, last: Option<ProbeReport>) -> EdgeView {
        let probed = last.is_some();
        EdgeView {
            target,
            last: last.map(Arc::new),
            success_ratio: vec![
                ("5m".into(), probed.then_some(0.999_5)),
                ("30m".into(), probed.then_some(1.0)),
            ],
            probes: 120,
            passes: 119,
            since: Some(now() - Duration::from_secs(180)),
            fleet: None,
        }
    }

    fn passing(name: &str) -> EdgeView {
        let t = mtls(name);
        let r = report(&t, None, "");
        edge(t, Some(r))
    }

    fn failing(name: &str, reason: Reason, detail: &str) -> EdgeView {
        let t = mtls(name);
        let r = report(&t, Some(reason), detail);
        edge(t, Some(r))
    }

    fn pending(name: &str) -> EdgeView {
        edge(mtls(name), None)
    }

    fn strict_companion(of: &str, accepted: bool) -> EdgeView {
        let t = companion(of);
        let r = if accepted {
            report(
                &t,
                Some(Reason::PlaintextAccepted),
                "the peer answered HTTP 200 over plaintext",
            )
        } else {
            report(&t, None, "tls/peer_closed: connection reset")
        };
        edge(t, Some(r))
    }

    fn agent() -> AgentView {
        AgentView {
            source: "node-a".into(),
            version: "0.1.0",
            started: now() - Duration::from_secs(3 * 3600 + 60),
            ready: Ok(()),
            identity_spiffe_id: Some("spiffe://cluster.local/ns/monitoring/sa/mtls-prober".into()),
            identity_not_after: Some(now() + Duration::from_secs(20 * 3600)),
            identity_problem: None,
            config_file: "/etc/mtls-prober/probes.toml".into(),
            config_problem: None,
            fleet: None,
            identity_not_before: None,
            runbook_base_url: None,
            cert_expiry_warn_floor: Duration::from_secs(3600),
        }
    }

    fn page(edges: &[EdgeView]) -> String {
        render_at(&agent(), edges, now())
    }

    /// The `<tr>` of the edge named exactly `name`.
    fn row<'a>(html: &'a str, name: &str) -> &'a str {
        let cell = format!("</span>{name}<");
        let plain = format!("title=\"{name}\">{name}<");
        html.lines()
            .filter(|l| l.starts_with("<tr class=\"edge"))
            .find(|l| l.contains(&cell) || l.contains(&plain))
            .unwrap_or_else(|| panic!("no row for {name}"))
    }

    /// Row positions in document order, by target name.
    fn position(html: &str, name: &str) -> usize {
        let r = row(html, name);
        html.find(r).unwrap()
    }

    #[test]
    fn hostile_text_is_escaped_everywhere() {
        let evil = "<script>alert(\"x\")</script>'";
        let t = mtls(evil);
        let mut r = report(&t, Some(Reason::IdentityMismatch), evil);
        r.peer = Some(peer(evil, now() + Duration::from_secs(3600)));
        r.http = Some(HttpInfo {
            status: 403,
            server: Some(evil.into()),
        });
        r.address = evil.into();
        let mut a = agent();
        a.source = evil.into();
        a.ready = Err(evil.into());
        a.identity_spiffe_id = Some(evil.into());
        a.identity_problem = Some(evil.into());
        a.config_problem = Some(evil.into());
        let html = render_at(&a, &[edge(t, Some(r))], now());
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("alert(\""));
        assert!(!html.contains("</script>'"));
        let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;";
        // Name, detail, SPIFFE ID, server header, address; source ×3, readiness,
        // identity ×2 (banner and facts), config.
        assert!(html.matches(escaped).count() >= 12, "{html}");
    }

    #[test]
    fn a_grpc_answer_is_shown_in_the_expanded_row() {
        let t = mtls("shop/grpc");
        let mut r = report(&t, Some(Reason::UnexpectedStatus), "NOT_SERVING");
        r.grpc = Some(Box::new(crate::report::GrpcInfo {
            service: "shop.Cart".into(),
            status: Some("OK"),
            code: Some(0),
            message: None,
            health: Some("NOT_SERVING"),
        }));
        let html = page(&[edge(t, Some(r))]);
        assert!(
            html.contains("<dt>gRPC</dt><dd>shop.Cart NOT_SERVING</dd>"),
            "{html}"
        );
        let t = mtls("shop/denied");
        let mut r = report(&t, Some(Reason::RbacDenied), "PERMISSION_DENIED");
        r.grpc = Some(Box::new(crate::report::GrpcInfo {
            service: String::new(),
            status: Some("PERMISSION_DENIED"),
            code: Some(7),
            message: Some("RBAC: <denied>".into()),
            health: None,
        }));
        let html = page(&[edge(t, Some(r))]);
        assert!(
            html.contains(
                "<dt>gRPC</dt><dd>(server) PERMISSION_DENIED <small>RBAC: &lt;denied&gt;</small></dd>"
            ),
            "{html}"
        );
    }

    #[test]
    fn long_detail_is_cut() {
        let long = "x".repeat(10_000);
        let html = page(&[failing("a", Reason::HandshakeError, &long)]);
        let shown = format!("{}…", "x".repeat(row::MAX_DETAIL));
        assert!(html.contains(&shown));
        assert!(!html.contains(&"x".repeat(row::MAX_DETAIL + 1)));
    }

    #[test]
    fn rows_carry_their_state_class() {
        let reject = target("tls-no-cert", Mode::Tls, Expect::Reject, Origin::Configured);
        let refused = report(&reject, None, "tls/client_cert_required: alert");
        let html = page(&[
            passing("ok"),
            failing("broken", Reason::CertExpired, "not_after 2020-01-01"),
            pending("new"),
            passing("permissive"),
            strict_companion("permissive", true),
            edge(reject, Some(refused)),
        ]);
        assert!(row(&html, "ok").starts_with("<tr class=\"edge pass\">"));
        assert!(row(&html, "broken").starts_with("<tr class=\"edge fail\">"));
        assert!(row(&html, "new").starts_with("<tr class=\"edge pending\">"));
        let violation = row(&html, "permissive/plaintext");
        assert!(violation.starts_with("<tr class=\"edge violation child\">"));
        assert!(violation.contains("NOT STRICT"));
        let refused = row(&html, "tls-no-cert");
        assert!(refused.starts_with("<tr class=\"edge refused\">"));
        assert!(refused.contains("refused as expected"));
        assert!(row(&html, "broken").contains("href=\"docs/runbook#cert_expired\""));
        let hint = esc(Reason::CertExpired.hint(), usize::MAX).to_string();
        assert!(row(&html, "broken").contains(&format!("<dt>Hint</dt><dd>{hint}</dd>")));
        assert!(!row(&html, "ok").contains("runbook"));
        assert!(html.contains("STRICT mTLS is not in force"));
    }

    #[test]
    fn order_is_violations_failures_pending_passing_then_name() {
        let unexpected = target("z-reject", Mode::Tls, Expect::Reject, Origin::Configured);
        let let_through = report(&unexpected, Some(Reason::UnexpectedSuccess), "let through");
        let html = page(&[
            passing("b-pass"),
            passing("a-pass"),
            pending("p-pending"),
            failing("y-fail", Reason::ConnectTimeout, ""),
            failing("x-fail", Reason::RbacDenied, ""),
            passing("m-strict"),
            strict_companion("m-strict", true),
            passing("n-strict"),
            strict_companion("n-strict", false),
            edge(unexpected, Some(let_through)),
        ]);
        let order = [
            "m-strict",
            "m-strict/plaintext",
            "z-reject",
            "x-fail",
            "y-fail",
            "p-pending",
            "a-pass",
            "b-pass",
            "n-strict",
            "n-strict/plaintext",
        ];
        let positions: Vec<usize> = order.iter().map(|n| position(&html, n)).collect();
        assert!(positions.is_sorted(), "{order:?} at {positions:?}");
        assert!(row(&html, "n-strict/plaintext").contains("edge refused child"));
    }

    #[test]
    fn orphan_companion_stands_alone() {
        let html = page(&[
            strict_companion("gone", true),
            failing("a", Reason::DnsError, ""),
        ]);
        let orphan = row(&html, "gone/plaintext");
        assert!(orphan.starts_with("<tr class=\"edge violation\">"));
        assert!(orphan.contains("STRICT check of gone"));
        assert!(position(&html, "gone/plaintext") < position(&html, "a"));
    }

    #[test]
    fn header_shows_readiness_identity_and_config_problems() {
        let mut a = agent();
        a.ready = Err("identity not loaded: /etc/certs/cert-chain.pem: no such file".into());
        a.identity_problem = Some("cert-chain.pem: key does not match".into());
        a.config_problem = Some("probes.toml: unknown key `intervall`".into());
        let html = render_at(&a, &[], now());
        assert!(html.contains(
            "class=\"bad\">not ready: identity not loaded: /etc/certs/cert-chain.pem: no such file"
        ));
        assert!(html.contains(
            "class=\"banner identity\" role=\"alert\">Own identity problem: cert-chain.pem: key \
             does not match"
        ));
        assert!(html.contains("unknown key `intervall`"));
        assert!(html.contains("No edges configured."));

        let html = page(&[]);
        assert!(html.contains("<dd class=\"good\">ready</dd>"));
        assert!(html.contains("spiffe://cluster.local/ns/monitoring/sa/mtls-prober"));
        // 20 hours left is not "soon" by the floor alone (no not_before known)…
        assert!(html.contains("expires in 20h"), "{html}");
        assert!(!html.contains("expiry soon"), "{html}");
        assert!(html.contains("<dt>Uptime</dt><dd title="));
        // …nor for a 24-hour Istio certificate four hours into its life; it is with
        // seven hours left of 24.
        let mut a = agent();
        a.identity_not_before = Some(now() - Duration::from_secs(4 * 3600));
        assert!(!render_at(&a, &[], now()).contains("expiry soon"));
        a.identity_not_before = Some(now() - Duration::from_secs(17 * 3600));
        a.identity_not_after = Some(now() + Duration::from_secs(7 * 3600));
        assert!(render_at(&a, &[], now()).contains("<span class=\"expiry soon\""));
        assert!(!html.contains("class=\"banner"));
    }

    #[test]
    fn summary_counts_and_groups_failures() {
        let html = page(&[
            passing("a"),
            failing("b", Reason::CertExpired, ""),
            failing("c", Reason::CertExpired, ""),
            failing("d", Reason::RbacDenied, ""),
            pending("e"),
            passing("f"),
            strict_companion("f", true),
        ]);
        assert!(html.contains("<b>7 edges</b>"), "{html}");
        assert!(html.contains("4 failing</span> (1 STRICT violations), "));
        assert!(html.contains("2 passing</span> (0 of them refused as expected), 1 pending."));
        let expired = html.find("<li>2 × certificate/").unwrap();
        let rbac = html.find("<li>1 × request/").unwrap();
        assert!(expired < rbac);
        assert!(html.contains("<title>4 failing · mtls-prober · node-a</title>"));
    }

    #[test]
    fn cells_show_expiry_ratios_and_tls() {
        let t = mtls("soon");
        let mut r = report(&t, None, "");
        r.peer = Some(peer("spiffe://a/b", now() + Duration::from_secs(3 * 3600)));
        let expired_t = mtls("old");
        let mut expired = report(&expired_t, Some(Reason::CertExpired), "");
        expired.peer = Some(peer("spiffe://a/c", now() - Duration::from_secs(2 * 3600)));
        let html = page(&[edge(t, Some(r)), edge(expired_t, Some(expired))]);
        let soon = row(&html, "soon");
        assert!(soon.contains("<td class=\"expiry soon\" title="), "{soon}");
        assert!(soon.contains("in 3h<"));
        assert!(
            soon.contains("<span class=\"partial\">99.950%</span></td>"),
            "{soon}"
        );
        assert!(
            soon.contains("5m 99.950% · 30m 100% (120 probes, 119 passed)"),
            "{soon}"
        );
        assert!(
            soon.contains(">TLS 1.3 TLS_AES_128_GCM_SHA256 · h2"),
            "{soon}"
        );
        assert!(soon.contains("→ 10.0.0.5:8080"));
        assert!(soon.contains("4s ago"));
        let old = row(&html, "old");
        assert!(old.contains("<td class=\"expiry expired\" title="));
        assert!(old.contains("expired 2h ago"));
        let pend = page(&[pending("new")]);
        assert!(row(&pend, "new").contains("not probed yet"));
        assert!(row(&pend, "new").contains("5m – · 30m –"));
    }

    #[test]
    fn runbook_links_follow_runbook_base_url() {
        let edges = [failing("a/b", Reason::CertExpired, "x"), passing("c/d")];
        let html = page(&edges);
        assert!(
            html.contains("href=\"docs/runbook#cert_expired\""),
            "the agent's own"
        );
        let mut a = agent();
        a.runbook_base_url = Some("https://wiki.example.com/runbook".into());
        let html = render_at(&a, &edges, now());
        assert!(html.contains("href=\"https://wiki.example.com/runbook#cert_expired\""));
        assert!(!html.contains("docs/runbook"), "{html}");
    }

    #[test]
    fn namespaces_are_summarised_above_the_table() {
        // 300 edges in 60 namespaces, 20 of them with a failing edge.
        let edges: Vec<EdgeView> = (0..300)
            .map(|i| {
                let name = format!("ns-{:02}/svc-{i}", i % 60);
                if i % 60 < 20 && i < 60 {
                    let reason = if i % 60 == 0 {
                        Reason::PlaintextAccepted
                    } else {
                        Reason::ClientCertRejected
                    };
                    failing(&name, reason, "x")
                } else {
                    passing(&name)
                }
            })
            .collect();
        let html = page(&edges);
        let ns = &html[html.find("<section class=\"ns\"").unwrap()..];
        let ns = &ns[..ns.find("</section>").unwrap()];
        assert_eq!(
            ns.matches("<span class=\"chip bad\">").count(),
            MAX_NS_CHIPS
        );
        assert!(ns.contains("13 more namespace(s) failing"), "{ns}");
        assert!(ns.contains("40 namespace(s) passing, 200 edges"), "{ns}");
        // A STRICT violation is the namespace's worst reason.
        assert!(
            ns.contains("<b>ns-00</b> 1/5 failing · <a href=\"docs/runbook#plaintext_accepted\">"),
            "{ns}"
        );
        assert!(
            ns.contains(
                "<b>ns-01</b> 1/5 failing · <a href=\"docs/runbook#client_cert_rejected\">"
            ),
            "{ns}"
        );
        assert!(
            html.find("<section class=\"ns\"").unwrap()
                < html.find("<table class=\"edges\"").unwrap()
        );
    }

    #[test]
    fn ten_thousand_edges_render() {
        let edges: Vec<EdgeView> = (0..10_000)
            .map(|i| match i % 4 {
                0 => passing(&format!("ns-{i}/svc")),
                1 => failing(&format!("ns-{i}/svc"), Reason::ClientCertRejected, "alert"),
                2 => pending(&format!("ns-{i}/svc")),
                _ => strict_companion(&format!("ns-{}/svc", i - 3), i % 8 == 3),
            })
            .collect();
        let html = page(&edges);
        assert_eq!(html.matches("<tr class=\"edge ").count(), 10_000);
        assert_eq!(html.matches("<tr").count(), html.matches("</tr>").count());
        assert_eq!(html.matches("<td").count(), 10_000 * HEADINGS.len());
        assert_eq!(html.matches("edge violation child").count(), 1250);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.ends_with("</html>\n"));
    }

    #[test]
    fn no_external_assets_and_no_script() {
        let html = page(&[
            passing("a"),
            failing("b", Reason::UpstreamTlsError, "upstream connect error"),
            pending("c"),
            passing("d"),
            strict_companion("d", true),
        ]);
        for banned in [
            "http://", "https://", "<script", "<link", "<img", "src=", "url(",
        ] {
            assert!(!html.contains(banned), "page contains {banned}");
        }
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
        assert!(html.contains("reloads every 10 s"));
    }
}
