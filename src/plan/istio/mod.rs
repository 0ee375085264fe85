//! Istio (sidecar mode) semantics, one file per policy kind; each is a pure function
//! of the index and one workload port.

pub mod authz;
pub mod dest_rule;
pub mod inject;
pub mod peer_authn;

/// Kubernetes' and Istio's port numbers as the policies spell them.
pub type Port = i64;
