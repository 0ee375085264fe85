//! The four scenarios of issue 6, each bounded in time and count.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use crate::agent::{Agent, Edges, Lag, Scrape, Spec};
use crate::pki;
use crate::procfs::{self, Pinning};
use crate::table::{Stats, Table};

const MIB: f64 = 1024.0 * 1024.0;

/// Command-line options of the harness.
#[derive(Clone, Debug)]
pub struct Options {
    /// The ≈1-minute smoke mode: shorter windows, scaled-down edge counts.
    pub quick: bool,
    /// Repetitions of the short scenarios (CPU ratio, idle start).
    pub runs: usize,
    /// Only these scenarios (`cpu`, `scale`, `idle`, `blackhole`); empty = all.
    pub only: Vec<String>,
    /// Another agent binary to measure (`--agent PATH`, e.g. to compare two builds).
    pub agent: Option<PathBuf>,
    /// A second agent binary measured in the same rounds of the CPU scenario
    /// (`--baseline PATH`): before/after ratios against the same bare loop.
    pub baseline: Option<PathBuf>,
}

impl Options {
    pub fn from_args(args: &[String]) -> Self {
        let quick = args.iter().any(|a| a == "--quick");
        let runs = args
            .iter()
            .position(|a| a == "--runs")
            .and_then(|i| args.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(if quick { 1 } else { 3 });
        let only = args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1))
            .map(|s| s.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let path_of = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .map(PathBuf::from)
        };
        Self {
            quick,
            runs: runs.max(1),
            only,
            agent: path_of("--agent"),
            baseline: path_of("--baseline"),
        }
    }

    fn wants(&self, s: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == s)
    }
}

/// The target server process.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    healthy: SocketAddr,
    watched: SocketAddr,
    blackhole: SocketAddr,
}

