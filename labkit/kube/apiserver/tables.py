"""Server-side printing: the Table responses ``kubectl get`` shows, with the real columns."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from . import conversion, quantity, storage
from .resources import ResourceType

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj], Any]]  # name, type, priority, cell


def human_duration(seconds: float) -> str:
    """kubectl's HumanDuration: 45s, 2m30s, 3h, 5d, …"""
    s = int(max(seconds, 0))
    m, h = s // 60, s // 3600
    if s < 120:
        return f"{s}s"
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    return f"{h // (24 * 365)}y"


def _since(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    then = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return human_duration((dt.datetime.now(dt.UTC) - then).total_seconds())


def _age(o: Obj) -> str:
    return _since(o["metadata"].get("creationTimestamp"))


def _g(o: Obj, path: str, default: Any = None) -> Any:
    cur: Any = o
    for p in path.split("."):
        if not isinstance(cur, dict):
            return default
        cur = cur.get(p)
    return default if cur is None else cur


def _selector(sel: dict[str, Any] | None) -> str:
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in (sel.get("matchLabels") or {}).items()]
    for e in sel.get("matchExpressions") or []:
        parts.append(f"{e['key']} {e['operator'].lower()} ({','.join(e.get('values', []))})")
    return ",".join(parts) or "<none>"


def _containers(o: Obj, field: str) -> str:
    return ",".join(c.get(field, "") for c in _g(o, "spec.template.spec.containers", []))


def _pod_row(o: Obj) -> tuple[str, str, str]:
    """READY, STATUS and RESTARTS as kubectl's printPod computes them: init containers first (sidecars, the
    init containers with restartPolicy Always, count as containers once started), then the containers."""
    restarts = sidecar_restarts = ready = 0
    last = sidecar_last = ""
    reason = _g(o, "status.reason") or _g(o, "status.phase", "Pending")
    init_specs = {c.get("name"): c for c in _g(o, "spec.initContainers", [])}
    sidecars = {n for n, c in init_specs.items() if c.get("restartPolicy") == "Always"}
    total = len(_g(o, "spec.containers", [])) + len(sidecars)
    initializing = False
    inits = _g(o, "status.initContainerStatuses", [])
    for i, cs in enumerate(inits):
        state, finished = cs.get("state", {}), cs.get("lastState", {}).get("terminated", {}).get("finishedAt", "")
        restarts += cs.get("restartCount", 0)
        last = max(last, finished)
        if cs.get("name") in sidecars:
            sidecar_restarts += cs.get("restartCount", 0)
            sidecar_last = max(sidecar_last, finished)
        term, wait = state.get("terminated"), state.get("waiting")
        if term is not None and term.get("exitCode") == 0:
            continue
        if cs.get("name") in sidecars and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        initializing = True
        if term is not None:
            reason = "Init:" + term["reason"] if term.get("reason") else (
                f"Init:Signal:{term['signal']}" if term.get("signal") else f"Init:ExitCode:{term.get('exitCode')}")
        elif wait is not None and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        break
    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True"
                      for c in _g(o, "status.conditions", []))
    if not initializing or initialized:
        restarts, last, running = sidecar_restarts, sidecar_last, False
        for cs in reversed(_g(o, "status.containerStatuses", [])):
            state = cs.get("state", {})
            restarts += cs.get("restartCount", 0)
            last = max(last, cs.get("lastState", {}).get("terminated", {}).get("finishedAt", ""))
            term, wait = state.get("terminated"), state.get("waiting")
            if wait is not None and wait.get("reason"):
                reason = wait["reason"]
            elif term is not None:
                reason = term.get("reason") or (f"Signal:{term['signal']}" if term.get("signal")
                                                else f"ExitCode:{term.get('exitCode')}")
            elif cs.get("ready") and "running" in state:
                running = True
                ready += 1
        if reason == "Completed" and running:
            has_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in _g(o, "status.conditions", []))
            reason = "Running" if has_ready else "NotReady"
    if _g(o, "metadata.deletionTimestamp") and _g(o, "status.reason") == "NodeLost":
        reason = "Unknown"
    elif _g(o, "metadata.deletionTimestamp") and _g(o, "status.phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"
    shown = f"{restarts} ({_since(last)} ago)" if restarts and last else str(restarts)
    return f"{ready}/{total}", reason, shown


def pod_status(o: Obj) -> str:
    """The STATUS column."""
    return _pod_row(o)[1]


def _restarts(o: Obj) -> str:
    return _pod_row(o)[2]


def _ready(o: Obj) -> str:
    return _pod_row(o)[0]


def _ports(o: Obj) -> str:
    out = []
    for p in _g(o, "spec.ports", []):
        s = f"{p.get('port')}"
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        out.append(f"{s}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _node_status(o: Obj) -> str:
    ready = next((c for c in _g(o, "status.conditions", []) if c.get("type") == "Ready"), None)
    text = "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    return text + (",SchedulingDisabled" if _g(o, "spec.unschedulable") else "")


def _roles(o: Obj) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix):] for k in _g(o, "metadata.labels", {}) if k.startswith(prefix))
    return ",".join(roles) or "<none>"


