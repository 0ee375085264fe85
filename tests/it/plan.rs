//! `mtls-prober plan` on the fixtures of tests/fixtures/plan (well-known scenarios of
//! the Istio and Linkerd docs, see the README there): the whole JSON output against
//! the checked-in expectation, every finding kind fired with a look-alike that must
//! not fire, bad input exiting 2 with file and document, and the output loaded by
//! `check`. `BLESS_PLAN_FIXTURES=1` rewrites the expected files (review the diff!).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::agent::BIN;
use crate::common::{Behavior, HttpBehavior, Response, ServerOpts};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plan")
}

fn plan(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("plan")
        .args(args)
        .output()
        .expect("run mtls-prober plan")
}

/// (scenario directory, expected file, extra flags)
const CASES: &[(&str, &str, &[&str])] = &[
    ("istio-migration", "default", &[]),
    (
        "istio-migration",
        "assume-bar-strict",
        &["--assume", "bar=strict"],
    ),
    (
        "istio-migration",
        "assume-legacy-strict",
        &["--assume", "legacy=strict"],
    ),
    ("bookinfo-authz", "default", &[]),
    ("istio-port-level", "default", &[]),
    ("istio-revision", "default", &[]),
    ("istio-findings", "default", &[]),
    ("linkerd-emojivoto", "default", &[]),
    ("linkerd-emojivoto", "unmeshed", &["--unmeshed"]),
];

