//! The serde mirror of `probes.toml`: every table and key the file may contain, nothing
//! checked beyond "is it there" (ripgrep's low-level args).
//!
//! Every struct denies unknown fields, so a typo is an error naming its key instead of a
//! silently ignored setting. Scalars are read as strings, even numbers and booleans: the
//! `config` crate converts TOML integers, floats and booleans (and typed environment
//! values) to strings losslessly, and the `validate` module then parses each one itself,
//! so every message about a value says what was found and what was expected in the
//! same words. Lists stay lists; the only map is `[target.http] headers`.
//!
//! `read` builds the tree with the `config` crate: the TOML text, then the
//! `MTLS_PROBER_*` environment overrides on top. The `[[target]]` tables are read one
//! at a time beside that tree ([`super::document`]), with the same conversions and
//! messages, so a file of 10,000 targets never exists as one `config` tree.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use config::{Environment, File, FileFormat};
use serde::Deserialize;

use super::Env;
use super::document::{self, TargetTables};
use super::error::{ConfigError, EnvKeys, env_var_key};

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a TOML document")]
pub struct RawConfig {
    /// `[agent]`: the agent's own settings and the defaults of every target.
    pub agent: Option<RawAgent>,
    /// `[identity]`: the client certificate, key and trust bundle.
    pub identity: Option<RawIdentity>,
    /// `[serve]`: this agent as an mTLS target for its peers.
    pub serve: Option<RawServe>,
    /// `[[target]]`: the configured edges, in file order.
    pub target: Option<Vec<RawTarget>>,
    /// `[[discover]]`: edges created from the addresses of a DNS name.
    pub discover: Option<Vec<RawDiscover>>,
    /// `[fleet]`: the agents share the matrix (SPEC §12).
    pub fleet: Option<RawFleet>,
}

/// `[agent]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table ([agent])")]
pub struct RawAgent {
    /// `source`: the `source` label; default `$NODE_NAME`, else the hostname.
    pub source: Option<String>,
    /// `listen`: `IP:port` of the metrics/API/status listener; default `0.0.0.0:9464`.
    pub listen: Option<String>,
    /// `interval`: default probe interval, a duration like `"10s"`; default `10s`.
    pub interval: Option<String>,
    /// `timeout`: default whole-probe timeout, a duration; default `5s`.
    pub timeout: Option<String>,
    /// `jitter`: fraction of the interval start times are spread over, in `[0, 1)`;
    /// default `0.1`.
    pub jitter: Option<String>,
    /// `max_concurrency`: probes in flight at once, 1..=65536; default 256.
    pub max_concurrency: Option<String>,
    /// `windows`: success-ratio windows, durations; default `["5m", "30m"]`.
    pub windows: Option<Vec<String>>,
    /// `dns_servers`: resolvers to use instead of the system's, `"ip"` or `"ip:port"`;
    /// default none (system configuration). An extension of the spec's schema.
    pub dns_servers: Option<Vec<String>>,
    /// `include`: glob patterns of further files of `[[target]]` tables (what `plan`
    /// writes); relative ones are taken from the config file's directory.
    pub include: Option<Vec<String>>,
    /// `runbook_base_url`: where runbook links point, e.g.
    /// `"https://wiki.example.com/mtls-prober/runbook"`; the reason is appended as
    /// `#reason`. Default: the agent's own `/docs/runbook`.
    pub runbook_base_url: Option<String>,
    /// `cert_expiry_warn_floor`: the status page warns about a certificate when less
    /// than a third of its lifetime is left, or less than this; default `1h`.
    pub cert_expiry_warn_floor: Option<String>,
}

/// `[identity]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table ([identity])")]
pub struct RawIdentity {
    /// `cert`: path of the PEM certificate chain, leaf first. Required.
    pub cert: Option<String>,
    /// `key`: path of the PEM private key. Required.
    pub key: Option<String>,
    /// `ca`: path of the PEM trust bundle. Required.
    pub ca: Option<String>,
    /// `reload`: how often the files are re-read, a duration; default `30s`.
    pub reload: Option<String>,
    /// `trust_domain`: the mesh's own trust domain, e.g. `cluster.local`.
    pub trust_domain: Option<String>,
    /// `trust_domain_aliases`: trust domains treated as equal to `trust_domain`.
    pub trust_domain_aliases: Option<Vec<String>>,
    /// `source`: `files` (default: `cert`, `key`, `ca`) or `workload-api` (the SPIFFE
    /// Workload API, SPEC §13).
    pub source: Option<String>,
    /// `socket`: the Workload API endpoint, `unix:///path` or `tcp://IP:PORT`; default
    /// `$SPIFFE_ENDPOINT_SOCKET`. Only with `source = "workload-api"`.
    pub socket: Option<String>,
    /// `svid_hint`: which X.509 SVID to use when the Workload API returns several;
    /// default the first. Only with `source = "workload-api"`.
    pub svid_hint: Option<String>,
}

