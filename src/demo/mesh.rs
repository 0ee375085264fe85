//! The demo mesh (SPEC §9): a throwaway PKI, one loopback service per failure class with
//! a DNS name served by a loopback DNS server, and the `probes.toml` that probes them.
//! Everything lives in memory or in a temporary directory removed on drop.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;

use super::catalog::{self, Server};
pub use super::catalog::{Expected, TRUST_DOMAIN};
use super::dns::DnsServer;
use super::peers::{PeerServer, spawn, spawn_full_backlog, spawn_refused};
use super::pki::{Ca, LeafSpec};

/// The DNS zone of the demo's services.
pub const ZONE: &str = "demo.mesh";
/// The demo agent's own SPIFFE ID.
pub const AGENT_ID: &str = "spiffe://cluster.local/ns/monitoring/sa/mtls-prober";

/// One edge of the demo and what it demonstrates.
#[derive(Clone, Debug)]
pub struct DemoEdge {
    /// The target name.
    pub name: String,
    /// What the service behind it is (shown to the user).
    pub what: &'static str,
    /// The outcome the probe must show.
    pub expected: Expected,
}

/// A running demo mesh.
pub struct DemoMesh {
    /// The temporary directory with the identity files and `probes.toml`.
    pub dir: TempDir,
    /// `probes.toml` of the demo.
    pub config: PathBuf,
    /// Every edge (companions included) and its expected outcome.
    pub edges: Vec<DemoEdge>,
    /// The DNS server the config points at.
    pub dns: DnsServer,
    _servers: Vec<PeerServer>,
}

impl DemoMesh {
    /// Generates the PKI, starts every service and writes the config. `listen` is where
    /// the agent will serve its endpoints; `interval`/`timeout` apply to every edge.
    pub async fn start(listen: std::net::SocketAddr) -> Result<Self, String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let root = Ca::root("Demo Mesh Root CA").map_err(|e| err(&e))?;
        let ca = root
            .intermediate("Demo Mesh Intermediate CA")
            .map_err(|e| err(&e))?;
        let foreign = Ca::root("Some Other Mesh Root CA").map_err(|e| err(&e))?;
        let client = ca.issue(&LeafSpec::spiffe(AGENT_ID)).map_err(|e| err(&e))?;
        let dir = tempfile::Builder::new()
            .prefix("mtls-prober-demo-")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        let write = |name: &str, text: String| {
            std::fs::write(dir.path().join(name), text)
                .map_err(|e| format!("writing {}: {e}", dir.path().join(name).display()))
        };
        write("cert-chain.pem", client.chain_pem())?;
        write("key.pem", client.key_pem())?;
        write("root-cert.pem", root.cert_pem())?;

        let services = catalog::services(&root, &ca, &foreign).map_err(|e| err(&e))?;
        let dns = DnsServer::start()
            .await
            .map_err(|e| format!("starting the demo DNS server: {e}"))?;
        let mut servers = Vec::new();
        let mut targets = String::new();
        let mut edges = Vec::new();
        for s in services {
            let (ns, svc) = s.name.split_once('/').unwrap_or(("default", s.name));
            let host = format!("{svc}.{ns}.{ZONE}");
            let port = match s.server {
                Server::Peer(b) => {
                    let p = spawn(b)
                        .await
                        .map_err(|e| format!("starting {}: {e}", s.name))?;
                    let port = p.addr().port();
                    servers.push(p);
                    dns.set(&host, &[IpAddr::V4(Ipv4Addr::LOCALHOST)]);
                    port
                }
                Server::Refused | Server::FullBacklog => {
                    let p = match s.server {
                        Server::Refused => spawn_refused(),
                        _ => spawn_full_backlog().await,
                    }
                    .map_err(|e| format!("starting {}: {e}", s.name))?;
                    let port = p.addr().port();
                    servers.push(p);
                    dns.set(&host, &[IpAddr::V4(Ipv4Addr::LOCALHOST)]);
                    port
                }
                Server::Unresolvable { fail } => {
                    if fail {
                        dns.fail_name(&host);
                    }
                    443
                }
            };
            targets.push_str(&format!(
                "\n# {what}\n[[target]]\nname = \"{name}\"\naddress = \"{host}:{port}\"\n{keys}",
                what = s.what,
                name = s.name,
                keys = s.keys,
            ));
            if s.http {
                targets.push_str("[target.http]\npath = \"/healthz\"\n");
            }
            edges.push(DemoEdge {
                name: s.name.to_owned(),
                what: s.what,
                expected: s.expected,
            });
            if let Some(c) = s.companion {
                edges.push(DemoEdge {
                    name: format!("{}/plaintext", s.name),
                    what: "the same service, probed in plaintext: must be refused",
                    expected: c,
                });
            }
        }
        let config = dir.path().join("probes.toml");
        let text = format!(
            "# Generated by `mtls-prober demo`: every service runs on 127.0.0.1 and is named\n\
             # in a DNS server on {dns}. Removed when the demo exits.\n\
             [agent]\nsource = \"demo-node\"\nlisten = \"{listen}\"\ninterval = \"5s\"\n\
             timeout = \"2s\"\nwindows = [\"1m\", \"5m\"]\ndns_servers = [\"{dns}\"]\n\n\
             [identity]\ncert = \"{cert}\"\nkey = \"{key}\"\nca = \"{ca}\"\nreload = \"10s\"\n\
             trust_domain = \"{TRUST_DOMAIN}\"\n{targets}",
            dns = dns.addr(),
            cert = dir.path().join("cert-chain.pem").display(),
            key = dir.path().join("key.pem").display(),
            ca = dir.path().join("root-cert.pem").display(),
        );
        std::fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
        Ok(Self {
            dir,
            config,
            edges,
            dns,
            _servers: servers,
        })
    }
}

/// How long the demo's slowest edge takes (blackhole, full backlog): its timeout.
pub const SLOWEST_EDGE: Duration = Duration::from_secs(2);
