//! The loaded objects indexed for the rules: namespaces by name, workloads (one per pod
//! template) and policies by namespace, and selector matching.

use std::collections::{BTreeMap, BTreeSet};

use super::load::Loaded;
use super::objects::*;

/// `"Kind namespace/name"`, how findings and `why` name an object.
pub fn object_name(kind: &str, meta: &Meta) -> String {
    if meta.namespace.is_empty() {
        format!("{kind} {}", meta.name)
    } else {
        format!("{kind} {}/{}", meta.namespace, meta.name)
    }
}

/// A pod template: a workload's, or a bare Pod's when no input workload owns it.
#[derive(Debug)]
pub struct Workload<'a> {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet` or `Pod`.
    pub kind: &'static str,
    /// The workload's name.
    pub name: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// The pod template's labels (what selectors match).
    pub labels: &'a BTreeMap<String, String>,
    /// The pod template's annotations.
    pub annotations: &'a BTreeMap<String, String>,
    /// The pod spec.
    pub spec: &'a PodSpec,
    /// For a bare Pod: whether a mesh proxy container is already there (a fact, not
    /// a prediction).
    pub is_pod: bool,
}

impl Workload<'_> {
    /// `"Deployment ns/name"`.
    pub fn object(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }

    /// The service account its pods run as.
    pub fn service_account(&self) -> &str {
        if !self.spec.service_account_name.is_empty() {
            &self.spec.service_account_name
        } else if !self.spec.service_account.is_empty() {
            &self.spec.service_account
        } else {
            "default"
        }
    }

    /// Every container, app containers first.
    pub fn containers(&self) -> impl Iterator<Item = &Container> {
        self.spec
            .containers
            .iter()
            .chain(&self.spec.init_containers)
    }

    /// Whether a container of this name is in the pod (`istio-proxy`, `linkerd-proxy`).
    pub fn has_container(&self, name: &str) -> bool {
        self.containers().any(|c| c.name == name)
    }

    /// The container port a Service `targetPort` names (a number stays as it is).
    pub fn resolve_port(&self, target: &IntOrString) -> Option<i64> {
        match target {
            IntOrString::Int(i) => Some(*i),
            IntOrString::Str(name) => self
                .spec
                .containers
                .iter()
                .flat_map(|c| &c.ports)
                .find(|p| p.name == *name)
                .map(|p| p.container_port),
        }
    }
}

/// The input, indexed.
#[derive(Debug)]
pub struct Index<'a> {
    /// The objects as loaded.
    pub loaded: &'a Loaded,
    /// Namespaces by name.
    pub namespaces: BTreeMap<&'a str, &'a Namespace>,
    /// Workloads by namespace.
    pub workloads: BTreeMap<&'a str, Vec<Workload<'a>>>,
}

impl<'a> Index<'a> {
    /// Indexes `loaded`; Pods and ReplicaSets owned by an input workload are merged
    /// into it (their probes are Istio's rewritten ones; the template has the app's).
    pub fn build(loaded: &'a Loaded) -> Self {
        let namespaces = loaded
            .namespaces
            .iter()
            .map(|(_, n)| (n.metadata.name.as_str(), n))
            .collect();
        let present: BTreeSet<(&str, &str, &str)> = loaded
            .workloads
            .iter()
            .map(|(_, k, w)| (w.metadata.namespace.as_str(), *k, w.metadata.name.as_str()))
            .collect();
        let owned = |meta: &Meta| {
            meta.owner_references.iter().any(|o| {
                let ns = meta.namespace.as_str();
                present.contains(&(ns, o.kind.as_str(), o.name.as_str()))
                    // A ReplicaSet not in the input, named `<deployment>-<hash>`.
                    || (o.kind == "ReplicaSet"
                        && o.name.rsplit_once('-').is_some_and(|(d, _)| {
                            present.contains(&(ns, "Deployment", d))
                        }))
            })
        };
        let mut workloads: BTreeMap<&str, Vec<Workload<'a>>> = BTreeMap::new();
        for (_, kind, w) in &loaded.workloads {
            if *kind == "ReplicaSet" && owned(&w.metadata) {
                continue;
            }
            let t = &w.spec.template;
            workloads
                .entry(w.metadata.namespace.as_str())
                .or_default()
                .push(Workload {
                    kind,
                    name: &w.metadata.name,
                    namespace: &w.metadata.namespace,
                    labels: &t.metadata.labels,
                    annotations: &t.metadata.annotations,
                    spec: &t.spec,
                    is_pod: false,
                });
        }
        for (_, p) in &loaded.pods {
            if owned(&p.metadata) {
                continue;
            }
            workloads
                .entry(p.metadata.namespace.as_str())
                .or_default()
                .push(Workload {
                    kind: "Pod",
                    name: &p.metadata.name,
                    namespace: &p.metadata.namespace,
                    labels: &p.metadata.labels,
                    annotations: &p.metadata.annotations,
                    spec: &p.spec,
                    is_pod: true,
                });
        }
        Self {
            loaded,
            namespaces,
            workloads,
        }
    }

    /// The workloads of a namespace.
    pub fn workloads_in(&self, ns: &str) -> &[Workload<'a>] {
        self.workloads.get(ns).map_or(&[], Vec::as_slice)
    }

    /// The labels of a namespace (empty when the Namespace is not in the input).
    pub fn namespace_labels(&self, ns: &str) -> Option<&'a BTreeMap<String, String>> {
        self.namespaces.get(ns).map(|n| &n.metadata.labels)
    }

    /// The annotations of a namespace.
    pub fn namespace_annotations(&self, ns: &str) -> Option<&'a BTreeMap<String, String>> {
        self.namespaces.get(ns).map(|n| &n.metadata.annotations)
    }

    /// The workloads of `ns` a Service selector (equality on labels) selects.
    pub fn select(&self, ns: &str, selector: &BTreeMap<String, String>) -> Vec<&Workload<'a>> {
        self.workloads_in(ns)
            .iter()
            .filter(|w| selector.iter().all(|(k, v)| w.labels.get(k) == Some(v)))
            .collect()
    }

    /// Whether Istio's objects, labels or annotations are in the input.
    pub fn has_istio(&self) -> bool {
        let l = self.loaded;
        !l.peer_authentications.is_empty()
            || !l.istio_authz.is_empty()
            || !l.destination_rules.is_empty()
            || self.namespaces.values().any(|n| {
                n.metadata.labels.contains_key("istio-injection")
                    || n.metadata.labels.contains_key("istio.io/rev")
            })
            || self.workloads.values().flatten().any(|w| {
                w.labels.contains_key("sidecar.istio.io/inject")
                    || w.annotations.contains_key("sidecar.istio.io/inject")
                    || w.has_container("istio-proxy")
            })
    }

    /// Whether Linkerd's objects or annotations are in the input.
    pub fn has_linkerd(&self) -> bool {
        let l = self.loaded;
        !l.servers.is_empty()
            || !l.linkerd_authz.is_empty()
            || !l.mesh_tls.is_empty()
            || !l.server_authz.is_empty()
            || self
                .namespaces
                .values()
                .any(|n| n.metadata.annotations.contains_key("linkerd.io/inject"))
            || self.workloads.values().flatten().any(|w| {
                w.annotations.contains_key("linkerd.io/inject") || w.has_container("linkerd-proxy")
            })
    }
}
