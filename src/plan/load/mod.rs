//! Files → typed objects: the only I/O of `plan`.
//!
//! Inputs are YAML (multi-document) or JSON, single objects or `kind: List` (what
//! `kubectl get -o yaml` prints); directories are read recursively (`*.yaml`, `*.yml`,
//! `*.json`, in path order, hidden entries skipped); `-` is stdin. A List is converted
//! item by item, so its memory is one item's generic value at a time plus the typed
//! objects, not a value tree of the whole input.
//!
//! YAML is parsed with `serde_yaml_ng`, the maintained fork of `serde_yaml` (same API,
//! same libyaml-derived parser, recursion and alias-expansion limits kept).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde_yaml_ng::{Mapping, Value};

use super::objects::*;

mod list;
use list::{kubectl_list_items, load_list_items};

/// The largest input accepted from one file or stdin.
pub const MAX_INPUT_BYTES: u64 = 512 * 1024 * 1024;

/// An input that cannot be read: exit 2. Names the file, the document (and List item)
/// and what was wrong.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("{file}{}: {problem}", at(*.doc, *.item))]
pub struct LoadError {
    /// The file (`-` for stdin).
    pub file: String,
    /// The document index, from 0, when the problem is inside one.
    pub doc: Option<usize>,
    /// The List item, when the problem is inside one.
    pub item: Option<usize>,
    /// What was wrong.
    pub problem: String,
}

fn at(doc: Option<usize>, item: Option<usize>) -> String {
    match (doc, item) {
        (Some(d), Some(i)) => format!(": document {d}, items[{i}]"),
        (Some(d), None) => format!(": document {d}"),
        _ => String::new(),
    }
}

/// Everything read, by kind, each object with its [`Source`].
#[derive(Debug, Default)]
pub struct Loaded {
    /// Namespaces.
    pub namespaces: Vec<(Source, Namespace)>,
    /// Services.
    pub services: Vec<(Source, Service)>,
    /// Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs: (kind, object).
    pub workloads: Vec<(Source, &'static str, WorkloadObject)>,
    /// Pods.
    pub pods: Vec<(Source, Pod)>,
    /// Istio PeerAuthentications.
    pub peer_authentications: Vec<(Source, PeerAuthentication)>,
    /// Istio AuthorizationPolicies.
    pub istio_authz: Vec<(Source, IstioAuthorizationPolicy)>,
    /// Istio DestinationRules.
    pub destination_rules: Vec<(Source, DestinationRule)>,
    /// Linkerd Servers.
    pub servers: Vec<(Source, Server)>,
    /// Linkerd AuthorizationPolicies.
    pub linkerd_authz: Vec<(Source, LinkerdAuthorizationPolicy)>,
    /// MeshTLSAuthentications.
    pub mesh_tls: Vec<(Source, MeshTlsAuthentication)>,
    /// NetworkAuthentications.
    pub network_authn: Vec<(Source, NetworkAuthentication)>,
    /// HTTPRoutes (Linkerd's and Gateway API's).
    pub http_routes: Vec<(Source, HttpRoute)>,
    /// ServerAuthorizations.
    pub server_authz: Vec<(Source, ServerAuthorization)>,
    /// Objects of kinds `plan` does not read, counted by `apiVersion/kind`.
    pub ignored: BTreeMap<String, usize>,
    /// Files read.
    pub files: usize,
}

/// Reads every `-f` argument (`-` reads `stdin`).
pub fn load_paths(args: &[String], mut stdin: impl Read) -> Result<Loaded, LoadError> {
    let mut out = Loaded::default();
    for arg in args {
        if arg == "-" {
            let mut bytes = Vec::new();
            (&mut stdin)
                .take(MAX_INPUT_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| file_error("-", format!("cannot read stdin: {e}")))?;
            let text = text_of("-", bytes)?;
            load_text(&text, "-", &mut out)?;
            continue;
        }
        let path = Path::new(arg);
        let meta =
            std::fs::metadata(path).map_err(|e| file_error(arg, format!("cannot read: {e}")))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            for f in files {
                load_file(&f, &mut out)?;
            }
        } else {
            load_file(path, &mut out)?;
        }
    }
    Ok(out)
}

fn file_error(file: &str, problem: String) -> LoadError {
    LoadError {
        file: file.to_owned(),
        doc: None,
        item: None,
        problem,
    }
}

/// The manifest files under `dir`, sorted, hidden entries (`.git`, `..data`) skipped.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let shown = dir.display().to_string();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| file_error(&shown, format!("cannot read the directory: {e}")))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&shown, format!("cannot read the directory: {e}")))?;
    entries.sort();
    for p in entries {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(p);
        }
    }
    Ok(())
}

