//! One probe: `resolve → connect → tls → certificate → identity → request`, then
//! `expect`. Stops at the first failing layer; every stage is bounded by the probe's
//! deadline and reports its own timeout reason.
//!
//! [`Prober::prepare`] builds what a target needs once (its rustls `ClientConfig`);
//! [`Prober::run`] is the per-probe hot path and returns a [`ProbeReport`] — data only.

mod expect;
pub mod far_side;
mod grpc;
mod handshake;
mod post_handshake;
mod request;
pub mod resolve;

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use crate::classify::net::{connect_failure, connect_timeout, resolve_timeout};
use crate::classify::tls::HandshakeContext;
use crate::classify::{Failure, Reason};
use crate::clock::{Clock, RustlsTime};
use crate::config::{HttpCheck, Mode, PeerExpectation, StatusSet, Target, TlsVersion};
pub use crate::identity::Credentials;
use crate::identity::load::{TrustBundle, rfc3339};
use crate::report::{ProbeReport, Timings};
use crate::tls::capture::{CaptureSlot, Sniff};
use crate::tls::client::client_config;
use crate::tls::trust::AnchorCache;
pub use resolve::Resolver;

/// Runs probes. Cheap to clone; shared by every edge.
#[derive(Clone, Debug)]
pub struct Prober {
    provider: Arc<CryptoProvider>,
    resolver: Resolver,
    clock: Arc<dyn Clock>,
    configs: Arc<ConfigCache>,
    anchors: Arc<AnchorCache>,
}

/// What makes two targets' `ClientConfig`s identical: the TLS parameters and the exact
/// credentials (by identity). Edges that share it share one config, so an identity
/// rotation rebuilds one config per distinct expectation, not one per edge.
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
struct ConfigKey {
    mode: Mode,
    peer: PeerExpectation,
    alpn: Vec<String>,
    versions: Vec<TlsVersion>,
    bundle: usize,
    client: usize,
}

/// Built configs, held weakly: a config lives as long as a prepared target uses it.
#[derive(Debug, Default)]
struct ConfigCache(
    std::sync::Mutex<std::collections::HashMap<ConfigKey, std::sync::Weak<ClientConfig>>>,
);

/// A target with everything built that does not change between probes.
#[derive(Debug)]
pub struct PreparedTarget {
    /// The target.
    pub target: Arc<Target>,
    setup: Setup,
    /// What we offer, as failure details name it ("1.2, 1.3", "h2, http/1.1"). Every
    /// edge keeps its prepared target, and nearly all offer one of a few lists: those
    /// are static text, not two strings per edge.
    versions_text: Cow<'static, str>,
    alpn_text: Cow<'static, str>,
}

#[derive(Debug)]
enum Setup {
    Plaintext,
    Tls {
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        /// Our certificate's `not_after` (mtls), checked before every probe.
        identity_not_after: Option<SystemTime>,
        /// Our SPIFFE ID (mtls), to compare with how the far side saw us.
        own_spiffe_id: Option<String>,
        bundle: Option<Arc<TrustBundle>>,
    },
    Unavailable(Failure),
}

/// The request used when a plaintext probe must be refused but has no `[http]`: a
/// silent TCP connection would prove nothing either way.
fn default_http() -> HttpCheck {
    HttpCheck {
        method: "GET".into(),
        path: "/".into(),
        expect_status: StatusSet::default_success(),
        headers: Vec::new(),
        max_body_bytes: 64 * 1024,
    }
}

impl Prober {
    /// A prober with the aws-lc-rs provider.
    pub fn new(resolver: Resolver, clock: Arc<dyn Clock>) -> Self {
        Self {
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            resolver,
            clock,
            configs: Arc::default(),
            anchors: Arc::default(),
        }
    }

