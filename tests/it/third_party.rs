//! Interop with a real OpenSSL peer: `openssl s_server` built from Debian's OpenSSL,
//! so our classification is not only checked against our own rustls servers.

use mtls_prober::config::{Expect, Mode, TlsVersion};
use mtls_prober::demo::pki::{Leaf, LeafSpec, pem};
use sha2::{Digest, Sha256};

use crate::common::tools::{OpensslServer, require};
use crate::common::{Pki, SERVER_ID, assert_failure, assert_pass, http_check, probe, target};

fn openssl() -> bool {
    require("openssl", &["version"])
}

/// Writes the server's leaf and intermediates as s_server wants them.
fn server_files(pki: &Pki, name: &str, leaf: &Leaf) -> (String, String, String) {
    let cert = pki.path(&format!("{name}.crt"));
    let chain = pki.path(&format!("{name}-chain.crt"));
    let key = pki.path(&format!("{name}.key"));
    std::fs::write(&cert, pem("CERTIFICATE", leaf.leaf())).unwrap();
    let inter: String = leaf.chain[1..]
        .iter()
        .map(|c| pem("CERTIFICATE", c))
        .collect();
    std::fs::write(&chain, inter).unwrap();
    std::fs::write(&key, leaf.key_pem()).unwrap();
    let s = |p: std::path::PathBuf| p.display().to_string();
    (s(cert), s(chain), s(key))
}

/// `s_server` requiring client certificates from the mesh root, serving `-www`.
fn strict_server(pki: &Pki, leaf: &Leaf, extra: &[&str]) -> OpensslServer {
    let (cert, chain, key) = server_files(pki, "server", leaf);
    let ca = pki.path("root-cert.pem").display().to_string();
    let mut args = vec![
        "-cert",
        &cert,
        "-cert_chain",
        &chain,
        "-key",
        &key,
        "-CAfile",
        &ca,
        "-Verify",
        "3",
        "-verify_return_error",
        "-www",
    ];
    args.extend_from_slice(extra);
    OpensslServer::start(&args)
}

#[tokio::test]
async fn openssl_healthy_mtls_passes_and_reports_the_peer() {
    if !openssl() {
        return;
    }
    let pki = Pki::new();
    let leaf = pki
        .intermediate
        .issue(&LeafSpec::spiffe(SERVER_ID))
        .unwrap();
    let server = strict_server(&pki, &leaf, &[]);
    let mut t = target(server.addr, Mode::Mtls);
    t.http = Some(http_check("/"));
    let r = probe(&pki, t).await;
    assert_pass(&r);
    let peer = r.peer.as_ref().expect("peer");
    assert_eq!(peer.spiffe_id.as_deref(), Some(SERVER_ID));
    assert_eq!(peer.chain_len, 2);
    let root_sha = hex::encode(Sha256::digest(pki.root.cert()));
    assert_eq!(peer.root_sha256.as_deref(), Some(root_sha.as_str()));
    assert_eq!(r.http.as_ref().map(|h| h.status), Some(200));
    assert_eq!(r.tls.as_ref().map(|t| t.version), Some("TLSv1_3"));
}

#[tokio::test]
async fn openssl_strict_refuses_a_client_without_certificate_tls13() {
    if !openssl() {
        return;
    }
    let pki = Pki::new();
    let leaf = pki
        .intermediate
        .issue(&LeafSpec::spiffe(SERVER_ID))
        .unwrap();
    let server = strict_server(&pki, &leaf, &[]);
    // TLS-only probe: the refusal arrives after our Finished, in the post-handshake read.
    let r = probe(&pki, target(server.addr, Mode::Tls)).await;
    assert_failure(&r, "tls", "client_cert_required", &["certificate_required"]);
    // With an HTTP request the alert surfaces on the response read instead.
    let mut t = target(server.addr, Mode::Tls);
    t.http = Some(http_check("/"));
    let r = probe(&pki, t).await;
    assert_failure(&r, "tls", "client_cert_required", &["certificate_required"]);
    // The same refusal is what a `tls` + `expect = "reject"` probe wants to see.
    let mut t = target(server.addr, Mode::Tls);
    t.expect = Expect::Reject;
    let r = probe(&pki, t).await;
    assert_pass(&r);
    assert!(
        r.detail
            .as_deref()
            .unwrap_or("")
            .contains("client_cert_required")
    );
}

#[tokio::test]
async fn openssl_strict_refuses_a_client_without_certificate_tls12() {
    if !openssl() {
        return;
    }
    let pki = Pki::new();
    let leaf = pki
        .intermediate
        .issue(&LeafSpec::spiffe(SERVER_ID))
        .unwrap();
    let server = strict_server(&pki, &leaf, &["-tls1_2"]);
    // TLS 1.2 stacks send a bare handshake_failure; the CertificateRequest we saw
    // tells it apart from a cipher mismatch.
    let r = probe(&pki, target(server.addr, Mode::Tls)).await;
    assert_failure(&r, "tls", "client_cert_required", &["handshake_failure"]);
}

#[tokio::test]
async fn openssl_rejects_a_client_certificate_from_another_ca() {
    if !openssl() {
        return;
    }
    let pki = Pki::new();
    let leaf = pki
        .intermediate
        .issue(&LeafSpec::spiffe(SERVER_ID))
        .unwrap();
    let (cert, chain, key) = server_files(&pki, "server", &leaf);
    let foreign = pki.path("foreign.pem");
    std::fs::write(&foreign, pki.foreign.cert_pem()).unwrap();
    let foreign = foreign.display().to_string();
    let server = OpensslServer::start(&[
        "-cert",
        &cert,
        "-cert_chain",
        &chain,
        "-key",
        &key,
        "-CAfile",
        &foreign,
        "-Verify",
        "3",
        "-verify_return_error",
        "-www",
    ]);
    let r = probe(&pki, target(server.addr, Mode::Mtls)).await;
    assert_failure(&r, "tls", "client_cert_rejected", &["unknown_ca"]);
}

#[tokio::test]
async fn openssl_tls12_only_server_vs_tls13_only_probe() {
    if !openssl() {
        return;
    }
    let pki = Pki::new();
    let leaf = pki
        .intermediate
        .issue(&LeafSpec::spiffe(SERVER_ID))
        .unwrap();
    let server = strict_server(&pki, &leaf, &["-tls1_2"]);
    let mut t = target(server.addr, Mode::Mtls);
    t.tls_versions = vec![TlsVersion::V1_3];
    let r = probe(&pki, t).await;
    assert_failure(&r, "tls", "protocol_version", &["1.3"]);
}

#[tokio::test]
async fn openssl_expired_server_certificate() {
    if !openssl() {
        return;
    }
    let pki = Pki::new();
    let leaf = pki
        .intermediate
        .issue(&LeafSpec::spiffe(SERVER_ID).expired())
        .unwrap();
    let server = strict_server(&pki, &leaf, &[]);
    let r = probe(&pki, target(server.addr, Mode::Mtls)).await;
    let not_after = mtls_prober::tls::peer::CertSummary::parse(leaf.leaf())
        .unwrap()
        .not_after;
    let not_after = mtls_prober::identity::load::rfc3339(not_after);
    assert_failure(
        &r,
        "certificate",
        "cert_expired",
        &["not_after", &not_after, "local clock"],
    );
    // The expired certificate is still reported.
    assert_eq!(
        r.peer.as_ref().and_then(|p| p.spiffe_id.as_deref()),
        Some(SERVER_ID)
    );
    assert_eq!(
        r.peer.as_ref().map(|p| p.not_after.as_str()),
        Some(not_after.as_str())
    );
}
