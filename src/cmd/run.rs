//! `mtls-prober run`: the agent, until SIGTERM or SIGINT.

use std::process::ExitCode;
use std::sync::Arc;

use super::CmdError;
use crate::agent::{Agent, AgentOptions};
use crate::cli::RunArgs;
use crate::clock::SystemClock;
use crate::config::Env;

/// Runs the agent; exit 0 after a clean shutdown.
pub async fn run(args: RunArgs, env: Env) -> Result<ExitCode, CmdError> {
    let agent = Agent::start(AgentOptions {
        config_path: args.config,
        env,
        clock: Arc::new(SystemClock),
    })
    .await
    .map_err(CmdError)?;
    wait_for_signal().await;
    agent.shutdown().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
