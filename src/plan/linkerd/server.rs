//! `Server` and what authorizes traffic to it (Linkerd docs, "Authorization Policy"):
//! a Server selects pods (`podSelector`) and one port (a number or a container port
//! name). Traffic to a port no Server selects follows the default policy; traffic to a
//! Server needs an authorization: an `AuthorizationPolicy` whose `targetRef` is the
//! Server, its Namespace, or an `HTTPRoute` of the Server that the request matches
//! (every `requiredAuthenticationRefs` satisfied), or a `ServerAuthorization`
//! selecting the Server; else the Server's `accessPolicy` (default `deny`) decides.
//! The proxy authorizes the pod's probe paths for everyone unless an HTTPRoute covers
//! them ("Probes and authorization").

use super::{Client, Verdict, authn, default_policy};
use crate::plan::index::{Index, Workload, object_name};
use crate::plan::istio::authz::Tri;
use crate::plan::objects::{HttpRoute, IntOrString, Server};

/// The request: `Some((method, path))` for HTTP, `None` for a TCP probe.
pub type Http<'a> = Option<(&'a str, &'a str)>;

/// The Server selecting `w`'s container `port` (named `port_name`), the oldest if
/// several do.
pub fn server_for<'a>(
    idx: &Index<'a>,
    w: &Workload<'_>,
    port: i64,
    port_name: &str,
) -> Option<&'a Server> {
    let mut found: Vec<&Server> = idx
        .loaded
        .servers
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.metadata.namespace == w.namespace)
        .filter(|s| {
            s.spec
                .pod_selector
                .as_ref()
                .is_some_and(|sel| sel.matches(w.labels) == Some(true))
        })
        .filter(|s| match &s.spec.port {
            Some(IntOrString::Int(p)) => *p == port,
            Some(IntOrString::Str(n)) => !port_name.is_empty() && n == port_name,
            None => false,
        })
        .collect();
    found.sort_by(|a, b| {
        (&a.metadata.creation_timestamp, &a.metadata.name)
            .cmp(&(&b.metadata.creation_timestamp, &b.metadata.name))
    });
    found.first().copied()
}

fn routes_of<'a>(idx: &Index<'a>, server: &Server) -> Vec<&'a HttpRoute> {
    idx.loaded
        .http_routes
        .iter()
        .map(|(_, r)| r)
        .filter(|r| {
            r.metadata.namespace == server.metadata.namespace
                && r.spec
                    .parent_refs
                    .iter()
                    .any(|p| p.kind == "Server" && p.name == server.metadata.name)
        })
        .collect()
}

/// Whether an HTTPRoute matches the request (path Exact / PathPrefix, method).
pub fn route_matches(route: &HttpRoute, http: Http<'_>) -> Tri {
    let Some((method, path)) = http else {
        return Tri::No;
    };
    let mut unknown = None;
    for rule in &route.spec.rules {
        if rule.matches.is_empty() {
            return Tri::Yes;
        }
        for m in &rule.matches {
            if m.headers.is_some() || m.query_params.is_some() {
                unknown = Some("an HTTPRoute header or query match".to_owned());
                continue;
            }
            let method_ok = m
                .method
                .as_deref()
                .is_none_or(|x| x.eq_ignore_ascii_case(method));
            let path_ok = match &m.path {
                None => Tri::Yes,
                Some(p) => {
                    let value = if p.value.is_empty() {
                        "/"
                    } else {
                        p.value.as_str()
                    };
                    match p.type_.as_str() {
                        "Exact" => Tri::from_bool(path == value),
                        "" | "PathPrefix" => Tri::from_bool(
                            path == value
                                || path.starts_with(&format!("{}/", value.trim_end_matches('/')))
                                || value == "/",
                        ),
                        other => Tri::Unknown(format!("HTTPRoute path match type {other}")),
                    }
                }
            };
            match (method_ok, path_ok) {
                (true, Tri::Yes) => return Tri::Yes,
                (true, Tri::Unknown(w)) => unknown = Some(w),
                _ => {}
            }
        }
    }
    unknown.map_or(Tri::No, Tri::Unknown)
}

