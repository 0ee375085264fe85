//! The `certificate` stage: the peer's chain against our trust bundle.

use mtls_prober::config::Mode;
use mtls_prober::demo::pki::{LeafSpec, Usage};
use mtls_prober::identity::load::rfc3339;
use mtls_prober::tls::peer::CertSummary;

use crate::common::*;

async fn serve(pki: &Pki, leaf: &mtls_prober::demo::pki::Leaf) -> PeerServer {
    let config = pki.strict(leaf, &ServerOpts::default());
    peer(Behavior::Tls {
        config,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
}

#[tokio::test]
async fn expired_peer_certificate() {
    let pki = Pki::new();
    let leaf = pki
        .intermediate
        .issue(&LeafSpec::spiffe(SERVER_ID).expired())
        .unwrap();
    let server = serve(&pki, &leaf).await;
    let r = probe(&pki, http_target(server.addr(), Mode::Mtls)).await;
    let not_after = rfc3339(CertSummary::parse(leaf.leaf()).unwrap().not_after);
    assert_failure(
        &r,
        "certificate",
        "cert_expired",
        &[&not_after, "local clock", "leaf"],
    );
    let peer = r
        .peer
        .as_ref()
        .expect("the expired certificate is still reported");
    assert_eq!(peer.not_after, not_after);
    assert_eq!(peer.chain_len, 2);
    assert!(peer.root_sha256.is_some(), "the root it would chain to");
}

#[tokio::test]
async fn not_yet_valid_peer_certificate() {
    let pki = Pki::new();
    let leaf = pki
        .intermediate
        .issue(&LeafSpec::spiffe(SERVER_ID).not_yet_valid())
        .unwrap();
    let server = serve(&pki, &leaf).await;
    let r = probe(&pki, target(server.addr(), Mode::Mtls)).await;
    let not_before = rfc3339(CertSummary::parse(leaf.leaf()).unwrap().not_before);
    assert_failure(
        &r,
        "certificate",
        "cert_not_yet_valid",
        &[&not_before, "clock skew"],
    );
}

#[tokio::test]
async fn chain_from_an_unknown_root_is_untrusted() {
    let pki = Pki::new();
    let leaf = pki.foreign.issue(&LeafSpec::spiffe(SERVER_ID)).unwrap();
    let server = serve(&pki, &leaf).await;
    let r = probe(&pki, target(server.addr(), Mode::Mtls)).await;
    assert_failure(
        &r,
        "certificate",
        "cert_untrusted",
        &["Foreign Root CA", "Mesh Root CA", "root-cert.pem"],
    );
    assert_eq!(
        r.peer.as_ref().and_then(|p| p.spiffe_id.as_deref()),
        Some(SERVER_ID)
    );
}

#[tokio::test]
async fn certificate_without_server_usage_is_invalid() {
    let pki = Pki::new();
    let leaf = pki
        .intermediate
        .issue(&LeafSpec::spiffe(SERVER_ID).with_usage(Usage::Client))
        .unwrap();
    let server = serve(&pki, &leaf).await;
    let r = probe(&pki, target(server.addr(), Mode::Mtls)).await;
    assert_failure(&r, "certificate", "cert_invalid", &["serverAuth"]);
}
