//! A tiny authoritative DNS server on 127.0.0.1 (UDP), so the demo's services have
//! names and the resolve stage can be shown failing, without any query leaving the
//! machine. Names it knows answer with their addresses; names marked failing answer
//! SERVFAIL (`dns_error`); every other name is NXDOMAIN (`dns_not_found`). Answers can
//! be changed while it runs (the fleet tests move agents in and out of a name).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::sync::lock;
use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA};
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

struct Zone {
    names: Mutex<HashMap<String, Vec<IpAddr>>>,
    failing: Mutex<HashSet<String>>,
    fail_all: AtomicBool,
    ttl: AtomicU32,
}

impl Default for Zone {
    fn default() -> Self {
        Self {
            names: Mutex::default(),
            failing: Mutex::default(),
            fail_all: AtomicBool::new(false),
            ttl: AtomicU32::new(1),
        }
    }
}

/// A running DNS server; stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    zone: Arc<Zone>,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    /// Binds 127.0.0.1:0 (UDP) and serves.
    pub async fn start() -> io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let zone = Arc::new(Zone::default());
        let task = tokio::spawn(serve(socket, zone.clone()));
        Ok(Self { addr, zone, task })
    }

    /// The server's address (for `agent.dns_servers`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets (or, with an empty list, empties: NODATA) the addresses of `name`.
    pub fn set(&self, name: &str, ips: &[IpAddr]) {
        lock(&self.zone.names).insert(normalize(name), ips.to_vec());
    }

    /// Makes queries for `name` fail with SERVFAIL.
    pub fn fail_name(&self, name: &str) {
        lock(&self.zone.failing).insert(normalize(name));
    }

    /// Lets `name` answer again after [`Self::fail_name`].
    pub fn heal_name(&self, name: &str) {
        lock(&self.zone.failing).remove(&normalize(name));
    }

    /// The TTL of every answer, seconds (default 1; 0: resolvers must not cache).
    pub fn set_ttl(&self, seconds: u32) {
        self.zone.ttl.store(seconds, Ordering::SeqCst);
    }

    /// Makes every query fail with SERVFAIL (a broken resolver), or stops doing so.
    pub fn fail(&self, on: bool) {
        self.zone.fail_all.store(on, Ordering::SeqCst);
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

async fn serve(socket: UdpSocket, zone: Arc<Zone>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if let Ok(bytes) = answer(&query, &zone).to_vec() {
            let _ = socket.send_to(&bytes, from).await;
        }
    }
}

fn answer(query: &Message, zone: &Zone) -> Message {
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_queries(query.queries.clone());
    if zone.fail_all.load(Ordering::SeqCst) {
        reply.metadata.response_code = ResponseCode::ServFail;
        return reply;
    }
    let names = lock(&zone.names);
    let failing = lock(&zone.failing);
    let ttl = zone.ttl.load(Ordering::SeqCst);
    for q in &query.queries {
        let name = normalize(&q.name().to_ascii());
        if failing.contains(&name) {
            reply.metadata.response_code = ResponseCode::ServFail;
            continue;
        }
        let Some(ips) = names.get(&name) else {
            reply.metadata.response_code = ResponseCode::NXDomain;
            continue;
        };
        for ip in ips {
            let rdata = match (ip, q.query_type()) {
                (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                _ => continue,
            };
            reply.add_answer(Record::from_rdata(q.name().clone(), ttl, rdata));
        }
    }
    reply
}