    /// The crypto provider (shared with identity loading).
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Builds a target's TLS configuration from the current credentials.
    pub fn prepare(&self, target: Arc<Target>, creds: &Credentials) -> PreparedTarget {
        let versions_text = versions_text(&target.tls_versions);
        let alpn_text = alpn_text(&target.alpn);
        let setup = self.setup(&target, creds);
        PreparedTarget {
            target,
            setup,
            versions_text,
            alpn_text,
        }
    }

    fn setup(&self, target: &Target, creds: &Credentials) -> Setup {
        if target.mode == Mode::Plaintext {
            return Setup::Plaintext;
        }
        let insecure = target.peer == PeerExpectation::Insecure;
        let own = target.ca.as_ref().map(|src| self.anchors.bundle(src));
        let bundle = match (own.as_ref().unwrap_or(&creds.bundle), insecure) {
            (Ok(b), _) => Some(b.clone()),
            (Err(_), true) => None,
            (Err(e), false) => {
                return Setup::Unavailable(Failure::new(
                    Reason::IdentityUnavailable,
                    format!("the trust bundle is unavailable, the target was not contacted: {e}"),
                ));
            }
        };
        let own_spiffe_id = match (target.mode, &creds.client) {
            (Mode::Mtls, Ok(id)) => id.spiffe_id.as_ref().map(ToString::to_string),
            _ => None,
        };
        let (key, identity_not_after) = match (target.mode, &creds.client) {
            (Mode::Mtls, Ok(id)) => (Some(id.certified_key.clone()), Some(id.leaf.not_after)),
            (Mode::Mtls, Err(e)) => {
                return Setup::Unavailable(Failure::new(
                    Reason::IdentityUnavailable,
                    format!(
                        "our client certificate is unavailable, the target was not contacted: {e}"
                    ),
                ));
            }
            _ => (None, None),
        };
        let server_name = match ServerName::try_from(target.server_name.clone()) {
            Ok(n) => n,
            Err(e) => {
                return Setup::Unavailable(Failure::new(
                    Reason::HandshakeError,
                    format!("invalid server name {:?}: {e}", target.server_name),
                ));
            }
        };
        let key_id = ConfigKey {
            mode: target.mode,
            peer: target.peer.clone(),
            alpn: target.alpn.clone(),
            versions: target.tls_versions.clone(),
            bundle: bundle.as_ref().map_or(0, |b| Arc::as_ptr(b) as usize),
            client: key.as_ref().map_or(0, |k| Arc::as_ptr(k) as usize),
        };
        let mut cache = self
            .configs
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(config) = cache.get(&key_id).and_then(std::sync::Weak::upgrade) {
            return Setup::Tls {
                config,
                server_name,
                identity_not_after,
                own_spiffe_id,
                bundle,
            };
        }
        // Forget configs no prepared target holds any more (old credentials).
        cache.retain(|_, w| w.strong_count() > 0);
        let time = Arc::new(RustlsTime(self.clock.clone()));
        let built = client_config(target, bundle.clone(), key, &self.provider, time);
        if let Ok(config) = &built {
            cache.insert(key_id, Arc::downgrade(config));
        }
        drop(cache);
        match built {
            Ok(config) => Setup::Tls {
                config,
                server_name,
                identity_not_after,
                own_spiffe_id,
                bundle,
            },
            Err(e) => Setup::Unavailable(Failure::new(
                Reason::HandshakeError,
                format!("cannot build the TLS client configuration: {e}"),
            )),
        }
    }

