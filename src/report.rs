//! The result of one probe (SPEC §8): data only. Metrics, JSON, the text report and the
//! status page all render from it; the probe itself never touches Prometheus.

use std::fmt::Write as _;

use serde::Serialize;

use crate::classify::{Failure, Reason, Stage};
use crate::config::{Expect, Mode};
use crate::tls::peer::PeerInfo;

/// One probe's outcome: the JSON object of SPEC §8 (fields are `null` where the probe
/// did not get that far).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeReport {
    /// The agent's source name.
    pub source: String,
    /// The target's name.
    pub target: String,
    /// The address connected to (`ip:port`), or the configured `host:port` before that.
    pub address: String,
    /// Probe mode.
    pub mode: Mode,
    /// Expected outcome.
    pub expect: Expect,
    /// Whether the probe passed (including a refusal that `expect = "reject"` wanted).
    pub ok: bool,
    /// The failing layer.
    pub stage: Option<Stage>,
    /// Why it failed (a closed set).
    pub reason: Option<Reason>,
    /// Free text naming the concrete values; for a passed `reject` probe, how the peer
    /// refused.
    pub detail: Option<String>,
    /// The runbook's one-line hint for `reason`.
    pub hint: Option<&'static str>,
    /// Per-layer durations in milliseconds.
    pub timings_ms: Timings,
    /// The negotiated TLS parameters, once the handshake completed.
    pub tls: Option<TlsInfo>,
    /// The peer's certificate, whenever one was presented (also when it failed checks).
    pub peer: Option<PeerInfo>,
    /// The HTTP response, once one was received.
    pub http: Option<HttpInfo>,
    /// How the far side saw this connection, when the target answered in the `[serve]`
    /// `/healthz` format (another agent); `null` otherwise. Boxed, like `grpc`: every
    /// edge keeps its last report, and most never carry either.
    pub far_side: Option<Box<FarSide>>,
    /// The gRPC health check's answer, once a response head was received (SPEC §13).
    pub grpc: Option<Box<GrpcInfo>>,
    /// When the probe started, RFC 3339 UTC.
    pub at: String,
}

/// The far side's view of the probe's connection: the `[serve]` `/healthz` answer
/// (SPEC §7) of the agent that was probed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FarSide {
    /// The far agent's `source`.
    pub source: String,
    /// The far agent's own SPIFFE ID.
    pub spiffe_id: Option<String>,
    /// Our SPIFFE ID as its TLS verified it (`null`: it saw no client certificate).
    pub peer_spiffe_id: Option<String>,
    /// The `x-forwarded-client-cert` header it received (a sidecar in front of it).
    pub xfcc: Option<String>,
    /// The `l5d-client-id` header it received (a Linkerd proxy in front of it).
    pub l5d_client_id: Option<String>,
}

/// How [`ProbeReport::to_text_with`] renders.
#[derive(Clone, Debug, Default)]
pub struct TextOptions {
    /// The peer was not verified (`--insecure-skip-verify`): certificate and identity
    /// are shown as skipped, never as passed.
    pub unverified: bool,
    /// Where runbook links point (`[agent] runbook_base_url`); `None` = the file in
    /// the repository, `docs/runbook.md`.
    pub runbook_base_url: Option<String>,
}

impl TextOptions {
    /// The runbook link for `reason`.
    pub fn runbook_url(&self, reason: Reason) -> String {
        match &self.runbook_base_url {
            Some(base) => format!("{base}#{reason}"),
            None => reason.runbook_anchor(),
        }
    }
}

/// Per-layer durations in milliseconds; `None` where the layer was not reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Name resolution (0 for IP literals).
    pub resolve: Option<f64>,
    /// TCP connect.
    pub connect: Option<f64>,
    /// TLS handshake (and the post-handshake read of TLS-only probes).
    pub tls: Option<f64>,
    /// HTTP request and response body.
    pub request: Option<f64>,
    /// The whole probe.
    pub total: f64,
}

