//! `mtls-prober plan` (SPEC §11): the probe matrix and each edge's expected verdict,
//! derived from the mesh's own Kubernetes objects.
//!
//! A pure pipeline, read top to bottom:
//! 1. [`load`]: files → typed objects, each with its file and document index (the only
//!    I/O);
//! 2. [`index`]: by namespace, selector and owner; one [`index::Workload`] per pod
//!    template (pods owned by an input workload are merged into it);
//! 3. [`istio`] and [`linkerd`]: one file per policy kind, each a pure function from
//!    the index and one Service port to an effect with its deciding objects;
//! 4. [`expect`]: effects → a `[[target]]` and its `why`;
//! 5. [`findings`]: what the operator should change, one function per kind;
//! 6. [`render`]: TOML, JSON or the `--explain` text.

pub mod expect;
pub mod findings;
pub mod index;
pub mod istio;
pub mod linkerd;
pub mod load;
pub mod objects;
pub mod render;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::identity::spiffe::SpiffeId;

pub use load::{LoadError, Loaded};

/// The mesh whose semantics apply.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mesh {
    /// Istio (sidecar mode).
    Istio,
    /// Linkerd.
    Linkerd,
}

/// What `--assume NS=…` sets a namespace to.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Assume {
    /// Istio: a namespace PeerAuthentication STRICT; Linkerd: `all-authenticated`.
    Strict,
    /// Istio: PERMISSIVE; Linkerd: `all-unauthenticated`.
    Permissive,
}

/// Everything the command line decides.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--mesh`; `None` = detect from the input.
    pub mesh: Option<Mesh>,
    /// The prober's own identity (`--source-identity`).
    pub source: SpiffeId,
    /// `--trust-domain`: the trust domain of the expected peer identities.
    pub trust_domain: String,
    /// `--namespace`: only targets in these (empty = all).
    pub namespaces: Vec<String>,
    /// `--assume NS=strict|permissive`.
    pub assume: BTreeMap<String, Assume>,
    /// `--unmeshed` (Linkerd): the prober is outside the mesh.
    pub unmeshed: bool,
    /// `--linkerd-default-policy`: the cluster-wide default inbound policy.
    pub linkerd_default_policy: String,
    /// Istio's root namespace (mesh-wide policies live there).
    pub istio_root_namespace: String,
}

impl Options {
    /// Defaults of the command line, with this source identity.
    pub fn new(source: SpiffeId) -> Self {
        Self {
            mesh: None,
            source,
            trust_domain: "cluster.local".to_owned(),
            namespaces: Vec::new(),
            assume: BTreeMap::new(),
            unmeshed: false,
            linkerd_default_policy: "all-unauthenticated".to_owned(),
            istio_root_namespace: "istio-system".to_owned(),
        }
    }
}

/// The result of a plan.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    /// The mesh whose semantics were applied.
    #[serde(skip)]
    pub mesh: Option<Mesh>,
    /// The matrix, sorted by name.
    pub targets: Vec<PlannedTarget>,
    /// What the operator should look at, sorted.
    pub findings: Vec<Finding>,
    /// What was skipped and why (headless Services, ignored kinds, …).
    pub notes: Vec<String>,
}

/// One planned `[[target]]`, with the keys `probes.toml` takes plus `why`.
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
pub struct PlannedTarget {
    /// `<namespace>/<service>` or `<namespace>/<service>:<port>`.
    pub name: String,
    /// `<service>.<namespace>.svc.cluster.local:<port>`.
    pub address: String,
    /// `mtls` or `plaintext`.
    pub mode: &'static str,
    /// `success` or `reject`.
    pub expect: &'static str,
    /// The peer's exact identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<String>,
    /// The peer's trust domain, when several identities serve the port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_domain: Option<String>,
    /// ALPN to offer: Istio's own protocols first, which a PERMISSIVE sidecar needs to
    /// terminate mTLS itself instead of handing the TLS to the application.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<&'static str>,
    /// Whether a plaintext companion must be refused (STRICT).
    pub verify_strict: bool,
    /// The HTTP request, when the workload has one to offer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<PlannedHttp>,
    /// The gRPC health check, when the workload's readiness probe is `grpc:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<PlannedGrpc>,
    /// The deciding objects, `"Kind namespace/name: effect"`, and notes.
    pub why: Vec<String>,
    /// The namespace (for `--namespace` and `--assume`; not a `[[target]]` key).
    #[serde(skip)]
    pub namespace: String,
}

