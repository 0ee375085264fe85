//! `[identity] source = "workload-api"` (SPEC §13) against a Workload API server that
//! speaks the real proto over a Unix socket (`common::workload_api`): SVID and bundle
//! rotation, federated bundles verified per trust domain, broken streams, an absent
//! socket, malformed updates, `svid_hint`; then the agent binary (metrics, env var) and
//! `check`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mtls_prober::config::{Mode, PeerExpectation, Target, WorkloadApiConfig};
use mtls_prober::demo::pki::{Ca, Leaf, LeafSpec};
use mtls_prober::identity::Credentials;
use mtls_prober::identity::workload::{Event, follow};
use mtls_prober::report::ProbeReport;
use mtls_prober::tls::peer::CertSummary;
use rustls::server::WebPkiClientVerifier;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::common::workload_api::{WorkloadApi, response, svid};
use crate::common::{CLIENT_ID, SERVER_ID, assert_failure, assert_pass, prober, target};

const FOREIGN_TD: &str = "partner.example";
const FOREIGN_PEER: &str = "spiffe://partner.example/ns/pay/sa/gateway";

/// A mesh: its root, our first SVID.
struct Mesh {
    root: Ca,
    foreign: Ca,
    dir: tempfile::TempDir,
}

impl Mesh {
    fn new() -> Self {
        Self {
            root: Ca::root("SPIRE Root A").unwrap(),
            foreign: Ca::root("Partner Root").unwrap(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("agent.sock")
    }

    fn cfg(&self) -> WorkloadApiConfig {
        WorkloadApiConfig {
            socket: format!("unix://{}", self.socket().display()),
            svid_hint: None,
        }
    }

    fn ours(&self) -> Leaf {
        self.root.issue(&LeafSpec::spiffe(CLIENT_ID)).unwrap()
    }
}

/// A TLS peer that requires a client certificate chaining to `client_roots`, presents
/// `leaf`, and records the serial of every client certificate it accepted.
struct RecordingPeer {
    addr: std::net::SocketAddr,
    serials: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingPeer {
    async fn start(leaf: &Leaf, client_roots: &[&Ca]) -> Self {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for r in client_roots {
            roots.add(r.cert().clone()).unwrap();
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(leaf.chain.clone(), leaf.key())
            .unwrap();
        config.send_tls13_tickets = 0;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serials = Arc::new(Mutex::new(Vec::new()));
        let record = serials.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let record = record.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first())
                    {
                        let serial = CertSummary::parse(cert).unwrap().serial;
                        record.lock().unwrap().push(serial);
                    }
                    // Hold the connection until the prober leaves.
                    let mut buf = [0u8; 512];
                    while matches!(tls.read(&mut buf).await, Ok(1..)) {}
                });
            }
        });
        Self {
            addr,
            serials,
            task,
        }
    }

    fn last_serial(&self) -> Option<String> {
        self.serials.lock().unwrap().last().cloned()
    }
}

impl Drop for RecordingPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Follows the Workload API; the credentials and the event stream.
struct Following {
    creds: watch::Receiver<Arc<Credentials>>,
    events: mpsc::UnboundedReceiver<Event>,
    _shutdown: watch::Sender<bool>,
}

impl Following {
    fn start(cfg: WorkloadApiConfig) -> Self {
        let prober = prober();
        let (tx, creds) = watch::channel(Arc::new(Credentials::none()));
        let (events_tx, events) = mpsc::unbounded_channel();
        let (shutdown_tx, shutdown) = watch::channel(false);
        tokio::spawn(follow(
            cfg,
            prober.provider().clone(),
            prober.clock().clone(),
            tx,
            events_tx,
            shutdown,
        ));
        Self {
            creds,
            events,
            _shutdown: shutdown_tx,
        }
    }

    /// The next event (the follower's own signal; no polling).
    async fn next(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(20), self.events.recv())
            .await
            .expect("an event within 20 s")
            .expect("the follower is running")
    }

    async fn expect_updated(&mut self) -> String {
        match self.next().await {
            Event::Updated { serial, .. } => serial,
            other => panic!("expected an update, got {other:?}"),
        }
    }

    async fn probe(&self, t: Target) -> ProbeReport {
        let prober = prober();
        let creds = self.creds.borrow().clone();
        let prepared = prober.prepare(Arc::new(t), &creds);
        prober.run(&prepared, "test-node").await
    }
}

fn serial_of(leaf: &Leaf) -> String {
    CertSummary::parse(leaf.leaf()).unwrap().serial
}

fn mtls(addr: std::net::SocketAddr, peer: &str) -> Target {
    let mut t = target(addr, Mode::Mtls);
    t.peer = PeerExpectation::SpiffeId(peer.parse().unwrap());
    t
}