def _address(o: Obj, kind: str) -> str:
    return next((a["address"] for a in _g(o, "status.addresses", []) if a.get("type") == kind), "<none>")


def _endpoints(o: Obj) -> str:
    eps = [f"{a['ip']}:{p['port']}" for s in o.get("subsets") or [] for a in s.get("addresses") or []
           for p in s.get("ports") or []]
    if not eps:
        return "<none>"
    return ",".join(eps[:3]) + (f" + {len(eps) - 3} more..." if len(eps) > 3 else "")


def _event_object(o: Obj) -> str:
    io = o.get("involvedObject", {})
    return f"{io.get('kind', '').lower()}/{io.get('name', '')}"


def _event_source(o: Obj) -> str:
    component = _g(o, "source.component") or o.get("reportingComponent") or ""
    host = _g(o, "source.host") or o.get("reportingInstance") or ""
    return f"{component}, {host}" if host else component


def _last_seen(o: Obj) -> str:
    return _since(o.get("lastTimestamp") or o.get("eventTime") or _g(o, "metadata.creationTimestamp"))


def _slice_ports(o: Obj) -> str:
    ports = o.get("ports")
    if not ports:
        return "<unset>" if ports is None else "<none>"
    return ",".join(str(p["port"]) if p.get("port") is not None else "<unset>" for p in ports)


def _slice_endpoints(o: Obj) -> str:
    addrs = [a for e in o.get("endpoints") or [] for a in e.get("addresses") or []]
    if not addrs:
        return "<unset>" if o.get("endpoints") is None else "<none>"
    return ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")


def _job_duration(o: Obj) -> str:
    start = _g(o, "status.startTime")
    if not start:
        return ""
    end = _g(o, "status.completionTime")
    then = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    until = dt.datetime.fromisoformat(end.replace("Z", "+00:00")) if end else dt.datetime.now(dt.UTC)
    return human_duration((until - then).total_seconds())


def _ingress_ports(o: Obj) -> str:
    return "80, 443" if _g(o, "spec.tls") else "80"


def _ingress_address(o: Obj) -> str:
    lbs = _g(o, "status.loadBalancer.ingress", [])
    return ",".join(i.get("ip") or i.get("hostname", "") for i in lbs)


def _canonical(value: Any) -> str:
    """A quantity as ``Quantity.String()`` prints it (binary-SI ones keep their form)."""
    text = str(value)
    if text.endswith("i"):
        return text
    try:
        return quantity.format_milli(quantity.milli(value))
    except ValueError:
        return text


