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
use std::time::Duration;

use crate::identity::spiffe::{SpiffeError, SpiffeId, TrustDomain};

use super::error::EnvKeys;
use super::raw::{
    self, RawAgent, RawConfig, RawDiscover, RawHttp, RawIdentity, RawProbe, RawServe, RawTarget,
};
use super::{
    AgentConfig, ClientAuth, Config, ConfigError, Discover, Env, Expect, HostPort, HttpCheck,
    IdentityConfig, Mode, Origin, PeerExpectation, ServeConfig, StatusSet, Target, TlsVersion,
};

/// Loads the file at `path`; relative identity paths are resolved against its
/// directory.
pub(super) fn load_file(path: &Path, env: &Env) -> Result<Config, ConfigError> {
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
    load(&text, path, env, path.parent())
}

/// Loads config text named `origin` in messages; paths are kept as written.
pub(super) fn load_str(toml: &str, origin: &str, env: &Env) -> Result<Config, ConfigError> {
    load(toml, Path::new(origin), env, None)
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
) -> Result<Config, ConfigError> {
    let raw = raw::read(text, file, env)?;
    let cx = Cx {
        file,
        env,
        base_dir,
    };
    cx.config(raw).map_err(|mut e| {
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

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let agent = self.agent(raw.agent.unwrap_or_default())?;
        let identity = raw.identity.map(|i| self.identity(i)).transpose()?;
        let serve = raw.serve.map(|s| self.serve(s)).transpose()?;
        let defaults = Defaults {
            agent: &agent,
            identity: identity.as_ref(),
        };

        // Every edge name, with what introduced it, for uniqueness checks.
        let mut names: BTreeMap<String, NameOwner> = BTreeMap::new();
        let mut targets = Vec::new();
        for (i, raw) in raw.target.unwrap_or_default().into_iter().enumerate() {
            let base = format!("target[{i}]");
            let target = self.target(&base, raw, &defaults)?;
            let name_key = format!("{base}.name");
            if let Some(first) = names.get(&target.name) {
                return Err(self.err(
                    &name_key,
                    format!(
                        "{:?} is already used by {first}; expected a unique name",
                        target.name
                    ),
                ));
            }
            names.insert(
                target.name.clone(),
                NameOwner {
                    base: base.clone(),
                    companion: false,
                },
            );
            let companion = target.verify_strict.then(|| strict_companion(&target));
            targets.push(target);
            if let Some(companion) = companion {
                let key = format!("{base}.verify_strict");
                if let Some(first) = names.get(&companion.name) {
                    return Err(self.err(
                        &key,
                        format!(
                            "verify_strict adds the companion target {:?}, but that name is \
                             already used by {first}; rename one of them",
                            companion.name
                        ),
                    ));
                }
                names.insert(
                    companion.name.clone(),
                    NameOwner {
                        base: base.clone(),
                        companion: true,
                    },
                );
                targets.push(companion);
            }
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
                return Err(self.err(
                    owner.key(),
                    format!(
                        "{name:?} starts with {prefix:?}, the prefix of the edges of \
                         discover[{i}] (named \"{}<ip>\"); expected a name outside that prefix",
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
            let tls_user = targets
                .iter()
                .find(|t| t.mode == Mode::Tls)
                .map(|t| format!("target {:?}", t.name))
                .or_else(|| {
                    discover
                        .iter()
                        .find(|d| d.template.mode == Mode::Tls)
                        .map(|d| format!("discover {:?}", d.name))
                });
            if let Some(user) = tls_user {
                return Err(self.err(
                    "identity",
                    format!(
                        "missing [identity]: {user} uses mode = \"tls\", which verifies the \
                         peer against the trust bundle [identity].ca; expected an [identity] \
                         table with cert, key and ca"
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
        })
    }

    // === [agent] ===

    fn agent(&self, raw: RawAgent) -> Result<AgentConfig, ConfigError> {
        let source = match raw.source {
            Some(s) => self.at("agent.source", check_source(&s).map(|()| s))?,
            None => self.default_source()?,
        };
        let listen = match raw.listen {
            Some(s) => self.at("agent.listen", parse_socket_addr(&s))?,
            None => DEFAULT_LISTEN,
        };
        let interval = self.duration_or("agent.interval", raw.interval, DEFAULT_INTERVAL)?;
        let (timeout, explicit) = match raw.timeout {
            Some(s) => (self.at("agent.timeout", parse_positive_duration(&s))?, true),
            None => (DEFAULT_TIMEOUT.min(interval), false),
        };
        if explicit && timeout > interval {
            return Err(self.err(
                "agent.timeout",
                format!(
                    "{} is longer than agent.interval {}; expected a timeout no longer than \
                     the interval",
                    fmt_duration(timeout),
                    fmt_duration(interval)
                ),
            ));
        }
        let jitter = match raw.jitter {
            Some(s) => self.at("agent.jitter", parse_jitter(&s))?,
            None => DEFAULT_JITTER,
        };
        let max_concurrency = match raw.max_concurrency {
            Some(s) => self.at(
                "agent.max_concurrency",
                parse_int_in(&s, 1, MAX_CONCURRENCY, "a number of probes"),
            )?,
            None => DEFAULT_MAX_CONCURRENCY,
        };
        let windows = match raw.windows {
            Some(list) => self.windows(&list)?,
            None => DEFAULT_WINDOWS.to_vec(),
        };
        let mut dns_servers: Vec<SocketAddr> = Vec::new();
        for (i, s) in raw.dns_servers.unwrap_or_default().iter().enumerate() {
            let key = format!("agent.dns_servers[{i}]");
            let addr = self.at(&key, parse_dns_server(s))?;
            if let Some(j) = dns_servers.iter().position(|a| *a == addr) {
                return Err(self.err(
                    key,
                    format!("{addr} is already listed as agent.dns_servers[{j}]"),
                ));
            }
            dns_servers.push(addr);
        }
        Ok(AgentConfig {
            source,
            listen,
            interval,
            timeout,
            jitter,
            max_concurrency,
            windows,
            dns_servers,
        })
    }

    /// `$NODE_NAME`, else the hostname.
    fn default_source(&self) -> Result<String, ConfigError> {
        if let Some(node) = self.env.get("NODE_NAME").filter(|n| !n.trim().is_empty()) {
            return self.at(
                "agent.source",
                check_source(node)
                    .map(|()| node.clone())
                    .map_err(|p| format!("from $NODE_NAME: {p}")),
            );
        }
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        self.at(
            "agent.source",
            check_source(&host).map(|()| host.clone()).map_err(|p| {
                format!(
                    "not set and $NODE_NAME is unset, so the hostname is used, but it is \
                     unusable: {p}; set agent.source"
                )
            }),
        )
    }

    fn windows(&self, list: &[String]) -> Result<Vec<Duration>, ConfigError> {
        if list.is_empty() {
            return Err(self.err(
                "agent.windows",
                "empty; expected at least one success-ratio window, e.g. [\"5m\", \"30m\"]",
            ));
        }
        let mut windows: Vec<Duration> = Vec::new();
        for (i, s) in list.iter().enumerate() {
            let key = format!("agent.windows[{i}]");
            let w = self.at(&key, parse_positive_duration(s))?;
            if let Some(j) = windows.iter().position(|other| *other == w) {
                return Err(self.err(
                    key,
                    format!(
                        "{} is already listed as agent.windows[{j}]; expected distinct windows",
                        fmt_duration(w)
                    ),
                ));
            }
            windows.push(w);
        }
        windows.sort();
        Ok(windows)
    }

    // === [identity] and [serve] ===

    fn identity(&self, raw: RawIdentity) -> Result<IdentityConfig, ConfigError> {
        let cert = self.identity_path("identity.cert", raw.cert, "the PEM certificate chain")?;
        let key = self.identity_path("identity.key", raw.key, "the PEM private key")?;
        let ca = self.identity_path("identity.ca", raw.ca, "the PEM trust bundle")?;
        let reload = self.duration_or("identity.reload", raw.reload, DEFAULT_RELOAD)?;
        let trust_domain = raw
            .trust_domain
            .map(|s| self.at("identity.trust_domain", parse_trust_domain(&s)))
            .transpose()?;
        let mut trust_domain_aliases: Vec<TrustDomain> = Vec::new();
        let raw_aliases = raw.trust_domain_aliases.unwrap_or_default();
        if !raw_aliases.is_empty() && trust_domain.is_none() {
            return Err(self.err(
                "identity.trust_domain_aliases",
                "set without identity.trust_domain; expected the mesh's own trust domain in \
                 identity.trust_domain, of which these are aliases",
            ));
        }
        for (i, s) in raw_aliases.iter().enumerate() {
            let key = format!("identity.trust_domain_aliases[{i}]");
            let td = self.at(&key, parse_trust_domain(s.trim()))?;
            if Some(&td) == trust_domain.as_ref() {
                return Err(self.err(
                    key,
                    format!("{td:?} is identity.trust_domain itself; expected another domain"),
                ));
            }
            if trust_domain_aliases.contains(&td) {
                return Err(self.err(key, format!("{td:?} is listed twice")));
            }
            trust_domain_aliases.push(td);
        }
        Ok(IdentityConfig {
            cert,
            key,
            ca,
            reload,
            trust_domain,
            trust_domain_aliases,
        })
    }

    /// A required, non-empty path; relative paths are taken from the config file's
    /// directory (as Prometheus does), so a config and its certs can move together.
    fn identity_path(
        &self,
        key: &str,
        v: Option<String>,
        what: &str,
    ) -> Result<PathBuf, ConfigError> {
        let s = self.required(key, v, &format!("the path of {what}"))?;
        if s.trim().is_empty() || s.contains('\0') {
            return Err(self.err(key, format!("got {s:?}; expected the path of {what}")));
        }
        let path = PathBuf::from(s);
        Ok(match self.base_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        })
    }

    fn serve(&self, raw: RawServe) -> Result<ServeConfig, ConfigError> {
        let listen = self.required(
            "serve.listen",
            raw.listen,
            "the IP:port of the mTLS listener, e.g. \"0.0.0.0:8443\"",
        )?;
        let listen = self.at("serve.listen", parse_socket_addr(&listen))?;
        let client_auth = match raw.client_auth.as_deref() {
            None | Some("require") => ClientAuth::Require,
            Some("optional") => ClientAuth::Optional,
            Some(other) => {
                return Err(self.err(
                    "serve.client_auth",
                    format!("got {other:?}; expected \"require\" or \"optional\""),
                ));
            }
        };
        Ok(ServeConfig {
            listen,
            client_auth,
        })
    }

    // === [[target]] and [[discover]] ===

    fn target(
        &self,
        base: &str,
        mut raw: RawTarget,
        defaults: &Defaults<'_>,
    ) -> Result<Target, ConfigError> {
        let name_key = format!("{base}.name");
        let name = self.required(
            &name_key,
            raw.name.take(),
            "the target's name, e.g. \"production/api\"",
        )?;
        let name = self.at(&name_key, check_name(&name).map(|()| name.clone()))?;
        let address_key = format!("{base}.address");
        let address = self.required(
            &address_key,
            raw.address.take(),
            "host:port, e.g. \"api.production.svc.cluster.local:8080\"",
        )?;
        let address = self.at(&address_key, parse_host_port(&address))?;
        let server_name = address.host.trim_end_matches('.').to_owned();
        self.probe(
            base,
            name.clone(),
            address,
            server_name,
            raw.take_probe(),
            defaults,
            Origin::Configured,
        )
    }

    fn discover(
        &self,
        base: &str,
        mut raw: RawDiscover,
        defaults: &Defaults<'_>,
    ) -> Result<Discover, ConfigError> {
        let name_key = format!("{base}.name");
        let name = self.required(
            &name_key,
            raw.name.take(),
            "the prefix of the edge names, e.g. \"agents\"",
        )?;
        let name = self.at(&name_key, check_name(&name).map(|()| name.clone()))?;
        let dns_key = format!("{base}.dns");
        let dns = self.required(
            &dns_key,
            raw.dns.take(),
            "a DNS name to resolve, e.g. \"mtls-prober.monitoring.svc.cluster.local\"",
        )?;
        if dns.parse::<IpAddr>().is_ok() {
            return Err(self.err(
                &dns_key,
                format!(
                    "got the IP address {dns:?}; expected a DNS name to resolve (probe a fixed \
                     address with a [[target]])"
                ),
            ));
        }
        self.at(
            &dns_key,
            check_dns_name(&dns).map_err(|p| format!("got {dns:?}: {p}")),
        )?;
        let port_key = format!("{base}.port");
        let port = self.required(&port_key, raw.port.take(), "the port to probe, e.g. 8443")?;
        let port = self.at(&port_key, parse_port(&port))?;
        let refresh = self.duration_or(
            &format!("{base}.refresh"),
            raw.refresh.take(),
            DEFAULT_REFRESH,
        )?;

        let probe = raw.take_probe();
        if probe.verify_strict.is_some() {
            return Err(self.err(
                format!("{base}.verify_strict"),
                "not supported in [[discover]]; expected it only in [[target]] (to check that \
                 discovered peers refuse plaintext, add a [[discover]] with the same dns and \
                 port, mode = \"plaintext\" and expect = \"reject\")",
            ));
        }
        let server_name = dns.trim_end_matches('.').to_owned();
        let address = HostPort {
            host: dns.clone(),
            port,
        };
        let template = self.probe(
            base,
            name.clone(),
            address,
            server_name,
            probe,
            defaults,
            Origin::Discovered { of: name.clone() },
        )?;
        Ok(Discover {
            name,
            dns,
            port,
            refresh,
            template,
        })
    }

    /// The probe keys common to `[[target]]` and `[[discover]]`.
    #[allow(clippy::too_many_arguments)]
    fn probe(
        &self,
        base: &str,
        name: String,
        address: HostPort,
        default_server_name: String,
        raw: RawProbe,
        defaults: &Defaults<'_>,
        origin: Origin,
    ) -> Result<Target, ConfigError> {
        let key = |field: &str| format!("{base}.{field}");

        let mode = match raw.mode.as_deref() {
            None | Some("mtls") => Mode::Mtls,
            Some("tls") => Mode::Tls,
            Some("plaintext") => Mode::Plaintext,
            Some(other) => {
                return Err(self.err(
                    key("mode"),
                    format!("got {other:?}; expected one of \"mtls\", \"tls\", \"plaintext\""),
                ));
            }
        };
        let expect = match raw.expect.as_deref() {
            None | Some("success") => Expect::Success,
            Some("reject") => Expect::Reject,
            Some(other) => {
                return Err(self.err(
                    key("expect"),
                    format!("got {other:?}; expected \"success\" or \"reject\""),
                ));
            }
        };

        if mode == Mode::Plaintext {
            let tls_keys = [
                ("spiffe_id", raw.spiffe_id.is_some()),
                ("trust_domain", raw.trust_domain.is_some()),
                ("alpn", raw.alpn.is_some()),
                ("tls_versions", raw.tls_versions.is_some()),
                ("verify_strict", raw.verify_strict.is_some()),
            ];
            if let Some((field, _)) = tls_keys.iter().find(|(_, set)| *set) {
                return Err(self.err(
                    key(field),
                    format!("{ONLY_TLS}; this probe has mode = \"plaintext\", which does no TLS"),
                ));
            }
        }

        let verify_strict = match &raw.verify_strict {
            Some(s) => self.at(&key("verify_strict"), parse_bool(s))?,
            None => false,
        };
        if verify_strict && expect == Expect::Reject {
            return Err(self.err(
                key("verify_strict"),
                "only valid with expect = \"success\": it adds a plaintext probe that must be \
                 refused next to a TLS probe that must pass; this probe has expect = \"reject\"",
            ));
        }

        let server_name = match raw.server_name {
            Some(s) => {
                self.at(&key("server_name"), check_server_name(&s))?;
                s
            }
            None => default_server_name,
        };

        let peer = match (raw.spiffe_id, raw.trust_domain) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    key("trust_domain"),
                    "set together with spiffe_id; expected at most one of them (spiffe_id for \
                     one exact peer, trust_domain for any peer of a mesh)",
                ));
            }
            (Some(id), None) => {
                PeerExpectation::SpiffeId(self.at(&key("spiffe_id"), parse_spiffe_id(&id))?)
            }
            (None, Some(td)) => {
                let td = self.at(&key("trust_domain"), parse_trust_domain(&td))?;
                PeerExpectation::TrustDomain(expand_trust_domain(td, defaults.identity))
            }
            (None, None) => PeerExpectation::DnsName(server_name.clone()),
        };

        let http = match raw.http {
            Some(h) => Some(self.http(&key("http"), h)?),
            None => None,
        };

        let alpn = match raw.alpn {
            Some(list) => self.alpn(&key("alpn"), list)?,
            None if http.is_some() && mode != Mode::Plaintext => {
                DEFAULT_HTTP_ALPN.iter().map(|s| (*s).to_owned()).collect()
            }
            None => Vec::new(),
        };
        let tls_versions = match raw.tls_versions {
            Some(list) => self.tls_versions(&key("tls_versions"), &list)?,
            None => default_tls_versions(),
        };

        let (interval, interval_from) = match raw.interval {
            Some(s) => (self.at(&key("interval"), parse_positive_duration(&s))?, ""),
            None => (defaults.agent.interval, " (from agent.interval)"),
        };
        let timeout = match raw.timeout {
            Some(s) => {
                let timeout = self.at(&key("timeout"), parse_positive_duration(&s))?;
                if timeout > interval {
                    return Err(self.err(
                        key("timeout"),
                        format!(
                            "{} is longer than the interval {}{interval_from}; expected a \
                             timeout no longer than the interval",
                            fmt_duration(timeout),
                            fmt_duration(interval),
                        ),
                    ));
                }
                timeout
            }
            // The inherited timeout never makes a config invalid: a target with a short
            // interval simply gets that interval as its timeout.
            None => defaults.agent.timeout.min(interval),
        };

        Ok(Target {
            name,
            address,
            mode,
            expect,
            peer,
            server_name,
            alpn,
            tls_versions,
            verify_strict,
            interval,
            timeout,
            http,
            origin,
        })
    }

    fn alpn(&self, key: &str, list: Vec<String>) -> Result<Vec<String>, ConfigError> {
        for (i, p) in list.iter().enumerate() {
            let item = format!("{key}[{i}]");
            if p.is_empty() || p.len() > 255 {
                return Err(self.err(
                    item,
                    format!(
                        "got {p:?} ({} bytes); expected a protocol name of 1 to 255 bytes, \
                         e.g. \"h2\"",
                        p.len()
                    ),
                ));
            }
            if let Some(j) = list[..i].iter().position(|q| q == p) {
                return Err(self.err(item, format!("{p:?} is already listed as {key}[{j}]")));
            }
        }
        Ok(list)
    }

    fn tls_versions(&self, key: &str, list: &[String]) -> Result<Vec<TlsVersion>, ConfigError> {
        if list.is_empty() {
            return Err(self.err(key, "empty; expected one or both of \"1.2\" and \"1.3\""));
        }
        let mut versions = Vec::new();
        for (i, s) in list.iter().enumerate() {
            let item = format!("{key}[{i}]");
            let v = match s.trim() {
                "1.2" => TlsVersion::V1_2,
                "1.3" => TlsVersion::V1_3,
                "1.0" | "1.1" => {
                    return Err(self.err(
                        item,
                        format!(
                            "got {s:?}; expected \"1.2\" or \"1.3\" (TLS 1.1 and older are not \
                             supported)"
                        ),
                    ));
                }
                _ => {
                    return Err(self.err(item, format!("got {s:?}; expected \"1.2\" or \"1.3\"")));
                }
            };
            if versions.contains(&v) {
                return Err(self.err(item, format!("{s:?} is listed twice")));
            }
            versions.push(v);
        }
        versions.sort();
        Ok(versions)
    }

    // === [target.http] ===

    fn http(&self, base: &str, raw: RawHttp) -> Result<HttpCheck, ConfigError> {
        let key = |field: &str| format!("{base}.{field}");
        let method = match raw.method {
            Some(m) => self.at(&key("method"), parse_method(&m))?,
            None => "GET".to_owned(),
        };
        let path = match raw.path {
            Some(p) => {
                self.at(&key("path"), check_http_path(&p))?;
                p
            }
            None => "/".to_owned(),
        };
        let expect_status = match raw.expect_status {
            Some(list) if list.is_empty() => {
                return Err(self.err(
                    key("expect_status"),
                    "empty, so no response could pass; expected status codes or ranges, e.g. \
                     [200] or [\"200-399\"] (omit the key for the default 200-399)",
                ));
            }
            Some(list) => {
                let mut ranges = Vec::new();
                for (i, s) in list.iter().enumerate() {
                    ranges
                        .push(self.at(&format!("{}[{i}]", key("expect_status")), parse_status(s))?);
                }
                StatusSet::from_ranges(ranges)
            }
            None => StatusSet::default_success(),
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in raw.headers.unwrap_or_default() {
            let header_key = format!("{}.{name}", key("headers"));
            let lower = self.at(&header_key, parse_header_name(&name))?;
            self.at(&header_key, check_header_value(&value))?;
            if headers.iter().any(|(n, _)| *n == lower) {
                return Err(self.err(
                    header_key,
                    format!("{lower:?} is set twice (header names are case-insensitive)"),
                ));
            }
            headers.push((lower, value));
        }
        // The table's own order is lost in the `config` crate's maps; sort for a stable
        // request and a stable `check` output.
        headers.sort();
        let max_body_bytes = match raw.max_body_bytes {
            Some(s) => self.at(
                &key("max_body_bytes"),
                parse_int_in(&s, 0, MAX_BODY_BYTES, "a number of bytes"),
            )?,
            None => DEFAULT_MAX_BODY_BYTES,
        };
        Ok(HttpCheck {
            method,
            path,
            expect_status,
            headers,
            max_body_bytes,
        })
    }

    // === helpers ===

    fn duration_or(
        &self,
        key: &str,
        v: Option<String>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match v {
            Some(s) => self.at(key, parse_positive_duration(&s)),
            None => Ok(default),
        }
    }
}

/// The `<name>/plaintext` edge `verify_strict = true` adds to `target`.
///
/// It always carries an HTTP request (the target's, else `GET /`): a plaintext TCP
/// connection that is accepted and then silent proves nothing, while an HTTP answer in
/// plaintext proves the workload still takes traffic outside mTLS.
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
        verify_strict: false,
        interval: target.interval,
        timeout: target.timeout,
        http: Some(target.http.clone().unwrap_or_else(default_http_check)),
        origin: Origin::StrictCompanion {
            of: target.name.clone(),
        },
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
struct NameOwner {
    /// `target[N]`.
    base: String,
    companion: bool,
}

impl NameOwner {
    /// The key to blame for the name.
    fn key(&self) -> String {
        if self.companion {
            format!("{}.verify_strict", self.base)
        } else {
            format!("{}.name", self.base)
        }
    }
}

impl std::fmt::Display for NameOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.companion {
            write!(f, "the verify_strict companion of {}", self.base)
        } else {
            f.write_str(&self.base)
        }
    }
}

// === value parsers: each returns what was found and what was expected ===

fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A humantime duration, > 0 and at most a day.
fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.parse::<f64>().is_ok() {
        return Err(format!(
            "got the bare number {s:?}; expected a duration with a unit, e.g. \"{t}s\" or \
             \"{t}ms\""
        ));
    }
    let d = humantime::parse_duration(t).map_err(|e| {
        format!(
            "got {s:?}, which is not a duration ({e}); expected a duration like \"500ms\", \
             \"10s\" or \"30m\""
        )
    })?;
    if d.is_zero() {
        return Err(format!("got {s:?}; expected a duration greater than zero"));
    }
    if d > MAX_DURATION {
        return Err(format!(
            "got {s:?}; expected a duration of at most {}",
            fmt_duration(MAX_DURATION)
        ));
    }
    Ok(d)
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("got {s:?}; expected true or false")),
    }
}

