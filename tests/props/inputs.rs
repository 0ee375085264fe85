//! Input builders shared by the properties and the fuzz targets (`fuzz/src/lib.rs`
//! includes this file by path): rustls and I/O errors as the prober meets them, and
//! the filter for a known nondeterminism of the environment overrides.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::Arc;

use mtls_prober::config::Env;
use rustls::{
    AlertDescription, CertificateError, Error as TlsError, InvalidMessage, PeerIncompatible,
    PeerMisbehaved,
};
use rustls_pki_types::UnixTime;

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

/// The I/O error kinds a handshake may end with.
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

/// `tls` (or, for [`Wrap::Plain`], the `kind`-th I/O error kind) as `wrap` delivers it.
pub fn io_error(wrap: Wrap, kind: usize, tls: TlsError) -> io::Error {
    match wrap {
        Wrap::Plain => io::Error::from(KINDS[kind % KINDS.len()]),
        Wrap::Rustls => io::Error::new(io::ErrorKind::InvalidData, tls),
        Wrap::Nested => io::Error::other(Outer(io::Error::new(io::ErrorKind::InvalidData, tls))),
    }
}

/// The config key a variable sets, as the `config` crate derives it.
fn env_key(var: &str) -> Option<String> {
    let lower = var.to_lowercase();
    Some(lower.strip_prefix("mtls_prober_")?.replace("__", "."))
}

/// Whether two variables set the same key, or a key and one of its parents
/// (`MTLS_PROBER_AGENT` and `MTLS_PROBER_AGENT__SOURCE`): which one wins depends on a
/// `HashMap`'s order, see `env_conflicts_load_deterministically`.
pub fn conflicting(env: &Env) -> bool {
    let keys: Vec<String> = env.keys().filter_map(|v| env_key(v)).collect();
    keys.iter().enumerate().any(|(i, a)| {
        keys.iter().enumerate().any(|(j, b)| {
            i != j
                && (a == b
                    || b.strip_prefix(a.as_str())
                        .is_some_and(|r| r.starts_with('.')))
        })
    })
}
