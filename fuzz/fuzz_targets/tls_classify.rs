//! `handshake_failure` on rustls errors and alerts, bare I/O errors, both wrapped the
//! way tokio-rustls and hyper wrap them, and arbitrary first bytes and contexts.
//! Never panics; tls/certificate reasons only; plaintext first bytes are `not_tls`;
//! alerts are named refusals; closes and resets are `peer_closed` (or, right after a
//! certificate request, a silent client-certificate refusal); bounded details.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mtls_prober::classify::tls::HandshakeContext;
use mtls_prober::tls::capture::SNIFF_LEN;
use mtls_prober_fuzz::inputs::{Wrap, io_error, rustls_error};
use mtls_prober_fuzz::oracles::check_handshake;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    wrap: u8,
    kind: u8,
    choice: u8,
    alert: u8,
    secs: u32,
    cert_requested: bool,
    cert_sent: bool,
    after_handshake: bool,
    bytes_read: u64,
    versions: u8,
    alpn: u8,
    first_bytes: &'a [u8],
    text: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let wrap = [Wrap::Plain, Wrap::Rustls, Wrap::Nested][usize::from(input.wrap % 3)];
    // The free text of `General`/`Other` errors: rustls and webpki write it, not the
    // peer, so it is printable (control characters would trip the one-line check).
    let text: String = input
        .text
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let err = io_error(
        wrap,
        usize::from(input.kind),
        rustls_error(input.choice, input.alert, u64::from(input.secs), &text),
    );
    let first = &input.first_bytes[..input.first_bytes.len().min(SNIFF_LEN)];
    let ctx = HandshakeContext {
        cert_requested: input.cert_requested,
        cert_sent: input.cert_sent,
        first_bytes: first,
        bytes_read: input.bytes_read,
        offered_versions: ["1.2, 1.3", "1.3", "1.2", ""][usize::from(input.versions % 4)],
        offered_alpn: ["h2, http/1.1", "h2", ""][usize::from(input.alpn % 3)],
        after_handshake: input.after_handshake,
    };
    check_handshake(&err, &ctx);
});
