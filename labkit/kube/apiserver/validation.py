"""Validation of objects written to the emulated API server, in the real API server's order:
decoding against the schema, then the hand-written checks of the built-in kinds (names, labels,
selectors, pod templates, services ...) with the real messages, or a CRD's structural schema."""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Callable
from typing import Any

from ...core.errors import ApiError
from ..controllers.cron import CronError, parse
from . import openapi, quantity
from .decoding import _DecodeError, _Decoder, _validate_custom, crd_schema
from .fielderrors import (
    Cause,
    _each,
    config_key,
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    duplicate,
    forbidden,
    invalid,
    label_value,
    not_found,
    not_supported,
    port_name,
    qualified_name,
    required,
)
from .selectors import selector_matches

# ------------------------------------------------------------------------------------ public API


def validate(obj: dict[str, Any], crds: list[dict[str, Any]], strict: bool,
             checks: bool = True) -> tuple[list[Cause], list[str]]:
    """Validate a written object: (Status causes, unknown field paths).

    Unknown fields are removed from ``obj`` in place, as the real decoder drops
    them (and prunes custom resources); the caller rejects them when
    ``fieldValidation=Strict`` (``strict`` is accepted for symmetry: the paths
    are returned either way, for Warn). A value of the wrong type in a built-in
    kind raises ``ApiError(400, "BadRequest")`` like the real decoder does.
    ``checks=False`` only decodes (no causes), for a version converted before it is checked.
    """
    del strict
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    schema = crd_schema(api_version, kind, crds)
    dec = _Decoder(custom=schema is not None)
    version = api_version.rpartition("/")[2]
    try:
        if schema is not None:
            _validate_custom(obj, schema, dec)
        else:
            name = openapi.definition_name(api_version, kind)
            if name is None:
                return [], []
            dec.builtin(obj, {"$ref": "#/$defs/" + name}, "", "", kind)
    except _DecodeError as e:
        raise ApiError(400, "BadRequest",
                       f'{kind} in version "{version}" cannot be handled as a {kind}: {e}') from None
    if not checks:
        return [], dec.unknown
    causes = _meta_causes(obj, kind, custom=schema is not None) + dec.causes
    if schema is None:
        causes += _KIND_CHECKS.get(kind, lambda o: [])(obj)
    return causes, dec.unknown


# ------------------------------------------------------------------------------------ built-in checks

_LABEL_NAMED = {"Namespace"}
_DNS1035_NAMED = {"Service"}
_PATH_SEGMENT_NAMED = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}  # RBAC: system:… names


