//! `mtls-prober watch` against in-process servers, for a few seconds: verdicts, exit
//! codes, the JSON and Markdown reports, line-oriented output off a terminal.

use std::process::Output;

use tokio::process::Command;

use crate::common::agent::BIN;
use crate::common::*;

fn config(pki: &Pki, targets: &str) -> std::path::PathBuf {
    let path = pki.path("watch.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nsource = \"node-a\"\ninterval = \"400ms\"\ntimeout = \"300ms\"\n\
             [identity]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n{targets}",
            pki.path("cert-chain.pem").display(),
            pki.path("key.pem").display(),
            pki.path("root-cert.pem").display()
        ),
    )
    .unwrap();
    path
}

fn target(name: &str, addr: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "[[target]]\nname = \"{name}\"\naddress = \"{addr}\"\nspiffe_id = \"{SERVER_ID}\"\n{extra}[target.http]\npath = \"/healthz\"\n"
    )
}

async fn watch(config: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("watch")
        .arg("--config")
        .arg(config)
        .args(["--duration", "2s", "--min-success-ratio", "0.99"])
        .args(extra)
        .output()
        .await
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn healthy_matrix_passes_and_the_report_counts_every_probe() {
    let pki = Pki::new();
    let server = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let path = config(
        &pki,
        &target("prod/api", server.addr(), "verify_strict = true\n"),
    );
    let json = pki.path("report.json");
    let md = pki.path("report.md");
    let o = watch(
        &path,
        &[
            "--report",
            json.to_str().unwrap(),
            "--report",
            md.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    let out = stdout(&o);
    // Off a terminal: plain lines, no cursor control.
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(out.lines().any(|l| l.ends_with("PASS prod/api")), "{out}");
    assert!(out.contains("PASS — 2 edges"), "{out}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["cut_short"], false);
    let edges = report["edges"].as_array().unwrap();
    let probes: u64 = edges.iter().map(|e| e["probes"].as_u64().unwrap()).sum();
    // Every probe made is counted: the server accepted exactly as many connections.
    assert_eq!(probes, server.accepted(), "{report:#}");
    assert!(probes >= 6, "~2 s at 400 ms for 2 edges: {probes}");
    for e in edges {
        assert_eq!(e["probes"], e["passes"]);
        assert_eq!(e["held"], true);
    }
    let api = edges.iter().find(|e| e["target"] == "prod/api").unwrap();
    assert_eq!(api["certificates"][0]["spiffe_id"], SERVER_ID);
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(
        markdown.starts_with("# mTLS migration watch: PASS"),
        "{markdown}"
    );
    assert!(markdown.contains("| `prod/api/plaintext` |"), "{markdown}");
}

#[tokio::test]
async fn one_failing_edge_fails_the_gate() {
    let pki = Pki::new();
    let good = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let denied = pki
        .strict_peer(HttpBehavior::Respond(Response::istio_rbac_denied()))
        .await;
    let path = config(
        &pki,
        &[
            target("prod/api", good.addr(), ""),
            target("prod/denied", denied.addr(), ""),
        ]
        .concat(),
    );
    let json = pki.path("report.json");
    let o = watch(&path, &["--report", json.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("FAIL prod/denied request/rbac_denied"),
        "{out}"
    );
    assert!(
        out.contains("prod/denied: success ratio 0.0000 is under 0.99"),
        "{out}"
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["verdict"], "fail");
    let denied_edge = report["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"] == "prod/denied")
        .unwrap();
    assert_eq!(denied_edge["failures"][0]["reason"], "rbac_denied");
    assert_eq!(denied_edge["failures"][0]["count"], denied_edge["probes"]);
    assert!(
        denied_edge["failures"][0]["first_detail"]
            .as_str()
            .unwrap()
            .contains("RBAC")
    );
}

#[tokio::test]
async fn an_accepted_plaintext_companion_fails_the_gate() {
    let pki = Pki::new();
    let config_ = pki.strict(&pki.server_leaf(), &ServerOpts::default());
    let permissive = peer(Behavior::Permissive {
        config: config_,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let path = config(
        &pki,
        &target("prod/api", permissive.addr(), "verify_strict = true\n"),
    );
    // Even with a gate of 0 the STRICT check fails the watch.
    let o = Command::new(BIN)
        .arg("watch")
        .arg("--config")
        .arg(&path)
        .args(["--duration", "1s", "--min-success-ratio", "0"])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("plaintext_accepted fired"),
        "{}",
        stdout(&o)
    );
}

#[tokio::test]
async fn ctrl_c_cuts_the_watch_short_and_still_reports() {
    let pki = Pki::new();
    let server = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let path = config(&pki, &target("prod/api", server.addr(), ""));
    let json = pki.path("report.json");
    let child = Command::new(BIN)
        .arg("watch")
        .arg("--config")
        .arg(&path)
        .args(["--duration", "10m", "--report", json.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first probe is reported on stdout, then interrupt.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.accepted() == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pid = child.id().unwrap().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    let o = child.wait_with_output().await.unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "cut short is not a completed gate"
    );
    assert!(stdout(&o).contains("(cut short)"), "{}", stdout(&o));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["cut_short"], true);
    assert!(report["edges"][0]["probes"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn usage_and_config_errors_exit_2() {
    let pki = Pki::new();
    let path = config(&pki, "");
    let o = watch(&path, &["--report", "out.txt"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(".json, .md or .xml"));
    let o = watch(
        std::path::Path::new("tests/data/config/bad/bad-mode.toml"),
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad-mode.toml"));
}

/// `--report F.xml`: JUnit, one test case per edge, the failure message
/// `stage/reason: detail`; read back by junitparser, the parser behind the "Publish Test
/// Results" CI action, as a real consumer.
#[tokio::test]
async fn junit_report_has_one_case_per_edge_and_reads_in_a_real_consumer() {
    let pki = Pki::new();
    let good = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let denied = pki
        .strict_peer(HttpBehavior::Respond(Response::istio_rbac_denied()))
        .await;
    let path = config(
        &pki,
        &[
            target("prod/api", good.addr(), ""),
            target("prod/denied", denied.addr(), ""),
        ]
        .concat(),
    );
    let xml = pki.path("watch.xml");
    let o = watch(&path, &["--report", xml.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(text.starts_with("<?xml"), "{text}");
    assert_eq!(text.matches("<testcase ").count(), 2, "{text}");
    assert!(
        text.contains("message=\"request/rbac_denied: HTTP 403"),
        "{text}"
    );
    assert!(
        text.contains("runbook: docs/runbook.md#rbac_denied"),
        "{text}"
    );
    if !tools::require("python3", &["-c", "import junitparser"]) {
        return;
    }
    let script = r#"
import json, sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
cases = []
for suite in xml:
    for case in suite:
        failures = [r for r in case.result if isinstance(r, Failure)]
        cases.append({"name": case.name, "classname": case.classname,
                      "failure": failures[0].message if failures else None,
                      "type": failures[0].type if failures else None})
print(json.dumps({"tests": xml.tests, "failures": xml.failures, "cases": cases}))
"#;
    let o = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&xml)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tests"], 2, "{v}");
    assert_eq!(v["failures"], 1, "{v}");
    let cases = v["cases"].as_array().unwrap();
    let denied = cases.iter().find(|c| c["name"] == "prod/denied").unwrap();
    assert_eq!(denied["classname"], "mtls-prober.prod");
    assert_eq!(denied["type"], "request/rbac_denied");
    assert!(
        denied["failure"]
            .as_str()
            .unwrap()
            .starts_with("request/rbac_denied: HTTP 403"),
        "{denied}"
    );
    let api = cases.iter().find(|c| c["name"] == "prod/api").unwrap();
    assert_eq!(api["failure"], serde_json::Value::Null);
}