def _hpa_target(spec: Obj, status: Obj | None) -> str:
    """One metric of the TARGETS column: ``cpu: 35%/50%``, ``memory: 40Mi/100Mi``, ``<unknown>/1k (avg)``."""
    kind = spec.get("type") or ""
    key = kind[:1].lower() + kind[1:]
    src = spec.get(key) or {}
    target = src.get("target") or {}
    current = ((status or {}).get(key) or {}).get("current") or {}

    def now(field: str) -> str:
        return _canonical(current[field]) if current.get(field) is not None else "<unknown>"

    if kind in ("Resource", "ContainerResource"):
        if target.get("averageValue") is not None:
            return f"{src.get('name')}: {now('averageValue')}/{_canonical(target['averageValue'])}"
        util = f"{current['averageUtilization']}%" if current.get("averageUtilization") is not None else "<unknown>"
        goal = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
        return f"{src.get('name')}: {util}/{goal}"
    if kind == "Pods":
        return f"{now('averageValue')}/{_canonical(target.get('averageValue'))}"
    if kind in ("Object", "External") and target.get("averageValue") is not None:
        return f"{now('averageValue')}/{_canonical(target['averageValue'])} (avg)"
    if kind in ("Object", "External"):
        return f"{now('value')}/{_canonical(target.get('value'))}"
    return "<unknown type>"


def _hpa_targets(o: Obj) -> str:
    """printHorizontalPodAutoscaler's TARGETS: the first two metrics, then ``+ N more...``."""
    o = conversion.convert(o, "autoscaling/v2")
    specs, statuses = _g(o, "spec.metrics", []), _g(o, "status.currentMetrics", [])
    if not specs:
        return "<none>"
    cells = [_hpa_target(m, statuses[i] if i < len(statuses) else None) for i, m in enumerate(specs)]
    more = f" + {len(cells) - 2} more..." if len(cells) > 2 else ""
    return ", ".join(cells[:2]) + more


def _volume_phase(o: Obj) -> str:
    return "Terminating" if _g(o, "metadata.deletionTimestamp") else _g(o, "status.phase", "")


def _claim_ref(o: Obj) -> str:
    ref = _g(o, "spec.claimRef")
    return f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""


def _claim_capacity(o: Obj) -> str:
    return _canonical(_g(o, "status.capacity.storage", "0")) if _g(o, "spec.volumeName") else ""


def _class_name(o: Obj) -> str:
    return o["metadata"]["name"] + (" (default)" if storage.is_default_class(o) else "")


def _bool_cell(value: Any) -> str:
    """printBoolPtr: True, False or <unset>."""
    return "<unset>" if value is None else ("True" if value else "False")


def _subjects_column(kind: str) -> Column:
    """A binding's subjects of one kind (Users, Groups, ServiceAccounts as namespace/name), wide output."""
    def cell(o: Obj) -> str:
        return ", ".join(f"{s.get('namespace', '')}/{s['name']}" if kind == "ServiceAccount" else s["name"]
                         for s in o.get("subjects") or [] if s.get("kind") == kind)
    return ("ServiceAccounts" if kind == "ServiceAccount" else f"{kind}s", "string", 1, cell)


def _csr_condition(o: Obj) -> str:
    """Denied or Approved or Pending, then Failed and Issued, as kubectl get csr shows a request's state."""
    kinds = {c.get("type") for c in _g(o, "status.conditions", []) or []}
    state = "Denied" if "Denied" in kinds else "Approved" if "Approved" in kinds else "Pending"
    return state + (",Failed" if "Failed" in kinds else "") + (",Issued" if _g(o, "status.certificate") else "")


NAME: Column = ("Name", "string", 0, lambda o: o["metadata"]["name"])
AGE: Column = ("Age", "string", 0, _age)