/// The verdict for `client`'s request to `server` of workload `w`; `probe_path`: the
/// request is to one of the pod's own probe paths.
pub fn evaluate(
    idx: &Index<'_>,
    server: &Server,
    client: &Client,
    http: Http<'_>,
    probe_path: bool,
) -> Verdict {
    let ns = server.metadata.namespace.as_str();
    let server_name = object_name("Server", &server.metadata);
    let routes = routes_of(idx, server);
    let matching_routes: Vec<&HttpRoute> = routes
        .iter()
        .copied()
        .filter(|r| route_matches(r, http) == Tri::Yes)
        .collect();
    if probe_path && matching_routes.is_empty() {
        return Verdict::Allow(format!(
            "{server_name}: the pod's probe path is authorized for every client (no HTTPRoute covers it)"
        ));
    }
    let mut unknown: Option<(String, String)> = None;
    let mut others_listed = false;
    // AuthorizationPolicies on the Server, its Namespace, or a matching route.
    for (_, ap) in &idx.loaded.linkerd_authz {
        if ap.metadata.namespace != ns {
            continue;
        }
        let t = &ap.spec.target_ref;
        let applies = match t.kind.as_str() {
            "Server" => t.name == server.metadata.name,
            "Namespace" => t.name == ns,
            "HTTPRoute" => matching_routes.iter().any(|r| r.metadata.name == t.name),
            _ => false,
        };
        if !applies {
            continue;
        }
        let ap_name = object_name("AuthorizationPolicy", &ap.metadata);
        let results = ap.spec.required_authentication_refs.iter().map(|r| {
            let r_ns = if r.namespace.is_empty() {
                ns
            } else {
                r.namespace.as_str()
            };
            match r.kind.as_str() {
                "MeshTLSAuthentication" => idx
                    .loaded
                    .mesh_tls
                    .iter()
                    .find(|(_, m)| m.metadata.name == r.name && m.metadata.namespace == r_ns)
                    .map_or(
                        Tri::Unknown(format!(
                            "MeshTLSAuthentication {r_ns}/{} is not in the input",
                            r.name
                        )),
                        |(_, m)| authn::mesh_tls(&m.spec, r_ns, client),
                    ),
                "NetworkAuthentication" => idx
                    .loaded
                    .network_authn
                    .iter()
                    .find(|(_, m)| m.metadata.name == r.name && m.metadata.namespace == r_ns)
                    .map_or(
                        Tri::Unknown(format!(
                            "NetworkAuthentication {r_ns}/{} is not in the input",
                            r.name
                        )),
                        |(_, m)| authn::networks(&m.spec.networks),
                    ),
                "ServiceAccount" => Tri::from_bool(
                    client.identity.is_some()
                        && r.name == client.service_account
                        && r_ns == client.namespace,
                ),
                other => Tri::Unknown(format!("requiredAuthenticationRefs kind {other:?}")),
            }
        });
        match all(results) {
            Tri::Yes => return Verdict::Allow(format!("{ap_name}: authorizes the prober")),
            Tri::Unknown(w) => unknown = unknown.or(Some((ap_name, w))),
            Tri::No => others_listed = true,
        }
    }
    for (_, sa) in &idx.loaded.server_authz {
        if sa.metadata.namespace != ns {
            continue;
        }
        let by_name = sa.spec.server.name == server.metadata.name;
        let by_selector = sa
            .spec
            .server
            .selector
            .as_ref()
            .is_some_and(|s| s.matches(&server.metadata.labels) == Some(true));
        if !by_name && !by_selector {
            continue;
        }
        let sa_name = object_name("ServerAuthorization", &sa.metadata);
        match authn::server_authz_client(&sa.spec.client, ns, client) {
            Tri::Yes => return Verdict::Allow(format!("{sa_name}: authorizes the prober")),
            Tri::Unknown(w) => unknown = unknown.or(Some((sa_name, w))),
            Tri::No => others_listed = true,
        }
    }
    if let Some((object, why)) = unknown {
        return Verdict::Unsupported(
            object,
            format!("whether it authorizes the prober depends on {why}"),
        );
    }
    let access = if server.spec.access_policy.is_empty() {
        "deny"
    } else {
        server.spec.access_policy.as_str()
    };
    match default_policy::admits(
        access,
        client,
        &format!("{server_name}: accessPolicy {access}"),
    ) {
        Verdict::Deny(why, _) => {
            let why = if others_listed {
                format!("{server_name}: its authorizations do not include the prober")
            } else {
                format!("{why}: no authorization for the prober")
            };
            Verdict::Deny(why, others_listed)
        }
        v => v,
    }
}