fn parse_jitter(s: &str) -> Result<f64, String> {
    let j: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("got {s:?}; expected a fraction in [0, 1), e.g. 0.1"))?;
    if !(0.0..1.0).contains(&j) {
        return Err(format!(
            "got {s}; expected a fraction in [0, 1), e.g. 0.1 for 10% of the interval"
        ));
    }
    Ok(j)
}

/// An integer in `lo..=hi`, `what` naming the unit in the message.
fn parse_int_in(s: &str, lo: usize, hi: usize, what: &str) -> Result<usize, String> {
    let expected = format!("expected {what} from {lo} to {hi}");
    let n: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("got {s:?}; {expected}"))?;
    usize::try_from(n)
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| format!("got {n}; {expected}"))
}

fn parse_port(s: &str) -> Result<u16, String> {
    let n: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("got {s:?}; expected a port number from 1 to 65535"))?;
    u16::try_from(n)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("got port {n}; expected a port number from 1 to 65535"))
}

/// `IP:port` for a listener.
fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s.trim().parse().map_err(|_| {
        format!("got {s:?}; expected IP:port like \"0.0.0.0:9464\" or \"[::]:9464\"")
    })?;
    Ok(addr)
}

/// `ip:port`, or `ip` meaning port 53.
fn parse_dns_server(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    let bare = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    let addr = match (t.parse::<SocketAddr>(), bare.parse::<IpAddr>()) {
        (Ok(addr), _) => addr,
        (_, Ok(ip)) => SocketAddr::new(ip, 53),
        _ => {
            return Err(format!(
                "got {s:?}; expected a resolver's IP, optionally with a port: \"10.96.0.10\", \
                 \"10.96.0.10:53\" or \"[fd00::10]:53\""
            ));
        }
    };
    if addr.port() == 0 {
        return Err(format!(
            "got port 0 in {s:?}; expected a port number from 1 to 65535"
        ));
    }
    Ok(addr)
}