#[tokio::test]
async fn svid_rotation_is_presented_at_the_next_probe() {
    let mesh = Mesh::new();
    let first = mesh.ours();
    let api = WorkloadApi::start(
        &mesh.socket(),
        Some(response(vec![svid(CLIENT_ID, &first, &[&mesh.root])], &[])),
    );
    let mut f = Following::start(mesh.cfg());
    assert_eq!(f.expect_updated().await, serial_of(&first));
    let server = mesh.root.issue(&LeafSpec::spiffe(SERVER_ID)).unwrap();
    let peer = RecordingPeer::start(&server, &[&mesh.root]).await;
    assert_pass(&f.probe(mtls(peer.addr, SERVER_ID)).await);
    assert_eq!(peer.last_serial(), Some(serial_of(&first)));

    // SPIRE rotates the SVID: the next probe presents the new one.
    let second = mesh.ours();
    api.set(response(vec![svid(CLIENT_ID, &second, &[&mesh.root])], &[]));
    assert_eq!(f.expect_updated().await, serial_of(&second));
    assert_pass(&f.probe(mtls(peer.addr, SERVER_ID)).await);
    assert_eq!(peer.last_serial(), Some(serial_of(&second)));

    // The same context again changes nothing: no event, still the second SVID.
    api.set(response(vec![svid(CLIENT_ID, &second, &[&mesh.root])], &[]));
    let third = mesh.ours();
    api.set(response(vec![svid(CLIENT_ID, &third, &[&mesh.root])], &[]));
    assert_eq!(f.expect_updated().await, serial_of(&third));
}

#[tokio::test]
async fn bundle_rotation_trusts_the_new_root_from_the_next_probe() {
    let mesh = Mesh::new();
    let ours = mesh.ours();
    let api = WorkloadApi::start(
        &mesh.socket(),
        Some(response(vec![svid(CLIENT_ID, &ours, &[&mesh.root])], &[])),
    );
    let mut f = Following::start(mesh.cfg());
    f.expect_updated().await;
    // The peer already has a certificate from the next root (B).
    let next_root = Ca::root("SPIRE Root B").unwrap();
    let server = next_root.issue(&LeafSpec::spiffe(SERVER_ID)).unwrap();
    let peer = RecordingPeer::start(&server, &[&mesh.root]).await;
    let r = f.probe(mtls(peer.addr, SERVER_ID)).await;
    assert_failure(
        &r,
        "certificate",
        "cert_untrusted",
        &["SPIRE Root B", "cluster.local's trust bundle"],
    );
    // The bundle gains root B (both during the overlap).
    api.set(response(
        vec![svid(CLIENT_ID, &ours, &[&mesh.root, &next_root])],
        &[],
    ));
    f.expect_updated().await;
    assert_pass(&f.probe(mtls(peer.addr, SERVER_ID)).await);
}

#[tokio::test]
async fn federated_bundles_verify_each_peer_with_its_own_trust_domain() {
    let mesh = Mesh::new();
    let ours = mesh.ours();
    let _api = WorkloadApi::start(
        &mesh.socket(),
        Some(response(
            vec![svid(CLIENT_ID, &ours, &[&mesh.root])],
            &[(&format!("spiffe://{FOREIGN_TD}"), &[&mesh.foreign])],
        )),
    );
    let mut f = Following::start(mesh.cfg());
    match f.next().await {
        Event::Updated { trust_domains, .. } => {
            assert_eq!(trust_domains, ["cluster.local", FOREIGN_TD]);
        }
        other => panic!("{other:?}"),
    }
    // A peer of the federated domain passes, verified with its own bundle.
    let partner = mesh.foreign.issue(&LeafSpec::spiffe(FOREIGN_PEER)).unwrap();
    let peer = RecordingPeer::start(&partner, &[&mesh.root]).await;
    assert_pass(&f.probe(mtls(peer.addr, FOREIGN_PEER)).await);
    // It is still not acceptable where our own domain is expected (identity stage).
    let r = f.probe(mtls(peer.addr, SERVER_ID)).await;
    assert_failure(&r, "identity", "trust_domain_mismatch", &[FOREIGN_PEER]);

    // A certificate claiming OUR domain, signed by the partner's CA: a pooled bundle
    // would accept it; verified with cluster.local's bundle it is refused.
    let impostor = mesh.foreign.issue(&LeafSpec::spiffe(SERVER_ID)).unwrap();
    let peer = RecordingPeer::start(&impostor, &[&mesh.root]).await;
    let r = f.probe(mtls(peer.addr, SERVER_ID)).await;
    assert_failure(
        &r,
        "certificate",
        "cert_untrusted",
        &["Partner Root", "cluster.local's trust bundle"],
    );
    // A domain without any bundle is untrusted, naming the domains that have one.
    let stranger_ca = Ca::root("Stranger Root").unwrap();
    let stranger = stranger_ca
        .issue(&LeafSpec::spiffe("spiffe://stranger.example/ns/x/sa/y"))
        .unwrap();
    let peer = RecordingPeer::start(&stranger, &[&mesh.root]).await;
    let r = f
        .probe(mtls(peer.addr, "spiffe://stranger.example/ns/x/sa/y"))
        .await;
    assert_failure(
        &r,
        "certificate",
        "cert_untrusted",
        &[
            "no trust bundle for trust domain stranger.example",
            FOREIGN_TD,
        ],
    );
}

