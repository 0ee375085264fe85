//! External programs used as real third-party peers (`openssl s_server`).
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