COLUMNS: dict[str, list[Column]] = {
    "pods": [NAME, ("Ready", "string", 0, _ready), ("Status", "string", 0, pod_status),
             ("Restarts", "string", 0, _restarts), AGE,
             ("IP", "string", 1, lambda o: _g(o, "status.podIP", "<none>")),
             ("Node", "string", 1, lambda o: _g(o, "spec.nodeName", "<none>")),
             ("Nominated Node", "string", 1, lambda o: _g(o, "status.nominatedNodeName", "<none>")),
             ("Readiness Gates", "string", 1, lambda o: "<none>")],
    "deployments": [NAME,
                    ("Ready", "string", 0, lambda o: f"{_g(o, 'status.readyReplicas', 0)}/"
                                                     f"{_g(o, 'spec.replicas', 1)}"),
                    ("Up-to-date", "integer", 0, lambda o: _g(o, "status.updatedReplicas", 0)),
                    ("Available", "integer", 0, lambda o: _g(o, "status.availableReplicas", 0)), AGE,
                    ("Containers", "string", 1, lambda o: _containers(o, "name")),
                    ("Images", "string", 1, lambda o: _containers(o, "image")),
                    ("Selector", "string", 1, lambda o: _selector(_g(o, "spec.selector")))],
    "replicasets": [NAME, ("Desired", "integer", 0, lambda o: _g(o, "spec.replicas", 1)),
                    ("Current", "integer", 0, lambda o: _g(o, "status.replicas", 0)),
                    ("Ready", "integer", 0, lambda o: _g(o, "status.readyReplicas", 0)), AGE,
                    ("Containers", "string", 1, lambda o: _containers(o, "name")),
                    ("Images", "string", 1, lambda o: _containers(o, "image")),
                    ("Selector", "string", 1, lambda o: _selector(_g(o, "spec.selector")))],
    "daemonsets": [NAME, ("Desired", "integer", 0, lambda o: _g(o, "status.desiredNumberScheduled", 0)),
                   ("Current", "integer", 0, lambda o: _g(o, "status.currentNumberScheduled", 0)),
                   ("Ready", "integer", 0, lambda o: _g(o, "status.numberReady", 0)),
                   ("Up-to-date", "integer", 0, lambda o: _g(o, "status.updatedNumberScheduled", 0)),
                   ("Available", "integer", 0, lambda o: _g(o, "status.numberAvailable", 0)),
                   ("Node Selector", "string", 0, lambda o: ",".join(
                       f"{k}={v}" for k, v in _g(o, "spec.template.spec.nodeSelector", {}).items())
                    or "<none>"), AGE],
    "statefulsets": [NAME, ("Ready", "string", 0, lambda o: f"{_g(o, 'status.readyReplicas', 0)}/"
                                                            f"{_g(o, 'spec.replicas', 1)}"), AGE,
                     ("Containers", "string", 1, lambda o: _containers(o, "name")),
                     ("Images", "string", 1, lambda o: _containers(o, "image"))],
    "cronjobs": [NAME, ("Schedule", "string", 0, lambda o: _g(o, "spec.schedule", "")),
                 ("Timezone", "string", 0, lambda o: _g(o, "spec.timeZone", "<none>")),
                 ("Suspend", "boolean", 0, lambda o: _bool_cell(_g(o, "spec.suspend"))),
                 ("Active", "integer", 0, lambda o: len(_g(o, "status.active", []))),
                 ("Last Schedule", "string", 0, lambda o: _since(_g(o, "status.lastScheduleTime"))
                  if _g(o, "status.lastScheduleTime") else "<none>"), AGE,
                 ("Containers", "string", 1, lambda o: ",".join(
                     c.get("name", "") for c in _g(o, "spec.jobTemplate.spec.template.spec.containers", []))),
                 ("Images", "string", 1, lambda o: ",".join(
                     c.get("image", "") for c in _g(o, "spec.jobTemplate.spec.template.spec.containers", []))),
                 ("Selector", "string", 1, lambda o: _selector(_g(o, "spec.jobTemplate.spec.selector")))],
    "poddisruptionbudgets": [NAME, ("Min Available", "string", 0, lambda o: str(_g(o, "spec.minAvailable", "N/A"))),
                             ("Max Unavailable", "string", 0,
                              lambda o: str(_g(o, "spec.maxUnavailable", "N/A"))),
                             ("Allowed Disruptions", "integer", 0, lambda o: _g(o, "status.disruptionsAllowed", 0)),
                             AGE],
    "jobs": [NAME, ("Status", "string", 0, lambda o: "Complete" if _g(o, "status.succeeded", 0) >=
                    _g(o, "spec.completions", 1) else ("Failed" if _g(o, "status.failed", 0) else "Running")),
             ("Completions", "string", 0, lambda o: f"{_g(o, 'status.succeeded', 0)}/"
                                                    f"{_g(o, 'spec.completions', 1)}"),
             ("Duration", "string", 0, _job_duration), AGE,
             ("Containers", "string", 1, lambda o: _containers(o, "name")),
             ("Images", "string", 1, lambda o: _containers(o, "image")),
             ("Selector", "string", 1, lambda o: _selector(_g(o, "spec.selector")))],
    "endpointslices": [NAME, ("AddressType", "string", 0, lambda o: o.get("addressType", "")),
                       ("Ports", "string", 0, _slice_ports), ("Endpoints", "string", 0, _slice_endpoints), AGE],
    "ingresses": [NAME, ("Class", "string", 0, lambda o: _g(o, "spec.ingressClassName", "<none>")),
                  ("Hosts", "string", 0, lambda o: ",".join(r.get("host", "") for r in _g(o, "spec.rules", []))
                   or "*"),
                  ("Address", "string", 0, _ingress_address), ("Ports", "string", 0, _ingress_ports), AGE],
    "horizontalpodautoscalers": [
        NAME, ("Reference", "string", 0, lambda o: f"{_g(o, 'spec.scaleTargetRef.kind', '')}/"
                                                    f"{_g(o, 'spec.scaleTargetRef.name', '')}"),
        ("Targets", "string", 0, _hpa_targets),
        ("MinPods", "string", 0, lambda o: str(_g(o, "spec.minReplicas", "<unset>"))),
        ("MaxPods", "integer", 0, lambda o: _g(o, "spec.maxReplicas", 0)),
        ("Replicas", "integer", 0, lambda o: _g(o, "status.currentReplicas", 0)), AGE],
    "leases": [NAME, ("Holder", "string", 0, lambda o: _g(o, "spec.holderIdentity", "")), AGE],
    "controllerrevisions": [NAME, ("Controller", "string", 0, lambda o: next(
        (f"{r['kind'].lower()}.{r['apiVersion'].split('/')[0]}/{r['name']}" for r in
         _g(o, "metadata.ownerReferences", []) if r.get("controller")), "<none>")),
                            ("Revision", "integer", 0, lambda o: o.get("revision", 0)), AGE],
    "services": [NAME, ("Type", "string", 0, lambda o: _g(o, "spec.type", "ClusterIP")),
                 ("Cluster-IP", "string", 0, lambda o: _g(o, "spec.clusterIP", "<none>")),
                 ("External-IP", "string", 0, lambda o: ",".join(_g(o, "spec.externalIPs", [])) or "<none>"),
                 ("Port(s)", "string", 0, _ports), AGE,
                 ("Selector", "string", 1, lambda o: ",".join(
                     f"{k}={v}" for k, v in _g(o, "spec.selector", {}).items()) or "<none>")],
    "endpoints": [NAME, ("Endpoints", "string", 0, _endpoints), AGE],
    "nodes": [NAME, ("Status", "string", 0, _node_status), ("Roles", "string", 0, _roles), AGE,
              ("Version", "string", 0, lambda o: _g(o, "status.nodeInfo.kubeletVersion", "")),
              ("Internal-IP", "string", 1, lambda o: _address(o, "InternalIP")),
              ("External-IP", "string", 1, lambda o: _address(o, "ExternalIP")),
              ("OS-Image", "string", 1, lambda o: _g(o, "status.nodeInfo.osImage", "<unknown>")),
              ("Kernel-Version", "string", 1, lambda o: _g(o, "status.nodeInfo.kernelVersion", "<unknown>")),
              ("Container-Runtime", "string", 1,
               lambda o: _g(o, "status.nodeInfo.containerRuntimeVersion", "<unknown>"))],
    "namespaces": [NAME, ("Status", "string", 0, lambda o: _g(o, "status.phase", "Active")), AGE],
    "configmaps": [NAME, ("Data", "integer", 0, lambda o: len(o.get("data") or {})
                          + len(o.get("binaryData") or {})), AGE],
    "secrets": [NAME, ("Type", "string", 0, lambda o: o.get("type", "Opaque")),
                ("Data", "integer", 0, lambda o: len(o.get("data") or {})), AGE],
    "serviceaccounts": [NAME, ("Secrets", "integer", 0, lambda o: len(o.get("secrets") or [])), AGE],
    "events": [("Last Seen", "string", 0, _last_seen), ("Type", "string", 0, lambda o: o.get("type", "")),
               ("Reason", "string", 0, lambda o: o.get("reason", "")),
               ("Object", "string", 0, _event_object),
               ("Subobject", "string", 1, lambda o: _g(o, "involvedObject.fieldPath", "")),
               ("Source", "string", 1, _event_source),
               ("Message", "string", 0, lambda o: o.get("message", "")),
               ("First Seen", "string", 1, lambda o: _since(o.get("firstTimestamp") or o.get("eventTime")
                                                            or _g(o, "metadata.creationTimestamp"))),
               ("Count", "integer", 1, lambda o: o.get("count") or 1),
               ("Name", "string", 1, lambda o: o["metadata"]["name"])],
    "persistentvolumes": [
        NAME, ("Capacity", "string", 0, lambda o: _canonical(_g(o, "spec.capacity.storage", "0"))),
        ("Access Modes", "string", 0, lambda o: storage.access_modes(_g(o, "spec.accessModes"))),
        ("Reclaim Policy", "string", 0, lambda o: _g(o, "spec.persistentVolumeReclaimPolicy", "")),
        ("Status", "string", 0, _volume_phase), ("Claim", "string", 0, _claim_ref),
        ("StorageClass", "string", 0, storage.volume_class),
        ("VolumeAttributesClass", "string", 0, lambda o: _g(o, "spec.volumeAttributesClassName", "<unset>")),
        ("Reason", "string", 0, lambda o: _g(o, "status.reason", "")), AGE,
        ("VolumeMode", "string", 1, lambda o: _g(o, "spec.volumeMode", "<unset>"))],
    "persistentvolumeclaims": [
        NAME, ("Status", "string", 0, _volume_phase), ("Volume", "string", 0, lambda o: _g(o, "spec.volumeName", "")),
        ("Capacity", "string", 0, _claim_capacity),
        ("Access Modes", "string", 0, lambda o: storage.access_modes(_g(o, "status.accessModes"))
         if _g(o, "spec.volumeName") else ""),
        ("StorageClass", "string", 0, storage.claim_class),
        ("VolumeAttributesClass", "string", 0, lambda o: _g(o, "spec.volumeAttributesClassName", "<unset>")), AGE,
        ("VolumeMode", "string", 1, lambda o: _g(o, "spec.volumeMode", "<unset>"))],
    "storageclasses": [
        ("Name", "string", 0, _class_name), ("Provisioner", "string", 0, lambda o: o.get("provisioner", "")),
        ("ReclaimPolicy", "string", 0, lambda o: o.get("reclaimPolicy") or "Delete"),
        ("VolumeBindingMode", "string", 0, lambda o: o.get("volumeBindingMode") or "Immediate"),
        ("AllowVolumeExpansion", "string", 0, lambda o: bool(o.get("allowVolumeExpansion"))), AGE],
    "customresourcedefinitions": [NAME, ("Created At", "date", 0,
                                         lambda o: o["metadata"].get("creationTimestamp"))],
    "resourcequotas": [NAME, AGE, ("Request", "string", 0, lambda o: _quota(o, limits=False)),
                       ("Limit", "string", 0, lambda o: _quota(o, limits=True))],
    "limitranges": [NAME, ("Created At", "date", 0, lambda o: o["metadata"].get("creationTimestamp"))],
    "priorityclasses": [NAME, ("Value", "integer", 0, lambda o: o.get("value", 0)),
                        ("Global-Default", "boolean", 0, lambda o: bool(o.get("globalDefault"))), AGE,
                        ("PreemptionPolicy", "string", 0, lambda o: o.get("preemptionPolicy", ""))],
    "networkpolicies": [NAME, ("Pod-Selector", "string", 0, lambda o: _selector(_g(o, "spec.podSelector"))
                               or "<none>"), AGE],
    "roles": [NAME, ("Created At", "date", 0, lambda o: o["metadata"].get("creationTimestamp"))],
    "clusterroles": [NAME, ("Created At", "date", 0, lambda o: o["metadata"].get("creationTimestamp"))],
    "rolebindings": [NAME, ("Role", "string", 0, lambda o: f"{_g(o, 'roleRef.kind', '')}/{_g(o, 'roleRef.name', '')}"),
                     AGE, *(_subjects_column(kind) for kind in ("User", "Group", "ServiceAccount"))],
    "clusterrolebindings": [NAME, ("Role", "string", 0, lambda o: f"{_g(o, 'roleRef.kind', '')}/"
                                                                  f"{_g(o, 'roleRef.name', '')}"),
                            AGE, *(_subjects_column(kind) for kind in ("User", "Group", "ServiceAccount"))],
    "certificatesigningrequests": [
        NAME, AGE, ("SignerName", "string", 0, lambda o: _g(o, "spec.signerName", "")),
        ("Requestor", "string", 0, lambda o: _g(o, "spec.username", "")),
        ("RequestedDuration", "string", 0, lambda o: human_duration(_g(o, "spec.expirationSeconds"))
         if _g(o, "spec.expirationSeconds") else "<none>"),
        ("Condition", "string", 0, _csr_condition)],
}


