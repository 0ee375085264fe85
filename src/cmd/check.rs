//! `mtls-prober check`: validate the config and the identity files (or fetch once from
//! the SPIFFE Workload API), print the effective config. Never contacts a target.

use std::process::ExitCode;
use std::time::SystemTime;

use super::CmdError;
use crate::classify::cert::human;
use crate::cli::CheckArgs;
use crate::config::{self, Config, Env, Mode, WorkloadApiConfig};
use crate::identity::load::rfc3339;
use crate::identity::{load_parts, workload};

/// Runs `check`.
pub async fn run(args: &CheckArgs, env: &Env) -> Result<ExitCode, CmdError> {
    let config = config::load(&args.config, env)?;
    println!("config {}: valid", args.config.display());
    let mut problems = Vec::new();
    match config
        .identity
        .as_ref()
        .and_then(|i| i.workload_api.as_ref())
    {
        Some(wa) => check_workload_api(&config, wa, &mut problems).await,
        None => check_identity(&config, &mut problems),
    }
    if config.targets.is_empty() && config.discover.is_empty() {
        println!("warning: no [[target]] and no [[discover]]: the agent will only serve");
    }
    println!();
    println!("# effective configuration (defaults applied, verify_strict companions expanded)");
    match toml::to_string(&config) {
        Ok(text) => println!("{text}"),
        Err(e) => println!("(cannot render: {e})"),
    }
    if problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            eprintln!("error: {p}");
        }
        Ok(ExitCode::from(2))
    }
}

/// `source = "workload-api"`: fetches one X.509 context (SPEC §13) and prints the
/// SVID's SPIFFE ID, its `not_after` and the bundles' trust domains.
async fn check_workload_api(config: &Config, wa: &WorkloadApiConfig, problems: &mut Vec<String>) {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let now = SystemTime::now();
    let fetched = match workload::fetch_once(wa, &provider, now).await {
        Ok(f) => f,
        Err(problem) => {
            problems.push(problem);
            return;
        }
    };
    let c = &fetched.client;
    println!(
        "✓ Workload API {}: X.509 SVID parsed, key matches, chain reaches its trust \
         domain's bundle{}",
        wa.socket,
        wa.svid_hint
            .as_deref()
            .map(|h| format!(" (svid_hint {h:?})"))
            .unwrap_or_default()
    );
    let left = c.leaf.not_after.duration_since(now).unwrap_or_default();
    println!(
        "✓ valid {} .. {} ({} left), serial {}",
        rfc3339(c.leaf.not_before),
        rfc3339(c.leaf.not_after),
        human(left),
        c.leaf.serial
    );
    match &c.spiffe_id {
        Some(sid) => println!("✓ SPIFFE ID {sid}"),
        None => problems.push(format!(
            "Workload API {}: the SVID has no SPIFFE ID",
            wa.socket
        )),
    }
    println!("✓ trust bundles (each peer is verified with its own trust domain's):");
    for td in fetched.bundle.trust_domains() {
        let (_, subjects) = fetched.bundle.scope_for(Some(td));
        println!("    {td}: {} root(s)", subjects.len());
    }
    if let (Some(sid), Some(id)) = (&c.spiffe_id, &config.identity)
        && let Some(td) = &id.trust_domain
    {
        let ours = sid.trust_domain();
        if ours != td.as_str() && !id.trust_domain_aliases.iter().any(|a| a.as_str() == ours) {
            problems.push(format!(
                "Workload API {}: our SPIFFE ID {sid} is not in [identity].trust_domain {td} \
                 or its aliases",
                wa.socket
            ));
        }
    }
}

fn check_identity(config: &Config, problems: &mut Vec<String>) {
    let Some(id) = &config.identity else {
        println!("identity: none configured (only tls with --insecure-skip-verify and plaintext)");
        return;
    };
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let now = SystemTime::now();
    let (bundle, client) = load_parts(id, &provider, now);
    match &bundle {
        Ok(b) => {
            println!(
                "✓ trust bundle {}: {} root(s)",
                id.ca.display(),
                b.roots().len()
            );
            for r in b.roots() {
                println!("    {} sha256 {}", r.subject, r.sha256);
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    match &client {
        Ok(c) => {
            println!(
                "✓ certificate {}: parsed, key {} matches, chain reaches the bundle",
                id.cert.display(),
                id.key.display()
            );
            let left = c.leaf.not_after.duration_since(now).unwrap_or_default();
            println!(
                "✓ valid {} .. {} ({} left), serial {}",
                rfc3339(c.leaf.not_before),
                rfc3339(c.leaf.not_after),
                human(left),
                c.leaf.serial
            );
            match (&c.spiffe_id, &id.trust_domain) {
                (Some(sid), Some(td))
                    if sid.trust_domain() != td.as_str()
                        && !id
                            .trust_domain_aliases
                            .iter()
                            .any(|a| a.as_str() == sid.trust_domain()) =>
                {
                    problems.push(format!(
                        "{}: our SPIFFE ID {sid} is not in [identity].trust_domain {td} or its aliases",
                        id.cert.display()
                    ));
                }
                (Some(sid), _) => println!("✓ SPIFFE ID {sid}"),
                (None, _) => {
                    let needs = config.targets.iter().any(|t| t.mode == Mode::Mtls);
                    println!(
                        "{} no SPIFFE ID in our certificate (DNS SANs: {}){}",
                        if needs { "!" } else { "·" },
                        c.leaf.dns_sans.join(", "),
                        if needs {
                            ": mesh peers that authorize by SPIFFE ID will refuse it"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
        Err(e) if bundle.is_ok() => problems.push(e.to_string()),
        Err(_) => {}
    }
}
