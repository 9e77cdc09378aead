"""The defaults the real API server fills in on the built-in kinds (the ones clients rely on and kubectl
prints)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

from ...core.timings import timings

# ------------------------------------------------------------------------------------ defaulting


def apply_defaults(obj: dict[str, Any]) -> None:
    """Fill in, in place, the defaults the real API server sets on the built-in kinds."""
    kind = obj.get("kind")
    spec = obj.get("spec")
    if kind in _SPEC_DEFAULTS:
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        _SPEC_DEFAULTS[kind](spec)
    elif kind in _OBJECT_DEFAULTS:
        _OBJECT_DEFAULTS[kind](obj)


def _set(d: dict[str, Any], key: str, value: Any) -> Any:
    if d.get(key) is None:
        d[key] = value
    return d[key]


def default_pod_spec(spec: dict[str, Any]) -> None:
    """PodSpec defaults (SetDefaults_PodSpec, _Container, _ContainerPort, _Volume …)."""
    _set(spec, "restartPolicy", "Always")
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "schedulerName", "default-scheduler")
    _set(spec, "terminationGracePeriodSeconds", 30)
    _set(spec, "securityContext", {})
    if spec.get("serviceAccountName") and not spec.get("serviceAccount"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or []:
            if isinstance(c, dict):
                _default_container(c)
    for vol in spec.get("volumes") or []:
        if not isinstance(vol, dict):
            continue
        for source, mode_key in (("configMap", "defaultMode"), ("secret", "defaultMode"),
                                 ("projected", "defaultMode"), ("downwardAPI", "defaultMode")):
            if isinstance(vol.get(source), dict):
                _set(vol[source], mode_key, 420)
        if not any(k != "name" for k in vol):
            vol["emptyDir"] = {}


def _default_container(c: dict[str, Any]) -> None:
    _set(c, "terminationMessagePath", "/dev/termination-log")
    _set(c, "terminationMessagePolicy", "File")
    _set(c, "resources", {})
    image = c.get("image") or ""
    if c.get("imagePullPolicy") is None and image:
        c["imagePullPolicy"] = "Always" if _image_tag(image) in ("", "latest") else "IfNotPresent"
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.get(probe_key)
        if isinstance(probe, dict):
            for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                               ("failureThreshold", 3)):
                _set(probe, key, value)
            if isinstance(probe.get("httpGet"), dict):
                _set(probe["httpGet"], "scheme", "HTTP")
                _set(probe["httpGet"], "path", "/")
    for env in c.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(field_ref, dict):
            _set(field_ref, "apiVersion", "v1")


def _image_tag(image: str) -> str:
    """The tag of an image reference ('' when there is none; digests count as pinned)."""
    if "@" in image:
        return "digest"
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def _default_template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec = template.get("spec")
        if isinstance(pod_spec, dict):
            default_pod_spec(pod_spec)


def _default_selector_from_template(spec: dict[str, Any]) -> None:
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if spec.get("selector") is None and labels:
        spec["selector"] = {"matchLabels": dict(labels)}


def _default_deployment(spec: dict[str, Any]) -> None:
    _set(spec, "replicas", 1)
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    strategy = _set(spec, "strategy", {})
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _set(strategy, "rollingUpdate", {})
        _set(rolling, "maxUnavailable", "25%")
        _set(rolling, "maxSurge", "25%")
    _default_template(spec)


def _default_replicaset(spec: dict[str, Any]) -> None:
    _set(spec, "replicas", 1)
    _default_template(spec)


def _default_statefulset(spec: dict[str, Any]) -> None:
    _set(spec, "replicas", 1)
    _set(spec, "podManagementPolicy", "OrderedReady")
    _set(spec, "revisionHistoryLimit", 10)
    strategy = _set(spec, "updateStrategy", {})
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _set(_set(strategy, "rollingUpdate", {}), "partition", 0)
    policy = _set(spec, "persistentVolumeClaimRetentionPolicy", {})
    _set(policy, "whenDeleted", "Retain")
    _set(policy, "whenScaled", "Retain")
    _default_template(spec)


def _default_daemonset(spec: dict[str, Any]) -> None:
    _set(spec, "revisionHistoryLimit", 10)
    strategy = _set(spec, "updateStrategy", {})
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _set(strategy, "rollingUpdate", {})
        _set(rolling, "maxUnavailable", 1)
        _set(rolling, "maxSurge", 0)
    _default_template(spec)


def _default_job(spec: dict[str, Any]) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    _set(spec, "parallelism", 1)
    _set(spec, "backoffLimit", 6)
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)
    _set(spec, "podReplacementPolicy", "TerminatingOrFailed")
    _default_template(spec)


def _default_cronjob(spec: dict[str, Any]) -> None:
    _set(spec, "concurrencyPolicy", "Allow")
    _set(spec, "suspend", False)
    _set(spec, "successfulJobsHistoryLimit", 3)
    _set(spec, "failedJobsHistoryLimit", 1)
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict) and isinstance(job_template.get("spec"), dict):
        _default_template(job_template["spec"])


def _default_service(spec: dict[str, Any]) -> None:
    kind = _set(spec, "type", "ClusterIP")
    _set(spec, "sessionAffinity", "None")
    if kind != "ExternalName":
        _set(spec, "ipFamilyPolicy", "SingleStack")
        _set(spec, "ipFamilies", ["IPv4"])
        _set(spec, "internalTrafficPolicy", "Cluster")
    if kind in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        _set(spec, "allocateLoadBalancerNodePorts", True)
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
            if port.get("targetPort") is None and port.get("port") is not None:
                port["targetPort"] = port["port"]


def _default_namespace(obj: dict[str, Any]) -> None:
    spec = _set(obj, "spec", {})
    _set(spec, "finalizers", ["kubernetes"])
    status = _set(obj, "status", {})
    _set(status, "phase", "Active")
    labels = _set(_set(obj, "metadata", {}), "labels", {})
    name = obj["metadata"].get("name")
    if name:
        labels.setdefault("kubernetes.io/metadata.name", name)


def _default_secret(obj: dict[str, Any]) -> None:
    _set(obj, "type", "Opaque")
    string_data = obj.pop("stringData", None)  # write-only: merged into data (over its keys), as v1 conversion does
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
        obj["data"] = {**data, **{k: base64.b64encode(str(v).encode()).decode() for k, v in string_data.items()}}


# The API server's --default-{not-ready,unreachable}-toleration-seconds (300 in a stock cluster):
# the lab shortens it (versions.yaml timings) so that a stopped node's pods move within a lesson.
DEFAULT_TOLERATION_SECONDS = int(timings("sim").eviction_seconds)


def _default_pod(obj: dict[str, Any]) -> None:
    spec = _set(obj, "spec", {})
    default_pod_spec(spec)
    _set(spec, "enableServiceLinks", True)
    # priority and preemptionPolicy: the Priority admission plugin (policy.py) sets them on create
    # the DefaultTolerationSeconds admission plugin
    tolerations = _set(spec, "tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(isinstance(t, dict) and t.get("key") == key for t in tolerations):
            tolerations.append({"effect": "NoExecute", "key": key, "operator": "Exists",
                                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
    status = _set(obj, "status", {})
    _set(status, "phase", "Pending")
    _set(status, "qosClass", _qos_class(spec))


def _qos_class(spec: dict[str, Any]) -> str:
    containers = spec.get("containers") or []
    resources = [c.get("resources") or {} for c in containers if isinstance(c, dict)]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get("cpu") and (r.get("limits") or {}).get("memory")
        and all((r.get("requests") or {}).get(k, (r.get("limits") or {})[k]) == (r.get("limits") or {})[k]
                for k in ("cpu", "memory"))
        for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"


def _default_endpoint_slice(obj: dict[str, Any]) -> None:
    for port in obj.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")


def _default_endpoints(obj: dict[str, Any]) -> None:
    for subset in obj.get("subsets") or []:
        for port in (subset or {}).get("ports") or []:
            if isinstance(port, dict):
                _set(port, "protocol", "TCP")


# SetDefaults_HorizontalPodAutoscalerBehavior (autoscaling/v2): the rules of a direction the behavior leaves out.
# Scale-down's stabilization window stays unset: the controller's --horizontal-pod-autoscaler-downscale-
# stabilization (300 s) fills it.
HPA_SCALE_UP_RULES: dict[str, Any] = {
    "stabilizationWindowSeconds": 0, "selectPolicy": "Max",
    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                 {"type": "Percent", "value": 100, "periodSeconds": 15}]}
HPA_SCALE_DOWN_RULES: dict[str, Any] = {
    "selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _default_hpa(obj: dict[str, Any]) -> None:
    """SetDefaults_HorizontalPodAutoscaler: autoscaling/v1 only defaults minReplicas; v2 also the 80% CPU
    target and, when a behavior is given, the rules of both directions (field by field)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set(spec, "minReplicas", 1)
    if obj.get("apiVersion") != "autoscaling/v2":
        return
    _set(obj, "status", {"desiredReplicas": 0})  # the stored zero status, before the controller's first sync
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        for key, rules in (("scaleUp", HPA_SCALE_UP_RULES), ("scaleDown", HPA_SCALE_DOWN_RULES)):
            given = behavior.get(key) if isinstance(behavior.get(key), dict) else {}
            behavior[key] = {**copy.deepcopy(rules), **{k: v for k, v in given.items() if v is not None}}


