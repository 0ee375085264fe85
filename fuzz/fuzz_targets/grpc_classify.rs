//! `classify_grpc`: `STATUS [SERVICE]\n`, header lines, an empty line, then either `-`
//! (no trailers) or trailer lines and an empty line, then the DATA (length-prefixed
//! messages). Never panics; Ok exactly for grpc-status 0 with SERVING; consistent
//! reasons for every status; bounded, printable messages and one-line details.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_prober_fuzz::oracles::check_grpc;
use mtls_prober_fuzz::{first_line, headers as parse_headers, status_line};

fuzz_target!(|data: &[u8]| {
    let (line, rest) = first_line(data);
    let (status, _) = status_line(line);
    let text = String::from_utf8_lossy(line);
    let service = text.split_ascii_whitespace().nth(1).unwrap_or_default();
    let (headers, rest) = parse_headers(rest);
    let (trailers, body) = match first_line(rest) {
        (b"-", body) => (None, body),
        _ => {
            let (t, body) = parse_headers(rest);
            (Some(t), body)
        }
    };
    // The exchange bounds the DATA to 16 KiB.
    let body = &body[..body.len().min(16 * 1024)];
    check_grpc(status, &headers, trailers.as_ref(), body, service);
});