impl Server {
    fn start(exe: &Path, dir: &Path, core: Option<usize>) -> Result<Self, String> {
        let mut child = Pinning::command(core, exe.to_str().ok_or("exe path")?)
            .args(["--server", dir.to_str().ok_or("dir path")?, "900"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let stdin = child.stdin.take().ok_or("server stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("server stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line).map_err(|e| e.to_string())?;
        let addr = |k: &str| -> Result<SocketAddr, String> {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| format!("server said {line:?}"))
        };
        Ok(Self {
            healthy: addr("healthy=")?,
            watched: addr("watched=")?,
            blackhole: addr("blackhole=")?,
            child,
            stdin,
            stdout,
        })
    }

    /// Arrival times (ms) on the watched listener since the last call.
    fn arrivals(&mut self) -> Result<Vec<f64>, String> {
        writeln!(self.stdin, "arrivals").map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let list = line
            .trim()
            .strip_prefix("arrivals")
            .ok_or("bad arrivals line")?
            .trim();
        Ok(list.split(',').filter_map(|t| t.parse().ok()).collect())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Ctx {
    exe: PathBuf,
    bin: PathBuf,
    dir: tempfile::TempDir,
    files: pki::Files,
    pin: Pinning,
    opts: Options,
}

/// Runs the selected scenarios and prints the table.
pub fn run(opts: Options) -> Result<(), String> {
    let started = Instant::now();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = opts
        .agent
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mtls-prober")));
    if !bin.exists() {
        return Err(format!(
            "{} is missing: run `cargo build --release` first",
            bin.display()
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let files = pki::generate(dir.path())?;
    let pin = Pinning::detect();
    println!(
        "load harness ({} mode): agent and bare loop on {}, server on {}; agent {}",
        if opts.quick { "quick" } else { "full" },
        Pinning::describe(pin.client),
        Pinning::describe(pin.server),
        bin.display()
    );
    let ctx = Ctx {
        exe,
        bin,
        dir,
        files,
        pin,
        opts,
    };
    let mut server = Server::start(&ctx.exe, ctx.dir.path(), ctx.pin.server)?;
    let mut table = Table::default();
    if ctx.opts.wants("cpu") {
        cpu(&ctx, &server, &mut table)?;
    }
    if ctx.opts.wants("scale") {
        scale(&ctx, &server, &mut table)?;
    }
    if ctx.opts.wants("idle") {
        idle(&ctx, &server, &mut table)?;
    }
    if ctx.opts.wants("blackhole") {
        blackhole(&ctx, &mut server, &mut table)?;
    }
    println!();
    table.print();
    println!(
        "({} mode, {:.0} s; CPU = utime+stime of the measured process only; server on {}, clients on {})",
        if ctx.opts.quick { "quick" } else { "full" },
        started.elapsed().as_secs_f64(),
        Pinning::describe(ctx.pin.server),
        Pinning::describe(ctx.pin.client),
    );
    Ok(())
}

/// Figures of the agent between two scrapes.
struct Window {
    a: Scrape,
    b: Scrape,
    cpu: Duration,
    wall: Duration,
}

impl Window {
    fn measure(agent: &Agent, length: Duration) -> Result<Self, String> {
        let a = agent.scrape()?;
        let cpu0 = procfs::cpu_time(agent.pid()).ok_or("agent gone")?;
        let t0 = Instant::now();
        std::thread::sleep(length);
        let cpu1 = procfs::cpu_time(agent.pid()).ok_or("agent gone")?;
        let wall = t0.elapsed();
        let b = agent.scrape()?;
        Ok(Self {
            a,
            b,
            cpu: cpu1.saturating_sub(cpu0),
            wall,
        })
    }

    fn probes(&self) -> f64 {
        self.b.attempts - self.a.attempts
    }

    fn failures(&self) -> f64 {
        self.b.failures - self.a.failures
    }

    fn cpu_us_per_probe(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.probes().max(1.0)
    }

    fn rate(&self) -> f64 {
        self.probes() / self.wall.as_secs_f64()
    }

    fn core_share(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64()
    }

    fn lag(&self) -> Lag {
        Lag::between(&self.a, &self.b)
    }
}

fn start_agent(ctx: &Ctx, spec: &Spec, wait: Duration) -> Result<Agent, String> {
    let config = spec.write(ctx.dir.path(), &ctx.files)?;
    Agent::start(&ctx.bin, &config, ctx.pin.client, wait)
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

fn ms(s: f64) -> String {
    if s.is_nan() {
        "n/a".into()
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

/// Scenario 1: full mTLS probe CPU at ~500 probes/s, agent vs bare loop.
/// One agent's window, its VmHWM, and its verified-chain cache `(hits, misses)`.
type Measured = (Window, u64, Option<(f64, f64)>);

fn cpu(ctx: &Ctx, server: &Server, table: &mut Table) -> Result<(), String> {
    let s = "cpu@500/s";
    let rate = 500.0;
    let (warm, window) = if ctx.opts.quick {
        (Duration::from_secs(3), Duration::from_secs(4))
    } else {
        (Duration::from_secs(4), Duration::from_secs(10))
    };
    let count = (rate * window.as_secs_f64()) as u64;
    let (mut bare_us, mut agent_us, mut ratio, mut bare_rate, mut agent_rate) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut bare_hwm, mut agent_hwm, mut agent_fail) = (0u64, 0u64, 0.0f64);
    let (mut hits, mut misses) = (0.0f64, 0.0f64);
    let (mut base_us, mut base_ratio) = (vec![], vec![]);
    for run in 0..ctx.opts.runs {
        // The bare loop: its own process on the client core.
        let out = Pinning::command(ctx.pin.client, ctx.exe.to_str().ok_or("exe")?)
            .args([
                "--bare",
                ctx.dir.path().to_str().ok_or("dir")?,
                &server.healthy.to_string(),
                &rate.to_string(),
                "500",
                &count.to_string(),
            ])
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("bare loop: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("result"))
            .ok_or_else(|| format!("bare loop said {text:?}"))?;
        let get = |k: &str| -> f64 {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        };
        let (probes, fails, cpu_us, wall_us) = (
            get("probes="),
            get("fails="),
            get("cpu_us="),
            get("wall_us="),
        );
        if fails > 0.0 {
            return Err(format!("the bare loop failed {fails} of {probes} probes"));
        }
        let b = cpu_us / probes;
        bare_us.push(b);
        bare_rate.push(probes / (wall_us / 1e6));
        bare_hwm = bare_hwm.max(get("hwm=") as u64);

        // The agent: 500 edges at 1 s (and the baseline build, if given, right after).
        let spec = Spec {
            edges: vec![Edges {
                prefix: "cpu",
                count: 500,
                addr: server.healthy,
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
            }],
            jitter: 0.1,
            max_concurrency: 256,
        };
        let config = spec.write(ctx.dir.path(), &ctx.files)?;
        let measure = |bin: &Path| -> Result<Measured, String> {
            let agent = Agent::start(bin, &config, ctx.pin.client, Duration::from_secs(30))?;
            sleep_until(agent.spawned + warm);
            let w = Window::measure(&agent, window)?;
            let hwm = procfs::peak_rss(agent.pid()).unwrap_or(0);
            let cache = agent.stop(Duration::from_secs(5));
            Ok((w, hwm, cache))
        };
        let (w, hwm, cache) = measure(&ctx.bin)?;
        agent_hwm = agent_hwm.max(hwm);
        let a = w.cpu_us_per_probe();
        agent_us.push(a);
        agent_rate.push(w.rate());
        agent_fail += w.failures();
        // Over the agent's whole run (warm-up included): the log line at its stop.
        if let Some((h, m)) = cache {
            hits += h;
            misses += m;
        }
        ratio.push(a / b);
        let mut line = format!(
            "  run {}: bare {b:.0} µs/probe at {:.0}/s, agent {a:.0} µs/probe at {:.0}/s, ratio {:.2}",
            run + 1,
            bare_rate.last().unwrap(),
            w.rate(),
            a / b
        );
        if let Some(bin) = &ctx.opts.baseline {
            let (w, _, _) = measure(bin)?;
            let x = w.cpu_us_per_probe();
            base_us.push(x);
            base_ratio.push(x / b);
            line.push_str(&format!(", baseline {x:.0} µs/probe, ratio {:.2}", x / b));
        }
        println!("{line}");
    }
    let us = |x: f64| format!("{x:.0} µs");
    let ps = |x: f64| format!("{x:.0}/s");
    table.info(
        s,
        "bare rustls loop CPU per probe",
        Stats::of(&bare_us).show(us),
    );
    table.info(s, "agent CPU per probe", Stats::of(&agent_us).show(us));
    let r = Stats::of(&ratio);
    table.check(
        s,
        "agent / bare CPU per probe",
        r.show(|x| format!("{x:.2}×")),
        "≤ 1.00×",
        r.median <= 1.0,
    );
    if !base_ratio.is_empty() {
        table.info(
            s,
            "baseline build: CPU per probe | / bare",
            format!(
                "{} | {}",
                Stats::of(&base_us).show(us),
                Stats::of(&base_ratio).show(|x| format!("{x:.2}×"))
            ),
        );
    }
    table.info(
        s,
        "probes/s bare | agent",
        format!(
            "{} | {}",
            Stats::of(&bare_rate).show(ps),
            Stats::of(&agent_rate).show(ps)
        ),
    );
    table.info(
        s,
        "agent failed probes in windows",
        format!("{agent_fail:.0}"),
    );
    table.info(
        s,
        "verified-chain cache hits (whole runs)",
        format!(
            "{:.1}% ({hits:.0} of {:.0} chains)",
            100.0 * hits / (hits + misses).max(1.0),
            hits + misses
        ),
    );
    table.info(
        s,
        "peak RSS bare | agent (500 edges)",
        format!(
            "{:.1} MiB | {:.1} MiB",
            bare_hwm as f64 / MIB,
            agent_hwm as f64 / MIB
        ),
    );
    Ok(())
}

/// A scrape with the agent's CPU time and the instant it stands for.
struct Point {
    scrape: Scrape,
    /// The middle of the scrape: the counters were read somewhere during it.
    at: Instant,
    cpu: Duration,
}

impl Point {
    fn take(agent: &Agent) -> Result<Self, String> {
        let cpu = procfs::cpu_time(agent.pid()).ok_or("agent gone")?;
        let t0 = Instant::now();
        let scrape = agent.scrape()?;
        Ok(Self {
            at: t0 + t0.elapsed() / 2,
            scrape,
            cpu,
        })
    }
}

/// Completed probes against the schedule between two points: `edges` at `interval`
/// with spread phases are `edges / interval` probes per second.
struct Pace {
    completed: f64,
    scheduled: f64,
    wall: Duration,
}

impl Pace {
    fn between(a: &Point, b: &Point, edges: usize, interval: Duration) -> Self {
        let wall = b.at.saturating_duration_since(a.at);
        Self {
            completed: b.scrape.attempts - a.scrape.attempts,
            scheduled: edges as f64 * wall.as_secs_f64() / interval.as_secs_f64(),
            wall,
        }
    }

    fn ratio(&self) -> f64 {
        self.completed / self.scheduled.max(1.0)
    }

    fn show(&self) -> String {
        format!(
            "{:.1}% ({:.0} of {:.0} in {:.1} s, {:.0}/s)",
            self.ratio() * 100.0,
            self.completed,
            self.scheduled,
            self.wall.as_secs_f64(),
            self.completed / self.wall.as_secs_f64()
        )
    }
}

/// Scenario 2: 10,000 edges at 20 s (500 probes/s) on one core, then a reload of all
/// of them.
///
/// Windows, each one interval long so that every edge's slot falls in it once: from
/// `/readyz` turning 200 (what a user sees first), the next interval (steady state, the
/// CPU, lag and scrape figures), and the interval in which every target is redefined
/// by a reload (SIGHUP one second into it).
fn scale(ctx: &Ctx, server: &Server, table: &mut Table) -> Result<(), String> {
    let (edges, interval) = if ctx.opts.quick {
        (2_000, Duration::from_secs(4))
    } else {
        (10_000, Duration::from_secs(20))
    };
    let s = &format!("{}k edges@{}s", edges / 1000, interval.as_secs());
    let group = |timeout: Duration| Edges {
        prefix: "scale",
        count: edges,
        addr: server.healthy,
        interval,
        timeout,
    };
    let timeout = Duration::from_secs(5).min(interval);
    let mut spec = Spec {
        edges: vec![group(timeout)],
        jitter: 0.1,
        max_concurrency: 256,
    };
    let agent = start_agent(ctx, &spec, Duration::from_secs(120))?;
    let listening = agent.spawned.elapsed();
    // Memory once the config and identity are loaded, before any probe.
    let rss_loaded = procfs::rss(agent.pid()).unwrap_or(0) as f64;
    let ready = agent.wait_ready(Duration::from_secs(120))?;
    let to_ready = ready - agent.spawned;
    let p0 = Point::take(&agent)?;
    sleep_until(ready + interval);
    let p1 = Point::take(&agent)?;
    sleep_until(ready + 2 * interval);
    let p2 = Point::take(&agent)?;
    let w = Window {
        a: p1.scrape.clone(),
        b: p2.scrape.clone(),
        cpu: p2.cpu.saturating_sub(p1.cpu),
        wall: p2.at.saturating_duration_since(p1.at),
    };
    let hwm_of = || procfs::peak_rss(agent.pid()).unwrap_or(0) as f64;
    let hwm_probing = hwm_of();
    let mut scrapes: Vec<f64> = vec![w.a.took.as_secs_f64(), w.b.took.as_secs_f64()];
    for _ in 0..3 {
        scrapes.push(agent.scrape()?.took.as_secs_f64());
    }
    let hwm_scraped = hwm_of();
    let (api_t, api) = agent.get("/api/v1/edges")?;
    let hwm_api = hwm_of();
    let (page_t, page) = agent.get("/")?;
    let hwm = hwm_of();
    let rss = procfs::rss(agent.pid()).unwrap_or(0) as f64;

    // The reload: every target gets a new timeout, so every edge is redefined.
    let p3 = Point::take(&agent)?;
    spec.edges = vec![group(timeout - Duration::from_millis(100))];
    spec.write(ctx.dir.path(), &ctx.files)?;
    sleep_until(p3.at + Duration::from_secs(1));
    let asked = Instant::now();
    agent.hangup();
    let reloaded = agent.reloaded_after(asked, interval);
    sleep_until(p3.at + interval);
    let p4 = Point::take(&agent)?;
    let hwm_reload = procfs::peak_rss(agent.pid()).unwrap_or(0) as f64;
    agent.stop(Duration::from_secs(10));

    let lag = w.lag();
    let lag_reload = Lag::between(&p3.scrape, &p4.scrape);
    let sc = Stats::of(&scrapes);
    let per_edge_max = w.b.max_series_per_edge();
    let per_edge_mean = w.b.series_per_target.values().sum::<usize>() as f64
        / w.b.series_per_target.len().max(1) as f64;
    table.info(
        s,
        "start → listening (config + identity loaded) | RSS then",
        format!(
            "{} | {:.1} MiB",
            ms(listening.as_secs_f64()),
            rss_loaded / MIB
        ),
    );
    table.info(
        s,
        "start → /readyz 200 (first round done)",
        ms(to_ready.as_secs_f64()),
    );
    for (what, pace) in [
        ("from /readyz", Pace::between(&p0, &p1, edges, interval)),
        ("steady", Pace::between(&p1, &p2, edges, interval)),
        ("with a reload", Pace::between(&p3, &p4, edges, interval)),
    ] {
        table.check(
            s,
            &format!("completed / scheduled, one interval {what}"),
            pace.show(),
            "≥ 98%",
            pace.ratio() >= 0.98,
        );
    }
    table.info(
        s,
        "probes/s | failed (steady)",
        format!("{:.0}/s | {:.0}", w.rate(), w.failures()),
    );
    table.info(
        s,
        "agent CPU: share of a core | per probe",
        format!(
            "{:.0}% | {:.0} µs",
            w.core_share() * 100.0,
            w.cpu_us_per_probe()
        ),
    );
    table.check(
        s,
        "schedule lag p50 | p99 (steady)",
        format!(
            "{} | {} ({:.2}% ≤ 50 ms, n={:.0})",
            ms(lag.p50),
            ms(lag.p99),
            lag.within_50ms * 100.0,
            lag.count
        ),
        "p99 ≤ 50 ms",
        lag.within_50ms >= 0.99,
    );
    table.info(
        s,
        "VmHWM: first round and steady | + 5 scrapes | + /api/v1/edges | + status page",
        format!(
            "{:.1} | {:.1} | {:.1} | {:.1} MiB",
            hwm_probing / MIB,
            hwm_scraped / MIB,
            hwm_api / MIB,
            hwm / MIB
        ),
    );
    table.check(
        s,
        "peak RSS (VmHWM) | RSS now",
        format!("{:.1} MiB | {:.1} MiB", hwm / MIB, rss / MIB),
        "≤ 64 MiB",
        hwm <= 64.0 * MIB,
    );
    table.check(
        s,
        "reload of every target: VmHWM growth",
        format!(
            "+{:.1} MiB ({:.1} → {:.1} MiB){}",
            (hwm_reload - hwm) / MIB,
            hwm / MIB,
            hwm_reload / MIB,
            match reloaded {
                Some(t) => format!(", logged {} after SIGHUP", ms((t - asked).as_secs_f64())),
                None => ", NOT RELOADED".into(),
            }
        ),
        "≤ 8 MiB",
        reloaded.is_some() && hwm_reload - hwm <= 8.0 * MIB,
    );
    table.check(
        s,
        "reload: lag p99 in its interval vs steady",
        format!(
            "{} vs {} ({:+.1} ms; {:.2}% ≤ 50 ms)",
            ms(lag_reload.p99),
            ms(lag.p99),
            (lag_reload.p99 - lag.p99) * 1e3,
            lag_reload.within_50ms * 100.0
        ),
        "≤ +20 ms",
        lag_reload.p99 - lag.p99 <= 0.020,
    );
    table.check(
        s,
        "/metrics scrape time",
        sc.show(ms),
        "≤ 100 ms",
        sc.max <= 0.1,
    );
    table.info(
        s,
        "/metrics size | series",
        format!("{:.1} MiB | {}", w.b.bytes as f64 / MIB, w.b.series),
    );
    table.check(
        s,
        "series per edge (max | mean)",
        format!("{per_edge_max} | {per_edge_mean:.1}"),
        "≤ 20",
        per_edge_max <= 20,
    );
    table.info(
        s,
        "/api/v1/edges time | size",
        format!(
            "{} | {:.1} MiB",
            ms(api_t.as_secs_f64()),
            api.len() as f64 / MIB
        ),
    );
    table.info(
        s,
        "status page time | size",
        format!(
            "{} | {:.1} MiB",
            ms(page_t.as_secs_f64()),
            page.len() as f64 / MIB
        ),
    );
    Ok(())
}

/// Scenario 3: an idle agent with 10 edges.
fn idle(ctx: &Ctx, server: &Server, table: &mut Table) -> Result<(), String> {
    let s = "idle 10 edges";
    let hold = if ctx.opts.quick {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(11)
    };
    let (mut first, mut rss, mut hwm, mut share) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ctx.opts.runs {
        // jitter 0: every edge's first probe is due at start, so this measures the
        // agent's start-up, not the deliberate spread of first probes.
        let spec = Spec {
            edges: vec![Edges {
                prefix: "idle",
                count: 10,
                addr: server.healthy,
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(5),
            }],
            jitter: 0.0,
            max_concurrency: 256,
        };
        let agent = start_agent(ctx, &spec, Duration::from_secs(30))?;
        let f = agent
            .first_result(Duration::from_secs(10))
            .ok_or("no probe result within 10 s")?;
        first.push(f.as_secs_f64());
        sleep_until(agent.spawned + Duration::from_millis(500));
        let cpu0 = procfs::cpu_time(agent.pid()).unwrap_or_default();
        let t0 = Instant::now();
        sleep_until(agent.spawned + hold);
        let cpu = procfs::cpu_time(agent.pid())
            .unwrap_or_default()
            .saturating_sub(cpu0);
        share.push(cpu.as_secs_f64() / t0.elapsed().as_secs_f64());
        rss.push(procfs::rss(agent.pid()).unwrap_or(0) as f64);
        hwm.push(procfs::peak_rss(agent.pid()).unwrap_or(0) as f64);
        agent.stop(Duration::from_secs(5));
    }
    let mib = |x: f64| format!("{:.1} MiB", x / MIB);
    let r = Stats::of(&rss);
    let h = Stats::of(&hwm);
    let f = Stats::of(&first);
    table.check(
        s,
        "RSS after 2 rounds",
        r.show(mib),
        "≤ 16 MiB",
        r.max <= 16.0 * MIB,
    );
    table.info(s, "peak RSS (VmHWM)", h.show(mib));
    table.check(
        s,
        "process start → first probe result",
        f.show(ms),
        "≤ 100 ms",
        f.median <= 0.1,
    );
    table.info(
        s,
        "idle CPU share of a core",
        Stats::of(&share).show(|x| format!("{:.2}%", x * 100.0)),
    );
    Ok(())
}

/// Scenario 4: 1,000 blackholed edges and one healthy edge.
fn blackhole(ctx: &Ctx, server: &mut Server, table: &mut Table) -> Result<(), String> {
    let (count, interval, timeout, healthy_interval, warm, window) = if ctx.opts.quick {
        (
            200,
            Duration::from_secs(2),
            Duration::from_secs(1),
            Duration::from_millis(500),
            Duration::from_secs(4),
            Duration::from_secs(6),
        )
    } else {
        (
            1_000,
            Duration::from_secs(10),
            Duration::from_secs(5),
            Duration::from_secs(1),
            Duration::from_secs(22),
            Duration::from_secs(20),
        )
    };
    let s = &format!("{count} blackholed");
    let spec = Spec {
        edges: vec![
            Edges {
                prefix: "hole",
                count,
                addr: server.blackhole,
                interval,
                timeout,
            },
            Edges {
                prefix: "healthy",
                count: 1,
                addr: server.watched,
                interval: healthy_interval,
                timeout: healthy_interval,
            },
        ],
        jitter: 0.1,
        max_concurrency: 256,
    };
    let agent = start_agent(ctx, &spec, Duration::from_secs(30))?;
    sleep_until(agent.spawned + warm);
    server.arrivals()?;
    let w = Window::measure(&agent, window)?;
    let arrivals = server.arrivals()?;
    agent.stop(Duration::from_secs(10));
    let healthy = relative_lag(&arrivals, healthy_interval.as_secs_f64() * 1e3);
    let lag = w.lag();
    table.check(
        s,
        "agent CPU share of a core",
        format!("{:.2}%", w.core_share() * 100.0),
        "< 5%",
        w.core_share() < 0.05,
    );
    table.info(
        s,
        "probes/s (all time out)",
        format!("{:.0}/s, {:.0} failed", w.rate(), w.failures()),
    );
    table.info(
        s,
        "schedule lag p50 | p99, all edges",
        format!(
            "{} | {} ({:.1}% ≤ 50 ms)",
            ms(lag.p50),
            ms(lag.p99),
            lag.within_50ms * 100.0
        ),
    );
    let expected = window.as_secs_f64() / healthy_interval.as_secs_f64();
    match healthy {
        Some(h) => table.check(
            s,
            "healthy edge lag p50 | max (arrivals at the server)",
            format!(
                "{} | {} ({} of ~{expected:.0} probes, longest gap {})",
                ms(h.p50 / 1e3),
                ms(h.max / 1e3),
                h.n,
                ms(h.max_gap / 1e3)
            ),
            "≤ 50 ms",
            h.max <= 50.0
                && h.max_gap <= healthy_interval.as_secs_f64() * 1e3 + 50.0
                && h.n as f64 >= expected - 1.0,
        ),
        None => table.check(
            s,
            "healthy edge lag",
            "no arrivals".into(),
            "≤ 50 ms",
            false,
        ),
    }
    Ok(())
}

/// One edge's lag as its target saw it.
struct ArrivalLag {
    p50: f64,
    max: f64,
    n: usize,
    /// Longest time between two arrivals (ms): a skipped slot shows here, not in the
    /// lag (the schedule skips missed slots, it does not burst).
    max_gap: f64,
}

/// One edge's lag from its arrival times (ms) at the server: arrival k is due at
/// `t0 + k × interval`; `t0` is taken from the least late arrival, so this is the lag
/// beyond the best probe (an under-estimate by that probe's own lag, ≈ the connect time).
fn relative_lag(arrivals: &[f64], interval_ms: f64) -> Option<ArrivalLag> {
    let first = *arrivals.first()?;
    let offsets: Vec<f64> = arrivals
        .iter()
        .map(|t| {
            let k = ((t - first) / interval_ms).round();
            t - first - k * interval_ms
        })
        .collect();
    let min = offsets.iter().copied().fold(f64::INFINITY, f64::min);
    let lags: Vec<f64> = offsets.iter().map(|o| o - min).collect();
    let st = Stats::of(&lags);
    let max_gap = arrivals.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    Some(ArrivalLag {
        p50: st.median,
        max: st.max,
        n: lags.len(),
        max_gap,
    })
}