def _path_segment_name(name: str) -> list[str]:
    """path.IsValidPathSegmentName: any name that is a single URL path segment."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in "/%" if c in name]


def _meta_causes(obj: dict[str, Any], kind: str, custom: bool) -> list[Cause]:
    meta = obj.get("metadata") or {}
    out: list[Cause] = []
    name = meta.get("name") or ""
    if not name and not meta.get("generateName"):
        out.append(required("metadata.name", "name or generateName is required"))
    elif name:
        check = dns1123_label if kind in _LABEL_NAMED else dns1035_label if kind in _DNS1035_NAMED \
            else _path_segment_name if kind in _PATH_SEGMENT_NAMED else dns1123_subdomain
        out += _each("metadata.name", name, check(name))
    out += _label_causes(meta.get("labels"), "metadata.labels")
    for key in meta.get("annotations") or {}:
        out += _each("metadata.annotations", key, qualified_name(key.lower()))
    del custom
    return out


def _label_causes(labels: dict[str, Any] | None, field: str) -> list[Cause]:
    out: list[Cause] = []
    for key, value in (labels or {}).items():
        out += _each(field, key, qualified_name(key))
        out += _each(field, value, label_value(value if isinstance(value, str) else str(value)))
    return out


def _selector_causes(selector: Any, field: str) -> list[Cause]:
    out = _label_causes((selector or {}).get("matchLabels"), f"{field}.matchLabels")
    ops = ("In", "NotIn", "Exists", "DoesNotExist")
    for i, expr in enumerate((selector or {}).get("matchExpressions") or []):
        f = f"{field}.matchExpressions[{i}]"
        op, values = expr.get("operator"), expr.get("values") or []
        if op not in ops:
            out.append(invalid(f"{f}.operator", op, "not a valid selector operator"))
        elif op in ("In", "NotIn") and not values:
            out.append(required(f"{f}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist") and values:
            out.append(forbidden(f"{f}.values", "may not be specified when `operator` is 'Exists' or "
                                                "'DoesNotExist'"))
        out += _each(f"{f}.key", expr.get("key"), qualified_name(expr.get("key") or ""))
    return out


def _non_negative(value: Any, field: str) -> list[Cause]:
    if isinstance(value, int) and value < 0:
        return [invalid(field, value, "must be greater than or equal to 0")]
    return []


def _workload_causes(obj: dict[str, Any], what: str, restart: tuple[str, ...] = ("Always",)) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    out += _non_negative(spec.get("replicas"), "spec.replicas")
    out += _non_negative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    out += _non_negative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    selector = spec.get("selector")
    template = spec.get("template")
    if selector is None:
        out.append(required("spec.selector"))
    else:
        out += _selector_causes(selector, "spec.selector")
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            out.append(invalid("spec.selector", selector, f"empty selector is invalid for {what}"))
    if template is None:
        out.append(required("spec.template"))
        return out
    labels = (template.get("metadata") or {}).get("labels")
    if selector and (selector.get("matchLabels") or selector.get("matchExpressions")) \
            and not selector_matches(selector, labels):
        out.append(invalid("spec.template.metadata.labels", labels or {},
                           "`selector` does not match template `labels`"))
    out += _template_causes(template, "spec.template", restart)
    return out


def _template_causes(template: dict[str, Any], field: str, restart: tuple[str, ...]) -> list[Cause]:
    out = _label_causes((template.get("metadata") or {}).get("labels"), f"{field}.metadata.labels")
    pod_spec = template.get("spec") or {}
    out += pod_spec_causes(pod_spec, f"{field}.spec")
    policy = pod_spec.get("restartPolicy")
    if policy in _RESTART_POLICIES and policy not in restart:
        if restart == ("Always",):
            out.append(not_supported(f"{field}.spec.restartPolicy", policy, restart))
        else:
            out.append(required(f"{field}.spec.restartPolicy",
                                "valid values: " + ", ".join(json.dumps(r) for r in restart)))
    return out


_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_ENV_NAME_ERROR = ("a valid environment variable name must consist only of printable ASCII characters "
                   "other than '='")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_PROTOCOLS = ("SCTP", "TCP", "UDP")


def pod_spec_causes(spec: dict[str, Any], field: str) -> list[Cause]:
    """The checks of ValidatePodSpec the lab's manifests can trip over."""
    out: list[Cause] = []
    volumes = set()
    for i, vol in enumerate(spec.get("volumes") or []):
        f = f"{field}.volumes[{i}].name"
        name = vol.get("name") or ""
        if not name:
            out.append(required(f))
        elif name in volumes:
            out.append(duplicate(f, name))
        else:
            out += _each(f, name, dns1123_label(name))
        volumes.add(name)
    containers = spec.get("containers") or []
    if not containers:
        out.append(required(f"{field}.containers"))
    names: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            out += _container_causes(c, f"{field}.{group}[{i}]", names, volumes)
    if spec.get("restartPolicy") is not None and spec["restartPolicy"] not in _RESTART_POLICIES:
        out.append(not_supported(f"{field}.restartPolicy", spec["restartPolicy"], _RESTART_POLICIES))
    if spec.get("dnsPolicy") is not None and spec["dnsPolicy"] not in _DNS_POLICIES:
        out.append(not_supported(f"{field}.dnsPolicy", spec["dnsPolicy"], _DNS_POLICIES))
    out += _non_negative(spec.get("terminationGracePeriodSeconds"), f"{field}.terminationGracePeriodSeconds")
    return out


