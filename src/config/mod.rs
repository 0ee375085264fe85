//! The validated configuration: what `probes.toml` (plus `MTLS_PROBER_*` environment
//! overrides) means once every value has been checked.
//!
//! Loading is two steps, like ripgrep's low/high args: [`raw`] mirrors the file with
//! serde (`deny_unknown_fields`, strings and options only), [`validate`] turns it into
//! the typed [`Config`] below, inheriting defaults from `[agent]` and expanding
//! `verify_strict` companions. Every error names the file, the key and what was
//! expected ([`ConfigError`]).

mod document;
pub mod effective;
mod error;
pub mod include;
pub mod raw;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use error::ConfigError;

use crate::identity::spiffe::{SpiffeId, TrustDomain};

/// The environment variables the loader may read: `MTLS_PROBER_*` overrides,
/// `NODE_NAME`, `POD_IP` and `SPIFFE_ENDPOINT_SOCKET`. Passed in explicitly so tests never
/// touch the process environment.
pub type Env = BTreeMap<String, String>;

/// The variable that names the SPIFFE Workload API endpoint (SPIFFE Workload Endpoint
/// spec §4), the default of `[identity] socket`.
pub const SPIFFE_ENDPOINT_SOCKET: &str = "SPIFFE_ENDPOINT_SOCKET";

/// Reads the process environment into an [`Env`] (only the variables the loader uses).
pub fn process_env() -> Env {
    std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("MTLS_PROBER_")
                || k == "NODE_NAME"
                || k == "POD_IP"
                || k == SPIFFE_ENDPOINT_SOCKET
        })
        .collect()
}

/// Loads and validates a config file with the given environment overrides.
pub fn load(path: &Path, env: &Env) -> Result<Config, ConfigError> {
    validate::load_file(path, env, &validate::reuse_none)
}

/// [`load`] for a reload: a validated target equal to the `running` one of its name
/// is replaced by that running copy (the same allocation), and the new copy is dropped
/// at once. A reload of 10,000 unchanged targets then holds one copy of each, not the
/// running matrix beside a second, whole one.
pub fn load_reusing(
    path: &Path,
    env: &Env,
    running: &[Arc<Target>],
) -> Result<Config, ConfigError> {
    let by_name: HashMap<&str, &Arc<Target>> =
        running.iter().map(|t| (t.name.as_str(), t)).collect();
    validate::load_file(path, env, &|new| {
        by_name
            .get(new.name.as_str())
            .copied()
            .filter(|old| ***old == *new)
            .cloned()
    })
}

/// Loads and validates config text (for tests and embedded configs); `origin` names it
/// in error messages the way a file path would.
pub fn load_str(toml: &str, origin: &str, env: &Env) -> Result<Config, ConfigError> {
    validate::load_str(toml, origin, env)
}

/// The whole validated configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// Where it was read from (for messages and reloads).
    #[serde(skip)]
    pub origin: PathBuf,
    /// `[agent]`.
    pub agent: AgentConfig,
    /// `[identity]`; required when any target or discover uses `mode = "mtls"`, or
    /// when `[serve]` is set.
    pub identity: Option<IdentityConfig>,
    /// `[serve]`.
    pub serve: Option<ServeConfig>,
    /// `[[target]]` in file order, each followed by its `verify_strict` companion.
    /// Shared: a reload reuses the running copy of every unchanged target
    /// ([`load_reusing`]), so that 10,000 targets are not held twice while it runs.
    pub targets: Vec<Arc<Target>>,
    /// `[[discover]]`.
    pub discover: Vec<Discover>,
    /// The files `[agent] include` pulled in, in load order, with the targets each
    /// defined (for `check`; the targets themselves are in [`Config::targets`]).
    #[serde(skip)]
    pub included: Vec<IncludedFile>,
    /// `[fleet]`: when set, this agent probes only its share of the matrix (SPEC §12).
    pub fleet: Option<FleetConfig>,
}

