//! TLS-stage classification: handshake errors and post-handshake alerts.
//!
//! tokio-rustls wraps `rustls::Error` in an `io::Error` of kind `InvalidData`; hyper
//! wraps that again. [`find_rustls_error`] walks the `source()` chain to get at it.

use std::error::Error as StdError;
use std::io;

use rustls::AlertDescription;

use super::{Failure, Reason};

/// What the probe knew about the handshake when it failed.
#[derive(Clone, Copy, Debug)]
pub struct HandshakeContext<'a> {
    /// The server sent a CertificateRequest.
    pub cert_requested: bool,
    /// We sent a non-empty certificate.
    pub cert_sent: bool,
    /// The first bytes the peer sent.
    pub first_bytes: &'a [u8],
    /// Bytes received from the peer.
    pub bytes_read: u64,
    /// The TLS versions we offered, for details ("1.3").
    pub offered_versions: &'a str,
    /// The ALPN protocols we offered, for details.
    pub offered_alpn: &'a str,
    /// The error arrived after our side of the handshake had completed (TLS 1.3
    /// client-certificate refusals arrive on the first read).
    pub after_handshake: bool,
}

/// Finds a `rustls::Error` anywhere in an error's source chain.
pub fn find_rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(r);
        }
        cur = e.source();
    }
    None
}

/// Finds an `io::Error` anywhere in an error's source chain.
pub fn find_io_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a io::Error> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io);
        }
        cur = e.source();
    }
    None
}

/// Whether the first bytes from the peer cannot start a TLS record (content types
/// 20..=24 with major version 3). Plaintext servers answer a ClientHello with text
/// such as `HTTP/1.1 400 Bad Request`.
pub fn looks_like_plaintext(first_bytes: &[u8]) -> bool {
    match first_bytes {
        [] => false,
        [ct, ..] if !(20..=24).contains(ct) => true,
        [_, major, ..] => *major != 3,
        [_] => false,
    }
}

/// Whether the first bytes are a TLS alert record (what a TLS server answers to a
/// plaintext request).
pub fn is_tls_alert_record(first_bytes: &[u8]) -> bool {
    matches!(first_bytes, [21, 3, minor, ..] if *minor <= 4)
}

/// Escapes up to 24 bytes for a detail: printable ASCII as is, the rest as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect()
}

/// Classifies a failed handshake (or a post-handshake read error) from the I/O error
/// tokio-rustls or hyper returned.
pub fn handshake_failure(err: &io::Error, ctx: &HandshakeContext<'_>) -> Failure {
    if looks_like_plaintext(ctx.first_bytes) {
        return not_tls(ctx);
    }
    if let Some(r) = find_rustls_error(err) {
        return rustls_failure(r, ctx);
    }
    let closed = matches!(
        err.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    );
    // TLS 1.2: the server checks our certificate before its own Finished, so a silent
    // refusal is a close in the middle of the handshake, right after our flight. (After
    // the handshake only the caller knows whether anything arrived in between.)
    if closed && ctx.cert_requested && !ctx.after_handshake {
        return silent_refusal(ctx, err.kind() != io::ErrorKind::UnexpectedEof);
    }
    match err.kind() {
        io::ErrorKind::UnexpectedEof => Failure::refusal(
            Reason::PeerClosed,
            format!(
                "the peer closed the connection {} without a TLS alert ({} bytes received)",
                when(ctx),
                ctx.bytes_read
            ),
        ),
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Failure::refusal(
            Reason::PeerClosed,
            format!(
                "the peer reset the connection {} without a TLS alert ({} bytes received)",
                when(ctx),
                ctx.bytes_read
            ),
        ),
        _ => Failure::new(
            Reason::HandshakeError,
            format!("TLS handshake I/O error: {err}"),
        ),
    }
}

