//! `MeshTLSAuthentication`, `NetworkAuthentication` and the client of a
//! `ServerAuthorization`: does the prober satisfy them? (Linkerd docs, "Authorization
//! Policy" reference.) `identities` may use `*` for any identity or as the first label
//! (`*.ns.serviceaccount.identity.linkerd.cluster.local`); `identityRefs` name
//! ServiceAccounts (namespace default: the authentication's) or a Namespace. Networks
//! are matched only when they cover every address (`0.0.0.0/0`, `::/0`): the prober's
//! own address is not known when planning.

use super::Client;
use crate::plan::istio::authz::Tri;
use crate::plan::objects::{MeshTlsSpec, Network, ObjectRef, ServerAuthzClient};

fn identity_matches(pattern: &str, identity: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => identity
            .split_once('.')
            .is_some_and(|(_, rest)| rest == suffix),
        None => pattern == identity,
    }
}

fn sa_ref_matches(r: &ObjectRef, default_ns: &str, client: &Client) -> bool {
    let ns = if r.namespace.is_empty() {
        default_ns
    } else {
        &r.namespace
    };
    match r.kind.as_str() {
        "ServiceAccount" => {
            (r.name == "*" || r.name == client.service_account) && ns == client.namespace
        }
        "Namespace" => r.name == client.namespace,
        _ => false,
    }
}

/// A MeshTLSAuthentication in namespace `ns`.
pub fn mesh_tls(spec: &MeshTlsSpec, ns: &str, client: &Client) -> Tri {
    let Some(id) = &client.identity else {
        return Tri::No;
    };
    let by_identity = spec.identities.iter().any(|p| identity_matches(p, id));
    let by_ref = spec
        .identity_refs
        .iter()
        .any(|r| sa_ref_matches(r, ns, client));
    if let Some(r) = spec
        .identity_refs
        .iter()
        .find(|r| !matches!(r.kind.as_str(), "ServiceAccount" | "Namespace"))
        && !by_identity
        && !by_ref
    {
        return Tri::Unknown(format!("identityRefs kind {:?}", r.kind));
    }
    if by_identity || by_ref {
        Tri::Yes
    } else {
        Tri::No
    }
}

/// Networks: any one covering every address matches; otherwise unknown.
pub fn networks(nets: &[Network]) -> Tri {
    if nets
        .iter()
        .any(|n| matches!(n.cidr.as_str(), "0.0.0.0/0" | "::/0") && n.except.is_empty())
    {
        Tri::Yes
    } else {
        Tri::Unknown("networks (the prober's address is not known when planning)".to_owned())
    }
}

/// The `client` of a ServerAuthorization.
pub fn server_authz_client(c: &ServerAuthzClient, ns: &str, client: &Client) -> Tri {
    let net = if c.networks.is_empty() {
        Tri::Yes
    } else {
        networks(&c.networks)
    };
    let who = if c.unauthenticated {
        Tri::Yes
    } else if let Some(m) = &c.mesh_tls {
        match &client.identity {
            None => Tri::No,
            Some(_) if m.unauthenticated_tls => Tri::Yes,
            Some(id) => {
                let ok = m.identities.iter().any(|p| identity_matches(p, id))
                    || m.service_accounts.iter().any(|r| {
                        let r = ObjectRef {
                            kind: "ServiceAccount".into(),
                            ..r.clone()
                        };
                        sa_ref_matches(&r, ns, client)
                    });
                if ok { Tri::Yes } else { Tri::No }
            }
        }
    } else {
        Tri::No
    };
    match (who, net) {
        (Tri::No, _) | (_, Tri::No) => Tri::No,
        (Tri::Yes, Tri::Yes) => Tri::Yes,
        (Tri::Unknown(w), _) | (_, Tri::Unknown(w)) => Tri::Unknown(w),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prober() -> Client {
        Client {
            identity: Some(
                "mtls-prober.monitoring.serviceaccount.identity.linkerd.cluster.local".into(),
            ),
            service_account: "mtls-prober".into(),
            namespace: "monitoring".into(),
        }
    }

    /// MeshTLSAuthentication rows (Linkerd "Authorization Policy" reference).
    #[test]
    fn mesh_tls_table() {
        let rows: &[(&str, Tri)] = &[
            ("identities: ['*']", Tri::Yes),
            (
                "identities: ['*.monitoring.serviceaccount.identity.linkerd.cluster.local']",
                Tri::Yes,
            ),
            (
                "identities: ['*.emojivoto.serviceaccount.identity.linkerd.cluster.local']",
                Tri::No,
            ),
            (
                "identities: [web.emojivoto.serviceaccount.identity.linkerd.cluster.local]",
                Tri::No,
            ),
            (
                "identityRefs: [{kind: ServiceAccount, name: mtls-prober, namespace: monitoring}]",
                Tri::Yes,
            ),
            // The namespace of a ref defaults to the authentication's own.
            (
                "identityRefs: [{kind: ServiceAccount, name: mtls-prober}]",
                Tri::No,
            ),
            (
                "identityRefs: [{kind: Namespace, name: monitoring}]",
                Tri::Yes,
            ),
        ];
        for (spec, want) in rows {
            let spec: MeshTlsSpec = serde_yaml_ng::from_str(&format!("{{{spec}}}")).unwrap();
            assert_eq!(&mesh_tls(&spec, "emojivoto", &prober()), want, "{spec:?}");
        }
        let unmeshed = Client {
            identity: None,
            ..prober()
        };
        let spec: MeshTlsSpec = serde_yaml_ng::from_str("{identities: ['*']}").unwrap();
        assert_eq!(mesh_tls(&spec, "emojivoto", &unmeshed), Tri::No);
    }

    #[test]
    fn network_table() {
        let n = |c: &str| Network {
            cidr: c.into(),
            except: Vec::new(),
        };
        assert_eq!(networks(&[n("0.0.0.0/0"), n("::/0")]), Tri::Yes);
        assert!(matches!(networks(&[n("10.0.0.0/8")]), Tri::Unknown(_)));
    }
}
