//! Linkerd (policy.linkerd.io): Server, AuthorizationPolicy, MeshTLSAuthentication,
//! NetworkAuthentication, ServerAuthorization; HTTPRoute (also Gateway API's).

use serde::Deserialize;

use super::*;

/// `Server`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Server {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`.
    pub spec: ServerSpec,
}

/// `Server.spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerSpec {
    /// `podSelector`.
    pub pod_selector: Option<LabelSelector>,
    /// `port`: a number or a container port name.
    pub port: Option<IntOrString>,
    /// `proxyProtocol`.
    pub proxy_protocol: String,
    /// `accessPolicy` (Linkerd 2.15+): what applies to unauthorized traffic; `deny`
    /// when unset.
    pub access_policy: String,
}

/// A reference to another object (`targetRef`, `requiredAuthenticationRefs[]`,
/// `parentRefs[]`, `identityRefs[]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ObjectRef {
    /// `group`.
    pub group: String,
    /// `kind`.
    pub kind: String,
    /// `name`.
    pub name: String,
    /// `namespace` (default: the referring object's).
    pub namespace: String,
}

/// `AuthorizationPolicy` (policy.linkerd.io).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct LinkerdAuthorizationPolicy {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`.
    pub spec: LinkerdAuthzSpec,
}

/// `AuthorizationPolicy.spec` (Linkerd).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LinkerdAuthzSpec {
    /// `targetRef`: a Server, an HTTPRoute or a Namespace.
    pub target_ref: ObjectRef,
    /// `requiredAuthenticationRefs`: every one must be satisfied.
    pub required_authentication_refs: Vec<ObjectRef>,
}

/// `MeshTLSAuthentication`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct MeshTlsAuthentication {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`.
    pub spec: MeshTlsSpec,
}

/// `MeshTLSAuthentication.spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MeshTlsSpec {
    /// `identities` (Linkerd identity names, `*` allowed as a prefix label).
    pub identities: Vec<String>,
    /// `identityRefs`: ServiceAccounts, or a Namespace.
    pub identity_refs: Vec<ObjectRef>,
}

/// `NetworkAuthentication`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkAuthentication {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`.
    pub spec: NetworkAuthnSpec,
}

/// `NetworkAuthentication.spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkAuthnSpec {
    /// `networks`.
    pub networks: Vec<Network>,
}

/// One network of a NetworkAuthentication or ServerAuthorization.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Network {
    /// `cidr`.
    pub cidr: String,
    /// `except`.
    pub except: Vec<String>,
}

/// `HTTPRoute` (policy.linkerd.io or gateway.networking.k8s.io).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct HttpRoute {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`.
    pub spec: HttpRouteSpec,
}

/// `HTTPRoute.spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteSpec {
    /// `parentRefs`.
    pub parent_refs: Vec<ObjectRef>,
    /// `rules`.
    pub rules: Vec<HttpRouteRule>,
}

/// `rules[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct HttpRouteRule {
    /// `matches` (none = every request).
    pub matches: Vec<HttpRouteMatch>,
}

/// `matches[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct HttpRouteMatch {
    /// `path`.
    pub path: Option<PathMatch>,
    /// `method`.
    pub method: Option<String>,
    /// `headers` (any header match is not evaluated).
    pub headers: Option<serde::de::IgnoredAny>,
    /// `queryParams`.
    #[serde(rename = "queryParams")]
    pub query_params: Option<serde::de::IgnoredAny>,
}

/// `path` of a route match.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PathMatch {
    /// `Exact`, `PathPrefix` (default) or `RegularExpression`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `value` (default `/`).
    pub value: String,
}

/// `ServerAuthorization` (policy.linkerd.io/v1beta1, the older API).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServerAuthorization {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`.
    pub spec: ServerAuthzSpec,
}

/// `ServerAuthorization.spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServerAuthzSpec {
    /// `server`: by name or by selector.
    pub server: ServerRef,
    /// `client`.
    pub client: ServerAuthzClient,
}

/// `server` of a ServerAuthorization.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServerRef {
    /// `name`.
    pub name: String,
    /// `selector`.
    pub selector: Option<LabelSelector>,
}

/// `client` of a ServerAuthorization.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerAuthzClient {
    /// `meshTLS`.
    #[serde(rename = "meshTLS")]
    pub mesh_tls: Option<ServerAuthzMeshTls>,
    /// `unauthenticated`.
    pub unauthenticated: bool,
    /// `networks`.
    pub networks: Vec<Network>,
}

/// `client.meshTLS`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerAuthzMeshTls {
    /// `unauthenticatedTLS`.
    #[serde(rename = "unauthenticatedTLS")]
    pub unauthenticated_tls: bool,
    /// `identities`.
    pub identities: Vec<String>,
    /// `serviceAccounts`.
    pub service_accounts: Vec<ObjectRef>,
}
