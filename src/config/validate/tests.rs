//! Loading tests: bad fixtures name file, key and expectation; every rule of the
//! schema has a row.

use super::*;

/// A load without a running config to reuse targets from.
fn load_file(path: &Path, env: &Env) -> Result<Config, ConfigError> {
    super::load_file(path, env, &reuse_none)
}

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
        "fleet-bad-scope.toml",
        Some("target[0].fleet"),
        "got \"everyone\"; expected \"shared\"",
    ),
    (
        "fleet-peers-is-an-ip.toml",
        Some("fleet.peers"),
        "expected a DNS name whose addresses are the agents",
    ),
    (
        "fleet-probers-zero.toml",
        Some("fleet.probers_per_target"),
        "got 0; expected a number of agents from 1 to 10000",
    ),
    (
        "fleet-rotate-shorter-than-interval.toml",
        Some("fleet.rotate"),
        "shorter than agent.interval 10s; expected \"0s\" (never)",
    ),
    (
        "fleet-self-not-an-ip.toml",
        Some("fleet.self"),
        "got \"node-a\"; expected this agent's IP address",
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
        "workload-api-with-cert.toml",
        Some("identity.cert"),
        "not used with source = \"workload-api\"",
    ),
    (
        "workload-api-bad-socket.toml",
        Some("identity.socket"),
        "expected \"unix:///absolute/path\" or \"tcp://IP:PORT\"",
    ),
    (
        "workload-api-no-socket.toml",
        Some("identity.socket"),
        "missing and $SPIFFE_ENDPOINT_SOCKET is unset",
    ),
    (
        "svid-hint-with-files.toml",
        Some("identity.svid_hint"),
        "only valid with source = \"workload-api\"",
    ),
    (
        "bad-identity-source.toml",
        Some("identity.source"),
        "got \"spire\"; expected \"files\" or \"workload-api\"",
    ),
    (
        "grpc-and-http.toml",
        Some("target[0].grpc"),
        "set together with [target.http]",
    ),
    (
        "grpc-alpn.toml",
        Some("target[0].alpn"),
        "gRPC offers only \"h2\"",
    ),
    (
        "grpc-bad-authority.toml",
        Some("target[0].grpc.authority"),
        "without user information",
    ),
    (
        "unknown-grpc-key.toml",
        Some("target[0].grpc.servce"),
        "unknown key \"servce\"; expected one of: service, authority",
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
    assert_eq!(c.fleet.as_ref().map(|f| f.probers_per_target), Some(3));
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
        let table = if let Some(name) = header.strip_prefix("[[").and_then(|r| r.strip_suffix("]]"))
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
        "fleet",
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
        ("fleet", "\"all\""),
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
        (
            "https://api.prod:8443/healthz",
            "looks like a URL (https://…): use host:port and put the path in [target.http]",
        ),
        ("http://api.prod/", "looks like a URL"),
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
        workload_api: None,
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

// === [fleet] ===

const FLEET: &str = "[fleet]\npeers = \"agents.monitoring.svc.cluster.local\"\n";

#[test]
fn fleet_defaults_and_self_from_pod_ip() {
    let c = load_str(FLEET, "f.toml", &env(&[("POD_IP", "10.0.3.7")])).unwrap();
    let f = c.fleet.unwrap();
    assert_eq!(f.peers, "agents.monitoring.svc.cluster.local");
    assert_eq!(f.self_addr, "10.0.3.7".parse::<IpAddr>().unwrap());
    assert_eq!(f.probers_per_target, 3);
    assert_eq!(f.rotate, Duration::from_secs(3600));
    assert_eq!(f.refresh, Duration::from_secs(30));
    // `self` wins over $POD_IP; "0s" turns rotation off.
    let text = format!("{FLEET}self = \"fd00::7\"\nrotate = \"0s\"\nprobers_per_target = 2\n");
    let f = load_str(&text, "f.toml", &env(&[("POD_IP", "10.0.3.7")]))
        .unwrap()
        .fleet
        .unwrap();
    assert_eq!(f.self_addr, "fd00::7".parse::<IpAddr>().unwrap());
    assert_eq!((f.rotate, f.probers_per_target), (Duration::ZERO, 2));
    // And from the environment like every key.
    let f = load_str(
        FLEET,
        "f.toml",
        &env(&[
            ("MTLS_PROBER_FLEET__SELF", "10.0.0.9"),
            ("POD_IP", "10.0.3.7"),
        ]),
    )
    .unwrap()
    .fleet
    .unwrap();
    assert_eq!(f.self_addr, "10.0.0.9".parse::<IpAddr>().unwrap());
}

#[test]
fn fleet_self_is_required_without_pod_ip() {
    let (key, problem) = err_of(FLEET);
    assert_eq!(key.as_deref(), Some("fleet.self"));
    assert!(
        problem.contains("not set and $POD_IP is unset"),
        "{problem}"
    );
    let e = load_str(FLEET, "f.toml", &env(&[("POD_IP", "node-a")])).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("fleet.self"));
    assert!(e.problem.starts_with("from $POD_IP: got \"node-a\""), "{e}");
    let (key, problem) = err_of("[fleet]\nself = \"10.0.0.1\"\n");
    assert_eq!(key.as_deref(), Some("fleet.peers"));
    assert!(
        problem.starts_with("missing; expected the DNS name"),
        "{problem}"
    );
}

