//! AuthorizationPolicy: would the sidecar let the prober's request through?
//!
//! Istio reference, "Authorization Policy" and the concept page: CUSTOM policies are
//! checked first, then DENY, then ALLOW; a request matching a DENY is denied; if any
//! ALLOW policy applies to the workload, the request must match one of their rules,
//! so an ALLOW policy that selects the workload and matches nothing (no rules, or
//! rules for others) denies. `from` entries, `to` entries and the values of a field are
//! alternatives (OR); the fields of a source or operation and the `when` conditions
//! must all hold (AND); `not*` fields must match none. Strings match exactly, by
//! prefix (`abc*`), by suffix (`*abc`) or `*` (present). A policy in the root namespace
//! applies in every namespace. For TCP traffic (our TLS-only probes) the HTTP-only
//! fields never match in an ALLOW rule and are ignored in a DENY rule ("Authorization
//! for TCP traffic").
//!
//! Matching is three-valued: a field `plan` cannot know (`ipBlocks`, most `when` keys,
//! path templates) is `Unknown`, and an outcome that depends on it is an `unsupported`
//! finding instead of a guess.

use super::Port;
use crate::plan::Options;
use crate::plan::index::{Index, Workload, object_name};
use crate::plan::objects::{Condition, IstioAuthorizationPolicy, Operation, Rule, SourceMatch};

/// The prober's request as the sidecar sees it.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The peer principal (`cluster.local/ns/monitoring/sa/mtls-prober`); `None` for
    /// a plaintext request.
    pub principal: Option<&'a str>,
    /// The source namespace (with `principal`).
    pub namespace: Option<&'a str>,
    /// `Some((method, path))` for an HTTP request; `None` for a TLS-only probe.
    pub http: Option<(&'a str, &'a str)>,
    /// The destination (container) port.
    pub port: Port,
    /// The Host header (the Service's name).
    pub host: &'a str,
}

/// Three-valued match.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Tri {
    /// Matches.
    Yes,
    /// Does not match.
    No,
    /// Cannot be decided; why.
    Unknown(String),
}

impl Tri {
    /// `Yes` when `b`.
    pub fn from_bool(b: bool) -> Self {
        if b { Self::Yes } else { Self::No }
    }

    /// All must hold.
    fn all(items: impl IntoIterator<Item = Self>) -> Self {
        let mut unknown = None;
        for t in items {
            match t {
                Self::No => return Self::No,
                Self::Unknown(w) => unknown = unknown.or(Some(w)),
                Self::Yes => {}
            }
        }
        unknown.map_or(Self::Yes, Self::Unknown)
    }

    /// One must hold.
    fn any(items: impl IntoIterator<Item = Self>) -> Self {
        let mut unknown = None;
        for t in items {
            match t {
                Self::Yes => return Self::Yes,
                Self::Unknown(w) => unknown = unknown.or(Some(w)),
                Self::No => {}
            }
        }
        unknown.map_or(Self::No, Self::Unknown)
    }
}

/// The verdict for one request.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Verdict {
    /// Let through; the deciding policy, if one decided.
    Allow(Option<String>),
    /// Denied by a DENY rule that matches the prober: deliberate.
    DeniedExplicitly(String),
    /// Denied because ALLOW policies apply and none matches: `health_path_denied`.
    DeniedByAllowList(String),
    /// Cannot be decided: (object, why).
    Unsupported(String, String),
}

/// Istio's string match: exact, `prefix*`, `*suffix`, or `*` (any non-empty value).
pub fn str_match(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        return !value.is_empty();
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return value.starts_with(prefix);
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return value.ends_with(suffix);
    }
    pattern == value
}

/// A field with values and not-values: `values` empty = not set.
fn field(
    values: &[String],
    not_values: &[String],
    value: Option<&str>,
    m: fn(&str, &str) -> bool,
) -> Tri {
    let pos = if values.is_empty() {
        Tri::Yes
    } else {
        Tri::from_bool(value.is_some_and(|v| values.iter().any(|p| m(p, v))))
    };
    let neg = if not_values.is_empty() {
        Tri::Yes
    } else {
        Tri::from_bool(!value.is_some_and(|v| not_values.iter().any(|p| m(p, v))))
    };
    Tri::all([pos, neg])
}

