//! `TrustBundle::from_pem` and `ClientIdentity::from_pem` on arbitrary bytes and on
//! truncated, mutated, relabelled and mixed PEM built from freshly generated material.

use std::path::Path;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use proptest::sample::Index;

use super::fixture::{CA_FILE, CERT_FILE, KEY_FILE, fixture};
use super::oracles::{SECRET_WINDOW, check_bundle, check_identity};
use super::support::{Edit, apply, cases, edits};

/// PEM labels a file might carry, right or wrong.
const LABELS: &[&str] = &[
    "CERTIFICATE",
    "PRIVATE KEY",
    "EC PRIVATE KEY",
    "RSA PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "PUBLIC KEY",
    "X509 CRL",
    "TRUSTED CERTIFICATE",
    "CERTIFICATE REQUEST",
    "",
];

/// One piece of a file: generated blocks (relabelled or not), comments, raw bytes.
#[derive(Clone, Debug)]
enum Piece {
    /// The trusted or the untrusted root.
    Root(bool),
    /// Identity `i`'s chain.
    Chain(Index),
    /// Identity `i`'s key.
    Key(Index),
    /// Identity `i`'s key with another label.
    RelabelledKey(Index, Index),
    /// A block of `n` KiB of base64 under a label.
    Huge(Index, usize),
    /// Text between blocks.
    Text(String),
    /// Any bytes.
    Bytes(Vec<u8>),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        3 => any::<bool>().prop_map(Piece::Root),
        3 => any::<Index>().prop_map(Piece::Chain),
        3 => any::<Index>().prop_map(Piece::Key),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Piece::RelabelledKey(a, b)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(l, n)| Piece::Huge(l, n)),
        2 => "[ -~\n]{0,40}".prop_map(Piece::Text),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Piece::Bytes),
    ]
}

fn render(pieces: &[Piece]) -> Vec<u8> {
    let fx = fixture();
    let ids = &fx.identities;
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Root(true) => out.extend_from_slice(fx.root_pem.as_bytes()),
            Piece::Root(false) => out.extend_from_slice(fx.other_root_pem.as_bytes()),
            Piece::Chain(i) => out.extend_from_slice(ids[i.index(ids.len())].chain_pem.as_bytes()),
            Piece::Key(i) => out.extend_from_slice(ids[i.index(ids.len())].key_pem.as_bytes()),
            Piece::RelabelledKey(i, l) => {
                let der = &ids[i.index(ids.len())].key_der;
                let label = LABELS[l.index(LABELS.len())];
                out.extend_from_slice(mtls_prober::demo::pki::pem(label, der).as_bytes());
            }
            Piece::Huge(l, kib) => {
                let label = LABELS[l.index(LABELS.len())];
                let body = vec![0x5a_u8; kib * 1024];
                out.extend_from_slice(mtls_prober::demo::pki::pem(label, &body).as_bytes());
            }
            Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
            Piece::Bytes(b) => out.extend_from_slice(b),
        }
    }
    out
}

fn file(pieces: usize, max_edits: usize) -> impl Strategy<Value = (Vec<Piece>, Vec<Edit>)> {
    (prop::collection::vec(piece(), 0..=pieces), edits(max_edits))
}

/// A clock from 1970 to 2100, so the generated certificates are also expired or not
/// yet valid (mostly the current time).
fn clock() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        3 => Just(SystemTime::now()),
        1 => (0u64..4_102_444_800).prop_map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s)),
    ]
}

