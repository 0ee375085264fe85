//! `config::load_str`: arbitrary text, structured mutations of the repository's
//! `probes.toml`, and arbitrary `MTLS_PROBER_*` environments.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::OnceLock;

use mtls_prober::config::{self, Env};
use proptest::prelude::*;
use proptest::sample::Index;
use toml::{Table, Value};

use super::inputs::conflicting;
use super::oracles::{check_config, check_config_error};
use super::support::{apply, cases, edits};

/// The repository's commented example, which `check` accepts.
fn probes_toml() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/probes.toml"))
            .expect("reading probes.toml")
    })
}

/// A small config without `[identity]` (plaintext only), so that environment overrides
/// are checked against a base that loads.
const PLAINTEXT: &str = r#"
[agent]
source = "node-a"

[[target]]
name = "legacy/reports"
address = "reports.legacy.svc.cluster.local:8080"
mode = "plaintext"
"#;

/// Names that look like file paths or configmap keys, to check they are named verbatim.
fn origin() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("probes.toml".to_owned()),
        "/etc/mtls-prober/[a-z]{1,12}\\.toml",
        "[a-zA-Z0-9_. -]{1,24}",
    ]
}

/// Every key of the schema, so insertions also put real keys in the wrong tables.
const KEYS: &[&str] = &[
    "agent",
    "identity",
    "serve",
    "target",
    "discover",
    "source",
    "listen",
    "interval",
    "timeout",
    "jitter",
    "max_concurrency",
    "windows",
    "dns_servers",
    "cert",
    "key",
    "ca",
    "reload",
    "trust_domain",
    "trust_domain_aliases",
    "client_auth",
    "name",
    "address",
    "mode",
    "expect",
    "spiffe_id",
    "server_name",
    "alpn",
    "tls_versions",
    "verify_strict",
    "http",
    "method",
    "path",
    "expect_status",
    "headers",
    "max_body_bytes",
    "dns",
    "port",
    "refresh",
];

/// Values a user (or a bad template) might write, beside random ones.
const VALUES: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "0s",
    "1ns",
    "500ms",
    "10s",
    "24h",
    "25h",
    "1d",
    "99999999999h",
    "1.5",
    "0.999999",
    "nan",
    "inf",
    "true",
    "yes",
    "mtls",
    "tls",
    "plaintext",
    "reject",
    "success",
    "require",
    "optional",
    "0.0.0.0:9464",
    "[::]:9464",
    "[::1]:0",
    "::1",
    "localhost:8080",
    "a:65536",
    "host:",
    ":80",
    "10.96.0.10",
    "10.96.0.10:53",
    "spiffe://cluster.local/ns/a/sa/b",
    "spiffe://",
    "spiffe://UPPER/x",
    "cluster.local",
    "2xx",
    "6xx",
    "200-199",
    "100-599",
    "/",
    "/healthz#x",
    "GET",
    "G T",
    "h2",
    "http/1.1",
    "1.1",
    "1.2",
    "1.3",
    "x-probe",
    "content-length",
    "transfer-encoding",
    "a\u{0}b",
    "line\nbreak",
    "é",
    "\u{202e}",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::sample::select(VALUES).prop_map(|s| Value::String(s.to_owned())),
        "\\PC{0,24}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
        "[a-z]{1,2000}".prop_map(Value::String),
        prop_oneof![
            any::<i64>(),
            -2i64..70000,
            Just(i64::MIN),
            Just(i64::MAX),
            Just(65536)
        ]
        .prop_map(Value::Integer),
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            Just(0.999_999_999),
            Just(1.0)
        ]
        .prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..3)
                .prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(KEYS).prop_map(str::to_owned),
        "[a-z_]{1,12}",
        "\\PC{0,8}",
    ]
}