/// `host:port` with a DNS name, an IPv4 address or a bracketed IPv6 address.
fn parse_host_port(s: &str) -> Result<HostPort, String> {
    const EXPECTED: &str = "expected host:port like \"api.production.svc.cluster.local:8080\", \
                            \"10.0.0.5:8080\" or \"[fd00::5]:8080\"";
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("got {s:?}, with no closing ']'; {EXPECTED}"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("got {s:?}, with no port; {EXPECTED}"))?;
        host.parse::<Ipv6Addr>()
            .map_err(|_| format!("got {s:?}: {host:?} is not an IPv6 address; {EXPECTED}"))?;
        (host, port)
    } else {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("got {s:?}, with no port; {EXPECTED}"))?;
        if host.contains(':') {
            return Err(format!(
                "got {s:?}: an IPv6 address needs brackets, e.g. \"[fd00::5]:8080\"; {EXPECTED}"
            ));
        }
        if host.parse::<Ipv4Addr>().is_err() {
            check_dns_name(host).map_err(|p| format!("got {s:?}: {p}; {EXPECTED}"))?;
        }
        (host, port)
    };
    let port = parse_port(port).map_err(|p| format!("in {s:?}: {p}"))?;
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

/// A DNS name: labels of 1-63 letters, digits, '-' or '_' (not starting or ending
/// with '-'), 253 characters at most, one optional trailing dot, and not all-numeric
/// in its last label (that would be a mistyped IPv4 address).
fn check_dns_name(s: &str) -> Result<(), String> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.is_empty() {
        return Err("the host name is empty".to_owned());
    }
    if name.len() > 253 {
        return Err(format!(
            "the host name has {} characters; a DNS name has at most 253",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!(
                "{name:?} has an empty label; a DNS name looks like \"api.production.svc\""
            ));
        }
        if label.len() > 63 {
            return Err(format!("the label {label:?} is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "the label {label:?} has a character other than letters, digits, '-' and '_'"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label {label:?} starts or ends with '-'"));
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "{name:?} is neither an IPv4 address nor a DNS name (its last label is numeric)"
        ));
    }
    Ok(())
}

/// SNI / expected DNS name: a DNS name or an IP address (IPv6 without brackets).
fn check_server_name(s: &str) -> Result<(), String> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    check_dns_name(s).map_err(|p| {
        format!("got {s:?}: {p}; expected a DNS name like \"api.production.svc.cluster.local\" or an IP address")
    })
}

/// A target or discover name: the `target` label of every series of the edge.
fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty; expected a name such as \"production/api\"".to_owned());
    }
    if s.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "{} characters long; expected at most {MAX_NAME_CHARS}",
            s.chars().count()
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!(
            "got {s:?}; expected a name without control characters"
        ));
    }
    if s.trim() != s {
        return Err(format!(
            "got {s:?}; expected a name without leading or trailing spaces"
        ));
    }
    Ok(())
}

fn check_source(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err(format!(
            "got {s:?}; expected a non-empty name, e.g. the node name"
        ));
    }
    if s.chars().count() > MAX_SOURCE_CHARS || s.chars().any(char::is_control) {
        return Err(format!(
            "got {s:?}; expected at most {MAX_SOURCE_CHARS} characters and no control characters"
        ));
    }
    Ok(())
}

fn parse_spiffe_id(s: &str) -> Result<SpiffeId, String> {
    s.parse().map_err(|e| {
        let why = match e {
            SpiffeError::Scheme => "it does not start with \"spiffe://\"".to_owned(),
            other => other.to_string(),
        };
        format!(
            "got {s:?}: {why}; expected a SPIFFE ID like \
             \"spiffe://cluster.local/ns/<namespace>/sa/<service-account>\""
        )
    })
}

fn parse_trust_domain(s: &str) -> Result<TrustDomain, String> {
    s.parse()
        .map_err(|e| format!("got {s:?}: {e}; expected a trust domain like \"cluster.local\""))
}

/// An HTTP method: letters only, stored uppercase.
fn parse_method(s: &str) -> Result<String, String> {
    let upper = s.trim().to_ascii_uppercase();
    if upper.is_empty() || upper.len() > 20 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "got {s:?}; expected an HTTP method such as \"GET\", \"HEAD\" or \"POST\""
        ));
    }
    Ok(upper)
}

/// A request path: starts with '/', visible ASCII only, no fragment.
fn check_http_path(s: &str) -> Result<(), String> {
    let expected = "expected a path starting with '/', e.g. \"/healthz\" or \"/ready?full=1\", \
                    of visible ASCII characters (percent-encode others)";
    if !s.starts_with('/') {
        return Err(format!("got {s:?}; {expected}"));
    }
    if s.len() > 8192 {
        return Err(format!("{} bytes long; expected at most 8192", s.len()));
    }
    if let Some(c) = s.chars().find(|c| !c.is_ascii_graphic() || *c == '#') {
        return Err(format!(
            "got {s:?}, which contains {c:?}; {expected}, and no '#'"
        ));
    }
    Ok(())
}

