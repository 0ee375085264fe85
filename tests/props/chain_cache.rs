//! The verified-chain cache (`tls::chain_cache`) against a verifier without it: for
//! generated chains (valid, expired or not-yet-valid leaf, expiring intermediate,
//! rotated intermediate, wrong issuer, rotated root, name-constrained root, path length
//! exceeded, no intermediate) and a sequence of probes at moving clock times with bundle
//! reloads in between, both give the same verdict (stage, reason, detail, root) on every
//! probe.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use mtls_prober::classify::{Failure, Reason};
use mtls_prober::config::PeerExpectation;
use mtls_prober::identity::load::TrustBundle;
use mtls_prober::tls::verifier::PeerVerifier;
use proptest::prelude::*;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SanType,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;

use super::support::cases;

const ID: &str = "spiffe://test.local/ns/a/sa/b";
const HOUR: i64 = 3600;

/// The clock every window is relative to (whole seconds).
fn t0() -> i64 {
    static T0: OnceLock<i64> = OnceLock::new();
    *T0.get_or_init(|| OffsetDateTime::now_utc().unix_timestamp())
}

fn at(hours: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t0() + hours * HOUR).unwrap()
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

fn ca_params(cn: &str, from: i64, to: i64, path_len: Option<u8>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = at(from);
    p.not_after = at(to);
    p
}

fn root(cn: &str, constrained: bool) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = ca_params(cn, -24 * 400, 24 * 400, None);
    if constrained {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("allowed.test".into())],
            excluded_subtrees: Vec::new(),
        });
    }
    let der = p.self_signed(&key).unwrap().der().clone();
    Ca {
        issuer: Issuer::new(p, key),
        der,
    }
}

fn intermediate(parent: &Ca, cn: &str, from: i64, to: i64, path_len: Option<u8>) -> Ca {
    let key = KeyPair::generate().unwrap();
    let p = ca_params(cn, from, to, path_len);
    let der = p.signed_by(&key, &parent.issuer).unwrap().der().clone();
    Ca {
        issuer: Issuer::new(p, key),
        der,
    }
}

fn leaf(parent: &Ca, from: i64, to: i64, dns: &str) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.subject_alt_names = vec![
        SanType::URI(ID.try_into().unwrap()),
        SanType::DnsName(dns.try_into().unwrap()),
    ];
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.not_before = at(from);
    p.not_after = at(to);
    p.signed_by(&key, &parent.issuer).unwrap().der().clone()
}

/// The roots a bundle may hold.
#[derive(Clone, Copy, Debug)]
enum RootId {
    A,
    B,
    Constrained,
}

/// One generated mesh: roots, intermediates (one expiring at `int_expiry` hours from
/// t0, one rotated, one too deep for its parent's path length) and the chains a peer
/// may present.
struct World {
    roots: [CertificateDer<'static>; 3],
    chains: Vec<(&'static str, Vec<CertificateDer<'static>>)>,
}

impl World {
    fn new(int_expiry: i64, leaf_expiry: i64) -> Self {
        let a = root("root A", false);
        let b = root("root B", false);
        let n = root("root N", true);
        // The issuer, valid from yesterday until `int_expiry`, path length 0.
        let i1 = intermediate(&a, "issuer", -24, int_expiry, Some(0));
        // Rotated: same subject, new key and DER.
        let i1r = intermediate(&a, "issuer", -1, 24 * 30, Some(0));
        // Under an issuer with path length 0: not allowed.
        let deep = intermediate(&i1, "too deep", -24, 24 * 30, None);
        let ib = intermediate(&b, "issuer B", -24, 24 * 30, None);
        let inn = intermediate(&n, "issuer N", -24, 24 * 30, None);
        let ok = leaf(&i1, -1, leaf_expiry, "svc.allowed.test");
        let chains = vec![
            ("valid", vec![ok.clone(), i1.der.clone()]),
            (
                "valid, another leaf",
                vec![leaf(&i1, -2, 24 * 3, "x.allowed.test"), i1.der.clone()],
            ),
            (
                "expired leaf",
                vec![leaf(&i1, -48, -24, "svc.allowed.test"), i1.der.clone()],
            ),
            (
                "not yet valid leaf",
                vec![leaf(&i1, 24, 48, "svc.allowed.test"), i1.der.clone()],
            ),
            (
                "rotated intermediate",
                vec![leaf(&i1r, -1, 24, "svc.allowed.test"), i1r.der.clone()],
            ),
            (
                "wrong issuer",
                vec![leaf(&i1r, -1, 24, "svc.allowed.test"), i1.der.clone()],
            ),
            (
                "path length exceeded",
                vec![
                    leaf(&deep, -1, 24, "svc.allowed.test"),
                    deep.der.clone(),
                    i1.der.clone(),
                ],
            ),
            (
                "extra intermediate",
                vec![ok.clone(), i1.der.clone(), ib.der.clone()],
            ),
            (
                "rotated root",
                vec![leaf(&ib, -1, 24, "svc.allowed.test"), ib.der.clone()],
            ),
            (
                "name constraints kept",
                vec![leaf(&inn, -1, 24, "svc.allowed.test"), inn.der.clone()],
            ),
            (
                "name constraints broken",
                vec![leaf(&inn, -1, 24, "svc.elsewhere.test"), inn.der.clone()],
            ),
            (
                "no intermediate",
                vec![leaf(&a, -1, 24, "svc.allowed.test")],
            ),
        ];
        Self {
            roots: [a.der, b.der, n.der],
            chains,
        }
    }

