//! A throwaway PKI minted in memory with rcgen: roots, intermediates and SPIFFE leaves.
//!
//! The demo mesh and the test suite both build their certificates here, so the demo
//! provably exercises the same failure classes as the tests. Validity windows are set
//! relative to "now"; nothing is ever written to disk by this module.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

/// What went wrong while minting a certificate (only bad input to the builder).
#[derive(Debug, thiserror::Error)]
#[error("generating a test certificate: {0}")]
pub struct PkiError(#[from] rcgen::Error);

/// The key algorithm of a generated certificate.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum KeyAlg {
    /// ECDSA on P-256 with SHA-256 (what Istio and Linkerd issue).
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA 2048 with SHA-256.
    Rsa2048,
}

impl KeyAlg {
    fn generate(self) -> Result<KeyPair, PkiError> {
        Ok(match self {
            Self::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
            Self::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?,
            Self::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519)?,
            Self::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?
            }
        })
    }
}

/// Which extended key usages a leaf carries.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum Usage {
    /// serverAuth and clientAuth, like mesh workload certificates.
    #[default]
    ServerAndClient,
    /// serverAuth only.
    Server,
    /// clientAuth only (a server presenting it is `cert_invalid`).
    Client,
}

/// A certificate authority that can issue intermediates and leaves.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    is_root: bool,
    /// The intermediates above this CA, nearest first; never the root.
    parents: Vec<CertificateDer<'static>>,
}

impl Ca {
    /// A self-signed root valid from an hour ago for ten years.
    pub fn root(common_name: &str) -> Result<Self, PkiError> {
        Self::root_with(common_name, KeyAlg::EcdsaP256)
    }

    /// A self-signed root with the given key algorithm.
    pub fn root_with(common_name: &str, alg: KeyAlg) -> Result<Self, PkiError> {
        let key = alg.generate()?;
        let params = ca_params(common_name, None);
        let cert = params.self_signed(&key)?.der().clone();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert,
            is_root: true,
            parents: Vec::new(),
        })
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, common_name: &str) -> Result<Self, PkiError> {
        let key = KeyAlg::EcdsaP256.generate()?;
        // No path-length limit, so intermediates can be stacked (a 10-deep chain is one
        // of the hostile peers).
        let params = ca_params(common_name, None);
        let cert = params.signed_by(&key, &self.issuer)?.der().clone();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert,
            is_root: false,
            parents: self.chain_above_leaf(),
        })
    }

    /// This CA's own certificate.
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// This CA's certificate as PEM (what goes into a trust bundle file).
    pub fn cert_pem(&self) -> String {
        pem("CERTIFICATE", &self.cert)
    }

    /// Issues a leaf. Its chain is the leaf, then this CA if it is an intermediate, then
    /// the intermediates above it; roots are never included (the peer has them).
    pub fn issue(&self, spec: &LeafSpec) -> Result<Leaf, PkiError> {
        let key = spec.alg.generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = &spec.common_name {
            params
                .distinguished_name
                .push(DnType::CommonName, cn.as_str());
        }
        let now = OffsetDateTime::now_utc();
        params.not_before = now + spec.not_before;
        params.not_after = now + spec.not_after;
        params.serial_number = Some(random_serial());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if spec.alg == KeyAlg::Rsa2048 {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        params.extended_key_usages = match spec.usage {
            Usage::ServerAndClient => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        if let Some(uri) = &spec.spiffe_id {
            params
                .subject_alt_names
                .push(SanType::URI(uri.as_str().try_into()?));
        }
        for dns in &spec.dns_names {
            params
                .subject_alt_names
                .push(SanType::DnsName(dns.as_str().try_into()?));
        }
        for ip in &spec.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        if spec.padding > 0 {
            // A private, non-critical extension of filler bytes (oversized chains).
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 55555, 1],
                    der_octet_string(spec.padding),
                ));
        }
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?.der().clone();
        let mut chain = vec![cert];
        chain.extend(self.chain_above_leaf());
        Ok(Leaf {
            chain,
            key_der: key.serialize_der(),
        })
    }

    /// What a certificate issued by this CA sends after itself: this CA and the
    /// intermediates above it, but never a root (peers have roots in their bundle).
    fn chain_above_leaf(&self) -> Vec<CertificateDer<'static>> {
        if self.is_root {
            return Vec::new();
        }
        let mut chain = vec![self.cert.clone()];
        chain.extend(self.parents.iter().cloned());
        chain
    }
}

/// What to put in a leaf certificate.
#[derive(Clone, Debug)]
pub struct LeafSpec {
    /// The SPIFFE ID as a URI SAN, if any.
    pub spiffe_id: Option<String>,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// IP SANs.
    pub ips: Vec<IpAddr>,
    /// Subject common name; mesh certificates usually have an empty subject.
    pub common_name: Option<String>,
    /// Start of validity relative to now (negative = in the past).
    pub not_before: time::Duration,
    /// End of validity relative to now.
    pub not_after: time::Duration,
    /// Extended key usages.
    pub usage: Usage,
    /// Key algorithm.
    pub alg: KeyAlg,
    /// Bytes of filler in a private extension (0 = none), to make oversized chains.
    pub padding: usize,
}

