//! What people read (issue 15): every message the binary prints for a situation that
//! used to read wrong, as a user runs it. Each test names what it used to say.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use mtls_prober::classify::cert::CA_AS_LEAF_HINT;
use mtls_prober::config::Env;
use mtls_prober::demo::pki::LeafSpec;
use tokio::process::Command;

use crate::common::agent::BIN;
use crate::common::tools::{OpensslServer, require};
use crate::common::*;

async fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("NODE_NAME", "ci-node")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(pki: &Pki, name: &str, text: &str) -> String {
    let p = pki.path(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn identity(pki: &Pki, cert: &Path) -> String {
    format!(
        "[identity]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n",
        cert.display(),
        pki.path("key.pem").display(),
        pki.path("root-cert.pem").display()
    )
}

/// Was: "config …: valid", 35 lines of config, and only then `…/nope.pem: cannot read`
/// without the key.
#[tokio::test]
async fn check_puts_errors_first_with_the_key_that_named_the_file() {
    let pki = Pki::new();
    let config = write(
        &pki,
        "c.toml",
        &format!(
            "{}[[target]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n",
            identity(&pki, &pki.path("nope.pem"))
        ),
    );
    let o = run(&["check", "--config", &config]).await;
    assert_eq!(o.status.code(), Some(2), "{}{}", out(&o), err(&o));
    let first = err(&o).lines().next().unwrap_or_default().to_owned();
    assert!(first.starts_with("error: "), "{first}");
    assert!(first.contains("identity.cert"), "{first}");
    assert!(first.contains("nope.pem: cannot read"), "{first}");
    assert!(!out(&o).contains("valid"), "{}", out(&o));
    assert!(
        !out(&o).contains("[agent]"),
        "no effective config: {}",
        out(&o)
    );
    // --verbose prints it anyway, after the error.
    let o = run(&["check", "--config", &config, "--verbose"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("[agent]"), "{}", out(&o));
}

/// Was: `[[targets]]` and `[targets.peer]`, which the loader refuses.
#[tokio::test]
async fn check_prints_the_effective_config_as_toml_that_loads_again() {
    let pki = Pki::new();
    let config = write(
        &pki,
        "c.toml",
        &format!(
            "{}[[target]]\nname = \"prod/api\"\naddress = \"api.prod.svc:8443\"\n\
             spiffe_id = \"{SERVER_ID}\"\nverify_strict = true\n[target.http]\npath = \"/healthz\"\n",
            identity(&pki, &pki.path("cert-chain.pem"))
        ),
    );
    let o = run(&["check", "--config", &config]).await;
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    let text = out(&o);
    assert!(
        text.contains("[[target]]") && !text.contains("[[targets]]"),
        "{text}"
    );
    let env: Env = [("NODE_NAME".to_owned(), "ci-node".to_owned())].into();
    // All of stdout is TOML (status lines are comments) and means the same config.
    let again = mtls_prober::config::load_str(&text, "stdout", &env)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let original = mtls_prober::config::load(Path::new(&config), &env).unwrap();
    assert_eq!(again.targets, original.targets);
    assert_eq!(again.agent, original.agent);
}

/// Was: the whole watch ran, then `--report /unwritable/x.json` failed with exit 2.
#[tokio::test]
async fn watch_refuses_an_unwritable_report_path_before_probing() {
    let pki = Pki::new();
    let config = write(
        &pki,
        "w.toml",
        &format!(
            "{}[[target]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n",
            identity(&pki, &pki.path("cert-chain.pem"))
        ),
    );
    let start = Instant::now();
    let o = run(&[
        "watch",
        "--config",
        &config,
        "--duration",
        "30m",
        "--report",
        "/nonexistent-dir/x.json",
    ])
    .await;
    assert_eq!(o.status.code(), Some(2), "{}{}", out(&o), err(&o));
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(
        err(&o).contains("--report /nonexistent-dir/x.json"),
        "{}",
        err(&o)
    );
    assert!(err(&o).contains("cannot create a file"), "{}", err(&o));
}

/// Was: `cert_invalid: CaUsedAsEndEntity` and the general cert_invalid hint.
#[tokio::test]
async fn a_self_signed_openssl_certificate_gets_its_own_words() {
    if !require("openssl", &["version"]) {
        return;
    }
    let pki = Pki::new();
    let (cert, key) = (pki.path("self.pem"), pki.path("self.key"));
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let server = OpensslServer::start(&[
        "-cert",
        cert.to_str().unwrap(),
        "-key",
        key.to_str().unwrap(),
        "-www",
    ]);
    let addr = format!("localhost:{}", server.addr.port());
    let o = run(&["probe", &addr, "--ca", cert.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    let text = out(&o);
    assert!(!text.contains("CaUsedAsEndEntity"), "{text}");
    assert!(text.contains("certificate/cert_invalid"), "{text}");
    assert!(
        text.contains("presented a CA certificate as its server certificate"),
        "{text}"
    );
    assert!(text.contains(&format!("hint: {CA_AS_LEAF_HINT}")), "{text}");
}

/// Was: ✓ certificate and ✓ identity for a peer that was never verified.
#[tokio::test]
async fn insecure_skip_verify_marks_the_unchecked_layers_as_skipped() {
    let pki = Pki::new();
    let leaf = pki.foreign.issue(&LeafSpec::dns(&["localhost"])).unwrap();
    let config = server_config(&leaf, ClientAuth::None, &ServerOpts::default()).unwrap();
    let server = peer(Behavior::Tls {
        config,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let addr = server.addr().to_string();
    let o = run(&["probe", &addr, "--mode", "tls", "--insecure-skip-verify"]).await;
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    let text = out(&o);
    assert!(!text.contains("✓  certificate"), "{text}");
    assert!(!text.contains("✓  identity"), "{text}");
    assert!(
        text.contains("certificate") && text.contains("skipped (not verified"),
        "{text}"
    );
    // Names as IANA and blackbox_exporter write them.
    assert!(text.contains("TLS 1.3 TLS_AES_"), "{text}");
}

/// Was: ✓ resolve, connect, tls, certificate, identity at 0.0 ms, then "the target was
/// not contacted".
#[tokio::test]
async fn a_local_identity_failure_comes_first_and_nothing_is_ticked() {
    let pki = Pki::new();
    let server = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let addr = server.addr().to_string();
    // Our chain does not reach this bundle.
    let foreign = write(&pki, "foreign.pem", &pki.foreign.cert_pem());
    let o = run(&[
        "probe",
        &addr,
        "--cert",
        pki.path("cert-chain.pem").to_str().unwrap(),
        "--key",
        pki.path("key.pem").to_str().unwrap(),
        "--ca",
        &foreign,
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    let text = out(&o);
    let layers: Vec<&str> = text.lines().skip(1).take(7).collect();
    assert!(layers[0].trim_start().starts_with("✗  local"), "{text}");
    for l in &layers[1..] {
        assert!(l.contains("not reached"), "{l}\n{text}");
    }
    assert!(!text.contains('✓'), "{text}");
    assert!(text.contains("local/identity_unavailable"), "{text}");
    assert!(!text.contains("UnknownIssuer"), "{text}");
}

/// Was: "an IPv6 address needs brackets".
#[tokio::test]
async fn a_url_as_address_is_named_a_url() {
    let o = run(&[
        "probe",
        "https://api.prod.svc:8443/healthz",
        "--insecure-skip-verify",
    ])
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains(
            "looks like a URL (https://…): use host:port and put the path in [target.http]"
        ),
        "{}",
        err(&o)
    );
}

/// Was: no summary at the end of `probe --config`.
#[tokio::test]
async fn probe_config_ends_with_a_summary_line() {
    let pki = Pki::new();
    let server = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let config = write(
        &pki,
        "p.toml",
        &format!(
            "[agent]\nrunbook_base_url = \"https://wiki.example.com/mtls/runbook/\"\n\
             {}[[target]]\nname = \"prod/api\"\naddress = \"{}\"\nspiffe_id = \"{SERVER_ID}\"\n\
             [[target]]\nname = \"prod/down\"\naddress = \"127.0.0.1:1\"\n",
            identity(&pki, &pki.path("cert-chain.pem")),
            server.addr()
        ),
    );
    let o = run(&["probe", "--config", &config]).await;
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    let last = out(&o).lines().last().unwrap_or_default().to_owned();
    assert_eq!(
        last,
        "2 edge(s) probed: 1 passed, 1 failed: prod/down (connect/connection_refused)"
    );
    // Runbook references are URLs under [agent] runbook_base_url.
    assert!(
        out(&o).contains("runbook: https://wiki.example.com/mtls/runbook#connection_refused"),
        "{}",
        out(&o)
    );
}

/// `--log-format` overrides the default: the demo off a terminal logs JSON, and
/// `--log-format text` turns that into text lines.
#[tokio::test]
async fn log_format_overrides_the_default() {
    let demo = |format: Option<&'static str>| {
        let mut c = Command::new(BIN);
        c.args(["demo", "--listen", "127.0.0.1:0", "--duration", "1s"]);
        if let Some(f) = format {
            c.args(["--log-format", f]);
        }
        c.env_remove("RUST_LOG").stdin(Stdio::null()).output()
    };
    let o = demo(None).await.unwrap();
    let first = err(&o).lines().next().unwrap_or_default().to_owned();
    let v: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(v["level"], "INFO", "{first}");
    let o = demo(Some("text")).await.unwrap();
    let first = err(&o).lines().next().unwrap_or_default().to_owned();
    assert!(!first.starts_with('{') && first.contains("INFO"), "{first}");
}

/// Was: "SPEC §8" in `--help`, a document users do not have.
#[tokio::test]
async fn help_points_to_docs_not_the_spec() {
    for sub in ["probe", "check", "watch", "demo", "run"] {
        let o = run(&[sub, "--help"]).await;
        assert!(!out(&o).contains("SPEC"), "{sub}: {}", out(&o));
    }
    let o = run(&["probe", "--help"]).await;
    assert!(out(&o).contains("docs/output.md"), "{}", out(&o));
}

/// Was: every tls target verified against the mesh root, so a public-style
/// certificate could never pass.
#[tokio::test]
async fn a_tls_target_trusts_its_own_ca_file_without_an_identity() {
    let pki = Pki::new();
    let leaf = pki.foreign.issue(&LeafSpec::dns(&["localhost"])).unwrap();
    let config = server_config(&leaf, ClientAuth::None, &ServerOpts::default()).unwrap();
    let server = peer(Behavior::Tls {
        config,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let ca = write(&pki, "vault-ca.pem", &pki.foreign.cert_pem());
    let config = write(
        &pki,
        "ca.toml",
        &format!(
            "[[target]]\nname = \"external/vault\"\naddress = \"localhost:{port}\"\nmode = \"tls\"\n\
             ca = \"vault-ca.pem\"\n[target.http]\npath = \"/\"\n\
             [[target]]\nname = \"external/public\"\naddress = \"localhost:{port}\"\nmode = \"tls\"\n\
             ca = \"system\"\n",
            port = server.addr().port()
        ),
    );
    let o = run(&["check", "--config", &config]).await;
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(out(&o).contains("ca = \"system\""), "{}", out(&o));
    assert!(
        out(&o).contains(&ca),
        "the relative path is resolved: {}",
        out(&o)
    );
    let o = run(&["probe", "--config", &config, "--output", "json"]).await;
    let lines: Vec<serde_json::Value> = out(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["ok"], true, "{}", lines[0]);
    // Our test CA is in no platform store: untrusted, and the detail names the store.
    assert_eq!(lines[1]["reason"], "cert_untrusted", "{}", lines[1]);
    let detail = lines[1]["detail"].as_str().unwrap();
    assert!(detail.contains("the system's roots"), "{detail}");
    assert!(
        detail.contains("more"),
        "a few roots named, the rest counted: {detail}"
    );
}

/// Was: `demo --watch` exited 0 when its gate failed and ignored `--listen`.
#[tokio::test]
async fn demo_watch_exits_with_the_gate_and_refuses_listen() {
    let o = run(&["demo", "--watch", "--listen", "127.0.0.1:0"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("--listen"), "{}", err(&o));
    let o = run(&["demo", "--watch", "--duration", "3s"]).await;
    // The demo mesh is broken on purpose: the gate fails.
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    assert!(out(&o).contains("FAIL — "), "{}", out(&o));
}

/// Was: docs/deploy.md said 20m/32Mi, 200m/128Mi "placeholders" while the DaemonSet
/// carried measured 25m/32Mi, 500m/160Mi.
#[test]
fn sizing_in_the_docs_matches_the_manifests() {
    fn resources(yaml: &str) -> [String; 4] {
        let lines: Vec<&str> = yaml.lines().map(str::trim).collect();
        let after = |key: &str, field: &str| {
            let at = lines.iter().position(|l| *l == key).unwrap();
            lines[at..]
                .iter()
                .find_map(|l| l.strip_prefix(field))
                .unwrap()
                .trim()
                .to_owned()
        };
        [
            after("requests:", "cpu:"),
            after("limits:", "cpu:"),
            after("requests:", "memory:"),
            after("limits:", "memory:"),
        ]
    }
    let ds = resources(&std::fs::read_to_string("deploy/base/daemonset.yaml").unwrap());
    let job = resources(&std::fs::read_to_string("deploy/watch/base/job.yaml").unwrap());
    assert_eq!(ds, job, "the watch Job runs the same probes as the agent");
    let docs = std::fs::read_to_string("docs/deploy.md").unwrap();
    let sizing = &docs[docs.find("## Sizing").unwrap()..];
    assert!(
        sizing.contains(&format!("| CPU | {} | {} |", ds[0], ds[1])),
        "{ds:?}"
    );
    assert!(
        sizing.contains(&format!("| memory | {} | {} |", ds[2], ds[3])),
        "{ds:?}"
    );
    assert!(
        !docs.contains("placeholders"),
        "docs/deploy.md still calls them placeholders"
    );
    let security = std::fs::read_to_string("docs/security.md").unwrap();
    assert!(
        security.contains(&format!(
            "requests {} / {}, limits {} / {}",
            ds[0], ds[2], ds[1], ds[3]
        )),
        "docs/security.md"
    );
}
