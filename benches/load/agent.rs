//! The agent under test: `target/release/mtls-prober run --config <generated>`, its log
//! (for the listening address and the first probe result), its `/metrics` scrapes and
//! the parsing of the figures the harness reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pki;
use crate::procfs::Pinning;

/// One group of edges in the generated config.
#[derive(Clone, Debug)]
pub struct Edges {
    /// Name prefix (`bench/<prefix>-<n>`).
    pub prefix: &'static str,
    /// How many.
    pub count: usize,
    /// Where they point.
    pub addr: SocketAddr,
    /// Per-target interval.
    pub interval: Duration,
    /// Per-target timeout.
    pub timeout: Duration,
}

/// The `[agent]` settings and the edges.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Edge groups.
    pub edges: Vec<Edges>,
    /// `[agent].jitter`.
    pub jitter: f64,
    /// `[agent].max_concurrency`.
    pub max_concurrency: usize,
}

impl Spec {
    /// Total edges.
    pub fn edge_count(&self) -> usize {
        self.edges.iter().map(|e| e.count).sum()
    }

    /// Writes `probes.toml` into `dir`.
    pub fn write(&self, dir: &Path, files: &pki::Files) -> Result<PathBuf, String> {
        let mut s = String::with_capacity(256 * self.edge_count() + 1024);
        let _ = write!(
            s,
            "[agent]\nsource = \"bench\"\nlisten = \"127.0.0.1:0\"\njitter = {}\n\
             max_concurrency = {}\n\n[identity]\ncert = {:?}\nkey = {:?}\nca = {:?}\n\n",
            self.jitter,
            self.max_concurrency,
            files.client_cert.display().to_string(),
            files.client_key.display().to_string(),
            files.ca.display().to_string(),
        );
        for g in &self.edges {
            for i in 0..g.count {
                let _ = write!(
                    s,
                    "[[target]]\nname = \"bench/{}-{i:05}\"\naddress = \"{}\"\nmode = \"mtls\"\n\
                     spiffe_id = \"{}\"\nalpn = [\"http/1.1\"]\ntls_versions = [\"1.3\"]\n\
                     interval = \"{}ms\"\ntimeout = \"{}ms\"\n[target.http]\npath = \"/healthz\"\n\n",
                    g.prefix,
                    g.addr,
                    pki::SERVER_ID,
                    g.interval.as_millis(),
                    g.timeout.as_millis(),
                );
            }
        }
        let path = dir.join("probes.toml");
        std::fs::write(&path, s).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

/// What the log reader saw.
#[derive(Debug, Default)]
struct LogState {
    addr: Option<SocketAddr>,
    first_result: Option<Instant>,
    reloaded: Option<Instant>,
    lines: u64,
    tail: Vec<String>,
    /// `(hits, misses)` of the verified-chain cache, from the agent's last log line.
    chain_cache: Option<(f64, f64)>,
}

/// A running agent; killed when dropped.
pub struct Agent {
    child: Child,
    /// When it was spawned.
    pub spawned: Instant,
    /// The endpoints' address.
    pub addr: SocketAddr,
    log: Arc<Mutex<LogState>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Agent {
    /// Starts the agent on `core` and waits for its listening line (up to `wait`).
    pub fn start(
        bin: &Path,
        config: &Path,
        core: Option<usize>,
        wait: Duration,
    ) -> Result<Self, String> {
        let bin = bin.to_str().ok_or("binary path is not UTF-8")?;
        let spawned = Instant::now();
        let mut child = Pinning::command(core, bin)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {bin}: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let log: Arc<Mutex<LogState>> = Arc::default();
        let reader = log.clone();
        let reader_thread = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let now = Instant::now();
                let mut st = reader.lock().unwrap();
                st.lines += 1;
                if st.first_result.is_none()
                    && (line.contains("edge passing") || line.contains("edge failing"))
                {
                    st.first_result = Some(now);
                }
                if let (Some(h), Some(m)) =
                    (field(&line, "chain_hits"), field(&line, "chain_misses"))
                {
                    st.chain_cache = h.parse().ok().zip(m.parse().ok());
                }
                if line.contains("config reloaded") {
                    st.reloaded = Some(now);
                }
                if st.addr.is_none() && line.contains("listening") {
                    st.addr = field(&line, "addr").and_then(|a| a.parse().ok());
                }
                if st.tail.len() >= 20 {
                    st.tail.remove(0);
                }
                st.tail.push(line);
            }
        });
        let until = Instant::now() + wait;
        loop {
            let addr = log.lock().unwrap().addr;
            if let Some(addr) = addr {
                return Ok(Self {
                    child,
                    spawned,
                    addr,
                    log,
                    reader: Some(reader_thread),
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "the agent exited ({status}) before listening:\n{}",
                    log.lock().unwrap().tail.join("\n")
                ));
            }
            if Instant::now() > until {
                let _ = child.kill();
                return Err("the agent did not report its listening address in time".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time from spawn to the first probe result in the log, waiting up to `wait`.
    pub fn first_result(&self, wait: Duration) -> Option<Duration> {
        let until = Instant::now() + wait;
        loop {
            if let Some(t) = self.log.lock().unwrap().first_result {
                return Some(t - self.spawned);
            }
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Whether `/readyz` answers 200 (503 while the first round runs).
    pub fn ready(&self) -> Result<bool, String> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "GET /readyz HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .map_err(|e| format!("GET /readyz: {e}"))?;
        let head = String::from_utf8_lossy(&raw[..raw.len().min(16)]).into_owned();
        match head.get(9..12) {
            Some("200") => Ok(true),
            Some("503") => Ok(false),
            _ => Err(format!("GET /readyz: {head:?}")),
        }
    }

    /// Polls `/readyz` every 10 ms until it answers 200 (up to `wait`); returns when.
    pub fn wait_ready(&self, wait: Duration) -> Result<Instant, String> {
        let until = Instant::now() + wait;
        loop {
            if self.ready()? {
                return Ok(Instant::now());
            }
            if Instant::now() > until {
                return Err(format!("the agent was not ready within {wait:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// When the agent last logged `config reloaded` (after `after`), waiting up to `wait`.
    pub fn reloaded_after(&self, after: Instant, wait: Duration) -> Option<Instant> {
        let until = Instant::now() + wait;
        loop {
            if let Some(t) = self.log.lock().unwrap().reloaded.filter(|t| *t > after) {
                return Some(t);
            }
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Asks the agent to re-read its config now (SIGHUP).
    pub fn hangup(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status();
    }

    /// GET a path; returns the wall time and the body.
    pub fn get(&self, path: &str) -> Result<(Duration, String), String> {
        let t = Instant::now();
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .map_err(|e| format!("GET {path}: {e}"))?;
        let elapsed = t.elapsed();
        let text = String::from_utf8(raw).map_err(|e| e.to_string())?;
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP head")?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("GET {path}: {}", head.lines().next().unwrap_or("")));
        }
        let chunked = head
            .lines()
            .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
        let body = if chunked {
            dechunk(body)?
        } else {
            body.to_owned()
        };
        Ok((elapsed, body))
    }

    /// Scrapes `/metrics`.
    pub fn scrape(&self) -> Result<Scrape, String> {
        let (took, body) = self.get("/metrics")?;
        Ok(Scrape::parse(took, &body))
    }

    /// SIGTERM, then wait (a kill after `grace`). Returns the verified-chain cache's
    /// `(hits, misses)` over the agent's life, which it logs as it stops.
    pub fn stop(mut self, grace: Duration) -> Option<(f64, f64)> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let until = Instant::now() + grace;
        let mut exited = false;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The pipe is closed now: the reader has seen every line.
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.log.lock().unwrap().chain_cache
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Decodes an HTTP/1.1 chunked body (`/metrics` is streamed).
fn dechunk(mut raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    loop {
        let (size, rest) = raw.split_once("\r\n").ok_or("truncated chunk header")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size:?}: {e}"))?;
        if size == 0 {
            return Ok(out);
        }
        let data = rest.get(..size).ok_or("truncated chunk")?;
        out.push_str(data);
        raw = rest.get(size + 2..).ok_or("truncated chunk end")?;
    }
}

/// A `"key":"value"` field of a JSON log line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let start = line.find(&pat)? + pat.len();
    let end = line[start..].find('"')? + start;
    Some(&line[start..end])
}

/// The figures one `/metrics` scrape gives.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    /// Wall time of the scrape (connect → last byte).
    pub took: Duration,
    /// Body size in bytes.
    pub bytes: usize,
    /// Completed probes (sum of `mtls_probe_attempts_total`).
    pub attempts: f64,
    /// Of which failed.
    pub failures: f64,
    /// `mtls_probe_schedule_lag_seconds_bucket` cumulative counts by `le`.
    pub lag: Vec<(f64, f64)>,
    /// Series per target label value.
    pub series_per_target: BTreeMap<String, usize>,
    /// All series.
    pub series: usize,
}

impl Scrape {
    fn parse(took: Duration, body: &str) -> Self {
        let mut s = Self {
            took,
            bytes: body.len(),
            ..Self::default()
        };
        for line in body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            s.series += 1;
            let (series, value) = line.rsplit_once(' ').unwrap_or((line, "0"));
            let value: f64 = value.parse().unwrap_or(0.0);
            let name = series.split('{').next().unwrap_or(series);
            if let Some(t) = label(series, "target") {
                *s.series_per_target.entry(t.to_owned()).or_default() += 1;
            }
            match name {
                "mtls_probe_attempts_total" => {
                    s.attempts += value;
                    if label(series, "result") == Some("failure") {
                        s.failures += value;
                    }
                }
                "mtls_probe_schedule_lag_seconds_bucket" => {
                    let le = label(series, "le")
                        .map_or(f64::INFINITY, |l| l.parse().unwrap_or(f64::INFINITY));
                    s.lag.push((le, value));
                }
                _ => {}
            }
        }
        s.lag.sort_by(|a, b| a.0.total_cmp(&b.0));
        s
    }

    /// The largest number of series of one edge.
    pub fn max_series_per_edge(&self) -> usize {
        self.series_per_target.values().copied().max().unwrap_or(0)
    }
}

fn label<'a>(series: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("{key}=\"");
    let start = series.find(&pat)? + pat.len();
    let end = series[start..].find('"')? + start;
    Some(&series[start..end])
}

/// The schedule lag observed between two scrapes.
#[derive(Clone, Copy, Debug)]
pub struct Lag {
    /// Observations.
    pub count: f64,
    /// Median, seconds (interpolated within its bucket, as `histogram_quantile`).
    pub p50: f64,
    /// 99th percentile, seconds.
    pub p99: f64,
    /// Share of observations at most 50 ms (exact: 0.05 is a bucket bound).
    pub within_50ms: f64,
}

impl Lag {
    /// From the bucket deltas of two scrapes.
    pub fn between(a: &Scrape, b: &Scrape) -> Self {
        let deltas: Vec<(f64, f64)> = b
            .lag
            .iter()
            .map(|(le, n)| {
                let before = a.lag.iter().find(|(l, _)| l == le).map_or(0.0, |x| x.1);
                (*le, n - before)
            })
            .collect();
        let count = deltas.last().map_or(0.0, |x| x.1);
        let within = deltas
            .iter()
            .find(|(le, _)| (*le - 0.05).abs() < 1e-9)
            .map_or(0.0, |x| x.1);
        Self {
            count,
            p50: quantile(&deltas, 0.5),
            p99: quantile(&deltas, 0.99),
            within_50ms: if count > 0.0 { within / count } else { 1.0 },
        }
    }
}

fn quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let Some(&(_, total)) = buckets.last() else {
        return f64::NAN;
    };
    if total <= 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, cum) in buckets {
        if cum >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            let in_bucket = cum - prev.1;
            let frac = if in_bucket > 0.0 {
                (rank - prev.1) / in_bucket
            } else {
                0.0
            };
            return prev.0 + (le - prev.0) * frac;
        }
        prev = (le, cum);
    }
    prev.0
}
