//! Support for the cargo-fuzz targets: the oracles, the generated PKI and the input
//! builders are the property tests' own files (`tests/props/`), included by path so
//! both check exactly the same invariants; this file adds the decoders that turn a
//! fuzzer's bytes into each entry point's arguments.
//!
//! The input formats are plain text where the entry point takes text, so seeds are
//! readable and libFuzzer's dictionary-free mutations still hit the keywords:
//! - `config_load`: TOML, then optional `\0`-separated `KEY=VALUE` environment entries
//!   (`KEY` gets the `MTLS_PROBER_` prefix unless it starts with `!`);
//! - `http_classify`: `STATUS [RANGES]\n`, header lines, an empty line, the body;
//! - `serve_healthz`: `METHOD PATH\n`, header lines, an empty line, then
//!   `source\0own\0peer` (a missing part is `None`);
//! - `identity_pem`, `cert_parse`, `tls_classify`: see those targets.

#![forbid(unsafe_code)]

use http::{HeaderMap, HeaderName, HeaderValue};
use mtls_prober::config::{Env, StatusSet};

#[path = "../../tests/props/fixture.rs"]
pub mod fixture;
#[path = "../../tests/props/inputs.rs"]
pub mod inputs;
#[path = "../../tests/props/oracles.rs"]
pub mod oracles;

/// The origin every fuzzed config is loaded as: spaces and non-ASCII included, since
/// errors must name it verbatim.
pub const ORIGIN: &str = "/etc/mtls prober/próbes.toml";

/// Splits `config_load` input into the TOML text and the environment.
pub fn config_input(data: &[u8]) -> (String, Env) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let toml = parts.next().unwrap_or_default().to_owned();
    let mut env = Env::new();
    for entry in parts {
        let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
        let var = match key.strip_prefix('!') {
            Some(literal) => literal.to_owned(),
            None => format!("MTLS_PROBER_{key}"),
        };
        env.insert(var, value.to_owned());
    }
    (toml, env)
}

/// Splits off the first line (without its `\r\n` or `\n`).
pub fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (strip_cr(&data[..i]), &data[i + 1..]),
        None => (strip_cr(data), &[]),
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Reads `name: value` lines up to an empty line; returns the headers and the rest.
/// Lines that are not a valid header are skipped.
pub fn headers(mut data: &[u8]) -> (HeaderMap, &[u8]) {
    let mut map = HeaderMap::new();
    while !data.is_empty() {
        let (line, rest) = first_line(data);
        data = rest;
        if line.is_empty() {
            break;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &[][..]),
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.trim_ascii()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(n, v);
        }
    }
    (map, data)
}

/// `STATUS [RANGES]`: any decimal status (taken modulo 65536), and `expect_status`
/// ranges like `200-399,500`, kept within 100..=599 as the config loader guarantees;
/// none valid means the default 200-399.
pub fn status_line(line: &[u8]) -> (u16, StatusSet) {
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_ascii_whitespace();
    let status = words
        .next()
        .map(|w| {
            w.bytes()
                .filter(u8::is_ascii_digit)
                .fold(0u32, |n, d| (n * 10 + u32::from(d - b'0')) % 65536)
        })
        .unwrap_or(200) as u16;
    let mut ranges = Vec::new();
    for r in words.next().unwrap_or_default().split(',') {
        let (lo, hi) = r.split_once('-').unwrap_or((r, r));
        if let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) {
            if (100..=599).contains(&lo) && (lo..=599).contains(&hi) {
                ranges.push((lo, hi));
            }
        }
    }
    let expect = if ranges.is_empty() {
        StatusSet::default_success()
    } else {
        StatusSet::from_ranges(ranges)
    };
    (status, expect)
}

/// An edit of a generated file, decoded from four bytes: operation, position (16 bits,
/// taken modulo the length), value.
pub fn apply_edits(mut bytes: Vec<u8>, ops: &[u8]) -> Vec<u8> {
    for op in ops.chunks_exact(4) {
        let len = bytes.len();
        let pos = usize::from(u16::from_be_bytes([op[1], op[2]])) % (len + 1);
        let v = op[3];
        match op[0] % 6 {
            0 => bytes.truncate(pos),
            1 if pos < len => bytes[pos] = v,
            2 => bytes.insert(pos, v),
            3 => {
                bytes.drain(pos..(pos + usize::from(v)).min(len));
            }
            4 => {
                let slice = bytes[pos..(pos + usize::from(v)).min(len)].to_vec();
                bytes.splice(pos..pos, slice);
            }
            5 if pos < len => bytes[pos] ^= 1 << (v % 8),
            _ => {}
        }
    }
    bytes
}
