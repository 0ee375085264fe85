//! Golden vectors and the properties of the assignment.
//!
//! The vectors were computed by a second, independent implementation of the
//! specification in the module docs (Python's hashlib), so they pin the specification,
//! not just this code:
//!
//! ```python
//! import hashlib, ipaddress, struct
//! M = (1 << 64) - 1
//! def T(key, e): return int.from_bytes(hashlib.sha256(
//!     b"mtls-prober/fleet/v1/target" + struct.pack(">Q", e) + key.encode()).digest()[:8], "big")
//! def A(ip):
//!     a = ipaddress.ip_address(ip)
//!     if a.version == 6 and a.ipv4_mapped: a = a.ipv4_mapped
//!     return int.from_bytes(hashlib.sha256(b"mtls-prober/fleet/v1/agent" + a.packed).digest()[:8], "big")
//! def mix(z):
//!     z ^= z >> 30; z = (z * 0xbf58476d1ce4e5b9) & M; z ^= z >> 27
//!     z = (z * 0x94d049bb133111eb) & M; return z ^ (z >> 31)
//! ```

use std::collections::{BTreeMap, BTreeSet};

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn fleet(n: u8) -> Members {
    Members::new((1..=n).map(|i| ip(&format!("10.0.0.{i}"))))
}

fn item(key: &str) -> Item<'_> {
    Item { key, exclude: None }
}

#[test]
fn golden_vectors() {
    assert_eq!(target_digest("production/api", 0), 0x95b3_11e1_601e_9071);
    assert_eq!(
        target_digest("production/api", 481_234),
        0xa76e_f048_74dd_cc89
    );
    assert_eq!(agent_digest(ip("10.0.0.1")), 0xe484_bf3d_5fcb_db64);
    assert_eq!(agent_digest(ip("fd00::7")), 0xe759_b490_8d12_d0a0);
    // An IPv4-mapped address is the IPv4 agent.
    assert_eq!(agent_digest(ip("::ffff:10.0.0.1")), 0xe484_bf3d_5fcb_db64);
    assert_eq!(
        weight(
            target_digest("production/api", 481_234),
            agent_digest(ip("10.0.0.1"))
        ),
        0x01ad_c158_a194_6b0e
    );
    let members = fleet(5);
    let e = 481_234;
    let holders_of = |key: &str, exclude: Option<&str>| {
        holders(
            Item {
                key,
                exclude: exclude.map(ip),
            },
            &members,
            2,
            e,
        )
        .into_iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
    };
    assert_eq!(holders_of("production/api", None), ["10.0.0.5", "10.0.0.3"]);
    assert_eq!(
        holders_of("payments/ledger", None),
        ["10.0.0.5", "10.0.0.1"]
    );
    assert_eq!(holders_of("legacy/reports", None), ["10.0.0.2", "10.0.0.3"]);
    assert_eq!(
        holders_of("agents/10.0.0.3", Some("10.0.0.3")),
        ["10.0.0.2", "10.0.0.5"]
    );
}

#[test]
fn every_item_is_held_exactly_k_times_and_holds_agrees_with_holders() {
    let members = fleet(7);
    let keys: Vec<String> = (0..200).map(|i| format!("ns{}/svc{i}", i % 13)).collect();
    let items: Vec<Item<'_>> = keys.iter().map(|k| item(k)).collect();
    for k in [1, 2, 3, 7, 9] {
        let mut count = vec![0usize; items.len()];
        for me in members.addrs() {
            for i in assign(&items, &members, me, k, 42) {
                count[i] += 1;
                assert!(holders(items[i], &members, k, 42).contains(&me));
            }
        }
        assert!(
            count.iter().all(|c| *c == k.min(members.len())),
            "k = {k}: {count:?}"
        );
    }
}

