//! PeerAuthentication: the mTLS mode a sidecar's inbound port enforces.
//!
//! Istio reference, "PeerAuthentication": a policy in the root namespace without a
//! selector is mesh-wide, one without a selector elsewhere is namespace-wide, one with
//! a selector is workload-specific; the most specific applies, and a mode of `UNSET`
//! (or none) inherits from the level above, down to the default PERMISSIVE.
//! `portLevelMtls` is only honoured with a selector and is keyed by the port the
//! workload listens on (the container port, i.e. the Service's `targetPort`). When
//! several policies share a level, the oldest applies (then by name).

use super::Port;
use crate::plan::index::{Index, Workload, object_name};
use crate::plan::objects::{Meta, PeerAuthentication};
use crate::plan::{Assume, Options};

/// An mTLS mode.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum MtlsMode {
    /// Plaintext and mTLS accepted.
    Permissive,
    /// mTLS required.
    Strict,
    /// No mTLS on the server side.
    Disable,
}

impl MtlsMode {
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "STRICT" => Some(Self::Strict),
            "PERMISSIVE" => Some(Self::Permissive),
            "DISABLE" => Some(Self::Disable),
            _ => None, // UNSET, empty: inherit
        }
    }

    /// The Istio spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permissive => "PERMISSIVE",
            Self::Strict => "STRICT",
            Self::Disable => "DISABLE",
        }
    }
}

/// Which level decided the mode.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Level {
    /// No policy: Istio's default.
    Default,
    /// Mesh-wide (root namespace).
    Mesh,
    /// Namespace-wide (or `--assume`).
    Namespace,
    /// A workload selector.
    Workload,
    /// `portLevelMtls` of a workload policy.
    Port,
}

/// The mode of one workload port and what decided it.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Decision {
    /// The effective mode.
    pub mode: MtlsMode,
    /// The level that set it.
    pub level: Level,
    /// `"Kind ns/name: effect"` of the deciding object (or the default / `--assume`).
    pub why: String,
}

fn oldest<'a>(mut v: Vec<&'a PeerAuthentication>) -> Option<&'a PeerAuthentication> {
    v.sort_by(|a, b| {
        let key = |m: &'a Meta| (m.creation_timestamp.as_str(), m.name.as_str());
        key(&a.metadata).cmp(&key(&b.metadata))
    });
    v.first().copied()
}

fn has_selector(pa: &PeerAuthentication) -> bool {
    pa.spec
        .selector
        .as_ref()
        .is_some_and(|s| !s.match_labels.is_empty())
}

/// The namespace-wide policy of `ns` (no selector), if any.
pub fn namespace_policy<'a>(idx: &Index<'a>, ns: &str) -> Option<&'a PeerAuthentication> {
    oldest(
        idx.loaded
            .peer_authentications
            .iter()
            .map(|(_, p)| p)
            .filter(|p| p.metadata.namespace == ns && !has_selector(p))
            .collect(),
    )
}

/// The workload-specific policy selecting `w`, if any.
pub fn workload_policy<'a>(idx: &Index<'a>, w: &Workload<'_>) -> Option<&'a PeerAuthentication> {
    oldest(
        idx.loaded
            .peer_authentications
            .iter()
            .map(|(_, p)| p)
            .filter(|p| {
                p.metadata.namespace == w.namespace
                    && has_selector(p)
                    && p.spec.selector.as_ref().is_some_and(|s| {
                        s.match_labels
                            .iter()
                            .all(|(k, v)| w.labels.get(k) == Some(v))
                    })
            })
            .collect(),
    )
}

