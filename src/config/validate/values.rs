//! Value parsers: each takes the configured text and returns the typed value or a
//! problem that says what was found and what was expected.

use super::*;

pub(super) fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A humantime duration, > 0 and at most a day.
pub(super) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.parse::<f64>().is_ok() {
        return Err(format!(
            "got the bare number {s:?}; expected a duration with a unit, e.g. \"{t}s\" or \
             \"{t}ms\""
        ));
    }
    let d = humantime::parse_duration(t).map_err(|e| {
        format!(
            "got {s:?}, which is not a duration ({e}); expected a duration like \"500ms\", \
             \"10s\" or \"30m\""
        )
    })?;
    if d.is_zero() {
        return Err(format!("got {s:?}; expected a duration greater than zero"));
    }
    if d > MAX_DURATION {
        return Err(format!(
            "got {s:?}; expected a duration of at most {}",
            fmt_duration(MAX_DURATION)
        ));
    }
    Ok(d)
}

pub(super) fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("got {s:?}; expected true or false")),
    }
}

pub(super) fn parse_jitter(s: &str) -> Result<f64, String> {
    let j: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("got {s:?}; expected a fraction in [0, 1), e.g. 0.1"))?;
    if !(0.0..1.0).contains(&j) {
        return Err(format!(
            "got {s}; expected a fraction in [0, 1), e.g. 0.1 for 10% of the interval"
        ));
    }
    Ok(j)
}

/// An integer in `lo..=hi`, `what` naming the unit in the message.
pub(super) fn parse_int_in(s: &str, lo: usize, hi: usize, what: &str) -> Result<usize, String> {
    let expected = format!("expected {what} from {lo} to {hi}");
    let n: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("got {s:?}; {expected}"))?;
    usize::try_from(n)
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| format!("got {n}; {expected}"))
}

pub(super) fn parse_port(s: &str) -> Result<u16, String> {
    let n: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("got {s:?}; expected a port number from 1 to 65535"))?;
    u16::try_from(n)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("got port {n}; expected a port number from 1 to 65535"))
}

/// `IP:port` for a listener.
pub(super) fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s.trim().parse().map_err(|_| {
        format!("got {s:?}; expected IP:port like \"0.0.0.0:9464\" or \"[::]:9464\"")
    })?;
    Ok(addr)
}

/// `ip:port`, or `ip` meaning port 53.
pub(super) fn parse_dns_server(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    let bare = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    let addr = match (t.parse::<SocketAddr>(), bare.parse::<IpAddr>()) {
        (Ok(addr), _) => addr,
        (_, Ok(ip)) => SocketAddr::new(ip, 53),
        _ => {
            return Err(format!(
                "got {s:?}; expected a resolver's IP, optionally with a port: \"10.96.0.10\", \
                 \"10.96.0.10:53\" or \"[fd00::10]:53\""
            ));
        }
    };
    if addr.port() == 0 {
        return Err(format!(
            "got port 0 in {s:?}; expected a port number from 1 to 65535"
        ));
    }
    Ok(addr)
}

/// `host:port` with a DNS name, an IPv4 address or a bracketed IPv6 address.
pub(super) fn parse_host_port(s: &str) -> Result<HostPort, String> {
    const EXPECTED: &str = "expected host:port like \"api.production.svc.cluster.local:8080\", \
                            \"10.0.0.5:8080\" or \"[fd00::5]:8080\"";
    if let Some((scheme, _)) = s.split_once("://") {
        return Err(format!(
            "got {s:?}, which looks like a URL ({scheme}://…): use host:port and put the \
             path in [target.http] (path = \"/…\"); {EXPECTED}"
        ));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("got {s:?}, with no closing ']'; {EXPECTED}"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("got {s:?}, with no port; {EXPECTED}"))?;
        host.parse::<Ipv6Addr>()
            .map_err(|_| format!("got {s:?}: {host:?} is not an IPv6 address; {EXPECTED}"))?;
        (host, port)
    } else {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("got {s:?}, with no port; {EXPECTED}"))?;
        if host.contains(':') {
            return Err(format!(
                "got {s:?}: an IPv6 address needs brackets, e.g. \"[fd00::5]:8080\"; {EXPECTED}"
            ));
        }
        if host.parse::<Ipv4Addr>().is_err() {
            check_dns_name(host).map_err(|p| format!("got {s:?}: {p}; {EXPECTED}"))?;
        }
        (host, port)
    };
    let port = parse_port(port).map_err(|p| format!("in {s:?}: {p}"))?;
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