def _default_persistent_volume(obj: dict[str, Any]) -> None:
    """SetDefaults_PersistentVolume: Retain, Filesystem, phase Pending (the controller makes it Available)."""
    spec = _set(obj, "spec", {})
    _set(spec, "persistentVolumeReclaimPolicy", "Retain")
    _set(spec, "volumeMode", "Filesystem")
    if isinstance(spec.get("hostPath"), dict):
        _set(spec["hostPath"], "type", "")
    _set(_set(obj, "status", {}), "phase", "Pending")


def _default_persistent_volume_claim(obj: dict[str, Any]) -> None:
    _set(_set(obj, "spec", {}), "volumeMode", "Filesystem")
    _set(_set(obj, "status", {}), "phase", "Pending")


def _default_storage_class(obj: dict[str, Any]) -> None:
    _set(obj, "reclaimPolicy", "Delete")
    _set(obj, "volumeBindingMode", "Immediate")


_SPEC_DEFAULTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "Deployment": _default_deployment,
    "ReplicaSet": _default_replicaset,
    "StatefulSet": _default_statefulset,
    "DaemonSet": _default_daemonset,
    "Job": _default_job,
    "CronJob": _default_cronjob,
    "Service": _default_service,
}
_OBJECT_DEFAULTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "Pod": _default_pod,
    "Namespace": _default_namespace,
    "Secret": _default_secret,
    "EndpointSlice": _default_endpoint_slice,
    "Endpoints": _default_endpoints,
    "HorizontalPodAutoscaler": _default_hpa,
    "PersistentVolume": _default_persistent_volume,
    "PersistentVolumeClaim": _default_persistent_volume_claim,
    "StorageClass": _default_storage_class,
}
