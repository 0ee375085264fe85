//! Effects → targets: for every Service port, the workloads behind it, what the mesh's
//! policies do to the prober's request, and the `[[target]]` that checks it.

use std::collections::{BTreeMap, BTreeSet};

use super::index::{Index, Workload, object_name};
use super::istio::{authz, dest_rule, inject as istio_inject, peer_authn};
use super::linkerd::{self, Client, default_policy, inject as linkerd_inject, server};
use super::objects::{IntOrString, Service, ServicePort};
use super::{Finding, FindingKind, Mesh, Options, Plan, PlannedGrpc, PlannedHttp, PlannedTarget};

/// The method path of `grpc.health.v1.Health/Check`, as policies see the call.
const GRPC_HEALTH_CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// The cluster DNS domain of Service addresses.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// What one workload behind a Service port makes of the prober's probe.
#[derive(Clone, Debug, Eq, PartialEq)]
struct Edge {
    mode: &'static str,
    expect: &'static str,
    verify_strict: bool,
    /// Linkerd: send `l5d-require-id`.
    linkerd_header: bool,
    why: Vec<String>,
}

/// The request after the handshake that a workload's readiness probe names.
#[derive(Clone, Debug, Eq, PartialEq)]
enum HealthCheck {
    /// `httpGet`: `GET` this path.
    Http(String),
    /// `grpc`: `grpc.health.v1.Health/Check` of this service.
    Grpc(String),
}

/// The check a workload offers on a container port: its readiness probe's `httpGet`
/// path or `grpc` service when served on that port. `Err(note)` when there is none.
fn health_check(w: &Workload<'_>, port: i64) -> Result<HealthCheck, String> {
    for c in w.containers() {
        let Some(p) = &c.readiness_probe else {
            continue;
        };
        if let Some(g) = &p.http_get {
            let on_port = match &g.port {
                Some(IntOrString::Int(n)) => *n == port,
                Some(IntOrString::Str(name)) => c
                    .ports
                    .iter()
                    .any(|cp| cp.name == *name && cp.container_port == port),
                None => false,
            };
            if !on_port {
                continue;
            }
            if g.scheme.eq_ignore_ascii_case("HTTPS") {
                return Err(format!(
                    "note: the readiness probe of {} is HTTPS (the application's own TLS): no \
                     HTTP request",
                    w.object()
                ));
            }
            let path = if g.path.is_empty() {
                "/".to_owned()
            } else {
                g.path.clone()
            };
            return Ok(HealthCheck::Http(path));
        }
        if let Some(g) = &p.grpc
            && g.port == port
        {
            // The kubelet asks the same Health service (SPEC §13 `[target.grpc]`).
            return Ok(HealthCheck::Grpc(g.service.clone().unwrap_or_default()));
        }
    }
    Err(format!(
        "note: {} has no readinessProbe (httpGet or grpc) on port {port}: no request after \
         the handshake",
        w.object()
    ))
}

/// Plans every Service of the input into `plan`.
pub fn plan_services(idx: &Index<'_>, mesh: Mesh, opts: &Options, plan: &mut Plan) {
    let mut services: Vec<&Service> = idx.loaded.services.iter().map(|(_, s)| s).collect();
    services.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    for svc in services {
        plan_service(idx, mesh, opts, svc, plan);
    }
}