proptest! {
    #![proptest_config(cases(128))]

    /// Arbitrary bytes as a trust bundle.
    #[test]
    fn bundle_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_bundle(Path::new(CA_FILE), &bytes, &fixture().secrets);
    }

    /// Mixed, relabelled and damaged blocks as a trust bundle: key blocks included,
    /// whose bytes must never reach the message.
    #[test]
    fn bundle_mixed_blocks((pieces, edits) in file(5, 4)) {
        let bytes = apply(render(&pieces), &edits);
        check_bundle(Path::new(CA_FILE), &bytes, &fixture().secrets);
    }

    /// Roots with any text between the blocks all load, in order.
    #[test]
    fn bundle_of_roots_loads(roots in prop::collection::vec(any::<bool>(), 1..5), junk in "[a-zA-Z0-9 #:.]{0,30}") {
        let fx = fixture();
        let mut text = String::new();
        for &trusted in &roots {
            text.push_str(&junk);
            text.push('\n');
            text.push_str(if trusted { &fx.root_pem } else { &fx.other_root_pem });
        }
        let bundle = check_bundle(Path::new(CA_FILE), text.as_bytes(), &fx.secrets)
            .expect("a bundle of CA certificates was refused");
        prop_assert_eq!(bundle.roots().len(), roots.len());
    }

    /// Identity `i`, untouched, loads exactly when it is valid; with another identity's
    /// key it is refused at the key file.
    #[test]
    fn generated_identities(i in any::<Index>(), k in any::<Index>()) {
        let fx = fixture();
        let ids = &fx.identities;
        let (cert, key) = (&ids[i.index(ids.len())], &ids[k.index(ids.len())]);
        let r = check_identity(
            Path::new(CERT_FILE), Path::new(KEY_FILE),
            cert.chain_pem.as_bytes(), key.key_pem.as_bytes(),
            &fx.bundle, &fx.provider, SystemTime::now(), &fx.secrets,
        );
        if std::ptr::eq(cert, key) {
            prop_assert_eq!(r.is_ok(), cert.valid, "{}: {:?}", cert.name, r.as_ref().err());
            if let Ok(id) = r {
                prop_assert_eq!(id.spiffe_id.as_ref().map(|s| s.as_str()), Some(cert.spiffe_id.as_str()));
            }
        } else {
            let e = r.expect_err("a key that belongs to another certificate was accepted");
            prop_assert_eq!(e.file.as_path(), Path::new(KEY_FILE), "{}", e);
        }
    }

    /// Damaged certificate and key files (and files swapped or mixed): no panic, errors
    /// name a file and never show key bytes.
    #[test]
    fn damaged_identity_files(
        (cert_pieces, cert_edits) in file(3, 3),
        (key_pieces, key_edits) in file(2, 3),
        now in clock(),
    ) {
        let fx = fixture();
        let cert = apply(render(&cert_pieces), &cert_edits);
        let key = apply(render(&key_pieces), &key_edits);
        let _ = check_identity(
            Path::new(CERT_FILE), Path::new(KEY_FILE), &cert, &key,
            &fx.bundle, &fx.provider, now, &fx.secrets,
        );
    }

    /// One valid identity with a few edits to one of its files, the most likely way to
    /// get past the parsers into the key and chain checks.
    #[test]
    fn nearly_valid_identity(
        i in 0usize..4,
        edits in edits(3),
        on_key in any::<bool>(),
        now in clock(),
    ) {
        let fx = fixture();
        let id = &fx.identities[i];
        let (mut cert, mut key) = (id.chain_pem.clone().into_bytes(), id.key_pem.clone().into_bytes());
        if on_key {
            key = apply(key, &edits);
        } else {
            cert = apply(cert, &edits);
        }
        let _ = check_identity(
            Path::new(CERT_FILE), Path::new(KEY_FILE), &cert, &key,
            &fx.bundle, &fx.provider, now, &fx.secrets,
        );
    }
}

proptest! {
    #![proptest_config(cases(16))]

    /// Megabytes of base64 (valid or not) parse or fail in bounded time.
    #[test]
    fn huge_blocks(mib in 1usize..4, label in any::<Index>(), garbage in any::<bool>()) {
        let fx = fixture();
        let label = LABELS[label.index(LABELS.len())];
        let mut text = mtls_prober::demo::pki::pem(label, &vec![0x30; mib << 20]).into_bytes();
        if garbage {
            let mid = text.len() / 2;
            text[mid] = b'!';
        }
        check_bundle(Path::new(CA_FILE), &text, &fx.secrets);
        let _ = check_identity(
            Path::new(CERT_FILE), Path::new(KEY_FILE), &text, &text,
            &fx.bundle, &fx.provider, SystemTime::now(), &fx.secrets,
        );
    }
}

/// The leak check itself: each encoding of a key window it promises to find is found.
#[test]
fn leak_check_finds_key_bytes() {
    let fx = fixture();
    let key = &fx.identities[0];
    let window = &key.key_der[40..40 + SECRET_WINDOW];
    let line = key.key_pem.lines().nth(1).unwrap();
    let base64 = &line[8..8 + SECRET_WINDOW];
    let leaks = [
        format!("bad key {}", mtls_prober::tls::peer::hex(window)),
        format!(
            "bad key {}",
            mtls_prober::tls::peer::hex(window).to_uppercase()
        ),
        format!("bad key near \"{base64}\""),
        format!("line: {line}"),
    ];
    let secrets = &fx.secrets;
    for text in leaks {
        let caught = std::panic::catch_unwind(|| secrets.assert_absent(&text, "test"));
        assert!(caught.is_err(), "not caught: {text:?}");
    }
    secrets.assert_absent("key.pem: malformed BEGIN line (27 bytes)", "test");
}
