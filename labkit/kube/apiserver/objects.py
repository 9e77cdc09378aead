"""Object semantics shared by every resource: create, update, patch, delete, as the API server does."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import random
import uuid
from dataclasses import dataclass
from typing import Any

from ...core.errors import ApiError
from . import admission, conversion, merge, plugins, policy
from .resources import Registry, ResourceType, from_crd
from .status import already_exists, bad_request, conflict, not_found
from .store import Store
from .tokens import TokenIssuer

Obj = dict[str, Any]
_GEN_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
CRD_KEY = "apiextensions.k8s.io/customresourcedefinitions"
NS_KEY = "/namespaces"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Strict"


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


class Objects:
    """The generic registry behaviour over one store; resource quirks are in small hooks."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self.graceful_pods = False  # set when kubelets run: they finish pod deletions
        self.tokens: TokenIssuer | None = None  # set by the kube component: service-account tokens
        self.registry.set_crds(list(store.items(CRD_KEY)))
        self._ensure_namespace("default")
        self._ensure_namespace("kube-system")
        self._ensure_namespace("kube-public")
        self._ensure_namespace("kube-node-lease")
        policy.ensure_priority_classes(self, WriteOptions())

    def _ensure_namespace(self, name: str) -> None:
        if not self.store.get(NS_KEY, "", name):
            rt = self.registry.find("", "v1", "namespaces")
            assert rt is not None
            self.create(rt, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                        WriteOptions())

    # -- reads --------------------------------------------------------------
    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        obj = self.store.get(rt.key, ns, name)
        if obj is None:
            raise not_found(rt, name)
        return self.view(rt, obj)

    def view(self, rt: ResourceType, obj: Obj) -> Obj:
        """The object as ``rt``'s version shows it (the versions of a kind share one stored object)."""
        if obj.get("apiVersion") != rt.group_version:
            obj = conversion.convert(obj, rt.group_version)
        return obj

    def _storage(self, rt: ResourceType, body: Obj, opts: WriteOptions) -> tuple[ResourceType, Obj, list[str]]:
        """A body written in a version other than its kind's storage version, as the API server's codec takes
        it: decoded against its own version's schema, defaulted, then converted (with the storage type)."""
        target = conversion.storage_version(rt.group_version, rt.kind)
        if target is None:
            return rt, body, []
        body = {**copy.deepcopy(body), "apiVersion": rt.group_version, "kind": rt.kind}
        warnings = admission.decode(body, self.registry.crds(), opts.field_validation)
        admission.defaults(body)
        stored = self.registry.by_kind(target, rt.kind)
        assert stored is not None
        return stored, conversion.convert(body, target), warnings

    # -- writes -------------------------------------------------------------
    def _check_namespace(self, rt: ResourceType, ns: str) -> None:
        if not rt.namespaced:
            return
        found = self.store.get(NS_KEY, "", ns)
        if found is None:
            ns_rt = self.registry.find("", "v1", "namespaces")
            assert ns_rt is not None
            raise not_found(ns_rt, ns)
        if found["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", f"{rt.qualified} is forbidden: unable to create new content "
                                             f"in namespace {ns} because it is being terminated")

    def _check_identity(self, rt: ResourceType, ns: str, obj: Obj) -> None:
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
            raise bad_request("the body of the request was not a Kubernetes object")
        if obj.get("kind") and obj["kind"] != rt.kind:
            raise bad_request(f"the kind in the data ({obj['kind']}) does not match the expected kind "
                              f"({rt.kind})")
        if obj.get("apiVersion") and obj["apiVersion"] != rt.group_version:
            raise bad_request(f"the API version in the data ({obj['apiVersion']}) does not match the "
                              f"expected API version ({rt.group_version})")
        body_ns = obj.get("metadata", {}).get("namespace")
        if rt.namespaced and body_ns and body_ns != ns:
            raise bad_request("the namespace of the provided object does not match the namespace sent on "
                              "the request")

    def create(self, rt: ResourceType, ns: str, body: Obj, opts: WriteOptions) -> tuple[Obj, list[str]]:
        self._check_identity(rt, ns, body)
        stored_rt, body, decoded = self._storage(rt, body, opts)
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = stored_rt.group_version, rt.kind
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(_GEN_ALPHABET, k=5))
        if rt.namespaced:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        for k in ("uid", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(k, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta.pop("generation", None)
        if rt.has_generation:
            meta["generation"] = 1
        self._reset_status(rt, obj)
        if rt.key == "batch/jobs":
            _job_selector(obj)
        admission.defaults(obj)
        if rt.key == "/services":
            self._allocate_service(obj)
        warnings = decoded + admission.validate(rt, obj, self.registry.crds(), opts.field_validation)
        self._check_namespace(rt, ns)
        warnings += plugins.run(admission.Request(self, rt, obj, None, opts.dry_run))
        if self.store.get(rt.key, ns, meta["name"]) is not None:
            raise already_exists(rt, meta["name"])
        self._record_manager(None, obj, opts, stored_rt, "")
        if opts.dry_run:
            return self.view(rt, obj), warnings
        self.store.write(rt.key, obj, "ADDED")
        self._after_write(rt, obj)
        return self.view(rt, obj), warnings

    def _allocate_service(self, svc: Obj) -> None:
        """ClusterIP from the service CIDR (10.43.0.0/16, as RKE2) and NodePorts from 30000-32767."""
        spec = svc.setdefault("spec", {})
        services = list(self.store.items("/services"))
        if spec.get("type", "ClusterIP") != "ExternalName" and not spec.get("clusterIP"):
            used = {s["spec"].get("clusterIP") for s in services}
            ip = next(f"10.43.{n // 254}.{n % 254 + 1}" for n in range(1, 65000)
                      if f"10.43.{n // 254}.{n % 254 + 1}" not in used)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            used_ports = {p["nodePort"] for s in services for p in s["spec"].get("ports", []) if p.get("nodePort")}
            for port in spec.get("ports", []):
                if port.get("nodePort") in used_ports:
                    raise ApiError(422, "Invalid", f'Service "{svc["metadata"]["name"]}" is invalid: '
                                   f"spec.ports[0].nodePort: Invalid value: {port['nodePort']}: "
                                   "provided port is already allocated")
                if not port.get("nodePort"):
                    port["nodePort"] = next(n for n in range(30000, 32768) if n not in used_ports)
                used_ports.add(port["nodePort"])

    def _reset_status(self, rt: ResourceType, obj: Obj) -> None:
        if rt.plural == "namespaces" and not rt.group:
            obj["status"] = {"phase": "Active"}
            obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
        elif rt.plural == "pods" and not rt.group:
            obj["status"] = {"phase": "Pending", "qosClass": _qos(obj)}
        elif "status" in rt.subresources:
            obj.pop("status", None)

    def update(self, rt: ResourceType, ns: str, name: str, body: Obj, opts: WriteOptions,
               subresource: str = "") -> tuple[Obj, list[str]]:
        self._check_identity(rt, ns, body)
        stored_rt, body, decoded = self._storage(rt, body, opts)
        old = self.store.get(rt.key, ns, name)
        if old is None:
            raise not_found(rt, name)
        if body.get("metadata", {}).get("name", name) != name:
            raise bad_request(f"the name of the object ({body['metadata']['name']}) does not match the name "
                              f"on the URL ({name})")
        want_rv = body.get("metadata", {}).get("resourceVersion")
        if want_rv and want_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        if subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = copy.deepcopy(body.get("status"))
        else:
            new = copy.deepcopy(body)
            new["apiVersion"], new["kind"] = stored_rt.group_version, rt.kind
            meta = new.setdefault("metadata", {})
            for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
                if k in old["metadata"]:
                    meta[k] = old["metadata"][k]
                else:
                    meta.pop(k, None)
            if rt.namespaced:
                meta["namespace"] = ns
            meta.pop("generation", None)
            if rt.has_generation:
                meta["generation"] = old["metadata"].get("generation", 1)
            if "status" in rt.subresources or (rt.plural == "namespaces" and not rt.group):
                new["status"] = copy.deepcopy(old.get("status"))
                if new["status"] is None:
                    new.pop("status")
        admission.defaults(new)
        warnings = decoded + admission.validate(rt, new, self.registry.crds(), opts.field_validation)
        if subresource != "status":
            warnings += plugins.run(admission.Request(self, rt, new, old, opts.dry_run))
        if rt.has_generation and _spec_part(new) != _spec_part(old):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        self._record_manager(old, new, opts, stored_rt, subresource)
        if opts.dry_run:
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return self.view(rt, new), warnings
        if _without_managed(new) == _without_managed(old):
            return self.view(rt, old), warnings  # no-op updates do not bump resourceVersion
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self.store.write(rt.key, new, "DELETED")
            self._after_delete(rt, new)
            return self.view(rt, new), warnings
        self.store.write(rt.key, new, "MODIFIED")
        self._after_write(rt, new)
        return self.view(rt, new), warnings

    def _record_manager(self, old: Obj | None, new: Obj, opts: WriteOptions, rt: ResourceType,
                        subresource: str) -> None:
        if opts.field_manager:
            merge.record_update(old, new, opts.field_manager, rt.group_version, subresource=subresource,
                                crds=self.registry.crds())

    def delete(self, rt: ResourceType, ns: str, name: str, options: Obj, dry_run: bool) -> Obj:
        obj = self.store.get(rt.key, ns, name)
        if obj is None:
            raise not_found(rt, name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
            raise ApiError(409, "Conflict", f'Precondition failed: UID in precondition: {pre["uid"]}, '
                                            f'UID in object meta: {obj["metadata"]["uid"]}')
        if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "Precondition failed: ResourceVersion in precondition: "
                                            f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                            f"{obj['metadata']['resourceVersion']}")
        new = copy.deepcopy(obj)
        meta = new["metadata"]
        policy = options.get("propagationPolicy")
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if rt.plural == "namespaces" and not rt.group:
            new["status"] = {"phase": "Terminating"}
        graceful = (self.graceful_pods and rt.key == "/pods" and new["spec"].get("nodeName")
                    and options.get("gracePeriodSeconds") != 0)
        if graceful:  # the node's kubelet stops the containers, then removes the pod
            if meta.get("deletionTimestamp"):
                return self.view(rt, obj)
            meta["deletionTimestamp"] = now()
            meta["deletionGracePeriodSeconds"] = int(options.get("gracePeriodSeconds")
                                                     or new["spec"].get("terminationGracePeriodSeconds", 30))
            if not dry_run:
                self.store.write(rt.key, new, "MODIFIED")
            return self.view(rt, new)
        if finalizers or (rt.plural == "namespaces" and not rt.group):
            if meta.get("deletionTimestamp"):
                return self.view(rt, obj)
            meta["finalizers"] = finalizers or None
            if not finalizers:
                meta.pop("finalizers")
            meta["deletionTimestamp"] = now()
            meta["deletionGracePeriodSeconds"] = int(options.get("gracePeriodSeconds") or 0)
            if not dry_run:
                self.store.write(rt.key, new, "MODIFIED")
                self._after_write(rt, new)
            return self.view(rt, new)
        if dry_run:
            return self.view(rt, obj)
        self.store.write(rt.key, new, "DELETED")
        self._after_delete(rt, new)
        return self.view(rt, new)

    # -- resource-specific follow-ups ---------------------------------------
    def _after_write(self, rt: ResourceType, obj: Obj) -> None:
        if rt.key == CRD_KEY:
            self._crd_established(obj)
            self.registry.set_crds(list(self.store.items(CRD_KEY)))
        if rt.key == NS_KEY and obj["metadata"].get("deletionTimestamp"):
            asyncio.get_running_loop().create_task(self._finalize_namespace(obj["metadata"]["name"]))
        if obj["metadata"].get("deletionTimestamp") and "foregroundDeletion" in (
                obj["metadata"].get("finalizers") or []):
            self._collect_dependents(obj, remove_finalizer=True, rt=rt)

    def _after_delete(self, rt: ResourceType, obj: Obj) -> None:
        if rt.key == CRD_KEY:
            self.registry.set_crds(list(self.store.items(CRD_KEY)))
            for custom in {r.key for r in from_crd(obj)}:
                for o in list(self.store.items(custom)):
                    self.store.write(custom, copy.deepcopy(o), "DELETED")
        self._collect_dependents(obj, remove_finalizer=False, rt=rt)

    def _crd_established(self, crd: Obj) -> None:
        conds = crd.setdefault("status", {}).setdefault("conditions", [])
        if any(c.get("type") == "Established" for c in conds):
            return
        ts = now()
        crd["status"] = {
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": ts},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": ts}],
            "acceptedNames": crd["spec"]["names"],
            "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
        }
        self.store.write(CRD_KEY, crd, "MODIFIED")

    def _collect_dependents(self, owner: Obj, remove_finalizer: bool, rt: ResourceType) -> None:
        """Garbage collection: delete (or orphan) the objects ``owner`` owns."""
        uid = owner["metadata"]["uid"]
        orphan = "orphan" in (owner["metadata"].get("finalizers") or [])
        ns = owner["metadata"].get("namespace", "")
        for dep_rt in self.registry.all():
            if dep_rt.crd is None and dep_rt.version not in ("v1",):
                continue
            for dep in list(self.store.items(dep_rt.key, ns if dep_rt.namespaced else "")):
                refs = dep["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == uid for r in refs):
                    continue
                if orphan:
                    dep = copy.deepcopy(dep)
                    dep["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid] or None
                    if dep["metadata"]["ownerReferences"] is None:
                        dep["metadata"].pop("ownerReferences")
                    self.store.write(dep_rt.key, dep, "MODIFIED")
                else:
                    self.delete(dep_rt, dep["metadata"].get("namespace", ""), dep["metadata"]["name"],
                                {"propagationPolicy": "Background"}, False)
        if remove_finalizer or orphan:
            fresh = self.store.get(rt.key, ns, owner["metadata"]["name"])
            if fresh is not None:
                fresh = copy.deepcopy(fresh)
                fins = [f for f in fresh["metadata"].get("finalizers") or []
                        if f not in ("foregroundDeletion", "orphan")]
                fresh["metadata"]["finalizers"] = fins
                if not fins:
                    fresh["metadata"].pop("finalizers")
                    self.store.write(rt.key, fresh, "DELETED")
                else:
                    self.store.write(rt.key, fresh, "MODIFIED")

    async def _finalize_namespace(self, name: str) -> None:
        """The namespace controller: delete everything inside, then the namespace."""
        await asyncio.sleep(0)
        for rt in self.registry.all():
            if not rt.namespaced or rt.version != _storage_version(rt):
                continue
            for obj in list(self.store.items(rt.key, name)):
                o = copy.deepcopy(obj)
                o["metadata"].pop("finalizers", None)
                self.store.write(rt.key, o, "DELETED")
        ns = self.store.get(NS_KEY, "", name)
        if ns is not None:
            ns = copy.deepcopy(ns)
            ns["spec"]["finalizers"] = []
            if not ns["metadata"].get("finalizers"):
                self.store.write(NS_KEY, ns, "DELETED")


def _job_selector(job: Obj) -> None:
    """As the Job registry does on create: unless ``manualSelector``, select the pods by the job's uid."""
    spec = job.get("spec")
    if not isinstance(spec, dict) or spec.get("manualSelector"):
        return
    meta = job["metadata"]
    uid, name = meta["uid"], meta.get("name", "")
    if spec.get("selector"):
        raise ApiError(422, "Invalid", f'Job.batch "{name}" is invalid: spec.selector: Invalid value: '
                                       f'{spec["selector"]}: `selector` will be auto-generated',
                       {"name": name, "group": "batch", "kind": "Job", "causes": [
                           {"reason": "FieldValueInvalid", "message": "Invalid value: `selector` will be "
                            "auto-generated", "field": "spec.selector"}]})
    labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
              "controller-uid": uid, "job-name": name}
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    template = spec.setdefault("template", {})
    if isinstance(template, dict):
        tmeta = template.setdefault("metadata", {})
        if isinstance(tmeta, dict):
            tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}


def _without_managed(obj: Obj) -> Obj:
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("managedFields", "resourceVersion")}
    return {**obj, "metadata": meta}


def _storage_version(rt: ResourceType) -> str:
    if rt.crd is None:
        return rt.version
    return next((v["name"] for v in rt.crd["spec"]["versions"] if v.get("storage")), rt.version)


def _qos(pod: Obj) -> str:
    containers = pod.get("spec", {}).get("containers", []) or []
    reqs = [c.get("resources", {}) or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in reqs):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(k) and (r.get("requests") or r.get("limits") or {}).get(k)
        == (r.get("limits") or {}).get(k) for r in reqs for k in ("cpu", "memory"))
    return "Guaranteed" if guaranteed else "Burstable"