fn run_case(scenario: &str, extra: &[&str]) -> serde_json::Value {
    let dir = fixtures().join(scenario).join("input");
    let dir = dir.to_str().unwrap();
    let mut args = vec!["--output", "json", "-f", dir];
    args.extend_from_slice(extra);
    let out = plan(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{scenario} {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("plan --output json prints JSON")
}

#[test]
fn fixtures_plan_to_their_checked_in_json() {
    let bless = std::env::var_os("BLESS_PLAN_FIXTURES").is_some();
    for (scenario, case, extra) in CASES {
        let got = run_case(scenario, extra);
        let file = fixtures()
            .join(scenario)
            .join("expected")
            .join(format!("{case}.json"));
        if bless {
            let mut text = serde_json::to_string_pretty(&got).unwrap();
            text.push('\n');
            std::fs::write(&file, text).unwrap();
            continue;
        }
        let want: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert!(
            got == want,
            "{scenario}/{case} differs from {}:\n{}",
            file.display(),
            serde_json::to_string_pretty(&got).unwrap()
        );
    }
}

fn findings(v: &serde_json::Value) -> Vec<(String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["object"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn target<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no target {name} in {v:#}"))
}

/// Each kind: the fixture where it fires (kind, object) and a look-alike object in the
/// same fixture that must not fire it.
#[test]
fn every_finding_kind_fires_and_its_look_alike_does_not() {
    let rows: &[(&str, &[&str], &str, &str, &str)] = &[
        (
            "istio-findings",
            &[],
            "not_injected_under_strict",
            "Deployment strict-ns/batch",
            "Deployment permissive-ns/batch",
        ),
        (
            "istio-findings",
            &[],
            "tls_disabled_toward_strict",
            "DestinationRule strict-ns/api-plaintext",
            "DestinationRule permissive-ns/legacy-plaintext",
        ),
        (
            "istio-findings",
            &[],
            "tls_disabled_toward_strict",
            "DestinationRule strict-ns/api-plaintext",
            "DestinationRule strict-ns/web-mtls",
        ),
        (
            "istio-findings",
            &[],
            "selector_matches_nothing",
            "PeerAuthentication strict-ns/ghost",
            "PeerAuthentication strict-ns/api-strict",
        ),
        (
            "istio-findings",
            &[],
            "selector_matches_nothing",
            "AuthorizationPolicy strict-ns/ghost-viewer",
            "AuthorizationPolicy strict-ns/api-monitoring",
        ),
        (
            "istio-port-level",
            &[],
            "port_not_targeted",
            "PeerAuthentication ports/api",
            "PeerAuthentication ports/web",
        ),
        (
            "bookinfo-authz",
            &[],
            "health_path_denied",
            "AuthorizationPolicy default/details-viewer",
            "AuthorizationPolicy default/productpage-viewer",
        ),
        (
            "istio-findings",
            &[],
            "health_path_denied",
            // Only a look-alike here: an explicit DENY naming the prober is deliberate.
            "",
            "AuthorizationPolicy permissive-ns/admin-no-monitoring",
        ),
        (
            "linkerd-emojivoto",
            &[],
            "health_path_denied",
            "Server emojivoto/voting-grpc",
            "Server emojivoto/web-http",
        ),
        (
            "istio-findings",
            &[],
            "service_without_workload",
            "Service permissive-ns/orphan",
            "Service permissive-ns/single",
        ),
        (
            "istio-findings",
            &[],
            "unsupported",
            "AuthorizationPolicy strict-ns/web-token",
            "AuthorizationPolicy strict-ns/api-monitoring",
        ),
    ];
    let mut fired = std::collections::BTreeSet::new();
    for (scenario, extra, kind, fires, look_alike) in rows {
        let f = findings(&run_case(scenario, extra));
        let has = |object: &str| f.iter().any(|(k, o)| k == kind && o == object);
        assert!(
            !has(look_alike),
            "{kind} fired for the look-alike {look_alike}: {f:?}"
        );
        if !fires.is_empty() {
            assert!(has(fires), "{kind} did not fire for {fires}: {f:?}");
            fired.insert(*kind);
        }
    }
    let all: std::collections::BTreeSet<&str> = mtls_prober::plan::FindingKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(fired, all, "every finding kind is fired by a fixture");
}

#[test]
fn the_explicit_deny_is_a_deliberate_reject_and_assume_flips_the_namespace_only() {
    let v = run_case("istio-findings", &[]);
    assert_eq!(target(&v, "permissive-ns/admin")["expect"], "reject");
    let before = run_case("istio-migration", &[]);
    let after = run_case("istio-migration", &["--assume", "bar=strict"]);
    for name in ["bar/httpbin", "bar/sleep"] {
        assert_eq!(target(&before, name)["verify_strict"], false);
        assert_eq!(target(&after, name)["verify_strict"], true);
    }
    for name in ["foo/httpbin", "foo/sleep", "legacy/sleep"] {
        assert_eq!(target(&before, name), target(&after, name), "{name}");
    }
}

#[test]
fn toml_output_is_a_file_check_accepts_through_include() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = fixtures();
    let out = plan(&[
        "-f",
        fixtures.join("bookinfo-authz/input").to_str().unwrap(),
        "-f",
        fixtures.join("istio-migration/input").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let matrix = dir.path().join("matrix");
    std::fs::create_dir(&matrix).unwrap();
    std::fs::write(matrix.join("mesh.toml"), &out.stdout).unwrap();
    let pki = crate::common::Pki::new();
    let config = dir.path().join("probes.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nsource = \"n\"\ninclude = [\"matrix/*.toml\"]\n[identity]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n",
            pki.path("cert-chain.pem").display(),
            pki.path("key.pem").display(),
            pki.path("root-cert.pem").display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("mesh.toml: 9 target(s)"), "{stdout}");
    assert!(stdout.contains("foo/httpbin/plaintext"), "{stdout}");
}

#[test]
fn fail_on_findings_exits_1_and_explain_names_the_deciding_objects() {
    let dir = fixtures().join("bookinfo-authz/input");
    let dir = dir.to_str().unwrap();
    let out = plan(&["-f", dir, "--fail-on-findings"]);
    assert_eq!(out.status.code(), Some(1));
    let out = plan(&["-f", dir, "--explain"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("default/details  mtls expect reject"),
        "{text}"
    );
    assert!(
        text.contains("AuthorizationPolicy default/details-viewer: ALLOW does not match"),
        "{text}"
    );
    assert!(
        text.contains("[health_path_denied] AuthorizationPolicy default/details-viewer"),
        "{text}"
    );
    let dir = fixtures().join("istio-migration/input");
    let out = plan(&[
        "-f",
        dir.to_str().unwrap(),
        "--fail-on-findings",
        "--namespace",
        "foo",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("name = \"foo/httpbin\"") && !text.contains("bar/"),
        "{text}"
    );
}

/// Bad input: exit 2, naming the file and the document (and List item); no panic.
#[test]
fn bad_input_names_file_and_document() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let ok = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n";
    let rows: Vec<(String, &str)> = vec![
        (
            write("invalid.yaml", &format!("{ok}---\nkind: [unclosed\n")),
            "invalid.yaml: document 1: not valid YAML",
        ),
        (
            write("scalar.yaml", &format!("{ok}---\njust a string\n")),
            "scalar.yaml: document 1: not a Kubernetes object",
        ),
        (
            write("seq.yaml", "- a\n- b\n"),
            "seq.yaml: document 0: not a Kubernetes object",
        ),
        (
            write(
                "list.yaml",
                "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s, namespace: n}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: t}\n  spec: {ports: \"80\"}\n",
            ),
            "list.yaml: document 0, items[1]: spec.ports: invalid type",
        ),
        (
            write("list2.yaml", "apiVersion: v1\nkind: List\nitems:\n- 42\n"),
            "list2.yaml: document 0, items[0]: not a Kubernetes object",
        ),
        (
            write(
                "bad.json",
                "{\"kind\": \"Service\", \"apiVersion\": \"v1\", ",
            ),
            "bad.json: document 0: not valid JSON",
        ),
        (
            write("binary.yaml", "\u{0}\u{1}"),
            "binary.yaml: document 0",
        ),
    ];
    for (file, want) in rows {
        let out = plan(&["-f", &file]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(want), "{file}: expected {want:?} in {err:?}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // An unknown kind is ignored with a count.
    let f = write(
        "unknown.yaml",
        &format!("{ok}---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w}}\n"),
    );
    let out = plan(&["-f", &f, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["notes"]
            .to_string()
            .contains("ignored 1 object(s) of kind example.com/v1/Widget"),
        "{v}"
    );
    // A directory with an unreadable file (skipped when running as root, which reads
    // anything: the chmod would prove nothing).
    let sub = dir.path().join("tree");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("a.yaml"), ok).unwrap();
    let locked = sub.join("b.yaml");
    std::fs::write(&locked, ok).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&locked).is_ok() {
        eprintln!("skipped the unreadable-file row: this user reads mode 000 files (root)");
    } else {
        let out = plan(&["-f", sub.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("b.yaml: cannot read"), "{err}");
    }
    // A FIFO in a directory is refused, not waited on forever.
    let fifo = sub.join("c.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = plan(&["-f", sub.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("c.yaml: not a regular file"), "{err}");
    }
    // A missing path, and bad flags.
    let out = plan(&["-f", "/nonexistent/k8s"]);
    assert_eq!(out.status.code(), Some(2));
    let out = plan(&["-f", &f, "--assume", "bar"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected NS=strict or NS=permissive"));
}

#[test]
fn stdin_and_kubectl_style_lists() {
    use std::io::Write;
    let list = "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: foo\n    labels: {istio-injection: enabled}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s, namespace: foo}\n  spec: {selector: {app: s}, ports: [{port: 80}]}\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: s, namespace: foo}\n  spec: {template: {metadata: {labels: {app: s}}, spec: {containers: [{name: s}]}}}\nkind: List\nmetadata:\n  resourceVersion: \"\"\n";
    let mut child = Command::new(BIN)
        .args(["plan", "-f", "-", "--output", "json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        target(&v, "foo/s")["spiffe_id"],
        "spiffe://cluster.local/ns/foo/sa/default"
    );
    // The same as JSON (kubectl get -o json).
    let json = serde_json::to_string(&serde_yaml_ng::from_str::<serde_json::Value>(list).unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("list.json");
    std::fs::write(&f, json).unwrap();
    let out = plan(&["-f", f.to_str().unwrap(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let w: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, w);
}

/// End to end: Kubernetes objects for a loopback mesh → `plan` → `include` → `watch`.
/// The servers stand in for the workloads (a STRICT sidecar, a PERMISSIVE one, one
/// whose DENY policy answers the prober 403, one without a sidecar); the loopback DNS
/// server answers for their Service names; every edge must hold its planned verdict.
#[tokio::test]
async fn watch_holds_the_expectations_plan_derived() {
    use mtls_prober::demo::pki::LeafSpec;

    let pki = crate::common::Pki::new();
    let api = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let admin_leaf = pki
        .intermediate
        .issue(&LeafSpec::spiffe("spiffe://cluster.local/ns/prod/sa/admin"))
        .unwrap();
    let admin = crate::common::peer(Behavior::Tls {
        config: pki.strict(&admin_leaf, &ServerOpts::default()),
        http: HttpBehavior::Respond(Response::istio_rbac_denied()),
    })
    .await;
    let web_leaf = pki
        .intermediate
        .issue(&LeafSpec::spiffe("spiffe://cluster.local/ns/shop/sa/web"))
        .unwrap();
    let web = crate::common::peer(Behavior::Permissive {
        config: pki.strict(&web_leaf, &ServerOpts::default()),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let legacy = crate::common::peer(Behavior::Plaintext {
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let dns = mtls_prober::demo::dns::DnsServer::start().await.unwrap();
    let workload = |ns: &str, name: &str, sa: &str, port: u16| {
        dns.set(
            &format!("{name}.{ns}.svc.cluster.local"),
            &[api.addr().ip()],
        );
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec: {{selector: {{app: {name}}}, ports: [{{port: {port}, targetPort: {port}}}]}}\n---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec:\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      serviceAccountName: {sa}\n      \
             containers: [{{name: app, ports: [{{containerPort: {port}}}], readinessProbe: {{httpGet: {{path: /healthz, port: {port}}}}}}}]\n---\n"
        )
    };
    let k8s = [
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, labels: {istio-injection: enabled}}\n---\n".to_owned(),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio-injection: enabled}}\n---\n".to_owned(),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: legacy}\n---\n".to_owned(),
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: prod}\nspec: {mtls: {mode: STRICT}}\n---\n".to_owned(),
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: admin-deny-monitoring, namespace: prod}\nspec: {selector: {matchLabels: {app: admin}}, action: DENY, rules: [{from: [{source: {namespaces: [monitoring]}}]}]}\n---\n".to_owned(),
        workload("prod", "api", "api", api.addr().port()),
        workload("prod", "admin", "admin", admin.addr().port()),
        workload("shop", "web", "web", web.addr().port()),
        workload("legacy", "legacy", "legacy", legacy.addr().port()),
    ]
    .concat();
    let input = pki.path("k8s.yaml");
    std::fs::write(&input, k8s).unwrap();
    let out = plan(&["-f", input.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(pki.path("matrix.toml"), &out.stdout).unwrap();
    let matrix = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        matrix.contains("name = \"prod/admin\"\naddress"),
        "{matrix}"
    );
    let config = pki.path("probes.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nsource = \"node-a\"\ninterval = \"1s\"\ntimeout = \"1s\"\n\
             dns_servers = [\"{}\"]\ninclude = [\"matrix.toml\"]\n\
             [identity]\ncert = \"cert-chain.pem\"\nkey = \"key.pem\"\nca = \"root-cert.pem\"\n",
            dns.addr()
        ),
    )
    .unwrap();
    let report = pki.path("report.json");
    let out = tokio::process::Command::new(BIN)
        .args([
            "watch",
            "--config",
            config.to_str().unwrap(),
            "--duration",
            "3s",
        ])
        .args([
            "--min-success-ratio",
            "1",
            "--report",
            report.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}\n{matrix}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(&report).unwrap();
    for (edge, expect) in [
        ("prod/api", "success"),
        ("prod/api/plaintext", "reject"),
        ("prod/admin", "reject"),
        ("shop/web", "success"),
        ("legacy/legacy", "success"),
    ] {
        assert!(
            report.contains(&format!("\"{edge}\"")),
            "{edge} missing from {report}"
        );
        assert!(matrix.contains(edge.trim_end_matches("/plaintext")) && report.contains(expect));
    }
}