    /// Runs one probe of a prepared target.
    pub async fn run(&self, prepared: &PreparedTarget, source: &str) -> ProbeReport {
        let target = &prepared.target;
        let started = Instant::now();
        let deadline = started + target.timeout;
        let mut run = Run {
            report: ProbeReport {
                source: source.to_owned(),
                target: target.name.clone(),
                address: target.address.to_string(),
                mode: target.mode,
                expect: target.expect,
                ok: false,
                stage: None,
                reason: None,
                detail: None,
                hint: None,
                timings_ms: Timings::default(),
                tls: None,
                peer: None,
                http: None,
                far_side: None,
                grpc: None,
                at: rfc3339(self.clock.now()),
            },
            started,
            deadline,
            connected: false,
            silence: None,
        };
        let outcome = self.walk(prepared, &mut run).await;
        let (ok, failure, detail) = expect::apply(target, &run, outcome);
        run.report.ok = ok;
        run.report.timings_ms.total = ms(started.elapsed());
        if let Some(f) = failure {
            run.report.stage = Some(f.reason.stage());
            run.report.reason = Some(f.reason);
            run.report.hint = Some(f.hint());
            run.report.detail = Some(f.detail);
        } else {
            run.report.detail = detail;
        }
        let ours = match &prepared.setup {
            Setup::Tls { own_spiffe_id, .. } => own_spiffe_id.as_deref(),
            _ => None,
        };
        if let Some(note) = run
            .report
            .far_side
            .as_ref()
            .and_then(|f| far_side::note(f, ours))
        {
            run.report.detail = Some(match run.report.detail.take() {
                Some(d) => format!("{d}; {note}"),
                None => note,
            });
        }
        run.report
    }

    async fn walk(&self, prepared: &PreparedTarget, run: &mut Run) -> Result<(), Failure> {
        let target = &prepared.target;
        if let Setup::Unavailable(f) = &prepared.setup {
            return Err(f.clone());
        }
        if let Setup::Tls {
            identity_not_after: Some(not_after),
            ..
        } = &prepared.setup
        {
            let now = self.clock.now();
            if now > *not_after {
                return Err(Failure::new(
                    Reason::IdentityUnavailable,
                    format!(
                        "our client certificate expired at {} (local clock {}); the target was \
                         not contacted",
                        rfc3339(*not_after),
                        rfc3339(now)
                    ),
                ));
            }
        }

        let t = Instant::now();
        let host = &target.address.host;
        let addrs = match timeout_at(run.deadline, self.resolver.lookup(host)).await {
            Ok(r) => r?,
            Err(_) => return Err(resolve_timeout(host, target.timeout)),
        };
        run.report.timings_ms.resolve = Some(ms(t.elapsed()));
        if let Some(ip) = addrs.first() {
            run.report.address = SocketAddr::new(*ip, target.address.port).to_string();
        }

        let t = Instant::now();
        let (tcp, addr) =
            connect(&addrs, target.address.port, run.deadline, target.timeout).await?;
        run.report.timings_ms.connect = Some(ms(t.elapsed()));
        run.report.address = addr.to_string();
        run.connected = true;

        let wire = CaptureSlot::default();
        let tcp = Sniff::new(tcp, wire.clone());
        match &prepared.setup {
            Setup::Plaintext => {
                if let Some(g) = &target.grpc {
                    // h2c with prior knowledge: the call a plaintext client would make.
                    let hs = HandshakeContext {
                        cert_requested: false,
                        cert_sent: false,
                        first_bytes: &[],
                        bytes_read: 0,
                        offered_versions: "",
                        offered_alpn: "",
                        after_handshake: true,
                    };
                    return grpc::exchange(tcp, target, g, run, &wire, hs, false).await;
                }
                let http = match (&target.http, target.expect) {
                    (Some(h), _) => Some(h.clone()),
                    (None, crate::config::Expect::Reject) => Some(default_http()),
                    (None, crate::config::Expect::Success) => None,
                };
                match http {
                    Some(http) => {
                        let hs = HandshakeContext {
                            cert_requested: false,
                            cert_sent: false,
                            first_bytes: &[],
                            bytes_read: 0,
                            offered_versions: "",
                            offered_alpn: "",
                            after_handshake: true,
                        };
                        request::exchange(tcp, false, target, &http, run, &wire, hs, false).await
                    }
                    None => Ok(()),
                }
            }
            Setup::Tls {
                config,
                server_name,
                bundle,
                ..
            } => {
                self.tls_and_request(
                    prepared,
                    config,
                    server_name,
                    bundle.as_deref(),
                    tcp,
                    &wire,
                    run,
                )
                .await
            }
            Setup::Unavailable(f) => Err(f.clone()),
        }
    }
}

