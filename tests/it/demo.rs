//! `mtls-prober demo` as a user runs it: every service of SPEC §9 (and the extra ones,
//! one per remaining reason) shows its expected stage/reason within one probe round.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::common::agent::{BIN, http_get};

/// (edge, expected `stage/reason`, or "pass").
const EXPECTED: &[(&str, &str)] = &[
    // SPEC §9.
    ("production/api", "pass"),
    ("production/api/plaintext", "pass"),
    ("staging/api", "pass"),
    ("staging/api/plaintext", "expectation/plaintext_accepted"),
    ("legacy/app", "tls/not_tls"),
    ("billing/api", "certificate/cert_expired"),
    ("payments/api", "certificate/cert_not_yet_valid"),
    ("frontend/web", "identity/identity_mismatch"),
    ("partner/api", "identity/trust_domain_mismatch"),
    ("shadow/api", "certificate/cert_untrusted"),
    ("orders/api", "tls/client_cert_rejected"),
    ("legacy/tls12", "tls/protocol_version"),
    ("reports/api", "request/rbac_denied"),
    ("gateway/api", "request/upstream_tls_error"),
    ("batch/worker", "tls/handshake_timeout"),
    ("inventory/api", "connect/connection_refused"),
    // One per remaining reason.
    ("production/api-anonymous", "tls/client_cert_required"),
    ("production/api-strict", "pass"),
    ("dev/api", "expectation/unexpected_success"),
    ("search/api", "identity/no_identity"),
    ("cache/redis", "tls/alpn_mismatch"),
    ("crypto/legacy", "tls/no_common_cipher"),
    ("queue/broker", "tls/peer_closed"),
    ("metrics/exporter", "tls/handshake_error"),
    ("catalog/api", "request/unexpected_status"),
    ("checkout/api", "request/upstream_unavailable"),
    ("analytics/api", "request/request_timeout"),
    ("auth/tcp", "request/connection_closed"),
    ("events/api", "request/protocol_error"),
    ("firewalled/db", "connect/connect_timeout"),
    ("ghost/api", "resolve/dns_not_found"),
    ("flaky-dns/api", "resolve/dns_error"),
    // gRPC (SPEC §13).
    ("shipping/grpc", "pass"),
    ("shipping/grpc/plaintext", "pass"),
    ("ledger/grpc", "request/unexpected_status"),
];

#[tokio::test]
async fn demo_shows_every_failure_class_by_name() {
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--duration", "60s"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The agent's "listening" log line carries the address (the readiness signal).
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr: std::net::SocketAddr = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("demo exited early");
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "listening"
            {
                return v["addr"].as_str().unwrap().parse().unwrap();
            }
        }
    })
    .await
    .expect("the demo starts within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    // Ready means every edge completed its first probe.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if http_get(addr, "/readyz").await.0 == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not ready in 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, body) = http_get(addr, "/api/v1/edges").await;
    let edges: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let mut wrong = Vec::new();
    for (name, expected) in EXPECTED {
        let Some(e) = edges.iter().find(|e| e["target"] == *name) else {
            wrong.push(format!("{name}: missing"));
            continue;
        };
        let got = match e["ok"].as_bool() {
            Some(true) => "pass".to_owned(),
            _ => format!(
                "{}/{}",
                e["stage"].as_str().unwrap_or("?"),
                e["reason"].as_str().unwrap_or("?")
            ),
        };
        if got != *expected {
            wrong.push(format!(
                "{name}: expected {expected}, got {got} ({})",
                e["detail"]
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(edges.len(), EXPECTED.len());
    // The status page and the metrics are there too.
    let (status, page) = http_get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("staging/api/plaintext"));
    let (_, metrics) = http_get(addr, "/metrics").await;
    assert!(metrics.contains("reason=\"plaintext_accepted\""));
    // The banner printed the sample probe command.
    let _ = child.start_kill();
    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("--target frontend/web"), "{stdout}");
}

#[tokio::test]
async fn demo_duration_exits_zero_and_cleans_up() {
    let out = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--duration", "1s"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Ctrl-C stops the demo and removes "))
        .unwrap()
        .trim_end_matches('.');
    assert!(!std::path::Path::new(dir).exists(), "{dir} was removed");
}
