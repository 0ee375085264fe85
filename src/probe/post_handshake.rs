//! A probe without a request: after the handshake, wait briefly for the refusal a TLS
//! 1.3 server sends (or the silence it keeps) once it has judged our certificate.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::client::TlsStream;

use super::{PreparedTarget, Run, is_close, ms};
use crate::classify::tls::{HandshakeContext, handshake_failure, silent_refusal};
use crate::classify::{Failure, Reason};
use crate::tls::capture::{CaptureSlot, Sniff};

/// Reads once, for up to twice the handshake's time (50 ms – 1 s, within the deadline):
/// an alert, a close before any record (a silent refusal, SPEC §4) or a close after one
/// are failures; data or nothing within the wait is a pass.
pub(super) async fn await_refusal(
    mut stream: TlsStream<Sniff<TcpStream>>,
    prepared: &PreparedTarget,
    wire: &CaptureSlot,
    run: &mut Run,
    hs_elapsed: Duration,
) -> Result<(), Failure> {
    // TLS 1.3 servers refuse a client certificate after our Finished: the
    // alert arrives on the first read. Wait briefly for it, scaled to the
    // handshake's round trips so slow links get the same chance as loopback.
    let wait = (hs_elapsed * 2).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let until = (Instant::now() + wait).min(run.deadline);
    let mut buf = [0u8; 1];
    let t = Instant::now();
    let read = timeout_at(until, stream.read(&mut buf)).await;
    let total = run.report.timings_ms.tls.unwrap_or(0.0) + ms(t.elapsed());
    run.report.timings_ms.tls = Some(total);
    let silent = run.silent_since_handshake();
    match read {
        Err(_) | Ok(Ok(1..)) => Ok(()),
        Ok(Ok(0)) if silent => {
            let c = wire.lock();
            Err(silent_refusal(&prepared.context(&c, true), false))
        }
        Ok(Err(e)) if silent && is_close(&e) => {
            let c = wire.lock();
            let reset = e.kind() != std::io::ErrorKind::UnexpectedEof;
            Err(silent_refusal(&prepared.context(&c, true), reset))
        }
        Ok(Ok(0)) => Err(Failure::refusal(
            Reason::ConnectionClosed,
            "the peer closed the connection right after the TLS handshake without \
             an alert (a TCP-level authorization deny, or a TLS 1.3 server refusing \
             our certificate silently)",
        )),
        Ok(Err(e)) => {
            let c = wire.lock();
            let ctx = prepared.context(&c, true);
            Err(handshake_failure(
                &e,
                &HandshakeContext {
                    first_bytes: &[],
                    ..ctx
                },
            ))
        }
    }
}
