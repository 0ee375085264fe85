//! The load harness: `cargo bench --bench load` (add `-- --quick` for the ≈1-minute CI
//! smoke run). See docs/performance.md for the method and the figures.
//!
//! One run starts, side by side: the mTLS target server (`--server`, its own process,
//! pinned to one core), the bare rustls client loop (`--bare`, its own process, pinned
//! to the other core) as the reference, and the agent (`mtls-prober run` with a
//! generated config, the release binary cargo builds for benches, pinned like the bare
//! loop). Every scenario is bounded in time and count and stops by itself; all traffic
//! stays on 127.0.0.1. Targets are reported as met or missed with the figure; the exit
//! code is non-zero only when the harness itself fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod agent;
mod bare;
mod pki;
mod procfs;
mod scenarios;
mod server;
mod table;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--server") => server::main(arg(&args, 1), arg(&args, 2).parse().unwrap_or(600)),
        // For profiling by hand: the PKI files the server and the agent read.
        Some("--pki") => pki::generate(std::path::Path::new(arg(&args, 1))).map(|_| ()),
        Some("--bare") => match arg(&args, 2).parse() {
            Ok(addr) => bare::main(
                arg(&args, 1),
                addr,
                arg(&args, 3).parse().unwrap_or(500.0),
                arg(&args, 4).parse().unwrap_or(500),
                arg(&args, 5).parse().unwrap_or(5000),
            ),
            Err(e) => Err(format!("--bare: bad address: {e}")),
        },
        _ => scenarios::run(scenarios::Options::from_args(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load harness error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn arg(args: &[String], i: usize) -> &str {
    args.get(i).map_or("", String::as_str)
}