    fn bundle(&self, roots: &[RootId], cached: bool) -> Arc<TrustBundle> {
        let certs = roots
            .iter()
            .map(|r| self.roots[*r as usize].clone())
            .collect();
        let b = TrustBundle::from_certs(Path::new("bundle.pem"), certs, [0; 32]).unwrap();
        Arc::new(if cached { b } else { b.without_chain_cache() })
    }
}

fn verifier(bundle: Arc<TrustBundle>) -> PeerVerifier {
    PeerVerifier::new(
        Some(bundle),
        PeerExpectation::SpiffeId(ID.parse().unwrap()),
        rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
    )
}

fn unix(hours_from_t0: i64) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(t0() + hours_from_t0 * HOUR).unwrap(),
    ))
}

/// One probe: which chain, when (minutes from t0), and whether the bundle is reloaded
/// first (with which roots).
#[derive(Clone, Debug)]
struct Probe {
    chain: usize,
    minutes: i64,
    reload: Option<usize>,
}

const BUNDLES: [&[RootId]; 4] = [
    &[RootId::A],
    &[RootId::A, RootId::B, RootId::Constrained],
    &[RootId::B],
    &[RootId::Constrained, RootId::A],
];

fn probes() -> impl Strategy<Value = Vec<Probe>> {
    // Mostly the valid chains of one issuer (what a mesh presents), so that the cache
    // is hit often, with every other shape in between; a reload now and then.
    let chain = prop_oneof![6 => 0usize..2, 4 => 0usize..12];
    let reload = prop_oneof![9 => Just(None), 1 => (0..BUNDLES.len()).prop_map(Some)];
    prop::collection::vec(
        (chain, -2 * 60i64..62 * 60, reload).prop_map(|(chain, minutes, reload)| Probe {
            chain,
            minutes,
            reload,
        }),
        1..60,
    )
}

fn verdict(
    v: &PeerVerifier,
    chain: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<Option<String>, Failure> {
    v.check(&chain[0], &chain[1..], now)
}

proptest! {
    #![proptest_config(cases(48))]

    #[test]
    fn cached_and_uncached_verifiers_agree_on_every_probe(
        int_expiry in 1i64..60,
        leaf_expiry in 1i64..60,
        mut sequence in probes(),
        sorted in any::<bool>(),
    ) {
        let world = World::new(int_expiry, leaf_expiry);
        if sorted {
            // A clock that only moves forward, as it does.
            sequence.sort_by_key(|p| p.minutes);
        }
        let mut current = 1;
        let mut cached = verifier(world.bundle(BUNDLES[current], true));
        let mut uncached = verifier(world.bundle(BUNDLES[current], false));
        for p in &sequence {
            if let Some(b) = p.reload {
                // A reload: new bundles, the cached one starting empty.
                current = b;
                cached = verifier(world.bundle(BUNDLES[current], true));
                uncached = verifier(world.bundle(BUNDLES[current], false));
            }
            let (name, chain) = &world.chains[p.chain];
            let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                u64::try_from(t0() + p.minutes * 60).unwrap(),
            ));
            let a = verdict(&cached, chain, now);
            let b = verdict(&uncached, chain, now);
            prop_assert_eq!(&a, &b, "{} at {} min with bundle {:?}", name, p.minutes, BUNDLES[current]);
        }
    }
}

