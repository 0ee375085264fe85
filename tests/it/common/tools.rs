//! External programs used as real third-party peers (`openssl s_server`, nginx).
//!
//! A test that needs one skips only when the tool is absent *and* `CI` is unset, and
//! says so on stderr; in CI a missing tool fails the test.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// Whether `tool` runs; panics in CI when it does not.
pub fn require(tool: &str, probe_args: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(probe_args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("{tool} is required in CI (install it in .ci/run)");
        }
        eprintln!("SKIPPED: {tool} is not installed (this test runs in CI)");
    }
    ok
}

/// A running `openssl s_server`; killed on drop.
pub struct OpensslServer {
    child: Child,
    pub addr: SocketAddr,
}

impl OpensslServer {
    /// Starts `openssl s_server -accept 127.0.0.1:0 <args>` and waits for its
    /// `ACCEPT host:port` line (the readiness signal).
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new("openssl")
            .arg("s_server")
            .args(["-accept", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn openssl s_server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads until ACCEPT, then keeps draining so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("ACCEPT ") {
                    let _ = tx.send(a.trim().to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("openssl s_server did not print ACCEPT")
            .parse()
            .expect("ACCEPT address");
        Self { child, addr }
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running nginx (single process, foreground, everything under its own temp
/// directory, listening on 127.0.0.1 only); killed on drop.
pub struct NginxServer {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl NginxServer {
    /// Starts nginx with `server_block` (the directives inside `server { … }`, without
    /// `listen`) on a free loopback port; `listen_flags` follow the address (`ssl`,
    /// `ssl http2`). nginx cannot report an ephemeral port, so the port is picked here;
    /// if another process takes it first, nginx exits and a new port is tried.
    pub fn start(listen_flags: &str, server_block: &str) -> Self {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            if let Some(server) = Self::try_start(port, listen_flags, server_block) {
                return server;
            }
        }
        panic!("nginx did not start on any of 5 ports");
    }

    fn try_start(port: u16, listen_flags: &str, server_block: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display().to_string();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log stderr warn;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             server {{\n    listen 127.0.0.1:{port} {listen_flags};\n{server_block}\n  }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let mut child = Command::new("nginx")
            .args(["-e", "stderr", "-p", &d, "-c"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // nginx writes its pid file after it has bound its listeners: the readiness
        // signal. An early exit means the port was taken (or the config is wrong).
        let pid_file = dir.path().join("nginx.pid");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if pid_file.exists() && std::net::TcpStream::connect(addr).is_ok() {
                return Some(Self {
                    child,
                    addr,
                    _dir: dir,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("nginx exited with {status} on port {port}");
                return None;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nginx did not come up in 20 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for NginxServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tests that measure scheduling lag (a healthy edge probed every 200 ms must not start
/// late) hold this exclusively; starting a JVM or a Python gRPC server — a second of
/// CPU on a 2-core machine — holds it shared, so the two never overlap. Other tests do
/// not take it.
static CPU_BURSTS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Held by a test whose assertions are about timing, for its whole run (see
/// [`CPU_BURSTS`]). Holding it across awaits is the point: the test owns its thread,
/// and the shared holders never await while holding theirs.
pub struct TimingSensitive {
    _guard: std::sync::RwLockWriteGuard<'static, ()>,
}

/// Waits until no third-party peer is starting, then keeps them from starting.
pub fn timing_sensitive() -> TimingSensitive {
    TimingSensitive {
        _guard: CPU_BURSTS
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    }
}

/// Held while a third-party peer starts up (see [`CPU_BURSTS`]).
fn cpu_burst() -> std::sync::RwLockReadGuard<'static, ()> {
    CPU_BURSTS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A process that prints `LISTENING <port>` once bound on 127.0.0.1 (the Java and
/// Python peers under `tests/peers/`); killed on drop.
pub struct ListeningPeer {
    child: Child,
    pub addr: SocketAddr,
}

impl ListeningPeer {
    /// Starts `program args…` and waits (up to 60 s: the JVM compiles the source first)
    /// for its `LISTENING <port>` line.
    pub fn start(program: &str, args: &[&str]) -> Self {
        let _burst = cpu_burst();
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(p) = line.strip_prefix("LISTENING ") {
                    let _ = tx.send(p.trim().to_owned());
                }
            }
        });
        let port: u16 = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(p) => p.parse().expect("a port number"),
            Err(_) => {
                let _ = child.kill();
                panic!("{program} {args:?} did not print LISTENING within 60 s");
            }
        };
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

impl Drop for ListeningPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a peer program under `tests/peers/`.
pub fn peer_source(name: &str) -> String {
    format!("{}/tests/peers/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The Java peer compiled once per test run (`javac` into a temporary directory kept
/// for the process): starting each server from classes costs a fraction of the CPU of
/// the single-file source launcher, which compiles on every start and would slow the
/// timing-sensitive tests running beside it on a small machine. `None` when the JDK is
/// absent (and `CI` is unset; see [`require`]).
pub fn java_classes() -> Option<&'static std::path::Path> {
    static CLASSES: std::sync::OnceLock<Option<tempfile::TempDir>> = std::sync::OnceLock::new();
    CLASSES
        .get_or_init(|| {
            if !require("javac", &["-version"]) {
                return None;
            }
            let dir = tempfile::tempdir().expect("temp dir");
            let _burst = cpu_burst();
            let ok = Command::new("javac")
                .arg("-d")
                .arg(dir.path())
                .arg(peer_source("JavaHttpsPeer.java"))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "javac tests/peers/JavaHttpsPeer.java failed");
            Some(dir)
        })
        .as_ref()
        .map(tempfile::TempDir::path)
}