/// `200`, `"200-299"` or `"2xx"`, within 100..=599.
fn parse_status(s: &str) -> Result<(u16, u16), String> {
    const EXPECTED: &str =
        "expected a status code like 200, a range like \"200-299\" or a class like \"2xx\"";
    let t = s.trim();
    let code = |c: &str| -> Result<u16, String> {
        let n: u16 = c
            .trim()
            .parse()
            .map_err(|_| format!("got {s:?}; {EXPECTED}"))?;
        if !(100..=599).contains(&n) {
            return Err(format!("got {n}; expected a status code from 100 to 599"));
        }
        Ok(n)
    };
    if let Some(class) = t.strip_suffix("xx").or_else(|| t.strip_suffix("XX")) {
        return match class.as_bytes() {
            [d @ b'1'..=b'5'] => {
                let lo = u16::from(d - b'0') * 100;
                Ok((lo, lo + 99))
            }
            _ => Err(format!(
                "got {s:?}; expected a class from \"1xx\" to \"5xx\""
            )),
        };
    }
    if let Some((lo, hi)) = t.split_once('-') {
        let (lo, hi) = (code(lo)?, code(hi)?);
        if lo > hi {
            return Err(format!(
                "got {s:?}; expected a range with its low end first"
            ));
        }
        return Ok((lo, hi));
    }
    let n = code(t)?;
    Ok((n, n))
}

/// A header name: an HTTP token (RFC 9110 `tchar`s), returned lowercase.
fn parse_header_name(s: &str) -> Result<String, String> {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if s.is_empty() || !s.bytes().all(is_tchar) {
        return Err(format!(
            "got the header name {s:?}; expected an HTTP header name such as \"x-probe\" \
             (letters, digits and !#$%&'*+-.^_`|~)"
        ));
    }
    let lower = s.to_ascii_lowercase();
    if FORBIDDEN_HEADERS.contains(&lower.as_str()) {
        return Err(format!(
            "{lower:?} is managed by the HTTP client and cannot be set; expected another header"
        ));
    }
    Ok(lower)
}