/// A file pulled in by `[agent] include`.
#[derive(Clone, Debug, PartialEq)]
pub struct IncludedFile {
    /// The file as matched.
    pub path: PathBuf,
    /// The names of the `[[target]]`s it defined, in file order (companions not listed).
    pub targets: Vec<String>,
}

/// Every file a load of `config_path` read, for change detection by the agent: the file
/// itself, then what `config`'s include patterns match now (a new matching file, a
/// removed one or a changed one all change the digest). A pattern that cannot be
/// expanded any more lists the pattern itself, so the next load reports it.
pub fn input_files(config_path: &Path, config: &Config) -> Vec<PathBuf> {
    let mut files = vec![config_path.to_path_buf()];
    match include::expand(&config.agent.include) {
        Ok(found) => files.extend(found),
        Err((i, _)) => files.push(PathBuf::from(&config.agent.include[i])),
    }
    files
}

/// `[agent]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentConfig {
    /// The `source` label: `[agent].source`, else `$NODE_NAME`, else the hostname.
    pub source: String,
    /// Listener for `/metrics`, `/healthz`, `/readyz`, `/api/v1/edges`, `/`.
    pub listen: SocketAddr,
    /// Default per-target interval.
    #[serde(with = "humantime_serde_compat")]
    pub interval: Duration,
    /// Default whole-probe timeout.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Start times are spread by up to this fraction of the interval, in `[0, 1)`.
    pub jitter: f64,
    /// Probes in flight at once, at least 1.
    pub max_concurrency: usize,
    /// Success-ratio windows exported per edge; non-empty, distinct, ascending.
    #[serde(with = "humantime_serde_compat::vec")]
    pub windows: Vec<Duration>,
    /// DNS servers to use instead of the system's `/etc/resolv.conf` (an extension of
    /// the spec's schema; empty = system configuration).
    pub dns_servers: Vec<SocketAddr>,
    /// `include`: glob patterns of files of further `[[target]]` tables, resolved
    /// against the config file's directory (empty = none).
    pub include: Vec<String>,
    /// Where runbook links point (`#reason` is appended); `None` = the agent's own
    /// `/docs/runbook` (on the status page) or `docs/runbook.md` (in the CLI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbook_base_url: Option<String>,
    /// Certificates with less than this left are flagged even when more than a third
    /// of their lifetime remains.
    #[serde(with = "humantime_serde_compat")]
    pub cert_expiry_warn_floor: Duration,
}

/// `[identity]`: the client identity used for mTLS probes and `[serve]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IdentityConfig {
    /// PEM certificate chain, leaf first (empty with `workload_api`).
    #[serde(skip_serializing_if = "path_is_empty")]
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1) (empty with `workload_api`).
    #[serde(skip_serializing_if = "path_is_empty")]
    pub key: PathBuf,
    /// PEM trust bundle (one or more roots) (empty with `workload_api`).
    #[serde(skip_serializing_if = "path_is_empty")]
    pub ca: PathBuf,
    /// How often the files are re-read.
    #[serde(with = "humantime_serde_compat")]
    pub reload: Duration,
    /// The mesh's own trust domain.
    pub trust_domain: Option<TrustDomain>,
    /// Trust domains treated as equal to `trust_domain`.
    pub trust_domain_aliases: Vec<TrustDomain>,
    /// `source = "workload-api"`: the SVID and the bundles come from the SPIFFE
    /// Workload API instead of `cert`, `key` and `ca` (SPEC §13).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub workload_api: Option<WorkloadApiConfig>,
}

/// `[identity] source = "workload-api"`.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct WorkloadApiConfig {
    /// The endpoint, `unix:///path` or `tcp://IP:PORT` (SPIFFE Workload Endpoint spec).
    pub socket: String,
    /// The X.509 SVID to use when several are returned: the one with this hint.
    pub svid_hint: Option<String>,
}

impl Serialize for WorkloadApiConfig {
    /// As written in `[identity]` (`source`, `socket`, `svid_hint`), for `check`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("source", "workload-api")?;
        map.serialize_entry("socket", &self.socket)?;
        if let Some(hint) = &self.svid_hint {
            map.serialize_entry("svid_hint", hint)?;
        }
        map.end()
    }
}

