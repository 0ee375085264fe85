//! Raw → typed: every value of [`super::raw`] parsed and checked, defaults applied,
//! `verify_strict` companions expanded (ripgrep's high-level args; "parse, don't
//! validate").
//!
//! Each check returns a [`ConfigError`] naming the file, the key path
//! (`target[2].spiffe_id`, `agent.windows[1]`, `target[0].http.headers.x-probe`) and
//! what was found next to what was expected. The first problem found stops the load:
//! a config is either wholly valid or not used at all.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::identity::spiffe::{SpiffeError, SpiffeId, TrustDomain};

use super::error::EnvKeys;
use super::raw::{
    self, RawAgent, RawConfig, RawDiscover, RawFleet, RawGrpc, RawHttp, RawIdentity, RawProbe,
    RawServe, RawTarget, RawTargets,
};
use super::{
    AgentConfig, ClientAuth, Config, ConfigError, Discover, Env, Expect, FleetConfig, FleetScope,
    GrpcCheck, HostPort, HttpCheck, IdentityConfig, IncludedFile, Mode, Origin, PeerExpectation,
    ServeConfig, StatusSet, Target, TlsVersion, TrustSource, WorkloadApiConfig,
};

mod fleet;
mod probe;
mod sections;
#[cfg(test)]
mod tests;
mod values;

use values::*;

/// Hands back the running copy of a target when the new definition equals it (see
/// [`super::load_reusing`]); `None` keeps the new one.
pub(super) type Reuse<'a> = &'a dyn Fn(&Target) -> Option<Arc<Target>>;

/// Keeps every new target.
pub(super) fn reuse_none(_: &Target) -> Option<Arc<Target>> {
    None
}