fn path_match(pattern: &str, path: &str) -> Tri {
    if pattern.contains('{') {
        return Tri::Unknown(format!("path template {pattern:?}"));
    }
    Tri::from_bool(str_match(pattern, path))
}

fn source(s: &SourceMatch, r: &Request<'_>, deny: bool) -> Tri {
    let sa = r.principal.map(|p| {
        p.rsplit_once("/ns/")
            .map_or(p, |(_, rest)| rest)
            .replacen("/sa/", "/", 1)
    });
    let mut parts = vec![
        field(&s.principals, &s.not_principals, r.principal, str_match),
        field(&s.namespaces, &s.not_namespaces, r.namespace, str_match),
        field(
            &s.service_accounts,
            &s.not_service_accounts,
            sa.as_deref(),
            str_match,
        ),
    ];
    // The prober sends no JWT: requestPrincipals never match, notRequestPrincipals
    // always do. They are HTTP-only.
    if !s.request_principals.is_empty() {
        parts.push(http_only(r, deny, Tri::No));
    }
    for (name, set) in [
        ("ipBlocks", &s.ip_blocks),
        ("notIpBlocks", &s.not_ip_blocks),
        ("remoteIpBlocks", &s.remote_ip_blocks),
        ("notRemoteIpBlocks", &s.not_remote_ip_blocks),
    ] {
        if !set.is_empty() {
            parts.push(Tri::Unknown(format!(
                "source.{name} (the prober's address is not known when planning)"
            )));
        }
    }
    Tri::all(parts)
}

/// An HTTP-only field on a TLS-only probe: never matches in ALLOW, ignored in DENY.
fn http_only(r: &Request<'_>, deny: bool, when_http: Tri) -> Tri {
    match (r.http, deny) {
        (Some(_), _) => when_http,
        (None, true) => Tri::Yes,
        (None, false) => Tri::No,
    }
}

fn operation(o: &Operation, r: &Request<'_>, deny: bool) -> Tri {
    let port = r.port.to_string();
    let mut parts = vec![field(&o.ports, &o.not_ports, Some(&port), |a, b| a == b)];
    if !o.hosts.is_empty() || !o.not_hosts.is_empty() {
        let host = field(&o.hosts, &o.not_hosts, Some(r.host), |p, v| {
            str_match(&p.to_ascii_lowercase(), &v.to_ascii_lowercase())
        });
        parts.push(http_only(r, deny, host));
    }
    if !o.methods.is_empty() || !o.not_methods.is_empty() {
        let m = r.http.map(|(m, _)| m);
        parts.push(http_only(
            r,
            deny,
            field(&o.methods, &o.not_methods, m, str_match),
        ));
    }
    if !o.paths.is_empty() || !o.not_paths.is_empty() {
        let p = match r.http {
            Some((_, path)) => {
                let path = path.split('?').next().unwrap_or(path);
                let pos = if o.paths.is_empty() {
                    Tri::Yes
                } else {
                    Tri::any(o.paths.iter().map(|pat| path_match(pat, path)))
                };
                let neg = match Tri::any(o.not_paths.iter().map(|pat| path_match(pat, path))) {
                    Tri::Yes => Tri::No,
                    Tri::No => Tri::Yes,
                    u => u,
                };
                Tri::all([pos, neg])
            }
            None => Tri::No,
        };
        parts.push(http_only(r, deny, p));
    }
    Tri::all(parts)
}

