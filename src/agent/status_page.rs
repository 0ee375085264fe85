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

mod html;
mod row;

use std::fmt::{self, Write as _};
use std::time::SystemTime;

use self::html::{Expiry, Span, esc, rfc3339};
use self::row::{HEADINGS, State};
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
    out: &mut String,
    agent: &AgentView,
    edges: &[EdgeView],
    now: SystemTime,
) -> fmt::Result {
    let states: Vec<State> = edges.iter().map(State::of).collect();
    let tally = Tally::count(edges, &states);
    write_head(out, agent, &tally)?;
    write_banners(out, agent, &tally)?;
    write_facts(out, agent, now)?;
    write_summary(out, &tally)?;
    write_table(out, edges, &states, now)?;
    write!(
        out,
        "<footer><p>Rendered {} · this page reloads every {REFRESH_SECS} s · \
         machine-readable: <a href=\"api/v1/edges\">/api/v1/edges</a>, \
         <a href=\"metrics\">/metrics</a></p></footer>\n</body>\n</html>\n",
        rfc3339(now)
    )
}

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

fn write_head(out: &mut String, agent: &AgentView, tally: &Tally) -> fmt::Result {
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
fn write_banners(out: &mut String, agent: &AgentView, tally: &Tally) -> fmt::Result {
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

/// Source, version, uptime, readiness, own identity, config.
fn write_facts(out: &mut String, agent: &AgentView, now: SystemTime) -> fmt::Result {
    out.write_str("<dl class=\"facts\">\n")?;
    write!(
        out,
        "<dt>Source</dt><dd>{}</dd>\n<dt>Version</dt><dd>{}</dd>\n",
        esc(&agent.source, MAX_NAME),
        esc(agent.version, MAX_NAME)
    )?;
    let up = now.duration_since(agent.started).unwrap_or_default();
    writeln!(
        out,
        "<dt>Uptime</dt><dd>{} <small>(since {})</small></dd>",
        Span(up),
        rfc3339(agent.started)
    )?;
    match &agent.ready {
        Ok(()) => out.write_str("<dt>Readiness</dt><dd class=\"good\">ready</dd>\n")?,
        Err(why) => writeln!(
            out,
            "<dt>Readiness</dt><dd class=\"bad\">not ready: {}</dd>",
            esc(why, MAX_PROBLEM)
        )?,
    }
    write_identity(out, agent, now)?;
    write!(
        out,
        "<dt>Config</dt><dd>{}",
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
    out.write_str("</dd>\n</dl>\n")
}

fn write_identity(out: &mut String, agent: &AgentView, now: SystemTime) -> fmt::Result {
    out.write_str("<dt>Identity</dt><dd>")?;
    match &agent.identity_spiffe_id {
        Some(id) => write!(out, "<span class=\"id\">{}</span>", esc(id, MAX_NAME))?,
        None => out.write_str("<i>no SPIFFE ID loaded</i>")?,
    }
    if let Some(not_after) = agent.identity_not_after {
        let expiry = Expiry::of(not_after, now);
        let verb = if expiry == Expiry::Expired {
            ""
        } else {
            "expires "
        };
        write!(out, "<br><span class=\"{}\">{verb}", expiry.class())?;
        expiry.write_relative(out, not_after, now)?;
        write!(out, " <small>({})</small></span>", rfc3339(not_after))?;
    }
    if let Some(problem) = &agent.identity_problem {
        write!(
            out,
            "<br><span class=\"bad\">problem: {}</span>",
            esc(problem, MAX_PROBLEM)
        )?;
    }
    out.write_str("</dd>\n")
}

/// "N edges: …" and the failures counted by stage/reason, most frequent first.
fn write_summary(out: &mut String, t: &Tally) -> fmt::Result {
    writeln!(
        out,
        "<p class=\"summary\"><b>{} edges</b>: <span class=\"good\">{} passing</span> \
         ({} of them refused as expected), <span class=\"{}\">{} failing</span> \
         ({} STRICT violations), {} pending.</p>",
        t.total,
        t.pass + t.refused,
        t.refused,
        if t.fail > 0 { "bad" } else { "good" },
        t.fail,
        t.violations,
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
    out.write_str("<p class=\"causes\">Failures by cause:</p>\n<ul class=\"causes\">\n")?;
    for (reason, n) in causes {
        writeln!(
            out,
            "<li>{n} × {}/<a href=\"docs/runbook.md#{1}\">{1}</a></li>",
            reason.stage(),
            reason.as_str()
        )?;
    }
    out.write_str("</ul>\n")
}

fn write_table(
    out: &mut String,
    edges: &[EdgeView],
    states: &[State],
    now: SystemTime,
) -> fmt::Result {
    if edges.is_empty() {
        return out.write_str("<p>No edges configured.</p>\n");
    }
    out.write_str("<table class=\"edges\">\n<thead><tr>")?;
    for h in HEADINGS {
        write!(out, "<th>{h}</th>")?;
    }
    out.write_str("</tr></thead>\n<tbody>\n")?;
    for placed in row::order(edges, states) {
        let (edge, state) = (&edges[placed.index], states[placed.index]);
        row::write_row(out, edge, state, placed.child, now)?;
    }
    out.write_str("</tbody>\n</table>\n")
}

/// Inline styles only: the page must work with no network and no other endpoint.
const CSS: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1em;color:#111;background:#fff}\
h1{font-size:1.3em;margin:0 0 .4em}\
.banner{padding:.5em .8em;margin:.4em 0;font-weight:700;border-radius:3px}\
.banner.identity{background:#b00020;color:#fff}\
.banner.strict{background:#4a0072;color:#fff}\
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;margin:.5em 0}\
dl.facts dt{font-weight:600}dl.facts dd{margin:0;overflow-wrap:anywhere}\
.good{color:#1b6e2e;font-weight:600}.bad{color:#b00020;font-weight:700}\
.expiry.soon{background:#ffe08a;font-weight:700}\
.expiry.expired{background:#b00020;color:#fff;font-weight:700}\
ul.causes{margin:.2em 0 1em;columns:3 20em}p.causes{margin:.2em 0}\
table.edges{border-collapse:collapse;width:100%}\
th,td{border:1px solid #ccc;padding:.25em .4em;vertical-align:top;text-align:left}\
thead th{position:sticky;top:0;background:#f3f3f3}\
tr.pass td,tr.refused td{background:#e7f5ea}\
tr.fail td{background:#fde8ea}\
tr.violation td{background:#4a0072;color:#fff}tr.violation a{color:#ffd1ff}\
tr.pending td{background:#eee;color:#555}\
td.state{font-weight:700;white-space:nowrap}\
tr.pass td.state,tr.refused td.state{color:#1b6e2e}tr.fail td.state{color:#b00020}\
tr.child td.target{padding-left:1.8em}.tree{color:#888}\
td.detail{white-space:pre-wrap;overflow-wrap:anywhere;min-width:16em;max-width:40em}\
td.id,td.target,td.addr{overflow-wrap:anywhere;max-width:22em}\
td.num,td.at{white-space:nowrap}.partial{color:#b00020;font-weight:700}\
tr.violation .partial{color:#ffd1ff}.note{font-weight:700}small{opacity:.8}\
footer{margin-top:1em;color:#555}";

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
            verify_strict: false,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            http: None,
            grpc: None,
            origin,
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
                version: "TLSv1_3",
                cipher: "TLS13_AES_128_GCM_SHA256",
                alpn: Some("h2".into()),
            }),
            peer: (t.mode != Mode::Plaintext).then(|| {
                peer(
                    "spiffe://cluster.local/ns/production/sa/api",
                    now() + Duration::from_secs(30 * 86_400),
                )
            }),
            http: None,
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
        }
    }

    fn page(edges: &[EdgeView]) -> String {
        render_at(&agent(), edges, now())
    }

    /// The `<tr>` of the edge named exactly `name`.
    fn row<'a>(html: &'a str, name: &str) -> &'a str {
        let cell = format!("</span>{name}<");
        let plain = format!("<td class=\"target\">{name}<");
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
        assert!(row(&html, "broken").contains("href=\"docs/runbook.md#cert_expired\""));
        let hint = esc(Reason::CertExpired.hint(), usize::MAX).to_string();
        assert!(row(&html, "broken").contains(&format!("<td class=\"hint\">{hint}</td>")));
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
        assert!(html.contains("<span class=\"expiry soon\">expires in 20h"));
        assert!(html.contains("<dt>Uptime</dt><dd>3h 1m"));
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
        assert!(html.contains("2 passing</span> (0 of them refused as expected)"));
        assert!(html.contains("4 failing</span> (1 STRICT violations), 1 pending."));
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
        assert!(soon.contains("<td class=\"expiry soon\">"));
        assert!(soon.contains("in 3h<"));
        assert!(soon.contains("5m <span class=\"partial\">99.950%</span><br>30m 100%"));
        assert!(soon.contains(">TLS 1.3 · h2"));
        assert!(soon.contains("→ 10.0.0.5:8080"));
        assert!(soon.contains("4s ago"));
        assert!(soon.contains("120 / 119"));
        let old = row(&html, "old");
        assert!(old.contains("<td class=\"expiry expired\">"));
        assert!(old.contains("expired 2h ago"));
        let pend = page(&[pending("new")]);
        assert!(row(&pend, "new").contains("not probed yet"));
        assert!(row(&pend, "new").contains("5m –<br>30m –"));
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
