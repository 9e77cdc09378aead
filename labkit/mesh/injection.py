"""Istio's sidecar injector as an admission step of the sim's API server (istiod's ``/inject`` webhook, 1.27).

Which pods: the selectors of the ``istio-sidecar-injector`` MutatingWebhookConfiguration of the default revision
(a namespace labelled ``istio-injection=enabled`` unless the pod says ``sidecar.istio.io/inject: "false"``; or, in
a namespace with neither ``istio-injection`` nor ``istio.io/rev``, a pod labelled ``sidecar.istio.io/inject:
"true"``; ``istio.io/rev=default`` on either side as well), then istiod's own ``injectRequired`` (no host-network
pods, never in kube-system, kube-public, kube-node-lease or local-path-storage). Only CREATE, as the webhook's rule.

What is added, from Istio's injection template with native sidecars off (``ENABLE_NATIVE_SIDECARS=false``): a
regular ``istio-proxy`` container (image ``docker.io/istio/proxyv2:<release>``, ``proxy sidecar`` args, port 15090
``http-envoy-prom``, the pod's identity as ``ISTIO_META_*`` env), so ``kubectl get pods`` shows ``2/2``; its volumes;
the canonical-service and tlsMode labels; the ``prometheus.io/*`` annotations pointing at the agent's merged metrics
(15020 ``/stats/prometheus``, the app's own scrape settings kept in ``ISTIO_PROMETHEUS_ANNOTATIONS``) and the
``sidecar.istio.io/status`` annotation.

The sim's deviations: no ``istio-init`` container (the sim has no iptables: the app's ``HTTP_PROXY`` is the sidecar's
outbound listener and a meshed pod's endpoints name its inbound port 15006), so ``initContainers`` is left alone;
no certificate volumes (no mTLS); the app's HTTP probes are not rewritten to the agent's ``/app-health`` (the
kubelet reaches the app's port directly, there being no redirect to bypass); the sidecar's probes ask the agent's
status port 15020 (pilot-agent serves ``/healthz/ready`` there too) instead of Envoy's 15021 health listener.
"""

from __future__ import annotations

import json
from typing import Any

from ..kube.apiserver.admission import Plugin, Request
from .crds import ISTIO_VERSION
from .identity import CLUSTER_ID, ENVOY_PROMETHEUS_PORT, MERGED_METRICS_PORT, MESH_ID

Obj = dict[str, Any]
NAMESPACE_LABEL = "istio-injection"
REVISION_LABEL = "istio.io/rev"
INJECT_LABEL = "sidecar.istio.io/inject"
STATUS_ANNOTATION = "sidecar.istio.io/status"
PROXY = "istio-proxy"
IMAGE = f"docker.io/istio/proxyv2:{ISTIO_VERSION}"
IGNORED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "local-path-storage")
VOLUMES = ("istio-envoy", "istio-data", "istio-podinfo", "istio-token")
PROMETHEUS = ("prometheus.io/scrape", "prometheus.io/path", "prometheus.io/port")


# ------------------------------------------------------------------------------------ who is injected


def webhook_selects(ns_labels: dict[str, str], pod_labels: dict[str, str]) -> bool:
    """Whether one of the default revision's four webhooks matches (namespaceSelector and objectSelector)."""
    ns_inject, ns_rev = ns_labels.get(NAMESPACE_LABEL), ns_labels.get(REVISION_LABEL)
    pod_inject, pod_rev = pod_labels.get(INJECT_LABEL), pod_labels.get(REVISION_LABEL)
    not_disabled = pod_inject != "false"
    return any((
        ns_rev == "default" and ns_inject is None and not_disabled,  # rev.namespace.sidecar-injector.istio.io
        ns_rev is None and ns_inject is None and not_disabled and pod_rev == "default",  # rev.object.
        ns_inject == "enabled" and not_disabled,  # namespace.sidecar-injector.istio.io
        ns_inject is None and ns_rev is None and pod_inject == "true" and pod_rev is None,  # object.
    ))


