//! Findings: one small function per kind, each saying which object to change and how
//! (in the shape of Kiali's checkers). Those that need an edge's evaluation are called
//! from [`super::expect`]; the rest look at policies alone ([`policy_findings`]).

use std::collections::{BTreeMap, BTreeSet};

use super::index::{Index, Workload, object_name};
use super::istio::authz::Request;
use super::objects::IntOrString;
use super::{Finding, FindingKind, Mesh, Options, Plan};

/// A workload under STRICT (or a Linkerd policy that requires identity) whose pods
/// get no proxy: nothing enforces the policy there.
pub fn not_injected_under_strict(w: &Workload<'_>, decided_by: &str) -> Finding {
    Finding {
        kind: FindingKind::NotInjectedUnderStrict,
        object: w.object(),
        detail: format!(
            "{decided_by}, but the pods of {} get no proxy, so nothing enforces it and clients \
             reach it in plaintext: enable injection for it (namespace label or pod template) \
             and restart it, or exempt it explicitly",
            w.object()
        ),
    }
}

/// A DestinationRule that disables TLS toward a STRICT workload.
pub fn tls_disabled_toward_strict(dr: &str, service: &str, decided_by: &str) -> Finding {
    Finding {
        kind: FindingKind::TlsDisabledTowardStrict,
        object: dr.to_owned(),
        detail: format!(
            "sets tls.mode DISABLE toward {service}, whose workload is STRICT ({decided_by}): \
             every meshed client following it sends plaintext and is refused; set the mode to \
             ISTIO_MUTUAL or remove the tls setting"
        ),
    }
}

/// An ALLOW list that does not include the prober's health request (Istio).
pub fn health_path_denied(policy: &str, w: &Workload<'_>, r: &Request<'_>) -> Finding {
    let what = match r.http {
        Some((m, p)) => format!("{m} {p}"),
        None => "TLS connection".to_owned(),
    };
    Finding {
        kind: FindingKind::HealthPathDenied,
        object: policy.to_owned(),
        detail: format!(
            "ALLOW policies select {} and none matches the prober's {what} on port {} from {}: \
             add a rule allowing that principal (or namespace) to the health path, or expect the \
             denial deliberately with a DENY rule",
            w.object(),
            r.port,
            r.principal.unwrap_or("a plaintext client"),
        ),
    }
}

/// A Linkerd Server whose authorizations list clients but not the prober.
pub fn linkerd_health_path_denied(
    why: &str,
    w: &Workload<'_>,
    request: Option<(&str, &str)>,
) -> Finding {
    let object = why.split(':').next().unwrap_or(why).to_owned();
    let what = request.map_or("TCP connection".to_owned(), |(m, p)| format!("{m} {p}"));
    Finding {
        kind: FindingKind::HealthPathDenied,
        object,
        detail: format!(
            "authorizes other clients of {} but not the prober's {what}: add the prober's \
             identity to a MeshTLSAuthentication of its AuthorizationPolicy (or expect the \
             refusal deliberately)",
            w.object()
        ),
    }
}

/// A Service whose selector matches no workload in the input.
pub fn service_without_workload(service: &str, selector: &BTreeMap<String, String>) -> Finding {
    let sel = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Finding {
        kind: FindingKind::ServiceWithoutWorkload,
        object: service.to_owned(),
        detail: format!(
            "its selector {sel} matches no workload in the input: fix the selector or the pod \
             labels, or include the workloads in the input; no target is planned for it"
        ),
    }
}

/// Something `plan` cannot evaluate: the edge is left out rather than guessed.
pub fn unsupported(object: &str, detail: &str) -> Finding {
    Finding {
        kind: FindingKind::Unsupported,
        object: object.to_owned(),
        detail: format!("{detail}; the edge is not planned: write its expectation by hand"),
    }
}

fn selector_matches_nothing(object: String, selector: String, ns: &str) -> Finding {
    Finding {
        kind: FindingKind::SelectorMatchesNothing,
        object,
        detail: format!(
            "its selector {selector} matches no workload in {ns}, so it has no effect: fix the \
             selector or delete the policy"
        ),
    }
}

