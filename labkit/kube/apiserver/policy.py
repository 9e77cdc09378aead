"""Namespace policy at admission: LimitRanger, ResourceQuota, Priority, and NetworkPolicy's honesty warning.

The plugins the real API server enables by default for these kinds, with their words: a pod over a LimitRange's
max or a namespace over its quota is refused with 403 Forbidden before it is stored; LimitRange defaults and the
PriorityClass value are written into the pod. NetworkPolicies are stored and validated but the sim's node proxy
does not enforce them, and the API says so as a warning on every write of one.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ...core.errors import ApiError
from . import quantity
from .admission import Plugin, Request
from .resources import ResourceType

Obj = dict[str, Any]
COMPUTE = ("cpu", "memory", "ephemeral-storage")
HIGHEST_USER_PRIORITY = 1_000_000_000
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2_000_001_000, "system-cluster-critical": 2_000_000_000}
NETWORK_POLICY_WARNING = ("NetworkPolicy is stored and validated but not enforced by the labkit simulator: its "
                          "node proxies pass all pod traffic (the kind backend's CNI enforces it)")


def forbidden(rt: ResourceType, name: str, message: str) -> ApiError:
    """``pods "web" is forbidden: …`` — how admission plugins refuse a write."""
    return ApiError(403, "Forbidden", f'{rt.qualified} "{name}" is forbidden: {message}',
                    {"name": name, "kind": rt.plural, **({"group": rt.group} if rt.group else {})})


def _q(value: Any) -> Decimal:
    return quantity.parse(value)


def format_quantity(value: Decimal, resource: str) -> str:
    """A sum as Quantity.String() writes it: binary suffixes for bytes, decimal SI for the rest."""
    if resource.endswith(("memory", "storage")) and value == value.to_integral_value() and value:
        return quantity.format_binary(int(value))
    return quantity.format_milli(quantity.milli(str(value)))


def _containers(pod: Obj) -> list[Obj]:
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _resources(c: Obj, kind: str) -> dict[str, Any]:
    return (c.get("resources") or {}).get(kind) or {}


def pod_totals(pod: Obj, kind: str) -> dict[str, Decimal]:
    """A pod's effective requests or limits: the larger of its containers' sum and any one init container
    (sidecars, init containers with restartPolicy Always, add to the sum), as the scheduler and quota count."""
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {}
    init_max: dict[str, Decimal] = {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for c in [*(spec.get("containers") or []), *sidecars]:
        for r, v in _resources(c, kind).items():
            total[r] = total.get(r, Decimal(0)) + _q(v)
    for c in spec.get("initContainers") or []:
        if c.get("restartPolicy") != "Always":
            for r, v in _resources(c, kind).items():
                init_max[r] = max(init_max.get(r, Decimal(0)), _q(v))
    for r, v in init_max.items():
        total[r] = max(total.get(r, Decimal(0)), v)
    return total


# -- LimitRange -------------------------------------------------------------------------------------------
def limit_range_defaults(item: Obj) -> None:
    """SetDefaults_LimitRangeItem: a Container item's default limit from max, its default request from the
    default limit, then from min."""
    if item.get("type") != "Container":
        return
    default = item.setdefault("default", {})
    request = item.setdefault("defaultRequest", {})
    for r, v in (item.get("max") or {}).items():
        default.setdefault(r, v)
    for source in (default, item.get("min") or {}):
        for r, v in source.items():
            request.setdefault(r, v)
    if not default:
        item.pop("default")
    if not request:
        item.pop("defaultRequest")


def _min_max(item: Obj, kind: str, requests: dict[str, Decimal], limits: dict[str, Decimal],
             raw_requests: dict[str, Any], raw_limits: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    for r, enforced in (item.get("min") or {}).items():
        if r not in requests:
            errors.append(f"minimum {r} usage per {kind} is {enforced}.  No request is specified")
        elif requests[r] < _q(enforced):
            errors.append(f"minimum {r} usage per {kind} is {enforced}, but request is {raw_requests[r]}")
        elif r in limits and limits[r] < _q(enforced):
            errors.append(f"minimum {r} usage per {kind} is {enforced}, but limit is {raw_limits[r]}")
    for r, enforced in (item.get("max") or {}).items():
        if r not in limits:
            errors.append(f"maximum {r} usage per {kind} is {enforced}.  No limit is specified")
        elif limits[r] > _q(enforced):
            errors.append(f"maximum {r} usage per {kind} is {enforced}, but limit is {raw_limits[r]}")
        elif r in requests and requests[r] > _q(enforced):
            errors.append(f"maximum {r} usage per {kind} is {enforced}, but request is {raw_requests[r]}")
    for r, enforced in (item.get("maxLimitRequestRatio") or {}).items():
        req, lim = requests.get(r, Decimal(0)), limits.get(r, Decimal(0))
        if not req or not lim:
            errors.append(f"{r} max limit to request ratio per {kind} is {enforced}, but no request is "
                          "specified or request is 0")
        elif lim / req > _q(enforced):
            errors.append(f"{r} max limit to request ratio per {kind} is {enforced}, but provided ratio is "
                          f"{float(lim / req):f}")
    return errors


def _refuse(req: Request, errors: list[str]) -> None:
    if errors:
        text = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        raise forbidden(req.rt, req.obj["metadata"].get("name", ""), text)


class LimitRanger(Plugin):
    """Defaults a new pod's container resources from the namespace's LimitRanges, then enforces min, max and
    ratio per Container, per Pod, and per PersistentVolumeClaim."""

    name = "LimitRanger"

    def _items(self, req: Request, kind: str) -> list[Obj]:
        return [item for lr in req.objects.store.items("/limitranges", req.namespace)
                for item in (lr.get("spec") or {}).get("limits") or [] if item.get("type") == kind]

    def admit(self, req: Request) -> list[str]:
        if req.rt.key == "/limitranges":
            for item in (req.obj.get("spec") or {}).get("limits") or []:
                limit_range_defaults(item)
        elif req.rt.key == "/pods" and req.old is None:
            self._default_pod(req)
        return []

    def _default_pod(self, req: Request) -> None:
        set_requests: dict[str, list[str]] = {}
        set_limits: dict[str, list[str]] = {}
        for item in self._items(req, "Container"):
            for c in _containers(req.obj):
                res = c.setdefault("resources", {})
                for kind, source, record in (("limits", item.get("default") or {}, set_limits),
                                             ("requests", item.get("defaultRequest") or {}, set_requests)):
                    for r, v in source.items():
                        if r not in (res.get(kind) or {}):
                            res.setdefault(kind, {})[r] = v
                            record.setdefault(c["name"], []).append(r)
        notes = [f"{', '.join(rs)} {what} for {kind} {name}"
                 for what, record in (("request", set_requests), ("limit", set_limits))
                 for name, rs in record.items()
                 for kind in ["init container" if any(c["name"] == name for c in
                                                      req.obj["spec"].get("initContainers") or [])
                              else "container"]]
        if notes:
            annotations = req.obj["metadata"].setdefault("annotations", {})
            annotations["kubernetes.io/limit-ranger"] = "LimitRanger plugin set: " + "; ".join(notes)

    def validate(self, req: Request) -> list[str]:
        if req.old is not None:
            return []
        errors: list[str] = []
        if req.rt.key == "/pods":
            for item in self._items(req, "Container"):
                for c in _containers(req.obj):
                    raw_req, raw_lim = _resources(c, "requests"), _resources(c, "limits")
                    errors += _min_max(item, "Container", {r: _q(v) for r, v in raw_req.items()},
                                       {r: _q(v) for r, v in raw_lim.items()}, raw_req, raw_lim)
            for item in self._items(req, "Pod"):
                requests, limits = pod_totals(req.obj, "requests"), pod_totals(req.obj, "limits")
                errors += _min_max(item, "Pod", requests, limits,
                                   {r: format_quantity(v, r) for r, v in requests.items()},
                                   {r: format_quantity(v, r) for r, v in limits.items()})
        elif req.rt.key == "/persistentvolumeclaims":
            res = (req.obj.get("spec") or {}).get("resources") or {}
            raw_req, raw_lim = res.get("requests") or {}, res.get("limits") or {}
            for item in self._items(req, "PersistentVolumeClaim"):
                errors += _min_max({k: v for k, v in item.items() if k in ("min", "max")}, "PersistentVolumeClaim",
                                   {r: _q(v) for r, v in raw_req.items()}, {r: _q(v) for r, v in raw_lim.items()},
                                   raw_req, raw_lim)
        _refuse(req, errors)
        return []


# -- ResourceQuota ----------------------------------------------------------------------------------------
# object counts by quota resource name: the store key they count
COUNTED = {"pods": "/pods", "services": "/services", "configmaps": "/configmaps", "secrets": "/secrets",
           "persistentvolumeclaims": "/persistentvolumeclaims", "resourcequotas": "/resourcequotas",
           "replicationcontrollers": "/replicationcontrollers"}


def _counts_pod(pod: Obj) -> bool:
    """Quota charges pods that are not terminal and not being deleted."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed") \
        and not pod["metadata"].get("deletionTimestamp")