/// Negotiated TLS parameters, named as blackbox_exporter and the IANA registry name
/// them ([`crate::tls::words`]): a closed set, so they can be metric labels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TlsInfo {
    /// e.g. `TLS 1.3`.
    pub version: &'static str,
    /// e.g. `TLS_AES_128_GCM_SHA256`.
    pub cipher: &'static str,
    /// The negotiated ALPN protocol (one of the configured ones), if any.
    pub alpn: Option<String>,
}

/// What the HTTP layer saw.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HttpInfo {
    /// Status code.
    pub status: u16,
    /// The `server` header, if any (bounded).
    pub server: Option<String>,
}

impl HttpInfo {
    /// The status and the `server` header (its first 64 characters) of a response head.
    pub fn from_head(status: u16, headers: &http::HeaderMap) -> Self {
        Self {
            status,
            server: headers
                .get("server")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(64).collect()),
        }
    }
}

/// What the gRPC health check saw (`null` fields where the answer had none).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GrpcInfo {
    /// The service asked about (`""`: the server as a whole).
    pub service: String,
    /// The `grpc-status` name (`"OK"`, `"PERMISSION_DENIED"`, …).
    pub status: Option<&'static str>,
    /// The `grpc-status` code.
    pub code: Option<u32>,
    /// The `grpc-message`, decoded and bounded.
    pub message: Option<String>,
    /// The health status of an OK answer (`"SERVING"`, `"NOT_SERVING"`, …).
    pub health: Option<&'static str>,
}

impl ProbeReport {
    /// The failure, if the probe failed.
    pub fn failure(&self) -> Option<Failure> {
        let reason = self.reason?;
        Some(Failure::new(
            reason,
            self.detail.clone().unwrap_or_default(),
        ))
    }

    /// Renders the layered, runbook-like text report of `mtls-prober probe`.
    pub fn to_text(&self) -> String {
        self.to_text_with(&TextOptions::default())
    }

    /// [`Self::to_text`] with options (unverified peers, runbook links).
    pub fn to_text_with(&self, opts: &TextOptions) -> String {
        let mut out = String::new();
        let verdict = if self.ok { "PASS" } else { "FAIL" };
        let _ = writeln!(
            out,
            "{verdict} {}  {}  mode={} expect={}  ({:.1} ms)",
            self.target,
            self.address,
            self.mode.as_str(),
            self.expect.as_str(),
            self.timings_ms.total
        );
        let failed = if self.ok { None } else { self.stage };
        // Our own identity failed before any network activity: that comes first, and
        // every layer after it was not reached (none of them passed).
        let mut stopped = false;
        if failed == Some(Stage::Local) {
            let _ = writeln!(out, "  ✗  {:<12} {:>9}  our identity", "local", "");
            stopped = true;
        }
        let tls_applies = self.mode != Mode::Plaintext;
        let rows: [(Stage, Option<f64>, String); 6] = [
            (
                Stage::Resolve,
                self.timings_ms.resolve,
                self.address.clone(),
            ),
            (
                Stage::Connect,
                self.timings_ms.connect,
                self.address.clone(),
            ),
            (Stage::Tls, self.timings_ms.tls, self.tls_line()),
            (Stage::Certificate, self.timings_ms.tls, self.cert_line()),
            (Stage::Identity, self.timings_ms.tls, self.identity_line()),
            (Stage::Request, self.timings_ms.request, self.http_line()),
        ];
        for (stage, time, essentials) in rows {
            let skipped =
                !tls_applies && matches!(stage, Stage::Tls | Stage::Certificate | Stage::Identity);
            let unverified = opts.unverified
                && tls_applies
                && matches!(stage, Stage::Certificate | Stage::Identity);
            let line = if skipped {
                format!(
                    "  -  {:<12} {:>9}  not used in plaintext mode",
                    stage.as_str(),
                    ""
                )
            } else if stopped {
                format!("  ·  {:<12} {:>9}  not reached", stage.as_str(), "")
            } else if failed == Some(stage) {
                stopped = true;
                format!(
                    "  ✗  {:<12} {:>9}  {}",
                    stage.as_str(),
                    ms(time),
                    essentials
                )
            } else if unverified {
                let seen = if essentials.is_empty() {
                    String::new()
                } else {
                    format!("; presented: {essentials}")
                };
                format!(
                    "  -  {:<12} {:>9}  skipped (not verified: --insecure-skip-verify){seen}",
                    stage.as_str(),
                    ""
                )
            } else if stage == Stage::Request && self.timings_ms.request.is_none() {
                format!(
                    "  -  {:<12} {:>9}  no HTTP or gRPC check configured",
                    stage.as_str(),
                    ""
                )
            } else {
                let t = if matches!(stage, Stage::Certificate | Stage::Identity) {
                    String::new()
                } else {
                    ms(time)
                };
                format!("  ✓  {:<12} {:>9}  {}", stage.as_str(), t, essentials)
            };
            let _ = writeln!(out, "{}", line.trim_end());
        }
        if failed == Some(Stage::Expectation) {
            let _ = writeln!(out, "  ✗  expectation");
        }
        if let (Some(reason), false) = (self.reason, self.ok) {
            let _ = writeln!(
                out,
                "     {}/{}: {}",
                reason.stage(),
                reason,
                self.detail.as_deref().unwrap_or("")
            );
            let _ = writeln!(out, "     hint: {}", self.hint.unwrap_or(reason.hint()));
            let _ = writeln!(out, "     runbook: {}", opts.runbook_url(reason));
        } else if let (true, Some(detail)) = (self.ok, &self.detail) {
            if self.expect == Expect::Reject {
                let _ = writeln!(out, "     refused as expected: {detail}");
            } else {
                let _ = writeln!(out, "     note: {detail}");
            }
        }
        if let Some(f) = &self.far_side {
            let _ = writeln!(
                out,
                "     far side: {} saw us as {}",
                f.source,
                f.peer_spiffe_id
                    .as_deref()
                    .unwrap_or("(no client certificate)")
            );
        }
        out
    }

