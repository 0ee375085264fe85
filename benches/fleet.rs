//! `cargo bench --bench fleet`: the fleet's rendezvous assignment without the network
//! (SPEC §12, issue 12). Prints one row per figure, with its target where the issue set
//! one; a missed target is reported, not failed (docs/performance.md explains each).
//!
//! - balance: targets per agent, max / mean, for 1,000 agents × 1,000 targets × k = 3
//!   and for larger shares (where balance is what sizes a node);
//! - movement: assignments that change when one agent leaves (or joins), against
//!   1.5 × k × M / N;
//! - time: one agent's share of 10,000 targets among 1,000 peers, and what one SHA-256
//!   per (target, agent) pair would cost instead.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use mtls_prober::agent::fleet::assign::{self, Item, Members};
use sha2::{Digest, Sha256};

const K: usize = 3;
const EPOCH: u64 = 487_000;

fn agents(n: usize) -> Vec<IpAddr> {
    (0..n)
        .map(|i| {
            let i = u32::try_from(i).unwrap();
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i / 250) * 256 + i % 250 + 1))
        })
        .collect()
}

fn targets(m: usize) -> Vec<String> {
    (0..m)
        .map(|i| format!("ns{}/service-{i}", i % 97))
        .collect()
}

fn items(keys: &[String]) -> Vec<Item<'_>> {
    keys.iter().map(|key| Item { key, exclude: None }).collect()
}