/// `[serve]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table ([serve])")]
pub struct RawServe {
    /// `listen`: `IP:port` of the mTLS listener. Required.
    pub listen: Option<String>,
    /// `client_auth`: `require` or `optional`; default `require`.
    pub client_auth: Option<String>,
}

/// One `[[target]]`.
///
/// The probe keys are repeated in [`RawDiscover`] rather than shared through
/// `#[serde(flatten)]`: flattening buffers values in serde's private content type,
/// which would refuse the number-to-string conversions described above and weakens
/// `deny_unknown_fields`. [`RawTarget::take_probe`] and [`RawDiscover::take_probe`]
/// gather them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table ([[target]])")]
pub struct RawTarget {
    /// `name`: the `target` label, unique. Required.
    pub name: Option<String>,
    /// `address`: `host:port` (`[v6]:port` for IPv6). Required.
    pub address: Option<String>,
    /// `mode`: `mtls`, `tls` or `plaintext`; default `mtls`.
    pub mode: Option<String>,
    /// `expect`: `success` or `reject`; default `success`.
    pub expect: Option<String>,
    /// `spiffe_id`: the SPIFFE ID the peer must present.
    pub spiffe_id: Option<String>,
    /// `trust_domain`: the trust domain the peer's SPIFFE ID must belong to.
    pub trust_domain: Option<String>,
    /// `server_name`: SNI, and the DNS name the peer certificate must carry when
    /// neither `spiffe_id` nor `trust_domain` is set; default the host of `address`.
    pub server_name: Option<String>,
    /// `alpn`: ALPN protocols to offer; default `["h2", "http/1.1"]` with `http`,
    /// none without.
    pub alpn: Option<Vec<String>>,
    /// `tls_versions`: `"1.2"` and/or `"1.3"`; default both.
    pub tls_versions: Option<Vec<String>>,
    /// `ca`: the trust anchors this target's certificate is verified against: a PEM
    /// file, or `"system"` for the platform's roots; default `[identity].ca`.
    pub ca: Option<String>,
    /// `verify_strict`: also probe in plaintext and expect a rejection; default false.
    pub verify_strict: Option<String>,
    /// `interval`: probe interval; default `[agent].interval`.
    pub interval: Option<String>,
    /// `timeout`: whole-probe timeout; default `[agent].timeout`.
    pub timeout: Option<String>,
    /// `[target.http]`: the HTTP request; absent = a TLS-only (or TCP-only) probe.
    pub http: Option<RawHttp>,
    /// `fleet`: `shared` (probed by `probers_per_target` agents of the fleet) or `all`
    /// (by every agent); default `shared`. Without `[fleet]` every agent probes all.
    pub fleet: Option<String>,
    /// `[target.grpc]`: a `grpc.health.v1.Health/Check` call instead of `http`.
    pub grpc: Option<RawGrpc>,
}

impl RawTarget {
    /// The probe keys, moved out (`name` and `address` are left behind).
    pub fn take_probe(&mut self) -> RawProbe {
        RawProbe {
            mode: self.mode.take(),
            expect: self.expect.take(),
            spiffe_id: self.spiffe_id.take(),
            trust_domain: self.trust_domain.take(),
            server_name: self.server_name.take(),
            alpn: self.alpn.take(),
            tls_versions: self.tls_versions.take(),
            ca: self.ca.take(),
            verify_strict: self.verify_strict.take(),
            interval: self.interval.take(),
            timeout: self.timeout.take(),
            http: self.http.take(),
            fleet: self.fleet.take(),
            grpc: self.grpc.take(),
        }
    }
}

