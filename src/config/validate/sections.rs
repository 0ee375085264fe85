//! `[agent]`, `[identity]` and `[serve]`: the agent's own settings.

use super::*;

impl Cx<'_> {
    // === [agent] ===

    pub(super) fn agent(&self, raw: RawAgent) -> Result<AgentConfig, ConfigError> {
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
        let include = self.include_patterns(raw.include.unwrap_or_default())?;
        let runbook_base_url = match raw.runbook_base_url {
            Some(s) => Some(self.at("agent.runbook_base_url", parse_base_url(&s))?),
            None => None,
        };
        let cert_expiry_warn_floor = self.duration_or(
            "agent.cert_expiry_warn_floor",
            raw.cert_expiry_warn_floor,
            DEFAULT_CERT_EXPIRY_WARN_FLOOR,
        )?;
        Ok(AgentConfig {
            source,
            listen,
            interval,
            timeout,
            jitter,
            max_concurrency,
            windows,
            dns_servers,
            include,
            runbook_base_url,
            cert_expiry_warn_floor,
        })
    }

    /// `agent.include`: non-empty, distinct, valid glob patterns, resolved against the
    /// config file's directory.
    pub(super) fn include_patterns(&self, list: Vec<String>) -> Result<Vec<String>, ConfigError> {
        let mut out: Vec<String> = Vec::new();
        for (i, pattern) in list.into_iter().enumerate() {
            let key = format!("agent.include[{i}]");
            if pattern.trim().is_empty() || pattern.contains('\0') {
                return Err(self.err(
                    key,
                    format!(
                        "got {pattern:?}; expected a path or glob of files of [[target]] \
                         tables, e.g. \"/etc/mtls-prober/matrix/*.toml\""
                    ),
                ));
            }
            if let Err(e) = glob::Pattern::new(&pattern) {
                return Err(self.err(key, format!("{pattern:?} is not a valid glob: {e}")));
            }
            let resolved = super::super::include::resolve(&pattern, self.base_dir);
            if let Some(j) = out.iter().position(|p| *p == resolved) {
                return Err(self.err(
                    key,
                    format!("{pattern:?} is already listed as agent.include[{j}]"),
                ));
            }
            out.push(resolved);
        }
        Ok(out)
    }

    /// `$NODE_NAME`, else the hostname.
    pub(super) fn default_source(&self) -> Result<String, ConfigError> {
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

    pub(super) fn windows(&self, list: &[String]) -> Result<Vec<Duration>, ConfigError> {
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

    pub(super) fn identity(&self, mut raw: RawIdentity) -> Result<IdentityConfig, ConfigError> {
        let workload_api = self.identity_source(&mut raw)?;
        let (cert, key, ca) = if workload_api.is_some() {
            (PathBuf::new(), PathBuf::new(), PathBuf::new())
        } else {
            (
                self.identity_path("identity.cert", raw.cert, "the PEM certificate chain")?,
                self.identity_path("identity.key", raw.key, "the PEM private key")?,
                self.identity_path("identity.ca", raw.ca, "the PEM trust bundle")?,
            )
        };
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
            workload_api,
        })
    }

    /// `source`, and with `workload-api` its `socket` and `svid_hint` (SPEC §13). The
    /// file keys beside `workload-api` are refused (a config that names both would
    /// leave it unclear which identity is in force); `reload` too, since updates are
    /// streamed.
    fn identity_source(
        &self,
        raw: &mut RawIdentity,
    ) -> Result<Option<WorkloadApiConfig>, ConfigError> {
        match raw.source.as_deref() {
            None | Some("files") => {
                for (field, set) in [
                    ("socket", raw.socket.is_some()),
                    ("svid_hint", raw.svid_hint.is_some()),
                ] {
                    if set {
                        return Err(self.err(
                            format!("identity.{field}"),
                            "only valid with source = \"workload-api\"; this [identity] reads \
                             files (cert, key, ca)",
                        ));
                    }
                }
                Ok(None)
            }
            Some("workload-api") => {
                for (field, set) in [
                    ("cert", raw.cert.is_some()),
                    ("key", raw.key.is_some()),
                    ("ca", raw.ca.is_some()),
                    ("reload", raw.reload.is_some()),
                ] {
                    if set {
                        return Err(self.err(
                            format!("identity.{field}"),
                            format!(
                                "not used with source = \"workload-api\": the SVID, its key and \
                                 the trust bundles come from the Workload API{}; remove it",
                                if field == "reload" {
                                    ", which streams every update"
                                } else {
                                    ""
                                }
                            ),
                        ));
                    }
                }
                let socket = match raw.socket.take() {
                    Some(s) => self.at("identity.socket", check_workload_socket(&s).map(|()| s))?,
                    None => match self
                        .env
                        .get(crate::config::SPIFFE_ENDPOINT_SOCKET)
                        .filter(|s| !s.trim().is_empty())
                    {
                        Some(s) => self.at(
                            "identity.socket",
                            check_workload_socket(s)
                                .map(|()| s.clone())
                                .map_err(|p| format!("from $SPIFFE_ENDPOINT_SOCKET: {p}")),
                        )?,
                        None => {
                            return Err(self.err(
                                "identity.socket",
                                "missing and $SPIFFE_ENDPOINT_SOCKET is unset; expected the \
                                 Workload API endpoint, e.g. \
                                 \"unix:///run/spire/sockets/agent.sock\"",
                            ));
                        }
                    },
                };
                let svid_hint = match raw.svid_hint.take() {
                    Some(h) if h.trim().is_empty() || h.chars().any(char::is_control) => {
                        return Err(self.err(
                            "identity.svid_hint",
                            format!(
                                "got {h:?}; expected the hint of one of the SVIDs the Workload \
                                 API returns, e.g. \"internal\" (omit it for the first SVID)"
                            ),
                        ));
                    }
                    other => other,
                };
                Ok(Some(WorkloadApiConfig { socket, svid_hint }))
            }
            Some(other) => Err(self.err(
                "identity.source",
                format!("got {other:?}; expected \"files\" or \"workload-api\""),
            )),
        }
    }

    /// A required, non-empty path; relative paths are taken from the config file's
    /// directory (as Prometheus does), so a config and its certs can move together.
    pub(super) fn identity_path(
        &self,
        key: &str,
        v: Option<String>,
        what: &str,
    ) -> Result<PathBuf, ConfigError> {
        let s = self.required(key, v, &format!("the path of {what}"))?;
        self.path(key, s, &format!("the path of {what}"))
    }

    /// A non-empty path, relative to the config file's directory.
    pub(super) fn path(&self, key: &str, s: String, what: &str) -> Result<PathBuf, ConfigError> {
        if s.trim().is_empty() || s.contains('\0') {
            return Err(self.err(key, format!("got {s:?}; expected {what}")));
        }
        let path = PathBuf::from(s);
        Ok(match self.base_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        })
    }

    pub(super) fn serve(&self, raw: RawServe) -> Result<ServeConfig, ConfigError> {
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
}

/// The status page's expiry floor: with Istio's 24-hour certificates rotated at half
/// their life, an hour left means rotation has stalled.
const DEFAULT_CERT_EXPIRY_WARN_FLOOR: Duration = Duration::from_secs(3600);

/// `runbook_base_url`: an `http(s)://` URL without a fragment; a trailing `/` or `#`
/// is dropped so `#reason` can be appended.
fn parse_base_url(s: &str) -> Result<String, String> {
    let t = s.trim().trim_end_matches(['#', '/']);
    let ok = (t.starts_with("https://") || t.starts_with("http://"))
        && t.len() > "https://".len()
        && !t.contains('#')
        && !t
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<');
    if ok {
        Ok(t.to_owned())
    } else {
        Err(format!(
            "got {s:?}; expected an http:// or https:// URL without a fragment, e.g. \
             \"https://wiki.example.com/mtls-prober/runbook\" (\"#reason\" is appended)"
        ))
    }
}
