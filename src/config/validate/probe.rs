//! `[[target]]` and `[[discover]]`: the probe keys they share, defaults inherited
//! from `[agent]` and `[identity]`.

use super::*;

impl Cx<'_> {
    // === [[target]] and [[discover]] ===

    pub(super) fn target(
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

    pub(super) fn discover(
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
    pub(super) fn probe(
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
                ("ca", raw.ca.is_some()),
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

        let fleet = self.fleet_scope(&key("fleet"), raw.fleet.as_deref())?;

        let http = match raw.http {
            Some(h) => Some(self.http(&key("http"), h)?),
            None => None,
        };
        let grpc = match raw.grpc {
            Some(_) if http.is_some() => {
                return Err(self.err(
                    key("grpc"),
                    "set together with [target.http]; expected one of them (the gRPC health \
                     check replaces the HTTP request)",
                ));
            }
            Some(g) => Some(self.grpc(&key("grpc"), g)?),
            None => None,
        };

        let alpn = match raw.alpn {
            // gRPC over TLS is HTTP/2 negotiated by ALPN: `h2`, and Istio's own name for
            // it, which a PERMISSIVE sidecar needs to terminate mTLS itself (plan offers
            // it); nothing that could negotiate HTTP/1.1.
            Some(list)
                if grpc.is_some()
                    && (!list.iter().any(|p| p == "h2")
                        || list.iter().any(|p| p != "h2" && p != "istio-h2")) =>
            {
                return Err(self.err(
                    key("alpn"),
                    format!(
                        "got {list:?} with [target.grpc]; gRPC offers only \"h2\" (and \
                         Istio's \"istio-h2\" before it for a PERMISSIVE sidecar); omit alpn"
                    ),
                ));
            }
            Some(list) => self.alpn(&key("alpn"), list)?,
            None if grpc.is_some() && mode != Mode::Plaintext => vec!["h2".to_owned()],
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

        let ca = match raw.ca {
            Some(s) if s.trim() == "system" => Some(TrustSource::System),
            Some(s) => Some(TrustSource::File(self.path(
                &key("ca"),
                s,
                "a PEM file of CA certificates, or \"system\" for the platform's roots",
            )?)),
            None => None,
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
            ca,
            verify_strict,
            interval,
            timeout,
            http,
            grpc,
            origin,
            fleet,
        })
    }

    pub(super) fn alpn(&self, key: &str, list: Vec<String>) -> Result<Vec<String>, ConfigError> {
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

    pub(super) fn tls_versions(
        &self,
        key: &str,
        list: &[String],
    ) -> Result<Vec<TlsVersion>, ConfigError> {
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

    pub(super) fn http(&self, base: &str, raw: RawHttp) -> Result<HttpCheck, ConfigError> {
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

    // === [target.grpc] ===

    pub(super) fn grpc(&self, base: &str, raw: RawGrpc) -> Result<GrpcCheck, ConfigError> {
        let key = |field: &str| format!("{base}.{field}");
        let service = raw.service.unwrap_or_default();
        if service.len() > 1024 || service.chars().any(char::is_control) {
            return Err(self.err(
                key("service"),
                format!(
                    "got {:?}; expected a gRPC service name such as \"grpc.health.v1.Health\" \
                     or \"\" for the whole server (printable, at most 1024 bytes)",
                    truncate_for_message(&service)
                ),
            ));
        }
        let authority = match raw.authority {
            Some(a) => {
                self.at(&key("authority"), check_authority(&a))?;
                Some(a)
            }
            None => None,
        };
        Ok(GrpcCheck { service, authority })
    }

    // === helpers ===

    pub(super) fn duration_or(
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
