//! Partial, typed models of the Kubernetes, Istio and Linkerd objects `plan` reads:
//! only the fields it uses, every other field ignored (these are other projects' APIs
//! and they grow). Field names follow the published schemas (core/v1, apps/v1,
//! istio/api `security/v1` and `networking/v1`, Linkerd's `policy.linkerd.io` CRDs,
//! Gateway API `HTTPRoute`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// Where an object was read: the file (`-` for stdin), the document index (0-based)
/// and, inside a `kind: List`, the item index.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Source {
    /// The file as given (or found in a directory).
    pub file: String,
    /// The YAML document index within the file, from 0.
    pub doc: usize,
    /// The item index within a `List` document.
    pub item: Option<usize>,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: document {}", self.file, self.doc)?;
        if let Some(i) = self.item {
            write!(f, ", items[{i}]")?;
        }
        Ok(())
    }
}

/// `metadata`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Meta {
    /// `name`.
    pub name: String,
    /// `namespace` (empty for cluster-scoped objects and manifests that leave it out).
    pub namespace: String,
    /// `labels`.
    #[serde(deserialize_with = "string_map")]
    pub labels: BTreeMap<String, String>,
    /// `annotations`.
    #[serde(deserialize_with = "string_map")]
    pub annotations: BTreeMap<String, String>,
    /// `ownerReferences`.
    pub owner_references: Vec<OwnerRef>,
    /// `creationTimestamp` (RFC 3339; compared as text, which orders it).
    #[serde(deserialize_with = "lenient_string")]
    pub creation_timestamp: String,
}

/// One `ownerReferences` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OwnerRef {
    /// `kind`.
    pub kind: String,
    /// `name`.
    pub name: String,
}

/// A label selector: `matchLabels` and `matchExpressions`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LabelSelector {
    /// `matchLabels`.
    #[serde(deserialize_with = "string_map")]
    pub match_labels: BTreeMap<String, String>,
    /// `matchExpressions`.
    pub match_expressions: Vec<LabelExpr>,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LabelExpr {
    /// `key`.
    pub key: String,
    /// `operator`: In, NotIn, Exists, DoesNotExist.
    pub operator: String,
    /// `values`.
    #[serde(deserialize_with = "string_vec")]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether `labels` satisfy the selector (an empty selector matches everything, as
    /// Kubernetes' `metav1.LabelSelector` does). `None` for an unknown operator.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> Option<bool> {
        if !self
            .match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            return Some(false);
        }
        for e in &self.match_expressions {
            let v = labels.get(&e.key);
            let ok = match e.operator.as_str() {
                "In" => v.is_some_and(|v| e.values.contains(v)),
                "NotIn" => v.is_none_or(|v| !e.values.contains(v)),
                "Exists" => v.is_some(),
                "DoesNotExist" => v.is_none(),
                _ => return None,
            };
            if !ok {
                return Some(false);
            }
        }
        Some(true)
    }

    /// Whether the selector has no terms (matches every pod).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

/// A port given as a number or as a (container port) name.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum IntOrString {
    /// A number.
    Int(i64),
    /// A name.
    Str(String),
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Int(i64),
            Str(String),
        }
        Ok(match Either::deserialize(d)? {
            Either::Int(i) => Self::Int(i),
            // "8080" written as a string is still a number for Kubernetes.
            Either::Str(s) => match s.parse() {
                Ok(i) => Self::Int(i),
                Err(_) => Self::Str(s),
            },
        })
    }
}

impl std::fmt::Display for IntOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Int(i) => write!(f, "{i}"),
            Self::Str(s) => f.write_str(s),
        }
    }
}

// === core/v1 and apps/v1 ===

/// `Namespace`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Namespace {
    /// `metadata`.
    pub metadata: Meta,
}

/// `Service`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Service {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`.
    pub spec: ServiceSpec,
}

/// `Service.spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceSpec {
    /// `type` (`ExternalName` is skipped).
    #[serde(rename = "type")]
    pub type_: String,
    /// `clusterIP` (`None` = headless, skipped).
    #[serde(rename = "clusterIP")]
    pub cluster_ip: String,
    /// `selector`: equality on pod labels. `None` = no selector (manual Endpoints).
    #[serde(deserialize_with = "opt_string_map")]
    pub selector: Option<BTreeMap<String, String>>,
    /// `ports`.
    pub ports: Vec<ServicePort>,
}

