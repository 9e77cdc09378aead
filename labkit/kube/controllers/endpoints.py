"""The Endpoints and EndpointSlice controllers: a Service's ready and not-ready pod addresses."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ..apiserver.store import Event
from .base import MANAGER, Controller, Key, Obj, active, pod_ready


def _target_port(port: Obj, pod: Obj) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    for c in pod["spec"].get("containers", []):
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return p["containerPort"]
    return None


class EndpointsController(Controller):
    name = "endpoints-controller"
    watches = ("/services", "/pods")

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.key == "/pods":
            ns = ev.obj["metadata"].get("namespace", "")
            labels = ev.obj["metadata"].get("labels") or {}
            return [(ns, s["metadata"]["name"]) for s in self.store.items("/services", ns)
                    if s["spec"].get("selector") and all(labels.get(k) == v for k, v in s["spec"]["selector"].items())]
        return super().keys_for(ev)

    def reconcile(self, key: Key) -> None:
        ns, name = key
        svc = self.store.get("/services", ns, name)
        if svc is None:
            for rt_key, obj_name in (("/endpoints", name), ("discovery.k8s.io/endpointslices", _slice_name(name))):
                if self.store.get(rt_key, ns, obj_name) is not None:
                    group, _, plural = rt_key.partition("/")
                    self.objects.delete(self.rt(group, "v1", plural), ns, obj_name, {}, False)
            return
        selector = svc["spec"].get("selector")
        if not selector:
            return  # endpoints of a selector-less Service are managed by hand
        pods = [p for p in self.store.items("/pods", ns) if active(p) and (p.get("status") or {}).get("podIP")
                and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
        self._endpoints(svc, pods)
        self._slice(svc, pods)

    def _endpoints(self, svc: Obj, pods: list[Obj]) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        subsets = []
        for port in svc["spec"].get("ports", []):
            ready, not_ready = [], []
            for p in pods:
                if _target_port(port, p) is None:
                    continue
                (ready if pod_ready(p) else not_ready).append(_address(p, ns))
            ports = sorted({_target_port(port, p) for p in pods} - {None})
            for number in ports:
                subset: Obj = {"ports": [{"name": port.get("name", ""), "port": number,
                                          "protocol": port.get("protocol", "TCP")}]}
                if ready:
                    subset["addresses"] = ready
                if not_ready:
                    subset["notReadyAddresses"] = not_ready
                subsets.append(subset)
        if not svc["spec"].get("ports") and svc["spec"].get("clusterIP") == "None" and pods:
            # a headless Service without ports: the addresses alone, as the real controller writes them
            subset = {"addresses": [_address(p, ns) for p in pods if pod_ready(p)],
                      "notReadyAddresses": [_address(p, ns) for p in pods if not pod_ready(p)]}
            subsets.append({k: v for k, v in subset.items() if v})
        body = {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns, "labels": svc["metadata"].get("labels") or {}},
                "subsets": subsets}
        self._put(self.rt("", "v1", "endpoints"), "/endpoints", ns, name, body)

    def _slice(self, svc: Obj, pods: list[Obj]) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        ports = [{"name": p.get("name", ""), "protocol": p.get("protocol", "TCP"),
                  "port": _target_port(p, pods[0]) if pods else None} for p in svc["spec"].get("ports", [])]
        endpoints = [{"addresses": [p["status"]["podIP"]], "nodeName": p["spec"].get("nodeName"),
                      "conditions": {"ready": pod_ready(p), "serving": pod_ready(p), "terminating": False},
                      "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"],
                                    "uid": p["metadata"]["uid"]}} for p in pods]
        body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                "metadata": {"name": _slice_name(name), "namespace": ns,
                             "labels": {"kubernetes.io/service-name": name,
                                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name,
                                                  "uid": svc["metadata"]["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]},
                "endpoints": endpoints, "ports": [p for p in ports if p["port"] is not None]}
        self._put(self.rt("discovery.k8s.io", "v1", "endpointslices"), "discovery.k8s.io/endpointslices", ns,
                  _slice_name(name), body)

    def _put(self, rt: object, key: str, ns: str, name: str, body: Obj) -> None:
        current = self.store.get(key, ns, name)
        if current is None:
            self.objects.create(rt, ns, body, MANAGER)  # type: ignore[arg-type]
            return
        strip = ("metadata", "kind", "apiVersion")
        if {k: v for k, v in current.items() if k not in strip} != {k: v for k, v in body.items() if k not in strip}:
            body["metadata"] = {**current["metadata"], **body["metadata"]}
            self.objects.update(rt, ns, name, body, MANAGER)  # type: ignore[arg-type]


def _slice_name(service: str) -> str:
    return f"{service}-{hashlib.sha256(service.encode()).hexdigest()[:5]}"


def _address(pod: Obj, ns: str) -> Obj:
    return {"ip": pod["status"]["podIP"], "nodeName": pod["spec"].get("nodeName"),
            "targetRef": {"kind": "Pod", "namespace": ns, "name": pod["metadata"]["name"],
                          "uid": pod["metadata"]["uid"]}}
