//! The per-edge series and their text exposition, written straight from this state.
//!
//! Why not the prometheus crate for these: every child of a `*Vec` keeps its own owned
//! label pairs and descriptor, and `gather()` materialises every series again as
//! protobuf structs with owned strings before encoding. For 10,000 edges (180,000
//! series) that cost ≈ 80 MB and ≈ 400 ms per scrape on the benchmark machine
//! (docs/performance.md). Here an edge is one small struct with its label prefix
//! escaped once, and a scrape writes text into one buffer; the agent-wide metrics stay
//! in the crate's registry.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use super::DURATION_BUCKETS;
use crate::classify::Reason;
use crate::report::ProbeReport;
pub(super) use crate::sync::lock;

/// Longest label value taken from a peer's certificate.
pub(super) const MAX_CERT_LABEL: usize = 256;

/// [`DURATION_BUCKETS`] as `le` label values (the crate's encoder writes `{le}`).
const DURATION_LE: [&str; DURATION_BUCKETS.len()] = ["0.0025", "0.01", "0.05", "0.25", "1", "5"];

/// The series of one edge.
#[derive(Debug)]
pub(super) struct EdgeSeries {
    /// `source="…",target="…"`, escaped once.
    labels: Box<str>,
    /// The `window` label of each ratio.
    windows: Arc<[Arc<str>]>,
    success: bool,
    ok: u64,
    failed: u64,
    /// By reason, sorted; only reasons seen so far (SPEC §6: ≤ 20 series per edge).
    failures: Vec<(Reason, u64)>,
    ratio: Box<[Option<f64>]>,
    duration: Histogram,
    last_success: Option<f64>,
    peer_not_after: Option<f64>,
    /// The last report that carried a peer certificate: the labels of
    /// `mtls_probe_peer_cert_info` are read from it when rendering. It is the edge's
    /// last report too while the peer answers, so keeping it costs nothing, where a copy
    /// of its four label values cost ≈ 270 bytes per edge.
    peer: Option<Arc<ProbeReport>>,
    tls_info: Option<TlsLabels>,
}

#[derive(Debug, PartialEq)]
struct TlsLabels {
    version: &'static str,
    cipher: &'static str,
    alpn: String,
}

/// A fixed-bucket histogram ([`DURATION_BUCKETS`]); counts are per bucket, rendered
/// cumulative.
#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; DURATION_BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl EdgeSeries {
    pub(super) fn new(source: &str, target: &str, windows: Arc<[Arc<str>]>) -> Self {
        let mut labels = String::with_capacity(source.len() + target.len() + 20);
        labels.push_str("source=\"");
        escape_into(&mut labels, source);
        labels.push_str("\",target=\"");
        escape_into(&mut labels, target);
        labels.push('"');
        Self {
            labels: labels.into_boxed_str(),
            ratio: vec![None; windows.len()].into_boxed_slice(),
            windows,
            success: false,
            ok: 0,
            failed: 0,
            failures: Vec::new(),
            duration: Histogram::default(),
            last_success: None,
            peer_not_after: None,
            peer: None,
            tls_info: None,
        }
    }

    pub(super) fn set_result(&mut self, ok: bool, now_unix: f64) {
        self.success = ok;
        if ok {
            self.ok += 1;
            self.last_success = Some(now_unix);
        } else {
            self.failed += 1;
        }
    }

    pub(super) fn count_failure(&mut self, reason: Reason) {
        match self.failures.binary_search_by_key(&reason, |(r, _)| *r) {
            Ok(i) => self.failures[i].1 += 1,
            Err(i) => self.failures.insert(i, (reason, 1)),
        }
    }

    pub(super) fn set_ratios(&mut self, ratios: impl IntoIterator<Item = Option<f64>>) {
        for (slot, r) in self.ratio.iter_mut().zip(ratios) {
            *slot = r;
        }
    }

    pub(super) fn observe_duration(&mut self, seconds: f64) {
        let h = &mut self.duration;
        if let Some(i) = DURATION_BUCKETS.iter().position(|le| seconds <= *le) {
            h.counts[i] += 1;
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// Sets the peer certificate series; the info series is replaced, never duplicated,
    /// when a label changes (rotation). Allocates only on a change.
    /// Records `report`'s peer certificate (the caller checked that it has one).
    pub(super) fn set_peer(&mut self, not_after: f64, report: &Arc<ProbeReport>) {
        self.peer_not_after = Some(not_after);
        self.peer = Some(report.clone());
    }

    pub(super) fn set_tls(&mut self, version: &'static str, cipher: &'static str, alpn: &str) {
        let same = self
            .tls_info
            .as_ref()
            .is_some_and(|t| t.version == version && t.cipher == cipher && t.alpn == alpn);
        if !same {
            self.tls_info = Some(TlsLabels {
                version,
                cipher,
                alpn: alpn.to_owned(),
            });
        }
    }
}

/// One per-edge metric family: its name, help, type and how an edge writes its lines.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    write: fn(&EdgeSeries, &'static str, &mut String),
}