/// A structured change of the TOML tree, addressed by a walk from the root.
#[derive(Clone, Debug)]
enum TreeEdit {
    Delete(Vec<Index>),
    Insert(Vec<Index>, String, Value),
    Replace(Vec<Index>, Value),
}

fn tree_edit() -> impl Strategy<Value = TreeEdit> {
    let walk = prop::collection::vec(any::<Index>(), 0..4);
    prop_oneof![
        walk.clone().prop_map(TreeEdit::Delete),
        (walk.clone(), key(), value()).prop_map(|(w, k, v)| TreeEdit::Insert(w, k, v)),
        (walk, value()).prop_map(|(w, v)| TreeEdit::Replace(w, v)),
    ]
}

/// The table a walk ends in (descending through tables and arrays of tables), and the
/// key of the entry it picks there.
fn walk<'a>(mut table: &'a mut Table, path: &[Index]) -> (&'a mut Table, Option<String>) {
    for (depth, step) in path.iter().enumerate() {
        if table.is_empty() {
            return (table, None);
        }
        let key = table
            .keys()
            .nth(step.index(table.len()))
            .cloned()
            .unwrap_or_default();
        let last = depth + 1 == path.len();
        // Where to go next: into the table itself, or into element `i` of an array of
        // tables; checked before borrowing mutably.
        let next = match table.get(&key) {
            Some(Value::Table(_)) if !last => Some(None),
            Some(Value::Array(a)) if !last && !a.is_empty() => {
                let i = step.index(a.len());
                a[i].is_table().then_some(Some(i))
            }
            _ => None,
        };
        let Some(element) = next else {
            return (table, Some(key));
        };
        table = match (table.get_mut(&key), element) {
            (Some(Value::Table(t)), None) => t,
            (Some(Value::Array(a)), Some(i)) => a[i].as_table_mut().unwrap(),
            _ => unreachable!("checked above"),
        };
    }
    (table, None)
}

fn apply_tree(table: &mut Table, edits: &[TreeEdit]) {
    for e in edits {
        match e {
            TreeEdit::Delete(path) => {
                if let (t, Some(k)) = walk(table, path) {
                    t.remove(&k);
                }
            }
            TreeEdit::Insert(path, key, v) => {
                let (t, _) = walk(table, path);
                t.insert(key.clone(), v.clone());
            }
            TreeEdit::Replace(path, v) => {
                if let (t, Some(k)) = walk(table, path) {
                    t.insert(k, v.clone());
                }
            }
        }
    }
}

/// Variable names: the real keys (upper-, lower- and mixed-case), indexes into the
/// arrays, and random suffixes.
fn env_var() -> impl Strategy<Value = String> {
    const PATHS: &[&str] = &[
        "AGENT__SOURCE",
        "AGENT__LISTEN",
        "AGENT__INTERVAL",
        "AGENT__TIMEOUT",
        "AGENT__JITTER",
        "AGENT__MAX_CONCURRENCY",
        "AGENT__WINDOWS",
        "AGENT__DNS_SERVERS",
        "AGENT",
        "IDENTITY__CERT",
        "IDENTITY__KEY",
        "IDENTITY__CA",
        "IDENTITY__RELOAD",
        "IDENTITY__TRUST_DOMAIN",
        "IDENTITY__TRUST_DOMAIN_ALIASES",
        "SERVE__LISTEN",
        "SERVE__CLIENT_AUTH",
        "TARGET__0__NAME",
        "TARGET__0__TIMEOUT",
        "TARGET__1__HTTP__PATH",
        "TARGET__7__ADDRESS",
        "TARGET__0__HTTP__HEADERS__X_PROBE",
        "TARGET",
        "DISCOVER__0__PORT",
        "AGENT_LISTEN",
        "AGENT____LISTEN",
        "__",
        "",
    ];
    prop_oneof![
        4 => proptest::sample::select(PATHS).prop_map(|p| format!("MTLS_PROBER_{p}")),
        1 => proptest::sample::select(PATHS)
            .prop_map(|p| format!("mtls_prober_{}", p.to_lowercase())),
        1 => "[A-Z_0-9]{0,24}".prop_map(|s| format!("MTLS_PROBER_{s}")),
        1 => "\\PC{0,16}".prop_map(|s| format!("MTLS_PROBER_{s}")),
        1 => Just("NODE_NAME".to_owned()),
        1 => "[A-Z_]{1,12}",
    ]
}