/// `[target.http]` of a planned target.
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
pub struct PlannedHttp {
    /// `GET`.
    pub method: &'static str,
    /// The readiness probe's path.
    pub path: String,
    /// Extra headers (Linkerd's `l5d-require-id`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// `[target.grpc]` of a planned target (SPEC §13).
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
pub struct PlannedGrpc {
    /// The readiness probe's `grpc.service` (`""`: the server as a whole).
    pub service: String,
}

/// The closed set of finding kinds (SPEC §11).
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A STRICT workload whose pods are not injected.
    NotInjectedUnderStrict,
    /// A DestinationRule that disables TLS toward a STRICT service.
    TlsDisabledTowardStrict,
    /// A policy whose selector matches no workload.
    SelectorMatchesNothing,
    /// `portLevelMtls` on a port no Service targets.
    PortNotTargeted,
    /// An ALLOW list that leaves the prober's health request out.
    HealthPathDenied,
    /// A Service that selects no workload.
    ServiceWithoutWorkload,
    /// Something `plan` cannot evaluate.
    Unsupported,
}

impl FindingKind {
    /// Every kind, in order.
    pub const ALL: [Self; 7] = [
        Self::NotInjectedUnderStrict,
        Self::TlsDisabledTowardStrict,
        Self::SelectorMatchesNothing,
        Self::PortNotTargeted,
        Self::HealthPathDenied,
        Self::ServiceWithoutWorkload,
        Self::Unsupported,
    ];

    /// The JSON spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotInjectedUnderStrict => "not_injected_under_strict",
            Self::TlsDisabledTowardStrict => "tls_disabled_toward_strict",
            Self::SelectorMatchesNothing => "selector_matches_nothing",
            Self::PortNotTargeted => "port_not_targeted",
            Self::HealthPathDenied => "health_path_denied",
            Self::ServiceWithoutWorkload => "service_without_workload",
            Self::Unsupported => "unsupported",
        }
    }
}

/// A finding: which object to change, and a sentence saying what to change.
#[derive(Clone, Debug, Eq, Ord, PartialEq, PartialOrd, Serialize)]
pub struct Finding {
    /// The kind.
    pub kind: FindingKind,
    /// `"Kind namespace/name"` of the object to change.
    pub object: String,
    /// What is wrong and what to change.
    pub detail: String,
}

/// Plans the matrix for `loaded` objects.
pub fn plan(loaded: &Loaded, opts: &Options) -> Result<Plan, String> {
    let idx = index::Index::build(loaded);
    let mesh = match opts.mesh {
        Some(m) => m,
        None => detect(&idx)?,
    };
    let mut plan = Plan {
        mesh: Some(mesh),
        ..Plan::default()
    };
    for (kind, n) in &loaded.ignored {
        plan.notes.push(format!(
            "ignored {n} object(s) of kind {kind}: plan does not read them"
        ));
    }
    expect::plan_services(&idx, mesh, opts, &mut plan);
    findings::policy_findings(&idx, mesh, opts, &mut plan);
    if !opts.namespaces.is_empty() {
        plan.targets
            .retain(|t| opts.namespaces.contains(&t.namespace));
        plan.findings.retain(|f| {
            opts.namespaces.iter().any(|n| {
                f.object
                    .split_once(' ')
                    .is_some_and(|(_, o)| o.starts_with(&format!("{n}/")))
            })
        });
    }
    plan.targets.sort_by(|a, b| a.name.cmp(&b.name));
    plan.findings.sort();
    plan.findings.dedup();
    Ok(plan)
}

/// Which mesh the input is for: Istio's or Linkerd's objects, labels or annotations.
fn detect(idx: &index::Index<'_>) -> Result<Mesh, String> {
    let istio = idx.has_istio();
    let linkerd = idx.has_linkerd();
    match (istio, linkerd) {
        (true, true) => Err(
            "the input holds both Istio and Linkerd objects or labels; pass --mesh istio or \
             --mesh linkerd"
                .to_owned(),
        ),
        (false, true) => Ok(Mesh::Linkerd),
        _ => Ok(Mesh::Istio),
    }
}
