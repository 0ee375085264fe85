//! `plan --assume NS=strict|permissive` replaces the namespace-level policy of NS and
//! nothing else (SPEC §11): over generated namespaces, injection labels, mesh-,
//! namespace-, workload- and port-level PeerAuthentications and DENY policies, the
//! edges of other namespaces are unchanged, edges decided at workload or port level
//! are unchanged, and the others in NS take the assumed mode.

use std::collections::BTreeMap;

use mtls_prober::plan::{self, Assume, Options, PlannedTarget, load};
use proptest::prelude::*;

use crate::support::cases;

const MODES: [&str; 4] = ["STRICT", "PERMISSIVE", "DISABLE", "UNSET"];

#[derive(Clone, Debug)]
struct Workload {
    workload_mode: Option<usize>,
    port_mode: Option<usize>,
    deny_monitoring: bool,
    opt_out: bool,
}

#[derive(Clone, Debug)]
struct Ns {
    injected: bool,
    mode: Option<usize>,
    workloads: Vec<Workload>,
}

fn workload() -> impl Strategy<Value = Workload> {
    (
        proptest::option::of(0..4usize),
        proptest::option::of(0..4usize),
        any::<bool>(),
        proptest::bool::weighted(0.2),
    )
        .prop_map(
            |(workload_mode, port_mode, deny_monitoring, opt_out)| Workload {
                workload_mode,
                port_mode,
                deny_monitoring,
                opt_out,
            },
        )
}

fn namespace() -> impl Strategy<Value = Ns> {
    (
        any::<bool>(),
        proptest::option::of(0..4usize),
        proptest::collection::vec(workload(), 1..4),
    )
        .prop_map(|(injected, mode, workloads)| Ns {
            injected,
            mode,
            workloads,
        })
}

fn yaml(mesh: Option<usize>, nss: &[Ns]) -> String {
    let mut docs = Vec::new();
    if let Some(m) = mesh {
        docs.push(format!(
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: default, namespace: istio-system}}\nspec: {{mtls: {{mode: {}}}}}\n",
            MODES[m]
        ));
    }
    for (i, ns) in nss.iter().enumerate() {
        let label = if ns.injected {
            "{istio-injection: enabled}"
        } else {
            "{}"
        };
        docs.push(format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: n{i}, labels: {label}}}\n"
        ));
        if let Some(m) = ns.mode {
            docs.push(format!(
                "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: default, namespace: n{i}}}\nspec: {{mtls: {{mode: {}}}}}\n",
                MODES[m]
            ));
        }
        for (j, w) in ns.workloads.iter().enumerate() {
            let opt_out = if w.opt_out {
                ", sidecar.istio.io/inject: \"false\""
            } else {
                ""
            };
            docs.push(format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: w{j}, namespace: n{i}}}\nspec: {{selector: {{app: w{j}}}, ports: [{{port: 80, targetPort: 8080}}]}}\n---\n\
                 apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: w{j}, namespace: n{i}}}\nspec:\n  template:\n    metadata: {{labels: {{app: w{j}{opt_out}}}}}\n    spec:\n      serviceAccountName: w{j}\n      containers: [{{name: c, ports: [{{containerPort: 8080}}], readinessProbe: {{httpGet: {{path: /ready, port: 8080}}}}}}]\n"
            ));
            if w.workload_mode.is_some() || w.port_mode.is_some() {
                let mtls = w
                    .workload_mode
                    .map(|m| format!("  mtls: {{mode: {}}}\n", MODES[m]))
                    .unwrap_or_default();
                let port = w
                    .port_mode
                    .map(|m| format!("  portLevelMtls: {{8080: {{mode: {}}}}}\n", MODES[m]))
                    .unwrap_or_default();
                docs.push(format!(
                    "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: w{j}, namespace: n{i}}}\nspec:\n  selector: {{matchLabels: {{app: w{j}}}}}\n{mtls}{port}"
                ));
            }
            if w.deny_monitoring {
                docs.push(format!(
                    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: w{j}, namespace: n{i}}}\nspec: {{selector: {{matchLabels: {{app: w{j}}}}}, action: DENY, rules: [{{from: [{{source: {{namespaces: [monitoring]}}}}]}}]}}\n"
                ));
            }
        }
    }
    docs.join("---\n")
}

fn run(text: &str, assume: Option<(&str, Assume)>) -> BTreeMap<String, PlannedTarget> {
    let mut loaded = load::Loaded::default();
    load::load_text(text, "gen.yaml", &mut loaded).unwrap();
    let mut opts = Options::new(
        "spiffe://cluster.local/ns/monitoring/sa/mtls-prober"
            .parse()
            .unwrap(),
    );
    opts.mesh = Some(plan::Mesh::Istio);
    if let Some((ns, a)) = assume {
        opts.assume.insert(ns.to_owned(), a);
    }
    plan::plan(&loaded, &opts)
        .unwrap()
        .targets
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect()
}

fn set(m: Option<usize>) -> bool {
    m.is_some_and(|m| MODES[m] != "UNSET")
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn assume_flips_exactly_the_namespace_level(
        mesh in proptest::option::of(0..4usize),
        nss in proptest::collection::vec(namespace(), 1..4),
        pick in any::<proptest::sample::Index>(),
        strict in any::<bool>(),
    ) {
        let text = yaml(mesh, &nss);
        let target_ns = pick.index(nss.len());
        let ns_name = format!("n{target_ns}");
        let assume = if strict { Assume::Strict } else { Assume::Permissive };
        let before = run(&text, None);
        let after = run(&text, Some((&ns_name, assume)));
        prop_assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
        for (name, b) in &before {
            let a = &after[name];
            let (ns, svc) = name.split_once('/').unwrap();
            if ns != ns_name {
                prop_assert_eq!(a, b, "an edge outside {} changed", ns_name);
                continue;
            }
            let j: usize = svc.trim_start_matches('w').parse().unwrap();
            let w = &nss[target_ns].workloads[j];
            let injected = nss[target_ns].injected && !w.opt_out;
            if !injected {
                // Its `why` names the assumption; the probe itself is unchanged.
                let probe = |t: &PlannedTarget| {
                    (t.mode, t.expect, t.spiffe_id.clone(), t.verify_strict, t.http.clone())
                };
                prop_assert_eq!(probe(a), probe(b), "an un-injected edge changed");
                prop_assert_eq!(a.mode, "plaintext");
                continue;
            }
            if set(w.port_mode) || set(w.workload_mode) {
                prop_assert_eq!(a, b, "an edge decided at workload or port level changed");
                continue;
            }
            // Decided at namespace level now: mTLS, and the prober's namespace is
            // known to the DENY rule.
            prop_assert_eq!(a.mode, "mtls");
            let want_expect = if w.deny_monitoring { "reject" } else { "success" };
            prop_assert_eq!(a.expect, want_expect);
            prop_assert_eq!(a.verify_strict, strict && want_expect == "success");
            prop_assert!(a.why.iter().any(|w| w.starts_with("--assume ")), "{:?}", a.why);
        }
    }
}
