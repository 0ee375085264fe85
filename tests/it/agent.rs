//! The agent binary (`mtls-prober run`) against in-process servers: metrics read with a
//! Prometheus text parser, rotations, reloads, readiness, shutdown, the peer matrix.

use std::path::Path;
use std::time::{Duration, SystemTime};

use mtls_prober::demo::pki::{Leaf, LeafSpec};
use mtls_prober::tls::peer::CertSummary;
use sha2::{Digest, Sha256};

use crate::common::agent::{AgentProcess, Metrics, assert_on_schedule};
use crate::common::rotation::{flip_identity, rotating_server};
use crate::common::*;

const LONG: Duration = Duration::from_secs(20);

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as f64
}

fn identity_block(cert: &Path, key: &Path, ca: &Path) -> String {
    format!(
        "[identity]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\nreload = \"200ms\"\ntrust_domain = \"cluster.local\"\n",
        cert.display(),
        key.display(),
        ca.display()
    )
}

fn agent_block(interval: &str, timeout: &str) -> String {
    format!(
        "[agent]\nsource = \"node-a\"\nlisten = \"127.0.0.1:0\"\ninterval = \"{interval}\"\ntimeout = \"{timeout}\"\n"
    )
}

fn target_block(name: &str, addr: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "[[target]]\nname = \"{name}\"\naddress = \"{addr}\"\nspiffe_id = \"{SERVER_ID}\"\n{extra}[target.http]\npath = \"/healthz\"\n"
    )
}

