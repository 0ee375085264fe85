//! The TLS half of a probe: the handshake over the connected socket, what it tells
//! about the peer, and the request or gRPC call (or the wait for a refusal) over it.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{PreparedTarget, Prober, Run, Silence, grpc, ms, post_handshake, request};
use crate::classify::net::human_ms;
use crate::classify::tls::handshake_failure;
use crate::classify::{Failure, Reason};
use crate::identity::load::TrustBundle;
use crate::report::TlsInfo;
use crate::tls::capture::{CaptureSlot, Sniff};
use crate::tls::peer::PeerInfo;
use crate::tls::words::{cipher_name, version_name};

impl Prober {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn tls_and_request(
        &self,
        prepared: &PreparedTarget,
        config: &Arc<ClientConfig>,
        server_name: &ServerName<'static>,
        bundle: Option<&TrustBundle>,
        tcp: Sniff<TcpStream>,
        wire: &CaptureSlot,
        run: &mut Run,
    ) -> Result<(), Failure> {
        let target = &prepared.target;
        let t = Instant::now();
        let connector = TlsConnector::from(config.clone());
        let handshake = wire.scope(connector.connect(server_name.clone(), tcp).into_fallible());
        let result = timeout_at(run.deadline, handshake).await;
        let hs_elapsed = t.elapsed();
        run.report.timings_ms.tls = Some(ms(hs_elapsed));
        // The peer's certificate is reported whether or not it verified.
        {
            let mut c = wire.lock();
            let leaf = c.leaf.take();
            if let Some(chain) = &c.chain {
                run.report.peer =
                    PeerInfo::from_chain_parsed(chain, leaf, c.verified_root.as_deref(), bundle);
            }
        }
        let stream = match result {
            Err(_) => {
                let read = wire.lock().bytes_read;
                return Err(Failure::new(
                    Reason::HandshakeTimeout,
                    format!(
                        "the TLS handshake did not finish within {} ({read} bytes received from the \
                         peer)",
                        human_ms(target.timeout)
                    ),
                ));
            }
            Ok(Err((err, _io))) => {
                let c = wire.lock();
                if let Some(v) = &c.verdict {
                    return Err(v.clone());
                }
                let mut f = handshake_failure(&err, &prepared.context(&c, false));
                if f.reason == Reason::AlpnMismatch && target.grpc.is_some() {
                    f.detail.push_str("; gRPC needs h2 (HTTP/2)");
                }
                return Err(f);
            }
            Ok(Ok(stream)) => stream,
        };
        run.report.tls = Some(tls_info(&stream));
        // Only TLS 1.3 ends our side of the handshake before the server has judged our
        // certificate; a TLS 1.2 server's Finished already says it accepted it (its
        // silent refusal is a close mid-handshake, classified by `handshake_failure`).
        let tls13 = stream.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
        {
            let c = wire.lock();
            if c.cert_requested && tls13 {
                run.silence = Some(Silence {
                    wire: wire.clone(),
                    bytes_at_handshake: c.bytes_read,
                });
            }
        }
        // Istio's sidecars also negotiate their own ALPN names for the same protocols.
        let h2 = matches!(
            run.report.tls.as_ref().and_then(|t| t.alpn.as_deref()),
            Some("h2" | "istio-h2")
        );

        if let Some(g) = &target.grpc {
            // gRPC over TLS is HTTP/2 chosen by ALPN; a server that picks nothing or
            // http/1.1 cannot answer it (grpc-go refuses such a connection too).
            let alpn = run.report.tls.as_ref().and_then(|t| t.alpn.clone());
            if !h2 {
                return Err(Failure::new(
                    Reason::AlpnMismatch,
                    format!(
                        "the server negotiated {} for our ALPN offer [{}]: gRPC needs h2 \
                         (HTTP/2)",
                        match &alpn {
                            Some(p) => format!("\"{p}\""),
                            None => "no application protocol".into(),
                        },
                        target.alpn.join(", ")
                    ),
                ));
            }
            let hs = prepared.after_handshake(wire);
            let app = CaptureSlot::default();
            let io = Sniff::new(stream, app.clone());
            return grpc::exchange(io, target, g, run, &app, hs, true).await;
        }
        match &target.http {
            Some(http) => {
                let hs = prepared.after_handshake(wire);
                let app = CaptureSlot::default();
                let io = Sniff::new(stream, app.clone());
                request::exchange(io, h2, target, http, run, &app, hs, true).await
            }
            None => post_handshake::await_refusal(stream, prepared, wire, run, hs_elapsed).await,
        }
    }
}

fn tls_info(stream: &TlsStream<Sniff<TcpStream>>) -> TlsInfo {
    let (_, conn) = stream.get_ref();
    TlsInfo {
        version: conn.protocol_version().map_or("unknown", version_name),
        cipher: conn
            .negotiated_cipher_suite()
            .map_or("unknown", |s| cipher_name(s.suite())),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    }
}
