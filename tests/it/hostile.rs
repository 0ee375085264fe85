//! Hostile peers against the agent binary: every one is cut off with the reason of the
//! stage where it misbehaved, within its time bound, while a healthy edge probed at the
//! same time keeps its schedule (the lag metric).

use std::time::Duration;

use bytes::Bytes;
use mtls_prober::demo::pki::LeafSpec;

use crate::common::agent::{AgentProcess, Metrics, assert_on_schedule};
use crate::common::*;

/// The hostile edges' timeout; every probe must end within it plus this margin.
const TIMEOUT_MS: f64 = 1500.0;
const MARGIN_MS: f64 = 400.0;

struct Hostile {
    name: &'static str,
    server: PeerServer,
    stage: &'static str,
    reason: &'static str,
    detail: &'static str,
    http: bool,
}

#[tokio::test]
async fn hostile_peers_are_cut_off_without_delaying_others() {
    // No JVM or Python server starts while the schedule is measured.
    let _exclusive = tools::timing_sensitive();
    let pki = Pki::new();
    let h1 = ServerOpts::default().with_alpn(&[b"http/1.1"]);
    let tls = |leaf: &mtls_prober::demo::pki::Leaf, opts: &ServerOpts, http| Behavior::Tls {
        config: pki.strict(leaf, opts),
        http,
    };
    let leaf = pki.server_leaf();
    // A ~90 KiB chain (the leaf plus three padded certificates): more than the 64 KiB
    // handshake message rustls accepts.
    let mut huge = pki.server_leaf();
    for _ in 0..3 {
        let filler = pki
            .intermediate
            .issue(&LeafSpec::dns(&["filler.example"]).with_padding(30 * 1024))
            .unwrap();
        huge.chain.push(filler.leaf().clone());
    }
    // Ten intermediates between the root and the leaf: deeper than webpki builds.
    let mut deep = pki.root.intermediate("Deep CA 1").unwrap();
    for i in 2..=10 {
        deep = deep.intermediate(&format!("Deep CA {i}")).unwrap();
    }
    let deep_leaf = deep.issue(&LeafSpec::spiffe(SERVER_ID)).unwrap();
    let big_body = Response {
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: Bytes::from(vec![b'x'; 100 * 1024]),
    };
    let specs: Vec<(&str, Behavior, &str, &str, &str, bool)> = vec![
        (
            "slowloris",
            Behavior::AfterClientHello(RawAction::Trickle {
                bytes: vec![22, 3, 3, 0, 200, 2, 0, 0, 196, 3, 3, 7, 7, 7, 7, 7],
                every: Duration::from_secs(1),
            }),
            "tls",
            "handshake_timeout",
            "did not finish within",
            false,
        ),
        (
            "huge-chain",
            tls(
                &huge,
                &ServerOpts::default(),
                HttpBehavior::Respond(Response::ok()),
            ),
            "tls",
            "handshake_error",
            "oversized",
            true,
        ),
        (
            "deep-chain",
            tls(
                &deep_leaf,
                &ServerOpts::default(),
                HttpBehavior::Respond(Response::ok()),
            ),
            "certificate",
            "cert_invalid",
            "chain",
            true,
        ),
        (
            "random-bytes",
            Behavior::AfterClientHello(RawAction::Send(vec![
                0xd7, 0x3a, 0x91, 0x0c, 0xee, 0x41, 0x7f, 0x02, 0x99, 0x10, 0x63, 0xb8,
            ])),
            "tls",
            "not_tls",
            "\\xd7",
            false,
        ),
        (
            "random-records",
            Behavior::AfterClientHello(RawAction::Send(vec![
                22, 3, 3, 0, 12, 0x9c, 0x27, 0x55, 0x01, 0xf3, 0x8e, 0x44, 0x19, 0xa0, 0x6d, 0x3b,
                0xc2,
            ])),
            "tls",
            "handshake_error",
            "",
            false,
        ),
        (
            "rst-mid-handshake",
            Behavior::AfterClientHello(RawAction::Reset),
            "tls",
            "peer_closed",
            "reset",
            false,
        ),
        (
            "silent-after-handshake",
            tls(&leaf, &ServerOpts::default(), HttpBehavior::Silent),
            "request",
            "request_timeout",
            "no complete response head",
            true,
        ),
        (
            "endless-headers",
            tls(&leaf, &h1, HttpBehavior::EndlessHeaders),
            "request",
            "protocol_error",
            "malformed",
            true,
        ),
        (
            "endless-body",
            tls(&leaf, &h1, HttpBehavior::EndlessBody),
            "request",
            "protocol_error",
            "max_body_bytes",
            true,
        ),
        (
            "body-over-limit",
            tls(&leaf, &h1, HttpBehavior::Respond(big_body)),
            "request",
            "protocol_error",
            "max_body_bytes (65536)",
            true,
        ),
        (
            "half-response-stall",
            tls(&leaf, &h1, HttpBehavior::HalfResponse),
            "request",
            "request_timeout",
            "body did not complete",
            true,
        ),
        (
            "half-response-close",
            tls(
                &leaf,
                &h1,
                HttpBehavior::Raw(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789".to_vec(),
                ),
            ),
            "request",
            "protocol_error",
            "",
            true,
        ),
        (
            "invalid-status-line",
            tls(
                &leaf,
                &h1,
                HttpBehavior::Raw(b"HTTP/1.1 OK-ish maybe\r\n\r\n".to_vec()),
            ),
            "request",
            "protocol_error",
            "malformed",
            true,
        ),
        (
            "h2-goaway",
            tls(
                &leaf,
                &ServerOpts::default().with_alpn(&[b"h2"]),
                HttpBehavior::H2Goaway,
            ),
            "request",
            "connection_closed",
            "GOAWAY",
            true,
        ),
    ];
    let mut hostile = Vec::new();
    for (name, behavior, stage, reason, detail, http) in specs {
        hostile.push(Hostile {
            name,
            server: peer(behavior).await,
            stage,
            reason,
            detail,
            http,
        });
    }
    let healthy = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let mut config = format!(
        "[agent]\nsource = \"node-a\"\nlisten = \"127.0.0.1:0\"\ninterval = \"2s\"\ntimeout = \"{TIMEOUT_MS}ms\"\n\
         [identity]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n\
         [[target]]\nname = \"healthy\"\naddress = \"{}\"\nspiffe_id = \"{SERVER_ID}\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\n[target.http]\npath = \"/\"\n",
        pki.path("cert-chain.pem").display(),
        pki.path("key.pem").display(),
        pki.path("root-cert.pem").display(),
        healthy.addr(),
    );
    for h in &hostile {
        config.push_str(&format!(
            "[[target]]\nname = \"{}\"\naddress = \"{}\"\nspiffe_id = \"{SERVER_ID}\"\n",
            h.name,
            h.server.addr()
        ));
        if h.http {
            config.push_str("[target.http]\npath = \"/\"\n");
        }
    }
    let path = pki.path("hostile.toml");
    std::fs::write(&path, config).unwrap();
    let agent = AgentProcess::start(&path, &[]).await;
    let attempts = |m: &Metrics, t: &str| {
        ["success", "failure"]
            .iter()
            .filter_map(|r| m.value("mtls_probe_attempts_total", &[("target", t), ("result", r)]))
            .sum::<f64>()
    };
    // Every hostile edge probed twice (so the second round ran beside the first).
    let m = agent
        .wait_metrics(Duration::from_secs(30), |m| {
            hostile.iter().all(|h| attempts(m, h.name) >= 2.0)
        })
        .await;
    let edges = agent.edges().await;
    let mut wrong = Vec::new();
    for h in &hostile {
        let e = edges.iter().find(|e| e["target"] == h.name).unwrap();
        let got = (
            e["stage"].as_str().unwrap_or("-"),
            e["reason"].as_str().unwrap_or("-"),
        );
        let detail = e["detail"].as_str().unwrap_or("");
        let total = e["timings_ms"]["total"].as_f64().unwrap();
        if got != (h.stage, h.reason) || !detail.contains(h.detail) {
            wrong.push(format!(
                "{}: expected {}/{} with {:?}, got {}/{}: {detail}",
                h.name, h.stage, h.reason, h.detail, got.0, got.1
            ));
        }
        if total > TIMEOUT_MS + MARGIN_MS {
            wrong.push(format!(
                "{}: took {total} ms, bound {TIMEOUT_MS} ms",
                h.name
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The healthy edge kept passing and no probe started more than 50 ms late.
    assert_eq!(
        m.value("mtls_probe_success", &[("target", "healthy")]),
        Some(1.0)
    );
    let healthy_failures: Vec<String> = m
        .samples("mtls_probe_failures_total", &[("target", "healthy")])
        .map(|s| format!("{:?}: {:?}", s.labels, s.value))
        .collect();
    assert!(
        m.value(
            "mtls_probe_attempts_total",
            &[("target", "healthy"), ("result", "failure")]
        ) == Some(0.0),
        "the healthy edge failed: {healthy_failures:?}"
    );
    assert_on_schedule(&m);
}
