//! `cargo bench --bench plan`: plans a generated cluster of 5,000 Services (each with
//! its Deployment and a running Pod, in the verbose form `kubectl get -o yaml` prints:
//! managedFields, status, env) and 500 policies, about 50 MB of YAML in one
//! `kind: List`, then the same as JSON. Prints the input size, the time of load + plan
//! and the process's peak resident memory (VmHWM) before and after.
//!
//! Each input is measured in a fresh process (VmHWM is per process); the YAML also
//! pinned to one core, beside it, since a List's items are parsed on every core.
//! `-- --quick` plans a tenth of it (the CI smoke).

use std::fmt::Write as _;
use std::time::Instant;

use mtls_prober::plan::{self, Options, load};

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) of this process so far, in seconds: what the work costs,
/// whatever else the machine is doing.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on Linux.
    Some((utime + stime) / 100.0)
}

fn item(out: &mut String, text: &str) {
    // Indent one object as an item of `items:`.
    let mut first = true;
    for line in text.lines() {
        out.push_str(if first { "- " } else { "  " });
        out.push_str(line);
        out.push('\n');
        first = false;
    }
}

fn managed_fields(manager: &str) -> String {
    let mut s = String::from("  managedFields:\n");
    for i in 0..6 {
        let _ = write!(
            s,
            "  - apiVersion: v1\n    fieldsType: FieldsV1\n    fieldsV1:\n      f:metadata:\n        f:annotations:\n          .: {{}}\n          f:kubectl.kubernetes.io/last-applied-configuration: {{}}\n        f:labels:\n          .: {{}}\n          f:app: {{}}\n          f:version: {{}}\n      f:spec:\n        f:field{i}: {{}}\n    manager: {manager}\n    operation: Update\n    time: \"2026-01-14T12:00:00Z\"\n"
        );
    }
    s
}

fn cluster(services: usize, policies: usize) -> String {
    let namespaces = (services / 50).max(1);
    let mut out =
        String::from("apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n");
    for n in 0..namespaces {
        item(
            &mut out,
            &format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns{n}\n  labels:\n    istio-injection: enabled\n    kubernetes.io/metadata.name: ns{n}\nspec:\n  finalizers:\n  - kubernetes\nstatus:\n  phase: Active\n"
            ),
        );
    }
    let env: String = (0..20)
        .map(|i| format!("        - name: SETTING_{i}\n          value: \"some configuration value number {i} for the app\"\n"))
        .collect();
    for s in 0..services {
        let ns = s % namespaces;
        let mf = managed_fields("kubectl-client-side-apply");
        item(
            &mut out,
            &format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{{\"name\":\"svc{s}\",\"namespace\":\"ns{ns}\"}},\"spec\":{{\"ports\":[{{\"name\":\"http\",\"port\":80,\"targetPort\":8080}}],\"selector\":{{\"app\":\"svc{s}\"}}}}}}'\n  creationTimestamp: \"2026-01-14T12:00:00Z\"\n  labels:\n    app: svc{s}\n{mf}  name: svc{s}\n  namespace: ns{ns}\n  resourceVersion: \"{s}\"\n  uid: 00000000-0000-0000-0000-{s:012}\nspec:\n  clusterIP: 10.96.{}.{}\n  clusterIPs:\n  - 10.96.{}.{}\n  internalTrafficPolicy: Cluster\n  ipFamilies:\n  - IPv4\n  ipFamilyPolicy: SingleStack\n  ports:\n  - name: http\n    port: 80\n    protocol: TCP\n    targetPort: 8080\n  - name: grpc\n    port: 9090\n    protocol: TCP\n    targetPort: grpc\n  selector:\n    app: svc{s}\n  sessionAffinity: None\n  type: ClusterIP\nstatus:\n  loadBalancer: {{}}\n",
                s / 256,
                s % 256,
                s / 256,
                s % 256
            ),
        );
        let template = format!(
            "    metadata:\n      creationTimestamp: null\n      labels:\n        app: svc{s}\n        version: v1\n    spec:\n      serviceAccountName: sa{s}\n      containers:\n      - name: app\n        image: registry.example/app:{s}\n        imagePullPolicy: IfNotPresent\n        env:\n{env}        ports:\n        - containerPort: 8080\n          name: http\n          protocol: TCP\n        - containerPort: 9090\n          name: grpc\n          protocol: TCP\n        readinessProbe:\n          httpGet:\n            path: /ready\n            port: 8080\n            scheme: HTTP\n          periodSeconds: 10\n        resources:\n          limits:\n            cpu: 500m\n            memory: 256Mi\n          requests:\n            cpu: 50m\n            memory: 64Mi\n      dnsPolicy: ClusterFirst\n      restartPolicy: Always\n      terminationGracePeriodSeconds: 30\n"
        );
        item(
            &mut out,
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  creationTimestamp: \"2026-01-14T12:00:00Z\"\n  generation: 1\n{mf}  name: svc{s}\n  namespace: ns{ns}\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: svc{s}\n  template:\n{template}status:\n  availableReplicas: 2\n  readyReplicas: 2\n  replicas: 2\n"
            ),
        );
        let pod_spec = template
            .replace("\n    ", "\n")
            .replacen("    metadata:", "metadata:", 1);
        let pod = pod_spec.replacen(
            "metadata:\n  creationTimestamp: null\n",
            &format!("metadata:\n  name: svc{s}-5d8f7c6b9-x{s}\n  namespace: ns{ns}\n  ownerReferences:\n  - apiVersion: apps/v1\n    kind: ReplicaSet\n    name: svc{s}-5d8f7c6b9\n"),
            1,
        );
        item(
            &mut out,
            &format!(
                "apiVersion: v1\nkind: Pod\n{pod}status:\n  phase: Running\n  podIP: 10.0.{}.{}\n",
                s / 256,
                s % 256
            ),
        );
    }
    for p in 0..policies {
        let s = p * (services / policies.max(1));
        let ns = s % namespaces;
        let text = match p % 3 {
            0 => format!(
                "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: pa{p}\n  namespace: ns{ns}\nspec:\n  selector:\n    matchLabels:\n      app: svc{s}\n  mtls:\n    mode: STRICT\n  portLevelMtls:\n    9090:\n      mode: PERMISSIVE\n"
            ),
            1 => format!(
                "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: ap{p}\n  namespace: ns{ns}\nspec:\n  selector:\n    matchLabels:\n      app: svc{s}\n  action: ALLOW\n  rules:\n  - from:\n    - source:\n        principals: [\"cluster.local/ns/monitoring/sa/mtls-prober\", \"cluster.local/ns/ns{ns}/sa/*\"]\n    to:\n    - operation:\n        methods: [\"GET\"]\n        paths: [\"/ready\", \"/api/*\"]\n"
            ),
            _ => format!(
                "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: default\n  namespace: ns{ns}\nspec:\n  mtls:\n    mode: PERMISSIVE\n"
            ),
        };
        item(&mut out, &text);
    }
    out
}