/// `versions` as failure details list them.
fn versions_text(versions: &[TlsVersion]) -> Cow<'static, str> {
    use TlsVersion::{V1_2, V1_3};
    match versions {
        [] => Cow::Borrowed(""),
        [V1_2] => Cow::Borrowed("1.2"),
        [V1_3] => Cow::Borrowed("1.3"),
        [V1_2, V1_3] => Cow::Borrowed("1.2, 1.3"),
        [V1_3, V1_2] => Cow::Borrowed("1.3, 1.2"),
        _ => Cow::Owned(
            versions
                .iter()
                .map(|v| match v {
                    V1_2 => "1.2",
                    V1_3 => "1.3",
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
    }
}

/// `alpn` as failure details list it.
fn alpn_text(alpn: &[String]) -> Cow<'static, str> {
    const COMMON: [&str; 5] = ["", "h2", "http/1.1", "h2, http/1.1", "http/1.1, h2"];
    let text = alpn.join(", ");
    match COMMON.iter().find(|c| **c == text) {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(text),
    }
}

impl PreparedTarget {
    /// The handshake's facts for classifying what follows it (the request or the gRPC
    /// call): whether a certificate was asked for and sent; the wire's bytes are the
    /// application's from here on.
    fn after_handshake(&self, wire: &CaptureSlot) -> HandshakeContext<'_> {
        let (cert_requested, cert_sent) = {
            let c = wire.lock();
            (c.cert_requested, c.cert_sent)
        };
        HandshakeContext {
            cert_requested,
            cert_sent,
            first_bytes: &[],
            bytes_read: 0,
            offered_versions: &self.versions_text,
            offered_alpn: &self.alpn_text,
            after_handshake: true,
        }
    }

    fn context<'a>(
        &'a self,
        c: &'a crate::tls::capture::Capture,
        after: bool,
    ) -> HandshakeContext<'a> {
        HandshakeContext {
            cert_requested: c.cert_requested,
            cert_sent: c.cert_sent,
            first_bytes: &c.first_bytes,
            bytes_read: c.bytes_read,
            offered_versions: &self.versions_text,
            offered_alpn: &self.alpn_text,
            after_handshake: after,
        }
    }
}

/// Mutable state of one probe while it walks the layers.
struct Run {
    report: ProbeReport,
    #[allow(dead_code)]
    started: Instant,
    deadline: Instant,
    /// The TCP connect succeeded (a refusal after this proves something).
    connected: bool,
    /// Set when a TLS 1.3 server asked for a client certificate and the handshake
    /// finished: what tells a silent client-certificate refusal from a close (SPEC §4).
    silence: Option<Silence>,
}

/// The wire as it stood when a handshake with a certificate request finished.
struct Silence {
    wire: CaptureSlot,
    bytes_at_handshake: u64,
}

impl Silence {
    /// Nothing has arrived since the handshake: no session ticket, no alert (not even
    /// close_notify), no HTTP/2 SETTINGS, no response byte.
    fn unbroken(&self) -> bool {
        self.wire.lock().bytes_read == self.bytes_at_handshake
    }
}

impl Run {
    /// Whether the server asked for a certificate and has been silent since the
    /// handshake; a close now is a silent client-certificate refusal.
    fn silent_since_handshake(&self) -> bool {
        self.silence.as_ref().is_some_and(Silence::unbroken)
    }
}

async fn connect(
    addrs: &[IpAddr],
    port: u16,
    deadline: Instant,
    budget: Duration,
) -> Result<(TcpStream, SocketAddr), Failure> {
    let mut last = None;
    for ip in addrs {
        let addr = SocketAddr::new(*ip, port);
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                // Probes send one small request; Nagle would only add latency.
                let _ = s.set_nodelay(true);
                return Ok((s, addr));
            }
            Ok(Err(e)) => last = Some(connect_failure(&addr.to_string(), &e)),
            Err(_) => return Err(connect_timeout(&addr.to_string(), budget)),
        }
    }
    Err(last.unwrap_or_else(|| Failure::new(Reason::DnsNotFound, "no addresses to connect to")))
}

