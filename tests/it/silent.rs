//! Silent client-certificate refusals (SPEC §4): servers that asked for a certificate
//! and then close without sending anything — no alert, no session ticket, no response.
//! Java's own `HttpsServer` (the JDK's `com.sun.net.httpserver`) refuses this way, in
//! TLS 1.3 right after our Finished and in TLS 1.2 in the middle of the handshake. The
//! look-alikes that sent something first (nginx's `return 444`, the demo's TCP-level
//! deny with its close_notify) stay `request/connection_closed`.

use mtls_prober::config::{Expect, Mode, TlsVersion};
use mtls_prober::demo::pki::pem;

use crate::common::tools::{ListeningPeer, NginxServer, java_classes, require};
use crate::common::{
    HttpBehavior, Pki, assert_failure, assert_pass, http_check, http_target, probe, target,
};

/// The JDK's HttpsServer presenting the mesh server leaf, trusting `client_ca` for
/// client certificates, `need` = required.
fn java_https(pki: &Pki, client_ca: &str, protocol: &str) -> Option<ListeningPeer> {
    let classes = java_classes()?;
    let leaf = pki.server_leaf();
    let (chain, key) = pki.write_leaf("java-server", &leaf);
    Some(ListeningPeer::start(
        "java",
        &[
            // A short-lived test server: no optimising JIT, one GC thread, sized for
            // one CPU.
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-XX:ActiveProcessorCount=1",
            "-cp",
            &classes.display().to_string(),
            "JavaHttpsPeer",
            &chain.display().to_string(),
            &key.display().to_string(),
            client_ca,
            protocol,
            "need",
        ],
    ))
}

fn foreign_ca(pki: &Pki) -> String {
    let path = pki.path("foreign.pem");
    std::fs::write(&path, pki.foreign.cert_pem()).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn java_refuses_our_certificate_silently_tls13() {
    let pki = Pki::new();
    let Some(java) = java_https(&pki, &foreign_ca(&pki), "TLSv1.3") else {
        return;
    };
    // TLS-only probe: the close comes in the post-handshake wait.
    let r = probe(&pki, target(java.addr, Mode::Mtls)).await;
    assert_failure(
        &r,
        "tls",
        "client_cert_rejected",
        &[
            "silent",
            "we sent our certificate",
            "TCP-level authorization deny",
        ],
    );
    // With a request (HTTP/1.1: the JDK server speaks no h2), on the response read.
    let mut t = target(java.addr, Mode::Mtls);
    t.http = Some(http_check("/"));
    let r = probe(&pki, t).await;
    assert_failure(&r, "tls", "client_cert_rejected", &["silent"]);
    // No certificate at all: required, not rejected.
    let mut t = target(java.addr, Mode::Tls);
    t.http = Some(http_check("/"));
    let r = probe(&pki, t).await;
    assert_failure(
        &r,
        "tls",
        "client_cert_required",
        &["silent", "we sent none"],
    );
    // And that refusal is what a certificate-less STRICT check wants to see.
    let mut t = target(java.addr, Mode::Tls);
    t.expect = Expect::Reject;
    assert_pass(&probe(&pki, t).await);
}

#[tokio::test]
async fn java_refuses_our_certificate_silently_tls12() {
    let pki = Pki::new();
    let Some(java) = java_https(&pki, &foreign_ca(&pki), "TLSv1.2") else {
        return;
    };
    // TLS 1.2 checks our certificate before the server's Finished: the close comes in
    // the middle of the handshake, right after our flight.
    let r = probe(&pki, target(java.addr, Mode::Mtls)).await;
    assert_failure(
        &r,
        "tls",
        "client_cert_rejected",
        &["silent", "before finishing the TLS handshake"],
    );
}

#[tokio::test]
async fn java_accepting_our_certificate_passes() {
    let pki = Pki::new();
    let ca = pki.path("root-cert.pem").display().to_string();
    let Some(java) = java_https(&pki, &ca, "TLSv1.3") else {
        return;
    };
    // It sends a session ticket after the handshake, then the response.
    let mut t = target(java.addr, Mode::Mtls);
    t.http = Some(http_check("/"));
    let r = probe(&pki, t).await;
    assert_pass(&r);
    assert_eq!(r.http.as_ref().map(|h| h.status), Some(200));
    // TLS-only: the ticket (or nothing within the wait) is a pass, not a close.
    assert_pass(&probe(&pki, target(java.addr, Mode::Mtls)).await);
}

#[tokio::test]
async fn a_close_after_anything_was_sent_stays_connection_closed() {
    let pki = Pki::new();
    // The demo's TCP-level deny asks for a certificate and closes with close_notify:
    // a record after the handshake, so not a silent refusal.
    let server = pki.strict_peer(HttpBehavior::CloseAfterHandshake).await;
    for t in [
        target(server.addr(), Mode::Mtls),
        http_target(server.addr(), Mode::Mtls),
    ] {
        let r = probe(&pki, t).await;
        assert_failure(&r, "request", "connection_closed", &[]);
    }
}

#[tokio::test]
async fn nginx_return_444_stays_connection_closed() {
    if !require("nginx", &["-v"]) {
        return;
    }
    let pki = Pki::new();
    let leaf = pki.server_leaf();
    let full = pki.path("nginx-full.crt");
    let key = pki.path("nginx.key");
    let chain: String = leaf.chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
    std::fs::write(&full, chain).unwrap();
    std::fs::write(&key, leaf.key_pem()).unwrap();
    let ca = pki.path("root-cert.pem");
    // `return 444` closes without a response and without close_notify: over TLS 1.3
    // after nginx's session tickets, over TLS 1.2 after nginx's Finished (which a TLS
    // 1.2 server sends only once it accepted our certificate). With and without a
    // client-certificate request, over h2 (a stream reset) and HTTP/1.1.
    for verify in ["on", "off"] {
        let block = format!(
            "    ssl_certificate {};\n    ssl_certificate_key {};\n\
             ssl_protocols TLSv1.2 TLSv1.3;\n\
             ssl_client_certificate {};\n    ssl_verify_client {verify};\n\
             location / {{ return 444; }}\n",
            full.display(),
            key.display(),
            ca.display()
        );
        let server = NginxServer::start("ssl http2", &block);
        for version in [TlsVersion::V1_3, TlsVersion::V1_2] {
            for alpn in ["h2", "http/1.1"] {
                let mut t = http_target(server.addr, Mode::Mtls);
                t.alpn = vec![alpn.into()];
                t.tls_versions = vec![version];
                let r = probe(&pki, t).await;
                assert_failure(&r, "request", "connection_closed", &[]);
            }
        }
    }
}