fn path_is_empty(p: &Path) -> bool {
    p.as_os_str().is_empty()
}

/// `[serve]`: this agent as a target for its peers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServeConfig {
    /// mTLS listener address.
    pub listen: SocketAddr,
    /// Whether clients must present a certificate.
    pub client_auth: ClientAuth,
}

/// `[serve].client_auth`.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// Clients without a valid certificate are refused.
    Require,
    /// Clients may connect without a certificate; one that is sent must be valid.
    Optional,
}

/// How a probe talks to its target.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// TLS with our client certificate; the peer is verified.
    Mtls,
    /// TLS without a client certificate; the peer is verified.
    Tls,
    /// TCP and, if `http` is set, plain HTTP.
    Plaintext,
}

impl Mode {
    /// The config/JSON spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Mtls => "mtls",
            Self::Tls => "tls",
            Self::Plaintext => "plaintext",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What outcome passes the probe.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Every layer must succeed.
    Success,
    /// The peer must refuse at the layer under test (SPEC §4).
    Reject,
}

impl Expect {
    /// The config/JSON spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Reject => "reject",
        }
    }
}

/// A TLS protocol version a probe may offer.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd, Serialize)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "1.2")]
    V1_2,
    /// TLS 1.3.
    #[serde(rename = "1.3")]
    V1_3,
}

/// `host:port` as configured; `host` is a DNS name or an IP literal (IPv6 without
/// brackets here; they are required in the config text).
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
pub struct HostPort {
    /// DNS name or IP literal.
    pub host: String,
    /// TCP port, 1..=65535.
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Serialize for HostPort {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Which identity the peer's certificate must carry.
#[derive(Clone, Debug, Eq, Hash, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerExpectation {
    /// The URI SAN must equal this SPIFFE ID.
    SpiffeId(SpiffeId),
    /// The URI SAN's trust domain must be one of these (the configured one first, then
    /// the `[identity]` aliases when the configured one is the mesh's own domain).
    TrustDomain(Vec<TrustDomain>),
    /// The certificate must be valid for this DNS name or IP address.
    DnsName(String),
    /// Nothing is verified (`--insecure-skip-verify`, ad-hoc probes only).
    Insecure,
}

/// A target's own trust anchors (`ca = "…"`), instead of the mesh bundle.
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
pub enum TrustSource {
    /// A PEM bundle file.
    File(PathBuf),
    /// The platform's roots (`ca = "system"`): the OS store, `SSL_CERT_FILE` or
    /// `SSL_CERT_DIR`.
    System,
}

impl fmt::Display for TrustSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::System => f.write_str("system"),
        }
    }
}

impl Serialize for TrustSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The HTTP request of a probe, `[target.http]`.
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
pub struct HttpCheck {
    /// Request method, an HTTP token such as `GET`.
    pub method: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Statuses that pass; default 200-399.
    pub expect_status: StatusSet,
    /// Extra request headers (names lowercased).
    pub headers: Vec<(String, String)>,
    /// The response body is read up to this size; more is `protocol_error`.
    pub max_body_bytes: usize,
}

/// A set of HTTP status codes (100..=599).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct StatusSet {
    ranges: Vec<(u16, u16)>,
}

impl StatusSet {
    /// A set from inclusive ranges; callers validate 100..=599 and `lo <= hi`.
    pub fn from_ranges(ranges: Vec<(u16, u16)>) -> Self {
        Self { ranges }
    }

    /// 200-399, the default.
    pub fn default_success() -> Self {
        Self::from_ranges(vec![(200, 399)])
    }

    /// Whether `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&status))
    }

    /// The ranges, as given.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for StatusSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where an edge came from.
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Origin {
    /// A `[[target]]`.
    Configured,
    /// The `<name>/plaintext` companion added by `verify_strict = true` on `of`.
    StrictCompanion {
        /// The target that asked for it.
        of: String,
    },
    /// An address found by a `[[discover]]`.
    Discovered {
        /// The discover's name.
        of: String,
    },
}

