//! `mtls-prober watch`: the gate after switching a namespace to STRICT. Probes the whole
//! matrix (targets, `verify_strict` companions, discovered edges) with the agent's
//! scheduler for a duration, shows it live, and reports a verdict.
//!
//! On a terminal the view redraws in place on the alternate screen, fitted to the
//! window ([`screen`]); otherwise (CI, `kubectl logs`) it prints one
//! plain line per edge state change and a periodic one-line summary, with no cursor
//! control codes.

pub mod junit;
pub mod report;
pub mod screen;
pub mod stats;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::agent::discover;
use crate::agent::edges::{EdgeSet, EdgeSetOptions, Observer};
use crate::clock::Clock;
use crate::config::Config;
use crate::identity::Credentials;
use crate::identity::load::rfc3339;
use crate::probe::{Prober, Resolver};
use crate::sync::lock;
use report::{EdgeReport, WatchReport};
use stats::{AllStats, EdgeStats, fmt_ratio};

/// How the watch runs.
pub struct WatchOptions {
    /// How long to watch.
    pub duration: Duration,
    /// The gate.
    pub min_success_ratio: f64,
    /// Redraw in place (a terminal) or print lines.
    pub live: bool,
    /// The config file's name, for the report.
    pub config_name: String,
}

/// Runs the watch until the duration ends or `stop` resolves (Ctrl-C); returns the report.
pub async fn run(
    config: Config,
    opts: WatchOptions,
    clock: Arc<dyn Clock>,
    stop: impl Future<Output = ()>,
) -> WatchReport {
    let stats: Arc<Mutex<AllStats>> = Arc::new(Mutex::new(AllStats::new()));
    let live = opts.live;
    let observer: Observer = {
        let stats = stats.clone();
        Arc::new(move |r, _previous| {
            let mut all = lock(&stats);
            let e = all
                .entry(r.target.clone())
                .or_insert_with(|| EdgeStats::new(r));
            let changed = e.last != Some(r.reason);
            e.record(r);
            if changed && !live {
                let line = match r.reason {
                    None => format!("{} PASS {}", r.at, r.target),
                    Some(reason) => format!(
                        "{} FAIL {} {}/{}: {}",
                        r.at,
                        r.target,
                        reason.stage(),
                        reason,
                        r.detail.as_deref().unwrap_or("")
                    ),
                };
                println!("{line}");
            }
        })
    };
    let resolver = Resolver::new(&config.agent.dns_servers);
    let prober = Prober::new(resolver.clone(), clock.clone());
    let creds = Credentials::load(config.identity.as_ref(), prober.provider(), clock.now());
    let (creds_tx, creds_rx) = watch::channel(Arc::new(creds));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // A watch outlives an SVID rotation: follow the Workload API like the agent does.
    if let Some(wa) = config
        .identity
        .as_ref()
        .and_then(|c| c.workload_api.clone())
    {
        let mut events = crate::identity::workload::spawn_follow(
            wa,
            prober.provider().clone(),
            clock.clone(),
            creds_tx,
            shutdown_rx.clone(),
        )
        .await;
        tokio::spawn(async move {
            use crate::identity::workload::Event;
            while let Some(event) = events.recv().await {
                if let Event::Rejected(problem) | Event::Lost(problem) = event {
                    tracing::warn!(problem = %problem, "Workload API update failed");
                }
            }
        });
    }
    let edges = EdgeSet::new(EdgeSetOptions {
        source: config.agent.source.clone(),
        prober,
        creds: creds_rx,
        max_concurrency: config.agent.max_concurrency,
        windows: config.agent.windows.clone(),
        jitter: config.agent.jitter,
        metrics: None,
        shutdown: shutdown_rx.clone(),
        observer: Some(observer),
        log_transitions: false,
    });
    for t in &config.targets {
        edges.upsert(t.clone(), true);
    }
    for d in &config.discover {
        tokio::spawn(discover::run(
            d.clone(),
            edges.clone(),
            resolver.clone(),
            shutdown_rx.clone(),
            true,
            None,
        ));
    }
    let started_wall = clock.now();
    let started = Instant::now();
    let end = started + opts.duration;
    let summary_every = (opts.duration / 10).clamp(Duration::from_secs(5), Duration::from_secs(60));
    let mut next_summary = started + summary_every;
    let mut screen = live.then(screen::Screen::enter);
    tokio::pin!(stop);
    let cut_short = loop {
        let tick = if live {
            Duration::from_secs(1)
        } else {
            next_summary.saturating_duration_since(Instant::now())
        };
        let wake = (Instant::now() + tick).min(end);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = &mut stop => break true,
        }
        if let Some(screen) = &mut screen {
            let size = screen::size();
            let lines = frame(
                &lock(&stats),
                started.elapsed(),
                opts.duration,
                opts.min_success_ratio,
                edges.len(),
                size,
            );
            screen.draw(&lines, size.0);
        } else if Instant::now() >= next_summary && Instant::now() < end {
            println!(
                "{}",
                summary_line(
                    &lock(&stats),
                    started,
                    opts.duration,
                    opts.min_success_ratio,
                    edges.len()
                )
            );
            next_summary += summary_every;
        }
        if Instant::now() >= end {
            break false;
        }
    };
    // Let probes in flight finish (bounded by their timeout) so every probe made counts.
    let _ = shutdown_tx.send(true);
    let max_timeout = config
        .targets
        .iter()
        .map(|t| t.timeout)
        .max()
        .unwrap_or_default();
    edges.drain(max_timeout + Duration::from_secs(1)).await;
    // Back to the normal screen; the caller prints the final report there.
    drop(screen);
    let all = std::mem::take(&mut *lock(&stats));
    build_report(
        all,
        &config,
        &opts,
        started_wall,
        clock.now(),
        started.elapsed(),
        cut_short,
    )
}

