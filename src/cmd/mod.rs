//! One module per subcommand; each returns an exit code or a [`CmdError`] (exit 2).

pub mod check;
pub mod demo;
pub mod plan;
pub mod probe;
pub mod run;
pub mod watch;

use std::fmt;
use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::config::{ConfigError, Env, process_env};

/// A usage, config or identity error: printed once, exit code 2.
#[derive(Debug)]
pub struct CmdError(pub String);

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ConfigError> for CmdError {
    fn from(e: ConfigError) -> Self {
        Self(e.to_string())
    }
}

/// Runs the parsed command line.
pub async fn dispatch(cli: Cli) -> ExitCode {
    let env: Env = process_env();
    let result = match cli.command {
        Command::Probe(args) => probe::run(args, &env).await,
        Command::Check(args) => check::run(&args, &env).await,
        Command::Run(args) => run::run(args, env).await,
        Command::Watch(args) => watch::run(args, &env).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Plan(args) => plan::run(&args, &env),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