/// One Service port.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePort {
    /// `name`.
    pub name: String,
    /// `port`.
    pub port: i64,
    /// `targetPort` (default: `port`).
    pub target_port: Option<IntOrString>,
    /// `protocol` (TCP when empty).
    pub protocol: String,
    /// `appProtocol`.
    pub app_protocol: String,
}

/// A pod template (`spec.template` of the workload kinds).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodTemplate {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`.
    pub spec: PodSpec,
}

/// `spec` of a Deployment, StatefulSet, DaemonSet, ReplicaSet or Job.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WorkloadSpec {
    /// `template`.
    pub template: PodTemplate,
}

/// Deployment, StatefulSet, DaemonSet, ReplicaSet or Job.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WorkloadObject {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`.
    pub spec: WorkloadSpec,
}

/// `Pod`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Pod {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`.
    pub spec: PodSpec,
}

/// `PodSpec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    /// `serviceAccountName`.
    pub service_account_name: String,
    /// `serviceAccount` (the deprecated spelling).
    pub service_account: String,
    /// `hostNetwork`.
    pub host_network: bool,
    /// `containers`.
    pub containers: Vec<Container>,
    /// `initContainers` (native sidecars such as `istio-proxy` may live here).
    pub init_containers: Vec<Container>,
}

/// One container.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    /// `name`.
    pub name: String,
    /// `ports`.
    pub ports: Vec<ContainerPort>,
    /// `readinessProbe`.
    pub readiness_probe: Option<Probe>,
}

/// One container port.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerPort {
    /// `name`.
    pub name: String,
    /// `containerPort`.
    pub container_port: i64,
}

/// A container probe.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Probe {
    /// `httpGet`.
    pub http_get: Option<HttpGetAction>,
    /// `grpc`.
    pub grpc: Option<GrpcAction>,
}

/// `httpGet`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpGetAction {
    /// `path` (default `/`).
    pub path: String,
    /// `port`.
    pub port: Option<IntOrString>,
    /// `scheme` (HTTP or HTTPS).
    pub scheme: String,
}

/// `grpc`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcAction {
    /// `port`.
    pub port: i64,
    /// `service`.
    pub service: Option<String>,
}

// === Istio ===

/// A `selector` of Istio policies: `matchLabels` only.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadSelector {
    /// `matchLabels`.
    #[serde(deserialize_with = "string_map")]
    pub match_labels: BTreeMap<String, String>,
}

/// `PeerAuthentication` (security.istio.io).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PeerAuthentication {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`.
    pub spec: PeerAuthenticationSpec,
}

/// `PeerAuthentication.spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PeerAuthenticationSpec {
    /// `selector`.
    pub selector: Option<WorkloadSelector>,
    /// `mtls`.
    pub mtls: Option<MtlsSetting>,
    /// `portLevelMtls`, keyed by the container (target) port.
    #[serde(deserialize_with = "scalar_key_map")]
    pub port_level_mtls: BTreeMap<String, MtlsSetting>,
}

/// `{mode: ...}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct MtlsSetting {
    /// `UNSET`, `DISABLE`, `PERMISSIVE` or `STRICT`.
    pub mode: String,
}

/// `AuthorizationPolicy` (security.istio.io).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct IstioAuthorizationPolicy {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`.
    pub spec: IstioAuthzSpec,
}

/// `AuthorizationPolicy.spec` (Istio).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IstioAuthzSpec {
    /// `selector`.
    pub selector: Option<WorkloadSelector>,
    /// `targetRef` / `targetRefs`: the policy applies to a gateway or waypoint, not
    /// to sidecars.
    pub target_ref: Option<serde::de::IgnoredAny>,
    /// `targetRefs`.
    pub target_refs: Option<serde::de::IgnoredAny>,
    /// `action`: ALLOW (default), DENY, AUDIT, CUSTOM.
    pub action: String,
    /// `rules`; `None` and `[]` both mean "no rule" (an ALLOW then denies all).
    pub rules: Vec<Rule>,
}

/// One authorization rule.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Rule {
    /// `from`.
    pub from: Vec<RuleFrom>,
    /// `to`.
    pub to: Vec<RuleTo>,
    /// `when`.
    pub when: Vec<Condition>,
}