/// SPEC §4: the server asked for a client certificate, then closed (`reset = false`) or
/// reset the connection without sending a single record after the handshake: no alert,
/// no session ticket, no HTTP/2 SETTINGS, no response byte. grpc-core, Java's
/// `HttpsServer` and Node refuse a client certificate this way, so it is
/// `client_cert_rejected` when ours was sent and `client_cert_required` when none was.
///
/// The caller decides that nothing arrived after the handshake (it alone sees the
/// wire); a close after anything arrived is `request/connection_closed` instead.
pub fn silent_refusal(ctx: &HandshakeContext<'_>, reset: bool) -> Failure {
    let ended = if reset { "reset" } else { "closed" };
    let when = if ctx.after_handshake {
        "right after the TLS handshake"
    } else {
        "after our certificate, before finishing the TLS handshake"
    };
    let (reason, what) = if ctx.cert_sent {
        (
            Reason::ClientCertRejected,
            "we sent our certificate and the server",
        )
    } else {
        (Reason::ClientCertRequired, "we sent none and the server")
    };
    Failure::refusal(
        reason,
        format!(
            "the server asked for a client certificate, {what} {ended} the connection {when} \
             without sending anything (no alert, no session ticket, no response): a silent \
             refusal of the client certificate, as grpc-core, Java and Node servers make one; a \
             TCP-level authorization deny that closes right after the handshake looks the same \
             on the wire"
        ),
    )
}

