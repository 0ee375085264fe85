#!/usr/bin/env python3
"""Offline checks of deploy/ used by .ci/deploy-checks (one subcommand per check).

  validate FILE...            rendered manifests: core kinds against the Kubernetes
                              schemas (kubernetes-validate, strict), CRDs against the
                              JSON schemas in deploy/schemas/; an unknown kind fails
  policy FILE...              rendered manifests: the pod hardening the issue asks for,
                              and that each probes.toml agrees with its pod (identity
                              files under a mount, ports, discovery name, mesh wiring)
  rules-file OUT              write the PrometheusRule's spec as a plain rule file
  metric-names                every mtls_probe_* name used under deploy/ is listed in
                              deploy/metric-names.txt, every recording rule used is
                              defined; --spec FILE also compares the list with SPEC §6
  dashboard FILE [--promql-out OUT]
                              the Grafana dashboard parses and is well formed; OUT gets
                              its queries as a rule file, for `promtool check rules`
  dockerfile FILE CMD         the Dockerfile's only RUN is CMD (the command CI runs)

Needs PyYAML, jsonschema and kubernetes-validate (installed by .ci/deploy-checks).
Exit status: 0 when the check passes, 1 when it fails (each problem on its own line).
"""

import argparse
import json
import re
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent.parent
SCHEMAS = DEPLOY / "schemas"
RULE_SOURCE = DEPLOY / "prometheus" / "prometheusrule.yaml"
METRIC_LIST = DEPLOY / "metric-names.txt"

# apiVersion/kind of custom resources -> vendored JSON schema (deploy/schemas/README.md).
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor.monitoring.coreos.com.v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.monitoring.coreos.com.v1.json",
    ("cert-manager.io/v1", "Certificate"): "certificate.cert-manager.io.v1.json",
    ("spire.spiffe.io/v1alpha1", "ClusterSPIFFEID"): "clusterspiffeid.spire.spiffe.io.v1alpha1.json",
}

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("validate")
    v.add_argument("files", nargs="+")
    v.add_argument("--k8s-version", action="append", required=True)
    po = sub.add_parser("policy")
    po.add_argument("files", nargs="+")
    r = sub.add_parser("rules-file")
    r.add_argument("out")
    m = sub.add_parser("metric-names")
    m.add_argument("--spec")
    d = sub.add_parser("dashboard")
    d.add_argument("file")
    d.add_argument("--promql-out")
    k = sub.add_parser("dockerfile")
    k.add_argument("file")
    k.add_argument("command")
    args = parser.parse_args()
    problems = {
        "validate": lambda: validate(args.files, args.k8s_version),
        "policy": lambda: policy(args.files),
        "rules-file": lambda: rules_file(args.out),
        "metric-names": lambda: metric_names(args.spec),
        "dashboard": lambda: dashboard(args.file, args.promql_out),
        "dockerfile": lambda: dockerfile(args.file, args.command),
    }[args.cmd]()
    for p in problems:
        print(f"  FAIL {p}")
    return 1 if problems else 0


# === validate ===


def validate(files, versions):
    import jsonschema
    import yaml
    from kubernetes_validate import utils as kv

    problems = []
    for name in files:
        docs = [d for d in yaml.safe_load_all(Path(name).read_text()) if d]
        if not docs:
            problems.append(f"{name}: no resources")
        for doc in docs:
            what = f"{Path(name).name}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            key = (doc.get("apiVersion"), doc.get("kind"))
            if key in CRD_SCHEMAS:
                schema = json.loads((SCHEMAS / CRD_SCHEMAS[key]).read_text())
                errors = sorted(
                    jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path)
                )
                for e in errors:
                    problems.append(f"{what}: {'.'.join(map(str, e.path)) or '<root>'}: {e.message}")
                if not errors:
                    print(f"  ok   {what} (vendored schema {CRD_SCHEMAS[key]})")
                continue
            passed = []
            for version in versions:
                try:
                    passed.append(kv.validate(doc, version, strict=True))
                except kv.ValidationError as e:
                    path = ".".join(map(str, e.path)) or "<root>"
                    problems.append(f"{what}: Kubernetes {e.version}: {path}: {e.message}")
                except kv.SchemaNotFoundError as e:
                    # kubernetes-validate only warns here; an unvalidated kind must not pass.
                    problems.append(f"{what}: no schema ({e.message}); vendor one in deploy/schemas/")
            if len(passed) == len(versions):
                print(f"  ok   {what} (Kubernetes {', '.join(passed)}, strict)")
    return problems