/// The effective mode of workload `w` on container port `port`.
pub fn decide(idx: &Index<'_>, opts: &Options, w: &Workload<'_>, port: Port) -> Decision {
    let name = |p: &PeerAuthentication| object_name("PeerAuthentication", &p.metadata);
    if let Some(p) = workload_policy(idx, w) {
        if let Some(mode) = p
            .spec
            .port_level_mtls
            .get(&port.to_string())
            .and_then(|m| MtlsMode::parse(&m.mode))
        {
            return Decision {
                mode,
                level: Level::Port,
                why: format!("{}: portLevelMtls {port} {}", name(p), mode.as_str()),
            };
        }
        if let Some(mode) = p.spec.mtls.as_ref().and_then(|m| MtlsMode::parse(&m.mode)) {
            return Decision {
                mode,
                level: Level::Workload,
                why: format!("{}: {}", name(p), mode.as_str()),
            };
        }
    }
    let ns = w.namespace;
    if let Some(assumed) = opts.assume.get(ns) {
        let mode = match assumed {
            Assume::Strict => MtlsMode::Strict,
            Assume::Permissive => MtlsMode::Permissive,
        };
        let replaced = namespace_policy(idx, ns)
            .map(|p| format!(" (in place of {})", name(p)))
            .unwrap_or_default();
        return Decision {
            mode,
            level: Level::Namespace,
            why: format!(
                "--assume {ns}={}: namespace-wide {}{replaced}",
                mode.as_str().to_ascii_lowercase(),
                mode.as_str()
            ),
        };
    }
    if let Some(p) = namespace_policy(idx, ns)
        && let Some(mode) = p.spec.mtls.as_ref().and_then(|m| MtlsMode::parse(&m.mode))
    {
        return Decision {
            mode,
            level: Level::Namespace,
            why: format!("{}: {}", name(p), mode.as_str()),
        };
    }
    if ns != opts.istio_root_namespace
        && let Some(p) = namespace_policy(idx, &opts.istio_root_namespace)
        && let Some(mode) = p.spec.mtls.as_ref().and_then(|m| MtlsMode::parse(&m.mode))
    {
        return Decision {
            mode,
            level: Level::Mesh,
            why: format!("{} (mesh-wide): {}", name(p), mode.as_str()),
        };
    }
    Decision {
        mode: MtlsMode::Permissive,
        level: Level::Default,
        why: "no PeerAuthentication: Istio's default PERMISSIVE".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::load::{Loaded, load_text};

    fn plan_mode(yaml: &str, assume: &[(&str, Assume)], port: Port) -> (MtlsMode, Level) {
        let mut loaded = Loaded::default();
        load_text(yaml, "t.yaml", &mut loaded).unwrap();
        let idx = Index::build(&loaded);
        let mut opts = Options::new(
            "spiffe://cluster.local/ns/monitoring/sa/mtls-prober"
                .parse()
                .unwrap(),
        );
        opts.assume = assume
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect::<BTreeMap<_, _>>();
        let w = &idx.workloads_in("foo")[0];
        let d = decide(&idx, &opts, w, port);
        (d.mode, d.level)
    }

    const WORKLOAD: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: httpbin, namespace: foo}\nspec:\n  template:\n    metadata: {labels: {app: httpbin}}\n    spec: {containers: [{name: c}]}\n";

    fn pa(ns: &str, name: &str, selector: bool, mode: &str, ports: &str) -> String {
        let sel = if selector {
            "  selector: {matchLabels: {app: httpbin}}\n"
        } else {
            ""
        };
        let ports = if ports.is_empty() {
            String::new()
        } else {
            format!("  portLevelMtls: {{{ports}}}\n")
        };
        format!(
            "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{sel}  mtls: {{mode: {mode}}}\n{ports}"
        )
    }

    /// Rows from the PeerAuthentication reference ("policy precedence", "UNSET",
    /// "portLevelMtls") and the Mutual TLS Migration task.
    #[test]
    fn peer_authentication_table() {
        use Level::*;
        use MtlsMode::*;
        let none: &[(&str, Assume)] = &[];
        type Row<'a> = (String, &'a [(&'a str, Assume)], i64, (MtlsMode, Level));
        let rows: Vec<Row<'_>> = vec![
            (String::new(), none, 80, (Permissive, Default)),
            (
                pa("istio-system", "default", false, "STRICT", ""),
                none,
                80,
                (Strict, Mesh),
            ),
            // Namespace overrides mesh.
            (
                pa("istio-system", "default", false, "STRICT", "")
                    + &pa("foo", "default", false, "PERMISSIVE", ""),
                none,
                80,
                (Permissive, Namespace),
            ),
            // UNSET inherits from the level above.
            (
                pa("istio-system", "default", false, "STRICT", "")
                    + &pa("foo", "default", false, "UNSET", ""),
                none,
                80,
                (Strict, Mesh),
            ),
            // Workload overrides namespace.
            (
                pa("foo", "default", false, "STRICT", "")
                    + &pa("foo", "httpbin", true, "DISABLE", ""),
                none,
                80,
                (Disable, Workload),
            ),
            // portLevelMtls keyed by the container port.
            (
                pa("foo", "httpbin", true, "STRICT", "8080: {mode: DISABLE}"),
                none,
                8080,
                (Disable, Port),
            ),
            (
                pa("foo", "httpbin", true, "STRICT", "8080: {mode: DISABLE}"),
                none,
                80,
                (Strict, Workload),
            ),
            // UNSET on a port inherits the workload's, then the namespace's.
            (
                pa("foo", "default", false, "PERMISSIVE", "")
                    + &pa("foo", "httpbin", true, "UNSET", "8080: {mode: UNSET}"),
                none,
                8080,
                (Permissive, Namespace),
            ),
            // portLevelMtls without a selector is not honoured.
            (
                pa(
                    "foo",
                    "default",
                    false,
                    "PERMISSIVE",
                    "8080: {mode: STRICT}",
                ),
                none,
                8080,
                (Permissive, Namespace),
            ),
            // --assume replaces the namespace level only.
            (
                pa("foo", "default", false, "PERMISSIVE", ""),
                &[("foo", Assume::Strict)],
                80,
                (Strict, Namespace),
            ),
            (
                pa("foo", "httpbin", true, "PERMISSIVE", ""),
                &[("foo", Assume::Strict)],
                80,
                (Permissive, Workload),
            ),
            (
                pa("istio-system", "default", false, "STRICT", ""),
                &[("foo", Assume::Permissive)],
                80,
                (Permissive, Namespace),
            ),
        ];
        for (i, (policies, assume, port, want)) in rows.into_iter().enumerate() {
            let yaml = format!("{WORKLOAD}{policies}");
            assert_eq!(plan_mode(&yaml, assume, port), want, "row {i}:\n{yaml}");
        }
    }
}