def _quota(o: Obj, limits: bool) -> str:
    """``pods: 1/10, requests.cpu: 0/1``: used over hard, the limits.* resources in their own column."""
    hard, used = _g(o, "status.hard", {}) or {}, _g(o, "status.used", {}) or {}
    return ", ".join(f"{r}: {used.get(r, '0')}/{hard[r]}" for r in sorted(hard)
                     if r.startswith("limits.") == limits)


def _printer_columns(rt: ResourceType) -> list[Column] | None:
    """Columns from a CRD's additionalPrinterColumns (jsonPath like ``.spec.replicas``)."""
    if not rt.crd:
        return None
    version = next((v for v in rt.crd["spec"]["versions"] if v["name"] == rt.version), {})
    cols = version.get("additionalPrinterColumns")
    if not cols:
        return None
    out: list[Column] = [NAME]
    for c in cols:
        path = c["jsonPath"].lstrip(".")
        if c["jsonPath"] == ".metadata.creationTimestamp":
            out.append((c["name"], "string", c.get("priority", 0), _age))
        else:
            out.append((c["name"], c.get("type", "string"), c.get("priority", 0),
                        lambda o, p=path: _jsonpath_cell(_g(o, p, ""))))
    if not any(c[0] == "Age" for c in out):
        out.append(AGE)
    return out


def _jsonpath_cell(value: Any) -> Any:
    """A printer column's value as the JSONPath printer gives it: lists and maps as compact JSON (``["a"]``)."""
    return json.dumps(value, separators=(",", ":")) if isinstance(value, list | dict) else value


def to_table(rt: ResourceType, objects: list[Obj], list_meta: dict[str, Any],
             include: str = "Metadata") -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of ``objects`` with the columns real kubectl prints."""
    columns = _printer_columns(rt) or COLUMNS.get(rt.plural) or [NAME, AGE]
    rows = []
    for o in objects:
        row: dict[str, Any] = {"cells": [cell(o) for _, _, _, cell in columns]}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o["metadata"]}
        rows.append(row)
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
        "columnDefinitions": [{"name": n, "type": t, "format": "name" if n == "Name" else "",
                               "description": "", "priority": p} for n, t, p, _ in columns],
        "rows": rows,
    }