fn when(ctx: &HandshakeContext<'_>) -> &'static str {
    if ctx.after_handshake {
        "right after the handshake"
    } else {
        "during the handshake"
    }
}

fn not_tls(ctx: &HandshakeContext<'_>) -> Failure {
    Failure::new(
        Reason::NotTls,
        format!(
            "the peer answered in plaintext, not TLS: first bytes \"{}\" (sidecar not injected \
             or port not under mTLS?)",
            escape_bytes(ctx.first_bytes)
        ),
    )
}

/// Classifies a rustls error.
pub fn rustls_failure(err: &rustls::Error, ctx: &HandshakeContext<'_>) -> Failure {
    use rustls::Error as E;
    use rustls::PeerIncompatible as P;
    match err {
        E::AlertReceived(alert) => alert_failure(*alert, ctx),
        E::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => not_tls(ctx),
        E::InvalidMessage(
            m @ (rustls::InvalidMessage::CertificatePayloadTooLarge
            | rustls::InvalidMessage::HandshakePayloadTooLarge
            | rustls::InvalidMessage::MessageTooLarge),
        ) => Failure::new(
            Reason::HandshakeError,
            format!(
                "the peer sent an oversized handshake message ({}); cut off",
                match m {
                    rustls::InvalidMessage::CertificatePayloadTooLarge => "its certificate chain",
                    rustls::InvalidMessage::HandshakePayloadTooLarge => "a handshake payload",
                    _ => "a record",
                }
            ),
        ),
        E::PeerSentOversizedRecord => Failure::new(
            Reason::HandshakeError,
            "the peer sent an oversized TLS record; cut off",
        ),
        E::PeerIncompatible(
            p @ (P::ServerDoesNotSupportTls12Or13
            | P::ServerTlsVersionIsDisabledByOurConfig
            | P::SupportedVersionsExtensionRequired
            | P::Tls12NotOffered
            | P::Tls12NotOfferedOrEnabled
            | P::Tls13RequiredForQuic),
        ) => Failure::new(
            Reason::ProtocolVersion,
            format!(
                "no TLS version in common: we offered {}, the server chose otherwise ({})",
                ctx.offered_versions,
                match p {
                    P::ServerDoesNotSupportTls12Or13 => "it supports neither TLS 1.2 nor 1.3",
                    P::ServerTlsVersionIsDisabledByOurConfig =>
                        "it chose a version our tls_versions do not offer",
                    P::Tls12NotOffered | P::Tls12NotOfferedOrEnabled =>
                        "it chose TLS 1.2, which we did not offer",
                    P::SupportedVersionsExtensionRequired =>
                        "it did not negotiate TLS 1.3 as it must",
                    _ => "its version is not one we speak",
                }
            ),
        ),
        E::PeerIncompatible(
            p @ (P::NoCipherSuitesInCommon
            | P::NoKxGroupsInCommon
            | P::NoSignatureSchemesInCommon
            | P::NoCertificateRequestSignatureSchemesInCommon),
        ) => Failure::new(
            Reason::NoCommonCipher,
            format!(
                "no {} in common with the server",
                match p {
                    P::NoCipherSuitesInCommon => "cipher suite",
                    P::NoKxGroupsInCommon => "key exchange group",
                    _ => "signature scheme",
                }
            ),
        ),
        E::NoApplicationProtocol
        | E::PeerMisbehaved(rustls::PeerMisbehaved::SelectedUnofferedApplicationProtocol) => {
            Failure::new(
                Reason::AlpnMismatch,
                format!(
                    "no application protocol in common: we offered [{}] ({err})",
                    ctx.offered_alpn
                ),
            )
        }
        E::InvalidCertificate(c) => Failure::new(
            match c {
                rustls::CertificateError::Expired
                | rustls::CertificateError::ExpiredContext { .. } => Reason::CertExpired,
                rustls::CertificateError::NotValidYet
                | rustls::CertificateError::NotValidYetContext { .. } => Reason::CertNotYetValid,
                rustls::CertificateError::UnknownIssuer => Reason::CertUntrusted,
                _ => Reason::CertInvalid,
            },
            format!("the peer's certificate was rejected: {err}"),
        ),
        other => Failure::new(
            Reason::HandshakeError,
            format!("TLS handshake failed: {other}"),
        ),
    }
}

/// Classifies an alert the server sent; every alert is the peer refusing us.
pub fn alert_failure(alert: AlertDescription, ctx: &HandshakeContext<'_>) -> Failure {
    Failure {
        refused_by_peer: true,
        ..classify_alert(alert, ctx)
    }
}

fn classify_alert(alert: AlertDescription, ctx: &HandshakeContext<'_>) -> Failure {
    use AlertDescription as A;
    let name = alert_name(alert);
    let phase = if ctx.after_handshake {
        " after the handshake"
    } else {
        ""
    };
    match alert {
        A::CertificateRequired => Failure::new(
            Reason::ClientCertRequired,
            format!(
                "the server sent alert {name}{phase}: it requires a client certificate{}",
                if ctx.cert_sent {
                    " (ours was sent)"
                } else {
                    " and none was sent"
                }
            ),
        ),
        A::BadCertificate
        | A::UnsupportedCertificate
        | A::CertificateRevoked
        | A::CertificateExpired
        | A::CertificateUnknown
        | A::UnknownCA
        | A::AccessDenied
            if ctx.cert_sent =>
        {
            let note = if alert == A::CertificateExpired {
                " (certificate_expired can also mean not yet valid: check both clocks)"
            } else {
                ""
            };
            Failure::new(
                Reason::ClientCertRejected,
                format!("the server refused our client certificate with alert {name}{phase}{note}"),
            )
        }
        A::BadCertificate
        | A::UnsupportedCertificate
        | A::CertificateRevoked
        | A::CertificateExpired
        | A::CertificateUnknown
        | A::UnknownCA
        | A::AccessDenied
        | A::HandshakeFailure
            if ctx.cert_requested && !ctx.cert_sent =>
        {
            Failure::new(
                Reason::ClientCertRequired,
                format!(
                    "the server asked for a client certificate, none was sent, and it answered \
                     with alert {name}{phase}"
                ),
            )
        }
        A::HandshakeFailure if ctx.cert_sent => Failure::new(
            Reason::ClientCertRejected,
            format!("the server refused our client certificate with alert {name}{phase}"),
        ),
        A::HandshakeFailure | A::InsufficientSecurity => Failure::new(
            Reason::NoCommonCipher,
            format!(
                "the server sent alert {name} before asking for a client certificate: usually no \
                 cipher suite (or key exchange group / signature scheme) in common"
            ),
        ),
        A::ProtocolVersion => Failure::new(
            Reason::ProtocolVersion,
            format!(
                "the server sent alert {name}: no TLS version in common (we offered {})",
                ctx.offered_versions
            ),
        ),
        A::NoApplicationProtocol => Failure::new(
            Reason::AlpnMismatch,
            format!(
                "the server sent alert {name}: none of [{}] is acceptable to it",
                ctx.offered_alpn
            ),
        ),
        _ => Failure::new(
            Reason::HandshakeError,
            format!("the server sent alert {name}{phase}"),
        ),
    }
}

/// The RFC 8446 name of an alert (`certificate_required`).
pub fn alert_name(alert: AlertDescription) -> String {
    let debug = format!("{alert:?}");
    // rustls' Debug is CamelCase (`CertificateRequired`, `UnknownCA`); alerts are
    // named in snake_case in the RFCs and in OpenSSL/Envoy logs.
    match alert {
        AlertDescription::UnknownCA => "unknown_ca".into(),
        AlertDescription::UnknownPSKIdentity => "unknown_psk_identity".into(),
        _ => {
            let mut out = String::with_capacity(debug.len() + 4);
            for (i, ch) in debug.chars().enumerate() {
                if ch.is_ascii_uppercase() {
                    if i > 0 {
                        out.push('_');
                    }
                    out.push(ch.to_ascii_lowercase());
                } else {
                    out.push(ch);
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> HandshakeContext<'static> {
        HandshakeContext {
            cert_requested: false,
            cert_sent: false,
            first_bytes: &[22, 3, 3, 0, 10],
            bytes_read: 5,
            offered_versions: "1.2, 1.3",
            offered_alpn: "h2, http/1.1",
            after_handshake: false,
        }
    }

    fn io(e: rustls::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn alert_table() {
        use AlertDescription as A;
        let sent = HandshakeContext {
            cert_requested: true,
            cert_sent: true,
            ..ctx()
        };
        let asked_none = HandshakeContext {
            cert_requested: true,
            cert_sent: false,
            ..ctx()
        };
        let cases = [
            (A::CertificateRequired, ctx(), Reason::ClientCertRequired),
            (A::BadCertificate, sent, Reason::ClientCertRejected),
            (A::UnknownCA, sent, Reason::ClientCertRejected),
            (A::CertificateExpired, sent, Reason::ClientCertRejected),
            (A::AccessDenied, sent, Reason::ClientCertRejected),
            (A::HandshakeFailure, sent, Reason::ClientCertRejected),
            (A::HandshakeFailure, asked_none, Reason::ClientCertRequired),
            (A::BadCertificate, asked_none, Reason::ClientCertRequired),
            (A::HandshakeFailure, ctx(), Reason::NoCommonCipher),
            (A::ProtocolVersion, ctx(), Reason::ProtocolVersion),
            (A::NoApplicationProtocol, ctx(), Reason::AlpnMismatch),
            (A::InternalError, ctx(), Reason::HandshakeError),
            (A::DecodeError, ctx(), Reason::HandshakeError),
        ];
        for (alert, c, want) in cases {
            let f = handshake_failure(&io(rustls::Error::AlertReceived(alert)), &c);
            assert_eq!(f.reason, want, "{alert:?}");
            assert!(f.refused_by_peer, "{alert:?}");
            assert!(f.detail.contains(&alert_name(alert)), "{}", f.detail);
        }
    }

    #[test]
    fn alert_names_are_snake_case() {
        assert_eq!(
            alert_name(AlertDescription::CertificateRequired),
            "certificate_required"
        );
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown_ca");
        assert_eq!(
            alert_name(AlertDescription::BadCertificate),
            "bad_certificate"
        );
    }

    #[test]
    fn plaintext_answer_is_not_tls() {
        let c = HandshakeContext {
            first_bytes: b"HTTP/1.1 400 Bad Request\r\n",
            ..ctx()
        };
        let f = handshake_failure(
            &io(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType,
            )),
            &c,
        );
        assert_eq!(f.reason, Reason::NotTls);
        assert!(f.detail.contains("HTTP/1.1 400"), "{}", f.detail);
        // Even when the plaintext peer then closed.
        let f = handshake_failure(&io::Error::from(io::ErrorKind::UnexpectedEof), &c);
        assert_eq!(f.reason, Reason::NotTls);
    }

    #[test]
    fn closes_and_resets_are_peer_closed() {
        let empty = HandshakeContext {
            first_bytes: &[],
            bytes_read: 0,
            ..ctx()
        };
        for kind in [
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::BrokenPipe,
        ] {
            let f = handshake_failure(&io::Error::from(kind), &empty);
            assert_eq!(f.reason, Reason::PeerClosed, "{kind:?}");
            assert!(f.refused_by_peer);
        }
    }

    #[test]
    fn a_close_after_a_certificate_request_is_a_silent_refusal() {
        let asked = |sent, after| HandshakeContext {
            cert_requested: true,
            cert_sent: sent,
            after_handshake: after,
            ..ctx()
        };
        let cases = [
            // TLS 1.2: closed after our flight, inside the handshake.
            (
                io::ErrorKind::UnexpectedEof,
                asked(true, false),
                Reason::ClientCertRejected,
                "closed",
            ),
            (
                io::ErrorKind::ConnectionReset,
                asked(true, false),
                Reason::ClientCertRejected,
                "reset",
            ),
            (
                io::ErrorKind::UnexpectedEof,
                asked(false, false),
                Reason::ClientCertRequired,
                "closed",
            ),
            // After the handshake only the caller knows whether anything arrived first.
            (
                io::ErrorKind::UnexpectedEof,
                asked(true, true),
                Reason::PeerClosed,
                "closed",
            ),
            // No CertificateRequest: nothing about certificates to conclude.
            (
                io::ErrorKind::UnexpectedEof,
                ctx(),
                Reason::PeerClosed,
                "closed",
            ),
        ];
        for (kind, c, want, ended) in cases {
            let f = handshake_failure(&io::Error::from(kind), &c);
            assert_eq!(f.reason, want, "{kind:?} {c:?}");
            assert!(f.refused_by_peer);
            assert!(f.detail.contains(ended), "{}", f.detail);
        }
        let f = silent_refusal(&asked(true, true), false);
        assert_eq!(f.reason, Reason::ClientCertRejected);
        for fragment in [
            "silent",
            "TCP-level authorization deny",
            "right after the TLS handshake",
        ] {
            assert!(f.detail.contains(fragment), "{}", f.detail);
        }
        let f = silent_refusal(&asked(false, true), true);
        assert_eq!(f.reason, Reason::ClientCertRequired);
        assert!(f.detail.contains("we sent none"), "{}", f.detail);
    }

    #[test]
    fn rustls_errors() {
        use rustls::Error as E;
        let cases = [
            (
                E::PeerIncompatible(
                    rustls::PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig,
                ),
                Reason::ProtocolVersion,
            ),
            (
                E::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon),
                Reason::NoCommonCipher,
            ),
            (E::NoApplicationProtocol, Reason::AlpnMismatch),
            (
                E::InvalidMessage(rustls::InvalidMessage::CertificatePayloadTooLarge),
                Reason::HandshakeError,
            ),
            (E::PeerSentOversizedRecord, Reason::HandshakeError),
            (E::DecryptError, Reason::HandshakeError),
        ];
        for (e, want) in cases {
            let f = handshake_failure(&io(e), &ctx());
            assert_eq!(f.reason, want, "{}", f.detail);
        }
    }

    #[test]
    fn sniffing() {
        assert!(looks_like_plaintext(b"HTTP/1.1 200 OK"));
        assert!(looks_like_plaintext(b"SSH-2.0"));
        assert!(!looks_like_plaintext(&[22, 3, 3]));
        assert!(!looks_like_plaintext(&[21, 3, 3, 0, 2, 2, 40]));
        assert!(looks_like_plaintext(&[22, 9]));
        assert!(!looks_like_plaintext(&[]));
        assert!(is_tls_alert_record(&[21, 3, 1, 0, 2, 2, 70]));
        assert!(!is_tls_alert_record(b"HTTP/1.1"));
        assert_eq!(escape_bytes(b"HT\x00\r\n"), "HT\\x00\\r\\n");
    }

    #[test]
    fn finds_rustls_error_through_wrappers() {
        #[derive(Debug)]
        struct Outer(io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("outer")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(io(rustls::Error::AlertReceived(
            AlertDescription::BadCertificate,
        )));
        assert_eq!(
            find_rustls_error(&e),
            Some(&rustls::Error::AlertReceived(
                AlertDescription::BadCertificate
            ))
        );
    }
}