def _container_causes(c: dict[str, Any], field: str, names: set[str], volumes: set[str]) -> list[Cause]:
    out: list[Cause] = []
    name = c.get("name") or ""
    if not name:
        out.append(required(f"{field}.name"))
    elif name in names:
        out.append(duplicate(f"{field}.name", name))
    else:
        out += _each(f"{field}.name", name, dns1123_label(name))
    names.add(name)
    if not c.get("image"):
        out.append(required(f"{field}.image"))
    policy = c.get("imagePullPolicy")
    if policy is not None and policy not in _PULL_POLICIES:
        out.append(not_supported(f"{field}.imagePullPolicy", policy, _PULL_POLICIES))
    port_names: set[str] = set()
    for j, port in enumerate(c.get("ports") or []):
        out += _port_causes(port, f"{field}.ports[{j}]", "containerPort", port_names)
    for j, env in enumerate(c.get("env") or []):
        env_name = env.get("name") or ""
        if not env_name:
            out.append(required(f"{field}.env[{j}].name"))
        elif "=" in env_name or not env_name.isprintable() or not env_name.isascii():
            out.append(invalid(f"{field}.env[{j}].name", env_name, _ENV_NAME_ERROR))
    for j, mount in enumerate(c.get("volumeMounts") or []):
        f = f"{field}.volumeMounts[{j}]"
        if not mount.get("name"):
            out.append(required(f"{f}.name"))
        elif mount["name"] not in volumes:
            out.append(not_found(f"{f}.name", mount["name"]))
        if not mount.get("mountPath"):
            out.append(required(f"{f}.mountPath"))
    return out


def _port_causes(port: dict[str, Any], field: str, number_key: str, seen: set[str]) -> list[Cause]:
    out: list[Cause] = []
    number = port.get(number_key)
    if number is None:
        out.append(required(f"{field}.{number_key}"))
    elif not 1 <= number <= 65535:
        out.append(invalid(f"{field}.{number_key}", number, "must be between 1 and 65535, inclusive"))
    name = port.get("name")
    if name:
        out += _each(f"{field}.name", name, port_name(name) if number_key == "containerPort"
                     else dns1123_label(name))
        if name in seen:
            out.append(duplicate(f"{field}.name", name))
        seen.add(name)
    protocol = port.get("protocol")
    if protocol is not None and protocol not in _PROTOCOLS:
        out.append(not_supported(f"{field}.protocol", protocol, _PROTOCOLS))
    return out


def _deployment_causes(obj: dict[str, Any]) -> list[Cause]:
    out = _workload_causes(obj, "deployment")
    spec = obj.get("spec") or {}
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type")
    if kind is not None and kind not in ("Recreate", "RollingUpdate"):
        out.append(not_supported("spec.strategy.type", kind, ("Recreate", "RollingUpdate")))
    if kind == "Recreate" and strategy.get("rollingUpdate") is not None:
        out.append(forbidden("spec.strategy.rollingUpdate",
                             "may not be specified when strategy `type` is 'Recreate'"))
    rolling = strategy.get("rollingUpdate") or {}
    if kind == "RollingUpdate" and _is_zero(rolling.get("maxSurge")) \
            and _is_zero(rolling.get("maxUnavailable")):
        out.append(invalid("spec.strategy.rollingUpdate.maxUnavailable", rolling.get("maxUnavailable"),
                           "may not be 0 when `maxSurge` is 0"))
    out += _non_negative(spec.get("progressDeadlineSeconds"), "spec.progressDeadlineSeconds")
    return out


def _is_zero(value: Any) -> bool:
    return value in (0, "0%", "0")