fn write(path: &Path, text: &str) {
    // Write then rename, as an editor or a ConfigMap update would: never half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn metrics_of_a_mixed_matrix() {
    let pki = Pki::new();
    let healthy = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let expired_leaf = pki
        .intermediate
        .issue(&LeafSpec::spiffe(SERVER_ID).expired())
        .unwrap();
    let expired = peer(Behavior::Tls {
        config: pki.strict(&expired_leaf, &ServerOpts::default()),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    let rbac = pki
        .strict_peer(HttpBehavior::Respond(Response::istio_rbac_denied()))
        .await;
    let refused = mtls_prober::demo::peers::spawn_refused().unwrap();
    let config = pki.path("agent.toml");
    write(
        &config,
        &[
            agent_block("300ms", "250ms"),
            identity_block(
                &pki.path("cert-chain.pem"),
                &pki.path("key.pem"),
                &pki.path("root-cert.pem"),
            ),
            target_block("prod/healthy", healthy.addr(), ""),
            target_block("prod/expired", expired.addr(), ""),
            target_block("prod/rbac", rbac.addr(), ""),
            target_block("prod/refused", refused.addr(), ""),
        ]
        .concat(),
    );
    let agent = AgentProcess::start(&config, &[]).await;
    let names = ["prod/healthy", "prod/expired", "prod/rbac", "prod/refused"];
    let m = agent
        .wait_metrics(LONG, |m| names.iter().all(|n| m.attempts(n) >= 2.0))
        .await;
    let v = |name: &str, labels: &[(&str, &str)]| m.value(name, labels);
    for (target, ok) in [
        ("prod/healthy", 1.0),
        ("prod/expired", 0.0),
        ("prod/rbac", 0.0),
        ("prod/refused", 0.0),
    ] {
        assert_eq!(
            v(
                "mtls_probe_success",
                &[("source", "node-a"), ("target", target)]
            ),
            Some(ok),
            "{target}"
        );
        for w in ["5m", "30m"] {
            let r = v(
                "mtls_probe_success_ratio",
                &[("target", target), ("window", w)],
            )
            .unwrap();
            assert!((0.0..=1.0).contains(&r));
            assert_eq!(r, ok, "{target} {w}: every probe had the same outcome");
        }
        assert!(
            m.series_of_target(target) <= 20,
            "{target}: {}",
            m.series_of_target(target)
        );
    }
    for (target, stage, reason) in [
        ("prod/expired", "certificate", "cert_expired"),
        ("prod/rbac", "request", "rbac_denied"),
        ("prod/refused", "connect", "connection_refused"),
    ] {
        let failures = v(
            "mtls_probe_failures_total",
            &[("target", target), ("stage", stage), ("reason", reason)],
        )
        .unwrap();
        let failed = v(
            "mtls_probe_attempts_total",
            &[("target", target), ("result", "failure")],
        )
        .unwrap();
        assert!(
            failures >= 2.0 && failures == failed,
            "{target}: {failures} vs {failed}"
        );
    }
    // The expired peer's not_after is the certificate's own.
    let na = CertSummary::parse(expired_leaf.leaf()).unwrap().not_after;
    assert_eq!(
        v(
            "mtls_probe_peer_cert_not_after_timestamp_seconds",
            &[("target", "prod/expired")]
        ),
        Some(unix(na))
    );
    let root = hex::encode(Sha256::digest(pki.root.cert()));
    let info: Vec<_> = m
        .samples("mtls_probe_peer_cert_info", &[("target", "prod/healthy")])
        .collect();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].labels.get("spiffe_id"), Some(SERVER_ID));
    assert_eq!(info[0].labels.get("root_sha256"), Some(root.as_str()));
    let tls: Vec<_> = m
        .samples("mtls_probe_tls_info", &[("target", "prod/healthy")])
        .collect();
    assert_eq!(tls[0].labels.get("version"), Some("TLS 1.3"));
    assert_eq!(tls[0].labels.get("alpn"), Some("h2"));
    assert_eq!(v("mtls_probe_targets", &[("source", "node-a")]), Some(4.0));
    // The last passed probe of the healthy edge is recent; a failing edge has none.
    let last = v(
        "mtls_probe_last_success_timestamp_seconds",
        &[("target", "prod/healthy")],
    )
    .unwrap();
    assert!((unix(SystemTime::now()) - last).abs() < 30.0, "{last}");
    assert_eq!(
        v(
            "mtls_probe_last_success_timestamp_seconds",
            &[("target", "prod/rbac")]
        ),
        None
    );
    let own = CertSummary::parse(pki.client.leaf()).unwrap().not_after;
    assert_eq!(
        v("mtls_probe_identity_cert_not_after_timestamp_seconds", &[]),
        Some(unix(own))
    );
    assert!(
        m.samples(
            "mtls_probe_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        )
        .next()
        .is_some()
    );
    assert!(
        !m.histogram("mtls_probe_duration_seconds", &[("target", "prod/healthy")])
            .is_empty()
    );
    assert!(
        !m.histogram("mtls_probe_phase_duration_seconds", &[("phase", "tls")])
            .is_empty()
    );
    // Every metric the deployment (alerts, dashboard) relies on is exported, with its
    // type: a renamed metric breaks this test, not on-call.
    let types: std::collections::BTreeMap<&str, &str> = m
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let listed = std::fs::read_to_string("deploy/metric-names.txt").unwrap();
    let mut listed_names = Vec::new();
    for line in listed
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (name, kind) = line.split_once(' ').unwrap();
        listed_names.push(name);
        if name.starts_with("mtls_probe_fleet_") {
            // Exported only with [fleet]: tests/it/fleet.rs checks them.
            continue;
        }
        assert_eq!(
            types.get(name).copied(),
            Some(kind.trim()),
            "{name} in deploy/metric-names.txt"
        );
    }
    assert_eq!(
        listed_names.len(),
        18,
        "SPEC §6 lists 16 metrics, §12 two more"
    );
    for name in types.keys() {
        assert!(
            listed_names.contains(name) || *name == "mtls_probe_discovery_lookups_total",
            "{name} is exported but not in deploy/metric-names.txt"
        );
    }
    // The API and the status page tell the same story.
    let edges = agent.edges().await;
    let rbac_edge = edges.iter().find(|e| e["target"] == "prod/rbac").unwrap();
    assert_eq!(rbac_edge["reason"], "rbac_denied");
    assert_eq!(rbac_edge["success_ratio"]["5m"], 0.0);
    let (status, headers, page) = agent.get_full("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("prod/rbac"));
    // Peer-controlled text is on the page: the browser must not run or load anything.
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        !page.contains("<script"),
        "the CSP would block an inline script"
    );
    // One log line per state change, not one per probe.
    let log = agent.log_text();
    assert_eq!(log.matches("\"edge\":\"prod/rbac\"").count(), 1, "{log}");
}

