//! The demo's catalogue of services (SPEC §9): the §9 list first, then one service per
//! remaining failure reason, each with what it demonstrates and the outcome its probe
//! must show. `mesh.rs` starts them and writes the config.

use std::sync::Arc;

use tonic_health::pb::health_check_response::ServingStatus;

use super::peers::{
    Behavior, ClientAuth, GrpcBehavior, HttpBehavior, RawAction, Response, ServerOpts,
    server_config,
};
use super::pki::{Ca, Leaf, LeafSpec};
use crate::classify::Reason;

/// The mesh's trust domain.
pub const TRUST_DOMAIN: &str = "cluster.local";

/// What a demo edge is expected to show.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Expected {
    /// The probe passes.
    Pass,
    /// The probe fails with this reason.
    Fail(Reason),
}

/// One service to start: its name, behaviour and how the config probes it.
pub(super) struct Service {
    pub(super) name: &'static str,
    pub(super) what: &'static str,
    pub(super) server: Server,
    /// Extra `[[target]]` keys (mode, expectation…), one per line.
    pub(super) keys: String,
    pub(super) http: bool,
    pub(super) expected: Expected,
    pub(super) companion: Option<Expected>,
}

/// What stands behind a demo service's name.
pub(super) enum Server {
    Peer(Behavior),
    Refused,
    FullBacklog,
    /// A name only: not in DNS, or failing in DNS.
    Unresolvable {
        fail: bool,
    },
}

/// The SPIFFE ID of a demo workload.
fn spiffe(ns: &str, sa: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/ns/{ns}/sa/{sa}")
}

fn strict_config(
    leaf: &Leaf,
    root: &Ca,
    opts: &ServerOpts,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    server_config(leaf, ClientAuth::Required(vec![root.cert().clone()]), opts)
}

fn tls(config: Arc<rustls::ServerConfig>, http: HttpBehavior) -> Server {
    Server::Peer(Behavior::Tls { config, http })
}

fn ok() -> HttpBehavior {
    HttpBehavior::Respond(Response::ok())
}