# === policy ===

# Files each identity source provides, by the kind of volume the identity is read from.
IDENTITY_FILES = {
    "secret": {"tls.crt", "tls.key", "ca.crt"},  # cert-manager's Secret layout
    "istio": {"cert-chain.pem", "key.pem", "root-cert.pem"},  # istio-agent OUTPUT_CERTS
}


def policy(files):
    import tomllib

    import yaml

    problems = []
    for name in files:
        docs = [d for d in yaml.safe_load_all(Path(name).read_text()) if d]
        by_kind = {}
        for d in docs:
            by_kind.setdefault(d["kind"], []).append(d)
        workloads = [d for d in by_kind.get("DaemonSet", []) + by_kind.get("Job", [])
                     if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "mtls-prober"]
        if not workloads:
            problems.append(f"{name}: no mtls-prober DaemonSet or Job")
        for w in workloads:
            what = f"{Path(name).name}: {w['kind']}/{w['metadata']['name']}"
            found = check_workload(w, by_kind, tomllib)
            problems += [f"{what}: {p}" for p in found]
            if not found:
                print(f"  ok   {what}")
    return problems


def check_workload(w, by_kind, tomllib):
    out = []
    pod = w["spec"]["template"]
    spec = pod["spec"]
    meta = pod.get("metadata", {})
    annotations = meta.get("annotations", {})
    psc = spec.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True or not psc.get("runAsUser"):
        out.append("pod securityContext: runAsNonRoot and a non-zero runAsUser required")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        out.append("pod securityContext: seccompProfile RuntimeDefault required")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            out.append(f"{key} must not be set")
    containers = {c["name"]: c for c in spec["containers"]}
    c = containers.get("mtls-prober")
    if c is None:
        return out + ["no container named mtls-prober"]
    sc = c.get("securityContext", {})
    if sc.get("allowPrivilegeEscalation") is not False:
        out.append("container: allowPrivilegeEscalation: false required")
    if sc.get("readOnlyRootFilesystem") is not True:
        out.append("container: readOnlyRootFilesystem: true required")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []) or sc.get("capabilities", {}).get("add"):
        out.append("container: capabilities must drop ALL and add none")
    if sc.get("privileged"):
        out.append("container: privileged")
    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        if set(res.get(kind, {})) < {"cpu", "memory"}:
            out.append(f"container: resources.{kind} needs cpu and memory")
    env = {e["name"]: e for e in c.get("env", [])}
    if env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "spec.nodeName":
        out.append("container: NODE_NAME must come from the downward API (spec.nodeName)")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}

    if w["kind"] == "DaemonSet":
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            got = c.get(probe, {}).get("httpGet", {})
            if got.get("path") != path or got.get("port") not in ("metrics", ports.get("metrics")):
                out.append(f"container: {probe} must GET {path} on the metrics port")
        if not any(t.get("operator") == "Exists" and not t.get("key") for t in spec.get("tolerations", [])):
            out.append("tolerations: needs `operator: Exists` (every node, whatever its taints)")
        us = w["spec"].get("updateStrategy", {})
        if us.get("type") != "RollingUpdate" or "maxUnavailable" not in us.get("rollingUpdate", {}):
            out.append("updateStrategy: RollingUpdate with maxUnavailable required")
    else:
        args = c.get("args", [])
        for flag, value in (("--duration", "30m"), ("--min-success-ratio", "0.999"), ("--report", None)):
            if flag not in args or (value and args[args.index(flag) + 1] != value):
                out.append(f"watch Job: args need {flag} {value or 'FILE'}")
        if args[:1] != ["watch"] or w["spec"].get("backoffLimit") != 0:
            out.append("watch Job: must run `watch` once (backoffLimit: 0)")

    # The config: --config FILE must be a key of the ConfigMap mounted at its directory.
    args = c.get("args", [])
    config_path = args[args.index("--config") + 1] if "--config" in args else None
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    if not config_path:
        return out + ["container: no --config argument"]
    config_dir, config_key = config_path.rsplit("/", 1)
    cm_name = volumes.get(mounts.get(config_dir), {}).get("configMap", {}).get("name")
    cms = {cm["metadata"]["name"]: cm for cm in by_kind.get("ConfigMap", [])}
    if cm_name not in cms or config_key not in cms[cm_name].get("data", {}):
        return out + [f"--config {config_path}: no ConfigMap key {config_key} mounted at {config_dir}"]
    config = tomllib.loads(cms[cm_name]["data"][config_key])

    # [identity] source = "workload-api": the socket must be in a SPIFFE CSI volume.
    identity = config.get("identity")
    if identity is not None and identity.get("source") == "workload-api":
        out += check_workload_api(identity, c, mounts, volumes)
        identity = None
    # [identity] files must be under a mount whose source provides them.
    for key in ("cert", "key", "ca"):
        if identity is None:
            break
        path = identity.get(key, "")
        directory, base = path.rsplit("/", 1) if "/" in path else ("", path)
        volume = volumes.get(mounts.get(directory), {})
        if "secret" in volume:
            source = "secret"
        elif "emptyDir" in volume and directory in annotations.get("proxy.istio.io/config", ""):
            source = "istio"
        else:
            out.append(f"[identity].{key} = {path}: not in a mounted Secret or istio-agent output volume")
            continue
        if base not in IDENTITY_FILES[source]:
            out.append(f"[identity].{key} = {path}: a {source} volume provides {sorted(IDENTITY_FILES[source])}")

    # [agent] include: each pattern's directory is a mounted ConfigMap (the matrix from
    # `mtls-prober plan`), rendered here or optional (created by `kubectl create`).
    for pattern in config.get("agent", {}).get("include", []):
        directory = pattern.rsplit("/", 1)[0] if "/" in pattern else ""
        source = volumes.get(mounts.get(directory), {}).get("configMap")
        if source is None:
            out.append(f"[agent].include {pattern}: {directory} is not a mounted ConfigMap")
        elif source.get("name") not in cms and not source.get("optional"):
            out.append(f"[agent].include {pattern}: ConfigMap {source.get('name')} is neither rendered nor optional")

    # Istio: the agent writes where the prober reads, and intercepts nothing.
    if meta.get("labels", {}).get("sidecar.istio.io/inject") == "true":
        proxy = yaml_load(annotations.get("proxy.istio.io/config", "")) or {}
        output = proxy.get("proxyMetadata", {}).get("OUTPUT_CERTS")
        user_mounts = json.loads(annotations.get("sidecar.istio.io/userVolumeMount", "[]"))
        if not any(m.get("mountPath") == output and volumes.get(m.get("name"), {}).get("emptyDir", {}).get("medium") == "Memory"
                   for m in user_mounts):
            out.append("istio: OUTPUT_CERTS must be a userVolumeMount of an in-memory emptyDir")
        if output not in mounts or identity is None or not identity.get("cert", "").startswith(output + "/"):
            out.append(f"istio: the prober must mount OUTPUT_CERTS ({output}) and read [identity] from it")
        for a in ("traffic.sidecar.istio.io/includeInboundPorts", "traffic.sidecar.istio.io/includeOutboundIPRanges"):
            if annotations.get(a) != "":
                out.append(f'istio: {a} must be "" (the prober makes its own handshakes)')

    if w["kind"] == "DaemonSet":
        listen = config.get("agent", {}).get("listen", "0.0.0.0:9464")
        if int(listen.rsplit(":", 1)[1]) != ports.get("metrics"):
            out.append(f"[agent].listen {listen} is not the metrics containerPort {ports.get('metrics')}")
        if "serve" in config and int(config["serve"]["listen"].rsplit(":", 1)[1]) != ports.get("serve"):
            out.append(f"[serve].listen {config['serve']['listen']} is not the serve containerPort")
        for svc in by_kind.get("Service", []):
            dns = f"{svc['metadata']['name']}.{svc['metadata'].get('namespace')}.svc.cluster.local"
            svc_ports = {p["port"] for p in svc["spec"]["ports"]}
            for d in config.get("discover", []):
                if d["dns"] == dns and (svc["spec"].get("clusterIP") != "None" or d["port"] not in svc_ports):
                    out.append(f"[[discover]] {d['name']}: {dns} must be headless and serve port {d['port']}")
        # [fleet]: the peers name lists every agent (a headless Service over the agent
        # pods that lists them before they are ready, or a starting agent would not find
        # itself), and `self` defaults to $POD_IP from the downward API.
        fleet = config.get("fleet")
        if fleet is not None:
            services = {
                f"{s['metadata']['name']}.{s['metadata'].get('namespace')}.svc.cluster.local": s
                for s in by_kind.get("Service", [])
            }
            svc = services.get(fleet.get("peers"))
            if svc is None:
                out.append(f"[fleet].peers {fleet.get('peers')}: no Service of that name in the rendered manifests")
            else:
                selector = svc["spec"].get("selector", {})
                if svc["spec"].get("clusterIP") != "None" or not svc["spec"].get("publishNotReadyAddresses"):
                    out.append(f"[fleet].peers {fleet['peers']}: must be headless with publishNotReadyAddresses: true")
                if not selector or not selector.items() <= meta.get("labels", {}).items():
                    out.append(f"[fleet].peers {fleet['peers']}: its selector does not select the agent pods")
            if "self" not in fleet and env.get("POD_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "status.podIP":
                out.append("[fleet] without self: POD_IP must come from the downward API (status.podIP)")
        for pm in by_kind.get("PodMonitor", []):
            sel = pm["spec"]["selector"].get("matchLabels", {})
            if not sel.items() <= meta.get("labels", {}).items():
                out.append(f"PodMonitor {pm['metadata']['name']} does not select the agent pods")
            for ep in pm["spec"].get("podMetricsEndpoints", []):
                if ep.get("port") not in ports:
                    out.append(f"PodMonitor port {ep.get('port')} is not a container port")
    return out


def check_workload_api(identity, c, mounts, volumes):
    """The Workload API socket ([identity].socket, else the container's
    SPIFFE_ENDPOINT_SOCKET) is a unix:// path in a read-only csi.spiffe.io volume."""
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    socket = identity.get("socket") or env.get("SPIFFE_ENDPOINT_SOCKET")
    if not socket:
        return ["[identity] source = \"workload-api\" without socket, and no SPIFFE_ENDPOINT_SOCKET in the container"]
    if not socket.startswith("unix://"):
        return []  # tcp:// needs no volume
    path = socket[len("unix://"):]
    directory = path.rsplit("/", 1)[0]
    volume = volumes.get(mounts.get(directory), {})
    csi = volume.get("csi", {})
    if csi.get("driver") != "csi.spiffe.io" or csi.get("readOnly") is not True:
        return [f"Workload API socket {socket}: not in a read-only csi.spiffe.io volume mounted at {directory}"]
    mount = next(m for m in c.get("volumeMounts", []) if m["mountPath"].rstrip("/") == directory)
    if mount.get("readOnly") is not True:
        return [f"Workload API socket {socket}: mount {directory} read-only"]
    return []


def yaml_load(text):
    import yaml

    return yaml.safe_load(text)


# === rules-file ===


def rules_file(out):
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper, value):
        # Multi-line PromQL stays readable (and grep-able) as a literal block.
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    rule = yaml.safe_load(RULE_SOURCE.read_text())
    Path(out).write_text(yaml.dump(rule["spec"], Dumper=Dumper, sort_keys=False, width=1000, allow_unicode=True))
    print(f"  ok   {RULE_SOURCE.relative_to(DEPLOY.parent)} spec -> {out}")
    return []