#[tokio::test]
async fn rotations_of_the_peer_and_of_our_own_identity() {
    let pki = Pki::new();
    let first = pki.server_leaf();
    let (server, swap) = rotating_server(&pki, &first, &[b"h2", b"http/1.1"]).await;

    let id_dir = pki.path("identity");
    std::fs::create_dir_all(&id_dir).unwrap();
    flip_identity(
        &id_dir,
        "v1",
        &pki.client.chain_pem(),
        &pki.client.key_pem(),
        Some(&pki.root.cert_pem()),
    );
    let config = pki.path("agent.toml");
    write(
        &config,
        &[
            agent_block("200ms", "150ms"),
            identity_block(
                &id_dir.join("cert-chain.pem"),
                &id_dir.join("key.pem"),
                &id_dir.join("root-cert.pem"),
            ),
            target_block("prod/api", server.addr(), ""),
        ]
        .concat(),
    );
    let agent = AgentProcess::start(&config, &[]).await;
    let serial = |leaf: &Leaf| CertSummary::parse(leaf.leaf()).unwrap().serial;
    let info = |m: &Metrics| -> Vec<String> {
        m.samples("mtls_probe_peer_cert_info", &[("target", "prod/api")])
            .map(|s| s.labels.get("serial").unwrap_or_default().to_owned())
            .collect()
    };
    let s1 = serial(&first);
    agent.wait_metrics(LONG, |m| info(m) == [s1.clone()]).await;

    // The server's certificate is rotated: the next probes see the new serial, and the
    // old info series is replaced, not kept beside it.
    let second = pki.server_leaf();
    swap.swap(&second);
    let s2 = serial(&second);
    agent.wait_metrics(LONG, |m| info(m) == [s2.clone()]).await;

    // Our identity is swapped by a symlink flip: a new not_after is published.
    let renewed = pki
        .intermediate
        .issue(
            &LeafSpec::spiffe(CLIENT_ID)
                .window(-time::Duration::hours(1), time::Duration::hours(48)),
        )
        .unwrap();
    flip_identity(
        &id_dir,
        "v2",
        &renewed.chain_pem(),
        &renewed.key_pem(),
        Some(&pki.root.cert_pem()),
    );
    let na = unix(CertSummary::parse(renewed.leaf()).unwrap().not_after);
    let id_na = "mtls_probe_identity_cert_not_after_timestamp_seconds";
    agent
        .wait_metrics(LONG, |m| {
            m.value(id_na, &[]) == Some(na)
                && m.value(
                    "mtls_probe_identity_reloads_total",
                    &[("result", "success")],
                ) == Some(1.0)
        })
        .await;

    // A corrupt swap (a key that is not a key) keeps the renewed identity, counts a
    // failure, and the probes keep passing with it.
    flip_identity(
        &id_dir,
        "v3",
        &renewed.chain_pem(),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        Some(&pki.root.cert_pem()),
    );
    let m = agent
        .wait_metrics(LONG, |m| {
            m.value(
                "mtls_probe_identity_reloads_total",
                &[("result", "failure")],
            ) == Some(1.0)
        })
        .await;
    assert_eq!(m.value(id_na, &[]), Some(na));
    let before = m.attempts("prod/api");
    let m = agent
        .wait_metrics(LONG, |m| m.attempts("prod/api") >= before + 2.0)
        .await;
    assert_eq!(
        m.value("mtls_probe_success", &[("target", "prod/api")]),
        Some(1.0)
    );
    assert!(
        agent.log_text().contains("keeping the previous identity"),
        "{}",
        agent.log_text()
    );
    let (_, page) = agent.get("/").await;
    assert!(
        page.contains("previous identity is kept"),
        "the status page says so"
    );
}