/// Every demo service: the §9 list first, then one per remaining reason.
#[allow(clippy::too_many_lines)]
pub(super) fn services(
    root: &Ca,
    ca: &Ca,
    foreign: &Ca,
) -> Result<Vec<Service>, Box<dyn std::error::Error>> {
    use Expected::{Fail, Pass};
    use Reason as R;
    let leaf = |ns: &str, sa: &str| ca.issue(&LeafSpec::spiffe(&spiffe(ns, sa)));
    let d = ServerOpts::default();
    let h2 = ServerOpts::default().with_alpn(&[b"h2"]);
    let id = |ns: &str, sa: &str| format!("spiffe_id = \"{}\"\n", spiffe(ns, sa));
    let svc = |name, what, server, keys: String, http, expected| Service {
        name,
        what,
        server,
        keys,
        http,
        expected,
        companion: None,
    };
    let v = vec![
        Service {
            companion: Some(Pass),
            keys: format!("{}verify_strict = true\n", id("production", "api")),
            ..svc(
                "production/api",
                "healthy mTLS service, STRICT",
                tls(strict_config(&leaf("production", "api")?, root, &d)?, ok()),
                String::new(),
                true,
                Pass,
            )
        },
        Service {
            companion: Some(Fail(R::PlaintextAccepted)),
            keys: format!("{}verify_strict = true\n", id("staging", "api")),
            ..svc(
                "staging/api",
                "PERMISSIVE: answers mTLS and plaintext",
                Server::Peer(Behavior::Permissive {
                    config: strict_config(&leaf("staging", "api")?, root, &d)?,
                    http: ok(),
                }),
                String::new(),
                true,
                Pass,
            )
        },
        svc(
            "legacy/app",
            "plaintext only: no sidecar injected",
            Server::Peer(Behavior::Plaintext { http: ok() }),
            id("legacy", "app"),
            true,
            Fail(R::NotTls),
        ),
        svc(
            "billing/api",
            "its certificate expired an hour ago",
            tls(
                strict_config(
                    &ca.issue(&LeafSpec::spiffe(&spiffe("billing", "api")).expired())?,
                    root,
                    &d,
                )?,
                ok(),
            ),
            id("billing", "api"),
            true,
            Fail(R::CertExpired),
        ),
        svc(
            "payments/api",
            "its certificate is valid only from an hour from now",
            tls(
                strict_config(
                    &ca.issue(&LeafSpec::spiffe(&spiffe("payments", "api")).not_yet_valid())?,
                    root,
                    &d,
                )?,
                ok(),
            ),
            id("payments", "api"),
            true,
            Fail(R::CertNotYetValid),
        ),
        svc(
            "frontend/web",
            "presents another workload's SPIFFE ID",
            tls(
                strict_config(&leaf("default", "frontend")?, root, &d)?,
                ok(),
            ),
            id("frontend", "web"),
            true,
            Fail(R::IdentityMismatch),
        ),
        svc(
            "partner/api",
            "a workload of a foreign trust domain",
            tls(
                strict_config(
                    &ca.issue(&LeafSpec::spiffe(
                        "spiffe://partner.example/ns/partner/sa/api",
                    ))?,
                    root,
                    &d,
                )?,
                ok(),
            ),
            id("partner", "api"),
            true,
            Fail(R::TrustDomainMismatch),
        ),
        svc(
            "shadow/api",
            "a certificate from a CA we do not trust",
            tls(
                strict_config(
                    &foreign.issue(&LeafSpec::spiffe(&spiffe("shadow", "api")))?,
                    root,
                    &d,
                )?,
                ok(),
            ),
            id("shadow", "api"),
            true,
            Fail(R::CertUntrusted),
        ),
        svc(
            "orders/api",
            "trusts only another root for clients: refuses our certificate",
            tls(
                server_config(
                    &leaf("orders", "api")?,
                    ClientAuth::Required(vec![foreign.cert().clone()]),
                    &d,
                )?,
                ok(),
            ),
            id("orders", "api"),
            true,
            Fail(R::ClientCertRejected),
        ),
        svc(
            "legacy/tls12",
            "TLS 1.2 only, probed with TLS 1.3 only",
            tls(
                strict_config(&leaf("legacy", "tls12")?, root, &ServerOpts::tls12_only())?,
                ok(),
            ),
            format!("{}tls_versions = [\"1.3\"]\n", id("legacy", "tls12")),
            true,
            Fail(R::ProtocolVersion),
        ),
        svc(
            "reports/api",
            "an AuthorizationPolicy denies us (Istio RBAC 403)",
            tls(
                strict_config(&leaf("reports", "api")?, root, &d)?,
                HttpBehavior::Respond(Response::istio_rbac_denied()),
            ),
            id("reports", "api"),
            true,
            Fail(R::RbacDenied),
        ),
        svc(
            "gateway/api",
            "its sidecar fails mTLS toward the upstream (Envoy 503)",
            tls(
                strict_config(&leaf("gateway", "api")?, root, &d)?,
                HttpBehavior::Respond(Response::envoy_upstream_tls_error()),
            ),
            id("gateway", "api"),
            true,
            Fail(R::UpstreamTlsError),
        ),
        svc(
            "batch/worker",
            "accepts TCP and never answers (blackhole)",
            Server::Peer(Behavior::Blackhole),
            id("batch", "worker"),
            true,
            Fail(R::HandshakeTimeout),
        ),
        svc(
            "inventory/api",
            "nothing listens on the port",
            Server::Refused,
            id("inventory", "api"),
            true,
            Fail(R::ConnectionRefused),
        ),
        // Beyond §9: one service for each remaining reason that loopback can show.
        svc(
            "production/api-anonymous",
            "the STRICT service probed without a client certificate",
            tls(strict_config(&leaf("production", "api")?, root, &d)?, ok()),
            format!("mode = \"tls\"\n{}", id("production", "api")),
            false,
            Fail(R::ClientCertRequired),
        ),
        svc(
            "production/api-strict",
            "proves a client without a certificate is refused",
            tls(strict_config(&leaf("production", "api")?, root, &d)?, ok()),
            format!(
                "mode = \"tls\"\nexpect = \"reject\"\n{}",
                id("production", "api")
            ),
            false,
            Pass,
        ),
        svc(
            "dev/api",
            "does not require client certificates (expect = \"reject\")",
            tls(
                server_config(&leaf("dev", "api")?, ClientAuth::None, &d)?,
                ok(),
            ),
            format!("mode = \"tls\"\nexpect = \"reject\"\n{}", id("dev", "api")),
            false,
            Fail(R::UnexpectedSuccess),
        ),
        svc(
            "search/api",
            "its certificate has DNS names but no SPIFFE ID",
            tls(
                strict_config(
                    &ca.issue(&LeafSpec::dns(&["api.search.svc.cluster.local"]))?,
                    root,
                    &d,
                )?,
                ok(),
            ),
            id("search", "api"),
            true,
            Fail(R::NoIdentity),
        ),
        svc(
            "cache/redis",
            "speaks only an application protocol we do not offer",
            tls(
                strict_config(
                    &leaf("cache", "redis")?,
                    root,
                    &ServerOpts::default().with_alpn(&[b"redis"]),
                )?,
                ok(),
            ),
            id("cache", "redis"),
            true,
            Fail(R::AlpnMismatch),
        ),
        svc(
            "crypto/legacy",
            "offers only cipher suites we do not support",
            tls(
                strict_config(
                    &leaf("crypto", "legacy")?,
                    root,
                    &ServerOpts {
                        tls12_suites_only_rsa: true,
                        ..ServerOpts::default()
                    },
                )?,
                ok(),
            ),
            id("crypto", "legacy"),
            true,
            Fail(R::NoCommonCipher),
        ),
        svc(
            "queue/broker",
            "hangs up after our ClientHello",
            Server::Peer(Behavior::AfterClientHello(RawAction::Reset)),
            id("queue", "broker"),
            true,
            Fail(R::PeerClosed),
        ),
        svc(
            "metrics/exporter",
            "answers our ClientHello with an internal_error alert",
            Server::Peer(Behavior::AfterClientHello(RawAction::Send(vec![
                21, 3, 3, 0, 2, 2, 80,
            ]))),
            id("metrics", "exporter"),
            true,
            Fail(R::HandshakeError),
        ),
        svc(
            "catalog/api",
            "the application answers 500",
            tls(
                strict_config(&leaf("catalog", "api")?, root, &d)?,
                HttpBehavior::Respond(Response::status(500)),
            ),
            id("catalog", "api"),
            true,
            Fail(R::UnexpectedStatus),
        ),
        svc(
            "checkout/api",
            "its sidecar has no healthy upstream (Envoy 503)",
            tls(
                strict_config(&leaf("checkout", "api")?, root, &d)?,
                HttpBehavior::Respond(Response::envoy_no_healthy_upstream()),
            ),
            id("checkout", "api"),
            true,
            Fail(R::UpstreamUnavailable),
        ),
        svc(
            "analytics/api",
            "completes TLS, then never answers the request",
            tls(
                strict_config(&leaf("analytics", "api")?, root, &d)?,
                HttpBehavior::Silent,
            ),
            id("analytics", "api"),
            true,
            Fail(R::RequestTimeout),
        ),
        svc(
            "auth/tcp",
            "a TCP-level authorization deny: closes after the handshake",
            tls(
                strict_config(&leaf("auth", "tcp")?, root, &d)?,
                HttpBehavior::CloseAfterHandshake,
            ),
            id("auth", "tcp"),
            true,
            Fail(R::ConnectionClosed),
        ),
        svc(
            "events/api",
            "answers with a malformed status line",
            tls(
                strict_config(
                    &leaf("events", "api")?,
                    root,
                    &ServerOpts::default().with_alpn(&[b"http/1.1"]),
                )?,
                HttpBehavior::Raw(b"HTTP/1.1 2OO OK\r\n\r\n".to_vec()),
            ),
            id("events", "api"),
            true,
            Fail(R::ProtocolError),
        ),
        svc(
            "firewalled/db",
            "packets are dropped (its accept queue is full)",
            Server::FullBacklog,
            id("firewalled", "db"),
            true,
            Fail(R::ConnectTimeout),
        ),
        svc(
            "ghost/api",
            "a Service name that does not exist",
            Server::Unresolvable { fail: false },
            id("ghost", "api"),
            true,
            Fail(R::DnsNotFound),
        ),
        svc(
            "flaky-dns/api",
            "a name whose DNS lookups fail (SERVFAIL)",
            Server::Unresolvable { fail: true },
            id("flaky-dns", "api"),
            true,
            Fail(R::DnsError),
        ),
        // gRPC services (SPEC §13): grpc.health.v1 over mTLS, with the h2c companion.
        Service {
            companion: Some(Pass),
            ..svc(
                "shipping/grpc",
                "healthy gRPC service: grpc.health.v1 SERVING, STRICT",
                tls(
                    strict_config(&leaf("shipping", "grpc")?, root, &h2)?,
                    HttpBehavior::Grpc(GrpcBehavior::health(
                        "shipping.v1.Shipping",
                        ServingStatus::Serving,
                    )),
                ),
                format!(
                    "{}verify_strict = true\n[target.grpc]\nservice = \"shipping.v1.Shipping\"\n",
                    id("shipping", "grpc")
                ),
                false,
                Pass,
            )
        },
        svc(
            "ledger/grpc",
            "gRPC service whose health check says NOT_SERVING",
            tls(
                strict_config(&leaf("ledger", "grpc")?, root, &h2)?,
                HttpBehavior::Grpc(GrpcBehavior::health(
                    "ledger.v1.Ledger",
                    ServingStatus::NotServing,
                )),
            ),
            format!(
                "{}[target.grpc]\nservice = \"ledger.v1.Ledger\"\n",
                id("ledger", "grpc")
            ),
            false,
            Fail(R::UnexpectedStatus),
        ),
    ];
    Ok(v)
}