/// Loads the file at `path`; relative identity paths are resolved against its
/// directory.
pub(super) fn load_file(path: &Path, env: &Env, reuse: Reuse<'_>) -> Result<Config, ConfigError> {
    let bytes = crate::fsutil::read_small(path)
        .map_err(|e| ConfigError::new(path, None, format!("cannot read the config file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        ConfigError::new(
            path,
            None,
            format!(
                "the config file is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    load(&text, path, env, path.parent(), reuse)
}

/// Loads config text named `origin` in messages; paths are kept as written.
pub(super) fn load_str(toml: &str, origin: &str, env: &Env) -> Result<Config, ConfigError> {
    load(toml, Path::new(origin), env, None, &reuse_none)
}

// === defaults and limits ===

/// `[agent].listen` when unset.
pub(super) const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9464);
/// `[agent].interval` when unset.
pub(super) const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// `[agent].timeout` when unset.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// `[agent].jitter` when unset.
pub(super) const DEFAULT_JITTER: f64 = 0.1;
/// `[agent].max_concurrency` when unset.
pub(super) const DEFAULT_MAX_CONCURRENCY: usize = 256;
/// `[agent].windows` when unset.
pub(super) const DEFAULT_WINDOWS: [Duration; 2] =
    [Duration::from_secs(5 * 60), Duration::from_secs(30 * 60)];
/// `[identity].reload` when unset.
pub(super) const DEFAULT_RELOAD: Duration = Duration::from_secs(30);
/// `[[discover]].refresh` when unset.
pub(super) const DEFAULT_REFRESH: Duration = Duration::from_secs(30);
/// `[target.http].max_body_bytes` when unset.
pub(super) const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// ALPN offered when `[target.http]` is set and `alpn` is not.
pub(super) const DEFAULT_HTTP_ALPN: [&str; 2] = ["h2", "http/1.1"];

/// The longest interval, timeout, refresh, reload or window: a day. Longer values are
/// almost certainly a unit mistake and would overflow deadline arithmetic elsewhere.
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// The most probes in flight.
const MAX_CONCURRENCY: usize = 65536;
/// The largest `max_body_bytes`: 16 MiB.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// The longest target or discover name, in characters.
const MAX_NAME_CHARS: usize = 200;
/// The longest `source`, in characters (a Kubernetes node name may have 253).
const MAX_SOURCE_CHARS: usize = 253;
/// Request headers a probe must not set: they frame the message or belong to one hop,
/// and HTTP/2 forbids the hop-by-hop ones outright.
const FORBIDDEN_HEADERS: [&str; 8] = [
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Appended to messages about a `mode = "plaintext"` probe's TLS keys.
const ONLY_TLS: &str = "only valid with mode = \"mtls\" or \"tls\"";

fn load(
    text: &str,
    file: &Path,
    env: &Env,
    base_dir: Option<&Path>,
    reuse: Reuse<'_>,
) -> Result<Config, ConfigError> {
    let (raw, targets) = raw::read(text, file, env)?;
    let cx = Cx {
        file,
        env,
        base_dir,
    };
    cx.config(raw, targets, reuse).map_err(|mut e| {
        EnvKeys::new(env).annotate(&mut e);
        e
    })
}

/// What every check needs to know to build its error.
struct Cx<'a> {
    file: &'a Path,
    env: &'a Env,
    base_dir: Option<&'a Path>,
}

/// Inherited by every target and discover.
struct Defaults<'a> {
    agent: &'a AgentConfig,
    identity: Option<&'a IdentityConfig>,
    /// Where a validated target that equals a running one is swapped for it.
    reuse: Reuse<'a>,
}

impl Cx<'_> {
    fn err(&self, key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError::new(self.file, Some(key.into()), problem)
    }

    /// Attaches `key` to a value parser's problem.
    fn at<T>(&self, key: &str, r: Result<T, String>) -> Result<T, ConfigError> {
        r.map_err(|problem| self.err(key, problem))
    }

    fn required(&self, key: &str, v: Option<String>, what: &str) -> Result<String, ConfigError> {
        v.ok_or_else(|| self.err(key, format!("missing; expected {what}")))
    }

    fn config(
        &self,
        raw: RawConfig,
        raw_targets: RawTargets<'_>,
        reuse: Reuse<'_>,
    ) -> Result<Config, ConfigError> {
        let agent = self.agent(raw.agent.unwrap_or_default())?;
        let fleet = raw.fleet.map(|f| self.fleet(f, &agent)).transpose()?;
        let identity = raw.identity.map(|i| self.identity(i)).transpose()?;
        let serve = raw.serve.map(|s| self.serve(s)).transpose()?;
        let defaults = Defaults {
            agent: &agent,
            identity: identity.as_ref(),
            reuse,
        };

        // Every edge name, with what introduced it, for uniqueness checks.
        let mut names: BTreeMap<String, NameOwner> = BTreeMap::new();
        let mut targets = Vec::new();
        self.targets(raw_targets, &defaults, &mut names, &mut targets)?;
        let mut included = Vec::new();
        for inc in super::include::read(&agent.include, self.file)? {
            let cx = Cx {
                file: &inc.file,
                env: self.env,
                base_dir: self.base_dir,
            };
            let first = targets.len();
            cx.targets(inc.targets, &defaults, &mut names, &mut targets)?;
            included.push(IncludedFile {
                targets: targets[first..]
                    .iter()
                    .filter(|t| t.origin == Origin::Configured)
                    .map(|t| t.name.clone())
                    .collect(),
                path: inc.file,
            });
        }

        let mut discover: Vec<Discover> = Vec::new();
        for (i, raw) in raw.discover.unwrap_or_default().into_iter().enumerate() {
            let base = format!("discover[{i}]");
            let d = self.discover(&base, raw, &defaults)?;
            if let Some(j) = discover.iter().position(|other| other.name == d.name) {
                return Err(self.err(
                    format!("{base}.name"),
                    format!(
                        "{:?} is already used by discover[{j}]; expected a unique name",
                        d.name
                    ),
                ));
            }
            discover.push(d);
        }
        // A target must not be able to collide with a discovered `<discover>/<ip>` edge.
        for (i, d) in discover.iter().enumerate() {
            let prefix = format!("{}/", d.name);
            if let Some((name, owner)) = names.iter().find(|(name, _)| name.starts_with(&prefix)) {
                return Err(ConfigError::new(
                    &owner.file,
                    Some(owner.key()),
                    format!(
                        "{name:?} starts with {prefix:?}, the prefix of the edges of \
                         discover[{i}]{} (named \"{}<ip>\"); expected a name outside that prefix",
                        if *owner.file == *self.file {
                            String::new()
                        } else {
                            format!(" in {}", self.file.display())
                        },
                        prefix
                    ),
                ));
            }
        }

        if identity.is_none() {
            let mtls_user = targets
                .iter()
                .find(|t| t.mode == Mode::Mtls)
                .map(|t| format!("target {:?}", t.name))
                .or_else(|| {
                    discover
                        .iter()
                        .find(|d| d.template.mode == Mode::Mtls)
                        .map(|d| format!("discover {:?}", d.name))
                });
            if let Some(user) = mtls_user {
                return Err(self.err(
                    "identity",
                    format!(
                        "missing [identity]: {user} uses mode = \"mtls\" (the default mode), \
                         which presents a client certificate; expected an [identity] table \
                         with cert, key and ca"
                    ),
                ));
            }
            // A tls probe verifies the peer against [identity].ca, its only trust bundle.
            // A tls probe with its own `ca` does not need it.
            let tls_user = targets
                .iter()
                .find(|t| t.mode == Mode::Tls && t.ca.is_none())
                .map(|t| format!("target {:?}", t.name))
                .or_else(|| {
                    discover
                        .iter()
                        .find(|d| d.template.mode == Mode::Tls && d.template.ca.is_none())
                        .map(|d| format!("discover {:?}", d.name))
                });
            if let Some(user) = tls_user {
                return Err(self.err(
                    "identity",
                    format!(
                        "missing [identity]: {user} uses mode = \"tls\", which verifies the \
                         peer against the trust bundle [identity].ca; expected an [identity] \
                         table with cert, key and ca, or ca = \"FILE\" (or \"system\") on the \
                         target"
                    ),
                ));
            }
            if serve.is_some() {
                return Err(self.err(
                    "identity",
                    "missing [identity]: [serve] presents this agent's certificate; expected \
                     an [identity] table with cert, key and ca",
                ));
            }
        }

        Ok(Config {
            origin: self.file.to_path_buf(),
            agent,
            identity,
            serve,
            targets,
            discover,
            included,
            fleet,
        })
    }

    /// Validates `raw` targets of this context's file (the config file or an included
    /// one) and appends them with their companions, keeping every name unique across
    /// all files.
    fn targets(
        &self,
        raw: RawTargets<'_>,
        defaults: &Defaults<'_>,
        names: &mut BTreeMap<String, NameOwner>,
        targets: &mut Vec<Arc<Target>>,
    ) -> Result<(), ConfigError> {
        let file: Arc<Path> = self.file.into();
        targets.reserve(raw.len());
        raw.each(self.file, |i, raw| {
            let base = format!("target[{i}]");
            let target = self.target(&base, raw, defaults)?;
            let name_key = format!("{base}.name");
            if let Some(first) = names.get(&target.name) {
                return Err(self.err(
                    &name_key,
                    format!(
                        "{:?} is already used by {}; expected a unique name",
                        target.name,
                        first.describe(self.file)
                    ),
                ));
            }
            names.insert(
                target.name.clone(),
                NameOwner {
                    index: i,
                    companion: false,
                    file: file.clone(),
                },
            );
            let companion = target.verify_strict.then(|| strict_companion(&target));
            // An unchanged target of a reload is dropped here, one at a time, in favour
            // of the running copy: the reload never holds two copies of the matrix.
            let keep = |t: Target| (defaults.reuse)(&t).unwrap_or_else(|| Arc::new(t));
            targets.push(keep(target));
            if let Some(companion) = companion {
                let key = format!("{base}.verify_strict");
                if let Some(first) = names.get(&companion.name) {
                    return Err(self.err(
                        &key,
                        format!(
                            "verify_strict adds the companion target {:?}, but that name is \
                             already used by {}; rename one of them",
                            companion.name,
                            first.describe(self.file)
                        ),
                    ));
                }
                names.insert(
                    companion.name.clone(),
                    NameOwner {
                        index: i,
                        companion: true,
                        file: file.clone(),
                    },
                );
                targets.push(keep(companion));
            }
            Ok(())
        })
    }
}

/// The `<name>/plaintext` edge `verify_strict = true` adds to `target`.
///
/// It always carries a request (the target's gRPC health check or HTTP request, else
/// `GET /`): a plaintext TCP connection that is accepted and then silent proves nothing,
/// while an answer in plaintext proves the workload still takes traffic outside mTLS.
fn strict_companion(target: &Target) -> Target {
    Target {
        name: format!("{}/plaintext", target.name),
        address: target.address.clone(),
        mode: Mode::Plaintext,
        expect: Expect::Reject,
        peer: PeerExpectation::DnsName(target.server_name.clone()),
        server_name: target.server_name.clone(),
        alpn: Vec::new(),
        tls_versions: default_tls_versions(),
        ca: None,
        verify_strict: false,
        interval: target.interval,
        timeout: target.timeout,
        // A gRPC target's companion makes the same call in h2c (SPEC §13).
        http: match &target.grpc {
            Some(_) => None,
            None => Some(target.http.clone().unwrap_or_else(default_http_check)),
        },
        grpc: target.grpc.clone(),
        origin: Origin::StrictCompanion {
            of: target.name.clone(),
        },
        // A companion moves with its target: the same agents probe both.
        fleet: target.fleet,
    }
}

/// `GET /`, statuses 200-399, the default body limit.
fn default_http_check() -> HttpCheck {
    HttpCheck {
        method: "GET".to_owned(),
        path: "/".to_owned(),
        expect_status: StatusSet::default_success(),
        headers: Vec::new(),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
    }
}

fn default_tls_versions() -> Vec<TlsVersion> {
    vec![TlsVersion::V1_2, TlsVersion::V1_3]
}

/// The configured trust domain first; when it is the mesh's own domain or one of its
/// aliases, the whole family (own domain and aliases) follows, without repeats.
fn expand_trust_domain(td: TrustDomain, identity: Option<&IdentityConfig>) -> Vec<TrustDomain> {
    let mut out = vec![td];
    let Some(identity) = identity else {
        return out;
    };
    let Some(own) = &identity.trust_domain else {
        return out;
    };
    let family: Vec<&TrustDomain> = std::iter::once(own)
        .chain(&identity.trust_domain_aliases)
        .collect();
    if family.contains(&&out[0]) {
        for td in family {
            if !out.contains(td) {
                out.push(td.clone());
            }
        }
    }
    out
}

/// What introduced an edge name: a `[[target]]` or its `verify_strict` companion.
///
/// One per target of every file while a config loads, so it is kept small: the index
/// rather than its key's text, and one shared copy of the file's path.
struct NameOwner {
    /// `N` of `target[N]`.
    index: usize,
    companion: bool,
    /// The file it came from: the config file or an included one.
    file: Arc<Path>,
}

impl NameOwner {
    /// The key to blame for the name.
    fn key(&self) -> String {
        if self.companion {
            format!("target[{}].verify_strict", self.index)
        } else {
            format!("target[{}].name", self.index)
        }
    }
}

impl NameOwner {
    /// "target[0]" when in `here`, the file being checked; else "target[0] in FILE".
    fn describe(&self, here: &Path) -> String {
        if *self.file == *here {
            self.to_string()
        } else {
            format!("{self} in {}", self.file.display())
        }
    }
}

impl std::fmt::Display for NameOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.companion {
            write!(f, "the verify_strict companion of target[{}]", self.index)
        } else {
            write!(f, "target[{}]", self.index)
        }
    }
}
