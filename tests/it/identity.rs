//! The `identity` stage: SPIFFE ID, trust domain and DNS name expectations.

use mtls_prober::config::{Mode, PeerExpectation};
use mtls_prober::demo::pki::LeafSpec;

use crate::common::*;

async fn serve(pki: &Pki, spec: &LeafSpec) -> PeerServer {
    let leaf = pki.intermediate.issue(spec).unwrap();
    let config = pki.strict(&leaf, &ServerOpts::default());
    peer(Behavior::Tls {
        config,
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
}

#[tokio::test]
async fn wrong_spiffe_id() {
    let pki = Pki::new();
    let presented = "spiffe://cluster.local/ns/default/sa/frontend";
    let server = serve(&pki, &LeafSpec::spiffe(presented)).await;
    let r = probe(&pki, http_target(server.addr(), Mode::Mtls)).await;
    assert_failure(&r, "identity", "identity_mismatch", &[presented, SERVER_ID]);
    assert_eq!(
        r.peer.as_ref().and_then(|p| p.spiffe_id.as_deref()),
        Some(presented)
    );
    assert_eq!(
        r.timings_ms.request, None,
        "the request is not sent to a wrong peer"
    );
}

#[tokio::test]
async fn foreign_trust_domain() {
    let pki = Pki::new();
    let presented = "spiffe://other.mesh/ns/prod/sa/api";
    let server = serve(&pki, &LeafSpec::spiffe(presented)).await;
    let r = probe(&pki, target(server.addr(), Mode::Mtls)).await;
    assert_failure(
        &r,
        "identity",
        "trust_domain_mismatch",
        &["other.mesh", "cluster.local"],
    );
    // A trust-domain expectation with an alias accepts it; without, refuses it.
    let mut t = target(server.addr(), Mode::Mtls);
    t.peer = PeerExpectation::TrustDomain(vec![TD.parse().unwrap()]);
    let r = probe(&pki, t.clone()).await;
    assert_failure(
        &r,
        "identity",
        "trust_domain_mismatch",
        &["other.mesh", "cluster.local"],
    );
    t.peer = PeerExpectation::TrustDomain(vec![TD.parse().unwrap(), "other.mesh".parse().unwrap()]);
    assert_pass(&probe(&pki, t).await);
}

#[tokio::test]
async fn certificate_without_spiffe_id() {
    let pki = Pki::new();
    let server = serve(&pki, &LeafSpec::dns(&["api.prod.svc.cluster.local"])).await;
    let r = probe(&pki, target(server.addr(), Mode::Mtls)).await;
    assert_failure(
        &r,
        "identity",
        "no_identity",
        &["no SPIFFE ID", "api.prod.svc.cluster.local"],
    );
}

#[tokio::test]
async fn dns_name_expectation() {
    let pki = Pki::new();
    let server = serve(&pki, &LeafSpec::dns(&["api.prod.svc.cluster.local"])).await;
    let mut t = target(server.addr(), Mode::Mtls);
    t.peer = PeerExpectation::DnsName("api.prod.svc.cluster.local".into());
    assert_pass(&probe(&pki, t.clone()).await);
    t.peer = PeerExpectation::DnsName("web.prod.svc.cluster.local".into());
    let r = probe(&pki, t).await;
    assert_failure(
        &r,
        "identity",
        "identity_mismatch",
        &["web.prod.svc.cluster.local", "api.prod"],
    );
}