fn fmt_labels(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The findings about policies themselves: selectors that match nothing, and
/// `portLevelMtls` on ports no Service targets.
pub fn policy_findings(idx: &Index<'_>, mesh: Mesh, opts: &Options, plan: &mut Plan) {
    let selects = |ns: &str, labels: &BTreeMap<String, String>| -> Vec<&Workload<'_>> {
        idx.workloads_in(ns)
            .iter()
            .filter(|w| labels.iter().all(|(k, v)| w.labels.get(k) == Some(v)))
            .collect()
    };
    if mesh == Mesh::Istio {
        for (_, pa) in &idx.loaded.peer_authentications {
            let Some(sel) = pa
                .spec
                .selector
                .as_ref()
                .filter(|s| !s.match_labels.is_empty())
            else {
                continue;
            };
            let ns = pa.metadata.namespace.as_str();
            let object = object_name("PeerAuthentication", &pa.metadata);
            let selected = selects(ns, &sel.match_labels);
            if selected.is_empty() {
                plan.findings.push(selector_matches_nothing(
                    object,
                    fmt_labels(&sel.match_labels),
                    ns,
                ));
                continue;
            }
            for key in pa.spec.port_level_mtls.keys() {
                let Ok(port) = key.parse::<i64>() else {
                    continue;
                };
                if !port_targeted(idx, ns, &selected, port) {
                    plan.findings
                        .push(port_not_targeted(&object, port, &selected));
                }
            }
        }
        for (_, ap) in &idx.loaded.istio_authz {
            let Some(sel) = ap
                .spec
                .selector
                .as_ref()
                .filter(|s| !s.match_labels.is_empty())
            else {
                continue;
            };
            let ns = ap.metadata.namespace.as_str();
            let matched = if ns == opts.istio_root_namespace {
                idx.workloads
                    .keys()
                    .any(|n| !selects(n, &sel.match_labels).is_empty())
            } else {
                !selects(ns, &sel.match_labels).is_empty()
            };
            if !matched {
                plan.findings.push(selector_matches_nothing(
                    object_name("AuthorizationPolicy", &ap.metadata),
                    fmt_labels(&sel.match_labels),
                    ns,
                ));
            }
        }
    } else {
        for (_, s) in &idx.loaded.servers {
            let Some(sel) = &s.spec.pod_selector else {
                continue;
            };
            let ns = s.metadata.namespace.as_str();
            let any = idx
                .workloads_in(ns)
                .iter()
                .any(|w| sel.matches(w.labels) == Some(true));
            if !any {
                let mut desc = fmt_labels(&sel.match_labels);
                if !sel.match_expressions.is_empty() {
                    desc.push_str(" (and matchExpressions)");
                }
                plan.findings.push(selector_matches_nothing(
                    object_name("Server", &s.metadata),
                    desc,
                    ns,
                ));
            }
        }
    }
}

/// Whether a Service of `ns` sends traffic to container `port` of one of `selected`.
fn port_targeted(idx: &Index<'_>, ns: &str, selected: &[&Workload<'_>], port: i64) -> bool {
    let names: BTreeSet<(&str, &str)> = selected.iter().map(|w| (w.kind, w.name)).collect();
    idx.loaded.services.iter().map(|(_, s)| s).any(|s| {
        s.metadata.namespace == ns
            && s.spec.selector.as_ref().is_some_and(|sel| {
                idx.select(ns, sel).iter().any(|w| {
                    names.contains(&(w.kind, w.name))
                        && s.spec.ports.iter().any(|p| {
                            let t = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
                            w.resolve_port(&t) == Some(port)
                        })
                })
            })
    })
}

fn port_not_targeted(object: &str, port: i64, selected: &[&Workload<'_>]) -> Finding {
    let ws = selected
        .iter()
        .map(|w| w.object())
        .collect::<Vec<_>>()
        .join(", ");
    Finding {
        kind: FindingKind::PortNotTargeted,
        object: object.to_owned(),
        detail: format!(
            "portLevelMtls {port} names a port no Service sends to on {ws}: portLevelMtls is \
             keyed by the container port (the Service's targetPort), not the Service port; use \
             the targetPort"
        ),
    }
}
