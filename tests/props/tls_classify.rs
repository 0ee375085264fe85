//! `handshake_failure` on arbitrary I/O errors, rustls errors and alerts (also wrapped
//! the way hyper and tokio-rustls wrap them), and arbitrary first bytes.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::Arc;

use mtls_prober::classify::tls::HandshakeContext;
use mtls_prober::tls::capture::SNIFF_LEN;
use proptest::prelude::*;
use rustls::{
    AlertDescription, CertificateError, Error as TlsError, InvalidMessage, PeerIncompatible,
    PeerMisbehaved,
};
use rustls_pki_types::UnixTime;

use super::oracles::check_handshake;
use super::support::cases;

/// Every rustls error the classifier distinguishes, and a few it does not.
pub fn rustls_error(choice: u8, alert: u8, secs: u64, text: &str) -> TlsError {
    let t = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
    let t2 = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs / 2));
    match choice % 32 {
        0..=7 => TlsError::AlertReceived(AlertDescription::from(alert)),
        8 => TlsError::InvalidMessage(InvalidMessage::InvalidContentType),
        9 => TlsError::InvalidMessage(InvalidMessage::CertificatePayloadTooLarge),
        10 => TlsError::InvalidMessage(InvalidMessage::MessageTooLarge),
        11 => TlsError::InvalidMessage(InvalidMessage::MissingData("x")),
        12 => TlsError::PeerSentOversizedRecord,
        13 => TlsError::PeerIncompatible(PeerIncompatible::ServerDoesNotSupportTls12Or13),
        14 => TlsError::PeerIncompatible(PeerIncompatible::Tls12NotOffered),
        15 => TlsError::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
        16 => TlsError::PeerIncompatible(PeerIncompatible::NoKxGroupsInCommon),
        17 => TlsError::PeerIncompatible(PeerIncompatible::NullCompressionRequired),
        18 => TlsError::NoApplicationProtocol,
        19 => TlsError::PeerMisbehaved(PeerMisbehaved::SelectedUnofferedApplicationProtocol),
        20 => TlsError::PeerMisbehaved(PeerMisbehaved::IllegalMiddleboxChangeCipherSpec),
        21 => TlsError::InvalidCertificate(CertificateError::Expired),
        22 => TlsError::InvalidCertificate(CertificateError::ExpiredContext {
            time: t,
            not_after: t2,
        }),
        23 => TlsError::InvalidCertificate(CertificateError::NotValidYetContext {
            time: t2,
            not_before: t,
        }),
        24 => TlsError::InvalidCertificate(CertificateError::UnknownIssuer),
        25 => TlsError::InvalidCertificate(CertificateError::BadSignature),
        26 => TlsError::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
            Text(text.to_owned()),
        )))),
        27 => TlsError::General(text.to_owned()),
        28 => TlsError::DecryptError,
        29 => TlsError::HandshakeNotComplete,
        30 => TlsError::NoCertificatesPresented,
        _ => TlsError::Other(rustls::OtherError(Arc::new(Text(text.to_owned())))),
    }
}

/// An error that is only its text.
#[derive(Debug)]
struct Text(String);

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Text {}

/// An outer error whose source is the I/O error, like hyper's.
#[derive(Debug)]
struct Outer(io::Error);

impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("client error (Connect)")
    }
}

impl StdError for Outer {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

const KINDS: &[io::ErrorKind] = &[
    io::ErrorKind::UnexpectedEof,
    io::ErrorKind::ConnectionReset,
    io::ErrorKind::ConnectionAborted,
    io::ErrorKind::BrokenPipe,
    io::ErrorKind::InvalidData,
    io::ErrorKind::TimedOut,
    io::ErrorKind::WouldBlock,
    io::ErrorKind::Other,
    io::ErrorKind::NotConnected,
];

/// How the error reaches the classifier.
#[derive(Clone, Copy, Debug)]
pub enum Wrap {
    /// A bare `io::Error` of some kind.
    Plain,
    /// tokio-rustls: `io::Error(InvalidData, rustls::Error)`.
    Rustls,
    /// hyper: `io::Error(Other, Outer(io::Error(InvalidData, rustls::Error)))`.
    Nested,
}

pub fn io_error(wrap: Wrap, kind: usize, tls: TlsError) -> io::Error {
    match wrap {
        Wrap::Plain => io::Error::from(KINDS[kind % KINDS.len()]),
        Wrap::Rustls => io::Error::new(io::ErrorKind::InvalidData, tls),
        Wrap::Nested => io::Error::other(Outer(io::Error::new(io::ErrorKind::InvalidData, tls))),
    }
}

fn first_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(vec![22, 3, 3, 0, 0x7a, 2]),
        2 => (20u8..=24, 0u8..=5).prop_map(|(ct, minor)| vec![ct, 3, minor]),
        1 => Just(Vec::new()),
        1 => Just(b"HTTP/1.1 400 Bad Request\r\n".to_vec()),
        2 => prop::collection::vec(any::<u8>(), 0..=SNIFF_LEN),
    ]
    .prop_map(|mut b| {
        b.truncate(SNIFF_LEN);
        b
    })
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn any_handshake_error(
        wrap in prop_oneof![Just(Wrap::Plain), Just(Wrap::Rustls), Just(Wrap::Nested)],
        kind in any::<usize>(),
        choice in any::<u8>(),
        alert in any::<u8>(),
        secs in 0u64..4_102_444_800,
        text in "\\PC{0,64}",
        first in first_bytes(),
        flags in any::<[bool; 3]>(),
        bytes_read in any::<u64>(),
        versions in proptest::sample::select(&["1.2, 1.3", "1.3", "1.2", ""][..]),
        alpn in proptest::sample::select(&["h2, http/1.1", "h2", ""][..]),
    ) {
        let ctx = HandshakeContext {
            cert_requested: flags[0],
            cert_sent: flags[1],
            first_bytes: &first,
            bytes_read,
            offered_versions: versions,
            offered_alpn: alpn,
            after_handshake: flags[2],
        };
        let err = io_error(wrap, kind, rustls_error(choice, alert, secs, &text));
        let f = check_handshake(&err, &ctx);
        // However deep the rustls error sits, it is classified the same.
        if let Wrap::Nested = wrap {
            let direct = io_error(Wrap::Rustls, kind, rustls_error(choice, alert, secs, &text));
            let g = check_handshake(&direct, &ctx);
            prop_assert_eq!(f.reason, g.reason);
            prop_assert_eq!(f.refused_by_peer, g.refused_by_peer);
        }
    }
}
