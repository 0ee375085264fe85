//! `CertSummary::parse` and `PeerInfo::from_chain` on arbitrary DER (seeds: generated
//! certificates). Never panics; summaries are self-consistent; the report of a chain
//! has RFC 3339 times.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_prober_fuzz::fixture::fixture;
use mtls_prober_fuzz::oracles::{check_cert, check_chain};
use rustls_pki_types::CertificateDer;

fuzz_target!(|data: &[u8]| {
    check_cert(data);
    let fx = fixture();
    let leaf = CertificateDer::from(data);
    check_chain(std::slice::from_ref(&leaf), Some(&fx.bundle));
    // As the last certificate of a chain too, where the root is looked up.
    let chain = [CertificateDer::from(&fx.certs_der[3][..]), leaf];
    check_chain(&chain, Some(&fx.bundle));
});