#[test]
fn a_discovered_agent_is_never_its_own_prober() {
    let members = fleet(4);
    for victim in members.addrs() {
        let key = format!("agents/{victim}");
        let it = Item {
            key: &key,
            exclude: Some(victim),
        };
        // k larger than the others: all three others, never itself.
        let h = holders(it, &members, 10, 7);
        assert_eq!(h.len(), 3);
        assert!(!h.contains(&victim));
        assert!(!holds(it, &members, victim, 10, 7));
        assert_eq!(assign(&[it], &members, victim, 10, 7), Vec::<usize>::new());
    }
}

#[test]
fn an_agent_that_is_not_a_member_holds_nothing() {
    let members = fleet(3);
    let keys = ["a", "b", "c"];
    let items: Vec<Item<'_>> = keys.iter().map(|k| item(k)).collect();
    assert!(assign(&items, &members, ip("10.9.9.9"), 3, 0).is_empty());
    assert!(assign(&items, &Members::default(), ip("10.0.0.1"), 3, 0).is_empty());
}

/// Who holds what: item index → holders.
fn table(
    items: &[Item<'_>],
    members: &Members,
    k: usize,
    e: u64,
) -> BTreeMap<usize, BTreeSet<IpAddr>> {
    let mut t: BTreeMap<usize, BTreeSet<IpAddr>> = BTreeMap::new();
    for me in members.addrs() {
        for i in assign(items, members, me, k, e) {
            t.entry(i).or_default().insert(me);
        }
    }
    t
}

#[test]
fn a_leaving_agent_moves_only_its_share_and_a_joining_one_only_takes() {
    let keys: Vec<String> = (0..500).map(|i| format!("t{i}")).collect();
    let items: Vec<Item<'_>> = keys.iter().map(|k| item(k)).collect();
    let all = fleet(10);
    let gone = ip("10.0.0.4");
    let rest = Members::new(all.addrs().filter(|a| *a != gone));
    let before = table(&items, &all, 3, 9);
    let after = table(&items, &rest, 3, 9);
    for (i, held) in &before {
        let now = &after[i];
        if held.contains(&gone) {
            // The leaver is replaced by exactly one agent; the other two stay.
            assert_eq!(held.intersection(now).count(), 2, "{i}");
            assert!(!now.contains(&gone));
        } else {
            assert_eq!(held, now, "item {i} moved although its agents stayed");
        }
    }
    // And back: the original assignment returns.
    assert_eq!(table(&items, &all, 3, 9), before);
}

#[test]
fn shares_are_balanced_and_move_with_the_epoch() {
    let members = fleet(50);
    let keys: Vec<String> = (0..3000).map(|i| format!("ns/t{i}")).collect();
    let items: Vec<Item<'_>> = keys.iter().map(|k| item(k)).collect();
    let sizes: Vec<usize> = members
        .addrs()
        .map(|me| assign(&items, &members, me, 3, 1).len())
        .collect();
    let mean = 3.0 * 3000.0 / 50.0;
    let max = *sizes.iter().max().unwrap() as f64;
    // Binomial(3000, 3/50): sd ≈ 13 around 180; the benchmark measures the real ratio.
    assert!(max / mean < 1.35, "{sizes:?}");
    // A new epoch draws anew: about k/N of an agent's share stays.
    let me = ip("10.0.0.1");
    let a: BTreeSet<usize> = assign(&items, &members, me, 3, 1).into_iter().collect();
    let b: BTreeSet<usize> = assign(&items, &members, me, 3, 2).into_iter().collect();
    let kept = a.intersection(&b).count();
    assert!(kept < a.len() / 4, "kept {kept} of {}", a.len());
}

#[test]
fn epochs_follow_the_wall_clock() {
    let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    assert_eq!(epoch(at(1_700_000_000), Duration::ZERO), 0);
    assert_eq!(epoch(at(7_199), Duration::from_secs(3600)), 1);
    assert_eq!(epoch(at(7_200), Duration::from_secs(3600)), 2);
    assert_eq!(epoch(at(1), Duration::from_millis(300)), 3);
    assert_eq!(epoch_start(2, Duration::from_secs(3600)), Some(at(7_200)));
    assert_eq!(epoch_start(2, Duration::ZERO), None);
}
