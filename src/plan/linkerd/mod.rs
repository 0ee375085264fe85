//! Linkerd semantics, one file per policy kind: injection, the default inbound
//! policy, and `Server` with its authorizations (`AuthorizationPolicy`,
//! `MeshTLSAuthentication`, `NetworkAuthentication`, `HTTPRoute`, and the older
//! `ServerAuthorization`).

pub mod authn;
pub mod default_policy;
pub mod inject;
pub mod server;

/// The prober as a Linkerd client.
#[derive(Clone, Debug)]
pub struct Client {
    /// Its Linkerd identity (`sa.ns.serviceaccount.identity.linkerd.<td>`); `None`
    /// when it is outside the mesh (`--unmeshed`).
    pub identity: Option<String>,
    /// Its service account.
    pub service_account: String,
    /// Its namespace.
    pub namespace: String,
}

/// The Linkerd identity name of a service account.
pub fn identity_name(sa: &str, ns: &str, trust_domain: &str) -> String {
    format!("{sa}.{ns}.serviceaccount.identity.linkerd.{trust_domain}")
}

/// The outcome for one request.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Verdict {
    /// Authorized, and by what.
    Allow(String),
    /// Refused, and by what; `true` when a policy lists others but not the prober
    /// (`health_path_denied`).
    Deny(String, bool),
    /// Cannot be decided: (object, why).
    Unsupported(String, String),
}
