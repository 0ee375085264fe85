//! The far side's view (issue 12, item 6): a probe of another agent's `[serve]` keeps
//! how that agent saw the connection, and says so when a proxy on the path terminated
//! our TLS and re-originated it with another identity. Real parts: the agent's own
//! `[serve]` listener in-process, and a TLS-terminating proxy with its own certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mtls_prober::agent::serve;
use mtls_prober::clock::SystemClock;
use mtls_prober::config::{ClientAuth as ServeAuth, IdentityConfig, Mode};
use mtls_prober::demo::peers::{ClientAuth, ServerOpts, server_config};
use mtls_prober::demo::pki::LeafSpec;
use mtls_prober::identity::Credentials;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::common::{CLIENT_ID, Pki, http_check, probe, target};

const PROXY_ID: &str = "spiffe://cluster.local/ns/edge/sa/gateway";

/// Starts the agent's `[serve]` with our own identity (agents share one).
async fn serve_agent(pki: &Pki) -> (SocketAddr, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let prober = crate::common::prober();
    let (_tx, creds) = watch::channel(Arc::new(pki.credentials(&prober)));
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(serve::run(
        listener,
        ServeAuth::Require,
        "node-b".into(),
        creds,
        async move {
            let _ = stopped.changed().await;
        },
    ));
    (addr, stop)
}

/// A proxy that terminates our mTLS (presenting the agent's identity, so the probe's
/// own checks pass) and re-originates it to `upstream` with its own certificate.
async fn reoriginating_proxy(pki: &Pki, upstream: SocketAddr) -> SocketAddr {
    let acceptor = TlsAcceptor::from(
        server_config(
            &pki.client,
            ClientAuth::Required(vec![pki.root.cert().clone()]),
            &ServerOpts::default(),
        )
        .unwrap(),
    );
    let gateway = pki.intermediate.issue(&LeafSpec::spiffe(PROXY_ID)).unwrap();
    let (cert, key) = pki.write_leaf("gateway", &gateway);
    let ids = IdentityConfig {
        cert,
        key,
        ..pki.identity_config()
    };
    let prober = crate::common::prober();
    let creds = Credentials::load(Some(&ids), prober.provider(), SystemTime::now());
    let client_key = creds.client.as_ref().unwrap().certified_key.clone();
    let mut upstream_target = target(upstream, Mode::Mtls);
    upstream_target.peer =
        mtls_prober::config::PeerExpectation::SpiffeId(CLIENT_ID.parse().unwrap());
    let connector = TlsConnector::from(
        mtls_prober::tls::client::client_config(
            &upstream_target,
            creds.bundle.clone().ok(),
            Some(client_key),
            prober.provider(),
            Arc::new(mtls_prober::clock::RustlsTime(Arc::new(SystemClock))),
        )
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, connector) = (acceptor.clone(), connector.clone());
            tokio::spawn(async move {
                let Ok(mut down) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(up) = TcpStream::connect(upstream).await else {
                    return;
                };
                let name = rustls_pki_types::ServerName::try_from("node-b.test").unwrap();
                let Ok(mut up) = connector.connect(name, up).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn the_far_side_view_is_kept_and_a_reoriginating_proxy_is_named() {
    let pki = Pki::new();
    let (agent, _stop) = serve_agent(&pki).await;
    let mut t = target(agent, Mode::Mtls);
    t.peer = mtls_prober::config::PeerExpectation::SpiffeId(CLIENT_ID.parse().unwrap());
    t.http = Some(http_check("/healthz"));
    t.timeout = Duration::from_secs(3);

    // Direct: the far side saw exactly us; nothing to say.
    let r = probe(&pki, t.clone()).await;
    assert!(r.ok, "{r:?}");
    let far = r.far_side.as_ref().expect("far_side from a [serve] answer");
    assert_eq!(far.source, "node-b");
    assert_eq!(far.peer_spiffe_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(far.spiffe_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(r.detail, None);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["far_side"]["source"], "node-b");
    assert_eq!(json["far_side"]["xfcc"], serde_json::Value::Null);

    // Through a proxy that re-originates TLS: the probe still passes (the proxy shows
    // the expected certificate), and the detail names the identity the far side saw.
    let proxy = reoriginating_proxy(&pki, agent).await;
    t.address.port = proxy.port();
    let r = probe(&pki, t.clone()).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(
        r.far_side.as_ref().unwrap().peer_spiffe_id.as_deref(),
        Some(PROXY_ID)
    );
    let detail = r.detail.as_deref().unwrap();
    assert!(
        detail.contains(&format!(
            "the far side (node-b) saw the client identity {PROXY_ID}, not ours ({CLIENT_ID})"
        )),
        "{detail}"
    );
    assert!(
        r.to_text().contains("far side: node-b saw us as"),
        "{}",
        r.to_text()
    );
}