#[tokio::test]
async fn a_broken_stream_keeps_the_svid_and_reconnects() {
    let mesh = Mesh::new();
    let first = mesh.ours();
    let api = WorkloadApi::start(
        &mesh.socket(),
        Some(response(vec![svid(CLIENT_ID, &first, &[&mesh.root])], &[])),
    );
    let mut f = Following::start(mesh.cfg());
    f.expect_updated().await;
    let server = mesh.root.issue(&LeafSpec::spiffe(SERVER_ID)).unwrap();
    let peer = RecordingPeer::start(&server, &[&mesh.root]).await;

    // The SPIRE agent restarts: the stream breaks.
    let api = api.break_streams();
    match f.next().await {
        Event::Lost(problem) => assert!(problem.contains("agent.sock"), "{problem}"),
        other => panic!("{other:?}"),
    }
    // The last good SVID stays in use.
    assert_pass(&f.probe(mtls(peer.addr, SERVER_ID)).await);
    assert_eq!(peer.last_serial(), Some(serial_of(&first)));
    // The follower reconnects (backoff) and gets the next rotation.
    let second = mesh.ours();
    api.set(response(vec![svid(CLIENT_ID, &second, &[&mesh.root])], &[]));
    assert_eq!(f.expect_updated().await, serial_of(&second));
    assert_pass(&f.probe(mtls(peer.addr, SERVER_ID)).await);
    assert_eq!(peer.last_serial(), Some(serial_of(&second)));
}

#[tokio::test]
async fn an_absent_socket_is_identity_unavailable_until_it_appears() {
    let mesh = Mesh::new();
    let mut f = Following::start(mesh.cfg());
    match f.next().await {
        Event::Lost(problem) => assert!(problem.contains("agent.sock"), "{problem}"),
        other => panic!("{other:?}"),
    }
    let server = mesh.root.issue(&LeafSpec::spiffe(SERVER_ID)).unwrap();
    let peer = RecordingPeer::start(&server, &[&mesh.root]).await;
    let r = f.probe(mtls(peer.addr, SERVER_ID)).await;
    assert_failure(&r, "local", "identity_unavailable", &["agent.sock"]);
    assert!(peer.last_serial().is_none(), "the target was not contacted");

    // The SPIRE agent comes up: the follower connects on its next attempt.
    let ours = mesh.ours();
    let _api = WorkloadApi::start(
        &mesh.socket(),
        Some(response(vec![svid(CLIENT_ID, &ours, &[&mesh.root])], &[])),
    );
    assert_eq!(f.expect_updated().await, serial_of(&ours));
    assert_pass(&f.probe(mtls(peer.addr, SERVER_ID)).await);
}

#[tokio::test]
async fn a_malformed_svid_is_refused_and_the_old_one_kept() {
    let mesh = Mesh::new();
    let first = mesh.ours();
    let api = WorkloadApi::start(
        &mesh.socket(),
        Some(response(vec![svid(CLIENT_ID, &first, &[&mesh.root])], &[])),
    );
    let mut f = Following::start(mesh.cfg());
    f.expect_updated().await;
    // The key of another certificate.
    let other = mesh.ours();
    let mut bad = svid(CLIENT_ID, &mesh.ours(), &[&mesh.root]);
    bad.x509_svid_key = other.key_pkcs8_der().to_vec();
    api.set(response(vec![bad], &[]));
    match f.next().await {
        Event::Rejected(problem) => {
            assert!(problem.contains("does not match"), "{problem}");
            assert_no_key(&problem, other.key_pkcs8_der());
        }
        other => panic!("{other:?}"),
    }
    // Key bytes that are not PKCS#8: refused by the spiffe crate, without echoing them.
    let mut bad = svid(CLIENT_ID, &mesh.ours(), &[&mesh.root]);
    let junk = b"0123456789abcdef-not-a-pkcs8-key-0123456789abcdef".to_vec();
    bad.x509_svid_key = junk.clone();
    api.set(response(vec![bad], &[]));
    match f.next().await {
        Event::Rejected(problem) => {
            assert!(problem.contains("key"), "{problem}");
            assert_no_key(&problem, &junk);
        }
        other => panic!("{other:?}"),
    }
    // An unparsable bundle is refused too.
    let mut bad = svid(CLIENT_ID, &mesh.ours(), &[&mesh.root]);
    bad.bundle = b"not DER".to_vec();
    api.set(response(vec![bad], &[]));
    assert!(matches!(f.next().await, Event::Rejected(_)));
    // The first SVID is still presented.
    let server = mesh.root.issue(&LeafSpec::spiffe(SERVER_ID)).unwrap();
    let peer = RecordingPeer::start(&server, &[&mesh.root]).await;
    assert_pass(&f.probe(mtls(peer.addr, SERVER_ID)).await);
    assert_eq!(peer.last_serial(), Some(serial_of(&first)));
}

