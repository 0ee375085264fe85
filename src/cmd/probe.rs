//! `mtls-prober probe`: run targets once and print a per-layer report.
//!
//! The ad-hoc form (`probe ADDRESS --mode … --spiffe-id …`) is turned into a one-target
//! config and validated by the same loader as `probes.toml`, so both forms accept and
//! reject exactly the same values.

use std::process::ExitCode;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use toml::{Table, Value};

use super::CmdError;
use crate::cli::{ModeArg, Output, ProbeArgs};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Config, Env, PeerExpectation, Target};
use crate::identity::Credentials;
use crate::probe::{Prober, Resolver};
use crate::report::{ProbeReport, TextOptions};

/// Runs `probe`.
pub async fn run(args: ProbeArgs, env: &Env) -> Result<ExitCode, CmdError> {
    let (config, insecure) = match &args.address {
        Some(address) => (
            adhoc_config(address, &args, env)?,
            args.insecure_skip_verify,
        ),
        None => {
            let path = args
                .config
                .as_ref()
                .ok_or_else(|| CmdError("give an ADDRESS or --config FILE".into()))?;
            (config::load(path, env)?, false)
        }
    };
    let resolver = Resolver::new(&config.agent.dns_servers);
    let discovered = discovered_edges(&config, &resolver).await;
    let mut targets: Vec<_> = if args.target.is_empty() {
        config
            .targets
            .iter()
            .map(|t| Target::clone(t))
            .chain(discovered)
            .collect()
    } else {
        let mut picked = Vec::new();
        for name in &args.target {
            let found: Vec<_> = config
                .targets
                .iter()
                .map(|t| &**t)
                .chain(discovered.iter())
                .filter(|t| {
                    &t.name == name
                        || t.name.starts_with(&format!("{name}/"))
                            && config.discover.iter().any(|d| &d.name == name)
                })
                .cloned()
                .collect();
            if found.is_empty() {
                let names: Vec<_> = config.targets.iter().map(|t| t.name.as_str()).collect();
                return Err(CmdError(format!(
                    "{}: no target named {name:?} (targets: {})",
                    config.origin.display(),
                    names.join(", ")
                )));
            }
            picked.extend(found);
        }
        picked
    };
    if insecure {
        for t in &mut targets {
            t.peer = PeerExpectation::Insecure;
        }
    }
    if targets.is_empty() {
        return Err(CmdError(format!(
            "{}: no [[target]] to probe",
            config.origin.display()
        )));
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let prober = Prober::new(resolver, clock.clone());
    let creds = Credentials::fetch(config.identity.as_ref(), prober.provider(), clock.now()).await;
    let reports = probe_all(&prober, &creds, targets, &config).await;
    let mut all_ok = true;
    let text = TextOptions {
        unverified: insecure,
        runbook_base_url: config.agent.runbook_base_url.clone(),
    };
    for report in &reports {
        all_ok &= report.ok;
        match args.output {
            Output::Json => match serde_json::to_string(report) {
                Ok(line) => println!("{line}"),
                Err(e) => return Err(CmdError(format!("cannot encode the report: {e}"))),
            },
            Output::Text => println!("{}", report.to_text_with(&text)),
        }
    }
    if args.output == Output::Text && args.address.is_none() {
        println!("{}", summary_line(&reports));
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The last line of `probe --config`: counts, then each failing edge with its cause.
fn summary_line(reports: &[ProbeReport]) -> String {
    let failed: Vec<&ProbeReport> = reports.iter().filter(|r| !r.ok).collect();
    let mut line = format!(
        "{} edge(s) probed: {} passed, {} failed",
        reports.len(),
        reports.len() - failed.len(),
        failed.len()
    );
    const NAMED: usize = 10;
    for (i, r) in failed.iter().take(NAMED).enumerate() {
        line.push_str(if i == 0 { ": " } else { ", " });
        let cause = r
            .reason
            .map(|x| format!("{}/{x}", x.stage()))
            .unwrap_or_else(|| "failed".into());
        line.push_str(&format!("{} ({cause})", r.target));
    }
    if failed.len() > NAMED {
        line.push_str(&format!(", and {} more", failed.len() - NAMED));
    }
    line
}

/// The edges of every `[[discover]]`, resolved once: one per address, or, when the
/// name does not resolve, one edge named after the discover whose probe fails at the
/// resolve stage (so the failure is reported like any other).
async fn discovered_edges(config: &Config, resolver: &Resolver) -> Vec<Target> {
    let mut out = Vec::new();
    for d in &config.discover {
        match resolver.lookup(&d.dns).await {
            Ok(ips) => out.extend(ips.into_iter().map(|ip| d.edge(ip))),
            Err(_) => {
                let mut t = d.template.clone();
                t.name.clone_from(&d.name);
                out.push(t);
            }
        }
    }
    out
}

/// Probes every target once, at most `max_concurrency` at a time; reports in order.
async fn probe_all(
    prober: &Prober,
    creds: &Credentials,
    targets: Vec<Target>,
    config: &Config,
) -> Vec<ProbeReport> {
    let limit = Arc::new(Semaphore::new(config.agent.max_concurrency));
    let mut set = JoinSet::new();
    let n = targets.len();
    for (i, target) in targets.into_iter().enumerate() {
        let prepared = prober.prepare(Arc::new(target), creds);
        let prober = prober.clone();
        let limit = limit.clone();
        let source = config.agent.source.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (i, prober.run(&prepared, &source).await)
        });
    }
    let mut out: Vec<Option<ProbeReport>> = vec![None; n];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, report)) = joined {
            out[i] = Some(report);
        }
    }
    out.into_iter().flatten().collect()
}

