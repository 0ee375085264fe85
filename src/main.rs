//! The `mtls-prober` binary: parse, set up logging and the runtime, dispatch.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use mtls_prober::cli::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Long-running commands log at info (one line per edge state change); one-shot
    // commands only warn, their report is on stdout. The demo on a terminal keeps the
    // per-edge lines quiet: its own summary and the status page say the same, and 32
    // warnings would scroll its instructions away. RUST_LOG overrides all of these.
    let stderr_tty = std::io::stderr().is_terminal();
    let (level, structured) = match &cli.command {
        Command::Run(_) => ("info", !stderr_tty),
        Command::Demo(_) if stderr_tty => ("warn,mtls_prober::agent::edges=off", false),
        Command::Demo(_) => ("info", true),
        Command::Watch(_) | Command::Probe(_) | Command::Check(_) | Command::Plan(_) => {
            ("warn", false)
        }
    };
    let structured = match cli.log_format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) => false,
        None => structured,
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if structured {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
    // On one core (pinned, or a CPU limit of at most one core), tokio's multi-thread
    // scheduler is one worker plus the machinery to hand tasks between workers: the
    // current-thread scheduler runs the same tasks for less CPU per wakeup. Renderings
    // of /metrics, the API and the status page still run on the blocking pool's
    // threads.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let one_core = cores == 1;
    // One malloc arena per worker: the blocking pool's threads share them instead of
    // each keeping pages of its own (`memory::limit_arenas`).
    mtls_prober::memory::limit_arenas(cores);
    let mut builder = if one_core {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(mtls_prober::cmd::dispatch(cli))
}
