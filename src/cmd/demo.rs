//! `mtls-prober demo`: a self-contained mesh on loopback, probed by the agent (or by the
//! watch with `--watch`).
//!
//! The banner comes after the first round of probes, with one line saying how the
//! round went, so what the user must read (the status page URL, the command to probe
//! one edge) is the last thing on the screen; on a terminal the per-edge log lines are
//! off (see `main.rs`).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
/// The banner is printed after the first round, or after this long at the latest.
const FIRST_ROUND_WAIT: Duration = Duration::from_secs(30);

/// Runs the demo until Ctrl-C or `--duration`: exit 0, or with `--watch` the watch's
/// verdict (0 pass, 1 fail).
pub async fn run(args: DemoArgs) -> Result<ExitCode, CmdError> {
    let mesh = DemoMesh::start(args.listen).await.map_err(CmdError)?;
    // The demo is self-contained: MTLS_PROBER_* variables of the user's shell do not apply.
    let env = Env::new();
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
        print_services(&mesh);
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
        // The demo mesh has broken edges on purpose: the gate fails, and says so.
        return Ok(if report.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    println!(
        "mtls-prober demo: starting {} edges on 127.0.0.1 and probing them once…",
        mesh.edges.len()
    );
    let started = Instant::now();
    let agent = Agent::start(AgentOptions {
        config_path: mesh.config.clone(),
        env,
        clock: Arc::new(SystemClock),
    })
    .await
    .map_err(CmdError)?;
    let edges = &agent.state().edges;
    let _ = tokio::time::timeout(FIRST_ROUND_WAIT, edges.wait_first_round()).await;
    println!();
    print_services(&mesh);
    println!();
    println!(
        "{}",
        first_round_line(&mesh, agent.state(), started.elapsed())
    );
    let addr = agent.addr();
    println!();
    println!("The agent keeps probing them. Look at:");
    println!("  status page   http://{addr}/");
    println!("  metrics       http://{addr}/metrics");
    println!("  edges (JSON)  http://{addr}/api/v1/edges");
    println!("  runbook       http://{addr}/docs/runbook");
    println!();
    println!("Probe one edge yourself, layer by layer, while the demo runs:");
    println!(
        "  {} probe --config {} --target frontend/web",
        invoked_as(std::env::args_os().next()),
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

/// "first round: 35 edges in 2.2 s: 6 pass, 29 fail, each as the demo intends".
fn first_round_line(mesh: &DemoMesh, state: &crate::agent::AgentState, took: Duration) -> String {
    let views = state.edges.views();
    let (mut pass, mut fail, mut pending) = (0, 0, 0);
    let mut surprises = Vec::new();
    for v in &views {
        let Some(last) = &v.last else {
            pending += 1;
            continue;
        };
        if last.ok {
            pass += 1;
        } else {
            fail += 1;
        }
        let expected = mesh
            .edges
            .iter()
            .find(|e| e.name == v.target.name)
            .map(|e| e.expected);
        let as_intended = match expected {
            Some(Expected::Pass) => last.ok,
            Some(Expected::Fail(r)) => last.reason == Some(r),
            None => true,
        };
        if !as_intended {
            surprises.push(v.target.name.clone());
        }
    }
    let mut line = format!(
        "First round: {} edges in {:.1} s: {pass} pass, {fail} fail",
        views.len(),
        took.as_secs_f64()
    );
    if pending > 0 {
        line.push_str(&format!(", {pending} still probing"));
    }
    if surprises.is_empty() {
        line.push_str(", each with the outcome listed above.");
    } else {
        line.push_str(&format!(
            "; not as listed above: {} (a slow machine? see the status page)",
            surprises.join(", ")
        ));
    }
    line
}

/// The program as the user started it (`argv[0]`), quoted for a POSIX shell when it
/// needs to be, so the printed command can be pasted as is.
fn invoked_as(argv0: Option<OsString>) -> String {
    let s = argv0
        .map(|a| a.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "mtls-prober".into());
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c));
    if plain {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_printed_as_invoked() {
        assert_eq!(
            invoked_as(Some("./target/release/mtls-prober".into())),
            "./target/release/mtls-prober"
        );
        assert_eq!(invoked_as(Some("mtls-prober".into())), "mtls-prober");
        assert_eq!(
            invoked_as(Some("/opt/my tools/mtls-prober".into())),
            "'/opt/my tools/mtls-prober'"
        );
        assert_eq!(invoked_as(None), "mtls-prober");
    }
}
