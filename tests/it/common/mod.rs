//! Shared test fixtures: a PKI generated per test and written to a temp dir, targets
//! with every default filled in, and a prober.

pub mod agent;
pub mod rotation;
pub mod tools;
pub mod workload_api;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mtls_prober::clock::SystemClock;
use mtls_prober::config::{
    Expect, HostPort, HttpCheck, IdentityConfig, Mode, Origin, PeerExpectation, StatusSet, Target,
    TlsVersion,
};
use mtls_prober::demo::pki::{Ca, Leaf, LeafSpec};
use mtls_prober::identity::Credentials;
use mtls_prober::probe::{Prober, Resolver};
use mtls_prober::report::ProbeReport;
use tempfile::TempDir;

pub const TD: &str = "cluster.local";
pub const SERVER_ID: &str = "spiffe://cluster.local/ns/prod/sa/api";
pub const CLIENT_ID: &str = "spiffe://cluster.local/ns/monitoring/sa/mtls-prober";

/// A mesh CA (root → intermediate), a foreign root, and our identity, on disk.
pub struct Pki {
    pub dir: TempDir,
    pub root: Ca,
    pub intermediate: Ca,
    pub foreign: Ca,
    pub client: Leaf,
}

impl Pki {
    pub fn new() -> Self {
        let root = Ca::root("Mesh Root CA").unwrap();
        let intermediate = root.intermediate("Mesh Intermediate CA").unwrap();
        let foreign = Ca::root("Foreign Root CA").unwrap();
        let client = intermediate.issue(&LeafSpec::spiffe(CLIENT_ID)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root-cert.pem"), root.cert_pem()).unwrap();
        std::fs::write(dir.path().join("cert-chain.pem"), client.chain_pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), client.key_pem()).unwrap();
        Self {
            dir,
            root,
            intermediate,
            foreign,
            client,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a leaf (chain + key) under `name` and returns (chain path, key path).
    pub fn write_leaf(&self, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
        let c = self.path(&format!("{name}.pem"));
        let k = self.path(&format!("{name}.key"));
        std::fs::write(&c, leaf.chain_pem()).unwrap();
        std::fs::write(&k, leaf.key_pem()).unwrap();
        (c, k)
    }

    pub fn identity_config(&self) -> IdentityConfig {
        IdentityConfig {
            cert: self.path("cert-chain.pem"),
            key: self.path("key.pem"),
            ca: self.path("root-cert.pem"),
            reload: Duration::from_secs(30),
            trust_domain: Some(TD.parse().unwrap()),
            trust_domain_aliases: Vec::new(),
            workload_api: None,
        }
    }

    pub fn credentials(&self, prober: &Prober) -> Credentials {
        let creds = Credentials::load(
            Some(&self.identity_config()),
            prober.provider(),
            SystemTime::now(),
        );
        assert!(creds.client.is_ok(), "{:?}", creds.client);
        creds
    }
}

/// A target with the config defaults (mode mtls, SPIFFE expectation, 3 s timeout).
pub fn target(addr: std::net::SocketAddr, mode: Mode) -> Target {
    Target {
        name: format!("test/{addr}"),
        address: HostPort {
            host: addr.ip().to_string(),
            port: addr.port(),
        },
        mode,
        expect: Expect::Success,
        peer: PeerExpectation::SpiffeId(SERVER_ID.parse().unwrap()),
        server_name: "api.prod.svc.cluster.local".into(),
        alpn: Vec::new(),
        tls_versions: vec![TlsVersion::V1_2, TlsVersion::V1_3],
        ca: None,
        verify_strict: false,
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(3),
        http: None,
        grpc: None,
        origin: Origin::Configured,
        fleet: Default::default(),
    }
}

pub fn http_check(path: &str) -> HttpCheck {
    HttpCheck {
        method: "GET".into(),
        path: path.into(),
        expect_status: StatusSet::default_success(),
        headers: Vec::new(),
        max_body_bytes: 65536,
    }
}

pub fn prober() -> Prober {
    Prober::new(Resolver::system(), Arc::new(SystemClock))
}

/// Prepares and runs one probe.
pub async fn probe(pki: &Pki, t: Target) -> ProbeReport {
    let prober = prober();
    let creds = pki.credentials(&prober);
    let prepared = prober.prepare(Arc::new(t), &creds);
    prober.run(&prepared, "test-node").await
}

/// Asserts a failed probe's stage/reason and that the detail mentions every fragment.
#[track_caller]
pub fn assert_failure(r: &ProbeReport, stage: &str, reason: &str, fragments: &[&str]) {
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(
        (
            json["ok"].as_bool(),
            json["stage"].as_str(),
            json["reason"].as_str()
        ),
        (Some(false), Some(stage), Some(reason)),
        "report: {json:#}"
    );
    let detail = r.detail.as_deref().unwrap_or("");
    for f in fragments {
        assert!(detail.contains(f), "detail {detail:?} lacks {f:?}");
    }
    assert!(r.hint.is_some_and(|h| !h.is_empty()), "no hint: {json:#}");
}

#[track_caller]
pub fn assert_pass(r: &ProbeReport) {
    assert!(
        r.ok,
        "expected a pass: {:#}",
        serde_json::to_value(r).unwrap()
    );
    assert_eq!(r.reason, None);
}

pub use mtls_prober::demo::peers::{
    Behavior, ClientAuth, HttpBehavior, PeerServer, RawAction, Response, ServerOpts, server_config,
};

/// Starts a loopback peer.
pub async fn peer(behavior: Behavior) -> PeerServer {
    mtls_prober::demo::peers::spawn(behavior).await.unwrap()
}

impl Pki {
    /// A server leaf with the expected SPIFFE ID, issued by the mesh intermediate.
    pub fn server_leaf(&self) -> Leaf {
        self.intermediate
            .issue(&LeafSpec::spiffe(SERVER_ID))
            .unwrap()
    }

    /// STRICT: requires client certificates from the mesh root.
    pub fn strict(&self, leaf: &Leaf, opts: &ServerOpts) -> Arc<rustls::ServerConfig> {
        server_config(
            leaf,
            ClientAuth::Required(vec![self.root.cert().clone()]),
            opts,
        )
        .unwrap()
    }

    /// A STRICT mesh server answering `http`.
    pub async fn strict_peer(&self, http: HttpBehavior) -> PeerServer {
        let config = self.strict(&self.server_leaf(), &ServerOpts::default());
        peer(Behavior::Tls { config, http }).await
    }
}

/// An mTLS target with an HTTP check and the config's default ALPN.
pub fn http_target(addr: std::net::SocketAddr, mode: Mode) -> Target {
    let mut t = target(addr, mode);
    t.alpn = vec!["h2".into(), "http/1.1".into()];
    t.http = Some(http_check("/healthz"));
    t
}