fn build_report(
    all: AllStats,
    config: &Config,
    opts: &WatchOptions,
    started: SystemTime,
    ended: SystemTime,
    watched: Duration,
    cut_short: bool,
) -> WatchReport {
    let mut why = Vec::new();
    let mut edges = Vec::new();
    // Configured edges that never completed a probe are at fault too.
    let mut all = all;
    for t in &config.targets {
        all.entry(t.name.clone()).or_insert_with(|| EdgeStats {
            target: t.name.clone(),
            address: t.address.to_string(),
            mode: t.mode,
            expect: t.expect,
            probes: 0,
            passes: 0,
            failures: Vec::new(),
            certificates: Vec::new(),
            last: None,
        });
    }
    let mut strict = Vec::new();
    for (_, stats) in all {
        let fault = stats.gate_failure(opts.min_success_ratio);
        if let Some(f) = &fault {
            // STRICT violations are the critical finding of a migration: list them first.
            if stats.strict_violations() > 0 {
                strict.push(f.clone());
            } else {
                why.push(f.clone());
            }
        }
        edges.push(EdgeReport {
            ratio: stats.ratio(),
            held: fault.is_none(),
            stats,
        });
    }
    strict.append(&mut why);
    let mut why = strict;
    if cut_short {
        why.push(format!(
            "the watch was cut short after {} of {}",
            humantime::format_duration(Duration::from_secs(watched.as_secs())),
            humantime::format_duration(opts.duration)
        ));
    }
    WatchReport {
        verdict: if why.is_empty() { "pass" } else { "fail" },
        why,
        source: config.agent.source.clone(),
        config: opts.config_name.clone(),
        min_success_ratio: opts.min_success_ratio,
        started: rfc3339(started),
        ended: rfc3339(ended),
        planned_seconds: opts.duration.as_secs_f64(),
        watched_seconds: watched.as_secs_f64(),
        cut_short,
        edges,
        runbook_base_url: config.agent.runbook_base_url.clone(),
    }
}

