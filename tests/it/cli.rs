//! The binary: `check` and `probe` as a user runs them (exit codes 0/1/2, messages that
//! name the file and key, JSON lines exactly as SPEC §8).

use std::path::Path;
use std::process::Output;

use mtls_prober::demo::pki::LeafSpec;
use tokio::process::Command;

use crate::common::tools;
use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_mtls-prober");

async fn run(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("NODE_NAME")
        .env("NODE_NAME", "ci-node");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().await.unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn identity_env(pki: &Pki) -> Vec<(&'static str, std::path::PathBuf)> {
    vec![
        ("MTLS_PROBER_IDENTITY__CERT", pki.path("cert-chain.pem")),
        ("MTLS_PROBER_IDENTITY__KEY", pki.path("key.pem")),
        ("MTLS_PROBER_IDENTITY__CA", pki.path("root-cert.pem")),
    ]
}

fn env_refs<'a>(v: &'a [(&'static str, std::path::PathBuf)]) -> Vec<(&'static str, &'a Path)> {
    v.iter().map(|(k, p)| (*k, p.as_path())).collect()
}

#[tokio::test]
async fn check_accepts_the_example_config_with_real_identity_files() {
    let pki = Pki::new();
    let env = identity_env(&pki);
    let o = run(&["check", "--config", "probes.toml"], &env_refs(&env)).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("key.pem matches"), "{out}");
    assert!(out.contains(CLIENT_ID), "{out}");
    assert!(out.contains("Mesh Root CA"), "{out}");
    // The effective config shows the expanded companion.
    assert!(out.contains("/plaintext"), "{out}");
}

#[tokio::test]
async fn check_names_the_file_and_key_of_config_errors() {
    for (file, fragments) in [
        (
            "unknown-target-key.toml",
            &["unknown-target-key.toml", "target[1].spiffeid"][..],
        ),
        (
            "duration-words.toml",
            &["duration-words.toml", "agent.timeout", "\"10s\""][..],
        ),
    ] {
        let path = format!("tests/data/config/bad/{file}");
        let o = run(&["check", "--config", &path], &[]).await;
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        for f in fragments {
            assert!(text(&o).contains(f), "{file}: {} lacks {f}", text(&o));
        }
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
    }
    let o = run(&["check", "--config", "does-not-exist.toml"], &[]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("does-not-exist.toml"), "{}", text(&o));
}

#[tokio::test]
async fn check_rejects_broken_identity_files() {
    let pki = Pki::new();
    // A key that belongs to another certificate.
    let other = pki.server_leaf();
    let (_, other_key) = pki.write_leaf("other", &other);
    let mut env = identity_env(&pki);
    env[1].1 = other_key.clone();
    let o = run(&["check", "--config", "probes.toml"], &env_refs(&env)).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("other.key"), "{}", text(&o));
    assert!(text(&o).contains("does not match"), "{}", text(&o));
    assert!(
        !text(&o).contains(&other.key_pem()[30..90]),
        "key material in the output"
    );
    // An unreadable file.
    let mut env = identity_env(&pki);
    env[2].1 = pki.path("no-such-root.pem");
    let o = run(&["check", "--config", "probes.toml"], &env_refs(&env)).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no-such-root.pem"), "{}", text(&o));
    assert!(text(&o).contains("cannot read"), "{}", text(&o));
    // An expired own certificate.
    let expired = pki
        .intermediate
        .issue(&LeafSpec::spiffe(CLIENT_ID).expired())
        .unwrap();
    let (c, k) = pki.write_leaf("expired", &expired);
    let mut env = identity_env(&pki);
    env[0].1 = c;
    env[1].1 = k;
    let o = run(&["check", "--config", "probes.toml"], &env_refs(&env)).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("expired"), "{}", text(&o));
    // The client certificate itself is what the PKI wrote at start.
    assert!(pki.client.chain_pem().contains("BEGIN CERTIFICATE"));
}