#[tokio::test]
async fn config_reloads_add_remove_change_and_refuse_invalid_files() {
    let pki = Pki::new();
    let a = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let b = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let config = pki.path("agent.toml");
    let head = [
        agent_block("200ms", "150ms"),
        identity_block(
            &pki.path("cert-chain.pem"),
            &pki.path("key.pem"),
            &pki.path("root-cert.pem"),
        ),
    ]
    .concat();
    write(
        &config,
        &[
            head.clone(),
            target_block("prod/a", a.addr(), ""),
            target_block("prod/b", b.addr(), ""),
        ]
        .concat(),
    );
    let agent = AgentProcess::start(&config, &[]).await;
    let m = agent
        .wait_metrics(LONG, |m| {
            m.attempts("prod/a") >= 2.0 && m.attempts("prod/b") >= 2.0
        })
        .await;
    let b_before = m.attempts("prod/b");

    // Remove a, add c (the same server under another name), change b (a reject probe now).
    write(
        &config,
        &[
            head.clone(),
            target_block("prod/b", b.addr(), "interval = \"300ms\"\n"),
            target_block("prod/c", a.addr(), ""),
        ]
        .concat(),
    );
    let m = agent
        .wait_metrics(LONG, |m| {
            m.value("mtls_probe_config_reloads_total", &[("result", "success")]) == Some(1.0)
                && m.attempts("prod/c") >= 1.0
        })
        .await;
    assert_eq!(
        m.series_of_target("prod/a"),
        0,
        "a's series are gone:\n{}",
        m.text
    );
    assert!(m.attempts("prod/b") >= b_before, "b kept its history");
    assert_eq!(m.value("mtls_probe_targets", &[]), Some(2.0));

    // An invalid file is refused; the running edges keep going.
    write(
        &config,
        &[
            head.clone(),
            "[[target]]\nname = \"x\"\nadress = \"typo:1\"\n".into(),
        ]
        .concat(),
    );
    let m = agent
        .wait_metrics(LONG, |m| {
            m.value("mtls_probe_config_reloads_total", &[("result", "failure")]) == Some(1.0)
        })
        .await;
    let b_now = m.attempts("prod/b");
    agent
        .wait_metrics(LONG, |m| m.attempts("prod/b") >= b_now + 2.0)
        .await;
    assert!(
        agent
            .log_text()
            .contains("the running config stays in force")
    );
    let (_, page) = agent.get("/").await;
    assert!(
        page.contains("adress"),
        "the status page shows the reload error"
    );

    // The file deleted: still refused, still running.
    std::fs::remove_file(&config).unwrap();
    agent
        .wait_metrics(LONG, |m| {
            m.value("mtls_probe_config_reloads_total", &[("result", "failure")]) == Some(2.0)
        })
        .await;

    // SIGHUP reloads even when the content did not change.
    write(
        &config,
        &[head.clone(), target_block("prod/b", b.addr(), "")].concat(),
    );
    agent
        .wait_metrics(LONG, |m| {
            m.value("mtls_probe_config_reloads_total", &[("result", "success")]) == Some(2.0)
        })
        .await;
    agent.signal("HUP").await;
    let m = agent
        .wait_metrics(LONG, |m| {
            m.value("mtls_probe_config_reloads_total", &[("result", "success")]) == Some(3.0)
        })
        .await;
    assert_eq!(m.value("mtls_probe_targets", &[]), Some(1.0));
}

#[tokio::test]
async fn readiness_waits_for_the_first_round_and_sigterm_exits_cleanly() {
    let pki = Pki::new();
    let blackhole = peer(Behavior::Blackhole).await;
    let config = pki.path("agent.toml");
    write(
        &config,
        &[
            agent_block("3s", "1500ms"),
            identity_block(
                &pki.path("cert-chain.pem"),
                &pki.path("key.pem"),
                &pki.path("root-cert.pem"),
            ),
            target_block("prod/slow", blackhole.addr(), ""),
        ]
        .concat(),
    );
    let mut agent = AgentProcess::start(&config, &[]).await;
    let (status, body) = agent.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("first round"), "{body}");
    assert_eq!(agent.get("/healthz").await.0, 200);
    // Ready once the first probe completed (it times out: that is a completed probe).
    agent
        .wait_metrics(LONG, |m| m.attempts("prod/slow") >= 1.0)
        .await;
    assert_eq!(agent.get("/readyz").await.0, 200);
    // SIGTERM: in-flight probes finish within their timeout, exit 0.
    agent.signal("TERM").await;
    let status = tokio::time::timeout(Duration::from_millis(3000), agent.child.wait())
        .await
        .expect("exited within the probe timeout")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{}", agent.log_text());
}

