//! Property tests (proptest) for the entry points that take untrusted input: the config
//! loader, the PEM/identity loader, the HTTP and gRPC answer classifiers, the `[serve]` request
//! handler, the TLS failure classifier and the certificate summariser.
//!
//! One binary, like `tests/it` (every extra test binary re-links tokio, rustls and
//! hyper). The floor of every property is "no input panics"; each also checks an
//! invariant that a wrong implementation would break (errors name their origin, key
//! bytes never reach a message, details stay bounded, reasons stay consistent).
//!
//! The number of cases per property is sized for CI (the whole binary in well under a
//! minute on two busy cores); `PROPTEST_CASES=10000 cargo test --test props` runs more.
//! The same entry points are fuzzed with cargo-fuzz under `fuzz/` (docs/fuzzing.md).
//!
//! Module index:
//! - `oracles`: the invariant checkers, shared with the fuzz targets;
//! - `fixture`: the generated PKI (once per process), shared with the fuzz targets;
//! - `inputs`: rustls/I/O error builders and env filters, shared with the fuzz targets;
//! - `support`: case counts and byte-mutation strategies;
//! - `config`: `config::load_str` on arbitrary text, mutated `probes.toml`, env maps;
//! - `identity`: `TrustBundle::from_pem` and `ClientIdentity::from_pem`;
//! - `http_classify`: `classify_response` and `response_refusal`;
//! - `grpc_classify`: `classify_grpc` over trailers, trailers-only answers and DATA;
//! - `serve`: `healthz_response`;
//! - `tls_classify`: `handshake_failure` over io/rustls errors and alerts;
//! - `cert_parse`: `CertSummary::parse` on arbitrary and mutated DER;
//! - `chain_cache`: the peer verifier with and without its verified-chain cache.
//! - `plan_assume`: `plan --assume` flips exactly the edges its namespace decides.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod cert_parse;
mod chain_cache;
mod config;
mod fixture;
mod grpc_classify;
mod http_classify;
mod identity;
mod inputs;
mod oracles;
mod plan_assume;
mod serve;
mod support;
mod tls_classify;