/// Every item's holders.
fn table(items: &[Item<'_>], members: &Members) -> Vec<Vec<IpAddr>> {
    items
        .iter()
        .map(|it| assign::holders(*it, members, K, EPOCH))
        .collect()
}

fn row(scenario: &str, figure: &str, value: String, target: Option<(&str, bool)>) {
    match target {
        Some((t, met)) => println!(
            "  {scenario} | {figure} | {value} | {t} | {}",
            if met { "met" } else { "MISSED" }
        ),
        None => println!("  {scenario} | {figure} | {value} | | "),
    }
}

/// The expected maximum of N counts each ~ Binomial(M, k/N): the smallest c with
/// N · P(X > c) < 1/2 (Poisson approximation), for comparison with what was measured.
fn balls_in_bins_max(n: usize, m: usize) -> usize {
    let mean = (K * m) as f64 / n as f64;
    let mut p = (-mean).exp();
    let mut cdf = p;
    let mut c = 0usize;
    while (n as f64) * (1.0 - cdf) >= 0.5 {
        c += 1;
        p *= mean / c as f64;
        cdf += p;
    }
    c
}

fn balance(n: usize, m: usize, target: Option<f64>) {
    let members = Members::new(agents(n));
    let keys = targets(m);
    let its = items(&keys);
    let mut load = vec![0usize; n];
    let addrs: Vec<IpAddr> = members.addrs().collect();
    for holders in table(&its, &members) {
        assert_eq!(holders.len(), K);
        for h in holders {
            load[addrs.binary_search(&h).unwrap()] += 1;
        }
    }
    let mean = (K * m) as f64 / n as f64;
    let max = *load.iter().max().unwrap();
    let min = *load.iter().min().unwrap();
    let ratio = max as f64 / mean;
    let scenario = format!("balance {n} agents × {m} targets, k = {K}");
    let value = format!(
        "max/mean {ratio:.2} (mean {mean:.1}, min {min}, max {max}; random placement's \
         expected max {})",
        balls_in_bins_max(n, m)
    );
    match target {
        Some(t) => row(
            &scenario,
            "targets per agent",
            value,
            Some((&format!("≤ {t}"), ratio <= t)),
        ),
        None => row(&scenario, "targets per agent", value, None),
    }
}

fn movement(n: usize, m: usize) {
    let all = agents(n);
    let members = Members::new(all.clone());
    let keys = targets(m);
    let its = items(&keys);
    let before = table(&its, &members);
    let bound = 1.5 * (K * m) as f64 / n as f64;
    let scenario = format!("movement {n} agents × {m} targets, k = {K}");
    // 50 leavers spread over the fleet; every one is measured against the full table.
    let mut moved = Vec::new();
    for leaver in all.iter().step_by(n / 50).take(50) {
        let rest = Members::new(all.iter().copied().filter(|a| a != leaver));
        let after = table(&its, &rest);
        let mut changed = 0;
        let mut only_its_share = true;
        for (b, a) in before.iter().zip(&after) {
            let b: BTreeSet<_> = b.iter().collect();
            let a: BTreeSet<_> = a.iter().collect();
            let lost = b.difference(&a).count();
            changed += lost;
            if lost > 0 && !b.contains(leaver) {
                only_its_share = false;
            }
        }
        assert!(only_its_share, "an assignment of another agent moved");
        moved.push(changed);
    }
    let mean = moved.iter().sum::<usize>() as f64 / moved.len() as f64;
    let max = *moved.iter().max().unwrap();
    row(
        &scenario,
        "assignments moved when one agent leaves (mean of 50 leavers)",
        format!("{mean:.2} (max {max}; only the leaver's own share moved)"),
        Some((&format!("≤ 1.5 × k × M / N = {bound:.1}"), mean <= bound)),
    );
    // A joiner takes only from others, about k × M / (N + 1).
    let joiner = IpAddr::V4(Ipv4Addr::new(10, 200, 0, 1));
    let grown = Members::new(all.iter().copied().chain([joiner]));
    let after = table(&its, &grown);
    let mut taken = 0;
    for (b, a) in before.iter().zip(&after) {
        let lost = b.iter().filter(|h| !a.contains(h)).count();
        assert!(
            lost == 0 || a.contains(&joiner),
            "a join moved another agent's target"
        );
        taken += lost;
    }
    row(
        &scenario,
        "assignments moved when one agent joins",
        format!("{taken} (all to the joiner)"),
        Some((&format!("≤ {bound:.1}"), taken as f64 <= bound)),
    );
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn timing() {
    let (n, m) = (1_000, 10_000);
    let members = Members::new(agents(n));
    let keys = targets(m);
    let its = items(&keys);
    let me = agents(n)[17];
    let runs: Vec<Duration> = (0..7)
        .map(|_| {
            let t = Instant::now();
            black_box(assign::assign(black_box(&its), &members, me, K, EPOCH));
            t.elapsed()
        })
        .collect();
    let share = median(runs);
    let scenario = format!("time {m} targets × {n} peers, k = {K}");
    row(
        &scenario,
        "one agent's share (assign, median of 7)",
        format!("{:.1} ms", share.as_secs_f64() * 1e3),
        Some((
            "≪ the 10 s interval (< 1 s)",
            share < Duration::from_secs(1),
        )),
    );
    let runs: Vec<Duration> = (0..3)
        .map(|_| {
            let t = Instant::now();
            black_box(table(black_box(&its), &members));
            t.elapsed()
        })
        .collect();
    row(
        &scenario,
        "every target's probers (the API's `probers`, median of 3)",
        format!("{:.1} ms", median(runs).as_secs_f64() * 1e3),
        None,
    );
    // The alternative: one SHA-256 per (target, agent) pair.
    let sample = 200_000;
    let t = Instant::now();
    for i in 0..sample {
        let mut h = Sha256::new();
        h.update(assign::TARGET_DOMAIN);
        h.update(EPOCH.to_be_bytes());
        h.update(keys[i % m].as_bytes());
        h.update([10, 0, (i % 4) as u8, (i % 250) as u8]);
        black_box(h.finalize());
    }
    let per_pair = t.elapsed().as_secs_f64() / sample as f64;
    row(
        &scenario,
        "one SHA-256 per pair instead (extrapolated)",
        format!(
            "{:.0} ms ({:.0} ns per pair)",
            per_pair * (m * n) as f64 * 1e3,
            per_pair * 1e9
        ),
        None,
    );
}

fn main() {
    println!("fleet assignment (rendezvous hashing), no network:");
    println!("  scenario | figure | value | target | verdict");
    balance(1_000, 1_000, Some(1.25));
    balance(300, 1_000, None);
    balance(50, 1_000, None);
    balance(1_000, 100_000, Some(1.25));
    movement(1_000, 1_000);
    timing();
}