impl LeafSpec {
    /// A workload certificate for a SPIFFE ID, valid from an hour ago for a day.
    pub fn spiffe(id: &str) -> Self {
        Self {
            spiffe_id: Some(id.to_owned()),
            ..Self::default()
        }
    }

    /// A certificate with DNS SANs and no SPIFFE ID.
    pub fn dns(names: &[&str]) -> Self {
        Self {
            dns_names: names.iter().map(|s| (*s).to_owned()).collect(),
            ..Self::default()
        }
    }

    /// The same leaf, valid from `now + not_before` to `now + not_after` (negative
    /// offsets are in the past).
    pub fn window(mut self, not_before: time::Duration, not_after: time::Duration) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// Expired an hour ago (valid from two hours ago).
    pub fn expired(mut self) -> Self {
        self.not_before = -time::Duration::hours(2);
        self.not_after = -time::Duration::hours(1);
        self
    }

    /// Valid only from an hour from now.
    pub fn not_yet_valid(mut self) -> Self {
        self.not_before = time::Duration::hours(1);
        self.not_after = time::Duration::hours(2);
        self
    }

    /// Adds a DNS SAN.
    pub fn with_dns(mut self, name: &str) -> Self {
        self.dns_names.push(name.to_owned());
        self
    }

    /// Adds an IP SAN.
    pub fn with_ip(mut self, ip: IpAddr) -> Self {
        self.ips.push(ip);
        self
    }

    /// Sets the extended key usages.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// Sets the key algorithm.
    pub fn with_alg(mut self, alg: KeyAlg) -> Self {
        self.alg = alg;
        self
    }

    /// Adds `bytes` of filler in a private extension.
    pub fn with_padding(mut self, bytes: usize) -> Self {
        self.padding = bytes;
        self
    }

    /// Sets the subject common name.
    pub fn with_common_name(mut self, cn: &str) -> Self {
        self.common_name = Some(cn.to_owned());
        self
    }
}

impl Default for LeafSpec {
    fn default() -> Self {
        Self {
            spiffe_id: None,
            dns_names: Vec::new(),
            ips: Vec::new(),
            common_name: None,
            not_before: -time::Duration::hours(1),
            not_after: time::Duration::hours(24),
            usage: Usage::ServerAndClient,
            alg: KeyAlg::EcdsaP256,
            padding: 0,
        }
    }
}

/// An issued leaf: its chain (leaf first, no root) and its PKCS#8 private key.
pub struct Leaf {
    /// Leaf first, then intermediates; never the root.
    pub chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

impl Leaf {
    /// The private key (PKCS#8 DER).
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// The raw PKCS#8 DER of the private key (tests use it to look for leaks).
    pub fn key_pkcs8_der(&self) -> &[u8] {
        &self.key_der
    }

    /// The chain as PEM (a `cert-chain.pem`).
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|c| pem("CERTIFICATE", c)).collect()
    }

    /// The private key as PKCS#8 PEM (a `key.pem`).
    pub fn key_pem(&self) -> String {
        pem("PRIVATE KEY", &self.key_der)
    }

    /// The leaf certificate alone.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }
}

/// A DER OCTET STRING of `len` zero bytes.
fn der_octet_string(len: usize) -> Vec<u8> {
    let mut out = vec![0x04];
    let be = len.to_be_bytes();
    let skip = be.iter().take_while(|b| **b == 0).count();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        out.push(0x80 | (be.len() - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
    out.resize(out.len() + len, 0);
    out
}

/// PEM-encodes DER with the given label.
pub fn pem(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

fn ca_params(common_name: &str, path_len: Option<u8>) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "mtls-prober test PKI");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(3650);
    params.serial_number = Some(random_serial());
    params
}

fn random_serial() -> SerialNumber {
    // Positive 16-byte serial; randomness only needs to make rotations distinguishable.
    let mut bytes = [0u8; 16];
    let _ = rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x10;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intermediate_chain_excludes_root() {
        let root = Ca::root("root").unwrap();
        let int = root.intermediate("int").unwrap();
        let leaf = int
            .issue(&LeafSpec::spiffe("spiffe://cluster.local/ns/a/sa/b"))
            .unwrap();
        assert_eq!(leaf.chain.len(), 2);
        assert_eq!(&leaf.chain[1], int.cert());
        let direct = root.issue(&LeafSpec::dns(&["a.example"])).unwrap();
        assert_eq!(direct.chain.len(), 1);
        let deeper = int.intermediate("int2").unwrap();
        let leaf = deeper.issue(&LeafSpec::dns(&["b.example"])).unwrap();
        assert_eq!(leaf.chain.len(), 3);
        assert_eq!(&leaf.chain[1], deeper.cert());
        assert_eq!(&leaf.chain[2], int.cert());
    }

    #[test]
    fn pem_round_trips_through_pki_types() {
        use rustls_pki_types::pem::PemObject;
        let root = Ca::root("root").unwrap();
        let leaf = root.issue(&LeafSpec::spiffe("spiffe://td/x")).unwrap();
        let certs: Vec<_> = CertificateDer::pem_slice_iter(leaf.chain_pem().as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(certs, leaf.chain);
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem().as_bytes()).unwrap();
        assert_eq!(key.secret_der(), leaf.key_pkcs8_der());
    }
}