# === metric-names ===

TOKEN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def load_metric_list():
    listed = {}
    for line in METRIC_LIST.read_text().splitlines():
        line = line.split("#", 1)[0].split()
        if line:
            listed[line[0]] = line[1] if len(line) > 1 else "untyped"
    return listed


def metric_names(spec_path):
    import yaml

    problems = []
    listed = load_metric_list()
    histograms = {n for n, t in listed.items() if t == "histogram"}
    rules = yaml.safe_load(RULE_SOURCE.read_text())["spec"]["groups"]
    recorded = {r["record"] for g in rules for r in g["rules"] if "record" in r}

    used = {}  # name -> files
    recording_used = {}
    for path in sorted(DEPLOY.rglob("*")):
        if path.suffix not in (".yaml", ".yml", ".json") or path.parent == SCHEMAS:
            continue
        rel = str(path.relative_to(DEPLOY.parent))
        for token in TOKEN.findall(path.read_text()):
            if ":" in token:
                # Recording rules are named level:metric:operations.
                if "mtls_probe" in token:
                    recording_used.setdefault(token, set()).add(rel)
            elif token.startswith("mtls_probe_"):
                used.setdefault(token, set()).add(rel)

    for name, files in sorted(used.items()):
        base = name
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in histograms:
                base = name[: -len(suffix)]
        if base not in listed:
            problems.append(f"{name} (in {', '.join(sorted(files))}) is not in deploy/metric-names.txt")
    for name, files in sorted(recording_used.items()):
        if name not in recorded:
            problems.append(f"recording rule {name} (in {', '.join(sorted(files))}) is not defined")
    for name in sorted(listed):
        forms = {name} | {name + s for s in HISTOGRAM_SUFFIXES}
        if not forms & used.keys():
            print(f"  note {name} is exported but used by no rule or panel")
    print(f"  ok   {len(used)} mtls_probe_* names and {len(recording_used)} recording rules checked "
          f"against {len(listed)} listed metrics and {len(recorded)} defined rules")

    if spec_path:
        spec = Path(spec_path).read_text()
        section = re.search(r"^## 6\..*?(?=^## \d+\.|\Z)", spec, re.S | re.M)
        in_spec = dict(re.findall(r"^\| `(mtls_probe_[a-z_]+)` \| (\w+)", section.group(0) if section else "", re.M))
        # §12 (fleet) names its metrics in the text (`mtls_probe_fleet_members{source}`),
        # without a type: they count with the type the list gives them.
        fleet = re.search(r"^## 12\..*?(?=^## \d+\.|\Z)", spec, re.S | re.M)
        for name in re.findall(r"`(mtls_probe_[a-z_]+)\{", fleet.group(0) if fleet else ""):
            in_spec.setdefault(name, listed.get(name, "untyped"))
        if in_spec != listed:
            problems.append(
                f"deploy/metric-names.txt differs from {spec_path} §6: "
                f"only in the list {sorted(set(listed) - set(in_spec))}, "
                f"only in the spec {sorted(set(in_spec) - set(listed))}, "
                f"type differs {sorted(n for n in set(listed) & set(in_spec) if listed[n] != in_spec[n])}"
            )
        else:
            print(f"  ok   deploy/metric-names.txt matches {spec_path} §6 and §12 ({len(listed)} metrics)")
    return problems