/// `from[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RuleFrom {
    /// `source`.
    pub source: SourceMatch,
}

/// `from[].source`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SourceMatch {
    /// `principals`.
    pub principals: Vec<String>,
    /// `notPrincipals`.
    pub not_principals: Vec<String>,
    /// `requestPrincipals`.
    pub request_principals: Vec<String>,
    /// `notRequestPrincipals`.
    pub not_request_principals: Vec<String>,
    /// `namespaces`.
    pub namespaces: Vec<String>,
    /// `notNamespaces`.
    pub not_namespaces: Vec<String>,
    /// `serviceAccounts` (`ns/sa`).
    pub service_accounts: Vec<String>,
    /// `notServiceAccounts`.
    pub not_service_accounts: Vec<String>,
    /// `ipBlocks`.
    pub ip_blocks: Vec<String>,
    /// `notIpBlocks`.
    pub not_ip_blocks: Vec<String>,
    /// `remoteIpBlocks`.
    pub remote_ip_blocks: Vec<String>,
    /// `notRemoteIpBlocks`.
    pub not_remote_ip_blocks: Vec<String>,
}

/// `to[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RuleTo {
    /// `operation`.
    pub operation: Operation,
}

/// `to[].operation`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Operation {
    /// `hosts`.
    pub hosts: Vec<String>,
    /// `notHosts`.
    pub not_hosts: Vec<String>,
    /// `ports` (strings in the API).
    #[serde(deserialize_with = "string_vec")]
    pub ports: Vec<String>,
    /// `notPorts`.
    #[serde(deserialize_with = "string_vec")]
    pub not_ports: Vec<String>,
    /// `methods`.
    pub methods: Vec<String>,
    /// `notMethods`.
    pub not_methods: Vec<String>,
    /// `paths`.
    pub paths: Vec<String>,
    /// `notPaths`.
    pub not_paths: Vec<String>,
}

/// `when[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Condition {
    /// `key`.
    pub key: String,
    /// `values`.
    #[serde(deserialize_with = "string_vec")]
    pub values: Vec<String>,
    /// `notValues`.
    #[serde(deserialize_with = "string_vec")]
    pub not_values: Vec<String>,
}

/// `DestinationRule` (networking.istio.io).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct DestinationRule {
    /// `metadata`.
    pub metadata: Meta,
    /// `spec`.
    pub spec: DestinationRuleSpec,
}

/// `DestinationRule.spec`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DestinationRuleSpec {
    /// `host`.
    pub host: String,
    /// `trafficPolicy`.
    pub traffic_policy: Option<TrafficPolicy>,
}

/// `trafficPolicy`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrafficPolicy {
    /// `tls`.
    pub tls: Option<ClientTls>,
    /// `portLevelSettings`.
    pub port_level_settings: Vec<PortTrafficPolicy>,
}

/// `portLevelSettings[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PortTrafficPolicy {
    /// `port.number` (the Service port).
    pub port: PortSelector,
    /// `tls`.
    pub tls: Option<ClientTls>,
}

/// `{number: N}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PortSelector {
    /// `number`.
    pub number: i64,
}

/// `tls` of a DestinationRule.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClientTls {
    /// `DISABLE`, `SIMPLE`, `MUTUAL`, `ISTIO_MUTUAL`.
    pub mode: String,
}

// === Linkerd (policy.linkerd.io) and Gateway API ===

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

// === lenient scalars ===
//
// Kubernetes stores label and annotation values as strings, but hand-written YAML
// often leaves `true` or `8080` unquoted; the API server would quote them, so do we.

/// A scalar of any YAML type, as its text.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(opt_string_map(d)?.unwrap_or_default())
}

fn opt_string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    let m: Option<BTreeMap<String, Scalar>> = Option::deserialize(d)?;
    Ok(m.map(|m| m.into_iter().map(|(k, v)| (k, v.0)).collect()))
}

fn string_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v: Option<Vec<Scalar>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().map(|s| s.0).collect())
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v: Option<Scalar> = Option::deserialize(d)?;
    Ok(v.map(|s| s.0).unwrap_or_default())
}

fn scalar_key_map<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<BTreeMap<String, T>, D::Error> {
    let m: Option<BTreeMap<Scalar, T>> = Option::deserialize(d)?;
    Ok(m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.0, v))
        .collect())
}
