//! Sidecar injection, as Istio's injection webhook decides it.
//!
//! Istio docs, "Installing the Sidecar" → "Controlling the injection policy": the
//! namespace label `istio-injection` (`enabled`/`disabled`) or `istio.io/rev=<rev>`
//! (a revision's webhook), the pod label `sidecar.istio.io/inject` (`"true"`/`"false"`;
//! the annotation of the same name is the older spelling, the label wins). If either
//! says disabled, the pod is not injected; if either says enabled, it is; if neither,
//! it is not (`enableNamespacesByDefault` is off by default). `istio-injection` takes
//! precedence over `istio.io/rev` on a namespace. `hostNetwork` pods are never
//! injected. A bare Pod that already has an `istio-proxy` container is injected: that
//! is a fact, not a prediction.

use std::collections::BTreeMap;

use crate::plan::index::Workload;

/// Whether the workload's pods get a sidecar, and the sentence that says why.
pub fn injected(
    ns: &str,
    ns_labels: Option<&BTreeMap<String, String>>,
    w: &Workload<'_>,
) -> (bool, String) {
    if w.spec.host_network {
        return (
            false,
            format!("{}: hostNetwork pods are never injected", w.object()),
        );
    }
    if w.is_pod && w.has_container("istio-proxy") {
        return (
            true,
            format!("{}: has an istio-proxy container", w.object()),
        );
    }
    let pod = w
        .labels
        .get("sidecar.istio.io/inject")
        .map(|v| (v, "label"))
        .or_else(|| {
            w.annotations
                .get("sidecar.istio.io/inject")
                .map(|v| (v, "annotation"))
        });
    let pod_says = pod.map(|(v, what)| (v.eq_ignore_ascii_case("true"), what, v));
    let ns_labels = ns_labels.cloned().unwrap_or_default();
    let ns_says: Option<(bool, String)> = match ns_labels.get("istio-injection") {
        Some(v) => Some((v == "enabled", format!("istio-injection={v}"))),
        None => ns_labels
            .get("istio.io/rev")
            .map(|rev| (true, format!("istio.io/rev={rev}"))),
    };
    // A revision label on the pod template also selects that revision's webhook.
    let pod_rev = w.labels.get("istio.io/rev");
    match (pod_says, &ns_says) {
        (Some((false, what, v)), _) => (
            false,
            format!("{}: sidecar.istio.io/inject {what} is {v:?}", w.object()),
        ),
        (_, Some((false, label))) => (false, format!("Namespace {ns}: {label}")),
        (Some((true, what, v)), _) => (
            true,
            format!("{}: sidecar.istio.io/inject {what} is {v:?}", w.object()),
        ),
        (None, Some((true, label))) => (true, format!("Namespace {ns}: {label}")),
        (None, None) => match pod_rev {
            Some(rev) => (true, format!("{}: istio.io/rev={rev}", w.object())),
            None => (
                false,
                format!("Namespace {ns}: no istio-injection or istio.io/rev label"),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::objects::{Container, PodSpec};

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    /// One row per case of "Controlling the injection policy" (Istio docs, Sidecar
    /// injection): (namespace labels, pod labels, pod annotations, hostNetwork, injected).
    #[test]
    fn injection_table() {
        type Labels = &'static [(&'static str, &'static str)];
        let rows: &[(Labels, Labels, Labels, bool, bool)] = &[
            (&[("istio-injection", "enabled")], &[], &[], false, true),
            (&[("istio-injection", "disabled")], &[], &[], false, false),
            (&[], &[], &[], false, false),
            // A revision label on the namespace selects that revision's injector.
            (&[("istio.io/rev", "1-22-1")], &[], &[], false, true),
            // istio-injection wins over istio.io/rev.
            (
                &[("istio-injection", "disabled"), ("istio.io/rev", "canary")],
                &[],
                &[],
                false,
                false,
            ),
            // Either side disabled: not injected.
            (
                &[("istio-injection", "enabled")],
                &[("sidecar.istio.io/inject", "false")],
                &[],
                false,
                false,
            ),
            (
                &[("istio-injection", "disabled")],
                &[("sidecar.istio.io/inject", "true")],
                &[],
                false,
                false,
            ),
            // Pod label enables injection in an unlabelled namespace.
            (
                &[],
                &[("sidecar.istio.io/inject", "true")],
                &[],
                false,
                true,
            ),
            // The annotation is the older spelling; the label wins over it.
            (
                &[("istio-injection", "enabled")],
                &[],
                &[("sidecar.istio.io/inject", "false")],
                false,
                false,
            ),
            (
                &[("istio-injection", "enabled")],
                &[("sidecar.istio.io/inject", "true")],
                &[("sidecar.istio.io/inject", "false")],
                false,
                true,
            ),
            // Revision label on the pod template.
            (&[], &[("istio.io/rev", "canary")], &[], false, true),
            // hostNetwork pods are never injected.
            (&[("istio-injection", "enabled")], &[], &[], true, false),
        ];
        for (i, (ns, labels, annotations, host, want)) in rows.iter().enumerate() {
            let (labels, annotations) = (map(labels), map(annotations));
            let spec = PodSpec {
                host_network: *host,
                containers: vec![Container::default()],
                ..PodSpec::default()
            };
            let w = Workload {
                kind: "Deployment",
                name: "w",
                namespace: "ns",
                labels: &labels,
                annotations: &annotations,
                spec: &spec,
                is_pod: false,
            };
            let ns = map(ns);
            assert_eq!(injected("ns", Some(&ns), &w).0, *want, "row {i}");
        }
    }
}