fn env_value() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(VALUES).prop_map(str::to_owned),
        "\\PC{0,24}",
        any::<String>(),
        "[a-z0-9.,: ]{0,30}",
        Just(",,".to_owned()),
        Just("5m,30m".to_owned()),
        Just("5m, 5m".to_owned()),
    ]
}

fn env() -> impl Strategy<Value = Env> {
    prop::collection::btree_map(env_var(), env_value(), 0..5).prop_filter(
        "variables that set the same key or a key and its parent",
        |e| !conflicting(e),
    )
}

proptest! {
    #![proptest_config(cases(256))]

    /// Any text, any origin name: no panic, and an error starts with the origin.
    #[test]
    fn arbitrary_text(text in any::<String>(), origin in origin()) {
        let _ = check_config(&text, &origin, &Env::new());
    }

    /// TOML-shaped text (brackets, quotes, equals, newlines) reaches deeper than
    /// random Unicode.
    #[test]
    fn toml_shaped_text(
        text in "(\\[{1,2}[a-z._]{0,10}\\]{1,2}\n|[a-z_]{1,10} = (\"[^\"\n]{0,10}\"|[0-9.e+-]{1,6}|\\[[^\n]{0,12}\\]|\\{[^\n]{0,12}\\}|true)\n|#[^\n]{0,10}\n){0,12}",
        origin in origin(),
    ) {
        let _ = check_config(&text, &origin, &Env::new());
    }

    /// Byte-level damage to probes.toml (cuts, flips, duplicated lines).
    #[test]
    fn damaged_probes_toml(edits in edits(6), origin in origin()) {
        let bytes = apply(probes_toml().as_bytes().to_vec(), &edits);
        let _ = check_config(&String::from_utf8_lossy(&bytes), &origin, &Env::new());
    }

    /// Keys deleted, inserted and changed anywhere in probes.toml's tree.
    #[test]
    fn mutated_probes_toml(edits in prop::collection::vec(tree_edit(), 1..5), origin in origin()) {
        let mut table: Table = toml::from_str(probes_toml()).unwrap();
        apply_tree(&mut table, &edits);
        // Some trees have no TOML text (e.g. NaN keys are fine, but not every mix).
        let Ok(text) = toml::to_string(&table) else { return Ok(()) };
        let _ = check_config(&text, &origin, &Env::new());
    }

    /// A key the schema does not have, anywhere outside the free-form `headers` map, is
    /// an error naming it (typos must not pass silently).
    #[test]
    fn unknown_keys_are_errors(
        path in prop::collection::vec(any::<Index>(), 0..4),
        name in "zz_[a-z]{1,8}",
        v in scalar(),
    ) {
        let mut table: Table = toml::from_str(probes_toml()).unwrap();
        let (t, _) = walk(&mut table, &path);
        prop_assume!(!t.values().any(|v| v.as_str() == Some("mtls-prober")));
        t.insert(name.clone(), v);
        let text = toml::to_string(&table).unwrap();
        let err = check_config(&text, "probes.toml", &Env::new())
            .expect_err("an unknown key was accepted");
        prop_assert!(err.to_string().contains(&name), "{err}");
    }

    /// probes.toml (or a plaintext config) under any environment: no panic, errors
    /// name the origin.
    #[test]
    fn arbitrary_env(env in env(), plaintext in any::<bool>(), origin in origin()) {
        let base = if plaintext { PLAINTEXT } else { probes_toml() };
        let _ = check_config(base, &origin, &env);
    }

    /// A valid listen address from the environment replaces the file's.
    #[test]
    fn env_listen_overrides_the_file(ip in any::<[u8; 4]>(), port in 1u16..) {
        let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port));
        let env = Env::from([("MTLS_PROBER_AGENT__LISTEN".to_owned(), addr.to_string())]);
        let cfg = check_config(probes_toml(), "probes.toml", &env).unwrap();
        prop_assert_eq!(cfg.agent.listen, addr);
    }

    /// A bad value from the environment is reported at its key and names the variable.
    #[test]
    fn env_errors_name_the_variable(junk in "[a-z]{3,12}", key in 0usize..3) {
        let (var, key) = [
            ("MTLS_PROBER_AGENT__LISTEN", "agent.listen"),
            ("MTLS_PROBER_AGENT__INTERVAL", "agent.interval"),
            ("MTLS_PROBER_SERVE__CLIENT_AUTH", "serve.client_auth"),
        ][key];
        prop_assume!(!["true", "false", "require", "optional"].contains(&junk.as_str()));
        let env = Env::from([(var.to_owned(), junk)]);
        let err = check_config(probes_toml(), "probes.toml", &env).unwrap_err();
        check_config_error(&err, "probes.toml");
        prop_assert_eq!(err.key.as_deref(), Some(key));
        prop_assert!(err.to_string().contains(var), "{}", err);
    }

    /// A source set in the environment is used as written (names that start with a
    /// letter: see `env_numeric_source_is_verbatim` for the others).
    #[test]
    fn env_source_is_verbatim(source in "[a-z][a-z0-9.-]{0,20}") {
        let env = Env::from([("MTLS_PROBER_AGENT__SOURCE".to_owned(), source.clone())]);
        let cfg = check_config(PLAINTEXT, "probes.toml", &env).unwrap();
        prop_assert_eq!(cfg.agent.source, source);
    }
}

