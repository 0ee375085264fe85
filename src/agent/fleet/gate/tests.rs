//! The gate schedules exactly the share, through the edge set's own paths.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::*;
use crate::agent::edges::EdgeSetOptions;
use crate::agent::fleet::assign::{self, Item, Members};
use crate::agent::metrics::Metrics;
use crate::clock::SystemClock;
use crate::config::{self, Config};
use crate::identity::Credentials;
use crate::probe::{Prober, Resolver};
use crate::report::{ProbeReport, Timings};

const ME: &str = "10.0.0.1";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// 12 targets (one with a companion, one `all`), a day apart so nothing is probed while
/// the test runs; [fleet] with k = 2.
fn config() -> Config {
    let mut toml = String::from(
        "[agent]\nsource = \"a\"\ninterval = \"24h\"\njitter = 0.99\n\
         [fleet]\npeers = \"agents.test\"\nself = \"10.0.0.1\"\nprobers_per_target = 2\n\
         rotate = \"0s\"\n",
    );
    for i in 0..12 {
        toml.push_str(&format!(
            "[[target]]\nname = \"ns/t{i}\"\naddress = \"127.0.0.1:1\"\nmode = \"plaintext\"\n"
        ));
    }
    toml.push_str(
        "[[target]]\nname = \"ns/strict\"\naddress = \"127.0.0.1:1\"\nmode = \"tls\"\n\
         verify_strict = true\n[[target]]\nname = \"node-local\"\naddress = \"127.0.0.1:1\"\n\
         mode = \"plaintext\"\nfleet = \"all\"\n",
    );
    // A tls target needs a trust bundle path; it is never read here.
    toml.push_str("[identity]\ncert = \"c\"\nkey = \"k\"\nca = \"ca\"\n");
    config::load_str(&toml, "t.toml", &Default::default()).unwrap()
}

fn edge_set(metrics: Option<Metrics>) -> (EdgeSet, watch::Sender<bool>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let creds = Credentials::load(None, &provider, SystemTime::now());
    let (_tx, creds) = watch::channel(Arc::new(creds));
    let (stop, shutdown) = watch::channel(false);
    let set = EdgeSet::new(EdgeSetOptions {
        source: "a".into(),
        prober: Prober::new(Resolver::new(&[]), Arc::new(SystemClock)),
        creds,
        max_concurrency: 4,
        windows: vec![Duration::from_secs(300)],
        jitter: 0.99,
        metrics,
        shutdown,
        observer: None,
        log_transitions: false,
    });
    (set, stop)
}

fn sharing(c: &Config, members: &[&str], epoch: u64) -> Rule {
    Rule::Fleet {
        config: c.fleet.clone().unwrap(),
        state: State::Sharing(Arc::new(Members::new(members.iter().map(|m| ip(m))))),
        epoch,
    }
}

/// What `assign` says this agent holds, as edge names (companions follow, `all` always).
fn expected(c: &Config, members: &[&str], epoch: u64) -> BTreeSet<String> {
    let m = Members::new(members.iter().map(|m| ip(m)));
    c.targets
        .iter()
        .filter(|t| {
            t.fleet == FleetScope::All || {
                let it: Item<'_> = item(t);
                assign::holds(it, &m, ip(ME), 2, epoch)
            }
        })
        .map(|t| t.name.clone())
        .collect()
}

fn names(set: &EdgeSet) -> BTreeSet<String> {
    set.names().into_iter().collect()
}

fn marker(target: &str) -> ProbeReport {
    ProbeReport {
        source: "a".into(),
        target: target.into(),
        address: "127.0.0.1:1".into(),
        mode: config::Mode::Plaintext,
        expect: config::Expect::Success,
        ok: true,
        stage: None,
        reason: None,
        detail: Some("marker".into()),
        hint: None,
        timings_ms: Timings::default(),
        tls: None,
        peer: None,
        http: None,
        far_side: None,
        grpc: None,
        at: String::new(),
    }
}

