//! The effective configuration as `probes.toml` text: every default applied, in the
//! file's own schema (`[agent]`, `[identity]`, `[serve]`, `[[target]]`, `[[discover]]`),
//! so what `check` prints can be saved and fed back with `--config`.
//!
//! `verify_strict` companions are not written as targets (the loader adds them again
//! from `verify_strict = true`); a comment names each one.

use std::time::Duration;

use toml::{Table, Value};

use super::{Config, Discover, HttpCheck, Origin, PeerExpectation, Target, TlsVersion};

/// Renders `config` as TOML that [`super::load`] reads back into the same config.
pub fn render(config: &Config) -> String {
    let mut root = Table::new();
    let a = &config.agent;
    let mut agent = Table::new();
    agent.insert("source".into(), s(&a.source));
    agent.insert("listen".into(), s(a.listen));
    agent.insert("interval".into(), dur(a.interval));
    agent.insert("timeout".into(), dur(a.timeout));
    agent.insert("jitter".into(), Value::Float(a.jitter));
    agent.insert("max_concurrency".into(), int(a.max_concurrency));
    agent.insert(
        "windows".into(),
        Value::Array(a.windows.iter().map(|w| dur(*w)).collect()),
    );
    agent.insert("dns_servers".into(), list(a.dns_servers.iter()));
    if let Some(url) = &a.runbook_base_url {
        agent.insert("runbook_base_url".into(), s(url));
    }
    agent.insert(
        "cert_expiry_warn_floor".into(),
        dur(a.cert_expiry_warn_floor),
    );
    root.insert("agent".into(), Value::Table(agent));

    if let Some(id) = &config.identity {
        let mut t = Table::new();
        match &id.workload_api {
            // The Workload API streams the SVID and bundles: no files, no reload period.
            Some(wa) => {
                t.insert("source".into(), s("workload-api"));
                t.insert("socket".into(), s(&wa.socket));
                if let Some(hint) = &wa.svid_hint {
                    t.insert("svid_hint".into(), s(hint));
                }
            }
            None => {
                t.insert("cert".into(), s(id.cert.display()));
                t.insert("key".into(), s(id.key.display()));
                t.insert("ca".into(), s(id.ca.display()));
                t.insert("reload".into(), dur(id.reload));
            }
        }
        if let Some(td) = &id.trust_domain {
            t.insert("trust_domain".into(), s(td.as_str()));
        }
        t.insert(
            "trust_domain_aliases".into(),
            list(id.trust_domain_aliases.iter().map(|d| d.as_str())),
        );
        root.insert("identity".into(), Value::Table(t));
    }
    if let Some(serve) = &config.serve {
        let mut t = Table::new();
        t.insert("listen".into(), s(serve.listen));
        t.insert(
            "client_auth".into(),
            s(match serve.client_auth {
                super::ClientAuth::Require => "require",
                super::ClientAuth::Optional => "optional",
            }),
        );
        root.insert("serve".into(), Value::Table(t));
    }
    if let Some(f) = &config.fleet {
        let mut t = Table::new();
        t.insert("peers".into(), s(&f.peers));
        t.insert("self".into(), s(f.self_addr));
        t.insert("probers_per_target".into(), int(f.probers_per_target));
        t.insert("rotate".into(), dur(f.rotate));
        t.insert("refresh".into(), dur(f.refresh));
        root.insert("fleet".into(), Value::Table(t));
    }
    let targets: Vec<Value> = config
        .targets
        .iter()
        .filter(|t| t.origin == Origin::Configured)
        .map(|t| {
            let mut table = Table::new();
            table.insert("name".into(), s(&t.name));
            table.insert("address".into(), s(&t.address));
            probe_keys(&mut table, t);
            Value::Table(table)
        })
        .collect();
    if !targets.is_empty() {
        root.insert("target".into(), Value::Array(targets));
    }
    let discover: Vec<Value> = config.discover.iter().map(discover_table).collect();
    if !discover.is_empty() {
        root.insert("discover".into(), Value::Array(discover));
    }

    let mut out = String::new();
    // The included files' targets are written inline below: writing `include` too would
    // define each of them twice when the text is read back.
    if !a.include.is_empty() {
        out.push_str(&format!(
            "# [agent] include = {:?}: the targets of {} included file(s) are written inline\n",
            a.include,
            config.included.len()
        ));
    }
    for t in &config.targets {
        if let Origin::StrictCompanion { of } = &t.origin {
            out.push_str(&format!(
                "# {:?}: added by verify_strict on {of:?} (mode plaintext, expect reject)\n",
                t.name
            ));
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    // A table of strings, numbers and tables always serializes.
    out.push_str(&toml::to_string(&root).unwrap_or_default());
    out
}

fn discover_table(d: &Discover) -> Value {
    let mut table = Table::new();
    table.insert("name".into(), s(&d.name));
    table.insert("dns".into(), s(&d.dns));
    table.insert("port".into(), int(usize::from(d.port)));
    table.insert("refresh".into(), dur(d.refresh));
    probe_keys(&mut table, &d.template);
    // Not a [[discover]] key (the loader refuses it there).
    table.remove("verify_strict");
    Value::Table(table)
}

/// The keys `[[target]]` and `[[discover]]` share.
fn probe_keys(table: &mut Table, t: &Target) {
    table.insert("mode".into(), s(t.mode.as_str()));
    table.insert("expect".into(), s(t.expect.as_str()));
    match &t.peer {
        PeerExpectation::SpiffeId(id) => {
            table.insert("spiffe_id".into(), s(id.as_str()));
        }
        // The first domain is the configured one; the rest are [identity]'s aliases,
        // which the loader adds again.
        PeerExpectation::TrustDomain(domains) => {
            if let Some(td) = domains.first() {
                table.insert("trust_domain".into(), s(td.as_str()));
            }
        }
        // The DNS expectation is the server name itself.
        PeerExpectation::DnsName(_) | PeerExpectation::Insecure => {}
    }
    if t.mode != super::Mode::Plaintext {
        table.insert("server_name".into(), s(&t.server_name));
        table.insert("alpn".into(), list(t.alpn.iter()));
        table.insert(
            "tls_versions".into(),
            list(t.tls_versions.iter().map(|v| match v {
                TlsVersion::V1_2 => "1.2",
                TlsVersion::V1_3 => "1.3",
            })),
        );
        if let Some(ca) = &t.ca {
            table.insert("ca".into(), s(ca));
        }
        table.insert("verify_strict".into(), Value::Boolean(t.verify_strict));
    } else if t.server_name != t.address.host.trim_end_matches('.') {
        table.insert("server_name".into(), s(&t.server_name));
    }
    if t.fleet != super::FleetScope::Shared {
        table.insert("fleet".into(), s(t.fleet.as_str()));
    }
    table.insert("interval".into(), dur(t.interval));
    table.insert("timeout".into(), dur(t.timeout));
    if let Some(h) = &t.http {
        table.insert("http".into(), Value::Table(http_table(h)));
    }
    if let Some(g) = &t.grpc {
        let mut grpc = Table::new();
        grpc.insert("service".into(), s(&g.service));
        if let Some(authority) = &g.authority {
            grpc.insert("authority".into(), s(authority));
        }
        table.insert("grpc".into(), Value::Table(grpc));
    }
}

fn http_table(h: &HttpCheck) -> Table {
    let mut t = Table::new();
    t.insert("method".into(), s(&h.method));
    t.insert("path".into(), s(&h.path));
    t.insert(
        "expect_status".into(),
        Value::Array(
            h.expect_status
                .ranges()
                .iter()
                .map(|&(lo, hi)| {
                    if lo == hi {
                        Value::Integer(i64::from(lo))
                    } else {
                        s(format!("{lo}-{hi}"))
                    }
                })
                .collect(),
        ),
    );
    let headers: Table = h.headers.iter().map(|(k, v)| (k.clone(), s(v))).collect();
    t.insert("headers".into(), Value::Table(headers));
    t.insert("max_body_bytes".into(), int(h.max_body_bytes));
    t
}

fn s(v: impl ToString) -> Value {
    Value::String(v.to_string())
}

fn int(n: usize) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn dur(d: Duration) -> Value {
    s(humantime::format_duration(d))
}

fn list<T: ToString>(items: impl Iterator<Item = T>) -> Value {
    Value::Array(items.map(s).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, load, load_str};

    /// Every good config (and the repository's example) reads back as itself.
    #[test]
    fn effective_config_round_trips() {
        let env: Env = [("NODE_NAME".to_owned(), "node-a".to_owned())].into();
        let mut files: Vec<_> = std::fs::read_dir("tests/data/config/good")
            .expect("good configs")
            .map(|e| e.expect("entry").path())
            .collect();
        files.push("probes.toml".into());
        for file in files {
            let config = load(&file, &env).expect("a good config");
            let text = render(&config);
            assert!(!text.contains("[[targets]]"), "{text}");
            let again = load_str(&text, "effective", &env)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", file.display()));
            let mut again = again;
            again.origin = config.origin.clone();
            assert_eq!(again, config, "{}:\n{text}", file.display());
        }
    }

    /// `[fleet]` and `fleet = "all"` survive; the included files' targets are written
    /// inline, and the text reads back with the same targets (no name defined twice).
    #[test]
    fn fleet_and_included_targets_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("matrix.toml"),
            "[[target]]\nname = \"m/one\"\naddress = \"one:80\"\nmode = \"plaintext\"\n",
        )
        .expect("write");
        let main = dir.path().join("probes.toml");
        std::fs::write(
            &main,
            "[agent]\nsource = \"a\"\ninclude = [\"*.toml\"]\n\
             [fleet]\npeers = \"agents.example\"\nself = \"10.0.0.1\"\n\
             [[target]]\nname = \"local\"\naddress = \"local:80\"\nmode = \"plaintext\"\n\
             fleet = \"all\"\n",
        )
        .expect("write");
        let config = load(&main, &Env::new()).expect("valid");
        let text = render(&config);
        assert!(
            text.contains("[fleet]") && text.contains("fleet = \"all\""),
            "{text}"
        );
        assert!(!text.lines().any(|l| l.starts_with("include")), "{text}");
        let again =
            load_str(&text, "effective", &Env::new()).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(again.targets, config.targets);
        assert_eq!(again.fleet, config.fleet);
    }

    /// `source = "workload-api"` and `[target.grpc]` read back as themselves.
    #[test]
    fn workload_api_identity_and_grpc_checks_round_trip() {
        let text = "[identity]\nsource = \"workload-api\"\nsocket = \"unix:///run/spire.sock\"\n\
                    svid_hint = \"internal\"\ntrust_domain = \"cluster.local\"\n\
                    [[target]]\nname = \"shop/grpc\"\naddress = \"shop:9090\"\n\
                    [target.grpc]\nservice = \"shop.Cart\"\nauthority = \"cart.shop\"\n";
        let config = load_str(text, "probes.toml", &Env::new()).expect("valid");
        let rendered = render(&config);
        assert!(rendered.contains("source = \"workload-api\""), "{rendered}");
        assert!(!rendered.contains("cert ="), "{rendered}");
        assert!(rendered.contains("[target.grpc]"), "{rendered}");
        let mut again = load_str(&rendered, "effective", &Env::new())
            .unwrap_or_else(|e| panic!("{e}\n{rendered}"));
        again.origin = config.origin.clone();
        assert_eq!(again, config, "{rendered}");
    }
}
