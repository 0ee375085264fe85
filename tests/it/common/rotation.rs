//! Rotations as Kubernetes and a mesh perform them: a server whose certificate is
//! swapped while it runs, and identity files flipped by an atomic `..data` symlink.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mtls_prober::demo::peers::{Behavior, HttpBehavior, PeerServer, Response};
use mtls_prober::demo::pki::Leaf;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

use super::Pki;

/// A server certificate that can be swapped while the server runs.
#[derive(Debug)]
pub struct SwappableCert(Mutex<Arc<CertifiedKey>>);

impl SwappableCert {
    /// Presents `leaf` from the next handshake on.
    pub fn swap(&self, leaf: &Leaf) {
        *self.0.lock().unwrap() = certified(leaf);
    }
}

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.lock().unwrap().clone())
    }
}

fn certified(leaf: &Leaf) -> Arc<CertifiedKey> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    Arc::new(CertifiedKey::from_der(leaf.chain.clone(), leaf.key(), &provider).unwrap())
}

/// A STRICT server (client certificates from the mesh root) answering 200, whose
/// certificate the returned handle swaps.
pub async fn rotating_server(
    pki: &Pki,
    first: &Leaf,
    alpn: &[&[u8]],
) -> (PeerServer, Arc<SwappableCert>) {
    let swap = Arc::new(SwappableCert(Mutex::new(certified(first))));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.root.cert().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(swap.clone());
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.send_tls13_tickets = 0;
    let server = super::peer(Behavior::Tls {
        config: Arc::new(config),
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await;
    (server, swap)
}

/// Kubernetes-style projected files: `<dir>/<name>` → `..data/<name>`, `..data` → a
/// versioned directory, flipped atomically by renaming a new symlink over it. `ca` is
/// written too when given.
pub fn flip_identity(dir: &Path, version: &str, chain: &str, key: &str, ca: Option<&str>) {
    let v = dir.join(version);
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("cert-chain.pem"), chain).unwrap();
    std::fs::write(v.join("key.pem"), key).unwrap();
    let mut files = vec!["cert-chain.pem", "key.pem"];
    if let Some(ca) = ca {
        std::fs::write(v.join("root-cert.pem"), ca).unwrap();
        files.push("root-cert.pem");
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in files {
        let link = dir.join(f);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(PathBuf::from("..data").join(f), &link).unwrap();
        }
    }
}