def inject_required(pod: Obj) -> bool:
    """istiod's ``injectRequired`` with the default policy ``enabled``: the label (or the older annotation) may
    opt out; host-network pods and the system namespaces never get a sidecar."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    if spec.get("hostNetwork") or meta.get("namespace") in IGNORED_NAMESPACES:
        return False
    if any(c.get("name") == PROXY for c in spec.get("containers") or []):
        return False  # already injected
    choice = (meta.get("labels") or {}).get(INJECT_LABEL, (meta.get("annotations") or {}).get(INJECT_LABEL, ""))
    return choice != "false"


# ------------------------------------------------------------------------------------ what is added


def deploy_meta(pod: Obj) -> tuple[str, str, str]:
    """(workload name, apiVersion, kind) as istiod's ``GetDeployMetaFromPod`` guesses them from the controller."""
    meta = pod.get("metadata") or {}
    name, api_version, kind = meta.get("name", ""), "v1", "Pod"
    if meta.get("generateName"):
        ref = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        if ref is not None:
            name, api_version, kind = ref.get("name", ""), ref.get("apiVersion", ""), ref.get("kind", "")
            template_hash = (meta.get("labels") or {}).get("pod-template-hash", "")
            if kind == "ReplicaSet" and template_hash and name.endswith(template_hash):
                name, kind = name.removesuffix("-" + template_hash), "Deployment"
    return name or meta.get("name", ""), api_version, kind


def _field(path: str) -> Obj:
    return {"valueFrom": {"fieldRef": {"fieldPath": path}}}


def _resource(resource: str) -> Obj:
    return {"valueFrom": {"resourceFieldRef": {"resource": resource, "divisor": "0"}}}


PORT_FIELDS = ("name", "hostPort", "containerPort", "protocol", "hostIP")  # Go's ContainerPort field order


def _pod_ports(containers: list[Obj]) -> str:
    """``ISTIO_META_POD_PORTS`` as the template renders it: one JSON port a line, later ones led by a comma."""
    ports = [json.dumps({k: p[k] for k in PORT_FIELDS if p.get(k)}, separators=(",", ":"))
             for c in containers for p in c.get("ports") or []]
    return "[\n    " + "\n    ,".join(ports) + "\n]" if ports else "[\n]"


def _probe(period: int, failures: int) -> Obj:
    return {"httpGet": {"path": "/healthz/ready", "port": MERGED_METRICS_PORT}, "periodSeconds": period,
            "timeoutSeconds": 3, "failureThreshold": failures}


