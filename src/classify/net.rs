//! Resolve- and connect-stage classification.

use std::io;
use std::time::Duration;

use super::{Failure, Reason};
use crate::classify::cert::human;

/// A DNS lookup error → `dns_not_found` (the name has no addresses) or `dns_error`.
///
/// The detail is written in DNS words (NXDOMAIN, SERVFAIL, "no AAAA records"), never
/// the resolver's Rust debug form (`Query { name: Name(…) }`).
pub fn resolve_failure(host: &str, err: &hickory_resolver::net::NetError) -> Failure {
    use hickory_resolver::net::{DnsError, NetError};

    match err {
        NetError::Dns(DnsError::NoRecordsFound(_)) => {
            let what = if err.is_nx_domain() {
                "does not exist (NXDOMAIN)"
            } else {
                "exists but has no A/AAAA records (NOERROR, no data)"
            };
            Failure::new(Reason::DnsNotFound, format!("{host} {what}"))
        }
        NetError::Dns(DnsError::ResponseCode(code)) => Failure::new(
            Reason::DnsError,
            format!("resolving {host} failed: the DNS server answered {code}"),
        ),
        NetError::Timeout => Failure::new(
            Reason::DnsError,
            format!("resolving {host} failed: the DNS server did not answer in time"),
        ),
        NetError::Io(e) => Failure::new(
            Reason::DnsError,
            format!("resolving {host} failed: cannot reach the DNS server ({e})"),
        ),
        other => Failure::new(
            Reason::DnsError,
            format!("resolving {host} failed: {other}"),
        ),
    }
}

/// The resolver could not answer within the stage's budget.
pub fn resolve_timeout(host: &str, budget: Duration) -> Failure {
    Failure::new(
        Reason::DnsError,
        format!(
            "resolving {host} did not finish within {}",
            human_ms(budget)
        ),
    )
}

/// A TCP connect error.
pub fn connect_failure(addr: &str, err: &io::Error) -> Failure {
    let reason = match err.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => {
            Reason::ConnectionRefused
        }
        io::ErrorKind::TimedOut => Reason::ConnectTimeout,
        // Unreachable networks and hosts, plus anything else the kernel refuses to route
        // (EPERM from a local firewall, EADDRNOTAVAIL): there is no path to the peer.
        _ => Reason::NetworkUnreachable,
    };
    let what = match reason {
        Reason::ConnectionRefused => "connection refused: nothing listens on",
        Reason::ConnectTimeout => "connect timed out (packets dropped?) to",
        _ => "no route to",
    };
    Failure::new(reason, format!("{what} {addr} ({err})"))
}

/// The TCP connect did not finish within the stage's budget.
pub fn connect_timeout(addr: &str, budget: Duration) -> Failure {
    Failure::new(
        Reason::ConnectTimeout,
        format!(
            "no answer to the TCP connect to {addr} within {} (packets dropped: NetworkPolicy, \
             firewall, or the peer's accept queue is full)",
            human_ms(budget)
        ),
    )
}

/// A duration for details: milliseconds below 10 s, else humanised seconds.
pub fn human_ms(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{}ms", d.as_millis())
    } else {
        human(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_by_kind() {
        let cases = [
            (io::ErrorKind::ConnectionRefused, Reason::ConnectionRefused),
            (io::ErrorKind::TimedOut, Reason::ConnectTimeout),
            (
                io::ErrorKind::NetworkUnreachable,
                Reason::NetworkUnreachable,
            ),
            (io::ErrorKind::HostUnreachable, Reason::NetworkUnreachable),
            (io::ErrorKind::PermissionDenied, Reason::NetworkUnreachable),
        ];
        for (kind, want) in cases {
            let f = connect_failure("10.0.0.5:8080", &io::Error::from(kind));
            assert_eq!(f.reason, want, "{kind:?}");
            assert!(f.detail.contains("10.0.0.5:8080"), "{}", f.detail);
        }
        // ENETUNREACH as the kernel reports it.
        let f = connect_failure("[2001:db8::1]:443", &io::Error::from_raw_os_error(101));
        assert_eq!(f.reason, Reason::NetworkUnreachable);
    }

    #[test]
    fn dns_errors() {
        use hickory_resolver::net::NetError;
        use hickory_resolver::net::{DnsError, NoRecords};
        use hickory_resolver::proto::op::{Query, ResponseCode};
        use hickory_resolver::proto::rr::{Name, RecordType};
        let f = resolve_failure("api.prod.svc", &NetError::Timeout);
        assert_eq!(f.reason, Reason::DnsError);
        assert!(f.detail.contains("api.prod.svc"));
        // DNS words, not the resolver's debug form (`Query { name: Name(…) }`).
        let query = Query::query(
            Name::from_ascii("nope.invalid.").expect("a name"),
            RecordType::AAAA,
        );
        let nx = NetError::Dns(DnsError::NoRecordsFound(NoRecords::new(
            query.clone(),
            ResponseCode::NXDomain,
        )));
        let f = resolve_failure("nope.invalid", &nx);
        assert_eq!(f.reason, Reason::DnsNotFound);
        assert_eq!(f.detail, "nope.invalid does not exist (NXDOMAIN)");
        let empty = NetError::Dns(DnsError::NoRecordsFound(NoRecords::new(
            query,
            ResponseCode::NoError,
        )));
        let f = resolve_failure("nope.invalid", &empty);
        assert_eq!(f.reason, Reason::DnsNotFound);
        assert!(f.detail.contains("has no A/AAAA records"), "{}", f.detail);
        assert!(!f.detail.contains("Query {"), "{}", f.detail);
        let f = resolve_failure(
            "x.svc",
            &NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)),
        );
        assert_eq!(f.reason, Reason::DnsError);
        assert!(f.detail.contains("answered Server Failure"), "{}", f.detail);
        let f = resolve_timeout("api.prod.svc", Duration::from_millis(1500));
        assert_eq!(f.reason, Reason::DnsError);
        assert!(f.detail.contains("1500ms"), "{}", f.detail);
    }
}