/// In name order, as the prometheus crate's encoder orders families.
const FAMILIES: [Family; 9] = [
    Family {
        name: "mtls_probe_attempts_total",
        help: "Probes completed, by result.",
        kind: "counter",
        write: |e, n, out| {
            sample(out, n, "", &e.labels, &[("result", "failure")], e.failed);
            sample(out, n, "", &e.labels, &[("result", "success")], e.ok);
        },
    },
    Family {
        name: "mtls_probe_duration_seconds",
        help: "Whole-probe duration.",
        kind: "histogram",
        write: |e, n, out| {
            let h = &e.duration;
            let mut cumulative = 0;
            for (le, count) in DURATION_LE.iter().zip(h.counts) {
                cumulative += count;
                sample(out, n, "_bucket", &e.labels, &[("le", le)], cumulative);
            }
            sample(out, n, "_bucket", &e.labels, &[("le", "+Inf")], h.count);
            sample(out, n, "_sum", &e.labels, &[], h.sum);
            sample(out, n, "_count", &e.labels, &[], h.count);
        },
    },
    Family {
        name: "mtls_probe_failures_total",
        help: "Failed probes by the stage and reason of the failure.",
        kind: "counter",
        write: |e, n, out| {
            for (reason, count) in &e.failures {
                let labels = [
                    ("stage", reason.stage().as_str()),
                    ("reason", reason.as_str()),
                ];
                sample(out, n, "", &e.labels, &labels, *count);
            }
        },
    },
    Family {
        name: "mtls_probe_last_success_timestamp_seconds",
        help: "Unix time of the last passed probe of the edge.",
        kind: "gauge",
        write: |e, n, out| {
            if let Some(t) = e.last_success {
                sample(out, n, "", &e.labels, &[], t);
            }
        },
    },
    Family {
        name: "mtls_probe_peer_cert_info",
        help: "The certificate the peer last presented (value 1).",
        kind: "gauge",
        write: |e, n, out| {
            if let Some(p) = e.peer.as_ref().and_then(|r| r.peer.as_ref()) {
                let labels = [
                    ("spiffe_id", bounded(p.spiffe_id.as_deref().unwrap_or(""))),
                    ("issuer", bounded(&p.issuer)),
                    ("serial", bounded(&p.serial)),
                    (
                        "root_sha256",
                        bounded(p.root_sha256.as_deref().unwrap_or("")),
                    ),
                ];
                sample(out, n, "", &e.labels, &labels, 1u64);
            }
        },
    },
    Family {
        name: "mtls_probe_peer_cert_not_after_timestamp_seconds",
        help: "The not_after of the leaf certificate the peer last presented.",
        kind: "gauge",
        write: |e, n, out| {
            if let Some(t) = e.peer_not_after {
                sample(out, n, "", &e.labels, &[], t);
            }
        },
    },
    Family {
        name: "mtls_probe_success",
        help: "1 if the last probe of the edge passed, else 0.",
        kind: "gauge",
        write: |e, n, out| sample(out, n, "", &e.labels, &[], u64::from(e.success)),
    },
    Family {
        name: "mtls_probe_success_ratio",
        help: "Passed / completed probes of the edge in each configured window.",
        kind: "gauge",
        write: |e, n, out| {
            for (w, r) in e.windows.iter().zip(&e.ratio) {
                if let Some(r) = r {
                    sample(out, n, "", &e.labels, &[("window", w)], *r);
                }
            }
        },
    },
    Family {
        name: "mtls_probe_tls_info",
        help: "The TLS parameters last negotiated with the peer (value 1).",
        kind: "gauge",
        write: |e, n, out| {
            if let Some(t) = &e.tls_info {
                let labels = [
                    ("version", t.version),
                    ("cipher", t.cipher),
                    ("alpn", &t.alpn),
                ];
                sample(out, n, "", &e.labels, &labels, 1u64);
            }
        },
    },
];

/// Appends every per-edge family (those with at least one series) to `out`, handing
/// `out` to `flush` whenever it holds `chunk` bytes or more. Returns `false` as soon as
/// `flush` does (the client went away).
pub(super) fn write_edges(
    out: &mut String,
    edges: &[Arc<Mutex<EdgeSeries>>],
    chunk: usize,
    flush: &mut dyn FnMut(&mut String) -> bool,
) -> bool {
    for family in &FAMILIES {
        let mut header = false;
        for edge in edges {
            let before = out.len();
            (family.write)(&lock(edge), family.name, out);
            if !header && out.len() > before {
                // The first series of the family: HELP/TYPE go before it. A family
                // without series gets none, like the crate's encoder.
                let text = format!(
                    "# HELP {} {}\n# TYPE {} {}\n",
                    family.name, family.help, family.name, family.kind
                );
                out.insert_str(before, &text);
                header = true;
            }
            if out.len() >= chunk && !flush(out) {
                return false;
            }
        }
    }
    true
}