/// One edge to probe: a fully resolved `[[target]]` with every default applied.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    /// The `target` label, unique across the config.
    pub name: String,
    /// What to connect to.
    pub address: HostPort,
    /// mtls, tls or plaintext.
    pub mode: Mode,
    /// success or reject.
    pub expect: Expect,
    /// The identity the peer must prove (ignored for plaintext).
    pub peer: PeerExpectation,
    /// SNI to send; default the host of `address` (not sent when it is an IP).
    pub server_name: String,
    /// ALPN protocols to offer, in preference order.
    pub alpn: Vec<String>,
    /// TLS versions to offer.
    pub tls_versions: Vec<TlsVersion>,
    /// Where the peer's chain must lead (`ca`); `None` = `[identity].ca`, the mesh's
    /// bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<TrustSource>,
    /// Whether a `<name>/plaintext` companion is probed (already expanded in
    /// [`Config::targets`]; kept for display).
    pub verify_strict: bool,
    /// Probe interval.
    #[serde(with = "humantime_serde_compat")]
    pub interval: Duration,
    /// Whole-probe timeout.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// The HTTP request, if any.
    pub http: Option<HttpCheck>,
    /// The gRPC health check, if any (never together with `http`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcCheck>,
    /// Where this edge came from.
    pub origin: Origin,
    /// Whether the fleet shares this edge out or every agent probes it (`fleet`).
    pub fleet: FleetScope,
}

/// `[target.grpc]`: a `grpc.health.v1.Health/Check` call (SPEC §13).
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
pub struct GrpcCheck {
    /// The service asked about; `""` is the server as a whole.
    pub service: String,
    /// The `:authority` of the call; `None` = `server_name:port`.
    pub authority: Option<String>,
}

/// `[[discover]]`: edges created from the addresses of a DNS name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Discover {
    /// Prefix of the edge names (`<name>/<ip>`).
    pub name: String,
    /// The name to resolve (all A/AAAA records).
    pub dns: String,
    /// Port to probe on every address.
    pub port: u16,
    /// How often the name is resolved again.
    #[serde(with = "humantime_serde_compat")]
    pub refresh: Duration,
    /// Everything else an edge needs; `name`/`address` are replaced per address.
    pub template: Target,
}

impl Discover {
    /// The edge for one discovered address, named `<name>/<ip>`.
    pub fn edge(&self, ip: std::net::IpAddr) -> Target {
        let mut t = self.template.clone();
        t.name = format!("{}/{}", self.name, ip);
        t.address = HostPort {
            host: ip.to_string(),
            port: self.port,
        };
        t.origin = Origin::Discovered {
            of: self.name.clone(),
        };
        t
    }
}

/// `[fleet]`: the agents of a DaemonSet share the matrix by rendezvous hashing over the
/// addresses of `peers` (SPEC §12).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleetConfig {
    /// The DNS name that lists every agent (the headless Service).
    pub peers: String,
    /// This agent's address in that list (`self`, default `$POD_IP`).
    #[serde(rename = "self")]
    pub self_addr: std::net::IpAddr,
    /// k: how many agents probe each shared target.
    pub probers_per_target: usize,
    /// Assignments move every period; zero = never.
    #[serde(with = "humantime_serde_compat")]
    pub rotate: Duration,
    /// How often `peers` is resolved again.
    #[serde(with = "humantime_serde_compat")]
    pub refresh: Duration,
}

/// A target's (or discover's) `fleet` key.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FleetScope {
    /// Probed by `probers_per_target` agents of the fleet (the default).
    #[default]
    Shared,
    /// Probed by every agent, e.g. a node-local path that must be seen from everywhere.
    All,
}

impl FleetScope {
    /// The config/JSON spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::All => "all",
        }
    }
}

/// Serializes durations as humantime strings (`"10s"`), for `check`'s effective config.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub(super) mod vec {
        use std::time::Duration;

        use serde::Serializer;
        use serde::ser::SerializeSeq;

        pub(crate) fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for d in v {
                seq.serialize_element(&humantime::format_duration(*d).to_string())?;
            }
            seq.end()
        }
    }
}
