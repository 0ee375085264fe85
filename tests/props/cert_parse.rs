//! `CertSummary::parse` and `PeerInfo::from_chain` on arbitrary and mutated DER: what
//! the prober reports of whatever certificate a peer presents.

use proptest::prelude::*;
use proptest::sample::Index;
use rustls_pki_types::CertificateDer;

use super::fixture::fixture;
use super::oracles::{check_cert, check_chain};
use super::support::{apply, cases, edits};

/// One of the generated certificates, as DER.
fn generated(i: &Index) -> Vec<u8> {
    let certs = &fixture().certs_der;
    certs[i.index(certs.len())].clone()
}

/// Rewrites the two-digit year of every UTCTime (tag 0x17, length 13) to `yy`: dates
/// from 1950 to 2049, which a peer may present.
fn set_utc_years(mut der: Vec<u8>, yy: u8) -> Vec<u8> {
    let digits = [b'0' + yy / 10, b'0' + yy % 10];
    let mut i = 0;
    while i + 2 + 13 <= der.len() {
        if der[i] == 0x17 && der[i + 1] == 13 {
            der[i + 2..i + 4].copy_from_slice(&digits);
            i += 15;
        } else {
            i += 1;
        }
    }
    der
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn arbitrary_der(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check_cert(&bytes);
        check_chain(&[CertificateDer::from(bytes)], Some(&fixture().bundle));
    }

    /// Generated certificates, damaged: a peer's certificate can be anything.
    #[test]
    fn mutated_der(i in any::<Index>(), edits in edits(4)) {
        let der = apply(generated(&i), &edits);
        check_cert(&der);
        check_chain(&[CertificateDer::from(der)], Some(&fixture().bundle));
    }

    /// Generated certificates parse, and what they carry survives parsing.
    #[test]
    fn generated_der(i in any::<Index>()) {
        let der = generated(&i);
        let s = check_cert(&der).expect("a generated certificate does not parse");
        prop_assert_eq!(s.serial.len(), 32);
    }

    /// Chains of generated and damaged certificates in any order, with and without a
    /// bundle to look the root up in.
    #[test]
    fn mixed_chains(
        parts in prop::collection::vec((any::<Index>(), edits(1)), 0..4),
        with_bundle in any::<bool>(),
    ) {
        let chain: Vec<CertificateDer<'static>> = parts
            .iter()
            .map(|(i, e)| CertificateDer::from(apply(generated(i), e)))
            .collect();
        check_chain(&chain, with_bundle.then_some(&fixture().bundle));
    }

    /// Validity dates anywhere from 1950 to 2049, as UTCTime allows.
    #[test]
    fn any_utc_year(i in any::<Index>(), yy in 0u8..100) {
        let der = set_utc_years(generated(&i), yy);
        check_cert(&der).expect("changing a year broke the encoding");
        check_chain(&[CertificateDer::from(der)], Some(&fixture().bundle));
    }
}