/// A header value: visible ASCII and spaces, no CR/LF.
fn check_header_value(s: &str) -> Result<(), String> {
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_graphic() || *c == ' ')) {
        return Err(format!(
            "the value {s:?} contains {c:?}; expected visible ASCII characters and spaces"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/config")
            .join(rel)
    }

    fn repo_probes_toml() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("probes.toml")
    }

    fn env(vars: &[(&str, &str)]) -> Env {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        load_str(text, "inline.toml", &Env::new())
    }

    /// Loads `text` and returns the error's key and problem.
    fn err_of(text: &str) -> (Option<String>, String) {
        let e = load_text(text).expect_err(text);
        (e.key, e.problem)
    }

    const PLAIN: &str = "[[target]]\nname = \"web\"\naddress = \"web:80\"\nmode = \"plaintext\"\n";
    const IDENTITY: &str = "[identity]\ncert = \"c.pem\"\nkey = \"k.pem\"\nca = \"ca.pem\"\n";

    // === fixtures ===

    /// One defect per file: (file, key path, fragment of what was expected).
    const BAD: &[(&str, Option<&str>, &str)] = &[
        (
            "address-without-port.toml",
            Some("target[0].address"),
            "with no port; expected host:port",
        ),
        (
            "aliases-without-trust-domain.toml",
            Some("identity.trust_domain_aliases"),
            "set without identity.trust_domain",
        ),
        (
            "bad-expect.toml",
            Some("target[0].expect"),
            "got \"fail\"; expected \"success\" or \"reject\"",
        ),
        (
            "bad-header-name.toml",
            Some("target[0].http.headers.x probe"),
            "expected an HTTP header name",
        ),
        (
            "bad-listen.toml",
            Some("agent.listen"),
            "got \"localhost:9464\"; expected IP:port",
        ),
        (
            "bad-mode.toml",
            Some("target[0].mode"),
            "got \"mTLS\"; expected one of \"mtls\", \"tls\", \"plaintext\"",
        ),
        (
            "bad-spiffe-id.toml",
            Some("target[2].spiffe_id"),
            "got \"spifee://cluster.local/ns/prod/sa/c\": it does not start with \"spiffe://\"; expected a SPIFFE ID like \"spiffe://cluster.local/ns/",
        ),
        (
            "companion-collision.toml",
            Some("target[1].name"),
            "\"api/plaintext\" is already used by the verify_strict companion of target[0]",
        ),
        (
            "discover-prefix-collision.toml",
            Some("target[0].name"),
            "prefix of the edges of discover[0]",
        ),
        (
            "duplicate-names.toml",
            Some("target[1].name"),
            "\"web\" is already used by target[0]; expected a unique name",
        ),
        (
            "duration-bare-number.toml",
            Some("agent.interval"),
            "got the bare number \"10\"; expected a duration with a unit, e.g. \"10s\"",
        ),
        (
            "duration-integer.toml",
            Some("target[0].timeout"),
            "expected a duration with a unit, e.g. \"3s\"",
        ),
        (
            "duration-words.toml",
            Some("agent.timeout"),
            "got \"ten seconds\", which is not a duration",
        ),
        (
            "expect-status-empty.toml",
            Some("target[0].http.expect_status"),
            "empty, so no response could pass",
        ),
        (
            "ipv6-without-brackets.toml",
            Some("target[0].address"),
            "an IPv6 address needs brackets",
        ),
        (
            "jitter-too-large.toml",
            Some("agent.jitter"),
            "got 1.5; expected a fraction in [0, 1)",
        ),
        (
            "mtls-without-identity.toml",
            Some("identity"),
            "target \"api\" uses mode = \"mtls\"",
        ),
        (
            "tls-without-identity.toml",
            Some("identity"),
            "target \"prod/api\" uses mode = \"tls\"",
        ),
        (
            "not-toml.toml",
            None,
            "not valid TOML: TOML parse error at line 2",
        ),
        (
            "port-out-of-range.toml",
            Some("target[0].address"),
            "got port 70000; expected a port number from 1 to 65535",
        ),
        (
            "serve-without-identity.toml",
            Some("identity"),
            "[serve] presents this agent's certificate",
        ),
        (
            "spiffe-id-and-trust-domain.toml",
            Some("target[0].trust_domain"),
            "set together with spiffe_id; expected at most one of them",
        ),
        (
            "status-700.toml",
            Some("target[0].http.expect_status[1]"),
            "got 700; expected a status code from 100 to 599",
        ),
        (
            "timeout-over-interval.toml",
            Some("target[0].timeout"),
            "10s is longer than the interval 5s",
        ),
        (
            "tls-version-1.1.toml",
            Some("target[0].tls_versions[0]"),
            "got \"1.1\"; expected \"1.2\" or \"1.3\"",
        ),
        (
            "unknown-agent-key.toml",
            Some("agent.listn"),
            "unknown key \"listn\"; expected one of: source, listen,",
        ),
        (
            "unknown-discover-key.toml",
            Some("discover[0].address"),
            "unknown key \"address\"; expected one of: name, dns, port,",
        ),
        (
            "unknown-http-key.toml",
            Some("target[0].http.status"),
            "unknown key \"status\"; expected one of: method, path, expect_status,",
        ),
        (
            "unknown-target-key.toml",
            Some("target[1].spiffeid"),
            "unknown key \"spiffeid\"; expected one of: name, address, mode,",
        ),
        (
            "unknown-top-level.toml",
            Some("bogus"),
            "unknown key \"bogus\"; expected one of: agent, identity, serve, target, discover",
        ),
        (
            "verify-strict-discover.toml",
            Some("discover[0].verify_strict"),
            "not supported in [[discover]]",
        ),
        (
            "verify-strict-plaintext.toml",
            Some("target[0].verify_strict"),
            "only valid with mode = \"mtls\" or \"tls\"",
        ),
    ];

    #[test]
    fn every_bad_fixture_names_file_key_and_expectation() {
        let mut on_disk: Vec<String> = std::fs::read_dir(data("bad"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = BAD.iter().map(|(f, _, _)| (*f).to_owned()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "every bad fixture has exactly one row in BAD"
        );

        for (file, key, fragment) in BAD {
            let path = data(&format!("bad/{file}"));
            let err = load_file(&path, &Env::new()).expect_err(file);
            assert_eq!(err.file, path, "{file}");
            assert_eq!(err.key.as_deref(), *key, "{file}: {err}");
            assert!(
                err.problem.contains(fragment),
                "{file}: {err}\n  wanted: {fragment}"
            );
            let shown = err.to_string();
            assert!(
                shown.contains(file),
                "{file}: the message names the file: {shown}"
            );
            if let Some(key) = key {
                assert!(shown.contains(&format!(": {key}: ")), "{shown}");
            }
        }
    }

    #[test]
    fn good_fixtures_load() {
        let dir = data("good");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            load_file(&path, &Env::new()).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
        assert!(n >= 3);
    }

    #[test]
    fn minimal_config_gets_every_default() {
        let c = load_file(&data("good/minimal.toml"), &env(&[("NODE_NAME", "node-x")])).unwrap();
        assert_eq!(c.origin, data("good/minimal.toml"));
        let a = &c.agent;
        assert_eq!(a.source, "node-x");
        assert_eq!(a.listen, "0.0.0.0:9464".parse().unwrap());
        assert_eq!(a.interval, Duration::from_secs(10));
        assert_eq!(a.timeout, Duration::from_secs(5));
        assert_eq!(a.jitter, 0.1);
        assert_eq!(a.max_concurrency, 256);
        assert_eq!(
            a.windows,
            [Duration::from_secs(300), Duration::from_secs(1800)]
        );
        assert!(a.dns_servers.is_empty());
        assert!(c.identity.is_none() && c.serve.is_none() && c.discover.is_empty());
        let t = &c.targets[..];
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].name, "web");
        assert_eq!(t[0].address.to_string(), "web.default.svc.cluster.local:80");
        assert_eq!(t[0].mode, Mode::Plaintext);
        assert_eq!(t[0].expect, Expect::Success);
        assert_eq!(t[0].server_name, "web.default.svc.cluster.local");
        assert_eq!(
            t[0].peer,
            PeerExpectation::DnsName("web.default.svc.cluster.local".into())
        );
        assert!(t[0].alpn.is_empty());
        assert_eq!(t[0].tls_versions, [TlsVersion::V1_2, TlsVersion::V1_3]);
        assert!(!t[0].verify_strict);
        assert_eq!((t[0].interval, t[0].timeout), (a.interval, a.timeout));
        assert_eq!(t[0].http, None);
        assert_eq!(t[0].origin, Origin::Configured);
    }

    #[test]
    fn inherited_values_companions_and_discover() {
        let c = load_file(&data("good/inherit.toml"), &Env::new()).unwrap();
        let a = &c.agent;
        assert_eq!(a.source, "node-b");
        // The default timeout (5s) is capped at the shorter interval.
        assert_eq!(
            (a.interval, a.timeout),
            (Duration::from_secs(2), Duration::from_secs(2))
        );
        assert_eq!(
            a.windows,
            [
                Duration::from_millis(300),
                Duration::from_secs(300),
                Duration::from_secs(3600)
            ],
            "sorted ascending"
        );
        assert_eq!(
            a.dns_servers,
            [
                "10.96.0.10:53".parse().unwrap(),
                "[fd00::10]:5353".parse().unwrap()
            ] as [SocketAddr; 2]
        );

        let names: Vec<&str> = c.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["alias-family", "alias-family/plaintext", "foreign"]);
        let [family, companion, foreign] = &c.targets[..] else {
            unreachable!()
        };

        assert_eq!(
            family.address,
            HostPort {
                host: "fd00::5".into(),
                port: 8443
            }
        );
        assert_eq!(family.address.to_string(), "[fd00::5]:8443");
        assert_eq!(family.server_name, "fd00::5");
        let tds = |v: &[&str]| {
            v.iter()
                .map(|s| s.parse().unwrap())
                .collect::<Vec<TrustDomain>>()
        };
        // An alias is configured: the whole family follows, the configured one first.
        assert_eq!(
            family.peer,
            PeerExpectation::TrustDomain(tds(&["cluster2.local", "cluster.local", "old.local"]))
        );
        // A foreign trust domain stays alone.
        assert_eq!(
            foreign.peer,
            PeerExpectation::TrustDomain(tds(&["partner.example"]))
        );
        assert_eq!(
            (foreign.interval, foreign.timeout),
            (Duration::from_secs(60), Duration::from_secs(2))
        );

        assert_eq!(companion.mode, Mode::Plaintext);
        assert_eq!(companion.expect, Expect::Reject);
        assert_eq!(companion.address, family.address);
        assert_eq!(
            (companion.interval, companion.timeout),
            (family.interval, family.timeout)
        );
        assert!(companion.alpn.is_empty() && !companion.verify_strict);
        assert_eq!(
            companion.origin,
            Origin::StrictCompanion {
                of: "alias-family".into()
            }
        );
        // No [target.http] on the target: the companion still sends GET /.
        let http = companion.http.as_ref().unwrap();
        assert_eq!((http.method.as_str(), http.path.as_str()), ("GET", "/"));
        assert_eq!(http.expect_status, StatusSet::default_success());
        assert_eq!(http.max_body_bytes, 65536);

        let d = &c.discover[0];
        assert_eq!(
            (d.name.as_str(), d.port, d.refresh),
            ("agents", 8443, Duration::from_secs(30))
        );
        let t = &d.template;
        assert_eq!(t.mode, Mode::Tls);
        assert_eq!(t.server_name, "mtls-prober.monitoring.svc.cluster.local");
        assert_eq!(t.peer, PeerExpectation::DnsName(t.server_name.clone()));
        assert_eq!(
            t.alpn,
            ["h2", "http/1.1"],
            "default ALPN with [discover.http]"
        );
        assert_eq!(
            t.origin,
            Origin::Discovered {
                of: "agents".into()
            }
        );
        let http = t.http.as_ref().unwrap();
        assert_eq!(http.method, "HEAD");
        assert_eq!(
            http.headers,
            [("x-probe".to_owned(), "mtls-prober".to_owned())]
        );
        let edge = d.edge("10.1.2.3".parse().unwrap());
        assert_eq!(edge.name, "agents/10.1.2.3");
        assert_eq!(edge.server_name, "mtls-prober.monitoring.svc.cluster.local");
    }

    #[test]
    fn relative_identity_paths_follow_the_config_file() {
        let c = load_file(&data("good/serve-only.toml"), &Env::new()).unwrap();
        let id = c.identity.unwrap();
        assert_eq!(id.cert, data("good/certs/cert-chain.pem"));
        assert_eq!(id.key, data("good/certs/key.pem"));
        assert_eq!(id.ca, data("good/certs/root-cert.pem"));
        assert_eq!(id.reload, Duration::from_secs(30));
        let serve = c.serve.unwrap();
        assert_eq!(serve.listen, "[::]:8443".parse().unwrap());
        assert_eq!(serve.client_auth, ClientAuth::Optional);
        assert!(c.targets.is_empty());
        // From a string there is no directory: paths stay as written.
        let c = load_text(IDENTITY).unwrap();
        assert_eq!(c.identity.unwrap().cert, PathBuf::from("c.pem"));
    }

    #[test]
    fn repository_probes_toml_loads_and_exercises_the_schema() {
        let c = load(&repo_probes_toml(), &Env::new()).unwrap_or_else(|e| panic!("{e}"));
        let by_name = |n: &str| c.targets.iter().find(|t| t.name == n).unwrap();
        let api = by_name("production/api");
        assert!(api.verify_strict);
        assert_eq!(
            api.peer,
            PeerExpectation::SpiffeId(
                "spiffe://cluster.local/ns/production/sa/api"
                    .parse()
                    .unwrap()
            )
        );
        let i = c
            .targets
            .iter()
            .position(|t| t.name == "production/api")
            .unwrap();
        assert_eq!(
            c.targets[i + 1].name,
            "production/api/plaintext",
            "companion right after"
        );
        assert_eq!(c.targets[i + 1].http, api.http);
        assert!(matches!(
            &by_name("payments/ledger").peer,
            PeerExpectation::TrustDomain(v) if v.len() == 2
        ));
        assert_eq!(
            by_name("production/api/no-client-cert").expect,
            Expect::Reject
        );
        assert_eq!(by_name("legacy/reports").mode, Mode::Plaintext);
        assert_eq!(c.discover.len(), 1);
        assert!(c.serve.is_some());
        assert!(!c.agent.dns_servers.is_empty());
        let status = &api.http.as_ref().unwrap().expect_status;
        assert!(status.contains(200) && status.contains(204) && !status.contains(201));
    }

    fn load(path: &Path, env: &Env) -> Result<Config, ConfigError> {
        load_file(path, env)
    }

    /// hickory-dns's idea: a key that does not exist, put in every table of the example
    /// in turn, must be refused and named. `headers` is a free-form map (any header
    /// name is a key), so it is the one table this does not apply to.
    #[test]
    fn a_bogus_key_in_any_table_of_probes_toml_is_rejected() {
        let text = std::fs::read_to_string(repo_probes_toml()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // (insert before this line index, the table's key path); 0 = top level.
        let mut sites = vec![(0, String::new())];
        let mut entries: BTreeMap<String, usize> = BTreeMap::new();
        for (i, line) in lines.iter().enumerate() {
            let header = line.split('#').next().unwrap_or("").trim();
            let table = if let Some(name) =
                header.strip_prefix("[[").and_then(|r| r.strip_suffix("]]"))
            {
                let n = entries.entry(name.to_owned()).or_default();
                *n += 1;
                format!("{name}[{}]", *n - 1)
            } else if let Some(name) = header.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                match name.split_once('.') {
                    // A sub-table belongs to the latest entry of its array.
                    Some((parent, child)) => format!("{parent}[{}].{child}", entries[parent] - 1),
                    None => name.to_owned(),
                }
            } else {
                continue;
            };
            sites.push((i + 1, table));
        }
        let tables: Vec<&str> = sites.iter().map(|(_, t)| t.as_str()).collect();
        for needed in [
            "",
            "agent",
            "identity",
            "serve",
            "target[0]",
            "target[0].http",
            "discover[0]",
            "discover[0].http",
        ] {
            assert!(
                tables.contains(&needed),
                "probes.toml has no {needed:?} table: {tables:?}"
            );
        }

        for (at, table) in &sites {
            let mut mutated = lines.clone();
            mutated.insert(*at, "bogus_key = 1");
            let err = load_str(&mutated.join("\n"), "probes.toml", &Env::new())
                .expect_err(&format!("bogus_key in {table:?} must be rejected"));
            let want = if table.is_empty() {
                "bogus_key".to_owned()
            } else {
                format!("{table}.bogus_key")
            };
            assert_eq!(err.key.as_deref(), Some(want.as_str()), "{err}");
            assert!(
                err.problem
                    .starts_with("unknown key \"bogus_key\"; expected one of: "),
                "{err}"
            );
        }
    }

    /// The keys of `[[target]]` and `[[discover]]` are written out twice in `raw`
    /// (no `flatten`); this keeps them from drifting apart.
    #[test]
    fn target_and_discover_accept_the_same_probe_keys() {
        let samples = [
            ("mode", "\"tls\""),
            ("expect", "\"reject\""),
            ("spiffe_id", "\"spiffe://cluster.local/ns/a/sa/b\""),
            ("trust_domain", "\"cluster.local\""),
            ("server_name", "\"api.example\""),
            ("alpn", "[\"h2\"]"),
            ("tls_versions", "[\"1.3\"]"),
            ("interval", "\"20s\""),
            ("timeout", "\"2s\""),
            ("http", "{ path = \"/x\" }"),
        ];
        for (key, value) in samples {
            let target =
                format!("{IDENTITY}[[target]]\nname = \"t\"\naddress = \"t:1\"\n{key} = {value}\n");
            let discover = format!(
                "{IDENTITY}[[discover]]\nname = \"d\"\ndns = \"d.example\"\nport = 1\n{key} = {value}\n"
            );
            load_text(&target).unwrap_or_else(|e| panic!("{e}"));
            load_text(&discover).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn empty_and_serve_only_configs_are_valid() {
        let c = load_text("").unwrap();
        assert!(c.targets.is_empty() && c.discover.is_empty());
        load_text(&format!("{IDENTITY}[serve]\nlisten = \"0.0.0.0:8443\"\n")).unwrap();
    }

    #[test]
    fn missing_file_is_named() {
        let path = data("does-not-exist.toml");
        let e = load_file(&path, &Env::new()).unwrap_err();
        assert_eq!(e.file, path);
        assert!(
            e.to_string()
                .contains("does-not-exist.toml: cannot read the config file"),
            "{e}"
        );
    }

    // === environment overrides ===

    #[test]
    fn env_overrides_the_file() {
        let c = load_file(
            &repo_probes_toml(),
            &env(&[("MTLS_PROBER_AGENT__LISTEN", "127.0.0.1:9999")]),
        )
        .unwrap();
        assert_eq!(c.agent.listen, "127.0.0.1:9999".parse().unwrap());
    }

    #[test]
    fn env_typo_is_an_unknown_key_naming_the_variable() {
        let e = load_file(
            &repo_probes_toml(),
            &env(&[("MTLS_PROBER_AGENT__LISTN", "127.0.0.1:9999")]),
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("agent.listn"));
        assert!(e.problem.contains("unknown key \"listn\""), "{e}");
        assert!(e.problem.contains("MTLS_PROBER_AGENT__LISTN"), "{e}");

        // One underscore instead of two: a top-level key, with a hint.
        let (key, problem) = load_str("", "x.toml", &env(&[("MTLS_PROBER_AGENT_LISTEN", "1")]))
            .map(|_| ())
            .map_err(|e| (e.key, e.problem))
            .unwrap_err();
        assert_eq!(key.as_deref(), Some("agent_listen"));
        assert!(
            problem.contains("nested keys are separated by \"__\""),
            "{problem}"
        );
    }

    #[test]
    fn env_values_are_typed_and_lists_comma_separated() {
        let c = load_str(
            IDENTITY,
            "x.toml",
            &env(&[
                ("MTLS_PROBER_AGENT__MAX_CONCURRENCY", "10"),
                ("MTLS_PROBER_AGENT__JITTER", "0.25"),
                ("MTLS_PROBER_AGENT__WINDOWS", "10m, 1m"),
                ("MTLS_PROBER_AGENT__DNS_SERVERS", "10.0.0.1,10.0.0.2:5353"),
                ("MTLS_PROBER_IDENTITY__TRUST_DOMAIN", "cluster.local"),
                (
                    "MTLS_PROBER_IDENTITY__TRUST_DOMAIN_ALIASES",
                    "a.local,b.local",
                ),
                ("MTLS_PROBER_IDENTITY__RELOAD", "1m"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.agent.max_concurrency, 10);
        assert_eq!(c.agent.jitter, 0.25);
        assert_eq!(
            c.agent.windows,
            [Duration::from_secs(60), Duration::from_secs(600)]
        );
        assert_eq!(
            c.agent.dns_servers,
            [
                "10.0.0.1:53".parse().unwrap(),
                "10.0.0.2:5353".parse().unwrap()
            ] as [SocketAddr; 2]
        );
        let id = c.identity.unwrap();
        assert_eq!(id.reload, Duration::from_secs(60));
        assert_eq!(
            id.trust_domain_aliases
                .iter()
                .map(TrustDomain::as_str)
                .collect::<Vec<_>>(),
            ["a.local", "b.local"]
        );
        // A single item is a one-item list.
        let c = load_str("", "x.toml", &env(&[("MTLS_PROBER_AGENT__WINDOWS", "5m")])).unwrap();
        assert_eq!(c.agent.windows, [Duration::from_secs(300)]);
    }

    #[test]
    fn empty_env_values() {
        let file = "[agent]\nsource = \"from-file\"\ndns_servers = [\"10.0.0.1\"]\n";
        let c = load_str(
            file,
            "x.toml",
            &env(&[
                // An empty scalar is "not set": the file's value stays.
                ("MTLS_PROBER_AGENT__SOURCE", ""),
                // An empty list variable is the empty list.
                ("MTLS_PROBER_AGENT__DNS_SERVERS", ""),
            ]),
        )
        .unwrap();
        assert_eq!(c.agent.source, "from-file");
        assert!(c.agent.dns_servers.is_empty());
        // An empty list where one item is required is still an error.
        let e = load_str("", "x.toml", &env(&[("MTLS_PROBER_AGENT__WINDOWS", " ")])).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("agent.windows"));
        assert!(e.problem.contains("MTLS_PROBER_AGENT__WINDOWS"), "{e}");
    }

    #[test]
    fn env_value_errors_name_the_variable() {
        let e = load_str("", "x.toml", &env(&[("MTLS_PROBER_AGENT__INTERVAL", "10")])).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("agent.interval"));
        assert!(e.problem.contains("e.g. \"10s\""), "{e}");
        assert!(
            e.problem
                .ends_with("(set by environment variable MTLS_PROBER_AGENT__INTERVAL)"),
            "{e}"
        );
        // A file value is not attributed to the environment.
        let e = load_str("[agent]\ninterval = \"10\"", "x.toml", &Env::new()).unwrap_err();
        assert!(!e.problem.contains("environment"), "{e}");
    }

    #[test]
    fn env_can_address_existing_array_entries() {
        let c = load_str(
            &format!("{PLAIN}[target.http]\nheaders = {{ \"X-Probe\" = \"1\" }}\n"),
            "x.toml",
            &env(&[
                ("MTLS_PROBER_TARGET[0]__TIMEOUT", "1s"),
                ("MTLS_PROBER_TARGET[0]__HTTP__HEADERS__X-Extra", "2"),
            ]),
        )
        .unwrap();
        let t = &c.targets[0];
        assert_eq!(t.timeout, Duration::from_secs(1));
        // config-rs lowercases environment keys but not file keys; header names are
        // lowercased by the validation anyway, so both end up the same.
        assert_eq!(
            t.http.as_ref().unwrap().headers,
            [
                ("x-extra".to_owned(), "2".to_owned()),
                ("x-probe".to_owned(), "1".to_owned())
            ]
        );
        // An index the file lacks makes an incomplete entry; the message says why.
        let e = load_str(
            PLAIN,
            "x.toml",
            &env(&[("MTLS_PROBER_TARGET[1]__TIMEOUT", "1s")]),
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("target[1].name"));
        assert!(e.problem.contains("MTLS_PROBER_TARGET[1]__TIMEOUT"), "{e}");
    }

    /// config-rs 0.15 lowercases environment keys but not file keys: keys in the file
    /// are case-sensitive (a wrong case is an unknown key), variable names are not.
    #[test]
    fn key_case() {
        let (key, problem) = err_of("[Agent]\nlisten = \"0.0.0.0:1\"\n");
        assert_eq!(key.as_deref(), Some("Agent"));
        assert!(problem.starts_with("unknown key \"Agent\""), "{problem}");
        let c = load_str(
            "",
            "x.toml",
            &env(&[("mtls_prober_agent__LISTEN", "127.0.0.1:1")]),
        )
        .unwrap();
        assert_eq!(c.agent.listen, "127.0.0.1:1".parse().unwrap());
    }

    #[test]
    fn header_names_keep_no_case() {
        let text = format!(
            "{PLAIN}[target.http]\nheaders = {{ \"X-Probe\" = \"a\", Host = \"h.example\" }}\n"
        );
        let c = load_text(&text).unwrap();
        assert_eq!(
            c.targets[0].http.as_ref().unwrap().headers,
            [
                ("host".to_owned(), "h.example".to_owned()),
                ("x-probe".to_owned(), "a".to_owned())
            ]
        );
        let (key, problem) = err_of(&format!(
            "{PLAIN}[target.http]\nheaders = {{ \"X-Probe\" = \"a\", \"x-probe\" = \"b\" }}\n"
        ));
        assert!(key.unwrap().starts_with("target[0].http.headers."));
        assert!(problem.contains("set twice"), "{problem}");
    }

    #[test]
    fn source_falls_back_to_node_name_then_hostname() {
        let c = load_str("", "x.toml", &env(&[("NODE_NAME", "node-7")])).unwrap();
        assert_eq!(c.agent.source, "node-7");
        let c = load_str(
            "[agent]\nsource = \"explicit\"",
            "x.toml",
            &env(&[("NODE_NAME", "node-7")]),
        )
        .unwrap();
        assert_eq!(c.agent.source, "explicit");
        let c = load_str("", "x.toml", &env(&[("NODE_NAME", "")])).unwrap();
        assert_eq!(c.agent.source, gethostname::gethostname().to_string_lossy());
        let (key, _) = err_of("[agent]\nsource = \"\"");
        assert_eq!(key.as_deref(), Some("agent.source"));
    }

    // === cross-field rules ===

    #[test]
    fn plaintext_refuses_tls_keys() {
        for (key, value) in [
            ("spiffe_id", "\"spiffe://td/x\""),
            ("trust_domain", "\"td\""),
            ("alpn", "[\"h2\"]"),
            ("tls_versions", "[\"1.3\"]"),
            ("verify_strict", "false"),
        ] {
            let (k, problem) = err_of(&format!("{PLAIN}{key} = {value}\n"));
            assert_eq!(k, Some(format!("target[0].{key}")));
            assert!(problem.starts_with(ONLY_TLS), "{problem}");
        }
        // server_name is fine: it is the name the HTTP request is about.
        load_text(&format!("{PLAIN}server_name = \"web.example\"\n")).unwrap();
    }

    #[test]
    fn verify_strict_needs_expect_success() {
        let (key, problem) = err_of(&format!(
            "{IDENTITY}[[target]]\nname = \"a\"\naddress = \"a:1\"\nexpect = \"reject\"\nverify_strict = true\n"
        ));
        assert_eq!(key.as_deref(), Some("target[0].verify_strict"));
        assert!(
            problem.contains("only valid with expect = \"success\""),
            "{problem}"
        );
    }

    #[test]
    fn companion_collision_is_found_in_either_order() {
        let text = format!(
            "{IDENTITY}[[target]]\nname = \"a/plaintext\"\naddress = \"a:1\"\n\
             [[target]]\nname = \"a\"\naddress = \"a:1\"\nverify_strict = true\n"
        );
        let (key, problem) = err_of(&text);
        assert_eq!(key.as_deref(), Some("target[1].verify_strict"));
        assert!(problem.contains("already used by target[0]"), "{problem}");
        // A companion inside a discover's prefix is blamed on verify_strict too.
        let text = format!(
            "{IDENTITY}[[target]]\nname = \"agents\"\naddress = \"a:1\"\nverify_strict = true\n\
             [[discover]]\nname = \"agents\"\ndns = \"a.example\"\nport = 1\n"
        );
        let (key, _) = err_of(&text);
        assert_eq!(key.as_deref(), Some("target[0].verify_strict"));
    }

    #[test]
    fn discover_names_are_unique_and_required_keys_named() {
        let d = "[[discover]]\nname = \"x\"\ndns = \"x.example\"\nport = 1\nmode = \"tls\"\n";
        let (key, problem) = err_of(&format!("{d}{d}"));
        assert_eq!(key.as_deref(), Some("discover[1].name"));
        assert!(problem.contains("already used by discover[0]"), "{problem}");
        for (missing, text) in [
            (
                "name",
                "[[discover]]\ndns = \"x.example\"\nport = 1\nmode = \"tls\"\n",
            ),
            (
                "dns",
                "[[discover]]\nname = \"x\"\nport = 1\nmode = \"tls\"\n",
            ),
            (
                "port",
                "[[discover]]\nname = \"x\"\ndns = \"x.example\"\nmode = \"tls\"\n",
            ),
        ] {
            let (key, problem) = err_of(text);
            assert_eq!(key, Some(format!("discover[0].{missing}")));
            assert!(problem.starts_with("missing; expected"), "{problem}");
        }
        let (key, problem) =
            err_of("[[discover]]\nname = \"x\"\ndns = \"10.0.0.1\"\nport = 1\nmode = \"tls\"\n");
        assert_eq!(key.as_deref(), Some("discover[0].dns"));
        assert!(problem.contains("expected a DNS name"), "{problem}");
    }

    #[test]
    fn targets_need_name_and_address() {
        for (missing, text) in [
            ("name", "[[target]]\naddress = \"a:1\"\nmode = \"tls\"\n"),
            ("address", "[[target]]\nname = \"a\"\nmode = \"tls\"\n"),
        ] {
            let (key, problem) = err_of(text);
            assert_eq!(key, Some(format!("target[0].{missing}")));
            assert!(problem.starts_with("missing; expected"), "{problem}");
        }
    }

    #[test]
    fn timeouts() {
        // An explicit agent timeout longer than the interval names both.
        let (key, problem) = err_of("[agent]\ninterval = \"2s\"\ntimeout = \"3s\"\n");
        assert_eq!(key.as_deref(), Some("agent.timeout"));
        assert!(
            problem.contains("3s is longer than agent.interval 2s"),
            "{problem}"
        );
        // A target timeout checked against the inherited interval says so.
        let (key, problem) = err_of(&format!(
            "[agent]\ninterval = \"4s\"\ntimeout = \"1s\"\n{PLAIN}timeout = \"6s\"\n"
        ));
        assert_eq!(key.as_deref(), Some("target[0].timeout"));
        assert!(
            problem.contains("6s is longer than the interval 4s (from agent.interval)"),
            "{problem}"
        );
        // A short target interval caps the inherited timeout instead of failing.
        let c = load_text(&format!("{PLAIN}interval = \"1s\"\n")).unwrap();
        assert_eq!(
            (c.targets[0].interval, c.targets[0].timeout),
            (Duration::from_secs(1), Duration::from_secs(1))
        );
        for bad in ["\"0s\"", "\"25h\""] {
            let (key, _) = err_of(&format!("{PLAIN}interval = {bad}\n"));
            assert_eq!(key.as_deref(), Some("target[0].interval"));
        }
    }

    #[test]
    fn agent_limits() {
        for (text, key, fragment) in [
            (
                "[agent]\njitter = -0.1",
                "agent.jitter",
                "expected a fraction in [0, 1)",
            ),
            ("[agent]\njitter = \"lots\"", "agent.jitter", "got \"lots\""),
            (
                "[agent]\nmax_concurrency = 0",
                "agent.max_concurrency",
                "got 0; expected a number of probes from 1 to 65536",
            ),
            (
                "[agent]\nmax_concurrency = 65537",
                "agent.max_concurrency",
                "from 1 to 65536",
            ),
            ("[agent]\nwindows = []", "agent.windows", "empty"),
            (
                "[agent]\nwindows = [\"5m\", \"300s\"]",
                "agent.windows[1]",
                "already listed as agent.windows[0]",
            ),
            (
                "[agent]\nwindows = [\"48h\"]",
                "agent.windows[0]",
                "at most 1day",
            ),
            (
                "[agent]\ndns_servers = [\"dns.example\"]",
                "agent.dns_servers[0]",
                "expected a resolver's IP",
            ),
            (
                "[agent]\ndns_servers = [\"10.0.0.1:0\"]",
                "agent.dns_servers[0]",
                "port 0",
            ),
            (
                "[agent]\ndns_servers = [\"10.0.0.1\", \"10.0.0.1:53\"]",
                "agent.dns_servers[1]",
                "already listed",
            ),
            (
                "[agent]\nwindows = \"5m\"",
                "agent.windows",
                "expected a list, got string \"5m\"",
            ),
            (
                "agent = 1",
                "agent",
                "expected a table ([agent]), got integer",
            ),
        ] {
            let (k, problem) = err_of(text);
            assert_eq!(k.as_deref(), Some(key), "{text}");
            assert!(problem.contains(fragment), "{text}: {problem}");
        }
        let c = load_text("[agent]\njitter = 0\nmax_concurrency = 65536\n").unwrap();
        assert_eq!((c.agent.jitter, c.agent.max_concurrency), (0.0, 65536));
    }

    #[test]
    fn identity_rules() {
        for (text, key, fragment) in [
            (
                "[identity]\nkey = \"k\"\nca = \"c\"",
                "identity.cert",
                "missing; expected the path of the PEM certificate chain",
            ),
            (
                "[identity]\ncert = \"\"\nkey = \"k\"\nca = \"c\"",
                "identity.cert",
                "got \"\"",
            ),
            (
                "[identity]\ncert = \"c\"\nkey = \"k\"",
                "identity.ca",
                "missing",
            ),
        ] {
            let (k, problem) = err_of(text);
            assert_eq!(k.as_deref(), Some(key), "{text}");
            assert!(problem.contains(fragment), "{text}: {problem}");
        }
        for (extra, key, fragment) in [
            (
                "trust_domain = \"Cluster.Local\"",
                "identity.trust_domain",
                "expected a trust domain like \"cluster.local\"",
            ),
            (
                "trust_domain = \"a\"\ntrust_domain_aliases = [\"a\"]",
                "identity.trust_domain_aliases[0]",
                "is identity.trust_domain itself",
            ),
            (
                "trust_domain = \"a\"\ntrust_domain_aliases = [\"b\", \"b\"]",
                "identity.trust_domain_aliases[1]",
                "listed twice",
            ),
            ("reload = \"0s\"", "identity.reload", "greater than zero"),
        ] {
            let (k, problem) = err_of(&format!("{IDENTITY}{extra}\n"));
            assert_eq!(k.as_deref(), Some(key), "{extra}");
            assert!(problem.contains(fragment), "{extra}: {problem}");
        }
        let c = load_text(&format!(
            "{IDENTITY}trust_domain = \"spiffe://cluster.local\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.identity.unwrap().trust_domain.unwrap().as_str(),
            "cluster.local"
        );
    }

    #[test]
    fn serve_rules() {
        let (k, p) = err_of(&format!("{IDENTITY}[serve]\nclient_auth = \"require\"\n"));
        assert_eq!(k.as_deref(), Some("serve.listen"));
        assert!(p.starts_with("missing"), "{p}");
        let (k, p) = err_of(&format!("{IDENTITY}[serve]\nlisten = \":8443\"\n"));
        assert_eq!(k.as_deref(), Some("serve.listen"));
        assert!(p.contains("expected IP:port"), "{p}");
        let (k, p) = err_of(&format!(
            "{IDENTITY}[serve]\nlisten = \"0.0.0.0:8443\"\nclient_auth = \"none\"\n"
        ));
        assert_eq!(k.as_deref(), Some("serve.client_auth"));
        assert!(p.contains("expected \"require\" or \"optional\""), "{p}");
        let c = load_text(&format!("{IDENTITY}[serve]\nlisten = \"0.0.0.0:8443\"\n")).unwrap();
        assert_eq!(c.serve.unwrap().client_auth, ClientAuth::Require);
    }

    #[test]
    fn probe_key_rules() {
        let tls = format!(
            "{IDENTITY}[[target]]\nname = \"t\"\naddress = \"t.example:443\"\nmode = \"tls\"\n"
        );
        for (extra, key, fragment) in [
            (
                "alpn = [\"\"]",
                "target[0].alpn[0]",
                "expected a protocol name of 1 to 255 bytes",
            ),
            (
                "alpn = [\"h2\", \"h2\"]",
                "target[0].alpn[1]",
                "already listed as target[0].alpn[0]",
            ),
            ("tls_versions = []", "target[0].tls_versions", "empty"),
            (
                "tls_versions = [\"1.3\", \"1.3\"]",
                "target[0].tls_versions[1]",
                "listed twice",
            ),
            (
                "server_name = \"bad name\"",
                "target[0].server_name",
                "expected a DNS name like",
            ),
            (
                "verify_strict = \"yes\"",
                "target[0].verify_strict",
                "expected true or false",
            ),
            (
                "trust_domain = \"UPPER\"",
                "target[0].trust_domain",
                "expected a trust domain",
            ),
            (
                "spiffe_id = \"spiffe://td/a//b\"",
                "target[0].spiffe_id",
                "path segments",
            ),
            ("expect = \"Reject\"", "target[0].expect", "got \"Reject\""),
            (
                "[target.http]\nmethod = \"G-ET\"",
                "target[0].http.method",
                "expected an HTTP method",
            ),
            (
                "[target.http]\npath = \"healthz\"",
                "target[0].http.path",
                "expected a path starting with '/'",
            ),
            (
                "[target.http]\npath = \"/a b\"",
                "target[0].http.path",
                "contains ' '",
            ),
            (
                "[target.http]\nexpect_status = [\"6xx\"]",
                "target[0].http.expect_status[0]",
                "from \"1xx\" to \"5xx\"",
            ),
            (
                "[target.http]\nexpect_status = [\"299-200\"]",
                "target[0].http.expect_status[0]",
                "low end first",
            ),
            (
                "[target.http]\nexpect_status = [\"ok\"]",
                "target[0].http.expect_status[0]",
                "expected a status code like 200",
            ),
            (
                "[target.http]\nheaders = { \"content-length\" = \"1\" }",
                "target[0].http.headers.content-length",
                "managed by the HTTP client",
            ),
            (
                "[target.http]\nheaders = { \"x\" = \"a\\r\\nb\" }",
                "target[0].http.headers.x",
                "contains '\\r'",
            ),
            (
                "[target.http]\nmax_body_bytes = 16777217",
                "target[0].http.max_body_bytes",
                "from 0 to 16777216",
            ),
            (
                "[target.http]\nmax_body_bytes = -1",
                "target[0].http.max_body_bytes",
                "got -1",
            ),
        ] {
            let (k, problem) = err_of(&format!("{tls}{extra}\n"));
            assert_eq!(k.as_deref(), Some(key), "{extra}");
            assert!(problem.contains(fragment), "{extra}: {problem}");
        }
        let c = load_text(&format!(
            "{tls}alpn = [\"istio\"]\ntls_versions = [\"1.3\", \"1.2\"]\n[target.http]\nmethod = \"head\"\n\
             expect_status = [204, \"3XX\", \" 400 - 404 \"]\nmax_body_bytes = 0\n"
        ))
        .unwrap();
        let t = &c.targets[0];
        assert_eq!(
            t.alpn,
            ["istio"],
            "an explicit alpn replaces the HTTP default"
        );
        assert_eq!(
            t.tls_versions,
            [TlsVersion::V1_2, TlsVersion::V1_3],
            "sorted"
        );
        let http = t.http.as_ref().unwrap();
        assert_eq!(http.method, "HEAD");
        assert_eq!(
            http.expect_status.ranges(),
            [(204, 204), (300, 399), (400, 404)]
        );
        assert_eq!(http.max_body_bytes, 0);
        // Plaintext with http offers no ALPN.
        let c = load_text(&format!("{PLAIN}[target.http]\n")).unwrap();
        assert!(c.targets[0].alpn.is_empty());
    }

    #[test]
    fn names() {
        for (name, fragment) in [
            ("", "empty"),
            (" api", "leading or trailing spaces"),
            ("a\tb", "control characters"),
        ] {
            let (k, problem) = err_of(&format!(
                "{IDENTITY}[[target]]\nname = {name:?}\naddress = \"a:1\"\nmode = \"tls\"\n"
            ));
            assert_eq!(k.as_deref(), Some("target[0].name"));
            assert!(problem.contains(fragment), "{name:?}: {problem}");
        }
        let long = "é".repeat(201);
        let (_, problem) = err_of(&format!(
            "{IDENTITY}[[target]]\nname = \"{long}\"\naddress = \"a:1\"\nmode = \"tls\"\n"
        ));
        assert!(
            problem.contains("201 characters long; expected at most 200"),
            "{problem}"
        );
        load_text(&format!(
            "{IDENTITY}[[target]]\nname = \"{}\"\naddress = \"a:1\"\nmode = \"tls\"\n",
            "é".repeat(200)
        ))
        .unwrap();
    }

    // === value parsers ===

    #[test]
    fn durations() {
        for (s, d) in [
            ("500ms", Duration::from_millis(500)),
            ("10s", Duration::from_secs(10)),
            ("30m", Duration::from_secs(1800)),
            ("1h 30m", Duration::from_secs(5400)),
            (" 24h ", MAX_DURATION),
        ] {
            assert_eq!(parse_positive_duration(s), Ok(d), "{s}");
        }
        for (s, fragment) in [
            ("10", "e.g. \"10s\""),
            ("1.5", "bare number"),
            ("ten seconds", "not a duration"),
            ("10 parsecs", "not a duration"),
            ("", "not a duration"),
            ("0ms", "greater than zero"),
            ("1day 1s", "at most"),
        ] {
            let e = parse_positive_duration(s).unwrap_err();
            assert!(e.contains(fragment), "{s}: {e}");
        }
    }

    #[test]
    fn host_ports() {
        for (s, host, port) in [
            (
                "api.production.svc.cluster.local:8080",
                "api.production.svc.cluster.local",
                8080,
            ),
            ("10.0.0.5:1", "10.0.0.5", 1),
            ("[fd00::5]:65535", "fd00::5", 65535),
            ("my_svc.ns:80", "my_svc.ns", 80),
            ("fqdn.example.:443", "fqdn.example.", 443),
            ("localhost:9464", "localhost", 9464),
        ] {
            assert_eq!(
                parse_host_port(s),
                Ok(HostPort {
                    host: host.into(),
                    port
                }),
                "{s}"
            );
        }
        for (s, fragment) in [
            ("api", "with no port"),
            ("api:", "expected a port number"),
            ("api:0", "got port 0"),
            ("api:65536", "got port 65536"),
            ("api:http", "got \"http\""),
            ("fd00::1", "needs brackets"),
            ("[fd00::1]", "with no port"),
            ("[fd00::1:80", "no closing ']'"),
            ("[10.0.0.1]:80", "is not an IPv6 address"),
            ("10.0.0.300:80", "last label is numeric"),
            ("a..b:80", "empty label"),
            ("-a.b:80", "starts or ends with '-'"),
            ("a b:80", "other than letters"),
            (":80", "the host name is empty"),
        ] {
            let e = parse_host_port(s).unwrap_err();
            assert!(e.contains(fragment), "{s}: {e}");
        }
        let label63 = "a".repeat(63);
        assert!(check_dns_name(&label63).is_ok());
        assert!(
            check_dns_name(&"a".repeat(64))
                .unwrap_err()
                .contains("longer than 63")
        );
        let name253 = [label63.as_str(); 4].join(".")[..253].to_owned();
        assert!(check_dns_name(&name253).is_ok());
        assert!(
            check_dns_name(&format!("{name253}a"))
                .unwrap_err()
                .contains("at most 253")
        );
    }

    #[test]
    fn statuses() {
        for (s, want) in [
            ("200", (200, 200)),
            ("100", (100, 100)),
            ("599", (599, 599)),
            ("2xx", (200, 299)),
            ("5XX", (500, 599)),
            ("200-299", (200, 299)),
            ("301-301", (301, 301)),
        ] {
            assert_eq!(parse_status(s), Ok(want), "{s}");
        }
        for s in [
            "99", "600", "700", "0xx", "6xx", "2x", "abc", "200-", "-200", "200-600", "1.5",
        ] {
            assert!(parse_status(s).is_err(), "{s}");
        }
    }

    /// What is accepted here must be accepted by the HTTP stack that sends it.
    #[test]
    fn http_parts_agree_with_hyper() {
        for name in [
            "x-probe",
            "X-Probe",
            "host",
            "a.b",
            "x_y",
            "!#$%&'*+-.^_`|~09azAZ",
        ] {
            let lower = parse_header_name(name).unwrap();
            assert!(
                hyper::header::HeaderName::from_bytes(lower.as_bytes()).is_ok(),
                "{name}"
            );
        }
        for name in ["", "x probe", "x:y", "é", "x\"y", "(x)"] {
            assert!(parse_header_name(name).is_err(), "{name:?}");
        }
        for value in ["", "mtls-prober", "a b", "~!@#$%^&*()"] {
            check_header_value(value).unwrap();
            assert!(
                hyper::header::HeaderValue::from_str(value).is_ok(),
                "{value}"
            );
        }
        for value in ["a\rb", "a\nb", "é", "a\tb", "\u{7f}"] {
            assert!(check_header_value(value).is_err(), "{value:?}");
        }
        for path in ["/", "/healthz", "/a/b?c=d&e=%20", "/~user/!$&'()*+,;=:@"] {
            check_http_path(path).unwrap();
            assert!(path.parse::<hyper::Uri>().is_ok(), "{path}");
        }
        for path in ["", "healthz", "/a b", "/a#frag", "/é", "/a\u{0}"] {
            assert!(check_http_path(path).is_err(), "{path:?}");
        }
        for method in ["GET", "get", "HEAD", "POST", "OPTIONS"] {
            let m = parse_method(method).unwrap();
            assert!(hyper::Method::from_bytes(m.as_bytes()).is_ok());
        }
        for method in ["", "G ET", "GET1", "M-SEARCH"] {
            assert!(parse_method(method).is_err(), "{method:?}");
        }
    }

    #[test]
    fn dns_servers() {
        for (s, want) in [
            ("10.0.0.1", "10.0.0.1:53"),
            ("10.0.0.1:5353", "10.0.0.1:5353"),
            ("fd00::1", "[fd00::1]:53"),
            ("[fd00::1]", "[fd00::1]:53"),
            ("[fd00::1]:54", "[fd00::1]:54"),
        ] {
            assert_eq!(parse_dns_server(s), Ok(want.parse().unwrap()), "{s}");
        }
        for s in ["dns.example", "10.0.0.1:0", "10.0.0.1:99999", ""] {
            assert!(parse_dns_server(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn trust_domain_expansion() {
        let td = |s: &str| s.parse::<TrustDomain>().unwrap();
        let identity = IdentityConfig {
            cert: "c".into(),
            key: "k".into(),
            ca: "a".into(),
            reload: DEFAULT_RELOAD,
            trust_domain: Some(td("cluster.local")),
            trust_domain_aliases: vec![td("old.local"), td("cluster2.local")],
        };
        assert_eq!(
            expand_trust_domain(td("cluster.local"), Some(&identity)),
            [td("cluster.local"), td("old.local"), td("cluster2.local")]
        );
        assert_eq!(
            expand_trust_domain(td("cluster2.local"), Some(&identity)),
            [td("cluster2.local"), td("cluster.local"), td("old.local")]
        );
        assert_eq!(
            expand_trust_domain(td("other.local"), Some(&identity)),
            [td("other.local")]
        );
        assert_eq!(
            expand_trust_domain(td("cluster.local"), None),
            [td("cluster.local")]
        );
        let no_td = IdentityConfig {
            trust_domain: None,
            trust_domain_aliases: vec![],
            ..identity
        };
        assert_eq!(
            expand_trust_domain(td("cluster.local"), Some(&no_td)),
            [td("cluster.local")]
        );
    }
}