def proxy_container(pod: Obj, app_scrape: Obj | None) -> Obj:
    """The ``istio-proxy`` container for ``pod``."""
    meta = pod.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    apps = [c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") != PROXY]
    workload, api_version, kind = deploy_meta(pod)
    workload = (meta.get("labels") or {}).get("service.istio.io/workload-name", workload)
    env: list[Obj] = [
        {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
        {"name": "CA_ADDR", "value": "istiod.istio-system.svc:15012"},
        {"name": "POD_NAME", **_field("metadata.name")},
        {"name": "POD_NAMESPACE", **_field("metadata.namespace")},
        {"name": "INSTANCE_IP", **_field("status.podIP")},
        {"name": "SERVICE_ACCOUNT", **_field("spec.serviceAccountName")},
        {"name": "HOST_IP", **_field("status.hostIP")},
        {"name": "ISTIO_CPU_LIMIT", **_resource("limits.cpu")},
        {"name": "PROXY_CONFIG", "value": "{}\n"},
        {"name": "ISTIO_META_POD_PORTS", "value": _pod_ports(apps)},
        {"name": "ISTIO_META_APP_CONTAINERS", "value": ",".join(c.get("name", "") for c in apps)},
        {"name": "GOMEMLIMIT", **_resource("limits.memory")},
        {"name": "GOMAXPROCS", **_resource("limits.cpu")},
        {"name": "ISTIO_META_CLUSTER_ID", "value": CLUSTER_ID},
        {"name": "ISTIO_META_NODE_NAME", **_field("spec.nodeName")},
        {"name": "ISTIO_META_INTERCEPTION_MODE", "value": "REDIRECT"},
        {"name": "ISTIO_META_WORKLOAD_NAME", "value": workload},
        {"name": "ISTIO_META_OWNER",
         "value": f"kubernetes://apis/{api_version}/namespaces/{ns}/{kind.lower()}s/{workload}"},
        {"name": "ISTIO_META_MESH_ID", "value": MESH_ID},
        {"name": "TRUST_DOMAIN", "value": MESH_ID},
    ]
    if app_scrape:
        env.append({"name": "ISTIO_PROMETHEUS_ANNOTATIONS", "value": json.dumps(app_scrape, separators=(",", ":"))})
    return {
        "name": PROXY, "image": IMAGE,
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local", "--proxyLogLevel=warning",
                 "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"],
        "ports": [{"containerPort": ENVOY_PROMETHEUS_PORT, "name": "http-envoy-prom", "protocol": "TCP"}],
        "env": env,
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "startupProbe": _probe(1, 600), "readinessProbe": _probe(15, 4),
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "privileged": False, "readOnlyRootFilesystem": True, "runAsGroup": 1337,
                            "runAsNonRoot": True, "runAsUser": 1337},
        "volumeMounts": [{"mountPath": "/var/lib/istio/data", "name": "istio-data"},
                         {"mountPath": "/etc/istio/proxy", "name": "istio-envoy"},
                         {"mountPath": "/var/run/secrets/tokens", "name": "istio-token"},
                         {"mountPath": "/etc/istio/pod", "name": "istio-podinfo"}],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def volumes() -> list[Obj]:
    return [
        {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
        {"name": "istio-data", "emptyDir": {}},
        {"name": "istio-podinfo", "downwardAPI": {"defaultMode": 420, "items": [
            {"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.annotations"}}]}},
        {"name": "istio-token", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {
            "audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}},
    ]


def _app_scrape(annotations: dict[str, str]) -> Obj | None:
    """The app's own ``prometheus.io/*`` settings (``applyPrometheusMerge``); None when it asks for no scrape."""
    if annotations.get("prometheus.io/scrape", "true").lower() in ("false", "0", "f"):
        return None
    return {key.split("/")[1]: annotations[key] for key in PROMETHEUS if key in annotations}


def inject(pod: Obj) -> None:
    """Add the sidecar to ``pod`` (in place), as the injection template and ``postProcessPod`` do."""
    meta = pod.setdefault("metadata", {})
    spec = pod.setdefault("spec", {})
    labels = meta.setdefault("labels", {})
    annotations = meta.setdefault("annotations", {})
    apps = [c.get("name", "") for c in spec.get("containers") or []]
    workload = deploy_meta(pod)[0]
    labels.setdefault("security.istio.io/tlsMode", "istio")
    labels.setdefault("service.istio.io/canonical-name", (
        labels.get("app.kubernetes.io/name") or labels.get("app") or workload)[:63].rstrip("-"))
    labels.setdefault("service.istio.io/canonical-revision",
                      labels.get("app.kubernetes.io/version") or labels.get("version") or "latest")
    scrape = _app_scrape(annotations)
    merged = scrape is not None and annotations.get("prometheus.io/port") != str(MERGED_METRICS_PORT)
    spec.setdefault("containers", []).append(proxy_container(pod, scrape if merged and scrape else None))
    taken = {v.get("name") for v in spec.get("volumes") or []}
    spec.setdefault("volumes", []).extend(v for v in volumes() if v["name"] not in taken)
    annotations.setdefault("istio.io/rev", "default")
    if apps:
        annotations.setdefault("kubectl.kubernetes.io/default-logs-container", apps[0])
        annotations.setdefault("kubectl.kubernetes.io/default-container", apps[0])
    if merged:
        for key in PROMETHEUS:
            annotations.pop(key, None)
        annotations.update({"prometheus.io/port": str(MERGED_METRICS_PORT), "prometheus.io/path": "/stats/prometheus",
                            "prometheus.io/scrape": "true"})
    annotations[STATUS_ANNOTATION] = json.dumps(
        {"initContainers": None, "containers": [PROXY], "volumes": list(VOLUMES), "imagePullSecrets": None,
         "revision": "default"}, separators=(",", ":"))


class SidecarInjection(Plugin):
    """``MutatingAdmissionWebhook`` calling istiod's injector for new pods the webhook's selectors match."""

    name = "MutatingAdmissionWebhook(sidecar-injector.istio.io)"

    def admit(self, req: Request) -> list[str]:
        if req.rt.key != "/pods" or req.old is not None:
            return []
        ns = req.objects.store.get("/namespaces", "", req.namespace) or {}
        ns_labels = (ns.get("metadata") or {}).get("labels") or {}
        pod_labels = (req.obj.get("metadata") or {}).get("labels") or {}
        if webhook_selects(ns_labels, pod_labels) and inject_required(req.obj):
            inject(req.obj)
        return []