fn condition(c: &Condition, r: &Request<'_>, deny: bool) -> Tri {
    let port = r.port.to_string();
    let value: Option<&str> = match c.key.as_str() {
        "source.principal" => r.principal,
        "source.namespace" => r.namespace,
        "destination.port" => Some(&port),
        k if k.starts_with("request.auth.") => {
            // No JWT: a condition on its claims cannot hold; `notValues` alone would.
            let t = if c.values.is_empty() {
                Tri::Yes
            } else {
                Tri::No
            };
            return http_only(r, deny, t);
        }
        k => {
            return Tri::Unknown(format!("when key {k:?} (not known when planning)"));
        }
    };
    field(&c.values, &c.not_values, value, str_match)
}

/// Whether `rule` matches the request (`deny`: inside a DENY policy).
pub fn rule_matches(rule: &Rule, r: &Request<'_>, deny: bool) -> Tri {
    let from = if rule.from.is_empty() {
        Tri::Yes
    } else {
        Tri::any(rule.from.iter().map(|f| source(&f.source, r, deny)))
    };
    let to = if rule.to.is_empty() {
        Tri::Yes
    } else {
        Tri::any(rule.to.iter().map(|t| operation(&t.operation, r, deny)))
    };
    let when = Tri::all(rule.when.iter().map(|c| condition(c, r, deny)));
    Tri::all([from, to, when])
}

fn policy_matches(p: &IstioAuthorizationPolicy, r: &Request<'_>, deny: bool) -> Tri {
    Tri::any(p.spec.rules.iter().map(|rule| rule_matches(rule, r, deny)))
}

/// The policies that apply to `w`'s sidecar: its namespace's and the root namespace's,
/// selecting it (or without a selector); `targetRef(s)` policies apply to gateways
/// and waypoints, not to sidecars.
pub fn applicable<'a>(
    idx: &Index<'a>,
    opts: &Options,
    w: &Workload<'_>,
) -> Vec<&'a IstioAuthorizationPolicy> {
    idx.loaded
        .istio_authz
        .iter()
        .map(|(_, p)| p)
        .filter(|p| {
            let ns = p.metadata.namespace.as_str();
            (ns == w.namespace || ns == opts.istio_root_namespace)
                && p.spec.target_ref.is_none()
                && p.spec.target_refs.is_none()
                && p.spec.selector.as_ref().is_none_or(|s| {
                    s.match_labels
                        .iter()
                        .all(|(k, v)| w.labels.get(k) == Some(v))
                })
        })
        .collect()
}