    fn tls_line(&self) -> String {
        match &self.tls {
            Some(t) => format!(
                "{} {}{}",
                t.version,
                t.cipher,
                t.alpn
                    .as_deref()
                    .map(|a| format!(" alpn={a}"))
                    .unwrap_or_default()
            ),
            None if self.peer.is_some() => "peer certificate received".into(),
            None => String::new(),
        }
    }

    fn cert_line(&self) -> String {
        match &self.peer {
            Some(p) => format!(
                "chain of {}, serial {}, not_after {}{}",
                p.chain_len,
                p.serial,
                p.not_after,
                p.root_sha256
                    .as_deref()
                    .map(|r| format!(", root sha256 {}", &r[..r.len().min(16)]))
                    .unwrap_or_default()
            ),
            None => String::new(),
        }
    }

    fn identity_line(&self) -> String {
        match &self.peer {
            Some(p) => match &p.spiffe_id {
                Some(id) => id.clone(),
                None if !p.dns_sans.is_empty() => format!("DNS {}", p.dns_sans.join(", ")),
                None => format!("subject \"{}\"", p.subject),
            },
            None => String::new(),
        }
    }

    fn http_line(&self) -> String {
        if let Some(g) = &self.grpc {
            let mut line = format!(
                "gRPC Health/Check service \"{}\": {}",
                g.service,
                g.status.unwrap_or("no grpc-status")
            );
            if let Some(h) = g.health {
                line.push_str(&format!(" {h}"));
            }
            if let Some(m) = &g.message {
                line.push_str(&format!(" \"{m}\""));
            }
            if let Some(h) = &self.http {
                line.push_str(&format!(" (HTTP {})", h.status));
            }
            return line;
        }
        match &self.http {
            Some(h) => format!(
                "HTTP {}{}",
                h.status,
                h.server
                    .as_deref()
                    .map(|s| format!(" server={s}"))
                    .unwrap_or_default()
            ),
            None => String::new(),
        }
    }
}

fn ms(t: Option<f64>) -> String {
    t.map(|t| format!("{t:.1} ms")).unwrap_or_default()
}
