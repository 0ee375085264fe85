//! Partial, typed models of the Kubernetes, Istio and Linkerd objects `plan` reads:
//! only the fields it uses, every other field ignored (these are other projects' APIs
//! and they grow). Field names follow the published schemas (core/v1, apps/v1,
//! istio/api `security/v1` and `networking/v1`, Linkerd's `policy.linkerd.io` CRDs,
//! Gateway API `HTTPRoute`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

mod istio;
mod kube;
mod linkerd;

pub use self::istio::*;
pub use self::kube::*;
pub use self::linkerd::*;

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

pub(super) fn string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(opt_string_map(d)?.unwrap_or_default())
}

pub(super) fn opt_string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    let m: Option<BTreeMap<String, Scalar>> = Option::deserialize(d)?;
    Ok(m.map(|m| m.into_iter().map(|(k, v)| (k, v.0)).collect()))
}

pub(super) fn string_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v: Option<Vec<Scalar>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().map(|s| s.0).collect())
}

pub(super) fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v: Option<Scalar> = Option::deserialize(d)?;
    Ok(v.map(|s| s.0).unwrap_or_default())
}

pub(super) fn scalar_key_map<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<BTreeMap<String, T>, D::Error> {
    let m: Option<BTreeMap<Scalar, T>> = Option::deserialize(d)?;
    Ok(m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.0, v))
        .collect())
}