/// CUSTOM → DENY → ALLOW for one request against `policies`.
pub fn evaluate(policies: &[&IstioAuthorizationPolicy], r: &Request<'_>) -> Verdict {
    let name = |p: &IstioAuthorizationPolicy| object_name("AuthorizationPolicy", &p.metadata);
    let action = |p: &IstioAuthorizationPolicy| {
        if p.spec.action.is_empty() {
            "ALLOW".to_owned()
        } else {
            p.spec.action.to_ascii_uppercase()
        }
    };
    for p in policies.iter().filter(|p| action(p) == "CUSTOM") {
        match policy_matches(p, r, true) {
            Tri::No => {}
            Tri::Yes | Tri::Unknown(_) => {
                return Verdict::Unsupported(
                    name(p),
                    "a CUSTOM policy sends the request to an external authorizer, whose \
                     answer cannot be planned"
                        .to_owned(),
                );
            }
        }
    }
    for p in policies.iter().filter(|p| action(p) == "DENY") {
        match policy_matches(p, r, true) {
            Tri::Yes => {
                return Verdict::DeniedExplicitly(format!("{}: DENY matches the prober", name(p)));
            }
            Tri::Unknown(why) => {
                return Verdict::Unsupported(name(p), format!("its DENY rule depends on {why}"));
            }
            Tri::No => {}
        }
    }
    let allows: Vec<_> = policies.iter().filter(|p| action(p) == "ALLOW").collect();
    if allows.is_empty() {
        return Verdict::Allow(None);
    }
    let mut unknown = None;
    for p in &allows {
        match policy_matches(p, r, false) {
            Tri::Yes => {
                return Verdict::Allow(Some(format!("{}: ALLOW matches the prober", name(p))));
            }
            Tri::Unknown(why) => unknown = unknown.or(Some((name(p), why))),
            Tri::No => {}
        }
    }
    match unknown {
        Some((object, why)) => Verdict::Unsupported(
            object,
            format!("whether its ALLOW rule matches depends on {why}"),
        ),
        // The object to change: the most specific ALLOW policy (one with a selector).
        None => {
            let specific = allows
                .iter()
                .find(|p| {
                    p.spec
                        .selector
                        .as_ref()
                        .is_some_and(|s| !s.match_labels.is_empty())
                })
                .unwrap_or(&allows[0]);
            Verdict::DeniedByAllowList(name(specific))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::objects::IstioAuthorizationPolicy;

    const PROBER: &str = "cluster.local/ns/monitoring/sa/mtls-prober";

    fn policy(yaml: &str) -> IstioAuthorizationPolicy {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn req(http: Option<(&'static str, &'static str)>) -> Request<'static> {
        Request {
            principal: Some(PROBER),
            namespace: Some("monitoring"),
            http,
            port: 9080,
            host: "productpage.default.svc.cluster.local",
        }
    }

    fn verdict(policies: &[&str], r: &Request<'_>) -> Verdict {
        let ps: Vec<_> = policies.iter().map(|y| policy(y)).collect();
        let refs: Vec<_> = ps.iter().collect();
        evaluate(&refs, r)
    }

    fn kind(v: &Verdict) -> &'static str {
        match v {
            Verdict::Allow(_) => "allow",
            Verdict::DeniedExplicitly(_) => "deny",
            Verdict::DeniedByAllowList(_) => "allow-list",
            Verdict::Unsupported(..) => "unsupported",
        }
    }

    /// Rows from the AuthorizationPolicy reference and the "Authorization on HTTP
    /// traffic", "Explicit Deny" and "TCP traffic" tasks.
    #[test]
    fn authorization_table() {
        let get = Some(("GET", "/productpage"));
        type Row<'a> = (&'a [&'a str], Option<(&'static str, &'static str)>, &'a str);
        let rows: &[Row<'_>] = &[
            // No policy: allowed.
            (&[], get, "allow"),
            // allow-nothing (`spec: {}`): an ALLOW that matches nothing denies.
            (
                &["metadata: {name: allow-nothing, namespace: default}\nspec: {}"],
                get,
                "allow-list",
            ),
            // allow-all (`rules: [{}]`).
            (&["spec: {rules: [{}]}"], get, "allow"),
            // DENY without rules never matches.
            (&["spec: {action: DENY}"], get, "allow"),
            // Principals: exact, and an allow list for someone else.
            (
                &[&format!(
                    "spec: {{rules: [{{from: [{{source: {{principals: [\"{PROBER}\"]}}}}]}}]}}"
                )],
                get,
                "allow",
            ),
            (
                &[
                    "spec: {rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/bookinfo-productpage]}}]}]}",
                ],
                get,
                "allow-list",
            ),
            // Prefix and suffix wildcards.
            (
                &[
                    "spec: {rules: [{from: [{source: {principals: [cluster.local/ns/monitoring/*]}}]}]}",
                ],
                get,
                "allow",
            ),
            (
                &["spec: {rules: [{from: [{source: {principals: ['*/sa/mtls-prober']}}]}]}"],
                get,
                "allow",
            ),
            // Namespaces and notPrincipals.
            (
                &["spec: {rules: [{from: [{source: {namespaces: [monitoring]}}]}]}"],
                get,
                "allow",
            ),
            (
                &[&format!(
                    "spec: {{action: DENY, rules: [{{from: [{{source: {{notPrincipals: [\"{PROBER}\"]}}}}]}}]}}"
                )],
                get,
                "allow",
            ),
            (
                &["spec: {action: DENY, rules: [{from: [{source: {notNamespaces: [default]}}]}]}"],
                get,
                "deny",
            ),
            // Methods and paths: exact, prefix, suffix.
            (
                &["spec: {rules: [{to: [{operation: {methods: [GET], paths: [/productpage]}}]}]}"],
                get,
                "allow",
            ),
            (
                &["spec: {rules: [{to: [{operation: {methods: [POST]}}]}]}"],
                get,
                "allow-list",
            ),
            (
                &["spec: {rules: [{to: [{operation: {paths: ['/product*']}}]}]}"],
                get,
                "allow",
            ),
            (
                &["spec: {rules: [{to: [{operation: {paths: ['*page']}}]}]}"],
                get,
                "allow",
            ),
            (
                &["spec: {rules: [{to: [{operation: {paths: ['/api/*']}}]}]}"],
                get,
                "allow-list",
            ),
            (
                &["spec: {rules: [{to: [{operation: {notPaths: ['/productpage']}}]}]}"],
                get,
                "allow-list",
            ),
            // Ports are the workload's.
            (
                &["spec: {rules: [{to: [{operation: {ports: ['9080']}}]}]}"],
                get,
                "allow",
            ),
            (
                &["spec: {rules: [{to: [{operation: {ports: ['80']}}]}]}"],
                get,
                "allow-list",
            ),
            // DENY beats ALLOW.
            (
                &[
                    "spec: {rules: [{}]}",
                    "spec: {action: DENY, rules: [{to: [{operation: {methods: [GET]}}]}]}",
                ],
                get,
                "deny",
            ),
            // CUSTOM is decided elsewhere.
            (
                &["spec: {action: CUSTOM, provider: {name: ext}, rules: [{}]}"],
                get,
                "unsupported",
            ),
            // A `when` we can evaluate, and one we cannot.
            (
                &["spec: {rules: [{when: [{key: source.namespace, values: [monitoring]}]}]}"],
                get,
                "allow",
            ),
            (
                &["spec: {rules: [{when: [{key: 'request.headers[x-token]', values: [abc]}]}]}"],
                get,
                "unsupported",
            ),
            // ...unless another part of the rule already fails.
            (
                &[
                    "spec: {rules: [{from: [{source: {namespaces: [default]}}], when: [{key: 'request.headers[x-token]', values: [abc]}]}]}",
                ],
                get,
                "allow-list",
            ),
            (
                &["spec: {rules: [{from: [{source: {ipBlocks: [10.0.0.0/8]}}]}]}"],
                get,
                "unsupported",
            ),
            // No JWT: requestPrincipals never match.
            (
                &["spec: {rules: [{from: [{source: {requestPrincipals: ['*']}}]}]}"],
                get,
                "allow-list",
            ),
            // TCP (TLS-only probe): HTTP-only fields never match in ALLOW...
            (
                &["spec: {rules: [{to: [{operation: {methods: [GET]}}]}]}"],
                None,
                "allow-list",
            ),
            // ...and are ignored in DENY, which makes it deny.
            (
                &["spec: {action: DENY, rules: [{to: [{operation: {methods: [POST]}}]}]}"],
                None,
                "deny",
            ),
            // Path templates are not evaluated.
            (
                &["spec: {rules: [{to: [{operation: {paths: ['/{*}/page']}}]}]}"],
                get,
                "unsupported",
            ),
        ];
        for (i, (policies, http, want)) in rows.iter().enumerate() {
            let v = verdict(policies, &req(*http));
            assert_eq!(kind(&v), *want, "row {i}: {v:?}");
        }
    }

    #[test]
    fn plaintext_requests_have_no_principal() {
        let r = Request {
            principal: None,
            namespace: None,
            ..req(Some(("GET", "/")))
        };
        let v = verdict(
            &["spec: {rules: [{from: [{source: {principals: ['*']}}]}]}"],
            &r,
        );
        assert_eq!(kind(&v), "allow-list");
        let v = verdict(
            &["spec: {rules: [{from: [{source: {notPrincipals: ['*']}}]}]}"],
            &r,
        );
        assert_eq!(kind(&v), "allow");
    }
}
