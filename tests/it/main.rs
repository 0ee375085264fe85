//! Integration tests, one binary (each extra test binary re-links tokio, rustls and
//! hyper, which is slow on small CI machines).
//!
//! Module index:
//! - `common`: the test PKI (written to temp files), probe helpers, a loopback DNS
//!   server, external tools;
//! - `load` (ignored; run by .ci/run): endpoints under scrape load, the soak;
//! - `net`: local identity, resolve and connect stages;
//! - `tls`, `certificate`, `identity`, `request`: one real server per reason of SPEC §5;
//! - `demo`: the demo mesh shows every failure class by name;
//! - `faults`: a thousand failing edges, DNS failing under discovered edges;
//! - `far_side`: how the probed agent's `[serve]` saw us, also through a proxy;
//! - `fleet` (ignored; run by .ci/run): six agent processes share the matrix
//!   (SPEC §12): hand-over, return, fail-open on DNS failure, rotation;
//! - `hostile`: hostile peers are cut off at their stage, within their bound;
//! - `expect`: `expect = "reject"` and `verify_strict` companions;
//! - `agent`: the agent binary: metrics, rotations, reloads, readiness, shutdown;
//! - `messages`: what people read: each message of issue 15, as the binary prints it;
//! - `browser`: the status page in headless chromium at 1400 and 420 px;
//! - `cli`: the binary's `check` and `probe` commands, exit codes and output;
//! - `watch`: the migration gate: verdicts, exit codes, reports;
//! - `terminal`: the watch view in tmux at 80×24;
//! - `third_party`: interop with a real OpenSSL peer (`openssl s_server`).
//! - `include`: `[agent] include` files loaded and reloaded by the agent;
//! - `plan`: `mtls-prober plan` on the fixtures of tests/fixtures/plan, bad input;
//! - `secrets`: no form of the private key in any output, on every key error path.
//! - `workload_api`: `[identity] source = "workload-api"` against a Workload API
//!   server speaking the real proto (rotations, federation, outages, malformed updates).
//! - `grpc`: `[target.grpc]` health checks against tonic servers (SPEC §13's table,
//!   ALPN, bounds, h2c and the STRICT companion);
//! - `silent`: silent client-certificate refusals (Java's HttpsServer) and their
//!   look-alikes that stay `connection_closed` (nginx `return 444`, a TCP deny).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod agent;
mod browser;
mod certificate;
mod cli;
mod common;
mod demo;
mod expect;
mod far_side;
mod faults;
mod fleet;
mod grpc;
mod hostile;
mod identity;
mod include;
mod load;
mod messages;
mod net;
mod plan;
mod request;
mod secrets;
mod silent;
mod terminal;
mod third_party;
mod tls;
mod watch;
mod workload_api;
