//! `mtls-prober demo`: a self-contained mesh on loopback, probed by the agent (or by the
//! watch with `--watch`).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::CmdError;
use super::run::wait_for_signal;
use crate::agent::{Agent, AgentOptions};
use crate::cli::DemoArgs;
use crate::clock::SystemClock;
use crate::config::{self, Env};
use crate::demo::mesh::{DemoMesh, Expected};
use crate::watch::{self, WatchOptions};

/// How long `demo --watch` runs without `--duration`.
const DEFAULT_WATCH: Duration = Duration::from_secs(3600);

/// Runs the demo until Ctrl-C or `--duration`; exit 0.
pub async fn run(args: DemoArgs) -> Result<ExitCode, CmdError> {
    let mesh = DemoMesh::start(args.listen).await.map_err(CmdError)?;
    // The demo is self-contained: MTLS_PROBER_* variables of the user's shell do not apply.
    let env = Env::new();
    print_services(&mesh);
    let stop = async {
        match args.duration {
            Some(d) => {
                tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = wait_for_signal() => {}
                }
            }
            None => wait_for_signal().await,
        }
    };
    if args.watch {
        let config = config::load(&mesh.config, &env)?;
        let report = watch::run(
            config,
            WatchOptions {
                duration: args.duration.unwrap_or(DEFAULT_WATCH),
                min_success_ratio: 0.999,
                live: std::io::stdout().is_terminal(),
                config_name: "demo".into(),
            },
            Arc::new(SystemClock),
            wait_for_signal(),
        )
        .await;
        print!("{}", report.table());
        return Ok(ExitCode::SUCCESS);
    }
    let agent = Agent::start(AgentOptions {
        config_path: mesh.config.clone(),
        env,
        clock: Arc::new(SystemClock),
    })
    .await
    .map_err(CmdError)?;
    let addr = agent.addr();
    println!();
    println!("The agent is probing them now. Look at:");
    println!("  status page   http://{addr}/");
    println!("  metrics       http://{addr}/metrics");
    println!("  edges (JSON)  http://{addr}/api/v1/edges");
    println!();
    println!("Probe one edge yourself, layer by layer, while the demo runs:");
    println!(
        "  cargo run --release -- probe --config {} --target frontend/web",
        mesh.config.display()
    );
    println!();
    println!(
        "Ctrl-C stops the demo and removes {}.",
        mesh.dir.path().display()
    );
    stop.await;
    agent.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn print_services(mesh: &DemoMesh) {
    println!(
        "mtls-prober demo: a mesh of {} edges on 127.0.0.1, one per failure class",
        mesh.edges.len()
    );
    println!();
    let width = mesh.edges.iter().map(|e| e.name.len()).max().unwrap_or(10);
    for e in &mesh.edges {
        let expected = match e.expected {
            Expected::Pass => "pass".to_owned(),
            Expected::Fail(r) => format!("{}/{}", r.stage(), r),
        };
        println!("  {:<width$}  {:<34}  {}", e.name, expected, e.what);
    }
}