#[tokio::test]
async fn slow_and_blackholed_peers_do_not_delay_a_healthy_edge() {
    // No JVM or Python server starts while the schedule is measured.
    let _exclusive = tools::timing_sensitive();
    let pki = Pki::new();
    let healthy = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let trickle = peer(Behavior::AfterClientHello(RawAction::Trickle {
        bytes: vec![22, 3, 3, 0, 200, 2, 0, 0, 196, 3, 3, 0, 0, 0, 0],
        every: Duration::from_secs(1),
    }))
    .await;
    let mut blackholes = Vec::new();
    for _ in 0..50 {
        blackholes.push(peer(Behavior::Blackhole).await);
    }
    let mut text = [
        agent_block("2s", "2s"),
        identity_block(
            &pki.path("cert-chain.pem"),
            &pki.path("key.pem"),
            &pki.path("root-cert.pem"),
        ),
        target_block(
            "prod/healthy",
            healthy.addr(),
            "interval = \"250ms\"\ntimeout = \"200ms\"\n",
        ),
        target_block("prod/trickle", trickle.addr(), ""),
    ]
    .concat();
    for (i, b) in blackholes.iter().enumerate() {
        text.push_str(&target_block(&format!("hole/{i}"), b.addr(), ""));
    }
    let config = pki.path("agent.toml");
    write(&config, &text);
    let agent = AgentProcess::start(&config, &[]).await;
    // Let the blackholes and the trickler occupy their probes, then measure.
    let m0 = agent
        .wait_metrics(LONG, |m| m.attempts("hole/0") >= 1.0)
        .await;
    let t0 = tokio::time::Instant::now();
    let h0 = m0.attempts("prod/healthy");
    let m1 = agent
        .wait_metrics(LONG, |m| m.attempts("prod/healthy") >= h0 + 12.0)
        .await;
    let elapsed = t0.elapsed();
    // The healthy edge kept its schedule: ~one probe per 250 ms…
    let expected = elapsed.as_secs_f64() / 0.25;
    assert!(12.0 >= expected - 3.0, "12 probes took {elapsed:?}");
    assert_eq!(
        m1.value("mtls_probe_success", &[("target", "prod/healthy")]),
        Some(1.0)
    );
    // …and no probe waited behind the slow peers.
    assert_on_schedule(&m1);
    // The slow peers failed with the reasons of their stage.
    assert!(
        m1.value(
            "mtls_probe_failures_total",
            &[("target", "prod/trickle"), ("reason", "handshake_timeout")]
        )
        .is_some()
    );
}

/// Finds a port free on both 127.0.0.1 and 127.0.0.2, for two agents' `[serve]`.
fn shared_port() -> u16 {
    for _ in 0..50 {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.2", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

#[tokio::test]
async fn two_agents_form_an_mtls_peer_matrix() {
    let pki = Pki::new();
    let dns = mtls_prober::demo::dns::DnsServer::start().await.unwrap();
    let ips: [std::net::IpAddr; 2] = ["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()];
    dns.set("mtls-prober.monitoring.test", &ips);
    let port = shared_port();
    let mut agents = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let id = format!("spiffe://cluster.local/ns/monitoring/sa/agent-{i}");
        let leaf = pki.intermediate.issue(&LeafSpec::spiffe(&id)).unwrap();
        let (cert, key) = pki.write_leaf(&format!("agent-{i}"), &leaf);
        let config = pki.path(&format!("agent-{i}.toml"));
        write(
            &config,
            &format!(
                "[agent]\nsource = \"node-{i}\"\nlisten = \"127.0.0.1:0\"\ninterval = \"300ms\"\ntimeout = \"250ms\"\n\
                 dns_servers = [\"{dns}\"]\n{identity}\
                 [serve]\nlisten = \"{ip}:{port}\"\n\
                 [[discover]]\nname = \"agents\"\ndns = \"mtls-prober.monitoring.test\"\nport = {port}\n\
                 trust_domain = \"cluster.local\"\nrefresh = \"500ms\"\n[discover.http]\npath = \"/healthz\"\n",
                dns = dns.addr(),
                identity = identity_block(&cert, &key, &pki.path("root-cert.pem")),
            ),
        );
        agents.push(AgentProcess::start(&config, &[]).await);
    }
    // Each agent probes both addresses (itself included) over mTLS and sees who answered.
    for (i, agent) in agents.iter().enumerate() {
        let other = 1 - i;
        let edge = format!("agents/{}", ips[other]);
        agent
            .wait_metrics(LONG, |m| {
                m.value("mtls_probe_success", &[("target", &edge)]) == Some(1.0)
            })
            .await;
        let edges = agent.edges().await;
        let e = edges.iter().find(|e| e["target"] == edge.as_str()).unwrap();
        assert_eq!(
            e["peer"]["spiffe_id"],
            format!("spiffe://cluster.local/ns/monitoring/sa/agent-{other}"),
            "{e}"
        );
        assert_eq!(e["http"]["status"], 200);
    }
    // An address that leaves DNS is removed from the matrix.
    dns.set("mtls-prober.monitoring.test", &ips[..1]);
    let gone = format!("agents/{}", ips[1]);
    agents[0]
        .wait_metrics(LONG, |m| m.series_of_target(&gone) == 0)
        .await;
}