/// The keys that describe how to probe, common to `[[target]]` and `[[discover]]`.
#[derive(Clone, Debug, Default)]
pub struct RawProbe {
    /// `mode`: `mtls`, `tls` or `plaintext`; default `mtls`.
    pub mode: Option<String>,
    /// `expect`: `success` or `reject`; default `success`.
    pub expect: Option<String>,
    /// `spiffe_id`: the SPIFFE ID the peer must present.
    pub spiffe_id: Option<String>,
    /// `trust_domain`: the trust domain the peer's SPIFFE ID must belong to.
    pub trust_domain: Option<String>,
    /// `server_name`: SNI, and the DNS name the peer certificate must carry when
    /// neither `spiffe_id` nor `trust_domain` is set; default the host of `address`.
    pub server_name: Option<String>,
    /// `alpn`: ALPN protocols to offer; default `["h2", "http/1.1"]` with `http`,
    /// none without.
    pub alpn: Option<Vec<String>>,
    /// `tls_versions`: `"1.2"` and/or `"1.3"`; default both.
    pub tls_versions: Option<Vec<String>>,
    /// `ca`: the trust anchors this target's certificate is verified against: a PEM
    /// file, or `"system"` for the platform's roots; default `[identity].ca`.
    pub ca: Option<String>,
    /// `verify_strict`: also probe in plaintext and expect a rejection; default false.
    pub verify_strict: Option<String>,
    /// `interval`: probe interval; default `[agent].interval`.
    pub interval: Option<String>,
    /// `timeout`: whole-probe timeout; default `[agent].timeout`.
    pub timeout: Option<String>,
    /// `[target.http]`: the HTTP request; absent = a TLS-only (or TCP-only) probe.
    pub http: Option<RawHttp>,
    /// `fleet`: `shared` or `all`; default `shared`.
    pub fleet: Option<String>,
    /// `[target.grpc]`: a `grpc.health.v1.Health/Check` call instead of `http`.
    pub grpc: Option<RawGrpc>,
}

/// `[target.http]` (also `[discover.http]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table ([target.http])")]
pub struct RawHttp {
    /// `method`: request method; default `GET`.
    pub method: Option<String>,
    /// `path`: path and query, starting with `/`; default `/`.
    pub path: Option<String>,
    /// `expect_status`: codes (`200`) or ranges (`"200-299"`, `"2xx"`) that pass;
    /// default `200-399`. Integers arrive here as strings.
    pub expect_status: Option<Vec<String>>,
    /// `headers`: extra request headers, name → value.
    pub headers: Option<BTreeMap<String, String>>,
    /// `max_body_bytes`: the most of the body that is read; default 65536.
    pub max_body_bytes: Option<String>,
}

/// `[target.grpc]` (also `[discover.grpc]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table ([target.grpc])")]
pub struct RawGrpc {
    /// `service`: the service name sent in the `HealthCheckRequest`; default `""`
    /// (the server as a whole).
    pub service: Option<String>,
    /// `authority`: the `:authority` of the call; default `server_name:port`.
    pub authority: Option<String>,
}

/// One `[[discover]]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table ([[discover]])")]
pub struct RawDiscover {
    /// `name`: prefix of the edge names (`<name>/<ip>`). Required.
    pub name: Option<String>,
    /// `dns`: the DNS name whose A/AAAA records are probed. Required.
    pub dns: Option<String>,
    /// `port`: the port probed on every address. Required.
    pub port: Option<String>,
    /// `refresh`: how often `dns` is resolved again; default `30s`.
    pub refresh: Option<String>,
    /// `mode`: `mtls`, `tls` or `plaintext`; default `mtls`.
    pub mode: Option<String>,
    /// `expect`: `success` or `reject`; default `success`.
    pub expect: Option<String>,
    /// `spiffe_id`: the SPIFFE ID the peer must present.
    pub spiffe_id: Option<String>,
    /// `trust_domain`: the trust domain the peer's SPIFFE ID must belong to.
    pub trust_domain: Option<String>,
    /// `server_name`: SNI, and the DNS name the peer certificate must carry when
    /// neither `spiffe_id` nor `trust_domain` is set; default the host of `address`.
    pub server_name: Option<String>,
    /// `alpn`: ALPN protocols to offer; default `["h2", "http/1.1"]` with `http`,
    /// none without.
    pub alpn: Option<Vec<String>>,
    /// `tls_versions`: `"1.2"` and/or `"1.3"`; default both.
    pub tls_versions: Option<Vec<String>>,
    /// `ca`: the trust anchors this target's certificate is verified against: a PEM
    /// file, or `"system"` for the platform's roots; default `[identity].ca`.
    pub ca: Option<String>,
    /// `verify_strict`: also probe in plaintext and expect a rejection; default false.
    pub verify_strict: Option<String>,
    /// `interval`: probe interval; default `[agent].interval`.
    pub interval: Option<String>,
    /// `timeout`: whole-probe timeout; default `[agent].timeout`.
    pub timeout: Option<String>,
    /// `[target.http]`: the HTTP request; absent = a TLS-only (or TCP-only) probe.
    pub http: Option<RawHttp>,
    /// `fleet`: `shared` (each discovered address probed by `probers_per_target`
    /// agents) or `all` (by every agent: the full mesh); default `shared`.
    pub fleet: Option<String>,
    /// `[target.grpc]`: a `grpc.health.v1.Health/Check` call instead of `http`.
    pub grpc: Option<RawGrpc>,
}