#[tokio::test]
async fn probe_config_prints_json_lines_and_exits_by_verdict() {
    let pki = Pki::new();
    let good = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let denied = pki
        .strict_peer(HttpBehavior::Respond(Response::istio_rbac_denied()))
        .await;
    let config = format!(
        r#"
[agent]
source = "node-a"
[identity]
cert = "{cert}"
key = "{key}"
ca = "{ca}"
trust_domain = "cluster.local"
[[target]]
name = "prod/api"
address = "{good}"
spiffe_id = "{SERVER_ID}"
verify_strict = true
[target.http]
path = "/healthz"
[[target]]
name = "prod/denied"
address = "{denied}"
trust_domain = "cluster.local"
[target.http]
path = "/healthz"
"#,
        cert = pki.path("cert-chain.pem").display(),
        key = pki.path("key.pem").display(),
        ca = pki.path("root-cert.pem").display(),
        good = good.addr(),
        denied = denied.addr(),
    );
    let path = pki.path("probes.toml");
    std::fs::write(&path, config).unwrap();
    let p = path.display().to_string();
    let o = run(&["probe", "--config", &p, "--output", "json"], &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<_> = lines
        .iter()
        .map(|l| l["target"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prod/api", "prod/api/plaintext", "prod/denied"]);
    // Every field of SPEC §8, in every line.
    for l in &lines {
        for key in [
            "source",
            "target",
            "address",
            "mode",
            "expect",
            "ok",
            "stage",
            "reason",
            "detail",
            "hint",
            "timings_ms",
            "tls",
            "peer",
            "http",
            "at",
        ] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
        for key in ["resolve", "connect", "tls", "request", "total"] {
            assert!(
                l["timings_ms"].get(key).is_some(),
                "timings_ms.{key} missing in {l}"
            );
        }
        assert_eq!(l["source"], "node-a");
    }
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[0]["peer"]["spiffe_id"], SERVER_ID);
    assert_eq!(lines[0]["tls"]["version"], "TLS 1.3");
    assert_eq!(
        lines[1]["ok"], true,
        "the STRICT server refuses plaintext: {}",
        lines[1]
    );
    assert_eq!(lines[1]["mode"], "plaintext");
    assert_eq!(lines[1]["expect"], "reject");
    assert_eq!(lines[2]["reason"], "rbac_denied");
    assert_eq!(lines[2]["stage"], "request");
    assert_eq!(lines[2]["http"]["status"], 403);
    assert!(lines[2]["hint"].as_str().unwrap().len() > 20);
    // One target only, and text output.
    let o = run(&["probe", "--config", &p, "--target", "prod/api"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("✓  identity"), "{}", text(&o));
    let o = run(&["probe", "--config", &p, "--target", "nope"], &[]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("prod/denied"),
        "lists the targets: {}",
        text(&o)
    );
}

#[tokio::test]
async fn adhoc_probe_of_one_address() {
    let pki = Pki::new();
    let server = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let addr = server.addr().to_string();
    let cert = pki.path("cert-chain.pem").display().to_string();
    let key = pki.path("key.pem").display().to_string();
    let ca = pki.path("root-cert.pem").display().to_string();
    let base = [
        "probe",
        &addr,
        "--cert",
        &cert,
        "--key",
        &key,
        "--ca",
        &ca,
        "--http-path",
        "/healthz",
    ];
    let mut args = base.to_vec();
    args.extend(["--spiffe-id", SERVER_ID, "--output", "json"]);
    let o = run(&args, &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["http"]["status"], 200);
    assert_eq!(v["mode"], "mtls");
    // Wrong expectation: exit 1 and the text report names the layer, detail and hint.
    let mut args = base.to_vec();
    args.extend(["--spiffe-id", "spiffe://cluster.local/ns/prod/sa/web"]);
    let o = run(&args, &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("✗  identity"), "{out}");
    assert!(out.contains("identity/identity_mismatch"), "{out}");
    assert!(out.contains("hint: "), "{out}");
    assert!(out.contains("docs/runbook.md#identity_mismatch"), "{out}");
    // Insecure: shows the peer without verifying it.
    let o = run(
        &[
            "probe",
            &addr,
            "--mode",
            "tls",
            "--insecure-skip-verify",
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["reason"], "client_cert_required", "{v}");
    assert_eq!(v["peer"]["spiffe_id"], SERVER_ID);
    // Usage errors exit 2 and name the flag.
    let o = run(&["probe", &addr, "--mode", "tls"], &[]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--ca"), "{}", text(&o));
    let o = run(
        &["probe", &addr, "--ca", &ca, "--spiffe-id", "spifee://x"],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--spiffe-id"), "{}", text(&o));
    let o = run(&["probe"], &[]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// No route: run the binary in a fresh network namespace, which has no routes at all,
/// so the connect fails with ENETUNREACH and no packet leaves the machine.
#[tokio::test]
async fn no_route_is_network_unreachable() {
    if !tools::require("unshare", &["--net", "true"]) {
        return;
    }
    let o = Command::new("unshare")
        .args([
            "--net",
            "--",
            BIN,
            "probe",
            "10.255.0.1:443",
            "--mode",
            "tls",
        ])
        .args(["--insecure-skip-verify", "--output", "json"])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["stage"].as_str(), v["reason"].as_str()),
        (Some("connect"), Some("network_unreachable")),
        "{v}"
    );
    assert!(v["detail"].as_str().unwrap().contains("10.255.0.1:443"));
}

/// A FIFO at an identity path is refused at once (a plain read would block forever).
#[tokio::test]
async fn a_fifo_at_an_identity_path_is_refused_not_read() {
    let pki = Pki::new();
    let fifo = pki.path("fifo.pem");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: mkfifo is not available");
        return;
    }
    let mut env = identity_env(&pki);
    env[1].1 = fifo;
    let o = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        run(&["check", "--config", "probes.toml"], &env_refs(&env)),
    )
    .await
    .expect("check returns instead of blocking on the FIFO");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not a regular file"), "{}", text(&o));
}

/// `probe --config` runs discovered edges too; a name that does not resolve is reported
/// as a failing edge named after the discover.
#[tokio::test]
async fn probe_config_includes_discovered_edges() {
    let pki = Pki::new();
    let server = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let dns = mtls_prober::demo::dns::DnsServer::start().await.unwrap();
    dns.set("agents.test", &[server.addr().ip()]);
    let config = pki.path("discover.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndns_servers = [\"{dns}\"]\n[identity]\ncert = \"{cert}\"\nkey = \"{key}\"\nca = \"{ca}\"\n\
             [[discover]]\nname = \"agents\"\ndns = \"agents.test\"\nport = {port}\nspiffe_id = \"{SERVER_ID}\"\n\
             [[discover]]\nname = \"gone\"\ndns = \"gone.test\"\nport = {port}\nspiffe_id = \"{SERVER_ID}\"\n",
            dns = dns.addr(),
            cert = pki.path("cert-chain.pem").display(),
            key = pki.path("key.pem").display(),
            ca = pki.path("root-cert.pem").display(),
            port = server.addr().port(),
        ),
    )
    .unwrap();
    let p = config.display().to_string();
    let o = run(&["probe", "--config", &p, "--output", "json"], &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["target"], "agents/127.0.0.1");
    assert_eq!(lines[0]["ok"], true, "{}", lines[0]);
    assert_eq!(lines[1]["target"], "gone");
    assert_eq!(lines[1]["reason"], "dns_not_found");
    // Selecting the discover by name probes its edges only.
    let o = run(&["probe", "--config", &p, "--target", "agents"], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Every private-key encoding a mesh hands out loads: PKCS#8, SEC1 ("EC PRIVATE KEY")
/// and PKCS#1 ("RSA PRIVATE KEY", Istio's default), converted by a real OpenSSL.
#[tokio::test]
async fn check_accepts_pkcs8_sec1_and_pkcs1_keys() {
    if !tools::require("openssl", &["version"]) {
        return;
    }
    use mtls_prober::demo::pki::KeyAlg;
    let pki = Pki::new();
    for (alg, label) in [
        (KeyAlg::EcdsaP256, "EC PRIVATE KEY"),
        (KeyAlg::EcdsaP384, "EC PRIVATE KEY"),
        (KeyAlg::Rsa2048, "RSA PRIVATE KEY"),
    ] {
        let leaf = pki
            .intermediate
            .issue(&LeafSpec::spiffe(CLIENT_ID).with_alg(alg))
            .unwrap();
        let name = format!("{alg:?}").to_lowercase();
        let (cert, pkcs8) = pki.write_leaf(&name, &leaf);
        let traditional = pki.path(&format!("{name}-traditional.key"));
        let converted = std::process::Command::new("openssl")
            .args(["pkey", "-traditional", "-in"])
            .arg(&pkcs8)
            .arg("-out")
            .arg(&traditional)
            .status()
            .unwrap();
        assert!(converted.success());
        let pem = std::fs::read_to_string(&traditional).unwrap();
        assert!(pem.contains(&format!("BEGIN {label}")), "{pem}");
        for key in [&pkcs8, &traditional] {
            let mut env = identity_env(&pki);
            env[0].1 = cert.clone();
            env[1].1 = key.clone();
            let o = run(&["check", "--config", "probes.toml"], &env_refs(&env)).await;
            assert_eq!(
                o.status.code(),
                Some(0),
                "{name} {}: {}",
                key.display(),
                text(&o)
            );
        }
    }
}