# === dashboard ===


# Grafana variables replaced by a value of the right type before promtool sees a query.
GRAFANA_VARS = {"$__rate_interval": "5m", "$window": "30m", "$source": ".*"}


def dashboard(file, promql_out=None):
    problems = []
    try:
        dash = json.loads(Path(file).read_text())
    except json.JSONDecodeError as e:
        return [f"{file}: not JSON: {e}"]
    for key in ("title", "uid", "panels", "schemaVersion", "templating"):
        if key not in dash:
            problems.append(f"{file}: no {key!r}")
    variables = {v.get("name") for v in dash.get("templating", {}).get("list", [])}
    panels = list(walk_panels(dash.get("panels", [])))
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        problems.append(f"{file}: duplicate panel ids {sorted(i for i in ids if ids.count(i) > 1)}")
    exprs = 0
    for p in panels:
        title = p.get("title", f"panel {p.get('id')}")
        if "gridPos" not in p:
            problems.append(f"{file}: {title!r} has no gridPos")
        if p.get("type") == "row":
            continue
        targets = p.get("targets", [])
        if not targets:
            problems.append(f"{file}: {title!r} has no query")
        for t in targets:
            if not t.get("expr"):
                problems.append(f"{file}: {title!r} has a target without expr")
            exprs += 1
            for ref in re.findall(r"\$\{?(\w+)", t.get("expr", "")):
                if not ref.startswith("__") and ref not in variables:
                    problems.append(f"{file}: {title!r} uses undefined variable ${ref}")
        ds = json.dumps(p.get("datasource", {}))
        if "${datasource}" not in ds:
            problems.append(f"{file}: {title!r} does not use the $datasource variable")
    if promql_out:
        rules = []
        for p in panels:
            for t in p.get("targets", []):
                expr = t.get("expr", "")
                for var, value in GRAFANA_VARS.items():
                    expr = expr.replace(var, value)
                rules.append({"record": f"dashboard:panel{p.get('id')}:{t.get('refId', 'A')}", "expr": expr})
        Path(promql_out).write_text(json.dumps({"groups": [{"name": "dashboard-queries", "rules": rules}]}, indent=1))
    if not problems:
        print(f"  ok   {file}: {len(panels)} panels, {exprs} queries")
    return problems


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


