//! core/v1 and apps/v1: Namespace, Service, the workload kinds and Pod.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;

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
