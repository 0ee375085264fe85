//! Whole-process figures from `/proc`: CPU time (utime + stime, all threads, also the
//! ones that already exited), peak and current resident memory, and core pinning.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// CPU time the process has used so far (user + system).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields are counted after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after ')'.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

/// Kernel clock ticks per second (`getconf CLK_TCK`; 100 on every mainstream Linux).
pub fn clock_ticks() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// A `VmXXX:` field of `/proc/<pid>/status`, in bytes.
pub fn vm(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Peak resident set size (`VmHWM`).
pub fn peak_rss(pid: u32) -> Option<u64> {
    vm(pid, "VmHWM:")
}

/// Current resident set size (`VmRSS`).
pub fn rss(pid: u32) -> Option<u64> {
    vm(pid, "VmRSS:")
}

/// Where each process runs: client/agent on one core, the server on another, when the
/// machine has two and `taskset` is installed.
#[derive(Clone, Debug)]
pub struct Pinning {
    /// Core for the measured client (bare loop, agent).
    pub client: Option<usize>,
    /// Core for the target server.
    pub server: Option<usize>,
}

impl Pinning {
    /// Detects the cores this process may use and whether `taskset` exists.
    pub fn detect() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let taskset = Command::new("taskset")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if taskset && cores >= 2 {
            let allowed = allowed_cpus();
            if allowed.len() >= 2 {
                return Self {
                    client: Some(allowed[0]),
                    server: Some(allowed[1]),
                };
            }
        }
        Self {
            client: None,
            server: None,
        }
    }

    /// A command that runs `program` on `core` (or unpinned).
    pub fn command(core: Option<usize>, program: &str) -> Command {
        match core {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.args(["-c", &c.to_string(), program]);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// "core 0" / "unpinned", for the table.
    pub fn describe(core: Option<usize>) -> String {
        core.map_or_else(|| "unpinned".to_owned(), |c| format!("core {c}"))
    }
}

/// CPUs in this process's affinity mask (`Cpus_allowed_list` of /proc/self/status).
fn allowed_cpus() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(list) = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
    else {
        return Vec::new();
    };
    let mut cpus = Vec::new();
    for part in list.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    cpus.extend(a..=b);
                }
            }
            None => cpus.extend(part.parse::<usize>().ok()),
        }
    }
    cpus
}
