//! `mtls-prober watch`: the migration gate.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::CmdError;
use super::run::wait_for_signal;
use crate::cli::WatchArgs;
use crate::clock::SystemClock;
use crate::config::{self, Env};
use crate::watch::report::WatchReport;
use crate::watch::{self, WatchOptions, junit};

/// Runs the watch; exit 0 when every edge held the gate, 1 otherwise.
pub async fn run(args: WatchArgs, env: &Env) -> Result<ExitCode, CmdError> {
    if !(0.0..=1.0).contains(&args.min_success_ratio) {
        return Err(CmdError(format!(
            "--min-success-ratio: got {}, expected a ratio between 0 and 1 (e.g. 0.999)",
            args.min_success_ratio
        )));
    }
    // A report that cannot be written must fail now, not after a 30-minute watch.
    for path in &args.report {
        report_kind(path)?;
        check_writable(path)?;
    }
    let config = config::load(&args.config, env)?;
    if config.targets.is_empty() && config.discover.is_empty() {
        return Err(CmdError(format!(
            "{}: no [[target]] and no [[discover]]: nothing to watch",
            args.config.display()
        )));
    }
    let report = watch::run(
        config,
        WatchOptions {
            duration: args.duration,
            min_success_ratio: args.min_success_ratio,
            live: std::io::stdout().is_terminal(),
            config_name: args.config.display().to_string(),
        },
        Arc::new(SystemClock),
        wait_for_signal(),
    )
    .await;
    print!("{}", report.table());
    // The verdict is the exit code; a report that could not be written after all is
    // said, but does not replace it.
    if let Err(e) = write_reports(&report, &args.report) {
        eprintln!("error: {e}");
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Proves `path` can be written without touching an existing file: its directory
/// exists and takes a new file, and an existing file opens for writing.
pub fn check_writable(path: &Path) -> Result<(), CmdError> {
    let fail = |why: String| CmdError(format!("--report {}: {why}", path.display()));
    if path.is_dir() {
        return Err(fail("is a directory; expected a file name".into()));
    }
    if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| fail(format!("cannot be written: {e}")))?;
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    tempfile::NamedTempFile::new_in(dir)
        .map(drop)
        .map_err(|e| fail(format!("cannot create a file in {}: {e}", dir.display())))
}

enum Kind {
    Json,
    Markdown,
    Junit,
}

fn report_kind(path: &Path) -> Result<Kind, CmdError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Ok(Kind::Json),
        Some("md" | "markdown") => Ok(Kind::Markdown),
        Some("xml") => Ok(Kind::Junit),
        _ => Err(CmdError(format!(
            "--report {}: expected a file ending in .json, .md or .xml (JUnit)",
            path.display()
        ))),
    }
}

/// Writes every requested report; the watch result is kept even if one write fails.
pub fn write_reports(report: &WatchReport, paths: &[std::path::PathBuf]) -> Result<(), CmdError> {
    for path in paths {
        let text = match report_kind(path)? {
            Kind::Json => serde_json::to_string_pretty(report)
                .map_err(|e| CmdError(format!("encoding the report: {e}")))?,
            Kind::Markdown => report.markdown(),
            Kind::Junit => junit::render(report).map_err(CmdError)?,
        };
        std::fs::write(path, text)
            .map_err(|e| CmdError(format!("--report {}: cannot write: {e}", path.display())))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}