/// A close or reset as the transport reports it (no TLS error inside).
fn is_close(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
    )
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::clock::SystemClock;
    use crate::config::{Expect, HostPort, Origin};
    use crate::demo::pki::{Ca, LeafSpec};
    use crate::identity::load::{ClientIdentity, TrustBundle};

    #[test]
    fn offered_lists_read_the_same_whether_static_or_built() {
        use TlsVersion::{V1_2, V1_3};
        for (versions, text) in [
            (&[][..], ""),
            (&[V1_3][..], "1.3"),
            (&[V1_2, V1_3][..], "1.2, 1.3"),
            (&[V1_3, V1_2, V1_3][..], "1.3, 1.2, 1.3"),
        ] {
            assert_eq!(versions_text(versions), text);
        }
        let alpn = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(matches!(
            alpn_text(&alpn(&["h2", "http/1.1"])),
            Cow::Borrowed("h2, http/1.1")
        ));
        assert_eq!(alpn_text(&alpn(&["spiffe", "h2"])), "spiffe, h2");
        assert_eq!(alpn_text(&[]), "");
    }

    fn target(name: &str, peer: &str) -> Arc<Target> {
        Arc::new(Target {
            name: name.into(),
            address: HostPort {
                host: "127.0.0.1".into(),
                port: 1,
            },
            mode: Mode::Mtls,
            expect: Expect::Success,
            peer: PeerExpectation::SpiffeId(peer.parse().unwrap()),
            server_name: format!("{name}.svc"),
            alpn: vec!["h2".into()],
            tls_versions: vec![TlsVersion::V1_3],
            ca: None,
            verify_strict: false,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            http: None,
            grpc: None,
            origin: Origin::Configured,
            fleet: Default::default(),
        })
    }

    fn creds(prober: &Prober) -> Credentials {
        let root = Ca::root("root").unwrap();
        let leaf = root
            .issue(&LeafSpec::spiffe("spiffe://td/ns/a/sa/b"))
            .unwrap();
        let p = std::path::Path::new("mem");
        let bundle = TrustBundle::from_certs(p, vec![root.cert().clone()], [0; 32]).unwrap();
        let client = ClientIdentity::from_parts(
            p,
            p,
            leaf.chain.clone(),
            leaf.key(),
            &bundle,
            prober.provider(),
            SystemTime::now(),
            [0; 32],
        )
        .unwrap();
        Credentials {
            bundle: Ok(Arc::new(bundle)),
            client: Ok(Arc::new(client)),
        }
    }

    fn config_of(p: &PreparedTarget) -> *const ClientConfig {
        match &p.setup {
            Setup::Tls { config, .. } => Arc::as_ptr(config),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn edges_with_the_same_tls_parameters_share_one_config() {
        let prober = Prober::new(Resolver::system(), Arc::new(SystemClock));
        let c1 = creds(&prober);
        let a = prober.prepare(target("a", "spiffe://td/ns/x/sa/y"), &c1);
        let b = prober.prepare(target("b", "spiffe://td/ns/x/sa/y"), &c1);
        let other = prober.prepare(target("c", "spiffe://td/ns/x/sa/z"), &c1);
        assert_eq!(config_of(&a), config_of(&b));
        assert_ne!(config_of(&a), config_of(&other));
        // New credentials (a rotation): a new config.
        let c2 = creds(&prober);
        let a2 = prober.prepare(target("a", "spiffe://td/ns/x/sa/y"), &c2);
        assert_ne!(config_of(&a), config_of(&a2));
        // Once no prepared target holds the old ones, the cache forgets them.
        drop((a, b, other));
        let _ = prober.prepare(target("d", "spiffe://td/ns/x/sa/w"), &c2);
        assert_eq!(prober.configs.0.lock().unwrap().len(), 2);
    }
}
