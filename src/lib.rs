//! `mtls-prober`: synthetic mTLS connectivity probes for service meshes.
//!
//! A probe walks `resolve → connect → tls → certificate → identity → request`, stops at
//! the first failing layer and reports it with a closed `stage`/`reason` pair (SPEC §5)
//! plus a free-text detail naming the concrete values. The agent schedules probes over
//! a matrix of edges and exports the results to Prometheus.
//!
//! Module map (walls: `identity` never imports `probe`; `tls` never parses TOML;
//! `classify` never does I/O; `metrics` only reads probe reports):
//! - [`agent`]: the scheduled agent, its metrics, endpoints and reloads;
//! - [`classify`]: the taxonomy and the pure error → reason mapping;
//! - [`demo`]: the in-memory PKI and the loopback mesh of broken peers;
//! - [`plan`]: Kubernetes objects in, the matrix and its expectations out (pure).

pub mod agent;
pub mod classify;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod demo;
pub mod fsutil;
pub mod identity;
pub mod memory;
pub mod plan;
pub mod probe;
pub mod report;
mod sync;
pub mod tls;
pub mod watch;
