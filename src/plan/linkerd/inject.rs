//! Proxy injection (Linkerd docs, "Automatic Proxy Injection"): the
//! `linkerd.io/inject` annotation (`enabled`, `ingress`; `disabled` opts out) on the
//! namespace or the pod template, the pod's winning; `hostNetwork` pods are skipped.
//! A bare Pod that already runs `linkerd-proxy` is injected.

use std::collections::BTreeMap;

use crate::plan::index::Workload;

/// Whether the workload's pods get a proxy, and why.
pub fn injected(
    ns: &str,
    ns_annotations: Option<&BTreeMap<String, String>>,
    w: &Workload<'_>,
) -> (bool, String) {
    if w.spec.host_network {
        return (
            false,
            format!("{}: hostNetwork pods are never injected", w.object()),
        );
    }
    if w.is_pod && w.has_container("linkerd-proxy") {
        return (
            true,
            format!("{}: has a linkerd-proxy container", w.object()),
        );
    }
    let on = |v: &str| matches!(v, "enabled" | "ingress");
    if let Some(v) = w.annotations.get("linkerd.io/inject") {
        return (on(v), format!("{}: linkerd.io/inject={v}", w.object()));
    }
    match ns_annotations.and_then(|a| a.get("linkerd.io/inject")) {
        Some(v) => (on(v), format!("Namespace {ns}: linkerd.io/inject={v}")),
        None => (
            false,
            format!("Namespace {ns}: no linkerd.io/inject annotation"),
        ),
    }
}
