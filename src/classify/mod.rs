//! The failure taxonomy of SPEC §5 and the pure mapping from observed errors to it.
//!
//! `Stage` and `Reason` are closed sets: they become Prometheus label values, so they
//! never carry free text. The free text lives in [`Failure::detail`]. Nothing in this
//! module does I/O; foreign errors (`io::Error`, `rustls::Error`, `webpki::Error`,
//! hyper errors, HTTP responses, gRPC answers) are mapped here so every row can be
//! table-tested.

pub mod cert;
pub mod grpc;
pub mod http;
pub mod net;
pub mod tls;

use std::fmt;
use std::sync::OnceLock;

use serde::Serialize;

/// The layer a probe had reached when it failed.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Before any network activity: the agent's own identity.
    Local,
    /// Name resolution.
    Resolve,
    /// TCP connect.
    Connect,
    /// The TLS handshake, including alerts the peer sends right after it.
    Tls,
    /// Verification of the peer's certificate chain.
    Certificate,
    /// Verification of the peer's identity (SPIFFE ID, trust domain or DNS name).
    Identity,
    /// The HTTP request over the established connection.
    Request,
    /// The outcome contradicted `expect` (a refusal that should have happened did not).
    Expectation,
}

impl Stage {
    /// The label value, e.g. `"certificate"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Resolve => "resolve",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Certificate => "certificate",
            Self::Identity => "identity",
            Self::Request => "request",
            Self::Expectation => "expectation",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a probe failed. Variant order follows SPEC §5; each variant's doc is the spec's
/// "what the SRE checks next" column.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Own cert/key missing, unreadable, mismatched or expired; the target was not contacted.
    IdentityUnavailable,
    /// The name has no addresses.
    DnsNotFound,
    /// The resolver failed or timed out.
    DnsError,
    /// Nothing listens: pod down, wrong port mapping.
    ConnectionRefused,
    /// Packets dropped: NetworkPolicy, firewall.
    ConnectTimeout,
    /// No route.
    NetworkUnreachable,
    /// The peer answered in plaintext: sidecar not injected, port not under mTLS.
    NotTls,
    /// The peer closed or reset during the handshake without an alert.
    PeerClosed,
    /// No TLS version in common.
    ProtocolVersion,
    /// No cipher suite in common.
    NoCommonCipher,
    /// The server demanded a client certificate that was not sent.
    ClientCertRequired,
    /// The server refused our certificate (trust bundle or rotation problem on its side).
    ClientCertRejected,
    /// No application protocol in common.
    AlpnMismatch,
    /// The handshake did not finish in time.
    HandshakeTimeout,
    /// Any other TLS failure (the detail names it).
    HandshakeError,
    /// The peer's leaf or chain is past `not_after`.
    CertExpired,
    /// Before `not_before`: clock skew or a future-dated certificate.
    CertNotYetValid,
    /// The chain does not reach the trust bundle: wrong CA, root rotated.
    CertUntrusted,
    /// Bad signature, encoding, usage or other chain fault.
    CertInvalid,
    /// The SPIFFE ID (or DNS name) is not the expected one.
    IdentityMismatch,
    /// The SPIFFE ID's trust domain is neither the expected one nor an alias.
    TrustDomainMismatch,
    /// The peer certificate carries no SPIFFE ID where one was expected.
    NoIdentity,
    /// HTTP 403 from the mesh's authorization layer: certificate fine, policy denies.
    RbacDenied,
    /// A mesh proxy on the path reported an mTLS failure toward the upstream.
    UpstreamTlsError,
    /// A mesh proxy reported no healthy upstream or another connect failure.
    UpstreamUnavailable,
    /// Any other status outside `expect_status`.
    UnexpectedStatus,
    /// No complete response in time.
    RequestTimeout,
    /// Closed after the handshake without a response (e.g. a TCP authorization deny).
    ConnectionClosed,
    /// Malformed or oversized response.
    ProtocolError,
    /// A plaintext probe that must be refused was answered: STRICT not in force.
    PlaintextAccepted,
    /// Another `expect = "reject"` probe was let through.
    UnexpectedSuccess,
}

