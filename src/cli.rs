//! The command line (SPEC §2): clap derive only, no logic.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Synthetic mTLS connectivity prober for service meshes.
#[derive(Debug, Parser)]
#[command(name = "mtls-prober", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log lines on stderr as JSON objects or as text (default: JSON for `run` and
    /// `demo` when stderr is not a terminal, text otherwise). `RUST_LOG` sets levels,
    /// e.g. `RUST_LOG=debug` or `RUST_LOG=warn,mtls_prober::agent=info`.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, Eq, PartialEq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    Text,
}

/// The subcommands.
// Parsed once at start and matched once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: schedule probes, serve /metrics, the API and the status page.
    Run(RunArgs),
    /// Probe configured targets (or one address) once and print a per-layer report.
    Probe(ProbeArgs),
    /// Validate the config and the identity files; never contacts a target.
    Check(CheckArgs),
    /// The migration watch: probe the whole matrix for a duration, then report.
    Watch(WatchArgs),
    /// Start a self-contained local mesh with healthy and broken services and probe it.
    Demo(DemoArgs),
    /// Derive the matrix and each edge's expected verdict from the mesh's Kubernetes objects.
    Plan(PlanArgs),
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config file.
    #[arg(long, default_value = "probes.toml")]
    pub config: PathBuf,
}

/// `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The config file.
    #[arg(long, default_value = "probes.toml")]
    pub config: PathBuf,
    /// Also print the effective configuration when the check fails.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Output format of `probe`.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, ValueEnum)]
pub enum Output {
    /// One block per edge, one line per layer.
    #[default]
    Text,
    /// One JSON object per line, per edge (the fields: docs/output.md).
    Json,
}

/// Probe mode for ad-hoc probes.
#[derive(Clone, Copy, Debug, Eq, PartialEq, ValueEnum)]
pub enum ModeArg {
    /// TLS with our client certificate.
    Mtls,
    /// TLS without a client certificate.
    Tls,
    /// Plain TCP (and HTTP with --http-path).
    Plaintext,
}

/// `probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Probe this `host:port` without a config file.
    #[arg(value_name = "ADDRESS", conflicts_with_all = ["config", "target"])]
    pub address: Option<String>,
    /// Probe the targets of this config file.
    #[arg(long, required_unless_present = "address")]
    pub config: Option<PathBuf>,
    /// Only these targets (repeatable); default: all.
    #[arg(long = "target", value_name = "NAME", requires = "config")]
    pub target: Vec<String>,
    /// Ad hoc: mode (default: mtls when --cert is given, else tls).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Ad hoc: our certificate chain (PEM).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Ad hoc: our private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Ad hoc: the trust bundle to verify the peer (PEM).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Ad hoc: the SPIFFE ID the peer must present.
    #[arg(long, conflicts_with_all = ["trust_domain", "server_name"])]
    pub spiffe_id: Option<String>,
    /// Ad hoc: the trust domain the peer's SPIFFE ID must be in.
    #[arg(long, conflicts_with = "server_name")]
    pub trust_domain: Option<String>,
    /// Ad hoc: SNI and the DNS name the peer's certificate must carry.
    #[arg(long)]
    pub server_name: Option<String>,
    /// Ad hoc: also send `GET <path>` and check the status (200-399).
    #[arg(long)]
    pub http_path: Option<String>,
    /// Ad hoc: call `grpc.health.v1.Health/Check` for this service ("" for the whole
    /// server) instead of an HTTP request.
    #[arg(long, value_name = "SERVICE", conflicts_with = "http_path")]
    pub grpc_service: Option<String>,
    /// Ad hoc: do not verify the peer's chain or identity (still shows it).
    #[arg(long)]
    pub insecure_skip_verify: bool,
    /// Ad hoc: whole-probe timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub timeout: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The config file.
    #[arg(long)]
    pub config: PathBuf,
    /// How long to watch.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30m")]
    pub duration: Duration,
    /// Every edge must pass at least this fraction of its probes.
    #[arg(long, default_value_t = 0.999)]
    pub min_success_ratio: f64,
    /// Write the report here: `.json` for JSON, `.md` for Markdown, `.xml` for JUnit
    /// (one test case per edge, for CI); repeatable. Checked before the watch starts.
    #[arg(long)]
    pub report: Vec<PathBuf>,
}

/// `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the agent serves its status page and metrics (not with --watch, which
    /// runs no agent).
    #[arg(long, default_value = "127.0.0.1:9464", conflicts_with = "watch")]
    pub listen: SocketAddr,
    /// Exit after this long (default: until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Run the watch view over the demo mesh instead of the agent; exits with the
    /// watch's verdict (0 pass, 1 fail), like `watch`.
    #[arg(long)]
    pub watch: bool,
}

/// `--mesh` of `plan`.
#[derive(Clone, Copy, Debug, Eq, PartialEq, ValueEnum)]
pub enum MeshArg {
    /// Istio (sidecar mode).
    Istio,
    /// Linkerd.
    Linkerd,
}

/// `--output` of `plan`.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, ValueEnum)]
pub enum PlanOutput {
    /// `[[target]]` tables for `[agent] include`.
    #[default]
    Toml,
    /// `{"targets": [...], "findings": [...]}`.
    Json,
}

/// `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Kubernetes objects: a YAML or JSON file, a directory (read recursively), or `-`
    /// for stdin (repeatable).
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR|-",
        required = true
    )]
    pub files: Vec<String>,
    /// The mesh (default: whichever mesh's objects and labels the input holds).
    #[arg(long, value_enum)]
    pub mesh: Option<MeshArg>,
    /// The prober's own SPIFFE ID (default: [identity] of --config, else
    /// spiffe://cluster.local/ns/monitoring/sa/mtls-prober).
    #[arg(long, value_name = "ID")]
    pub source_identity: Option<String>,
    /// The trust domain of the expected peer identities.
    #[arg(long, value_name = "TD", default_value = "cluster.local")]
    pub trust_domain: String,
    /// Only targets in this namespace (repeatable).
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Plan as if this namespace were switched: NS=strict or NS=permissive (repeatable).
    #[arg(long, value_name = "NS=strict|permissive")]
    pub assume: Vec<String>,
    /// Print, per edge, the expectation and the objects that decided it, and the findings.
    #[arg(long)]
    pub explain: bool,
    /// Linkerd: the matrix for a prober outside the mesh (plaintext, no identity).
    #[arg(long)]
    pub unmeshed: bool,
    /// Output format of the matrix.
    #[arg(long, value_enum, default_value_t = PlanOutput::Toml)]
    pub output: PlanOutput,
    /// Exit 1 when there are findings.
    #[arg(long)]
    pub fail_on_findings: bool,
    /// Linkerd: the cluster-wide default inbound policy.
    #[arg(
        long,
        default_value = "all-unauthenticated",
        value_parser = ["all-unauthenticated", "all-authenticated", "cluster-unauthenticated", "cluster-authenticated", "deny", "audit"]
    )]
    pub linkerd_default_policy: String,
    /// Istio's root namespace (where mesh-wide policies live).
    #[arg(long, default_value = "istio-system")]
    pub istio_root_namespace: String,
    /// A probes.toml whose [identity] certificate gives the default source identity.
    #[arg(long)]
    pub config: Option<PathBuf>,
}