#[tokio::test]
async fn the_gate_schedules_the_share_and_diffs_on_change() {
    let c = config();
    let metrics = Metrics::new("a").unwrap();
    let (set, _stop) = edge_set(Some(metrics.clone()));
    let gate = Arc::new(Gate::new(
        set.clone(),
        crate::agent::fleet::initial_rule(c.fleet.as_ref(), &SystemClock),
    ));
    for t in &c.targets {
        gate.upsert(t.clone(), true);
    }
    // Starting: only the `all` target, and not ready.
    assert_eq!(names(&set), BTreeSet::from(["node-local".to_owned()]));
    assert!(
        gate.readiness()
            .unwrap_err()
            .contains("agents.test not looked up yet")
    );

    let five = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"];
    gate.set_rule(sharing(&c, &five, 0));
    let want = expected(&c, &five, 0);
    assert_eq!(names(&set), want);
    assert!(want.len() > 1 && want.len() < c.targets.len(), "{want:?}");
    assert!(gate.readiness().is_ok());
    // The companion follows its target.
    assert_eq!(
        want.contains("ns/strict"),
        want.contains("ns/strict/plaintext")
    );
    let view = gate.view().unwrap();
    assert_eq!(view.state, "sharing");
    assert_eq!(view.members, 5);
    assert_eq!(view.assigned, want.len() - 1);
    assert_eq!((view.shared, view.all), (c.targets.len() - 1, 1));
    let text = String::from_utf8(metrics.render()).unwrap();
    assert!(
        text.contains("mtls_probe_fleet_members{source=\"a\"} 5"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "mtls_probe_fleet_assigned{{source=\"a\"}} {}",
        want.len() - 1
    )));

    // Mark every held edge, then let agent 10.0.0.2 leave: only its targets move, and
    // the edges this agent keeps keep their history.
    for n in &want {
        assert!(set.record(n, marker(n)));
    }
    let four = ["10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.5"];
    let (added, removed) = gate.set_rule(sharing(&c, &four, 0));
    let want4 = expected(&c, &four, 0);
    assert_eq!(names(&set), want4);
    assert_eq!(removed, 0, "a leaver's targets only move to others");
    assert_eq!(added, want4.difference(&want).count());
    for v in set.views() {
        let kept = want.contains(&v.target.name);
        assert_eq!(
            v.last.as_ref().and_then(|r| r.detail.as_deref()) == Some("marker"),
            kept,
            "{}",
            v.target.name
        );
    }
    // Who else probes it: computed, this agent among them.
    let held = c
        .targets
        .iter()
        .find(|t| t.fleet == FleetScope::Shared && want4.contains(&t.name))
        .unwrap();
    let d = gate.describe(held).unwrap();
    assert_eq!(d.share, Share::Assigned);
    let probers = d.probers.unwrap();
    assert_eq!(probers.len(), 2);
    assert!(probers.contains(&ip(ME)));
    let all = c.targets.iter().find(|t| t.name == "node-local").unwrap();
    assert_eq!(gate.describe(all).unwrap().share, Share::All);

    // Fail open: everything; back: the share again, the held ones untouched.
    gate.set_rule(Rule::Fleet {
        config: c.fleet.clone().unwrap(),
        state: State::FailOpen { why: "dns".into() },
        epoch: 0,
    });
    assert_eq!(names(&set).len(), c.targets.len());
    let text = String::from_utf8(metrics.render()).unwrap();
    assert!(
        text.contains("mtls_probe_fleet_members{source=\"a\"} 0"),
        "{text}"
    );
    gate.set_rule(sharing(&c, &four, 0));
    assert_eq!(names(&set), want4);
    // A new epoch moves the share.
    gate.set_rule(sharing(&c, &four, 1));
    assert_eq!(names(&set), expected(&c, &four, 1));
    // [fleet] removed by a reload: everything, and the fleet series disappear.
    gate.set_rule(Rule::Off);
    assert_eq!(names(&set).len(), c.targets.len());
    assert!(gate.view().is_none());
    assert!(gate.describe(held).is_none());
    let text = String::from_utf8(metrics.render()).unwrap();
    assert!(!text.contains("mtls_probe_fleet_"), "{text}");
}

#[tokio::test]
async fn reload_and_discovery_go_through_the_same_decision() {
    let c = config();
    let (set, _stop) = edge_set(None);
    let three = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    let gate = Arc::new(Gate::new(set.clone(), sharing(&c, &three, 0)));
    for t in &c.targets {
        gate.upsert(t.clone(), false);
    }
    assert_eq!(names(&set), expected(&c, &three, 0));
    // A discovered agent is probed by k others, never by itself.
    let d = config::load_str(
        "[[discover]]\nname = \"agents\"\ndns = \"agents.test\"\nport = 8443\nmode = \"plaintext\"\n",
        "d.toml",
        &Default::default(),
    )
    .unwrap()
    .discover
    .remove(0);
    let mine = d.edge(ip(ME));
    gate.upsert(Arc::new(mine.clone()), false);
    assert!(!names(&set).contains(&mine.name));
    let mut held = 0;
    for other in ["10.0.0.2", "10.0.0.3"] {
        let e = d.edge(ip(other));
        gate.upsert(Arc::new(e.clone()), false);
        // With three agents and k = 2, the two others of each agent probe it.
        held += usize::from(names(&set).contains(&e.name));
    }
    assert_eq!(held, 2);
    // Removing a candidate removes its edge; a removed one that was not held is gone
    // from the candidates too.
    gate.remove(&d.edge(ip("10.0.0.2")).name);
    gate.remove(&mine.name);
    assert!(!gate.names().contains(&mine.name));
    assert!(!names(&set).contains(&d.edge(ip("10.0.0.2")).name));
}

#[tokio::test]
async fn a_reload_of_unchanged_targets_keeps_one_copy_of_each() {
    let c = config();
    let (set, _stop) = edge_set(None);
    let gate = Arc::new(Gate::new(set.clone(), sharing(&c, &[ME], 0)));
    for t in &c.targets {
        gate.upsert(t.clone(), true);
    }
    let first: Vec<Arc<Target>> = set.views().into_iter().map(|v| v.target).collect();
    assert_eq!(first.len(), c.targets.len());
    // The same file again (a reload that changed nothing, or one that changed one
    // target): every unchanged edge and its candidate still share the first copy.
    let mut again = config();
    Arc::make_mut(&mut again.targets[0]).timeout = Duration::from_secs(1);
    for t in again.targets {
        gate.upsert(t, false);
    }
    let g = lock(&gate.inner);
    for (i, (view, before)) in set.views().into_iter().zip(&first).enumerate() {
        let candidate = &g.candidates[&view.target.name].target;
        assert!(Arc::ptr_eq(&view.target, candidate), "{}", view.target.name);
        assert_eq!(
            Arc::ptr_eq(&view.target, before),
            view.target.name != c.targets[0].name,
            "target {i}: {}",
            view.target.name
        );
    }
}
