//! The default inbound policy (Linkerd docs, "Authorization Policy" → "Default
//! policies"): `config.linkerd.io/default-inbound-policy` on the pod template, else on
//! the namespace, else the cluster's (`--linkerd-default-policy`). It governs ports no
//! `Server` selects.

use std::collections::BTreeMap;

use super::{Client, Verdict};
use crate::plan::index::Workload;
use crate::plan::{Assume, Options};

const ANNOTATION: &str = "config.linkerd.io/default-inbound-policy";

/// The policy in force for `w` and where it was set.
pub fn policy_for(
    ns: &str,
    ns_annotations: Option<&BTreeMap<String, String>>,
    w: &Workload<'_>,
    opts: &Options,
) -> (String, String) {
    if let Some(v) = w.annotations.get(ANNOTATION) {
        return (v.clone(), format!("{}: {ANNOTATION}={v}", w.object()));
    }
    if let Some(a) = opts.assume.get(ns) {
        let v = match a {
            Assume::Strict => "all-authenticated",
            Assume::Permissive => "all-unauthenticated",
        };
        return (
            v.to_owned(),
            format!("--assume {ns}: default-inbound-policy {v}"),
        );
    }
    if let Some(v) = ns_annotations.and_then(|a| a.get(ANNOTATION)) {
        return (v.clone(), format!("Namespace {ns}: {ANNOTATION}={v}"));
    }
    let v = &opts.linkerd_default_policy;
    (v.clone(), format!("cluster default-inbound-policy {v}"))
}

/// Whether a default policy lets `client` in. The prober runs inside the cluster, so
/// `cluster-*` policies' networks include it.
pub fn admits(policy: &str, client: &Client, why: &str) -> Verdict {
    match policy {
        "all-unauthenticated" | "cluster-unauthenticated" | "audit" => {
            Verdict::Allow(why.to_owned())
        }
        "all-authenticated" | "cluster-authenticated" => match client.identity {
            Some(_) => Verdict::Allow(why.to_owned()),
            None => Verdict::Deny(format!("{why}: requires a meshed client"), false),
        },
        "deny" => Verdict::Deny(why.to_owned(), false),
        other => Verdict::Unsupported(
            why.split(':').next().unwrap_or(why).to_owned(),
            format!("unknown default-inbound-policy {other:?}"),
        ),
    }
}

/// Whether a policy requires an authenticated client (for `not_injected_under_strict`).
pub fn requires_identity(policy: &str) -> bool {
    matches!(
        policy,
        "all-authenticated" | "cluster-authenticated" | "deny"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row per default policy of the Linkerd "Authorization Policy" reference.
    #[test]
    fn default_policy_table() {
        let meshed = Client {
            identity: Some(
                "mtls-prober.monitoring.serviceaccount.identity.linkerd.cluster.local".into(),
            ),
            service_account: "mtls-prober".into(),
            namespace: "monitoring".into(),
        };
        let unmeshed = Client {
            identity: None,
            ..meshed.clone()
        };
        let rows = [
            ("all-unauthenticated", true, true),
            ("cluster-unauthenticated", true, true),
            ("all-authenticated", true, false),
            ("cluster-authenticated", true, false),
            ("deny", false, false),
            ("audit", true, true),
        ];
        for (p, m, u) in rows {
            assert_eq!(
                matches!(admits(p, &meshed, "x"), Verdict::Allow(_)),
                m,
                "{p} meshed"
            );
            assert_eq!(
                matches!(admits(p, &unmeshed, "x"), Verdict::Allow(_)),
                u,
                "{p} unmeshed"
            );
        }
        assert!(matches!(
            admits("bogus", &meshed, "x"),
            Verdict::Unsupported(..)
        ));
    }
}