/// A DNS name: labels of 1-63 letters, digits, '-' or '_' (not starting or ending
/// with '-'), 253 characters at most, one optional trailing dot, and not all-numeric
/// in its last label (that would be a mistyped IPv4 address).
pub(super) fn check_dns_name(s: &str) -> Result<(), String> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.is_empty() {
        return Err("the host name is empty".to_owned());
    }
    if name.len() > 253 {
        return Err(format!(
            "the host name has {} characters; a DNS name has at most 253",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!(
                "{name:?} has an empty label; a DNS name looks like \"api.production.svc\""
            ));
        }
        if label.len() > 63 {
            return Err(format!("the label {label:?} is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "the label {label:?} has a character other than letters, digits, '-' and '_'"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label {label:?} starts or ends with '-'"));
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "{name:?} is neither an IPv4 address nor a DNS name (its last label is numeric)"
        ));
    }
    Ok(())
}

/// SNI / expected DNS name: a DNS name or an IP address (IPv6 without brackets).
pub(super) fn check_server_name(s: &str) -> Result<(), String> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    check_dns_name(s).map_err(|p| {
        format!("got {s:?}: {p}; expected a DNS name like \"api.production.svc.cluster.local\" or an IP address")
    })
}

/// A target or discover name: the `target` label of every series of the edge.
pub(super) fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty; expected a name such as \"production/api\"".to_owned());
    }
    if s.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "{} characters long; expected at most {MAX_NAME_CHARS}",
            s.chars().count()
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!(
            "got {s:?}; expected a name without control characters"
        ));
    }
    if s.trim() != s {
        return Err(format!(
            "got {s:?}; expected a name without leading or trailing spaces"
        ));
    }
    Ok(())
}

pub(super) fn check_source(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err(format!(
            "got {s:?}; expected a non-empty name, e.g. the node name"
        ));
    }
    if s.chars().count() > MAX_SOURCE_CHARS || s.chars().any(char::is_control) {
        return Err(format!(
            "got {s:?}; expected at most {MAX_SOURCE_CHARS} characters and no control characters"
        ));
    }
    Ok(())
}

pub(super) fn parse_spiffe_id(s: &str) -> Result<SpiffeId, String> {
    s.parse().map_err(|e| {
        let why = match e {
            SpiffeError::Scheme => "it does not start with \"spiffe://\"".to_owned(),
            other => other.to_string(),
        };
        format!(
            "got {s:?}: {why}; expected a SPIFFE ID like \
             \"spiffe://cluster.local/ns/<namespace>/sa/<service-account>\""
        )
    })
}

pub(super) fn parse_trust_domain(s: &str) -> Result<TrustDomain, String> {
    s.parse()
        .map_err(|e| format!("got {s:?}: {e}; expected a trust domain like \"cluster.local\""))
}

/// An HTTP method: letters only, stored uppercase.
pub(super) fn parse_method(s: &str) -> Result<String, String> {
    let upper = s.trim().to_ascii_uppercase();
    if upper.is_empty() || upper.len() > 20 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "got {s:?}; expected an HTTP method such as \"GET\", \"HEAD\" or \"POST\""
        ));
    }
    Ok(upper)
}

/// A request path: starts with '/', visible ASCII only, no fragment.
pub(super) fn check_http_path(s: &str) -> Result<(), String> {
    let expected = "expected a path starting with '/', e.g. \"/healthz\" or \"/ready?full=1\", \
                    of visible ASCII characters (percent-encode others)";
    if !s.starts_with('/') {
        return Err(format!("got {s:?}; {expected}"));
    }
    if s.len() > 8192 {
        return Err(format!("{} bytes long; expected at most 8192", s.len()));
    }
    if let Some(c) = s.chars().find(|c| !c.is_ascii_graphic() || *c == '#') {
        return Err(format!(
            "got {s:?}, which contains {c:?}; {expected}, and no '#'"
        ));
    }
    Ok(())
}

