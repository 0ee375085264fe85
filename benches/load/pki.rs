//! The benchmark's PKI: an ECDSA P-256 root, an intermediate under it, and the server's
//! and the client's SPIFFE leaves issued by the intermediate (Linkerd's shape: trust
//! anchor → identity issuer → workload; Istio's with a plugged-in CA), written as PEM
//! files that the server, the bare loop and the agent read. Each side presents its leaf
//! and the intermediate; the trust bundle is the root alone, so every verifier checks
//! two signatures per chain (the bare loop on every probe; the agent's verified-chain
//! cache checks the intermediate once).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mtls_prober::demo::pki::{Ca, LeafSpec};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The server's SPIFFE ID, which the agent's targets expect.
pub const SERVER_ID: &str = "spiffe://bench.local/ns/bench/sa/server";
/// The client's (agent's and bare loop's) SPIFFE ID.
pub const CLIENT_ID: &str = "spiffe://bench.local/ns/bench/sa/prober";
/// The DNS SAN the bare loop verifies (the agent verifies the SPIFFE ID instead).
pub const SERVER_DNS: &str = "server.bench.local";

/// Paths of the generated files.
#[derive(Clone, Debug)]
pub struct Files {
    /// Trust bundle (the root).
    pub ca: PathBuf,
    /// Server chain and key.
    pub server_cert: PathBuf,
    /// Server private key.
    pub server_key: PathBuf,
    /// Client chain.
    pub client_cert: PathBuf,
    /// Client private key.
    pub client_key: PathBuf,
}

/// Generates the PKI into `dir`.
pub fn generate(dir: &Path) -> Result<Files, String> {
    let root = Ca::root("bench root").map_err(|e| e.to_string())?;
    let issuer = root
        .intermediate("bench issuer")
        .map_err(|e| e.to_string())?;
    let server = issuer
        .issue(&LeafSpec::spiffe(SERVER_ID).with_dns(SERVER_DNS))
        .map_err(|e| e.to_string())?;
    let client = issuer
        .issue(&LeafSpec::spiffe(CLIENT_ID))
        .map_err(|e| e.to_string())?;
    let files = Files {
        ca: dir.join("root.pem"),
        server_cert: dir.join("server-chain.pem"),
        server_key: dir.join("server-key.pem"),
        client_cert: dir.join("client-chain.pem"),
        client_key: dir.join("client-key.pem"),
    };
    let write =
        |p: &Path, s: String| std::fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()));
    write(&files.ca, root.cert_pem())?;
    write(&files.server_cert, server.chain_pem())?;
    write(&files.server_key, server.key_pem())?;
    write(&files.client_cert, client.chain_pem())?;
    write(&files.client_key, client.key_pem())?;
    Ok(files)
}

/// Reads a PEM chain.
pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a PEM private key.
pub fn key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The provider both sides use: aws-lc-rs with rustls' defaults. The server restricts
/// key exchange to X25519 (the reference figures' handshake); clients keep the default
/// offer, so the agent and the bare loop send the same ClientHello.
pub fn provider(x25519_only: bool) -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    if x25519_only {
        p.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    }
    Arc::new(p)
}