fn plan_service(idx: &Index<'_>, mesh: Mesh, opts: &Options, svc: &Service, plan: &mut Plan) {
    let (ns, name) = (svc.metadata.namespace.as_str(), svc.metadata.name.as_str());
    let object = object_name("Service", &svc.metadata);
    if svc.spec.type_ == "ExternalName" {
        plan.notes.push(format!(
            "{object}: ExternalName, skipped (nothing in the mesh serves it)"
        ));
        return;
    }
    if svc.spec.cluster_ip == "None" {
        plan.notes.push(format!(
            "{object}: headless, skipped (its pods are addressed one by one; use a [[discover]])"
        ));
        return;
    }
    let Some(selector) = svc.spec.selector.as_ref().filter(|s| !s.is_empty()) else {
        plan.notes.push(format!(
            "{object}: no selector (manually managed endpoints), skipped"
        ));
        return;
    };
    let workloads = idx.select(ns, selector);
    if workloads.is_empty() {
        plan.findings
            .push(super::findings::service_without_workload(&object, selector));
        return;
    }
    let several = svc.spec.ports.len() > 1;
    for port in &svc.spec.ports {
        if !matches!(port.protocol.as_str(), "" | "TCP") {
            plan.notes.push(format!(
                "{object}: port {} is {}, skipped",
                port.port, port.protocol
            ));
            continue;
        }
        let label = if port.name.is_empty() {
            port.port.to_string()
        } else {
            port.name.clone()
        };
        let target_name = if several {
            format!("{ns}/{name}:{label}")
        } else {
            format!("{ns}/{name}")
        };
        if let Some(t) = plan_port(idx, mesh, opts, svc, port, &workloads, &target_name, plan) {
            plan.targets.push(t);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn plan_port(
    idx: &Index<'_>,
    mesh: Mesh,
    opts: &Options,
    svc: &Service,
    port: &ServicePort,
    workloads: &[&Workload<'_>],
    target_name: &str,
    plan: &mut Plan,
) -> Option<PlannedTarget> {
    let (ns, name) = (svc.metadata.namespace.as_str(), svc.metadata.name.as_str());
    let object = object_name("Service", &svc.metadata);
    let target_port = port
        .target_port
        .clone()
        .unwrap_or(IntOrString::Int(port.port));
    let host = format!("{name}.{ns}.svc.{CLUSTER_DOMAIN}");
    let mut edges: Vec<(&Workload<'_>, Edge)> = Vec::new();
    let mut http: Option<String> = None;
    let mut grpc: Option<String> = None;
    let mut notes: Vec<String> = Vec::new();
    let findings_before = plan.findings.len();
    for w in workloads {
        let Some(cport) = w.resolve_port(&target_port) else {
            plan.findings.push(Finding {
                kind: FindingKind::Unsupported,
                object: object.clone(),
                detail: format!(
                    "port {} has targetPort {target_port:?}, which no container port of {} is \
                     named: the port cannot be planned; name the container port or use its number",
                    port.port,
                    w.object()
                ),
            });
            return None;
        };
        let cport_name = w
            .spec
            .containers
            .iter()
            .flat_map(|c| &c.ports)
            .find(|p| p.container_port == cport)
            .map_or("", |p| p.name.as_str());
        match health_check(w, cport) {
            Ok(HealthCheck::Http(p)) => {
                if http.is_none() && grpc.is_none() {
                    http = Some(p);
                }
            }
            Ok(HealthCheck::Grpc(service)) => {
                if http.is_none() && grpc.is_none() {
                    grpc = Some(service);
                }
            }
            Err(note) => {
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
        let via = format!("{object}: port {} → {} port {cport}", port.port, w.object());
        // The request the policies judge: the HTTP check's GET, or the gRPC health
        // check's POST.
        let request: Option<(&str, String)> = match (&http, &grpc) {
            (Some(p), _) => Some(("GET", p.clone())),
            (None, Some(_)) => Some(("POST", GRPC_HEALTH_CHECK_PATH.to_owned())),
            (None, None) => None,
        };
        let request = request.as_ref().map(|(m, p)| (*m, p.as_str()));
        let edge = match mesh {
            Mesh::Istio => istio_edge(
                idx, opts, w, cport, port.port, &host, request, &object, plan,
            )?,
            Mesh::Linkerd => linkerd_edge(idx, opts, w, cport, cport_name, request, plan)?,
        };
        let mut edge = edge;
        edge.why.insert(0, via);
        edges.push((w, edge));
    }
    // Several workloads behind one port (reviews v1, v2, v3) give one finding per
    // object, not one per workload.
    let mut seen = BTreeSet::new();
    let mut i = findings_before;
    while i < plan.findings.len() {
        let f = &plan.findings[i];
        if seen.insert((f.kind, f.object.clone())) {
            i += 1;
        } else {
            plan.findings.remove(i);
        }
    }
    let (_, first) = edges.first()?;
    if let Some((w, other)) = edges.iter().find(|(_, e)| {
        (e.mode, e.expect, e.verify_strict) != (first.mode, first.expect, first.verify_strict)
    }) {
        plan.findings.push(Finding {
            kind: FindingKind::Unsupported,
            object: object.clone(),
            detail: format!(
                "the workloads behind port {} expect different verdicts ({} {} for {}, {} {} for \
                 {}): one probe cannot check both; give each workload its own Service",
                port.port,
                first.mode,
                first.expect,
                edges[0].0.object(),
                other.mode,
                other.expect,
                w.object()
            ),
        });
        return None;
    }
    // The Service → workload lines first, then what decided, each once.
    let mut why: Vec<String> = edges.iter().map(|(_, e)| e.why[0].clone()).collect();
    for (_, e) in &edges {
        for line in &e.why[1..] {
            if !why.contains(line) {
                why.push(line.clone());
            }
        }
    }
    why.extend(notes);
    let accounts: BTreeSet<&str> = edges.iter().map(|(w, _)| w.service_account()).collect();
    let (mut spiffe_id, mut trust_domain) = (None, None);
    let mut headers = BTreeMap::new();
    if first.mode == "mtls" {
        if let [sa] = accounts.iter().copied().collect::<Vec<_>>()[..] {
            spiffe_id = Some(format!("spiffe://{}/ns/{ns}/sa/{sa}", opts.trust_domain));
        } else {
            trust_domain = Some(opts.trust_domain.clone());
            why.push(format!(
                "note: several service accounts serve this port ({}): any identity of trust \
                 domain {} is accepted",
                accounts.iter().copied().collect::<Vec<_>>().join(", "),
                opts.trust_domain
            ));
        }
    }
    if first.linkerd_header {
        if let [sa] = accounts.iter().copied().collect::<Vec<_>>()[..] {
            if http.is_some() {
                headers.insert(
                    "l5d-require-id".to_owned(),
                    linkerd::identity_name(sa, ns, &opts.trust_domain),
                );
            }
        } else {
            why.push(format!(
                "note: several service accounts serve this port ({}): no l5d-require-id, the \
                 peer identity is not checked",
                accounts.iter().copied().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let alpn = if first.mode == "mtls" {
        istio_alpn(port, http.is_some(), grpc.is_some())
    } else {
        Vec::new()
    };
    Some(PlannedTarget {
        name: target_name.to_owned(),
        address: format!("{host}:{}", port.port),
        mode: first.mode,
        expect: first.expect,
        spiffe_id,
        trust_domain,
        alpn,
        verify_strict: first.verify_strict,
        http: http.map(|path| PlannedHttp {
            method: "GET",
            path,
            headers,
        }),
        grpc: grpc.map(|service| PlannedGrpc { service }),
        why,
        namespace: ns.to_owned(),
    })
}

/// Istio's ALPN for a sidecar's inbound mTLS (as Prometheus and docs/deploy.md
/// "Writing the target matrix" offer them): HTTP, HTTP/2 (gRPC) or plain TCP, from the
/// HTTP or gRPC check, then the port's `appProtocol` or name prefix (Istio's "Protocol
/// Selection").
fn istio_alpn(port: &ServicePort, http: bool, grpc: bool) -> Vec<&'static str> {
    let proto = if port.app_protocol.is_empty() {
        port.name.split('-').next().unwrap_or_default()
    } else {
        port.app_protocol.as_str()
    }
    .to_ascii_lowercase();
    // `[target.grpc]` offers h2 only (Istio's name for it first).
    if grpc {
        return vec!["istio-h2", "h2"];
    }
    if http || matches!(proto.as_str(), "http" | "https") {
        vec!["istio-http/1.1", "http/1.1"]
    } else if matches!(
        proto.as_str(),
        "grpc" | "grpc-web" | "http2" | "h2c" | "kubernetes.io/h2c"
    ) {
        vec!["istio-h2", "h2"]
    } else {
        vec!["istio", "istio-peer-exchange"]
    }
}

/// The source identity's parts: principal (`td/ns/x/sa/y`), namespace, account.
fn source_parts(opts: &Options) -> (String, String, String) {
    let id = opts.source.to_string();
    let principal = id.strip_prefix("spiffe://").unwrap_or(&id).to_owned();
    let path: Vec<&str> = principal.split('/').collect();
    let (ns, sa) = match path[..] {
        [_, "ns", ns, "sa", sa] => (ns.to_owned(), sa.to_owned()),
        _ => (String::new(), String::new()),
    };
    (principal, ns, sa)
}

#[allow(clippy::too_many_arguments)]
fn istio_edge(
    idx: &Index<'_>,
    opts: &Options,
    w: &Workload<'_>,
    cport: i64,
    service_port: i64,
    host: &str,
    http: Option<(&str, &str)>,
    service_object: &str,
    plan: &mut Plan,
) -> Option<Edge> {
    let (injected, inject_why) =
        istio_inject::injected(w.namespace, idx.namespace_labels(w.namespace), w);
    let decision = peer_authn::decide(idx, opts, w, cport);
    let mut why = vec![inject_why];
    why.push(decision.why.clone());
    let strict = decision.mode == peer_authn::MtlsMode::Strict;
    if !injected {
        if strict {
            plan.findings
                .push(super::findings::not_injected_under_strict(w, &decision.why));
        }
        why.push("not injected: probed in plaintext, as it is".to_owned());
        return Some(Edge {
            mode: "plaintext",
            expect: "success",
            verify_strict: false,
            linkerd_header: false,
            why,
        });
    }
    if strict {
        for dr in dest_rule::disabling(
            idx,
            host.split('.').next().unwrap_or(host),
            w.namespace,
            service_port,
        ) {
            plan.findings
                .push(super::findings::tls_disabled_toward_strict(
                    &dr,
                    service_object,
                    &decision.why,
                ));
        }
    }
    let (principal, src_ns, _) = source_parts(opts);
    let plaintext = decision.mode == peer_authn::MtlsMode::Disable;
    let request = authz::Request {
        principal: (!plaintext).then_some(principal.as_str()),
        namespace: (!plaintext && !src_ns.is_empty()).then_some(src_ns.as_str()),
        http,
        port: cport,
        host,
    };
    let policies = authz::applicable(idx, opts, w);
    if http.is_none() && !policies.is_empty() {
        why.push(
            "note: no HTTP request, so authorization rules apply as to TCP traffic (HTTP-only \
             fields never match in ALLOW, are ignored in DENY)"
                .to_owned(),
        );
    }
    let expect = match authz::evaluate(&policies, &request) {
        authz::Verdict::Allow(by) => {
            why.extend(by);
            "success"
        }
        authz::Verdict::DeniedExplicitly(by) => {
            why.push(by);
            "reject"
        }
        authz::Verdict::DeniedByAllowList(by) => {
            plan.findings
                .push(super::findings::health_path_denied(&by, w, &request));
            why.push(format!("{by}: ALLOW does not match the prober's request"));
            "reject"
        }
        authz::Verdict::Unsupported(object, detail) => {
            plan.findings
                .push(super::findings::unsupported(&object, &detail));
            return None;
        }
    };
    if plaintext {
        why.push("DISABLE: the sidecar takes plaintext only; probed in plaintext".to_owned());
        return Some(Edge {
            mode: "plaintext",
            expect,
            verify_strict: false,
            linkerd_header: false,
            why,
        });
    }
    let verify_strict = strict && expect == "success";
    if strict && !verify_strict {
        why.push("note: no plaintext companion, the mTLS edge itself expects a refusal".to_owned());
    }
    Some(Edge {
        mode: "mtls",
        expect,
        verify_strict,
        linkerd_header: false,
        why,
    })
}

fn linkerd_edge(
    idx: &Index<'_>,
    opts: &Options,
    w: &Workload<'_>,
    cport: i64,
    cport_name: &str,
    http: Option<(&str, &str)>,
    plan: &mut Plan,
) -> Option<Edge> {
    let ns_ann = idx.namespace_annotations(w.namespace);
    let (injected, inject_why) = linkerd_inject::injected(w.namespace, ns_ann, w);
    let (policy, policy_why) = default_policy::policy_for(w.namespace, ns_ann, w, opts);
    let mut why = vec![inject_why];
    if !injected {
        if default_policy::requires_identity(&policy) {
            plan.findings
                .push(super::findings::not_injected_under_strict(w, &policy_why));
        }
        why.push("not injected: probed in plaintext, as it is".to_owned());
        return Some(Edge {
            mode: "plaintext",
            expect: "success",
            verify_strict: false,
            linkerd_header: false,
            why,
        });
    }
    let (_, src_ns, src_sa) = source_parts(opts);
    let client = Client {
        identity: (!opts.unmeshed)
            .then(|| linkerd::identity_name(&src_sa, &src_ns, &opts.trust_domain)),
        service_account: src_sa,
        namespace: src_ns,
    };
    let verdict = match server::server_for(idx, w, cport, cport_name) {
        Some(s) => server::evaluate(idx, s, &client, http, http.is_some()),
        None => default_policy::admits(
            &policy,
            &client,
            &format!("{policy_why} (no Server selects port {cport})"),
        ),
    };
    let expect = match verdict {
        linkerd::Verdict::Allow(by) => {
            why.push(by);
            "success"
        }
        linkerd::Verdict::Deny(by, others_listed) => {
            if others_listed {
                plan.findings
                    .push(super::findings::linkerd_health_path_denied(&by, w, http));
            }
            why.push(by);
            "reject"
        }
        linkerd::Verdict::Unsupported(object, detail) => {
            plan.findings
                .push(super::findings::unsupported(&object, &detail));
            return None;
        }
    };
    if http.is_none() && expect == "success" && !opts.unmeshed {
        why.push(
            "note: no HTTP request: a TCP connect to the prober's own proxy proves little; a \
             readinessProbe.httpGet on this port would give an HTTP check"
                .to_owned(),
        );
    }
    if opts.unmeshed {
        why.push("--unmeshed: plaintext from outside the mesh".to_owned());
    } else {
        why.push(
            "plaintext through the prober's own linkerd-proxy, which upgrades it to mTLS"
                .to_owned(),
        );
    }
    Some(Edge {
        mode: "plaintext",
        expect,
        verify_strict: false,
        linkerd_header: !opts.unmeshed,
        why,
    })
}
