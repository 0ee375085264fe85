//! The watch view on a real terminal: `demo --watch` inside tmux at 80×24, read back
//! with `capture-pane`. Was: a 34-line frame whose header never showed, and one copy of
//! the frame left in the scrollback per redraw.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::agent::BIN;
use crate::common::tools::require;

/// A tmux server of its own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16, command: &str) -> Self {
        // One server per test: tests of this module run in parallel.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let socket = format!("mtls-prober-it-{}-{n}", std::process::id());
        let this = Self { socket };
        let ok = this
            .cmd(&["-f", "/dev/null", "new-session", "-d", "-s", "w"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .arg(command)
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        this
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]).args(args);
        c
    }

    fn output(&self, args: &[&str]) -> String {
        let o = self.cmd(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The visible screen.
    fn screen(&self) -> String {
        self.output(&["capture-pane", "-p", "-t", "w"])
    }

    /// The scrollback and the screen.
    fn history(&self) -> String {
        self.output(&["capture-pane", "-p", "-t", "w", "-S", "-", "-E", "-"])
    }

    fn alternate_on(&self) -> bool {
        self.output(&["display-message", "-p", "-t", "w", "#{alternate_on}"])
            .trim()
            == "1"
    }

    /// Polls the screen until `pred` holds (tmux has no change notification to wait on).
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.history();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

#[test]
fn the_watch_view_fits_80x24_redraws_in_place_and_restores_the_terminal_on_ctrl_c() {
    if !require("tmux", &["-V"]) {
        return;
    }
    let tmux = Tmux::start(
        80,
        24,
        &format!("{BIN} demo --watch --duration 10m; echo EXIT=$?; exec sleep 120"),
    );
    // Let it redraw a few times (the view redraws every second).
    tmux.wait_for("the live view", |s| s.contains("watch ["));
    tmux.wait_for("a few redraws", |s| {
        s.lines()
            .find(|l| l.starts_with("watch ["))
            .is_some_and(|l| l.contains("00:03 /"))
    });
    assert!(tmux.alternate_on(), "the view runs on the alternate screen");
    let screen = tmux.screen();
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines.len() <= 24, "{screen}");
    assert!(
        lines[0].starts_with("watch ["),
        "the header is on top:\n{screen}"
    );
    assert!(lines[0].contains("Ctrl-C stops early"), "{screen}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" more (the final report lists every edge)")),
        "35 edges do not fit in 24 lines:\n{screen}"
    );
    assert!(lines.iter().all(|l| l.chars().count() <= 80), "{screen}");

    tmux.cmd(&["send-keys", "-t", "w", "C-c"]).status().unwrap();
    let history = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(!tmux.alternate_on(), "the terminal is restored");
    // The demo mesh is broken on purpose and the watch was cut short: exit 1.
    assert!(history.contains("EXIT=1"), "{history}");
    assert!(history.contains("FAIL — "), "{history}");
    assert!(history.contains("cut short"), "{history}");
    // Not one frame left behind in the scrollback.
    assert_eq!(
        history.matches("Ctrl-C stops early").count(),
        0,
        "frames in the scrollback:\n{history}"
    );
}

/// Was: 32 WARN lines (one per broken edge) scrolled the status page URL and the probe command off the screen,
/// and the command read `cargo run --release -- probe …` whatever the binary.
#[test]
fn the_demo_banner_comes_after_the_first_round_and_stays_on_screen() {
    if !require("tmux", &["-V"]) {
        return;
    }
    let tmux = Tmux::start(
        200,
        50,
        &format!("{BIN} demo --listen 127.0.0.1:0 --duration 5m; exec sleep 120"),
    );
    let history = tmux.wait_for("the banner", |s| s.contains("Ctrl-C stops the demo"));
    assert!(
        !history.contains("WARN"),
        "per-edge logs on the terminal:\n{history}"
    );
    assert!(history.contains("First round: 35 edges in "), "{history}");
    let screen = tmux.screen();
    assert!(
        screen.contains("status page   http://127.0.0.1:"),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("  {BIN} probe --config ")),
        "the command as invoked:\n{screen}"
    );
    assert!(!screen.contains("cargo run"), "{screen}");
}