impl RawDiscover {
    /// The probe keys, moved out (`name`, `dns`, `port`, `refresh` are left behind).
    pub fn take_probe(&mut self) -> RawProbe {
        RawProbe {
            mode: self.mode.take(),
            expect: self.expect.take(),
            spiffe_id: self.spiffe_id.take(),
            trust_domain: self.trust_domain.take(),
            server_name: self.server_name.take(),
            alpn: self.alpn.take(),
            tls_versions: self.tls_versions.take(),
            ca: self.ca.take(),
            verify_strict: self.verify_strict.take(),
            interval: self.interval.take(),
            timeout: self.timeout.take(),
            http: self.http.take(),
            fleet: self.fleet.take(),
            grpc: self.grpc.take(),
        }
    }
}

/// `[fleet]`: agents share the matrix by rendezvous hashing over a DNS name's
/// addresses (SPEC §12).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table ([fleet])")]
pub struct RawFleet {
    /// `peers`: the DNS name listing every agent (a headless Service). Required.
    pub peers: Option<String>,
    /// `self`: this agent's address in that list; default `$POD_IP`.
    #[serde(rename = "self")]
    pub self_addr: Option<String>,
    /// `probers_per_target`: k, the agents that probe each target; default 3.
    pub probers_per_target: Option<String>,
    /// `rotate`: assignments move every period; `"0s"` = never; default `1h`.
    pub rotate: Option<String>,
    /// `refresh`: how often `peers` is resolved again; default `30s`.
    pub refresh: Option<String>,
}

/// The environment variable prefix (followed by `_`): `MTLS_PROBER_AGENT__LISTEN`.
pub const ENV_PREFIX: &str = "MTLS_PROBER";
/// Separates nested keys in an environment variable name.
pub const ENV_SEPARATOR: &str = "__";
/// Separates the items of a list value in an environment variable.
pub const ENV_LIST_SEPARATOR: &str = ",";
/// The keys whose environment values are comma-separated lists.
pub const ENV_LIST_KEYS: [&str; 4] = [
    "agent.windows",
    "agent.dns_servers",
    "identity.trust_domain_aliases",
    "agent.include",
];

/// Reads `toml` (named `file` in messages) with the `MTLS_PROBER_*` overrides from
/// `env` on top, into the raw tree. Never reads the process environment.
/// The `[[target]]` tables of one file, raw: deserialized all at once (the `config`
/// crate's reading of a whole file), or kept as text and deserialized one at a time as
/// they are validated ([`TargetTables`]).
#[derive(Debug)]
pub enum RawTargets<'a> {
    /// Deserialized.
    Read(Vec<RawTarget>),
    /// Text, every table of which deserialized once already.
    Tables(TargetTables<'a>),
}

impl Default for RawTargets<'_> {
    fn default() -> Self {
        Self::Read(Vec::new())
    }
}