/// Builds a one-target config from the ad-hoc flags and validates it like a file.
fn adhoc_config(address: &str, args: &ProbeArgs, env: &Env) -> Result<Config, CmdError> {
    let mode = match args.mode {
        Some(m) => m,
        None if args.cert.is_some() => ModeArg::Mtls,
        None => ModeArg::Tls,
    };
    let mode_str = match mode {
        ModeArg::Mtls => "mtls",
        ModeArg::Tls => "tls",
        ModeArg::Plaintext => "plaintext",
    };
    if mode == ModeArg::Mtls && args.cert.is_none() {
        return Err(CmdError(
            "--mode mtls needs our identity: --cert FILE --key FILE (and --ca FILE)".into(),
        ));
    }
    if mode != ModeArg::Plaintext && args.ca.is_none() && !args.insecure_skip_verify {
        return Err(CmdError(format!(
            "--mode {mode_str} verifies the peer: give --ca FILE (the trust bundle), or \
             --insecure-skip-verify to only look at it"
        )));
    }
    let mut root = Table::new();
    let mut agent = Table::new();
    agent.insert(
        "timeout".into(),
        Value::String(humantime::format_duration(args.timeout).to_string()),
    );
    agent.insert(
        "interval".into(),
        Value::String(humantime::format_duration(args.timeout).to_string()),
    );
    root.insert("agent".into(), Value::Table(agent));
    // An insecure tls probe needs no bundle, but the config requires [identity] for
    // tls targets; placeholder paths load as "unavailable" and are never used.
    if args.cert.is_some() || args.ca.is_some() || mode != ModeArg::Plaintext {
        let mut id = Table::new();
        let path = |p: &Option<std::path::PathBuf>| {
            Value::String(
                p.as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "/nonexistent/not-given".into()),
            )
        };
        id.insert("cert".into(), path(&args.cert));
        id.insert("key".into(), path(&args.key));
        id.insert("ca".into(), path(&args.ca));
        root.insert("identity".into(), Value::Table(id));
    }
    let mut t = Table::new();
    t.insert("name".into(), Value::String(address.to_owned()));
    t.insert("address".into(), Value::String(address.to_owned()));
    t.insert("mode".into(), Value::String(mode_str.into()));
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            t.insert(k.into(), Value::String(v.clone()));
        }
    };
    put("spiffe_id", &args.spiffe_id);
    put("trust_domain", &args.trust_domain);
    put("server_name", &args.server_name);
    if let Some(path) = &args.http_path {
        let mut http = Table::new();
        http.insert("path".into(), Value::String(path.clone()));
        t.insert("http".into(), Value::Table(http));
    }
    if let Some(service) = &args.grpc_service {
        let mut grpc = Table::new();
        grpc.insert("service".into(), Value::String(service.clone()));
        t.insert("grpc".into(), Value::Table(grpc));
    }
    root.insert("target".into(), Value::Array(vec![Value::Table(t)]));
    let text = toml::to_string(&root).map_err(|e| CmdError(format!("internal: {e}")))?;
    config::load_str(&text, "command line", env).map_err(|e| {
        // Name the flag, not the synthetic key.
        let flag = e
            .key
            .as_deref()
            .map(|k| {
                let k = k.rsplit('.').next().unwrap_or(k);
                match k {
                    "address" | "name" => "ADDRESS".to_owned(),
                    "path" => "--http-path".to_owned(),
                    "service" => "--grpc-service".to_owned(),
                    other => format!("--{}", other.replace('_', "-")),
                }
            })
            .unwrap_or_else(|| "command line".into());
        CmdError(format!("{flag}: {}", e.problem))
    })
}
