//! Name resolution with hickory-resolver (the resolver linkerd2-proxy uses): structured
//! errors tell "no such name" (`dns_not_found`) from a failing resolver (`dns_error`),
//! and `/etc/resolv.conf` search domains and `ndots` apply as in any pod.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use crate::classify::net::resolve_failure;
use crate::classify::{Failure, Reason};

/// A DNS resolver, built once and shared by all probes (it caches by TTL).
#[derive(Clone)]
pub struct Resolver {
    inner: Result<TokioResolver, String>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("ok", &self.inner.is_ok())
            .finish()
    }
}

impl Resolver {
    /// The system's resolver configuration, or `servers` when not empty.
    pub fn new(servers: &[SocketAddr]) -> Self {
        if servers.is_empty() {
            return Self::system();
        }
        let name_servers = servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        let mut builder = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::default(),
        );
        tune(builder.options_mut());
        Self {
            inner: builder
                .build()
                .map_err(|e| format!("building the resolver: {e}")),
        }
    }

    /// `/etc/resolv.conf` and `/etc/hosts`.
    pub fn system() -> Self {
        let inner = TokioResolver::builder_tokio()
            .and_then(|mut b| {
                tune(b.options_mut());
                b.build()
            })
            .map_err(|e| format!("reading the system resolver configuration: {e}"));
        Self { inner }
    }

    /// The addresses of `host` (an IP literal is returned as is, without a lookup).
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, Failure> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let resolver = self
            .inner
            .as_ref()
            .map_err(|e| Failure::new(Reason::DnsError, e.clone()))?;
        // A trailing dot marks a fully qualified name; hickory handles both forms.
        let lookup = resolver
            .lookup_ip(host)
            .await
            .map_err(|e| resolve_failure(host, &e))?;
        let addrs: Vec<IpAddr> = lookup.iter().collect();
        if addrs.is_empty() {
            return Err(Failure::new(
                Reason::DnsNotFound,
                format!("{host} has no A/AAAA records"),
            ));
        }
        Ok(addrs)
    }
}

fn tune(opts: &mut hickory_resolver::config::ResolverOpts) {
    // The probe's own stage deadline bounds the lookup; a shorter per-query timeout
    // lets the resolver try the next server before that deadline.
    opts.timeout = Duration::from_secs(2);
    opts.attempts = 2;
    opts.cache_size = 1024;
}
