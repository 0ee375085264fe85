//! Istio: PeerAuthentication, AuthorizationPolicy (security.istio.io), DestinationRule
//! (networking.istio.io).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;

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
