//! The watch report as JUnit XML (`watch --report F.xml`), the format CI systems
//! (GitLab, Jenkins, GitHub test reporters, Buildkite) show natively: one test case per
//! edge, failed when the edge missed the gate, with `stage/reason: detail` as the
//! failure message. Written with quick-junit, cargo-nextest's serializer (escaping and
//! invalid XML characters are its job, not ours).

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::report::{EdgeReport, WatchReport};
use super::stats::fmt_ratio;

/// The JUnit document for `report`.
pub fn render(report: &WatchReport) -> Result<String, String> {
    let mut suite = TestSuite::new(format!("mtls-prober watch ({})", report.config));
    suite.set_time(Duration::from_secs_f64(report.watched_seconds.max(0.0)));
    suite.add_properties([
        Property::new("verdict", report.verdict),
        Property::new("source", report.source.as_str()),
        Property::new("config", report.config.as_str()),
        Property::new("min_success_ratio", report.min_success_ratio.to_string()),
        Property::new("started", report.started.as_str()),
        Property::new("ended", report.ended.as_str()),
        Property::new("cut_short", report.cut_short.to_string()),
    ]);
    for e in &report.edges {
        suite.add_test_case(edge_case(report, e));
    }
    // A watch stopped early proves less than it was asked to: CI must show red even
    // when every edge held so far.
    if report.cut_short {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        let why = report
            .why
            .iter()
            .find(|w| w.starts_with("the watch was cut short"))
            .cloned()
            .unwrap_or_else(|| "the watch was cut short".into());
        status.set_message(why).set_type("cut_short");
        let mut case = TestCase::new("watch ran for the planned duration", status);
        case.set_classname("mtls-prober.watch");
        suite.add_test_case(case);
    }
    let mut doc = Report::new("mtls-prober watch");
    doc.set_time(Duration::from_secs_f64(report.watched_seconds.max(0.0)));
    doc.add_test_suite(suite);
    doc.to_string()
        .map_err(|e| format!("encoding the JUnit report: {e}"))
}

fn edge_case(report: &WatchReport, e: &EdgeReport) -> TestCase {
    let s = &e.stats;
    let status = if e.held {
        TestCaseStatus::success()
    } else {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        // The most frequent failure names the cause; the gate line says by how much.
        match s.failures.iter().max_by_key(|f| f.count) {
            Some(f) => {
                status
                    .set_message(format!("{}/{}: {}", f.stage, f.reason, f.last_detail))
                    .set_type(format!("{}/{}", f.stage, f.reason));
            }
            None => {
                status
                    .set_message("no probe completed")
                    .set_type("no_probe");
            }
        }
        let mut text = s.gate_failure(report.min_success_ratio).unwrap_or_default();
        for f in &s.failures {
            text.push_str(&format!(
                "\n{}/{} ×{}\n  first {}: {}\n  last  {}: {}\n  runbook: {}",
                f.stage,
                f.reason,
                f.count,
                f.first_at,
                f.first_detail,
                f.last_at,
                f.last_detail,
                report.runbook_url(f.reason)
            ));
        }
        status.set_description(text);
        status
    };
    let mut case = TestCase::new(s.target.as_str(), status);
    // CI tools group by class name: the target's namespace part ("production/api").
    let group = s.target.split('/').next().unwrap_or(&s.target);
    case.set_classname(format!("mtls-prober.{group}"));
    case.set_assertions(usize::try_from(s.probes).unwrap_or(usize::MAX));
    case.set_system_out(format!(
        "{} mode={} expect={}: {} of {} probes passed (ratio {})",
        s.address,
        s.mode.as_str(),
        s.expect.as_str(),
        s.passes,
        s.probes,
        e.ratio.map(fmt_ratio).unwrap_or_else(|| "-".into())
    ));
    case
}
