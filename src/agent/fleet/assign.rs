//! Rendezvous (highest-random-weight) assignment: which `k` agents probe a target.
//!
//! A pure function of its inputs, so every agent computes the same answer alone and two
//! builds (a rolling update) agree. The hash is specified here, byte for byte, and
//! pinned by golden vectors in the tests; it must never change without a new domain
//! string (`v2`), or agents of two versions would disagree.
//!
//! - Target digest `T(t, e)`: the first 8 bytes, big-endian, of
//!   `SHA-256("mtls-prober/fleet/v1/target" ‖ u64be(e) ‖ utf8(t))`, where `t` is the
//!   assignment key (the target's name; a `verify_strict` companion uses its target's)
//!   and `e` the epoch.
//! - Agent digest `A(a)`: the first 8 bytes, big-endian, of
//!   `SHA-256("mtls-prober/fleet/v1/agent" ‖ octets(a))`, the address's 4 (IPv4) or 16
//!   (IPv6) octets; an IPv4-mapped IPv6 address counts as the IPv4 one.
//! - Weight `w(t, a, e) = mix(T(t, e) ⊕ A(a))` with `mix` the SplitMix64 finalizer
//!   (Steele, Lea & Flood, OOPSLA 2014): `z ^= z >> 30; z *= 0xbf58476d1ce4e5b9;
//!   z ^= z >> 27; z *= 0x94d049bb133111eb; z ^= z >> 31` (wrapping).
//! - Target `t` is held by the `k` agents of highest weight; equal weights (chance
//!   2⁻⁶⁴) go to the lower address. A discovered edge excludes the agent at its own
//!   address: an agent is probed by `k` others, never by itself.
//!
//! Why two SHA-256 digests and a mixer instead of one SHA-256 per (target, agent): an
//! agent must weigh every target against every agent, 10⁷ pairs for 10,000 targets and
//! 1,000 agents. One SHA-256 each costs seconds; this way the SHA-256 work is M + N
//! digests and each pair one xor and three multiplications (benches/fleet.rs). It is
//! Thaler & Ravishankar's construction (1996): a digest per object and per server,
//! combined by a cheap pseudo-random function.
//!
//! The properties that matter (all measured by benches/fleet.rs, tested below): each
//! agent holds about k·M/N targets; when an agent leaves only its targets move (each to
//! the agent next in weight), and when one joins it takes only targets from others;
//! at each epoch the weights are drawn anew, so a given (agent, target) pair is held on
//! average once every N/k epochs.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// Prefix of every target digest's input.
pub const TARGET_DOMAIN: &[u8] = b"mtls-prober/fleet/v1/target";
/// Prefix of every agent digest's input.
pub const AGENT_DOMAIN: &[u8] = b"mtls-prober/fleet/v1/agent";

/// `T(t, e)`.
pub fn target_digest(key: &str, epoch: u64) -> u64 {
    let mut h = Sha256::new();
    h.update(TARGET_DOMAIN);
    h.update(epoch.to_be_bytes());
    h.update(key.as_bytes());
    first_u64(&h.finalize())
}

/// `A(a)`.
pub fn agent_digest(addr: IpAddr) -> u64 {
    let mut h = Sha256::new();
    h.update(AGENT_DOMAIN);
    match addr.to_canonical() {
        IpAddr::V4(v4) => h.update(v4.octets()),
        IpAddr::V6(v6) => h.update(v6.octets()),
    }
    first_u64(&h.finalize())
}

