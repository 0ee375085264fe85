//! Human names for TLS and X.509 things that rustls and webpki name as Rust values:
//! protocol versions and cipher suites as blackbox_exporter and the IANA registry
//! spell them (`TLS 1.3`, `TLS_AES_128_GCM_SHA256`), and webpki's errors in words.
//!
//! The names are `&'static str` from closed sets, so they are fit for metric labels.

use rustls::{CipherSuite, ProtocolVersion};

/// A protocol version as blackbox_exporter's `probe_tls_version_info` names it:
/// `TLS 1.2`, `TLS 1.3`.
pub fn version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::TLSv1_3 => "TLS 1.3",
        ProtocolVersion::TLSv1_2 => "TLS 1.2",
        ProtocolVersion::TLSv1_1 => "TLS 1.1",
        ProtocolVersion::TLSv1_0 => "TLS 1.0",
        ProtocolVersion::SSLv3 => "SSL 3.0",
        _ => "unknown",
    }
}

/// A cipher suite by its IANA registry name. rustls prefixes its TLS 1.3 suites with
/// `TLS13_` (`TLS13_AES_128_GCM_SHA256`); IANA, OpenSSL and blackbox_exporter call
/// them `TLS_AES_128_GCM_SHA256`. TLS 1.2 names are already IANA's.
pub fn cipher_name(c: CipherSuite) -> &'static str {
    match c {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS13_AES_128_CCM_SHA256 => "TLS_AES_128_CCM_SHA256",
        CipherSuite::TLS13_AES_128_CCM_8_SHA256 => "TLS_AES_128_CCM_8_SHA256",
        other => other.as_str().unwrap_or("unknown"),
    }
}

/// A webpki error in words a person reads (its `Display` is the Rust variant name,
/// such as `CaUsedAsEndEntity` or `UnknownIssuer`).
pub fn webpki_words(err: &webpki::Error) -> String {
    use webpki::Error as E;
    #[allow(deprecated)]
    let words = match err {
        E::BadDer | E::BadDerTime | E::TrailingData(_) => "a certificate is not valid DER",
        E::CaUsedAsEndEntity => {
            "a CA certificate (basicConstraints CA:TRUE) is used as the leaf certificate"
        }
        E::EndEntityUsedAsCa => "a leaf certificate (CA:FALSE) is used as an issuing CA",
        E::CertExpired { .. } => "a certificate has expired",
        E::CertNotValidYet { .. } => "a certificate is not valid yet",
        E::CertNotValidForName(_) => "the certificate is not valid for the expected name",
        E::CertRevoked => "a certificate is revoked",
        E::UnknownIssuer => "no certificate in the chain is signed by a root of the bundle",
        E::InvalidSignatureForPublicKey => "a signature in the chain does not verify",
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::SignatureAlgorithmMismatch => "a signature algorithm in the chain is not supported",
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => {
            "the certificate lacks the extended key usage for this side of TLS \
             (serverAuth for a server, clientAuth for a client)"
        }
        E::InvalidCertValidity => "a certificate's validity period is malformed",
        E::InvalidSerialNumber => "a certificate's serial number is malformed",
        E::NameConstraintViolation => "a name violates a CA's name constraints",
        E::PathLenConstraintViolated => "the chain is longer than a CA's pathLenConstraint allows",
        E::MaximumPathDepthExceeded
        | E::MaximumPathBuildCallsExceeded
        | E::MaximumSignatureChecksExceeded
        | E::MaximumNameConstraintComparisonsExceeded => {
            "the chain is too long or too complex to verify"
        }
        E::UnsupportedCertVersion => "a certificate is not X.509 version 3",
        E::UnsupportedCriticalExtension => "a certificate has an unsupported critical extension",
        E::MalformedExtensions | E::ExtensionValueInvalid => "a certificate extension is malformed",
        other => return format!("the chain fails verification ({other:?})"),
    };
    words.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_ciphers_use_iana_names() {
        assert_eq!(version_name(ProtocolVersion::TLSv1_3), "TLS 1.3");
        assert_eq!(version_name(ProtocolVersion::TLSv1_2), "TLS 1.2");
        assert_eq!(
            cipher_name(CipherSuite::TLS13_AES_128_GCM_SHA256),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            cipher_name(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        );
        // Every suite our provider can negotiate has a name without rustls' prefix.
        for suite in rustls::crypto::aws_lc_rs::default_provider().cipher_suites {
            let name = cipher_name(suite.suite());
            assert!(name.starts_with("TLS_"), "{name}");
        }
    }

    #[test]
    fn webpki_errors_in_words() {
        for e in [
            webpki::Error::UnknownIssuer,
            webpki::Error::CaUsedAsEndEntity,
            webpki::Error::BadDer,
            webpki::Error::InvalidSignatureForPublicKey,
        ] {
            let w = webpki_words(&e);
            assert!(!w.contains(&format!("{e:?}")), "{w}");
        }
    }
}
