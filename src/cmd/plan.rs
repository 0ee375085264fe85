//! `mtls-prober plan`: read the objects, plan, print. Exit 0 planned, 1 findings with
//! `--fail-on-findings`, 2 unreadable input or bad flags.

use std::process::ExitCode;

use super::CmdError;
use crate::cli::{MeshArg, PlanArgs, PlanOutput};
use crate::config::{self, Env};
use crate::identity::spiffe::SpiffeId;
use crate::plan::{self, Assume, Mesh, Options, render};

/// The source identity when neither `--source-identity` nor `--config` gives one.
pub const DEFAULT_SOURCE: &str = "spiffe://cluster.local/ns/monitoring/sa/mtls-prober";

/// Runs `plan`.
pub fn run(args: &PlanArgs, env: &Env) -> Result<ExitCode, CmdError> {
    let opts = options(args, env)?;
    let loaded = plan::load::load_paths(&args.files, std::io::stdin().lock())
        .map_err(|e| CmdError(e.to_string()))?;
    let planned = plan::plan(&loaded, &opts).map_err(CmdError)?;
    if args.explain {
        print!("{}", render::explain(&planned));
    } else {
        match args.output {
            PlanOutput::Toml => print!("{}", render::toml(&planned)),
            PlanOutput::Json => println!("{}", render::json(&planned)),
        }
        if !planned.findings.is_empty() {
            eprintln!(
                "plan: {} finding(s); run with --explain to see them",
                planned.findings.len()
            );
        }
    }
    if args.fail_on_findings && !planned.findings.is_empty() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The command line as plan [`Options`].
pub fn options(args: &PlanArgs, env: &Env) -> Result<Options, CmdError> {
    let source = match (&args.source_identity, &args.config) {
        (Some(s), _) => s.clone(),
        (None, Some(path)) => config_identity(path, env)?,
        (None, None) => DEFAULT_SOURCE.to_owned(),
    };
    let source: SpiffeId = source
        .parse()
        .map_err(|e| CmdError(format!("--source-identity {source:?}: {e}")))?;
    if !source.path().starts_with("/ns/") || source.path().split('/').count() != 5 {
        return Err(CmdError(format!(
            "--source-identity {source}: expected spiffe://<trust domain>/ns/<namespace>/sa/<service account>"
        )));
    }
    let mut opts = Options::new(source);
    opts.mesh = args.mesh.map(|m| match m {
        MeshArg::Istio => Mesh::Istio,
        MeshArg::Linkerd => Mesh::Linkerd,
    });
    opts.trust_domain = args
        .trust_domain
        .parse::<crate::identity::spiffe::TrustDomain>()
        .map_err(|e| CmdError(format!("--trust-domain {:?}: {e}", args.trust_domain)))?
        .to_string();
    opts.namespaces.clone_from(&args.namespaces);
    for a in &args.assume {
        let (ns, what) = a.split_once('=').ok_or_else(|| {
            CmdError(format!(
                "--assume {a:?}: expected NS=strict or NS=permissive"
            ))
        })?;
        let what = match what.to_ascii_lowercase().as_str() {
            "strict" => Assume::Strict,
            "permissive" => Assume::Permissive,
            _ => {
                return Err(CmdError(format!(
                    "--assume {a:?}: got {what:?}; expected strict or permissive"
                )));
            }
        };
        if ns.is_empty() {
            return Err(CmdError(format!("--assume {a:?}: the namespace is empty")));
        }
        opts.assume.insert(ns.to_owned(), what);
    }
    opts.unmeshed = args.unmeshed;
    opts.linkerd_default_policy
        .clone_from(&args.linkerd_default_policy);
    opts.istio_root_namespace
        .clone_from(&args.istio_root_namespace);
    Ok(opts)
}

/// The SPIFFE ID of the `[identity]` certificate of a config file.
fn config_identity(path: &std::path::Path, env: &Env) -> Result<String, CmdError> {
    let cfg = config::load(path, env)?;
    let id = cfg.identity.ok_or_else(|| {
        CmdError(format!(
            "{}: no [identity] to take the source identity from; pass --source-identity",
            path.display()
        ))
    })?;
    let bytes = crate::fsutil::read_small(&id.cert)
        .map_err(|e| CmdError(format!("{}: cannot read: {e}", id.cert.display())))?;
    let leaf = pem::parse_many(&bytes)
        .ok()
        .and_then(|v| v.into_iter().find(|p| p.tag() == "CERTIFICATE"))
        .ok_or_else(|| CmdError(format!("{}: no PEM certificate", id.cert.display())))?;
    let summary = crate::tls::peer::CertSummary::parse(leaf.contents())
        .map_err(|e| CmdError(format!("{}: {e}", id.cert.display())))?;
    summary.spiffe_id.ok_or_else(|| {
        CmdError(format!(
            "{}: the certificate carries no SPIFFE ID; pass --source-identity",
            id.cert.display()
        ))
    })
}