/// `200`, `"200-299"` or `"2xx"`, within 100..=599.
pub(super) fn parse_status(s: &str) -> Result<(u16, u16), String> {
    const EXPECTED: &str =
        "expected a status code like 200, a range like \"200-299\" or a class like \"2xx\"";
    let t = s.trim();
    let code = |c: &str| -> Result<u16, String> {
        let n: u16 = c
            .trim()
            .parse()
            .map_err(|_| format!("got {s:?}; {EXPECTED}"))?;
        if !(100..=599).contains(&n) {
            return Err(format!("got {n}; expected a status code from 100 to 599"));
        }
        Ok(n)
    };
    if let Some(class) = t.strip_suffix("xx").or_else(|| t.strip_suffix("XX")) {
        return match class.as_bytes() {
            [d @ b'1'..=b'5'] => {
                let lo = u16::from(d - b'0') * 100;
                Ok((lo, lo + 99))
            }
            _ => Err(format!(
                "got {s:?}; expected a class from \"1xx\" to \"5xx\""
            )),
        };
    }
    if let Some((lo, hi)) = t.split_once('-') {
        let (lo, hi) = (code(lo)?, code(hi)?);
        if lo > hi {
            return Err(format!(
                "got {s:?}; expected a range with its low end first"
            ));
        }
        return Ok((lo, hi));
    }
    let n = code(t)?;
    Ok((n, n))
}

/// A header name: an HTTP token (RFC 9110 `tchar`s), returned lowercase.
pub(super) fn parse_header_name(s: &str) -> Result<String, String> {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if s.is_empty() || !s.bytes().all(is_tchar) {
        return Err(format!(
            "got the header name {s:?}; expected an HTTP header name such as \"x-probe\" \
             (letters, digits and !#$%&'*+-.^_`|~)"
        ));
    }
    let lower = s.to_ascii_lowercase();
    if FORBIDDEN_HEADERS.contains(&lower.as_str()) {
        return Err(format!(
            "{lower:?} is managed by the HTTP client and cannot be set; expected another header"
        ));
    }
    Ok(lower)
}

/// A header value: visible ASCII and spaces, no CR/LF.
pub(super) fn check_header_value(s: &str) -> Result<(), String> {
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_graphic() || *c == ' ')) {
        return Err(format!(
            "the value {s:?} contains {c:?}; expected visible ASCII characters and spaces"
        ));
    }
    Ok(())
}

/// A SPIFFE Workload API endpoint (SPIFFE Workload Endpoint spec §4): `unix:///path`
/// (or `unix:/path`) with an absolute path, or `tcp://IP:PORT` with an IP address.
/// Parsed by the `spiffe` crate, which is also what connects to it.
pub(super) fn check_workload_socket(s: &str) -> Result<(), String> {
    spiffe::transport::Endpoint::parse(s)
        .map(drop)
        .map_err(|e| {
            format!(
                "got {s:?}: {e}; expected \"unix:///absolute/path\" or \"tcp://IP:PORT\", e.g. \
             \"unix:///run/spire/sockets/agent.sock\""
            )
        })
}

/// An HTTP/2 `:authority`: `host` or `host:port`, no userinfo (RFC 9113 §8.3.1).
pub(super) fn check_authority(s: &str) -> Result<(), String> {
    let expected = "expected host or host:port, e.g. \"api.prod.svc.cluster.local:8080\"";
    match s.parse::<http::uri::Authority>() {
        Ok(a) if !a.as_str().contains('@') && !a.host().is_empty() => Ok(()),
        Ok(_) => Err(format!("got {s:?}; {expected} (without user information)")),
        Err(e) => Err(format!("got {s:?}: {e}; {expected}")),
    }
}

/// A value shortened for an error message (long inputs are cut at 80 characters).
pub(super) fn truncate_for_message(s: &str) -> String {
    if s.chars().count() <= 80 {
        return s.to_owned();
    }
    let cut: String = s.chars().take(80).collect();
    format!("{cut}…")
}
