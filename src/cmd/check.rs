//! `mtls-prober check`: validate the config and the identity files (or fetch once from
//! the SPIFFE Workload API), print the effective config. Never contacts a target.
//!
//! Problems come first, each naming the config key that named the file
//! (`identity.cert`), and the exit code is 2. Only a valid config (or `--verbose`)
//! prints the effective configuration, and everything on stdout is TOML (the status
//! lines are comments), so `check > effective.toml` can be fed back with `--config`.

use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use super::CmdError;
use crate::classify::cert::human;
use crate::cli::CheckArgs;
use crate::config::{
    self, Config, Env, IdentityConfig, Mode, TrustSource, WorkloadApiConfig, effective,
};
use crate::identity::load::{IdentityError, rfc3339};
use crate::identity::{load_parts, workload};
use crate::tls::trust::AnchorCache;

/// Runs `check`.
pub async fn run(args: &CheckArgs, env: &Env) -> Result<ExitCode, CmdError> {
    let config = config::load(&args.config, env)?;
    let file = args.config.display().to_string();
    let mut report = Report::default();
    match config
        .identity
        .as_ref()
        .and_then(|i| i.workload_api.as_ref())
    {
        Some(wa) => check_workload_api(&config, wa, &mut report).await,
        None => check_identity(&config, &file, &mut report),
    }
    check_target_cas(&config, &file, &mut report);
    sources(&config, &args.config, &mut report);
    if config.targets.is_empty() && config.discover.is_empty() {
        report
            .lines
            .push("! no [[target]] and no [[discover]]: the agent will only serve".into());
    }
    let ok = report.problems.is_empty();
    for p in &report.problems {
        eprintln!("error: {p}");
    }
    if ok {
        let companions = config
            .targets
            .iter()
            .filter(|t| matches!(t.origin, config::Origin::StrictCompanion { .. }))
            .count();
        println!(
            "# ✓ config {file}: valid: {} target(s) ({companions} verify_strict companion(s)), \
             {} discover(s)",
            config.targets.len(),
            config.discover.len()
        );
    } else {
        eprintln!(
            "{file}: {} problem(s), the config cannot be used as it is{}",
            report.problems.len(),
            if args.verbose {
                ""
            } else {
                " (--verbose also prints the effective configuration)"
            }
        );
    }
    if ok || args.verbose {
        for line in &report.lines {
            println!("# {line}");
        }
        println!("#");
        println!(
            "# effective configuration: defaults applied; save it and pass it back with --config"
        );
        println!("{}", effective::render(&config));
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// What `check` found: status lines (stdout, as TOML comments) and problems (stderr).
#[derive(Default)]
struct Report {
    lines: Vec<String>,
    problems: Vec<String>,
}

/// `file: identity.cert: /path: problem`: the key that named the file comes first, as
/// in every config error.
fn keyed(file: &str, id: &IdentityConfig, e: &IdentityError) -> String {
    let key = if e.file == id.cert {
        "identity.cert"
    } else if e.file == id.key {
        "identity.key"
    } else if e.file == id.ca {
        "identity.ca"
    } else {
        return format!("{file}: [identity]: {e}");
    };
    format!("{file}: {key}: {e}")
}

/// `source = "workload-api"`: fetches one X.509 context (SPEC §13) and reports the
/// SVID's SPIFFE ID, its `not_after` and the bundles' trust domains.
async fn check_workload_api(config: &Config, wa: &WorkloadApiConfig, report: &mut Report) {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let now = SystemTime::now();
    let fetched = match workload::fetch_once(wa, &provider, now).await {
        Ok(f) => f,
        Err(problem) => {
            report.problems.push(problem);
            return;
        }
    };
    let c = &fetched.client;
    report.lines.push(format!(
        "✓ Workload API {}: X.509 SVID parsed, key matches, chain reaches its trust \
         domain's bundle{}",
        wa.socket,
        wa.svid_hint
            .as_deref()
            .map(|h| format!(" (svid_hint {h:?})"))
            .unwrap_or_default()
    ));
    let left = c.leaf.not_after.duration_since(now).unwrap_or_default();
    report.lines.push(format!(
        "✓ valid {} .. {} ({} left), serial {}",
        rfc3339(c.leaf.not_before),
        rfc3339(c.leaf.not_after),
        human(left),
        c.leaf.serial
    ));
    match &c.spiffe_id {
        Some(sid) => report.lines.push(format!("✓ SPIFFE ID {sid}")),
        None => report.problems.push(format!(
            "Workload API {}: the SVID has no SPIFFE ID",
            wa.socket
        )),
    }
    report
        .lines
        .push("✓ trust bundles (each peer is verified with its own trust domain's):".into());
    for td in fetched.bundle.trust_domains() {
        let (_, subjects) = fetched.bundle.scope_for(Some(td));
        report
            .lines
            .push(format!("    {td}: {} root(s)", subjects.len()));
    }
    if let (Some(sid), Some(id)) = (&c.spiffe_id, &config.identity)
        && let Some(td) = &id.trust_domain
    {
        let ours = sid.trust_domain();
        if ours != td.as_str() && !id.trust_domain_aliases.iter().any(|a| a.as_str() == ours) {
            report.problems.push(format!(
                "Workload API {}: our SPIFFE ID {sid} is not in identity.trust_domain {td} \
                 or its aliases",
                wa.socket
            ));
        }
    }
}

fn check_identity(config: &Config, file: &str, report: &mut Report) {
    let Some(id) = &config.identity else {
        report.lines.push(
            "· identity: none configured (tls targets with their own ca, and plaintext)".into(),
        );
        return;
    };
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let now = SystemTime::now();
    let (bundle, client) = load_parts(id, &provider, now);
    match &bundle {
        Ok(b) => {
            report.lines.push(format!(
                "✓ trust bundle {}: {} root(s)",
                id.ca.display(),
                b.roots().len()
            ));
            for r in b.roots() {
                report
                    .lines
                    .push(format!("    {} sha256 {}", r.subject, r.sha256));
            }
        }
        Err(e) => report.problems.push(keyed(file, id, e)),
    }
    match &client {
        Ok(c) => {
            report.lines.push(format!(
                "✓ certificate {}: parsed, key {} matches, chain reaches the bundle",
                id.cert.display(),
                id.key.display()
            ));
            let left = c.leaf.not_after.duration_since(now).unwrap_or_default();
            report.lines.push(format!(
                "✓ valid {} .. {} ({} left), serial {}",
                rfc3339(c.leaf.not_before),
                rfc3339(c.leaf.not_after),
                human(left),
                c.leaf.serial
            ));
            match (&c.spiffe_id, &id.trust_domain) {
                (Some(sid), Some(td))
                    if sid.trust_domain() != td.as_str()
                        && !id
                            .trust_domain_aliases
                            .iter()
                            .any(|a| a.as_str() == sid.trust_domain()) =>
                {
                    report.problems.push(format!(
                        "{file}: identity.cert: {}: our SPIFFE ID {sid} is not in \
                         identity.trust_domain {td} or its aliases",
                        id.cert.display()
                    ));
                }
                (Some(sid), _) => report.lines.push(format!("✓ SPIFFE ID {sid}")),
                (None, _) => {
                    let needs = config.targets.iter().any(|t| t.mode == Mode::Mtls);
                    report.lines.push(format!(
                        "{} no SPIFFE ID in our certificate (DNS SANs: {}){}",
                        if needs { "!" } else { "·" },
                        c.leaf.dns_sans.join(", "),
                        if needs {
                            ": mesh peers that authorize by SPIFFE ID will refuse it"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
        Err(e) if bundle.is_ok() => report.problems.push(keyed(file, id, e)),
        Err(_) => {}
    }
}

/// Where each target came from: the config file or a file pulled in by `include`.
fn sources(config: &Config, path: &Path, report: &mut Report) {
    if config.agent.include.is_empty() {
        return;
    }
    let included: usize = config.included.iter().map(|f| f.targets.len()).sum();
    let own = config
        .targets
        .iter()
        .filter(|t| t.origin == config::Origin::Configured)
        .count()
        .saturating_sub(included);
    report
        .lines
        .push(format!("· targets from {}: {own}", path.display()));
    for pattern in &config.agent.include {
        report.lines.push(format!("· include {pattern:?}"));
    }
    if config.included.is_empty() {
        report.lines.push("    (no file matches yet)".into());
    }
    for file in &config.included {
        report.lines.push(format!(
            "    {}: {} target(s): {}",
            file.path.display(),
            file.targets.len(),
            file.targets.join(", ")
        ));
    }
}

/// Every target's own `ca` must load (each file once).
fn check_target_cas(config: &Config, file: &str, report: &mut Report) {
    let cache = AnchorCache::default();
    let mut seen: Vec<&TrustSource> = Vec::new();
    let all = config
        .targets
        .iter()
        .map(|t| &**t)
        .chain(config.discover.iter().map(|d| &d.template));
    for t in all {
        let Some(src) = &t.ca else { continue };
        if seen.contains(&src) {
            continue;
        }
        seen.push(src);
        match cache.bundle(src) {
            Ok(b) => report.lines.push(format!(
                "✓ ca of target {:?} ({}): {} root(s)",
                t.name,
                display(src),
                b.roots().len()
            )),
            Err(e) => report
                .problems
                .push(format!("{file}: ca of target {:?}: {e}", t.name)),
        }
    }
}

fn display(src: &TrustSource) -> String {
    match src {
        TrustSource::System => crate::tls::trust::SYSTEM_ROOTS.to_owned(),
        TrustSource::File(p) => Path::new(p).display().to_string(),
    }
}