fn summary_line(
    all: &AllStats,
    started: Instant,
    duration: Duration,
    min: f64,
    n: usize,
) -> String {
    let failing: Vec<&EdgeStats> = all
        .values()
        .filter(|e| e.gate_failure(min).is_some())
        .collect();
    let lowest = all
        .values()
        .filter_map(|e| e.ratio().map(|r| (r, &e.target)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    format!(
        "{} [{} / {}] {n} edges, {} under the gate{}",
        rfc3339(SystemTime::now()),
        mmss(started.elapsed()),
        mmss(duration),
        failing.len(),
        lowest
            .map(|(r, t)| format!("; lowest ratio {} ({t})", fmt_ratio(r)))
            .unwrap_or_default()
    )
}

/// One frame of the live view for a `width`×`height` terminal: the header always
/// shows, then the worst edges first, as many as fit, and "… N more" for the rest.
/// Never more than `height - 1` lines, so drawing it never scrolls.
fn frame(
    all: &AllStats,
    elapsed: Duration,
    duration: Duration,
    min: f64,
    n: usize,
    (width, height): (usize, usize),
) -> Vec<String> {
    let mut out = Vec::new();
    let elapsed = elapsed.min(duration);
    let frac = elapsed.as_secs_f64() / duration.as_secs_f64().max(1e-9);
    let bar_len = 12usize;
    let filled = ((frac * bar_len as f64) as usize).min(bar_len);
    out.push(format!(
        "watch [{}{}] {} / {}  gate ≥ {min}  {n} edges  Ctrl-C stops early",
        "#".repeat(filled),
        "-".repeat(bar_len - filled),
        mmss(elapsed),
        mmss(duration)
    ));
    let mut rows: Vec<&EdgeStats> = all.values().collect();
    rows.sort_by(|a, b| {
        let key = |e: &EdgeStats| (e.gate_failure(min).is_none(), e.ratio().unwrap_or(1.0));
        key(a)
            .partial_cmp(&key(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let under = rows
        .iter()
        .filter(|e| e.gate_failure(min).is_some())
        .count();
    out.push(format!(
        "{under} under the gate, {} holding, {} not probed yet",
        rows.len() - under,
        n.saturating_sub(rows.len())
    ));
    let budget = height.saturating_sub(1).max(4);
    // Header lines so far, the column titles, and a "more" line if it comes to that.
    let room = budget.saturating_sub(out.len() + 1);
    let shown = if rows.len() <= room {
        rows.len()
    } else {
        room.saturating_sub(1)
    };
    let hidden = rows.len() - shown;
    rows.truncate(shown);
    // The name column gets what the other columns leave.
    let name_width = rows
        .iter()
        .map(|e| e.target.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, width.saturating_sub(2 + 2 + 8 + 2 + 6 + 2 + 12).max(12));
    out.push(format!(
        "  {:<name_width$}  {:>8}  {:>6}  LAST",
        "EDGE", "RATIO", "PROBES"
    ));
    for e in rows {
        let marker = if e.gate_failure(min).is_some() {
            "!"
        } else {
            " "
        };
        let last = match e.last {
            Some(Some(r)) => format!("{}/{}", r.stage(), r),
            Some(None) => "pass".into(),
            None => "-".into(),
        };
        out.push(format!(
            "{marker} {:<name_width$}  {:>8}  {:>6}  {last}",
            screen::fit(&e.target, name_width),
            e.ratio().map(fmt_ratio).unwrap_or_else(|| "-".into()),
            e.probes
        ));
    }
    if hidden > 0 {
        out.push(format!(
            "  … {hidden} more (the final report lists every edge)"
        ));
    }
    out
}

fn mmss(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ProbeReport, Timings};

    fn stats(n: usize) -> AllStats {
        let mut all = AllStats::new();
        for i in 0..n {
            let r = ProbeReport {
                source: "s".into(),
                target: format!("ns{i}/a-rather-long-service-name-{i}"),
                address: "127.0.0.1:1".into(),
                mode: crate::config::Mode::Mtls,
                expect: crate::config::Expect::Success,
                ok: i % 2 == 0,
                stage: None,
                reason: (i % 2 == 1).then_some(crate::classify::Reason::ConnectionRefused),
                detail: None,
                hint: None,
                timings_ms: Timings::default(),
                tls: None,
                peer: None,
                http: None,
                far_side: None,
                grpc: None,
                at: "2026-01-01T00:00:00Z".into(),
            };
            let mut e = EdgeStats::new(&r);
            e.record(&r);
            all.insert(r.target.clone(), e);
        }
        all
    }

    #[test]
    fn a_frame_fits_the_terminal_and_keeps_its_header() {
        let all = stats(32);
        let d = Duration::from_secs(60);
        for (w, h) in [(80, 24), (200, 50), (40, 10), (80, 5)] {
            let lines = frame(&all, Duration::from_secs(5), d, 0.999, 32, (w, h));
            assert!(lines.len() < h.max(5), "{w}x{h}: {} lines", lines.len());
            assert!(lines[0].starts_with("watch ["), "{}", lines[0]);
            assert!(lines[1].contains("16 under the gate"), "{}", lines[1]);
            if h < 36 {
                let last = lines.last().unwrap();
                assert!(last.contains("more (the final report"), "{w}x{h}: {last}");
            }
            // The worst edges come first.
            if h >= 10 {
                assert!(lines[3].starts_with('!'), "{}", lines[3]);
            }
        }
        let lines = frame(&all, Duration::ZERO, d, 0.999, 32, (200, 50));
        assert_eq!(lines.len(), 3 + 32);
    }
}
