use super::*;
use crate::agent::metrics::Metrics;
use crate::clock::SystemClock;
use crate::demo::peers::{self, Behavior, HttpBehavior, Response};
use crate::probe::Resolver;

fn target(name: &str, addr: std::net::SocketAddr, every: &str) -> String {
    format!(
        "[[target]]\nname = \"{name}\"\naddress = \"{addr}\"\nmode = \"plaintext\"\n\
         interval = \"{every}\"\ntimeout = \"{every}\"\n[target.http]\npath = \"/\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_edges_cannot_starve_a_healthy_one() {
    // Eight blackholed edges whose timeout equals their interval would hold all four
    // permits; the healthy edge (every 100 ms) would queue behind them and get one
    // about every 200 ms, while the holes finish four probes per 400 ms: fewer
    // healthy probes than hole probes. Kept to half of the permits, the holes finish
    // two per 400 ms and the healthy edge runs on time (four per 400 ms): about twice
    // as many. Counting one against the other needs no clock in the test.
    let hole = peers::spawn(Behavior::Blackhole).await.unwrap();
    let ok = peers::spawn(Behavior::Plaintext {
        http: HttpBehavior::Respond(Response::ok()),
    })
    .await
    .unwrap();
    let mut toml = String::from("[agent]\nsource = \"t\"\njitter = 0\n");
    for i in 0..8 {
        toml.push_str(&target(&format!("hole/{i}"), hole.addr(), "400ms"));
    }
    toml.push_str(&target("healthy", ok.addr(), "100ms"));
    let config = crate::config::load_str(&toml, "t.toml", &Default::default()).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let observer: Observer = Arc::new(move |r: &ProbeReport, _: Option<&ProbeReport>| {
        let _ = tx.send((r.target.clone(), r.ok));
    });
    let (set, _stop) = edge_set(&config, 4, None, observer, false);
    // The first round tells the agent which edges time out; count after it.
    let mut first = std::collections::BTreeSet::new();
    while first.len() < 8 {
        let (target, _) = rx.recv().await.unwrap();
        if target.starts_with("hole/") {
            first.insert(target);
        }
    }
    let (mut holes, mut healthy) = (0, 0);
    while holes < 16 {
        let (target, ok) = rx.recv().await.unwrap();
        if target == "healthy" {
            assert!(ok, "the healthy edge failed");
            healthy += 1;
        } else {
            holes += 1;
        }
    }
    assert!(
        healthy >= holes,
        "the healthy edge was probed {healthy} times while the blackholed ones \
         finished {holes} probes (on time it would be about {})",
        2 * holes
    );
    set.remove("healthy");
}

#[tokio::test]
async fn schedule_lag_counts_the_wait_for_a_permit() {
    // Three edges due at once, one permit, a peer that never answers (each probe
    // holds the permit for its 300 ms timeout): the second starts ≈ 0.3 s late and
    // the third ≈ 0.6 s late. The lag histogram (the SPEC's overload signal) must
    // show that queueing, not only the timer's own lateness.
    let silent = peers::spawn(Behavior::Plaintext {
        http: HttpBehavior::Silent,
    })
    .await
    .unwrap();
    let mut toml = String::from("[agent]\nsource = \"t\"\njitter = 0\n");
    for i in 0..3 {
        toml.push_str(
            &target(&format!("silent/{i}"), silent.addr(), "10s")
                .replace("timeout = \"10s\"", "timeout = \"300ms\""),
        );
    }
    let config = crate::config::load_str(&toml, "t.toml", &Default::default()).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let observer: Observer = Arc::new(move |r: &ProbeReport, _: Option<&ProbeReport>| {
        let _ = tx.send(r.reason);
    });
    let metrics = Metrics::new("t").unwrap();
    let (_set, _stop) = edge_set(&config, 1, Some(metrics.clone()), observer, true);
    for _ in 0..3 {
        assert_eq!(rx.recv().await.unwrap(), Some(Reason::RequestTimeout));
    }
    let text = String::from_utf8(metrics.render()).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    let lag = "mtls_probe_schedule_lag_seconds";
    assert_eq!(value(&format!("{lag}_count")), 3.0);
    assert_eq!(
        value(&format!("{lag}_bucket{{source=\"t\",le=\"0.1\"}}")),
        1.0
    );
    let sum = value(&format!("{lag}_sum"));
    assert!(
        (0.8..3.0).contains(&sum),
        "the queued probes' lags add up to {sum} s, expected ≈ 0.3 + 0.6"
    );
}

/// An edge set of `n` start-up edges to `addr` (interval 30 s, `timeout`), all due at
/// once, sending when each probe completed.
fn silent_set(
    addr: std::net::SocketAddr,
    n: usize,
    timeout: &str,
    max_concurrency: usize,
    first_round: bool,
) -> (
    EdgeSet,
    tokio::sync::mpsc::UnboundedReceiver<Instant>,
    watch::Sender<bool>,
) {
    let mut toml = String::from("[agent]\nsource = \"t\"\njitter = 0\n");
    for i in 0..n {
        toml.push_str(
            &target(&format!("silent/{i}"), addr, "30s")
                .replace("timeout = \"30s\"", &format!("timeout = \"{timeout}\"")),
        );
    }
    let config = crate::config::load_str(&toml, "t.toml", &Default::default()).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let observer: Observer = Arc::new(move |_: &ProbeReport, _: Option<&ProbeReport>| {
        let _ = tx.send(Instant::now());
    });
    let (set, stop) = edge_set(&config, max_concurrency, None, observer, first_round);
    (set, rx, stop)
}

/// An edge set probing `config`'s targets (each upserted with `first_round`), every
/// completed probe shown to `observer`. It runs while the returned sender lives.
fn edge_set(
    config: &crate::config::Config,
    max_concurrency: usize,
    metrics: Option<Metrics>,
    observer: Observer,
    first_round: bool,
) -> (EdgeSet, watch::Sender<bool>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let creds = Credentials::load(None, &provider, SystemTime::now());
    let (_creds_tx, creds) = watch::channel(Arc::new(creds));
    let (stop, shutdown) = watch::channel(false);
    let set = EdgeSet::new(EdgeSetOptions {
        source: "t".into(),
        prober: Prober::new(Resolver::new(&[]), Arc::new(SystemClock)),
        creds,
        max_concurrency,
        windows: vec![Duration::from_secs(300)],
        jitter: 0.0,
        metrics,
        shutdown,
        observer: Some(observer),
        log_transitions: false,
    });
    for t in &config.targets {
        set.upsert(t.clone(), first_round);
    }
    (set, stop)
}

/// When the `n`-th probe completed, counted from `start`.
async fn nth_done(
    done: &mut tokio::sync::mpsc::UnboundedReceiver<Instant>,
    start: Instant,
    n: usize,
) -> Duration {
    let mut last = start;
    for _ in 0..n {
        last = done.recv().await.unwrap();
    }
    last - start
}

#[tokio::test]
async fn start_up_probes_take_a_quarter_of_the_permits_for_at_most_a_second() {
    let silent = peers::spawn(Behavior::Plaintext {
        http: HttpBehavior::Silent,
    })
    .await
    .unwrap();
    // 64 permits, 16 of them for the start-up round: 32 start-up probes of 300 ms run
    // in two waves (all at once they would end together after 300 ms)…
    let start = Instant::now();
    let (_set, mut done, _stop) = silent_set(silent.addr(), 32, "300ms", 64, true);
    let took = nth_done(&mut done, start, 32).await;
    assert!(
        took >= Duration::from_millis(580),
        "32 start-up probes of 300 ms ended {took:?} after the start: more than 16 ran at once"
    );
    // …while edges added later (a reload, a hand-over) are not held to the share.
    let start = Instant::now();
    let (_set, mut done, _stop) = silent_set(silent.addr(), 32, "300ms", 64, false);
    let took = nth_done(&mut done, start, 32).await;
    assert!(
        took < Duration::from_millis(580),
        "32 probes added after start-up took {took:?}: they waited for the start-up share"
    );
    // Probes of 2.5 s let the next start-up probe begin after one second, so 20 of them
    // end by ≈ 3.5 s, not 5 s as two waves of 16 and 4 would.
    let start = Instant::now();
    let (_set, mut done, _stop) = silent_set(silent.addr(), 20, "2500ms", 64, true);
    let took = nth_done(&mut done, start, 20).await;
    assert!(
        took < Duration::from_millis(4500),
        "20 start-up probes of 2.5 s took {took:?}: a slow probe held its start-up permit \
         past {FIRST_PROBE_HOLD:?}"
    );
}

#[test]
fn the_start_up_share_leaves_small_configs_alone() {
    assert_eq!(first_share(1), 1);
    assert_eq!(first_share(8), 8);
    assert_eq!(first_share(16), 16);
    assert_eq!(first_share(32), 16);
    assert_eq!(first_share(256), 64);
}
