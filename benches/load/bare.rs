//! `load --bare`: the reference client, in a process of its own. Per probe: TCP
//! connect, a full TLS 1.3 mTLS handshake with chain verification (rustls + aws-lc-rs,
//! the same provider defaults as the agent), one `GET /healthz` over HTTP/1.1, read the
//! response, close. Blocking I/O, a few paced threads, no allocation beyond what rustls needs:
//! the cheapest correct probe, against which the agent's cost per probe is compared.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::ServerName;

use crate::{pki, procfs};

/// Probe loops in the process. Eight, not four: with the intermediate in the chain the
/// server's handshake takes longer, and four paced loops fell behind (≈ 460/s of 500/s),
/// which compared the agent at 500/s with the loop at a lower rate.
const THREADS: usize = 8;

/// Runs `warmup` then `count` probes at `rate`/s; prints one `result …` line.
pub fn main(
    files_dir: &str,
    addr: SocketAddr,
    rate: f64,
    warmup: u64,
    count: u64,
) -> Result<(), String> {
    let dir = std::path::Path::new(files_dir);
    let provider = pki::provider(false);
    let mut roots = RootCertStore::empty();
    for c in pki::certs(&dir.join("root.pem"))? {
        roots.add(c).map_err(|e| e.to_string())?;
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(
            pki::certs(&dir.join("client-chain.pem"))?,
            pki::key(&dir.join("client-key.pem"))?,
        )
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    let config = Arc::new(config);
    let name = ServerName::try_from(pki::SERVER_DNS).map_err(|e| e.to_string())?;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nhost: {}\r\nuser-agent: bare-rustls\r\n\r\n",
        pki::SERVER_DNS
    );
    let pid = std::process::id();
    // A few threads, each a sequential paced loop: one loop alone cannot reach 500/s
    // when a round trip to the (busy) server takes more than 2 ms.
    let threads = THREADS as u64;
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let fails = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..threads {
        let (config, name, request) = (config.clone(), name.clone(), request.clone());
        let (barrier, fails) = (barrier.clone(), fails.clone());
        handles.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            let period = Duration::from_secs_f64(threads as f64 / rate);
            let run = |n: u64, buf: &mut [u8], count_fails: bool| {
                let mut next = Instant::now();
                for _ in 0..n {
                    // Paced like the agent's schedule; a late probe starts at once.
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    }
                    next = next.max(now) + period;
                    if probe(&config, &name, addr, request.as_bytes(), buf).is_err() && count_fails
                    {
                        fails.fetch_add(1, Ordering::Relaxed);
                    }
                }
            };
            run(warmup / threads, &mut buf, false);
            barrier.wait();
            run(count / threads, &mut buf, true);
        }));
    }
    barrier.wait();
    let cpu0 = procfs::cpu_time(pid).unwrap_or_default();
    let t0 = Instant::now();
    for h in handles {
        h.join().map_err(|_| "a bare loop thread panicked")?;
    }
    let cpu = procfs::cpu_time(pid)
        .unwrap_or_default()
        .saturating_sub(cpu0);
    let wall = t0.elapsed();
    println!(
        "result probes={} fails={} cpu_us={} wall_us={} hwm={}",
        count / threads * threads,
        fails.load(Ordering::Relaxed),
        cpu.as_micros(),
        wall.as_micros(),
        procfs::peak_rss(pid).unwrap_or(0)
    );
    Ok(())
}

fn probe(
    config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    addr: SocketAddr,
    request: &[u8],
    buf: &mut [u8],
) -> Result<(), String> {
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let conn = ClientConnection::new(config.clone(), name.clone()).map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(conn, tcp);
    tls.write_all(request).map_err(|e| e.to_string())?;
    // Read the head, then the body by content-length.
    let mut have = 0;
    loop {
        let n = tls.read(&mut buf[have..]).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the response".into());
        }
        have += n;
        let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") else {
            if have == buf.len() {
                return Err("head too large".into());
            }
            continue;
        };
        let head = std::str::from_utf8(&buf[..end]).map_err(|e| e.to_string())?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("unexpected: {head}"));
        }
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while have < end + 4 + len {
            let n = tls.read(&mut buf[have..]).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("short body".into());
            }
            have += n;
        }
        return Ok(());
    }
}
