//! DestinationRule: only for findings. The prober is not behind a sidecar, so a
//! DestinationRule never changes how its own probes go; one that disables TLS toward
//! a STRICT workload breaks every meshed client instead (Istio docs, "Mutual TLS
//! Migration" and the DestinationRule `ClientTLSSettings` reference).

use crate::plan::index::{Index, object_name};
use crate::plan::objects::DestinationRule;

/// Whether a DestinationRule `host` names Service `svc` of namespace `ns` (short names
/// are relative to the rule's own namespace; `*.` wildcards match by suffix).
pub fn host_matches(dr: &DestinationRule, svc: &str, ns: &str) -> bool {
    let fqdn = format!("{svc}.{ns}.svc.cluster.local");
    let host = dr.spec.host.trim_end_matches('.');
    let dr_ns = dr.metadata.namespace.as_str();
    if host == "*" {
        return true;
    }
    if let Some(suffix) = host.strip_prefix('*') {
        return fqdn.ends_with(suffix);
    }
    host == fqdn
        || host == format!("{svc}.{ns}")
        || host == format!("{svc}.{ns}.svc")
        || (host == svc && dr_ns == ns)
}

/// The DestinationRules whose TLS mode toward `svc:port` is DISABLE.
pub fn disabling<'a>(idx: &Index<'a>, svc: &str, ns: &str, port: i64) -> Vec<String> {
    idx.loaded
        .destination_rules
        .iter()
        .map(|(_, d)| d)
        .filter(|d| host_matches(d, svc, ns))
        .filter(|d| {
            let Some(tp) = &d.spec.traffic_policy else {
                return false;
            };
            let port_mode = tp
                .port_level_settings
                .iter()
                .find(|p| p.port.number == port)
                .and_then(|p| p.tls.as_ref())
                .map(|t| t.mode.as_str());
            let mode = port_mode.or(tp.tls.as_ref().map(|t| t.mode.as_str()));
            mode.is_some_and(|m| m.eq_ignore_ascii_case("DISABLE"))
        })
        .map(|d| object_name("DestinationRule", &d.metadata))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dr(ns: &str, host: &str) -> DestinationRule {
        serde_yaml_ng::from_str(&format!(
            "metadata: {{name: d, namespace: {ns}}}\nspec: {{host: '{host}'}}"
        ))
        .unwrap()
    }

    /// Host forms of the DestinationRule reference (`host`: short names are
    /// interpreted relative to the rule's namespace; wildcard prefixes allowed).
    #[test]
    fn host_table() {
        let rows = [
            ("foo", "httpbin", true),
            ("bar", "httpbin", false),
            ("bar", "httpbin.foo", true),
            ("bar", "httpbin.foo.svc.cluster.local", true),
            ("istio-system", "*.foo.svc.cluster.local", true),
            ("istio-system", "*.bar.svc.cluster.local", false),
            ("istio-system", "*.local", true),
            ("istio-system", "*", true),
        ];
        for (ns, host, want) in rows {
            assert_eq!(
                host_matches(&dr(ns, host), "httpbin", "foo"),
                want,
                "{ns} {host}"
            );
        }
    }
}