# === dockerfile ===


def dockerfile(file, command):
    text = Path(file).read_text()
    # Join continuation lines, drop comments: one instruction per entry.
    lines = [ln for ln in re.sub(r"\\\n", " ", text).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    instructions = [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1].strip() if " " in ln.strip() else "") for ln in lines]
    problems = []
    runs = [arg for op, arg in instructions if op == "RUN"]
    if runs != [command]:
        problems.append(f"{file}: RUN instructions {runs!r}; expected exactly one: {command!r} (what CI runs)")
    for op, arg in instructions:
        if op == "ADD":
            problems.append(f"{file}: ADD {arg!r}: use COPY; nothing may be downloaded at build time")
    froms = [arg for op, arg in instructions if op == "FROM"]
    if len(froms) < 2:
        problems.append(f"{file}: not multi-stage ({len(froms)} FROM)")
    elif not froms[-1].startswith("gcr.io/distroless/cc-debian12:nonroot"):
        problems.append(f"{file}: runtime stage is {froms[-1]!r}, expected gcr.io/distroless/cc-debian12:nonroot")
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM"):]
    users = [arg for op, arg in final if op == "USER"]
    if not users or not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]):
        problems.append(f"{file}: runtime stage USER {users!r}: must be a numeric non-root uid")
    expect = {
        "ENTRYPOINT": '["mtls-prober"]',
        "CMD": '["run", "--config", "/etc/mtls-prober/probes.toml"]',
    }
    for op, want in expect.items():
        got = [arg for o, arg in final if o == op]
        if not got or json.loads(got[-1]) != json.loads(want):
            problems.append(f"{file}: {op} {got[-1] if got else None}; expected {want}")
    for op, arg in instructions:
        sources = arg.split()[:-1] if op == "COPY" and not arg.startswith("--from") else []
        for src in sources:
            if src != "." and not (Path(file).parent / src).exists():
                print(f"  note {file}: COPY {src}: not in the repository yet; `docker build` fails until it is")
    labels = " ".join(arg for op, arg in final if op == "LABEL")
    for label in ("org.opencontainers.image.source", "org.opencontainers.image.version",
                  "org.opencontainers.image.licenses", "org.opencontainers.image.title"):
        if label not in labels:
            problems.append(f"{file}: no OCI label {label}")
    if not problems:
        print(f"  ok   {file}: {len(froms)} stages, the only RUN is `{command}`, runtime {froms[-1]}, USER {users[-1]}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