def _store_key(resource: str) -> str:
    """The store key whose objects a quota resource name charges: ``pods``, ``count/deployments.apps``,
    ``requests.cpu`` (pods), ``services.nodeports``, ``requests.storage`` (claims)."""
    if resource in COUNTED:
        return COUNTED[resource]
    if resource.startswith("count/"):
        plural, _, group = resource.removeprefix("count/").partition(".")
        return f"{group}/{plural}"
    if resource.startswith("services."):
        return "/services"
    if resource.endswith(("storage", "persistentvolumeclaims")) and not resource.endswith("ephemeral-storage"):
        return "/persistentvolumeclaims"
    return "/pods"  # cpu, memory, requests.*, limits.*


def usage_of(key: str, obj: Obj) -> dict[str, Decimal]:
    """What one object charges against every quota resource name it can be counted under."""
    plural = key.partition("/")[2]
    group = key.partition("/")[0]
    counted = f"count/{plural}" + (f".{group}" if group else "")
    if key == "/pods" and not _counts_pod(obj):
        return {}
    out = {counted: Decimal(1)}
    for name, k in COUNTED.items():
        if k == key:
            out[name] = Decimal(1)
    if key == "/pods":
        for r, v in pod_totals(obj, "requests").items():
            out[f"requests.{r}"] = v
            if r in COMPUTE:
                out[r] = v
        for r, v in pod_totals(obj, "limits").items():
            out[f"limits.{r}"] = v
    elif key == "/services":
        kind = (obj.get("spec") or {}).get("type", "ClusterIP")
        if kind in ("NodePort", "LoadBalancer"):
            out["services.nodeports"] = Decimal(len((obj.get("spec") or {}).get("ports") or []))
        if kind == "LoadBalancer":
            out["services.loadbalancers"] = Decimal(1)
    elif key == "/persistentvolumeclaims":
        storage = (((obj.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
        if storage is not None:
            out["requests.storage"] = _q(storage)
            cls = (obj.get("spec") or {}).get("storageClassName")
            if cls:
                prefix = f"{cls}.storageclass.storage.k8s.io/"
                out[prefix + "requests.storage"] = _q(storage)
                out[prefix + "persistentvolumeclaims"] = Decimal(1)
    return out


def quota_used(store: Any, quota: Obj) -> dict[str, Decimal]:
    """A quota's current usage of every resource its ``spec.hard`` names, counted from the store."""
    ns = quota["metadata"]["namespace"]
    hard = (quota.get("spec") or {}).get("hard") or {}
    used = dict.fromkeys(hard, Decimal(0))
    for key in {_store_key(r) for r in hard}:
        for obj in store.items(key, ns):
            for r, v in usage_of(key, obj).items():
                if r in used:
                    used[r] += v
    return used


class ResourceQuotaAdmission(Plugin):
    """Refuses a create that would take a namespace past any of its ResourceQuotas' hard limits."""

    name = "ResourceQuota"

    def validate(self, req: Request) -> list[str]:
        if req.old is not None or not req.namespace:
            return []
        quotas = list(req.objects.store.items("/resourcequotas", req.namespace))
        if not quotas:
            return []
        delta = usage_of(req.rt.key, req.obj)
        name = req.obj["metadata"].get("name", "")
        for quota in sorted(quotas, key=lambda q: q["metadata"]["name"]):
            hard = (quota.get("spec") or {}).get("hard") or {}
            missing = self._unspecified(req, hard)
            if missing:
                raise forbidden(req.rt, name, f"failed quota: {quota['metadata']['name']}: must specify "
                                + "; ".join(missing))
            tracked = sorted(r for r in hard if r in delta)
            if not tracked:
                continue
            used = quota_used(req.objects.store, quota)
            over = [r for r in tracked if used.get(r, Decimal(0)) + delta[r] > _q(hard[r])]
            if over:
                requested = ",".join(f"{r}={format_quantity(delta[r], r)}" for r in over)
                in_use = ",".join(f"{r}={format_quantity(used.get(r, Decimal(0)), r)}" for r in over)
                limited = ",".join(f"{r}={hard[r]}" for r in over)
                raise forbidden(req.rt, name, f"exceeded quota: {quota['metadata']['name']}, requested: "
                                f"{requested}, used: {in_use}, limited: {limited}")
        return []

    @staticmethod
    def _unspecified(req: Request, hard: dict[str, Any]) -> list[str]:
        """Compute resources a quota tracks that a container does not state (``limits.cpu for: app``)."""
        if req.rt.key != "/pods" or not _counts_pod(req.obj):
            return []
        out = []
        for r in sorted(hard):
            kind, _, res = r.partition(".")
            if kind not in ("requests", "limits") or res not in COMPUTE:
                kind, res = ("requests", r) if r in COMPUTE else ("", "")
            if not kind:
                continue
            lacking = [c["name"] for c in (req.obj.get("spec") or {}).get("containers") or []
                       if res not in _resources(c, kind)]
            if lacking:
                out.append(f"{r} for: {','.join(lacking)}")
        return out


# -- Priority ---------------------------------------------------------------------------------------------
def ensure_priority_classes(objects: Any, opts: Any) -> None:
    """The two system PriorityClasses every cluster has (created once, as the API server's bootstrap does)."""
    rt = objects.registry.find("scheduling.k8s.io", "v1", "priorityclasses")
    for name, value in SYSTEM_PRIORITY_CLASSES.items():
        if objects.store.get(rt.key, "", name) is None:
            objects.create(rt, "", {
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                "value": value, "preemptionPolicy": "PreemptLowerPriority",
                "description": "Used for system critical pods that must not be moved from their current node."
                if name == "system-node-critical" else
                "Used for system critical pods that must run in the cluster, but can be moved to another node "
                "if necessary."}, opts)


class Priority(Plugin):
    """Resolves a pod's priorityClassName (or the global default) to ``spec.priority``; guards PriorityClasses."""

    name = "Priority"

    def admit(self, req: Request) -> list[str]:
        if req.rt.key != "/pods" or req.old is not None:
            return []
        spec = req.obj.setdefault("spec", {})
        classes = list(req.objects.store.items("scheduling.k8s.io/priorityclasses"))
        name = spec.get("priorityClassName")
        if name:
            found = next((c for c in classes if c["metadata"]["name"] == name), None)
            if found is None:
                raise forbidden(req.rt, req.obj["metadata"].get("name", ""),
                                f"no PriorityClass with name {name} was found")
        else:
            found = next((c for c in classes if c.get("globalDefault")), None)
            if found is not None:
                spec["priorityClassName"] = found["metadata"]["name"]
        value = int(found.get("value", 0)) if found else 0
        if spec.get("priority") is not None and spec["priority"] != value:
            raise forbidden(req.rt, req.obj["metadata"].get("name", ""),
                            f"the integer value of priority ({spec['priority']}) must not be provided in pod "
                            f"spec; priority admission controller computed {value} from the given "
                            "PriorityClass name")
        spec["priority"] = value
        spec.setdefault("preemptionPolicy", (found or {}).get("preemptionPolicy", "PreemptLowerPriority"))
        return []

    def validate(self, req: Request) -> list[str]:
        if req.rt.key != "scheduling.k8s.io/priorityclasses":
            return []
        obj, name = req.obj, req.obj["metadata"]["name"]
        if req.old is not None and req.old.get("value") != obj.get("value"):
            raise ApiError(422, "Invalid", f'PriorityClass.scheduling.k8s.io "{name}" is invalid: value: '
                                           "Forbidden: may not be changed in an update.")
        if name not in SYSTEM_PRIORITY_CLASSES and int(obj.get("value", 0)) > HIGHEST_USER_PRIORITY:
            raise ApiError(422, "Invalid", f'PriorityClass.scheduling.k8s.io "{name}" is invalid: value: '
                                           "Forbidden: maximum allowed value of a user defined priority is "
                                           f"{HIGHEST_USER_PRIORITY}")
        if obj.get("globalDefault"):
            other = next((c["metadata"]["name"] for c in req.objects.store.items(req.rt.key)
                          if c.get("globalDefault") and c["metadata"]["name"] != name), None)
            if other:
                raise forbidden(req.rt, name, f"PriorityClass {other} is already marked as default. Only one "
                                              "default can exist")
        return []


class NetworkPolicyNotice(Plugin):
    """Every write of a NetworkPolicy is answered with a warning that the sim does not enforce it."""

    name = "NetworkPolicyNotice"

    def validate(self, req: Request) -> list[str]:
        return [NETWORK_POLICY_WARNING] if req.rt.key == "networking.k8s.io/networkpolicies" else []


def quota_keys() -> Iterable[str]:
    """The store keys whose objects quotas count (what the quota controller watches)."""
    return ("/resourcequotas", *sorted(set(COUNTED.values()) - {"/resourcequotas"}))