impl Reason {
    /// Every reason, in SPEC §5 order.
    pub const ALL: [Self; 31] = [
        Self::IdentityUnavailable,
        Self::DnsNotFound,
        Self::DnsError,
        Self::ConnectionRefused,
        Self::ConnectTimeout,
        Self::NetworkUnreachable,
        Self::NotTls,
        Self::PeerClosed,
        Self::ProtocolVersion,
        Self::NoCommonCipher,
        Self::ClientCertRequired,
        Self::ClientCertRejected,
        Self::AlpnMismatch,
        Self::HandshakeTimeout,
        Self::HandshakeError,
        Self::CertExpired,
        Self::CertNotYetValid,
        Self::CertUntrusted,
        Self::CertInvalid,
        Self::IdentityMismatch,
        Self::TrustDomainMismatch,
        Self::NoIdentity,
        Self::RbacDenied,
        Self::UpstreamTlsError,
        Self::UpstreamUnavailable,
        Self::UnexpectedStatus,
        Self::RequestTimeout,
        Self::ConnectionClosed,
        Self::ProtocolError,
        Self::PlaintextAccepted,
        Self::UnexpectedSuccess,
    ];

    /// The stage is a function of the reason, so an inconsistent pair cannot exist.
    pub const fn stage(self) -> Stage {
        match self {
            Self::IdentityUnavailable => Stage::Local,
            Self::DnsNotFound | Self::DnsError => Stage::Resolve,
            Self::ConnectionRefused | Self::ConnectTimeout | Self::NetworkUnreachable => {
                Stage::Connect
            }
            Self::NotTls
            | Self::PeerClosed
            | Self::ProtocolVersion
            | Self::NoCommonCipher
            | Self::ClientCertRequired
            | Self::ClientCertRejected
            | Self::AlpnMismatch
            | Self::HandshakeTimeout
            | Self::HandshakeError => Stage::Tls,
            Self::CertExpired | Self::CertNotYetValid | Self::CertUntrusted | Self::CertInvalid => {
                Stage::Certificate
            }
            Self::IdentityMismatch | Self::TrustDomainMismatch | Self::NoIdentity => {
                Stage::Identity
            }
            Self::RbacDenied
            | Self::UpstreamTlsError
            | Self::UpstreamUnavailable
            | Self::UnexpectedStatus
            | Self::RequestTimeout
            | Self::ConnectionClosed
            | Self::ProtocolError => Stage::Request,
            Self::PlaintextAccepted | Self::UnexpectedSuccess => Stage::Expectation,
        }
    }

