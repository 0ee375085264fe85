//! Integration tests, one binary (each extra test binary re-links tokio, rustls and
//! hyper, which is slow on small CI machines).
//!
//! Module index:
//! - `common`: the test PKI (written to temp files), probe helpers, external tools;
//! - `third_party`: interop with a real OpenSSL peer (`openssl s_server`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, unreachable_pub)]

mod common;
mod third_party;
