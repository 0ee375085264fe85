//! `healthz_response`: `METHOD PATH`, header lines, an empty line, then
//! `source\0own\0peer`. Never panics; 404/405/200 as documented; the 200 body is the
//! five-field JSON with the echo rules; bounded size.
#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use mtls_prober_fuzz::oracles::check_healthz;
use mtls_prober_fuzz::{first_line, headers};

fuzz_target!(|data: &[u8]| {
    let (line, rest) = first_line(data);
    let (method, path) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &b"/healthz"[..]),
    };
    let method = Method::from_bytes(method).unwrap_or(Method::GET);
    let path = String::from_utf8_lossy(path);
    let (headers, rest) = headers(rest);
    let rest = String::from_utf8_lossy(rest);
    let mut parts = rest.split('\0');
    let source = parts.next().unwrap_or_default();
    let own = parts.next();
    let peer = parts.next();
    check_healthz(&method, &path, &headers, source, own, peer);
});