    /// The label value, e.g. `"client_cert_rejected"`; also the runbook anchor.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::IdentityUnavailable => "identity_unavailable",
            Self::DnsNotFound => "dns_not_found",
            Self::DnsError => "dns_error",
            Self::ConnectionRefused => "connection_refused",
            Self::ConnectTimeout => "connect_timeout",
            Self::NetworkUnreachable => "network_unreachable",
            Self::NotTls => "not_tls",
            Self::PeerClosed => "peer_closed",
            Self::ProtocolVersion => "protocol_version",
            Self::NoCommonCipher => "no_common_cipher",
            Self::ClientCertRequired => "client_cert_required",
            Self::ClientCertRejected => "client_cert_rejected",
            Self::AlpnMismatch => "alpn_mismatch",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::HandshakeError => "handshake_error",
            Self::CertExpired => "cert_expired",
            Self::CertNotYetValid => "cert_not_yet_valid",
            Self::CertUntrusted => "cert_untrusted",
            Self::CertInvalid => "cert_invalid",
            Self::IdentityMismatch => "identity_mismatch",
            Self::TrustDomainMismatch => "trust_domain_mismatch",
            Self::NoIdentity => "no_identity",
            Self::RbacDenied => "rbac_denied",
            Self::UpstreamTlsError => "upstream_tls_error",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UnexpectedStatus => "unexpected_status",
            Self::RequestTimeout => "request_timeout",
            Self::ConnectionClosed => "connection_closed",
            Self::ProtocolError => "protocol_error",
            Self::PlaintextAccepted => "plaintext_accepted",
            Self::UnexpectedSuccess => "unexpected_success",
        }
    }

    /// Parses a label value back into a reason.
    pub fn from_label(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The one-line hint printed by `probe` and put in the JSON `hint`: the first line of
    /// this reason's section in `docs/runbook.md`, which is compiled in so the two can
    /// never drift apart.
    pub fn hint(self) -> &'static str {
        static HINTS: OnceLock<[&'static str; 31]> = OnceLock::new();
        HINTS.get_or_init(|| Self::ALL.map(|r| runbook_first_line(RUNBOOK, r.as_str())))
            [self as usize]
    }

    /// The runbook link for this reason, relative to the repository root.
    pub fn runbook_anchor(self) -> String {
        format!("docs/runbook.md#{}", self.as_str())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The runbook, compiled in: its first line per section is the `hint`.
pub const RUNBOOK: &str = include_str!("../../docs/runbook.md");

/// The first non-empty line after the `## <reason>` heading, or `""` when absent (a unit
/// test guarantees every reason has one).
fn runbook_first_line(runbook: &'static str, reason: &str) -> &'static str {
    let mut lines = runbook.lines();
    let heading_found = lines.any(|l| {
        l.strip_prefix("## ")
            .is_some_and(|h| h.trim().trim_matches('`') == reason)
    });
    if !heading_found {
        return "";
    }
    lines
        .map(str::trim)
        .find(|l| !l.is_empty())
        .filter(|l| !l.starts_with('#'))
        .unwrap_or("")
}

/// A failed probe: the closed classification plus free text naming the concrete values
/// (expected vs presented SPIFFE ID, `not_after` vs the local clock, the alert's name…).
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("{}/{}: {detail}", .reason.stage(), .reason)]
pub struct Failure {
    /// The closed classification; the stage follows from it.
    pub reason: Reason,
    /// Goes to JSON, logs and the status page; never to a label, never key material.
    pub detail: String,
    /// The peer actively refused us after the TCP connect: it sent a TLS alert, closed
    /// or reset, or answered 403 (or "TLS required"). This is what `expect = "reject"`
    /// wants to see; timeouts and our own verification failures are not refusals.
    pub refused_by_peer: bool,
    /// A hint more precise than the reason's runbook line, when the classifier knows
    /// the exact cause (a CA certificate used as a leaf); `None` = [`Reason::hint`].
    pub hint: Option<&'static str>,
}

impl Failure {
    /// A failure with its detail.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
            refused_by_peer: false,
            hint: None,
        }
    }

    /// A failure that is the peer refusing us (see [`Failure::refused_by_peer`]).
    pub fn refusal(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            refused_by_peer: true,
            ..Self::new(reason, detail)
        }
    }

    /// The same failure with a hint of its own (see [`Failure::hint`]).
    #[must_use]
    pub fn with_hint(self, hint: &'static str) -> Self {
        Self {
            hint: Some(hint),
            ..self
        }
    }

    /// The hint to show: the failure's own, else the reason's runbook line.
    pub fn hint(&self) -> &'static str {
        self.hint.unwrap_or_else(|| self.reason.hint())
    }

    /// The stage of the reason.
    pub const fn stage(&self) -> Stage {
        self.reason.stage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_are_snake_case() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_label(r.as_str()), Some(r));
            assert!(
                r.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::Value::String(r.as_str().into())
            );
            assert_eq!(
                serde_json::to_value(r.stage()).unwrap(),
                serde_json::Value::String(r.stage().as_str().into())
            );
        }
    }

    #[test]
    fn all_is_in_declaration_order() {
        for (i, r) in Reason::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i, "{r} out of place in Reason::ALL");
        }
    }

    #[test]
    fn every_reason_has_a_runbook_section_and_hint() {
        for r in Reason::ALL {
            let hint = r.hint();
            assert!(!hint.is_empty(), "docs/runbook.md lacks a `## {r}` section");
            assert!(
                hint.len() < 200,
                "hint for {r} is not one short line: {hint}"
            );
        }
    }

    #[test]
    fn failure_display_names_stage_and_reason() {
        let f = Failure::new(Reason::CertExpired, "not_after 2020-01-01T00:00:00Z");
        assert_eq!(
            f.to_string(),
            "certificate/cert_expired: not_after 2020-01-01T00:00:00Z"
        );
    }
}
