//! The status page in a real browser: Debian's chromium, headless, driven over CDP by
//! `tests/browser/check.mjs` (playwright-core, no bundled browser) against the demo.
//! Was: names broken mid-word at 1400 px, 5,000 px of scrolling for 32 edges, Reason
//! and Detail off screen at 420 px, and runbook anchors that did nothing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::common::agent::BIN;
use crate::common::tools::require;

/// The demo, killed on drop.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the demo on a free port; returns it and the status page URL, printed in its
/// banner once the first round of probes is done (the readiness signal).
fn demo() -> (Demo, String) {
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--duration", "10m"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let demo = Demo(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("status page") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the demo printed its status page URL");
    (demo, url)
}

fn tools_present(driver: &Path) -> bool {
    if !require("chromium", &["--version"]) || !require("node", &["--version"]) {
        return false;
    }
    if !driver.join("node_modules/playwright-core").is_dir() {
        if std::env::var_os("CI").is_some() {
            panic!("tests/browser/node_modules is missing: .ci/run runs `npm ci` there");
        }
        eprintln!("SKIPPED: run `npm ci` in tests/browser (this test runs in CI)");
        return false;
    }
    true
}

#[test]
fn the_status_page_reads_at_1400_and_420_px_and_the_runbook_anchors_work() {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !tools_present(&driver) {
        return;
    }
    let (_demo, url) = demo();
    let shots = tempfile::tempdir().unwrap();
    let o = Command::new("node")
        .arg(driver.join("check.mjs"))
        .arg(&url)
        .arg(shots.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = |w: &str| v[w]["rows"].as_array().unwrap().clone();

    // 1400×900: one line per edge, and every failing edge of the demo on the first screen.
    let wide = &v["wide"];
    assert!(
        wide["scrollWidth"].as_f64() <= wide["viewport"]["width"].as_f64(),
        "{wide}"
    );
    let wide_rows = rows("wide");
    assert_eq!(wide_rows.len(), 35, "{wide}");
    for r in &wide_rows {
        assert_eq!(r["lines"], 1, "one line per edge: {r}");
        assert_eq!(r["targetOneLine"], true, "{r}");
    }
    let failing: Vec<_> = wide_rows.iter().filter(|r| r["failing"] == true).collect();
    assert!(failing.len() >= 20, "{wide}");
    for r in &failing {
        assert!(
            r["bottom"].as_f64().unwrap() <= 900.0,
            "below the first screen: {r}"
        );
    }
    assert!(
        wide["namespaces"].as_u64().unwrap() >= 1,
        "the namespace summary: {wide}"
    );

    // 420 px: no horizontal overflow; state, target and reason of every edge visible.
    let narrow = &v["narrow"];
    assert!(
        narrow["scrollWidth"].as_f64() <= narrow["viewport"]["width"].as_f64(),
        "{narrow}"
    );
    for r in rows("narrow") {
        for cell in ["stateVisible", "targetVisible", "reasonVisible"] {
            assert_eq!(r[cell], true, "{cell}: {r}");
        }
    }

    // The runbook is HTML and `#cert_expired` scrolls to its section.
    let rb = &v["runbook"];
    assert_eq!(rb["found"], true, "{rb}");
    assert!(rb["scrollY"].as_f64().unwrap() > 1000.0, "{rb}");
    assert!(rb["top"].as_f64().unwrap().abs() < 50.0, "{rb}");
    if let Some(dir) = std::env::var_os("MTLS_PROBER_SCREENSHOTS") {
        for f in ["status-1400.png", "status-420.png", "runbook.png"] {
            let _ = std::fs::copy(shots.path().join(f), Path::new(&dir).join(f));
        }
    }
}