#[test]
fn the_cache_is_used_and_a_rotated_or_expired_intermediate_is_verified_again() {
    let world = World::new(30, 60);
    let chain = |name: &str| &world.chains.iter().find(|(n, _)| *n == name).unwrap().1;
    let bundle = world.bundle(&[RootId::A], true);
    let v = verifier(bundle.clone());
    // The first probe verifies the whole chain; the next ones (also with other leaves
    // from the same issuer) only their leaf.
    let first = verdict(&v, chain("valid"), unix(0)).unwrap();
    assert!(first.is_some());
    assert_eq!(verdict(&v, chain("valid"), unix(1)).unwrap(), first);
    assert_eq!(
        verdict(&v, chain("valid, another leaf"), unix(1)).unwrap(),
        first
    );
    assert_eq!(bundle.chain_cache().stats(), (2, 1));
    // A rotated intermediate (same subject, new DER) is verified in full, not taken
    // from the cache, and cached in its own right.
    verdict(&v, chain("rotated intermediate"), unix(1)).unwrap();
    assert_eq!(bundle.chain_cache().stats(), (2, 2));
    assert_eq!(bundle.chain_cache().len(), 2);
    // The issuer was valid an hour before its not_after: the first probe after it
    // fails with cert_expired, though the path is cached.
    verdict(&v, chain("valid"), unix(29)).unwrap();
    let expired = verdict(&v, chain("valid"), unix(31)).unwrap_err();
    assert_eq!(expired.reason, Reason::CertExpired, "{expired}");
    // A leaf the cached issuer did not sign (its rotated twin did: same name, another
    // key), an expired leaf: decided in full.
    let wrong = verdict(&v, chain("wrong issuer"), unix(1)).unwrap_err();
    assert_eq!(wrong.reason, Reason::CertInvalid, "{wrong}");
    let old = verdict(&v, chain("expired leaf"), unix(1)).unwrap_err();
    assert_eq!(old.reason, Reason::CertExpired, "{old}");
    // Name-constrained chains and chains without an intermediate are never cached.
    let constrained = world.bundle(&[RootId::Constrained], true);
    let v = verifier(constrained.clone());
    verdict(&v, chain("name constraints kept"), unix(1)).unwrap();
    verdict(&v, chain("name constraints kept"), unix(1)).unwrap();
    assert!(verdict(&v, chain("name constraints broken"), unix(1)).is_err());
    assert_eq!(constrained.chain_cache().stats(), (0, 3));
    assert!(constrained.chain_cache().is_empty());
    // A reloaded bundle starts empty; the old chain does not reach a rotated root.
    let rotated = world.bundle(&[RootId::B], true);
    let v = verifier(rotated.clone());
    assert!(rotated.chain_cache().is_empty());
    let untrusted = verdict(&v, chain("valid"), unix(1)).unwrap_err();
    assert_eq!(untrusted.reason, Reason::CertUntrusted, "{untrusted}");
    verdict(&v, chain("rotated root"), unix(1)).unwrap();
    verdict(&v, chain("rotated root"), unix(1)).unwrap();
    assert_eq!(rotated.chain_cache().stats(), (1, 2));
}

/// A leaf for `id` under `parent` (valid from an hour ago for a day).
fn leaf_for(parent: &Ca, id: &str) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.subject_alt_names = vec![
        SanType::URI(id.try_into().unwrap()),
        SanType::DnsName("svc.allowed.test".try_into().unwrap()),
    ];
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = at(-1);
    p.not_after = at(24);
    p.signed_by(&key, &parent.issuer).unwrap().der().clone()
}

#[test]
fn a_path_cached_for_one_trust_domain_never_vouches_for_another() {
    // Workload API bundles: each trust domain's roots vouch only for its own peers. A
    // peer claiming b.test but chained to a.test's root must fail the chain stage even
    // after a.test's path (the same intermediate DER) is in the cache.
    let (a, b) = (root("root a.test", false), root("root b.test", false));
    let issuer = intermediate(&a, "issuer a.test", -24, 24 * 30, None);
    let own = leaf_for(&issuer, "spiffe://a.test/ns/x/sa/y");
    let stranger = leaf_for(&issuer, "spiffe://b.test/ns/x/sa/y");
    let bundle = |cached: bool| {
        let b = TrustBundle::per_domain(
            Path::new("unix:///run/spire/agent.sock"),
            "a.test",
            vec![
                ("a.test".to_owned(), vec![a.der.clone()]),
                ("b.test".to_owned(), vec![b.der.clone()]),
            ],
            [0; 32],
        )
        .unwrap();
        Arc::new(if cached { b } else { b.without_chain_cache() })
    };
    let (cached_bundle, uncached_bundle) = (bundle(true), bundle(false));
    let by_name = |b: Arc<TrustBundle>| {
        PeerVerifier::new(
            Some(b),
            PeerExpectation::DnsName("svc.allowed.test".to_owned()),
            rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
        )
    };
    let (cached, uncached) = (by_name(cached_bundle.clone()), by_name(uncached_bundle));
    for v in [&cached, &uncached] {
        assert!(verdict(v, &[own.clone(), issuer.der.clone()], unix(0)).is_ok());
        assert!(verdict(v, &[own.clone(), issuer.der.clone()], unix(0)).is_ok());
    }
    assert_eq!(cached_bundle.chain_cache().stats(), (1, 1));
    let chain = [stranger, issuer.der.clone()];
    let a = verdict(&cached, &chain, unix(0)).unwrap_err();
    let b = verdict(&uncached, &chain, unix(0)).unwrap_err();
    assert_eq!(a.reason, Reason::CertUntrusted, "{a}");
    assert_eq!(a, b);
}