#[test]
fn fleet_scope_reaches_companions_and_discovered_edges() {
    let text = format!(
        "{IDENTITY}[[target]]\nname = \"node-local\"\naddress = \"n:1\"\nverify_strict = true\n\
         fleet = \"all\"\n[[target]]\nname = \"shared\"\naddress = \"s:1\"\n\
         [[discover]]\nname = \"agents\"\ndns = \"a.example\"\nport = 8443\nfleet = \"all\"\n"
    );
    let c = load_text(&text).unwrap();
    let scope = |n: &str| c.targets.iter().find(|t| t.name == n).unwrap().fleet;
    assert_eq!(scope("node-local"), FleetScope::All);
    assert_eq!(scope("node-local/plaintext"), FleetScope::All);
    assert_eq!(scope("shared"), FleetScope::Shared);
    assert_eq!(
        c.discover[0].edge("10.0.0.1".parse().unwrap()).fleet,
        FleetScope::All
    );
    // Without [fleet] the key is accepted (a matrix file may serve both kinds of
    // agents) and has no effect.
    assert!(c.fleet.is_none());
}

#[test]
fn workload_api_socket_defaults_to_the_spiffe_endpoint_socket_variable() {
    let text = "[identity]\nsource = \"workload-api\"\nsvid_hint = \"internal\"\n";
    let c = load_str(
        text,
        "inline.toml",
        &env(&[(
            "SPIFFE_ENDPOINT_SOCKET",
            "unix:///run/spire/sockets/agent.sock",
        )]),
    )
    .unwrap();
    let id = c.identity.unwrap();
    let wa = id.workload_api.unwrap();
    assert_eq!(wa.socket, "unix:///run/spire/sockets/agent.sock");
    assert_eq!(wa.svid_hint.as_deref(), Some("internal"));
    assert!(id.cert.as_os_str().is_empty());
    // The variable is checked like the key, and named in the message.
    let e = load_str(
        text,
        "inline.toml",
        &env(&[("SPIFFE_ENDPOINT_SOCKET", "agent.sock")]),
    )
    .unwrap_err();
    assert_eq!(e.key.as_deref(), Some("identity.socket"));
    assert!(e.problem.contains("from $SPIFFE_ENDPOINT_SOCKET"), "{e}");
    // tcp:// with an IP address is an endpoint too.
    let c = load_text("[identity]\nsource = \"workload-api\"\nsocket = \"tcp://127.0.0.1:8081\"\n")
        .unwrap();
    assert_eq!(
        c.identity.unwrap().workload_api.unwrap().socket,
        "tcp://127.0.0.1:8081"
    );
    // `reload` has no meaning with a stream.
    let (key, problem) =
        err_of("[identity]\nsource = \"workload-api\"\nsocket = \"unix:///s\"\nreload = \"1s\"\n");
    assert_eq!(key.as_deref(), Some("identity.reload"));
    assert!(problem.contains("streams every update"), "{problem}");
    // A workload-api identity satisfies mtls targets.
    load_text(
        "[identity]\nsource = \"workload-api\"\nsocket = \"unix:///s\"\n\
         [[target]]\nname = \"a\"\naddress = \"a:1\"\n",
    )
    .unwrap();
}