/// `name{labels,extra…} value\n`.
fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &str,
    extra: &[(&str, &str)],
    value: impl Value,
) {
    out.push_str(name);
    out.push_str(suffix);
    out.push('{');
    out.push_str(labels);
    for (k, v) in extra {
        out.push(',');
        out.push_str(k);
        out.push_str("=\"");
        escape_into(out, v);
        out.push('"');
    }
    out.push_str("} ");
    value.write(out);
    out.push('\n');
}

/// A sample value. Integers skip the formatting machinery (most samples are bucket
/// counts); floats use `Display`, as the crate's encoder does (`value.to_string()`).
trait Value {
    fn write(self, out: &mut String);
}

impl Value for u64 {
    fn write(self, out: &mut String) {
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let mut n = self;
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        // Only ASCII digits were written.
        out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
    }
}

impl Value for f64 {
    fn write(self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

/// A label value in the text format: `\` → `\\`, `"` → `\"`, newline → `\n`.
fn escape_into(out: &mut String, v: &str) {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// At most [`MAX_CERT_LABEL`] bytes, cut at a character boundary.
pub(super) fn bounded(s: &str) -> &str {
    if s.len() <= MAX_CERT_LABEL {
        return s;
    }
    let mut end = MAX_CERT_LABEL;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut s = String::new();
        escape_into(&mut s, "a\"b\\c\nd");
        assert_eq!(s, "a\\\"b\\\\c\\nd");
        let e = EdgeSeries::new("node\"a", "t", Arc::from([Arc::from("5m")]));
        assert_eq!(&*e.labels, "source=\"node\\\"a\",target=\"t\"");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive() {
        let mut e = EdgeSeries::new("s", "t", Arc::from(Vec::<Arc<str>>::new()));
        e.observe_duration(0.0025);
        e.observe_duration(0.3);
        e.observe_duration(60.0);
        let mut out = String::new();
        write_edges(
            &mut out,
            &[Arc::new(Mutex::new(e))],
            usize::MAX,
            &mut |_| true,
        );
        assert!(
            out.contains(
                "mtls_probe_duration_seconds_bucket{source=\"s\",target=\"t\",le=\"0.0025\"} 1\n"
            ),
            "{out}"
        );
        assert!(out.contains("le=\"0.25\"} 1\n"), "{out}");
        assert!(out.contains("le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("le=\"+Inf\"} 3\n"), "{out}");
        assert!(
            out.contains("mtls_probe_duration_seconds_count{source=\"s\",target=\"t\"} 3\n"),
            "{out}"
        );
        assert!(
            !out.contains("mtls_probe_tls_info"),
            "empty families are left out"
        );
    }

    #[test]
    fn chunks_concatenate_to_the_whole() {
        let edges: Vec<_> = (0..50)
            .map(|i| {
                let mut e = EdgeSeries::new("s", &format!("t{i}"), Arc::from([Arc::from("5m")]));
                e.set_result(i % 3 != 0, 1.0);
                if i % 3 == 0 {
                    e.count_failure(Reason::CertExpired);
                }
                Arc::new(Mutex::new(e))
            })
            .collect();
        let mut whole = String::new();
        assert!(write_edges(&mut whole, &edges, usize::MAX, &mut |_| true));
        let mut chunks = Vec::new();
        let mut out = String::new();
        let mut flush = |s: &mut String| {
            chunks.push(std::mem::take(s));
            true
        };
        assert!(write_edges(&mut out, &edges, 1000, &mut flush));
        chunks.push(out);
        assert!(chunks.len() > 5, "{}", chunks.len());
        assert_eq!(chunks.concat(), whole);
        assert_eq!(
            whole
                .matches("# TYPE mtls_probe_failures_total counter")
                .count(),
            1
        );
        // A client that leaves stops the rendering.
        let mut calls = 0;
        assert!(!write_edges(&mut String::new(), &edges, 100, &mut |_| {
            calls += 1;
            false
        }));
        assert_eq!(calls, 1);
    }

    #[test]
    fn integers_are_written_like_display() {
        for n in [0u64, 7, 10, 12_345, u64::MAX] {
            let mut s = String::new();
            n.write(&mut s);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn le_labels_match_the_buckets() {
        let text: Vec<String> = DURATION_BUCKETS.iter().map(|b| format!("{b}")).collect();
        assert_eq!(text, DURATION_LE);
    }

    #[test]
    fn bounded_cuts_at_a_char_boundary() {
        let s = "é".repeat(200);
        let b = bounded(&s);
        assert!(b.len() <= MAX_CERT_LABEL && s.starts_with(b));
    }
}
