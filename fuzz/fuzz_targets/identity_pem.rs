//! `TrustBundle::from_pem` and `ClientIdentity::from_pem`. The first byte picks the
//! mode:
//! - `0`: the rest is a trust bundle;
//! - `1`: the rest is `cert-chain.pem`, `\0`, `key.pem`;
//! - `2`: generated material (no key is ever committed: it is minted at start-up):
//!   byte 1 picks the certificate, byte 2 the key, byte 3 the flags (bit 0: edit the
//!   key file rather than the chain, bit 1: swap the files, bit 2: append the
//!   untrusted root to the chain, bit 3: put the key in the chain file too), then
//!   4-byte edits (`fuzz/src/lib.rs`);
//! - `3`: a bundle of the generated roots (byte 1: which), then edits.
//!
//! Never panics; errors name the file at fault and never contain a generated key's
//! bytes (DER, hex or base64).
#![no_main]

use std::path::Path;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use mtls_prober_fuzz::apply_edits;
use mtls_prober_fuzz::fixture::{CA_FILE, CERT_FILE, KEY_FILE, fixture};
use mtls_prober_fuzz::oracles::{check_bundle, check_identity};

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let identity = |cert: &[u8], key: &[u8]| {
        let _ = check_identity(
            Path::new(CERT_FILE),
            Path::new(KEY_FILE),
            cert,
            key,
            &fx.bundle,
            &fx.provider,
            SystemTime::now(),
            &fx.secrets,
        );
    };
    match mode % 4 {
        0 => {
            check_bundle(Path::new(CA_FILE), rest, &fx.secrets);
        }
        1 => {
            let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            identity(&rest[..split], rest.get(split + 1..).unwrap_or_default());
        }
        2 => {
            let [c, k, flags, edits @ ..] = rest else {
                return;
            };
            let ids = &fx.identities;
            let cert_id = &ids[usize::from(*c) % ids.len()];
            let key_id = &ids[usize::from(*k) % ids.len()];
            let mut cert = cert_id.chain_pem.clone().into_bytes();
            let mut key = key_id.key_pem.clone().into_bytes();
            if flags & 4 != 0 {
                cert.extend_from_slice(fx.other_root_pem.as_bytes());
            }
            if flags & 8 != 0 {
                cert.extend_from_slice(&key);
            }
            if flags & 1 != 0 {
                key = apply_edits(key, edits);
            } else {
                cert = apply_edits(cert, edits);
            }
            if flags & 2 != 0 {
                std::mem::swap(&mut cert, &mut key);
            }
            identity(&cert, &key);
        }
        _ => {
            let [which, edits @ ..] = rest else {
                return;
            };
            let mut bundle = Vec::new();
            if which & 1 != 0 || which & 3 == 0 {
                bundle.extend_from_slice(fx.root_pem.as_bytes());
            }
            if which & 2 != 0 {
                bundle.extend_from_slice(fx.other_root_pem.as_bytes());
            }
            if which & 4 != 0 {
                bundle.extend_from_slice(fx.identities[0].key_pem.as_bytes());
            }
            check_bundle(Path::new(CA_FILE), &apply_edits(bundle, edits), &fx.secrets);
        }
    }
});
