//! Certificates and keys minted once per process with `mtls_prober::demo::pki`, the
//! raw material that the identity and certificate properties truncate, mutate and mix.
//! Nothing is read from or written to disk; no key from a real system is involved.
//!
//! Shared with the cargo-fuzz targets (`fuzz/src/lib.rs` includes this file by path).

use std::path::Path;
use std::sync::OnceLock;

use mtls_prober::demo::pki::{Ca, KeyAlg, LeafSpec};
use mtls_prober::identity::load::TrustBundle;
use rustls::crypto::CryptoProvider;

use super::oracles::Secrets;

/// One client identity as files would hold it.
pub struct Material {
    /// What it is, for messages.
    pub name: &'static str,
    /// `cert-chain.pem`: leaf first, then intermediates.
    pub chain_pem: String,
    /// `key.pem` (PKCS#8).
    pub key_pem: String,
    /// The key's DER.
    pub key_der: Vec<u8>,
    /// The SPIFFE ID in the leaf.
    pub spiffe_id: String,
    /// Whether `ClientIdentity::from_pem` must accept it unchanged against
    /// [`Fixture::bundle`].
    pub valid: bool,
}

/// Everything generated once.
pub struct Fixture {
    /// The crypto provider the agent uses.
    pub provider: CryptoProvider,
    /// The trusted root, PEM.
    pub root_pem: String,
    /// A second, untrusted root, PEM.
    pub other_root_pem: String,
    /// The bundle holding the trusted root only.
    pub bundle: TrustBundle,
    /// Client identities: see [`fixture`] for the list.
    pub identities: Vec<Material>,
    /// Every certificate minted (roots, intermediates, leaves), DER.
    pub certs_der: Vec<Vec<u8>>,
    /// Every private key minted, for leak checks.
    pub secrets: Secrets,
}

/// The file names errors must mention.
pub const CA_FILE: &str = "/etc/certs/root-cert.pem";
/// See [`CA_FILE`].
pub const CERT_FILE: &str = "/etc/certs/cert-chain.pem";
/// See [`CA_FILE`].
pub const KEY_FILE: &str = "/etc/certs/key.pem";

/// The generated PKI: a trusted root with an intermediate, an untrusted root, and
/// client identities of every key algorithm the demo PKI knows (valid ones first),
/// then an expired one, a not-yet-valid one and one from the untrusted root.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| generate().expect("generating the test PKI"))
}

fn generate() -> Result<Fixture, Box<dyn std::error::Error>> {
    let root = Ca::root("props root")?;
    let intermediate = root.intermediate("props intermediate")?;
    let other = Ca::root("props other root")?;
    let id = |n: &str| format!("spiffe://cluster.local/ns/props/sa/{n}");

    let specs: Vec<(&'static str, &Ca, LeafSpec, bool)> = vec![
        ("p256", &root, LeafSpec::spiffe(&id("p256")), true),
        (
            "p384 via intermediate",
            &intermediate,
            LeafSpec::spiffe(&id("p384")).with_alg(KeyAlg::EcdsaP384),
            true,
        ),
        (
            "ed25519",
            &root,
            LeafSpec::spiffe(&id("ed")).with_alg(KeyAlg::Ed25519),
            true,
        ),
        (
            "rsa2048",
            &root,
            LeafSpec::spiffe(&id("rsa")).with_alg(KeyAlg::Rsa2048),
            true,
        ),
        (
            "expired",
            &root,
            LeafSpec::spiffe(&id("old")).expired(),
            false,
        ),
        (
            "not yet valid",
            &root,
            LeafSpec::spiffe(&id("new")).not_yet_valid(),
            false,
        ),
        ("untrusted", &other, LeafSpec::spiffe(&id("other")), false),
    ];

    let mut identities = Vec::new();
    let mut certs_der = vec![
        root.cert().to_vec(),
        intermediate.cert().to_vec(),
        other.cert().to_vec(),
    ];
    let mut secrets = Secrets::default();
    for (name, ca, spec, valid) in specs {
        let leaf = ca.issue(&spec)?;
        certs_der.extend(leaf.chain.iter().map(|c| c.to_vec()));
        secrets.add(leaf.key_pkcs8_der(), &leaf.key_pem());
        identities.push(Material {
            name,
            chain_pem: leaf.chain_pem(),
            key_pem: leaf.key_pem(),
            key_der: leaf.key_pkcs8_der().to_vec(),
            spiffe_id: spec.spiffe_id.clone().unwrap_or_default(),
            valid,
        });
    }
    let root_pem = root.cert_pem();
    let bundle = TrustBundle::from_pem(Path::new(CA_FILE), root_pem.as_bytes())?;
    Ok(Fixture {
        provider: rustls::crypto::aws_lc_rs::default_provider(),
        root_pem,
        other_root_pem: other.cert_pem(),
        bundle,
        identities,
        certs_der,
        secrets,
    })
}
