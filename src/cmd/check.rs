//! `mtls-prober check`: validate the config and the identity files, print the effective
//! config. Never contacts a target.

use std::process::ExitCode;
use std::time::SystemTime;

use super::CmdError;
use crate::classify::cert::human;
use crate::cli::CheckArgs;
use crate::config::{self, Config, Env, Mode};
use crate::identity::load::rfc3339;
use crate::identity::load_parts;

/// Runs `check`.
pub fn run(args: &CheckArgs, env: &Env) -> Result<ExitCode, CmdError> {
    let config = config::load(&args.config, env)?;
    println!("config {}: valid", args.config.display());
    let mut problems = Vec::new();
    check_identity(&config, &mut problems);
    print_sources(&config, &args.config);
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

/// Where each target came from: the config file or a file pulled in by `include`.
fn print_sources(config: &Config, path: &std::path::Path) {
    if config.agent.include.is_empty() {
        return;
    }
    let included: usize = config.included.iter().map(|f| f.targets.len()).sum();
    let own = config
        .targets
        .iter()
        .filter(|t| t.origin == config::Origin::Configured)
        .count()
        - included;
    println!("targets from {}: {own}", path.display());
    for pattern in &config.agent.include {
        println!("include {pattern:?}");
    }
    if config.included.is_empty() {
        println!("    (no file matches yet)");
    }
    for file in &config.included {
        println!(
            "    {}: {} target(s): {}",
            file.path.display(),
            file.targets.len(),
            file.targets.join(", ")
        );
    }
}