#[tokio::test]
async fn svid_hint_selects_among_several_svids() {
    let mesh = Mesh::new();
    let internal = mesh.ours();
    let external = mesh
        .root
        .issue(&LeafSpec::spiffe(
            "spiffe://cluster.local/ns/monitoring/sa/external",
        ))
        .unwrap();
    let mut a = svid(CLIENT_ID, &internal, &[&mesh.root]);
    a.hint = "internal".into();
    let mut b = svid(
        "spiffe://cluster.local/ns/monitoring/sa/external",
        &external,
        &[&mesh.root],
    );
    b.hint = "external".into();
    let _api = WorkloadApi::start(&mesh.socket(), Some(response(vec![a, b], &[])));
    // Without a hint: the first.
    let mut f = Following::start(mesh.cfg());
    assert_eq!(f.expect_updated().await, serial_of(&internal));
    // With one: that one.
    let mut cfg = mesh.cfg();
    cfg.svid_hint = Some("external".into());
    let mut f = Following::start(cfg);
    assert_eq!(f.expect_updated().await, serial_of(&external));
    // A hint that names none: refused, naming the hints there are.
    let mut cfg = mesh.cfg();
    cfg.svid_hint = Some("nope".into());
    let mut f = Following::start(cfg);
    match f.next().await {
        Event::Rejected(problem) => {
            assert!(problem.contains("\"nope\""), "{problem}");
            assert!(problem.contains("\"external\""), "{problem}");
        }
        other => panic!("{other:?}"),
    }
}

// === the agent binary and `check` ===

fn unix_secs(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as f64
}

