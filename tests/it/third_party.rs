//! Interop with real third-party peers from Debian's packages: `openssl s_server` and
//! nginx (mTLS the way ingress-nginx terminates it), so our classification is not only
//! checked against our own rustls servers.

use mtls_prober::config::{Expect, Mode, TlsVersion};
use mtls_prober::demo::pki::{Leaf, LeafSpec, pem};
use sha2::{Digest, Sha256};

use mtls_prober::config::Target;

use crate::common::tools::{NginxServer, OpensslServer, require};
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
    let leaf = pki.server_leaf();
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
    assert_eq!(r.tls.as_ref().map(|t| t.version), Some("TLS 1.3"));
}

#[tokio::test]
async fn openssl_strict_refuses_a_client_without_certificate_tls13() {
    if !openssl() {
        return;
    }
    let pki = Pki::new();
    let leaf = pki.server_leaf();
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
    let leaf = pki.server_leaf();
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
    let leaf = pki.server_leaf();
    let (cert, chain, key) = server_files(&pki, "server", &leaf);
    let foreign = foreign_ca_file(&pki);
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
    let leaf = pki.server_leaf();
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

fn nginx() -> bool {
    require("nginx", &["-v"])
}

/// nginx terminating mTLS the way ingress-nginx does (`ssl_verify_client on`): client
/// certificates must chain to `client_ca`; it answers `/healthz` over h2 and HTTP/1.1.
fn nginx_mtls(pki: &Pki, leaf: &Leaf, client_ca: &str) -> NginxServer {
    // nginx wants the leaf followed by its intermediates in one file.
    let full = pki.path("nginx-full.crt");
    let key = pki.path("nginx.key");
    let chain: String = leaf.chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
    std::fs::write(&full, chain).unwrap();
    std::fs::write(&key, leaf.key_pem()).unwrap();
    let block = format!(
        "    ssl_certificate {};\n    ssl_certificate_key {};\n\
         ssl_client_certificate {client_ca};\n    ssl_verify_client on;\n\
         ssl_verify_depth 3;\n    location = /healthz {{ return 200 \"ok\\n\"; }}\n",
        full.display(),
        key.display()
    );
    NginxServer::start("ssl http2", &block)
}

/// The foreign root (another mesh's CA) as a PEM file, for servers that should trust
/// only it for clients.
fn foreign_ca_file(pki: &Pki) -> String {
    let path = pki.path("foreign.pem");
    std::fs::write(&path, pki.foreign.cert_pem()).unwrap();
    path.display().to_string()
}

fn http_target(addr: std::net::SocketAddr, mode: Mode, alpn: &str) -> Target {
    let mut t = target(addr, mode);
    t.alpn = vec![alpn.to_owned()];
    t.http = Some(http_check("/healthz"));
    t
}

#[tokio::test]
async fn nginx_healthy_mtls_passes_over_h2_and_http1() {
    if !nginx() {
        return;
    }
    let pki = Pki::new();
    let leaf = pki.server_leaf();
    let ca = pki.path("root-cert.pem").display().to_string();
    let server = nginx_mtls(&pki, &leaf, &ca);
    for alpn in ["h2", "http/1.1"] {
        let r = probe(&pki, http_target(server.addr, Mode::Mtls, alpn)).await;
        assert_pass(&r);
        assert_eq!(r.tls.as_ref().and_then(|t| t.alpn.as_deref()), Some(alpn));
        assert_eq!(r.http.as_ref().map(|h| h.status), Some(200));
        let peer = r.peer.as_ref().expect("peer");
        assert_eq!(peer.spiffe_id.as_deref(), Some(SERVER_ID));
        assert_eq!(peer.chain_len, 2);
    }
}

#[tokio::test]
async fn nginx_without_a_client_certificate_is_client_cert_required() {
    if !nginx() {
        return;
    }
    let pki = Pki::new();
    let leaf = pki.server_leaf();
    let ca = pki.path("root-cert.pem").display().to_string();
    let server = nginx_mtls(&pki, &leaf, &ca);
    // nginx completes the handshake and refuses in HTTP: 400 "No required SSL
    // certificate was sent". The broken layer is still the client certificate.
    for alpn in ["h2", "http/1.1"] {
        let r = probe(&pki, http_target(server.addr, Mode::Tls, alpn)).await;
        assert_failure(
            &r,
            "tls",
            "client_cert_required",
            &["HTTP 400", "requires a client certificate"],
        );
    }
    // That refusal is what a STRICT check without a certificate wants to see.
    let mut t = http_target(server.addr, Mode::Tls, "http/1.1");
    t.expect = Expect::Reject;
    let r = probe(&pki, t).await;
    assert_pass(&r);
}

#[tokio::test]
async fn nginx_rejects_a_client_certificate_from_another_ca() {
    if !nginx() {
        return;
    }
    let pki = Pki::new();
    let leaf = pki.server_leaf();
    let server = nginx_mtls(&pki, &leaf, &foreign_ca_file(&pki));
    let r = probe(&pki, http_target(server.addr, Mode::Mtls, "h2")).await;
    assert_failure(
        &r,
        "tls",
        "client_cert_rejected",
        &["HTTP 400", "did not accept our client certificate"],
    );
}