impl RawTargets<'_> {
    /// How many tables.
    pub fn len(&self) -> usize {
        match self {
            Self::Read(v) => v.len(),
            Self::Tables(t) => t.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with each table in file order (`file` names them in messages), until
    /// it fails.
    pub fn each(
        self,
        file: &Path,
        mut f: impl FnMut(usize, RawTarget) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        match self {
            Self::Read(v) => v.into_iter().enumerate().try_for_each(|(i, t)| f(i, t)),
            Self::Tables(t) => (0..t.len()).try_for_each(|i| f(i, t.get(i, file)?)),
        }
    }
}

/// Reads `toml` (the file `file`) with the `MTLS_PROBER_*` overrides of `env` on top:
/// everything but the `[[target]]` tables, and those.
pub(super) fn read<'a>(
    toml: &'a str,
    file: &Path,
    env: &Env,
) -> Result<(RawConfig, RawTargets<'a>), ConfigError> {
    let env_keys = EnvKeys::new(env);
    // Two variables for one key (`MTLS_PROBER_AGENT__SOURCE` and a lowercase spelling),
    // or one for a table and one for a key inside it (`MTLS_PROBER_AGENT` and
    // `MTLS_PROBER_AGENT__SOURCE`), would be applied in an arbitrary order by `config`:
    // refuse them, naming both, so a load never depends on a hash order.
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for var in env.keys() {
        let Some(key) = env_var_key(var) else {
            continue;
        };
        if let Some((other_key, other)) = seen.iter().find(|(k, _)| {
            *k == &key
                || key
                    .strip_prefix(k.as_str())
                    .is_some_and(|r| r.starts_with(['.', '[']))
                || k.strip_prefix(key.as_str())
                    .is_some_and(|r| r.starts_with(['.', '[']))
        }) {
            return Err(ConfigError::new(
                file,
                Some(key.clone()),
                format!(
                    "environment variables {other} (key {other_key}) and {var} (key {key}) \
                     set the same key or a key and its table; expected only one of them"
                ),
            ));
        }
        seen.insert(key, var);
    }

    let mut overrides: HashMap<String, String> = HashMap::new();
    let mut lists: Vec<(String, Vec<String>)> = Vec::new();
    for (var, value) in env {
        let Some(key) = env_keys.key_of(var) else {
            continue;
        };
        if ENV_LIST_KEYS.contains(&key) {
            // Split here: `config` only splits lists when it also turns every
            // numeric-looking value into a number ("007" into 7), which would rewrite
            // string keys such as a node name. An empty variable means "no items".
            let items = value
                .split(ENV_LIST_SEPARATOR)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            lists.push((key.to_owned(), items));
        } else {
            overrides.insert(var.clone(), value.clone());
        }
    }

    let environment = Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("_")
        .separator(ENV_SEPARATOR)
        // An empty scalar variable means "not set": the default (or the file) applies.
        .ignore_empty(true);
    // `[[target]]` tables are read one at a time, outside the `config` crate's tree
    // (`super::document`), unless an environment variable addresses one of them (then
    // the whole file goes through the `config` crate so that the override applies) or
    // the file is not one that reading understands exactly as the `config` crate would.
    let split = if env.keys().any(|var| sets_targets(var)) {
        None
    } else {
        document::split(toml, file)
    };
    let (builder, targets) = match split {
        Some(s) => (
            config::Config::builder().add_source(s.rest),
            Some((s.targets, s.error)),
        ),
        None => (
            config::Config::builder().add_source(File::from_str(toml, FileFormat::Toml)),
            None,
        ),
    };
    let mut builder = builder.add_source(environment.source(Some(overrides)));
    for (key, items) in &lists {
        builder = builder
            .set_override(key.as_str(), items.clone())
            .map_err(|e| ConfigError::new(file, Some(key.clone()), e.to_string()))?;
    }
    let tree = builder.build().map_err(|e| {
        let problem = match e {
            config::ConfigError::FileParse { cause, .. } => {
                format!("not valid TOML: {}", cause.to_string().trim_end())
            }
            other => other.to_string(),
        };
        ConfigError::new(file, None, problem)
    })?;

    let mut raw: RawConfig = serde_path_to_error::deserialize(tree)
        .map_err(|e| ConfigError::from_deserialize(file, &env_keys, e))?;
    let targets = match targets {
        Some((_, Some(e))) => return Err(e),
        Some((chunks, None)) => RawTargets::Tables(TargetTables::new(Cow::Borrowed(toml), chunks)),
        None => RawTargets::Read(raw.target.take().unwrap_or_default()),
    };
    Ok((raw, targets))
}

/// Whether an environment variable sets `target` or a key inside it.
fn sets_targets(var: &str) -> bool {
    env_var_key(var).is_some_and(|key| {
        key.strip_prefix("target")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    })
}
