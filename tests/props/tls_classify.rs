//! `handshake_failure` on arbitrary I/O errors, rustls errors and alerts (also wrapped
//! the way hyper and tokio-rustls wrap them), and arbitrary first bytes.

use mtls_prober::classify::tls::HandshakeContext;
use mtls_prober::tls::capture::SNIFF_LEN;
use proptest::prelude::*;

use super::inputs::{Wrap, io_error, rustls_error};
use super::oracles::check_handshake;
use super::support::cases;

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