/// `w = mix(T ⊕ A)`.
pub fn weight(target: u64, agent: u64) -> u64 {
    let mut z = target ^ agent;
    z ^= z >> 30;
    z = z.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z ^= z >> 27;
    z = z.wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn first_u64(digest: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(b)
}

/// The epoch at `now`: `floor(unix time / rotate)`; always 0 when `rotate` is zero.
pub fn epoch(now: SystemTime, rotate: Duration) -> u64 {
    let rotate_ms = rotate.as_millis();
    if rotate_ms == 0 {
        return 0;
    }
    let now_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    u64::try_from(now_ms / rotate_ms).unwrap_or(u64::MAX)
}

/// When the epoch after `e` begins (`None` without rotation).
pub fn epoch_start(e: u64, rotate: Duration) -> Option<SystemTime> {
    if rotate.is_zero() {
        return None;
    }
    let ms = u128::from(e).checked_mul(rotate.as_millis())?;
    let ms = u64::try_from(ms).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

/// One agent of the fleet, with its digest computed once.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Agent {
    /// Its address as the peers name lists it (canonical: IPv4-mapped → IPv4).
    pub addr: IpAddr,
    /// `A(addr)`.
    pub digest: u64,
}

/// The agents of the fleet: distinct canonical addresses, in address order.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct Members {
    agents: Vec<Agent>,
}

impl Members {
    /// The members with these addresses (duplicates and IPv4-mapped forms merged).
    pub fn new(addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        let mut addrs: Vec<IpAddr> = addrs.into_iter().map(|a| a.to_canonical()).collect();
        addrs.sort();
        addrs.dedup();
        Self {
            agents: addrs
                .into_iter()
                .map(|addr| Agent {
                    addr,
                    digest: agent_digest(addr),
                })
                .collect(),
        }
    }

    /// How many agents.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// Whether `addr` is one of them.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.find(addr).is_some()
    }

    /// The addresses, in order.
    pub fn addrs(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.agents.iter().map(|a| a.addr)
    }

    fn find(&self, addr: IpAddr) -> Option<&Agent> {
        let addr = addr.to_canonical();
        self.agents
            .binary_search_by(|a| a.addr.cmp(&addr))
            .ok()
            .map(|i| &self.agents[i])
    }
}

/// One thing to assign: its key and, for a discovered agent, the address that must not
/// probe it (itself).
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    /// The assignment key (a target's name; a companion's target's name).
    pub key: &'a str,
    /// An agent that never holds this item.
    pub exclude: Option<IpAddr>,
}

/// Whether `a` outranks `b` (higher weight, then lower address).
fn outranks(a: (u64, IpAddr), b: (u64, IpAddr)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

/// The agents holding `item` at `epoch`, best first (at most `k`).
pub fn holders(item: Item<'_>, members: &Members, k: usize, epoch: u64) -> Vec<IpAddr> {
    let t = target_digest(item.key, epoch);
    let exclude = item.exclude.map(|a| a.to_canonical());
    let mut best: Vec<(u64, IpAddr)> = Vec::with_capacity(k.min(members.len()) + 1);
    for a in &members.agents {
        if Some(a.addr) == exclude {
            continue;
        }
        let entry = (weight(t, a.digest), a.addr);
        let at = best.partition_point(|b| outranks(*b, entry));
        if at < k {
            best.insert(at, entry);
            best.truncate(k);
        }
    }
    best.into_iter().map(|(_, addr)| addr).collect()
}

/// Whether `me` is among the holders of `item` (cheaper than [`holders`]: no list).
pub fn holds(item: Item<'_>, members: &Members, me: IpAddr, k: usize, epoch: u64) -> bool {
    let exclude = item.exclude.map(|a| a.to_canonical());
    let Some(me) = members.find(me) else {
        return false;
    };
    if Some(me.addr) == exclude {
        return false;
    }
    let t = target_digest(item.key, epoch);
    let mine = (weight(t, me.digest), me.addr);
    let mut above = 0;
    for a in &members.agents {
        if Some(a.addr) == exclude || a.addr == me.addr {
            continue;
        }
        if outranks((weight(t, a.digest), a.addr), mine) {
            above += 1;
            if above >= k {
                return false;
            }
        }
    }
    above < k
}

/// `fleet::assign`: the indices of the `items` that `me` holds among `members`, `k` per
/// item, at `epoch`. Nothing when `me` is not a member (the caller fails open first).
pub fn assign(
    items: &[Item<'_>],
    members: &Members,
    me: IpAddr,
    k: usize,
    epoch: u64,
) -> Vec<usize> {
    if !members.contains(me) {
        return Vec::new();
    }
    items
        .iter()
        .enumerate()
        .filter(|(_, item)| holds(**item, members, me, k, epoch))
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests;