fn all(items: impl Iterator<Item = Tri>) -> Tri {
    let mut unknown = None;
    for t in items {
        match t {
            Tri::No => return Tri::No,
            Tri::Unknown(w) => unknown = unknown.or(Some(w)),
            Tri::Yes => {}
        }
    }
    unknown.map_or(Tri::Yes, Tri::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::load::{Loaded, load_text};

    const BASE: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: emojivoto}\nspec:\n  template:\n    metadata: {labels: {app: web-svc}}\n    spec: {containers: [{name: web, ports: [{name: http, containerPort: 8080}]}]}\n---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: web-http, namespace: emojivoto}\nspec: {podSelector: {matchLabels: {app: web-svc}}, port: http}\n";

    fn verdict(extra: &str, client: &Client, http: Http<'_>, probe: bool) -> &'static str {
        let mut loaded = Loaded::default();
        load_text(&format!("{BASE}{extra}"), "t.yaml", &mut loaded).unwrap();
        let idx = Index::build(&loaded);
        let w = &idx.workloads_in("emojivoto")[0];
        let s = server_for(&idx, w, 8080, "http").expect("server by port name");
        match evaluate(&idx, s, client, http, probe) {
            Verdict::Allow(_) => "allow",
            Verdict::Deny(_, true) => "deny-others",
            Verdict::Deny(_, false) => "deny",
            Verdict::Unsupported(..) => "unsupported",
        }
    }

    fn prober() -> Client {
        Client {
            identity: Some(
                "mtls-prober.monitoring.serviceaccount.identity.linkerd.cluster.local".into(),
            ),
            service_account: "mtls-prober".into(),
            namespace: "monitoring".into(),
        }
    }

    const AP: &str = "---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: web-authz, namespace: emojivoto}\nspec:\n  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}\n  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: web-clients}]\n";

    fn mtls(ids: &str) -> String {
        format!(
            "---\napiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\nmetadata: {{name: web-clients, namespace: emojivoto}}\nspec: {{identities: [{ids}]}}\n"
        )
    }

    /// Rows from Linkerd's "Authorization Policy" reference and the emojivoto
    /// "Restricting access to services" task.
    #[test]
    fn server_table() {
        let get = Some(("GET", "/api/list"));
        let rows: Vec<(String, Http<'_>, bool, &str)> = vec![
            // A Server with no authorization denies (accessPolicy default deny).
            (String::new(), get, false, "deny"),
            // ...but the pod's probe path passes.
            (String::new(), Some(("GET", "/ping")), true, "allow"),
            // MeshTLSAuthentication naming the prober, or others only.
            (format!("{AP}{}", mtls("'*.monitoring.serviceaccount.identity.linkerd.cluster.local'")), get, false, "allow"),
            (format!("{AP}{}", mtls("'vote-bot.emojivoto.serviceaccount.identity.linkerd.cluster.local'")), get, false, "deny-others"),
            // An authentication not in the input cannot be decided.
            (AP.to_owned(), get, false, "unsupported"),
            // accessPolicy all-unauthenticated admits anyone.
            ("---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: web-http, namespace: emojivoto}\nspec: {podSelector: {matchLabels: {app: web-svc}}, port: 8080, accessPolicy: all-unauthenticated}\n".replace("web-http", "a-web"), get, false, "allow"),
            // An HTTPRoute covering the probe path takes the probe exemption away.
            ("---\napiVersion: policy.linkerd.io/v1beta3\nkind: HTTPRoute\nmetadata: {name: ping, namespace: emojivoto}\nspec: {parentRefs: [{group: policy.linkerd.io, kind: Server, name: web-http}], rules: [{matches: [{path: {type: Exact, value: /ping}}]}]}\n".to_owned(), Some(("GET", "/ping")), true, "deny"),
            // An AuthorizationPolicy on that route authorizes it.
            ("---\napiVersion: policy.linkerd.io/v1beta3\nkind: HTTPRoute\nmetadata: {name: ping, namespace: emojivoto}\nspec: {parentRefs: [{group: policy.linkerd.io, kind: Server, name: web-http}], rules: [{matches: [{path: {value: /ping}}]}]}\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: ping-ok, namespace: emojivoto}\nspec: {targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: ping}, requiredAuthenticationRefs: []}\n".to_owned(), Some(("GET", "/ping")), true, "allow"),
            // ServerAuthorization (the older API).
            ("---\napiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {name: web-public, namespace: emojivoto}\nspec: {server: {name: web-http}, client: {unauthenticated: true}}\n".to_owned(), get, false, "allow"),
            ("---\napiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {name: web-sa, namespace: emojivoto}\nspec: {server: {name: web-http}, client: {meshTLS: {serviceAccounts: [{name: mtls-prober, namespace: monitoring}]}}}\n".to_owned(), get, false, "allow"),
        ];
        for (i, (extra, http, probe, want)) in rows.iter().enumerate() {
            assert_eq!(verdict(extra, &prober(), *http, *probe), *want, "row {i}");
        }
        // Unmeshed: a MeshTLSAuthentication never admits it.
        let unmeshed = Client {
            identity: None,
            ..prober()
        };
        assert_eq!(
            verdict(&format!("{AP}{}", mtls("'*'")), &unmeshed, get, false),
            "deny-others"
        );
    }
}
