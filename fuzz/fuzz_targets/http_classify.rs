//! `classify_response` and `response_refusal`: `STATUS [RANGES]`, header lines, an
//! empty line, the body (first 512 bytes, as the prober keeps). Never panics; Ok
//! exactly for expected statuses; consistent reasons; bounded one-line details.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_prober::classify::http::BODY_PREFIX_LEN;
use mtls_prober_fuzz::oracles::check_http;
use mtls_prober_fuzz::{first_line, headers, status_line};

fuzz_target!(|data: &[u8]| {
    let (line, rest) = first_line(data);
    let (status, expect) = status_line(line);
    let (headers, body) = headers(rest);
    let body = &body[..body.len().min(BODY_PREFIX_LEN)];
    check_http(status, &headers, body, &expect);
});