/// Measures one input file in this process (started fresh by `main`, so that VmHWM is
/// this input's peak alone).
fn measure(path: &str) {
    let hwm_start = vm_hwm_kib();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let hwm_before = vm_hwm_kib();
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    let mut loaded = load::Loaded::default();
    if let Err(e) = load::load_text(&text, path, &mut loaded) {
        eprintln!("load failed: {e}");
        std::process::exit(1);
    }
    let loaded_at = start.elapsed();
    let opts = Options::new(
        "spiffe://cluster.local/ns/monitoring/sa/mtls-prober"
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let planned = match plan::plan(&loaded, &opts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("plan failed: {e}");
            std::process::exit(1);
        }
    };
    let rendered = plan::render::toml(&planned);
    let total = start.elapsed();
    let cpu = match (cpu_before, cpu_seconds()) {
        (Some(a), Some(b)) => format!("{:.2} s", b - a),
        _ => "?".to_owned(),
    };
    let kind = if path.ends_with(".json") {
        "json"
    } else {
        "yaml"
    };
    println!(
        "{kind:<5} input {:>6.1} MB  load {:>6.0} ms  plan+render {:>5.0} ms  total {:>6.0} ms (CPU {cpu})  targets {}  findings {}  toml {:.1} MB  VmHWM {} (start) / {} (input read) / {} MiB (peak)",
        text.len() as f64 / 1e6,
        loaded_at.as_secs_f64() * 1e3,
        (total - loaded_at).as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3,
        planned.targets.len(),
        planned.findings.len(),
        rendered.len() as f64 / 1e6,
        hwm_start.map_or(0, |k| k / 1024),
        hwm_before.map_or(0, |k| k / 1024),
        vm_hwm_kib().map_or(0, |k| k / 1024),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--measure") {
        if let Some(path) = args.get(i + 1) {
            measure(path);
        }
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let (services, policies) = if quick { (500, 50) } else { (5000, 500) };
    let yaml = cluster(services, policies);
    println!("{services} Services (+ Deployments, Pods), {policies} policies:");
    let json = match serde_yaml_ng::from_str::<serde_json::Value>(&yaml) {
        Ok(v) => v.to_string(),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let me = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    // A List's items are parsed on every core; the YAML is also measured pinned to one
    // core (`taskset`, when present), side by side, to show what the threads buy.
    let pinned = std::process::Command::new("taskset")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    for (name, text) in [("cluster.yaml", &yaml), ("cluster.json", &json)] {
        let path = dir.path().join(name);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("{e}");
            std::process::exit(1);
        }
        let one_core = pinned && name.ends_with(".yaml");
        for pin in [false, true] {
            if pin && !one_core {
                continue;
            }
            if pin {
                print!("(one core) ");
            }
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            // A fresh process per input: its peak memory is that input's alone.
            let mut cmd = if pin {
                let mut c = std::process::Command::new("taskset");
                c.args(["-c", "0"]).arg(&me);
                c
            } else {
                std::process::Command::new(&me)
            };
            let ok = cmd
                .arg("--measure")
                .arg(&path)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("measuring {name} failed");
                std::process::exit(1);
            }
        }
    }
}