fn load_file(path: &Path, out: &mut Loaded) -> Result<(), LoadError> {
    let shown = path.display().to_string();
    let meta =
        std::fs::metadata(path).map_err(|e| file_error(&shown, format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(file_error(
            &shown,
            "not a regular file (a FIFO, socket or device)".to_owned(),
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| file_error(&shown, format!("cannot read: {e}")))?;
    let text = text_of(&shown, bytes)?;
    load_text(&text, &shown, out)
}

fn text_of(file: &str, bytes: Vec<u8>) -> Result<String, LoadError> {
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(file_error(
            file,
            format!("larger than the {} MiB accepted", MAX_INPUT_BYTES >> 20),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        file_error(
            file,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Reads one file's text (YAML documents, or JSON when it starts with `{` or `[`).
pub fn load_text(text: &str, file: &str, out: &mut Loaded) -> Result<(), LoadError> {
    out.files += 1;
    let doc_error = |doc: usize, item: Option<usize>, problem: String| LoadError {
        file: file.to_owned(),
        doc: Some(doc),
        item,
        problem,
    };
    if text.trim_start().starts_with(['{', '[']) {
        let mut de = serde_json::Deserializer::from_str(text);
        let doc = Doc::deserialize(&mut de)
            .and_then(|d| de.end().map(|()| d))
            .map_err(|e| doc_error(0, None, format!("not valid JSON: {e}")))?;
        return doc.into_loaded(file, 0, out);
    }
    if let Some(items) = kubectl_list_items(text) {
        return load_list_items(text, &items, file, out);
    }
    for (i, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let doc = Doc::deserialize(document).map_err(|e| {
            // A problem inside a List item carries its index in front (see ItemsSeed).
            let message = e.to_string();
            match message
                .strip_prefix("items[")
                .and_then(|r| r.split_once(']'))
            {
                Some((n, rest)) => match n.parse() {
                    Ok(n) => doc_error(i, Some(n), rest.trim_start_matches(": ").to_owned()),
                    Err(_) => doc_error(i, None, message),
                },
                None if message.contains("invalid type") => doc_error(
                    i,
                    None,
                    format!("not a Kubernetes object (expected a mapping): {message}"),
                ),
                None => doc_error(i, None, format!("not valid YAML: {message}")),
            }
        })?;
        doc.into_loaded(file, i, out)?;
    }
    Ok(())
}

/// One document: a single object, a List of them, or nothing (an empty document).
enum Doc {
    Empty,
    Object(Value),
    List(Vec<Result<Classified, String>>),
}

impl Doc {
    fn into_loaded(self, file: &str, doc: usize, out: &mut Loaded) -> Result<(), LoadError> {
        let source = |item| Source {
            file: file.to_owned(),
            doc,
            item,
        };
        match self {
            Self::Empty => Ok(()),
            Self::Object(v) => {
                let c = classify(v).map_err(|problem| LoadError {
                    file: file.to_owned(),
                    doc: Some(doc),
                    item: None,
                    problem,
                })?;
                c.store(source(None), out);
                Ok(())
            }
            Self::List(items) => {
                for (i, c) in items.into_iter().enumerate() {
                    let c = c.map_err(|problem| LoadError {
                        file: file.to_owned(),
                        doc: Some(doc),
                        item: Some(i),
                        problem,
                    })?;
                    c.store(source(Some(i)), out);
                }
                Ok(())
            }
        }
    }
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DocVisitor)
    }
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Kubernetes object (a mapping with apiVersion and kind) or a List")
    }

    fn visit_unit<E>(self) -> Result<Doc, E> {
        Ok(Doc::Empty)
    }

    fn visit_none<E>(self) -> Result<Doc, E> {
        Ok(Doc::Empty)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc, A::Error> {
        let mut fields = Mapping::new();
        let mut items = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                items = Some(map.next_value_seed(ItemsSeed)?);
            } else {
                let v: Value = map.next_value()?;
                fields.insert(Value::String(key), v);
            }
        }
        match items {
            // `kind: List` and the typed lists (`ServiceList`) alike.
            Some(items) => Ok(Doc::List(items)),
            None => Ok(Doc::Object(Value::Mapping(fields))),
        }
    }
}

/// The `items` of a List, converted one at a time.
struct ItemsSeed;

impl<'de> de::DeserializeSeed<'de> for ItemsSeed {
    type Value = Vec<Result<Classified, String>>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed {
    type Value = Vec<Result<Classified, String>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of objects")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let i = out.len();
            let next = seq
                .next_element::<Value>()
                .map_err(|e| de::Error::custom(format!("items[{i}]: {e}")))?;
            let Some(v) = next else { break };
            out.push(classify(v));
        }
        Ok(out)
    }
}

/// An object sorted by kind, or a kind `plan` does not read.
enum Classified {
    Namespace(Namespace),
    Service(Service),
    Workload(&'static str, WorkloadObject),
    Pod(Pod),
    PeerAuthentication(PeerAuthentication),
    IstioAuthz(IstioAuthorizationPolicy),
    DestinationRule(DestinationRule),
    Server(Server),
    LinkerdAuthz(LinkerdAuthorizationPolicy),
    MeshTls(MeshTlsAuthentication),
    NetworkAuthn(NetworkAuthentication),
    HttpRoute(HttpRoute),
    ServerAuthz(ServerAuthorization),
    Ignored(String),
}

impl Classified {
    fn store(mut self, s: Source, out: &mut Loaded) {
        // A namespaced object without a namespace (common in GitOps trees) lands in
        // `default`, as `kubectl apply` without `-n` puts it.
        if let Some(meta) = self.meta_mut()
            && meta.namespace.is_empty()
        {
            meta.namespace = "default".to_owned();
        }
        match self {
            Self::Namespace(o) => out.namespaces.push((s, o)),
            Self::Service(o) => out.services.push((s, o)),
            Self::Workload(k, o) => out.workloads.push((s, k, o)),
            Self::Pod(o) => out.pods.push((s, o)),
            Self::PeerAuthentication(o) => out.peer_authentications.push((s, o)),
            Self::IstioAuthz(o) => out.istio_authz.push((s, o)),
            Self::DestinationRule(o) => out.destination_rules.push((s, o)),
            Self::Server(o) => out.servers.push((s, o)),
            Self::LinkerdAuthz(o) => out.linkerd_authz.push((s, o)),
            Self::MeshTls(o) => out.mesh_tls.push((s, o)),
            Self::NetworkAuthn(o) => out.network_authn.push((s, o)),
            Self::HttpRoute(o) => out.http_routes.push((s, o)),
            Self::ServerAuthz(o) => out.server_authz.push((s, o)),
            Self::Ignored(k) => *out.ignored.entry(k).or_default() += 1,
        }
    }
}

impl Classified {
    /// The metadata of a namespaced object.
    fn meta_mut(&mut self) -> Option<&mut Meta> {
        Some(match self {
            Self::Namespace(_) | Self::Ignored(_) => return None,
            Self::Service(o) => &mut o.metadata,
            Self::Workload(_, o) => &mut o.metadata,
            Self::Pod(o) => &mut o.metadata,
            Self::PeerAuthentication(o) => &mut o.metadata,
            Self::IstioAuthz(o) => &mut o.metadata,
            Self::DestinationRule(o) => &mut o.metadata,
            Self::Server(o) => &mut o.metadata,
            Self::LinkerdAuthz(o) => &mut o.metadata,
            Self::MeshTls(o) => &mut o.metadata,
            Self::NetworkAuthn(o) => &mut o.metadata,
            Self::HttpRoute(o) => &mut o.metadata,
            Self::ServerAuthz(o) => &mut o.metadata,
        })
    }
}

/// Sorts one object by `apiVersion` group and `kind` and reads its typed fields.
fn classify(v: Value) -> Result<Classified, String> {
    let Value::Mapping(m) = &v else {
        return Err(format!(
            "not a Kubernetes object: expected a mapping with apiVersion and kind, got {}",
            type_name(&v)
        ));
    };
    let field = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    fn typed<T: DeserializeOwned>(v: Value) -> Result<T, String> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            format!("{path}: {}", e.into_inner())
        })
    }
    Ok(match (group, kind.as_str()) {
        ("", "Namespace") => Classified::Namespace(typed(v)?),
        ("", "Service") => Classified::Service(typed(v)?),
        ("", "Pod") => Classified::Pod(typed(v)?),
        ("apps", "Deployment") => Classified::Workload("Deployment", typed(v)?),
        ("apps", "StatefulSet") => Classified::Workload("StatefulSet", typed(v)?),
        ("apps", "DaemonSet") => Classified::Workload("DaemonSet", typed(v)?),
        ("apps", "ReplicaSet") => Classified::Workload("ReplicaSet", typed(v)?),
        ("security.istio.io", "PeerAuthentication") => Classified::PeerAuthentication(typed(v)?),
        ("security.istio.io", "AuthorizationPolicy") => Classified::IstioAuthz(typed(v)?),
        ("networking.istio.io", "DestinationRule") => Classified::DestinationRule(typed(v)?),
        ("policy.linkerd.io", "Server") => Classified::Server(typed(v)?),
        ("policy.linkerd.io", "AuthorizationPolicy") => Classified::LinkerdAuthz(typed(v)?),
        ("policy.linkerd.io", "MeshTLSAuthentication") => Classified::MeshTls(typed(v)?),
        ("policy.linkerd.io", "NetworkAuthentication") => Classified::NetworkAuthn(typed(v)?),
        ("policy.linkerd.io" | "gateway.networking.k8s.io", "HTTPRoute") => {
            Classified::HttpRoute(typed(v)?)
        }
        ("policy.linkerd.io", "ServerAuthorization") => Classified::ServerAuthz(typed(v)?),
        _ if kind.is_empty() => Classified::Ignored("(no kind)".to_owned()),
        _ => Classified::Ignored(format!("{api_version}/{kind}")),
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "an empty value",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(l: &Loaded) -> (usize, usize, usize, usize, Vec<String>) {
        (
            l.namespaces.len(),
            l.services.len(),
            l.workloads.len(),
            l.ignored.values().sum(),
            l.services
                .iter()
                .map(|(s, o)| format!("{s} {}", o.metadata.name))
                .collect(),
        )
    }

    /// The item-by-item path reads exactly what the general path reads.
    #[test]
    fn kubectl_lists_are_read_item_by_item_with_the_same_result() {
        let list = "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: a\n# a comment\n\n- apiVersion: v1\n  kind: Service\n  metadata:\n    annotations:\n      note: |\n        - not an item\n        items:\n    name: s\n    namespace: a\n  spec:\n    ports:\n    - port: 80\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\nkind: List\nmetadata:\n  resourceVersion: \"\"\n";
        assert_eq!(kubectl_list_items(list).map(|v| v.len()), Some(3));
        let mut fast = Loaded::default();
        load_text(list, "f", &mut fast).unwrap();
        // The general path: the same text as a flow-free document the splitter refuses.
        let mut general = Loaded::default();
        load_text(&format!("---\n{list}---\n"), "f", &mut general).unwrap();
        assert_eq!(kubectl_list_items(&format!("---\n{list}---\n")), None);
        assert_eq!(
            counts(&fast),
            (1, 1, 0, 1, vec!["f: document 0, items[1] s".to_owned()])
        );
        assert_eq!(counts(&fast), counts(&general));
        assert_eq!(
            fast.services[0].1.metadata.annotations["note"],
            "- not an item\nitems:\n"
        );
    }

    /// A List long enough to be parsed on several threads keeps its order, its sources
    /// and the index of the first bad item.
    #[test]
    fn long_lists_keep_order_sources_and_the_first_error() {
        let item = |i: usize| {
            format!(
                "- apiVersion: v1\n  kind: Service\n  metadata:\n    name: s{i}\n    \
                 namespace: n\n  spec:\n    ports:\n    - port: 80\n"
            )
        };
        let list = |items: &str| format!("apiVersion: v1\nitems:\n{items}kind: List\n");
        let good: String = (0..500).map(item).collect();
        let mut l = Loaded::default();
        load_text(&list(&good), "f", &mut l).unwrap();
        assert_eq!(l.services.len(), 500);
        for (i, (source, svc)) in l.services.iter().enumerate() {
            assert_eq!(svc.metadata.name, format!("s{i}"));
            assert_eq!(source.item, Some(i));
        }
        // Two bad items in different runs: the first in input order is reported.
        let bad: String = (0..500)
            .map(|i| match i {
                321 => "- kind: [unclosed\n".to_owned(),
                450 => "- 7\n".to_owned(),
                _ => item(i),
            })
            .collect();
        let e = load_text(&list(&bad), "f", &mut Loaded::default()).unwrap_err();
        assert_eq!((e.doc, e.item), (Some(0), Some(321)), "{e:?}");
    }

    #[test]
    fn objects_without_a_namespace_are_in_default() {
        let mut l = Loaded::default();
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n";
        load_text(text, "f", &mut l).unwrap();
        assert_eq!(l.services[0].1.metadata.namespace, "default");
        assert_eq!(l.namespaces[0].1.metadata.namespace, "");
    }

    #[test]
    fn other_shapes_take_the_general_path() {
        for text in [
            "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
            "apiVersion: v1\nkind: List\nitems: []\n",
            "a: 1\n---\nitems:\n- x\n",
            "items:\n-x\n",
        ] {
            assert_eq!(kubectl_list_items(text), None, "{text}");
        }
        assert_eq!(kubectl_list_items("kind: List\nitems:\n"), Some(vec![]));
    }
}