/// Found by `env_source_is_verbatim`: the `config` crate's `try_parsing` turns
/// numeric-looking environment values into numbers before they are read back as
/// strings, so `MTLS_PROBER_AGENT__SOURCE=0.` gives the source "0" and `007` gives "7"
/// (Kubernetes node names may be all digits). Fixed: the loader keeps the text.
#[test]

fn env_numeric_source_is_verbatim() {
    for source in ["0.", "007", "1e3", "10.50"] {
        let env = Env::from([("MTLS_PROBER_AGENT__SOURCE".to_owned(), source.to_owned())]);
        let cfg = check_config(PLAINTEXT, "probes.toml", &env).unwrap();
        assert_eq!(cfg.agent.source, source);
    }
}

/// Found by `arbitrary_env`: with `MTLS_PROBER_AGENT=x` and
/// `MTLS_PROBER_AGENT__SOURCE=node-b` both set, the same load sometimes fails ("expected
/// a table ([agent]), got string") and sometimes succeeds, depending on the `HashMap`
/// order in which the `config` crate applies the variables; two spellings of one key
/// (`MTLS_PROBER_AGENT__SOURCE`, `mtls_prober_agent__source`) pick a random winner.
/// Fixed: the loader refuses such variables, naming both.
#[test]

fn env_conflicts_load_deterministically() {
    let env = Env::from([
        ("MTLS_PROBER_AGENT".to_owned(), "x".to_owned()),
        ("MTLS_PROBER_AGENT__SOURCE".to_owned(), "node-b".to_owned()),
    ]);
    let first = config::load_str(PLAINTEXT, "probes.toml", &env).is_ok();
    for _ in 0..64 {
        assert_eq!(
            config::load_str(PLAINTEXT, "probes.toml", &env).is_ok(),
            first
        );
    }
}

/// The example file itself loads (the base the mutations start from).
#[test]
fn probes_toml_loads() {
    check_config(probes_toml(), "probes.toml", &Env::new()).unwrap();
}