#[tokio::test]
async fn the_agent_follows_the_workload_api_and_counts_updates() {
    use crate::common::agent::AgentProcess;
    let mesh = Mesh::new();
    let first = mesh.ours();
    let api = WorkloadApi::start(
        &mesh.socket(),
        Some(response(vec![svid(CLIENT_ID, &first, &[&mesh.root])], &[])),
    );
    let server = mesh.root.issue(&LeafSpec::spiffe(SERVER_ID)).unwrap();
    let peer = RecordingPeer::start(&server, &[&mesh.root]).await;
    let config = mesh.dir.path().join("probes.toml");
    // No `socket`: $SPIFFE_ENDPOINT_SOCKET, as the SPIFFE CSI driver's pods set it.
    std::fs::write(
        &config,
        format!(
            "[agent]\nsource = \"node-a\"\nlisten = \"127.0.0.1:0\"\ninterval = \"300ms\"\n\
             timeout = \"250ms\"\n[identity]\nsource = \"workload-api\"\n\
             trust_domain = \"cluster.local\"\n\
             [[target]]\nname = \"prod/api\"\naddress = \"{}\"\nspiffe_id = \"{SERVER_ID}\"\n",
            peer.addr
        ),
    )
    .unwrap();
    let socket = mesh.cfg().socket;
    let agent = AgentProcess::start(&config, &[("SPIFFE_ENDPOINT_SOCKET", &socket)]).await;
    let reloads = "mtls_probe_identity_reloads_total";
    let id_na = "mtls_probe_identity_cert_not_after_timestamp_seconds";
    let na = |l: &Leaf| unix_secs(CertSummary::parse(l.leaf()).unwrap().not_after);
    agent
        .wait_metrics(Duration::from_secs(20), |m| {
            m.value(reloads, &[("result", "success")]) == Some(1.0)
                && m.value(id_na, &[]) == Some(na(&first))
                && m.value(
                    "mtls_probe_attempts_total",
                    &[("target", "prod/api"), ("result", "success")],
                )
                .is_some_and(|v| v >= 1.0)
        })
        .await;
    assert_eq!(agent.get("/readyz").await.0, 200);
    assert_eq!(peer.last_serial(), Some(serial_of(&first)));

    // A rotation: counted, exported, presented.
    let second = mesh.ours();
    api.set(response(vec![svid(CLIENT_ID, &second, &[&mesh.root])], &[]));
    agent
        .wait_metrics(Duration::from_secs(20), |m| {
            m.value(reloads, &[("result", "success")]) == Some(2.0)
                && m.value(id_na, &[]) == Some(na(&second))
        })
        .await;
    let before = agent.metrics().await.attempts("prod/api");
    agent
        .wait_metrics(Duration::from_secs(20), |m| {
            m.attempts("prod/api") >= before + 2.0
        })
        .await;
    assert_eq!(peer.last_serial(), Some(serial_of(&second)));

    // A malformed update: a failure, the second SVID kept, probes still passing.
    let mut bad = svid(CLIENT_ID, &mesh.ours(), &[&mesh.root]);
    bad.x509_svid_key = mesh.ours().key_pkcs8_der().to_vec();
    api.set(response(vec![bad], &[]));
    let m = agent
        .wait_metrics(Duration::from_secs(20), |m| {
            m.value(reloads, &[("result", "failure")]) == Some(1.0)
        })
        .await;
    assert_eq!(m.value(id_na, &[]), Some(na(&second)));
    assert_eq!(
        m.value("mtls_probe_success", &[("target", "prod/api")]),
        Some(1.0)
    );
    let log = agent.log_text();
    assert!(
        log.contains("identity updated from the Workload API"),
        "{log}"
    );
    assert!(log.contains("keeping the previous identity"), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "{log}");

    // The SPIRE agent goes away: one failure for the outage, the SVID kept.
    drop(api);
    let m = agent
        .wait_metrics(Duration::from_secs(20), |m| {
            m.value(reloads, &[("result", "failure")]) == Some(2.0)
        })
        .await;
    assert_eq!(m.value(id_na, &[]), Some(na(&second)));
    let before = m.attempts("prod/api");
    let m = agent
        .wait_metrics(Duration::from_secs(20), |m| {
            m.attempts("prod/api") >= before + 2.0
        })
        .await;
    assert_eq!(
        m.value("mtls_probe_success", &[("target", "prod/api")]),
        Some(1.0)
    );
}

async fn check(config: &std::path::Path) -> (Option<i32>, String) {
    let o = tokio::process::Command::new(crate::common::agent::BIN)
        .args(["check", "--config"])
        .arg(config)
        .env_remove("SPIFFE_ENDPOINT_SOCKET")
        .output()
        .await
        .unwrap();
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[tokio::test]
async fn check_fetches_once_and_prints_the_svid_and_bundles() {
    let mesh = Mesh::new();
    let ours = mesh.ours();
    let config = mesh.dir.path().join("probes.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nsource = \"node-a\"\n[identity]\nsource = \"workload-api\"\n\
             socket = \"{}\"\n",
            mesh.cfg().socket
        ),
    )
    .unwrap();
    // Nothing listens yet: exit 2, naming the socket.
    let (code, out) = check(&config).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("agent.sock"), "{out}");

    let _api = WorkloadApi::start(
        &mesh.socket(),
        Some(response(
            vec![svid(CLIENT_ID, &ours, &[&mesh.root])],
            &[(&format!("spiffe://{FOREIGN_TD}"), &[&mesh.foreign])],
        )),
    );
    let (code, out) = check(&config).await;
    assert_eq!(code, Some(0), "{out}");
    let not_after =
        mtls_prober::identity::load::rfc3339(CertSummary::parse(ours.leaf()).unwrap().not_after);
    for fragment in [
        CLIENT_ID,
        not_after.as_str(),
        "cluster.local: 1 root(s)",
        "partner.example: 1 root(s)",
        "source = \"workload-api\"",
    ] {
        assert!(out.contains(fragment), "{fragment:?} missing from:\n{out}");
    }
}

/// No 16-byte window of `key`, raw (when it is text) or hex, appears in `text`.
fn assert_no_key(text: &str, key: &[u8]) {
    for w in key.windows(16) {
        assert!(!text.contains(&hex::encode(w)), "hex key bytes in {text}");
        assert!(
            !text.contains(&hex::encode_upper(w)),
            "hex key bytes in {text}"
        );
        if let Ok(raw) = std::str::from_utf8(w) {
            assert!(!text.contains(raw), "raw key bytes in {text}");
        }
    }
}
