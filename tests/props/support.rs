//! Case counts and the byte-level mutations shared by the properties.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// A config running `default` cases, or `PROPTEST_CASES` when that is set (run
/// `PROPTEST_CASES=20000 cargo test --release --test props` for a long session).
pub fn cases(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        // A failure is reported with a small input, but shrinking must not turn a
        // red CI run into a slow one.
        max_shrink_iters: 4096,
        ..Config::default()
    }
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
pub enum Edit {
    /// Cut everything from here on.
    Truncate(Index),
    /// Flip one bit.
    FlipBit(Index, u8),
    /// Overwrite one byte.
    Set(Index, u8),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
    /// Remove up to `n` bytes.
    Remove(Index, usize),
    /// Repeat a slice of up to `n` bytes in place.
    Duplicate(Index, usize),
    /// Swap two bytes.
    Swap(Index, Index),
}

/// Bytes that make parsers take odd branches: DER long-form lengths and tags, PEM and
/// TOML punctuation, line ends, NUL, non-UTF-8.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x16, 0x17, 0x18, 0x1e, 0x30, 0x31, 0x7f, 0x80,
    0x81, 0x82, 0x83, 0x84, 0x88, 0xa0, 0xa3, 0xff, b'-', b'=', b'\n', b'\r', b' ', b'"', b'[',
    b']', b'.', b'/', b'+', 0xc3, 0xe2,
];

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![any::<u8>(), proptest::sample::select(INTERESTING)]
}

/// A single edit.
pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<Index>().prop_map(Edit::Truncate),
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Edit::FlipBit(i, b)),
        (any::<Index>(), byte()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<Index>(), prop::collection::vec(byte(), 1..16))
            .prop_map(|(i, v)| Edit::Insert(i, v)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Edit::Remove(i, n)),
        (any::<Index>(), 1usize..256).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Swap(a, b)),
    ]
}

/// Up to `max` edits.
pub fn edits(max: usize) -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit(), 0..=max)
}

/// Applies `edits` in order.
pub fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len();
        // Positions are taken modulo len + 1 so an edit can also hit the end.
        let at = |i: &Index| i.index(len + 1);
        match e {
            Edit::Truncate(i) => bytes.truncate(at(i)),
            Edit::FlipBit(i, b) if len > 0 => bytes[i.index(len)] ^= 1 << b,
            Edit::Set(i, v) if len > 0 => bytes[i.index(len)] = *v,
            Edit::Insert(i, v) => {
                let p = at(i);
                bytes.splice(p..p, v.iter().copied());
            }
            Edit::Remove(i, n) => {
                let p = at(i);
                bytes.drain(p..(p + n).min(len));
            }
            Edit::Duplicate(i, n) => {
                let p = at(i);
                let slice = bytes[p..(p + n).min(len)].to_vec();
                bytes.splice(p..p, slice);
            }
            Edit::Swap(a, b) if len > 0 => bytes.swap(a.index(len), b.index(len)),
            _ => {}
        }
    }
    bytes
}
