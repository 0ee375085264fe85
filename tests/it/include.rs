//! `[agent] include`: the agent reloads when an included file changes, appears or goes
//! away, and refuses a bad included file (or a name defined in two files) while the
//! running matrix keeps going.

use std::path::Path;
use std::time::Duration;

use crate::common::agent::{AgentProcess, Metrics};
use crate::common::*;

const LONG: Duration = Duration::from_secs(20);

fn write(path: &Path, text: &str) {
    // Write then rename, as a ConfigMap update would: never half a file.
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn target_block(name: &str, addr: std::net::SocketAddr) -> String {
    format!(
        "[[target]]\nname = \"{name}\"\naddress = \"{addr}\"\nspiffe_id = \"{SERVER_ID}\"\n[target.http]\npath = \"/healthz\"\n"
    )
}

fn reloads(m: &Metrics, result: &str) -> f64 {
    m.value("mtls_probe_config_reloads_total", &[("result", result)])
        .unwrap_or(0.0)
}

#[tokio::test]
async fn included_files_are_loaded_and_reloaded_with_the_config() {
    let pki = Pki::new();
    let a = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let b = pki.strict_peer(HttpBehavior::Respond(Response::ok())).await;
    let config = pki.path("agent.toml");
    write(
        &config,
        &format!(
            "[agent]\nsource = \"node-a\"\nlisten = \"127.0.0.1:0\"\ninterval = \"200ms\"\n\
             timeout = \"150ms\"\ninclude = [\"matrix/*.toml\"]\n\
             [identity]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n",
            pki.path("cert-chain.pem").display(),
            pki.path("key.pem").display(),
            pki.path("root-cert.pem").display(),
        ),
    );
    let matrix = pki.path("matrix");
    write(&matrix.join("a.toml"), &target_block("prod/a", a.addr()));
    let agent = AgentProcess::start(&config, &[]).await;
    agent
        .wait_metrics(LONG, |m| m.attempts("prod/a") >= 1.0)
        .await;

    // A new matching file is noticed.
    write(&matrix.join("b.toml"), &target_block("prod/b", b.addr()));
    let m = agent
        .wait_metrics(LONG, |m| {
            reloads(m, "success") == 1.0 && m.attempts("prod/b") >= 1.0
        })
        .await;
    assert_eq!(m.value("mtls_probe_targets", &[]), Some(2.0));

    // A changed file is noticed: a renamed target.
    write(&matrix.join("b.toml"), &target_block("prod/b2", b.addr()));
    let m = agent
        .wait_metrics(LONG, |m| {
            reloads(m, "success") == 2.0 && m.attempts("prod/b2") >= 1.0
        })
        .await;
    assert_eq!(m.series_of_target("prod/b"), 0, "{}", m.text);

    // A bad included file is refused, naming it; the running matrix stays.
    write(
        &matrix.join("c.toml"),
        "[[target]]\nname = \"prod/c\"\nadress = \"typo:1\"\n",
    );
    agent
        .wait_metrics(LONG, |m| reloads(m, "failure") == 1.0)
        .await;
    let (_, page) = agent.get("/").await;
    assert!(page.contains("c.toml"), "the status page names the file");
    assert!(page.contains("target[0].adress"), "and the key");

    // A name defined in two files is refused, naming both.
    write(&matrix.join("c.toml"), &target_block("prod/a", b.addr()));
    agent
        .wait_metrics(LONG, |m| reloads(m, "failure") == 2.0)
        .await;
    let log = agent.log_text();
    assert!(
        log.contains("matrix/c.toml: target[0].name:")
            && log.contains("is already used by target[0] in ")
            && log.contains("matrix/a.toml; expected a unique name"),
        "{log}"
    );

    // A removed file is noticed: its targets go.
    std::fs::remove_file(matrix.join("c.toml")).unwrap();
    std::fs::remove_file(matrix.join("a.toml")).unwrap();
    let m = agent
        .wait_metrics(LONG, |m| reloads(m, "success") == 3.0)
        .await;
    assert_eq!(m.series_of_target("prod/a"), 0, "{}", m.text);
    assert_eq!(m.value("mtls_probe_targets", &[]), Some(1.0));
}