#[test]
fn grpc_targets_offer_h2_and_their_companion_makes_the_same_call() {
    let c = load_text(
        "[identity]\ncert = \"c\"\nkey = \"k\"\nca = \"a\"\n\
         [[target]]\nname = \"api\"\naddress = \"api:9090\"\nverify_strict = true\n\
         [target.grpc]\nservice = \"api.v1.Api\"\nauthority = \"api.internal:443\"\n\
         [[target]]\nname = \"plain\"\naddress = \"plain:9090\"\nmode = \"plaintext\"\n\
         [target.grpc]\n",
    )
    .unwrap();
    let api = &c.targets[0];
    let grpc = api.grpc.as_ref().unwrap();
    assert_eq!(grpc.service, "api.v1.Api");
    assert_eq!(grpc.authority.as_deref(), Some("api.internal:443"));
    assert_eq!(api.alpn, ["h2"]);
    assert!(api.http.is_none());
    let companion = &c.targets[1];
    assert_eq!(companion.name, "api/plaintext");
    assert_eq!(companion.mode, Mode::Plaintext);
    assert_eq!(companion.grpc.as_ref(), Some(grpc));
    assert!(
        companion.http.is_none(),
        "the companion makes the gRPC call, not GET /"
    );
    let plain = &c.targets[2];
    assert_eq!(plain.grpc.as_ref().unwrap().service, "");
    assert!(plain.alpn.is_empty());
    // `alpn = ["h2"]` is what gRPC offers anyway.
    load_text(
        "[[target]]\nname = \"a\"\naddress = \"a:1\"\nmode = \"tls\"\nalpn = [\"h2\"]\n\
         [target.grpc]\n[identity]\ncert = \"c\"\nkey = \"k\"\nca = \"a\"\n",
    )
    .unwrap();
}

// === reloads ===

#[test]
fn a_reload_hands_back_the_running_copy_of_each_unchanged_target() {
    let path = repo_probes_toml();
    let first = load_file(&path, &Env::new()).unwrap();
    assert!(first.targets.len() > 2, "probes.toml has a few targets");
    // The first target is running with another timeout: its new definition differs.
    let mut running = first.targets.clone();
    Arc::make_mut(&mut running[0]).timeout = Duration::from_millis(1234);
    let again = crate::config::load_reusing(&path, &Env::new(), &running).unwrap();
    assert_eq!(again.targets.len(), first.targets.len());
    assert!(!Arc::ptr_eq(&again.targets[0], &running[0]));
    assert_eq!(again.targets[0], first.targets[0], "the file's definition");
    for (new, old) in again.targets.iter().zip(&running).skip(1) {
        assert!(Arc::ptr_eq(new, old), "{} is a second copy", new.name);
    }
    // Nothing running: every target is new.
    let fresh = crate::config::load_reusing(&path, &Env::new(), &[]).unwrap();
    assert!(
        fresh
            .targets
            .iter()
            .zip(&first.targets)
            .all(|(a, b)| a == b && !Arc::ptr_eq(a, b))
    );
}