def _job_causes(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    for key in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"):
        out += _non_negative(spec.get(key), f"spec.{key}")
    template = spec.get("template")
    if template is None:
        return [*out, required("spec.template")]
    selector = spec.get("selector")
    labels = (template.get("metadata") or {}).get("labels")
    if selector and not selector_matches(selector, labels):
        out.append(invalid("spec.template.metadata.labels", labels or {},
                           "`selector` does not match template `labels`"))
    return out + _template_causes(template, "spec.template", ("OnFailure", "Never"))


def _service_causes(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    types = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
    kind = spec.get("type", "ClusterIP")
    if kind not in types:
        out.append(not_supported("spec.type", kind, types))
    affinity = spec.get("sessionAffinity")
    if affinity is not None and affinity not in ("ClientIP", "None"):
        out.append(not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    ports = spec.get("ports") or []
    if kind == "ExternalName":
        if not spec.get("externalName"):
            out.append(required("spec.externalName"))
    elif not ports and spec.get("clusterIP") != "None":
        out.append(required("spec.ports"))
    seen: set[str] = set()
    for i, port in enumerate(ports):
        f = f"spec.ports[{i}]"
        if len(ports) > 1 and not port.get("name"):
            out.append(required(f"{f}.name"))
        out += _port_causes(port, f, "port", seen)
        target = port.get("targetPort")
        if isinstance(target, int) and not 1 <= target <= 65535:
            out.append(invalid(f"{f}.targetPort", target, "must be between 1 and 65535, inclusive"))
        elif isinstance(target, str):
            out += _each(f"{f}.targetPort", target, port_name(target))
        node_port = port.get("nodePort")
        if node_port and kind not in ("NodePort", "LoadBalancer"):
            out.append(forbidden(f"{f}.nodePort", "may not be used when `type` is 'ClusterIP'"))
    out += _label_causes(spec.get("selector"), "spec.selector")
    return out


def _data_key_causes(obj: dict[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    seen: set[str] = set()
    for field in ("data", "binaryData", "stringData"):
        for key in obj.get(field) or {}:
            out += _each(f"{field}[{key}]", key, config_key(key))
            if field == "binaryData" and key in seen:
                out.append(invalid(f"{field}[{key}]", key, "duplicate of key present in data"))
            seen.add(key)
    return out


# ------------------------------------------------------------------------ HorizontalPodAutoscaler (autoscaling/v2)

_METRIC_SOURCES = ("ContainerResource", "External", "Object", "Pods", "Resource")
_MAX_PERIOD_SECONDS, _MAX_STABILIZATION_SECONDS = 1800, 3600


def _path_segment(field: str, value: str) -> list[Cause]:
    """ValidateCrossVersionObjectReference's checks of a kind or name (IsValidPathSegmentName)."""
    if not value:
        return [required(field)]
    if value in (".", ".."):
        return [invalid(field, value, f"may not be '{value}'")]
    return [invalid(field, value, f"may not contain '{c}'") for c in ("/", "%") if c in value]


def _quantity_sign(value: Any) -> int:
    try:
        number = quantity.parse(value)
    except ValueError:
        return 0
    return (number > 0) - (number < 0)


def _metric_target(target: dict[str, Any], field: str) -> list[Cause]:
    out: list[Cause] = []
    kind = target.get("type") or ""
    if not kind:
        out.append(required(f"{field}.type", "must specify a metric target type"))
    if kind not in ("Utilization", "Value", "AverageValue"):
        out.append(invalid(f"{field}.type", kind, "must be either Utilization, Value, or AverageValue"))
    for key in ("value", "averageValue"):
        if target.get(key) is not None and _quantity_sign(target[key]) != 1:
            out.append(invalid(f"{field}.{key}", str(target[key]), "must be positive"))
    utilization = target.get("averageUtilization")
    if isinstance(utilization, int) and utilization < 1:
        out.append(invalid(f"{field}.averageUtilization", utilization, "must be greater than 0"))
    return out


def _metric_identifier(metric: dict[str, Any], field: str) -> list[Cause]:
    name = metric.get("name") or ""
    if not name:
        return [required(f"{field}.name", "must specify a metric name")]
    return _path_segment(f"{field}.name", name)


def _metric_source(kind: str, src: dict[str, Any], field: str) -> list[Cause]:
    """validate{Resource,ContainerResource,Pods,Object,External}Source."""
    target = src.get("target") or {}
    value, average, utilization = target.get("value"), target.get("averageValue"), target.get("averageUtilization")
    out: list[Cause] = []
    if kind in ("resource", "containerResource"):
        if not src.get("name"):
            out.append(required(f"{field}.name", "must specify a resource name"))
        if kind == "containerResource":
            container = src.get("container") or ""
            out += ([required(f"{field}.container", "must specify a container")] if not container
                    else _each(f"{field}.container", container, dns1123_label(container)))
        out += _metric_target(target, f"{field}.target")
        if utilization is None and average is None:
            out.append(required(f"{field}.target.averageUtilization",
                                "must set either a target raw value or a target utilization"))
        if utilization is not None and average is not None:
            out.append(forbidden(f"{field}.target.averageValue",
                                 "may not set both a target raw value and a target utilization"))
        return out
    if kind == "object":
        out += _cross_version_ref(src.get("describedObject") or {}, f"{field}.describedObject")
    out += _metric_identifier(src.get("metric") or {}, f"{field}.metric")
    out += _metric_target(target, f"{field}.target")
    if kind == "pods" and average is None:
        out.append(required(f"{field}.target.averageValue", "must specify a positive target averageValue"))
    elif kind == "object" and value is None and average is None:
        out.append(required(f"{field}.target.averageValue", "must set either a target value or averageValue"))
    elif kind == "external":
        if value is None and average is None:
            out.append(required(f"{field}.target.averageValue",
                                "must set either a target value for metric or a per-pod target"))
        if value is not None and average is not None:
            out.append(forbidden(f"{field}.target.value",
                                 "may not set both a target value for metric and a per-pod target"))
    return out


def _metric_spec(metric: dict[str, Any], field: str) -> list[Cause]:
    """validateMetricSpec: a known type, its own source and no other."""
    kind = metric.get("type") or ""
    out: list[Cause] = []
    if not kind:
        out.append(required(f"{field}.type", "must specify a metric source type"))
    if kind not in _METRIC_SOURCES:
        out.append(not_supported(f"{field}.type", kind, _METRIC_SOURCES))
    present = [key for key in ("object", "external", "pods", "resource", "containerResource")
               if metric.get(key) is not None]
    if present:
        out += _metric_source(present[0], metric[present[0]], f"{field}.{present[0]}")
    expected = kind[:1].lower() + kind[1:]
    if kind in _METRIC_SOURCES and metric.get(expected) is None:
        out.append(required(f"{field}.{expected}", "must populate information for the given metric source"))
    elif kind not in _METRIC_SOURCES:
        out.append(not_supported(f"{field}.type", kind, _METRIC_SOURCES))
    if len(present) != 1:
        out += [forbidden(f"{field}.{key}", "must populate the given metric source only")
                for key in sorted(present) if key != expected]
    return out


def _scaling_rules(rules: dict[str, Any] | None, field: str) -> list[Cause]:
    """validateScalingRules and validateScalingPolicy of one direction of ``spec.behavior``."""
    if rules is None:
        return []
    out: list[Cause] = []
    window = rules.get("stabilizationWindowSeconds")
    if isinstance(window, int) and window < 0:
        out.append(invalid(f"{field}.stabilizationWindowSeconds", window, "must be greater than or equal to zero"))
    if isinstance(window, int) and window > _MAX_STABILIZATION_SECONDS:
        out.append(invalid(f"{field}.stabilizationWindowSeconds", window,
                           f"must be less than or equal to {_MAX_STABILIZATION_SECONDS}"))
    select = rules.get("selectPolicy")
    if select is not None and select not in ("Disabled", "Max", "Min"):
        out.append(not_supported(f"{field}.selectPolicy", select, ("Disabled", "Max", "Min")))
    policies = rules.get("policies") or []
    if not policies:
        out.append(required(f"{field}.policies", "must specify at least one Policy"))
    for i, policy in enumerate(policies):
        f = f"{field}.policies[{i}]"
        if policy.get("type") not in ("Pods", "Percent"):
            out.append(not_supported(f"{f}.type", policy.get("type") or "", ("Percent", "Pods")))
        for key in ("value", "periodSeconds"):
            if (policy.get(key) or 0) <= 0:
                out.append(invalid(f"{f}.{key}", policy.get(key) or 0, "must be greater than zero"))
        if (policy.get("periodSeconds") or 0) > _MAX_PERIOD_SECONDS:
            out.append(invalid(f"{f}.periodSeconds", policy["periodSeconds"],
                               f"must be less than or equal to {_MAX_PERIOD_SECONDS}"))
    if rules.get("tolerance") is not None and _quantity_sign(rules["tolerance"]) < 0:
        out.append(invalid(f"{field}.tolerance", str(rules["tolerance"]), "must be greater than or equal to zero"))
    return out


def _cross_version_ref(ref: dict[str, Any], field: str) -> list[Cause]:
    return _path_segment(f"{field}.kind", ref.get("kind") or "") + _path_segment(f"{field}.name",
                                                                                  ref.get("name") or "")


def _hpa_causes(obj: dict[str, Any]) -> list[Cause]:
    """ValidateHorizontalPodAutoscaler of the stored (autoscaling/v2) form, in the real order."""
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    low, high = spec.get("minReplicas"), spec.get("maxReplicas") or 0
    if isinstance(low, int) and low < 1:
        out.append(invalid("spec.minReplicas", low, "must be greater than or equal to 1"))
    if high < 1:
        out.append(invalid("spec.maxReplicas", high, "must be greater than 0"))
    if isinstance(low, int) and high < low:
        out.append(invalid("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`"))
    out += _cross_version_ref(spec.get("scaleTargetRef") or {}, "spec.scaleTargetRef")
    for i, metric in enumerate(spec.get("metrics") or []):
        out += _metric_spec(metric, f"spec.metrics[{i}]")
    behavior = spec.get("behavior") or {}
    out += _scaling_rules(behavior.get("scaleUp"), "spec.behavior.scaleUp")
    out += _scaling_rules(behavior.get("scaleDown"), "spec.behavior.scaleDown")
    return out


def _statefulset_causes(obj: dict[str, Any]) -> list[Cause]:
    """ValidateStatefulSetSpec: the pod management policy, the partition, the claims' retention policy."""
    spec = obj.get("spec") or {}
    out = _workload_causes(_with_claim_volumes(obj), "statefulset")
    policy = spec.get("podManagementPolicy")
    if policy is not None and policy not in ("OrderedReady", "Parallel"):
        out.append(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    rolling = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
    out += _non_negative(rolling.get("partition"), "spec.updateStrategy.rollingUpdate.partition")
    retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
    for key in ("whenDeleted", "whenScaled"):
        if retention.get(key) is not None and retention[key] not in ("Retain", "Delete"):
            out.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}", retention[key],
                                     ("Retain", "Delete")))
    return out


def _with_claim_volumes(sts: dict[str, Any]) -> dict[str, Any]:
    """The StatefulSet as its pods will be: one volume per volumeClaimTemplate, which their mounts may name."""
    spec, template = sts.get("spec") or {}, (sts.get("spec") or {}).get("template")
    claims = [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []
              if isinstance(t, dict) and isinstance(t.get("metadata"), dict) and t["metadata"].get("name")]
    if not claims or not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return sts
    pod_spec = template["spec"]
    named = {v.get("name") for v in pod_spec.get("volumes") or [] if isinstance(v, dict)}
    volumes = [*(pod_spec.get("volumes") or []), *({"name": c, "persistentVolumeClaim": {"claimName": c}}
                                                   for c in claims if c not in named)]
    return {**sts, "spec": {**spec, "template": {**template, "spec": {**pod_spec, "volumes": volumes}}}}


def _pdb_causes(obj: dict[str, Any]) -> list[Cause]:
    """ValidatePodDisruptionBudgetSpec: one of minAvailable and maxUnavailable, each an int >= 0 or a percentage
    up to 100%, a valid selector and eviction policy."""
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        out.append(invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        value, field = spec.get(key), f"spec.{key}"
        if isinstance(value, int):
            out += _non_negative(value, field)
        elif isinstance(value, str):
            if not re.fullmatch(r"[0-9]+%", value):
                out.append(invalid(field, value, "must be an integer or percentage (e.g '5%')"))
            elif int(value[:-1]) > 100:
                out.append(invalid(field, value, "must not be greater than 100%"))
    if spec.get("selector") is not None:
        out += _selector_causes(spec["selector"], "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in ("IfHealthyBudget", "AlwaysAllow"):
        out.append(not_supported("spec.unhealthyPodEvictionPolicy", policy, ("AlwaysAllow", "IfHealthyBudget")))
    return out


def _cronjob_causes(obj: dict[str, Any]) -> list[Cause]:
    """ValidateCronJob: the name leaves room for the Job suffix, the schedule parses (no TZ= in it), the time
    zone is an IANA one."""
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    name = (obj.get("metadata") or {}).get("name") or ""
    if len(name) > 52:
        out.append(invalid("metadata.name", name, "must be no more than 52 characters"))
    schedule = spec.get("schedule")
    if not schedule:
        out.append(required("spec.schedule"))
    else:
        try:
            parse(schedule)
        except CronError as err:
            out.append(invalid("spec.schedule", schedule, str(err)))
        if "TZ" in schedule:
            out.append(invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone "
                                                          "field instead"))
    out += _time_zone_causes(spec.get("timeZone"))
    policy = spec.get("concurrencyPolicy")
    if policy is not None and policy not in ("Allow", "Forbid", "Replace"):
        out.append(not_supported("spec.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace")))
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        out += _non_negative(spec.get(key), f"spec.{key}")
    template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    if template is None:
        return [*out, required("spec.jobTemplate.spec.template")]
    return out + _template_causes(template, "spec.jobTemplate.spec.template", ("OnFailure", "Never"))


def _time_zone_causes(tz: Any) -> list[Cause]:
    if tz is None:
        return []
    field = "spec.timeZone"
    if tz == "":
        return [invalid(field, tz, "timeZone must be nil or non-empty string")]
    for part in str(tz).split("/"):
        if part in (".", "..") or part.startswith("-") or not re.fullmatch(r"[A-Za-z.\-_0-9+]{1,14}", part):
            return [invalid(field, tz, f"unknown time zone {tz}")]
    if str(tz).lower() == "local":
        return [invalid(field, tz, "timeZone must be an explicit time zone as defined in "
                                   "https://www.iana.org/time-zones")]
    try:
        zoneinfo.ZoneInfo(str(tz))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [invalid(field, tz, f"unknown time zone {tz}")]
    return []


_KIND_CHECKS: dict[str, Callable[[dict[str, Any]], list[Cause]]] = {
    "Deployment": _deployment_causes,
    "ReplicaSet": lambda o: _workload_causes(o, "replicaset"),
    "StatefulSet": _statefulset_causes,
    "PodDisruptionBudget": _pdb_causes,
    "DaemonSet": lambda o: _workload_causes(o, "daemonset"),
    "Job": _job_causes,
    "CronJob": _cronjob_causes,
    "Pod": lambda o: pod_spec_causes(o.get("spec") or {}, "spec"),
    "Service": _service_causes,
    "ConfigMap": _data_key_causes,
    "Secret": _data_key_causes,
    "HorizontalPodAutoscaler": _hpa_causes,
}

