"""Argo CD's Application controller for the lab: it compares every Application with the cluster (periodically,
``timeout.reconciliation`` in ``argocd-cm``; at once on a change to an Application, to a resource it manages, on
the ``argocd.argoproj.io/refresh`` annotation or ``refresh()``), writes the status Argo CD writes, runs the
operation written on an Application (a sync, a rollback), syncs automatically (``automated``, ``selfHeal``,
``prune``, ``allowEmpty``) and deletes an Application's resources through its resources finalizer.

The interface the API server and the webhook use: ``start()``/``stop()``, ``refresh(app, hard)``,
``sync(app, options)``, ``rollback(app, id)``, ``resource_tree(app)``, ``managed_resources(app)``,
``terminate_operation(app)``. The cluster is reached only through the Kubernetes API (and kubectl), Git only over
smart HTTP with the system ``git``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.tasks import cancel_all
from ..kubeclient.informers import Cluster
from . import health as hl
from .api.kubeapi import GROUP, VERSION, KubeApi, KubeError, apps_path, core_path
from .compare import Comparison, compare, key
from .diff import SYNC_OPTIONS, annotation_options, owner_app
from .metrics import ArgoCDMetrics
from .sources import Credentials, GitCache, SourceError
from .sync import SyncFailed, SyncRun, Terminated

log = logging.getLogger("labkit.argocd.controller")
REFRESH = "argocd.argoproj.io/refresh"
# the kinds a resource tree shows below the managed resources (owned by them)
TREE_CHILDREN = (("apps", "ReplicaSet"), ("", "Pod"), ("batch", "Job"), ("discovery.k8s.io", "EndpointSlice"))
FINALIZERS = ("resources-finalizer.argocd.argoproj.io", "resources-finalizer.argocd.argoproj.io/foreground",
              "resources-finalizer.argocd.argoproj.io/background")
DEFAULT_RECONCILIATION = 120.0  # Argo CD's timeout.reconciliation when argocd-cm does not set one
JITTER = 0.1  # the share of the period added at random, as timeout.reconciliation.jitter
HISTORY_LIMIT = 10
SELF_HEAL_BACKOFF = (0.0, 2.0, 3.0, 300.0)  # first attempt at once; then 2 s x 3^n, at most 300 s (Argo CD 3.x)
AUTO_ROLLBACK_REFUSED = "rollback cannot be initiated when auto-sync is enabled"
WORKERS = 8


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def automated(app: dict[str, Any]) -> dict[str, Any] | None:
    """``syncPolicy.automated`` when it is on (unset ``enabled`` means on)."""
    auto = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    return auto if auto is not None and auto.get("enabled", True) is not False else None


def _duration(value: Any, default: float) -> float:
    if value in (None, ""):
        return default
    total, text = 0.0, str(value)
    for amount, unit in re.findall(r"([\d.]+)(ms|h|m|s)", text):
        total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total if total or text in ("0", "0s") else default


class Controller:
    def __init__(self, kube: KubeApi, kubeconfig: str | Path, namespace: str, state: Path) -> None:
        self.kube, self.kubeconfig, self.namespace = kube, Path(kubeconfig), namespace
        self.git = GitCache(state / "repos")
        self.workdir = state / "work"
        self.manifests: dict[str, tuple[list[dict[str, Any]], str]] = {}  # rendered targets by source+revision
        self.cluster = Cluster(kube, self._changed)
        self.reconciliation = DEFAULT_RECONCILIATION
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._hard: set[str] = set()
        self._fresh: set[str] = set()
        self._specs: dict[str, str] = {}
        self._targets: dict[tuple[str, str, str, str], str] = {}  # a target's key -> its Application
        self._comparisons: dict[str, Comparison] = {}
        self._heal: dict[str, tuple[int, float]] = {}  # app -> (self-heal attempts, last attempt)
        self._tasks: list[asyncio.Task[Any]] = []
        self.metrics = ArgoCDMetrics(self)  # served by the component on the controller's and repo server's ports
        self.git.on_request = self.metrics.git_request

    @classmethod
    def for_lab(cls, ctx: Any, kubeconfig: str | Path, namespace: str) -> Controller:
        return cls(KubeApi(kubeconfig), kubeconfig, namespace, Path(ctx.state_dir("argocd-controller")))

    # -- life cycle ------------------------------------------------------------
    async def start(self) -> None:
        await self.cluster.discover()
        await self._settings()
        apps = await self.cluster.resource(GROUP, "Application")
        projects = await self.cluster.resource(GROUP, "AppProject")
        if apps is None or projects is None:
            raise RuntimeError("Argo CD's CRDs are not served")
        await self.cluster.informer(projects)
        for kind in ("Secret", "ConfigMap"):  # repository credentials and argocd-cm, read again when they change
            res = await self.cluster.resource("", kind)
            if res is not None:
                await self.cluster.informer(res, wait=False)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker()) for _ in range(WORKERS)]
        self._tasks.append(loop.create_task(self._periodic()))
        await self.cluster.informer(apps, wait=False)

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        await self.cluster.close()
        await self.kube.close()

    async def _settings(self) -> None:
        """``timeout.reconciliation`` from argocd-cm and the repository credentials from their Secrets."""
        with contextlib.suppress(KubeError):
            cm = await self.kube.get(core_path(self.namespace, "configmaps", "argocd-cm"))
            self.reconciliation = _duration((cm.get("data") or {}).get("timeout.reconciliation"),
                                            DEFAULT_RECONCILIATION) or DEFAULT_RECONCILIATION
        with contextlib.suppress(KubeError):
            secrets = await self.kube.get(core_path(self.namespace, "secrets"), labelSelector=
                                          "argocd.argoproj.io/secret-type in (repository,repo-creds)")
            creds = {}
            for s in secrets.get("items") or []:
                data = {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
                if data.get("url"):
                    creds[data["url"]] = Credentials(data.get("username", ""), data.get("password", ""))
            self.git.creds = creds

    async def _settings_changed(self) -> None:
        """Repository credentials or argocd-cm changed: read them, and compare every Application again."""
        await self._settings()
        for name in self.app_names():
            self._fresh.add(name)
            self.enqueue(name)

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.reconciliation * (1 + random.random() * JITTER))
            await self._settings()
            for name in self.app_names():
                self.enqueue(name)

    def app_names(self) -> list[str]:
        inf = self.cluster.informers.get((GROUP, "Application"))
        return [n for (ns, n) in (inf.objects if inf else {}) if ns == self.namespace]

    def _changed(self, obj: dict[str, Any]) -> None:
        """A watched object changed: the Application it concerns is compared again."""
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "Application":
            if meta.get("namespace") != self.namespace:
                return
            spec = json.dumps(obj.get("spec"), sort_keys=True)
            annotations = meta.get("annotations") or {}
            if (self._specs.get(meta["name"]) != spec or obj.get("operation") or REFRESH in annotations
                    or meta.get("deletionTimestamp")):
                if self._specs.get(meta["name"]) != spec or REFRESH in annotations:
                    self._fresh.add(meta["name"])  # a new or changed spec, a refresh: the revision asked again
                self._specs[meta["name"]] = spec
                if annotations.get(REFRESH) == "hard":
                    self._hard.add(meta["name"])
                self.enqueue(meta["name"])
            return
        if obj.get("kind") == "AppProject":
            return
        if meta.get("namespace") == self.namespace and (
                (obj.get("kind") == "Secret" and (meta.get("labels") or {}).get("argocd.argoproj.io/secret-type"))
                or (obj.get("kind") == "ConfigMap" and meta.get("name") == "argocd-cm")):
            self._tasks.append(asyncio.get_running_loop().create_task(self._settings_changed()))
            return
        app = owner_app(obj) or self._targets.get(key(obj)) if meta.get("name") else ""
        if app:
            self.enqueue(app)

    def watch_targets(self, app: str, keys: list[tuple[str, str, str, str]]) -> None:
        for k in keys:
            self._targets[k] = app

    def enqueue(self, name: str) -> None:
        if name not in self._queued:
            self._queued.add(name)
            self._queue.put_nowait(name)

    async def _worker(self) -> None:
        while True:
            name = await self._queue.get()
            self._queued.discard(name)
            lock = self._locks.setdefault(name, asyncio.Lock())
            if lock.locked():  # being reconciled (or syncing): compared again after
                asyncio.get_running_loop().call_later(0.2, self.enqueue, name)
                continue
            async with lock:
                started = time.perf_counter()
                try:
                    await self.reconcile(name)
                except Exception:
                    log.exception("reconciling %s", name)
                self.metrics.reconciled(name, time.perf_counter() - started)

    # -- what the API server calls ---------------------------------------------
    async def refresh(self, app: dict[str, Any] | str, hard: bool = False) -> None:
        """Compare ``app`` again now (``hard``: fetch and render its source again)."""
        name = app if isinstance(app, str) else app["metadata"]["name"]
        if hard:
            self._hard.add(name)
        self._fresh.add(name)
        self.enqueue(name)

    async def refresh_repo(self, repo_url: str, revision: str = "") -> list[str]:
        """A push to ``repo_url`` (the webhook): every Application of that repository is refreshed."""
        from .sources import _norm

        names = []
        inf = self.cluster.informers.get((GROUP, "Application"))
        for app in list(inf.objects.values()) if inf else []:
            src = (app.get("spec") or {}).get("source") or {}
            if _norm(src.get("repoURL", "")) == _norm(repo_url):
                self._fresh.add(app["metadata"]["name"])
                names.append(app["metadata"]["name"])
                self.enqueue(app["metadata"]["name"])
        return names

    async def sync(self, app: dict[str, Any] | str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Request a sync: ``operation.sync`` written on the Application (``options``: revision, prune, dryRun,
        resources, syncOptions, syncStrategy), as ``argocd app sync`` does."""
        current = await self._get(app)
        if current.get("operation"):
            raise ValueError("another operation is already in progress")
        op = {"sync": {k: v for k, v in (options or {}).items() if v not in (None, "")},
              "initiatedBy": {"username": "admin"}}
        op["sync"].setdefault("revision", ((current.get("spec") or {}).get("source") or {}).get("targetRevision",
                                                                                               "HEAD"))
        return await self.kube.merge_patch(apps_path(self.namespace, current["metadata"]["name"]), {"operation": op})

    async def rollback(self, app: dict[str, Any] | str, history_id: int, prune: bool = False,
                       dry_run: bool = False) -> dict[str, Any]:
        """Sync to the revision and source of history entry ``history_id``; refused while auto-sync is on."""
        current = await self._get(app)
        if automated(current) is not None:
            raise ValueError(AUTO_ROLLBACK_REFUSED)
        entry = next((h for h in (current.get("status") or {}).get("history") or [] if int(h["id"]) ==
                      int(history_id)), None)
        if entry is None:
            raise LookupError(f"application {current['metadata']['name']} does not have deployment id "
                              f"'{history_id}' in history")
        if current.get("operation"):
            raise ValueError("another operation is already in progress")
        op = {"sync": {"revision": entry["revision"], "source": entry.get("source"), "prune": prune,
                       "dryRun": dry_run}, "initiatedBy": {"username": "admin"}}
        return await self.kube.merge_patch(apps_path(self.namespace, current["metadata"]["name"]), {"operation": op})

    async def terminate_operation(self, app: dict[str, Any] | str) -> None:
        current = await self._get(app)
        state = (current.get("status") or {}).get("operationState") or {}
        if state.get("phase") != "Running":
            raise ValueError("Unable to terminate operation. No operation is in progress")
        await self.kube.merge_patch(apps_path(self.namespace, current["metadata"]["name"]),
                                    {"status": {"operationState": {"phase": "Terminating"}}})

    async def managed_resources(self, app: dict[str, Any] | str) -> list[dict[str, Any]]:
        """Each resource's target and live state (JSON strings), as ``/managed-resources`` answers."""
        name = app if isinstance(app, str) else app["metadata"]["name"]
        comp = self._comparisons.get(name)
        if comp is None:
            return []
        targets = {key(t): t for t in comp.targets}
        out = []
        for k in sorted(set(targets) | set(comp.live)):
            live, target = comp.live.get(k), targets.get(k)
            out.append({"group": k[0], "kind": k[1], "namespace": k[2], "name": k[3],
                        "targetState": json.dumps(target) if target else "null",
                        "liveState": json.dumps(live) if live else "null",
                        "hook": False})
        return out

    async def resource_tree(self, app: dict[str, Any] | str) -> dict[str, Any]:
        """The managed resources and what they own (ReplicaSets, Pods, ...), as ``/resource-tree`` answers."""
        name = app if isinstance(app, str) else app["metadata"]["name"]
        comp = self._comparisons.get(name)
        if comp is None:
            return {"nodes": []}
        for group, kind in TREE_CHILDREN:  # Argo CD's cluster cache watches every kind: the children, at least
            res = await self.cluster.resource(group, kind)
            if res is not None:
                await self.cluster.informer(res)
        nodes: list[dict[str, Any]] = []
        by_uid: dict[str, dict[str, Any]] = {}
        for obj in comp.live.values():
            node = _node(obj, [])
            nodes.append(node)
            by_uid[obj["metadata"].get("uid", "")] = node
        frontier = dict(by_uid)
        for _ in range(3):  # Deployment -> ReplicaSet -> Pod, Job -> Pod, CronJob -> Job -> Pod
            children = []
            for inf in list(self.cluster.informers.values()):
                for obj in list(inf.objects.values()):
                    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") in frontier]
                    if refs and obj["metadata"].get("uid") not in by_uid:
                        parents = [{"group": frontier[r["uid"]]["group"], "kind": r["kind"], "name": r["name"],
                                    "namespace": obj["metadata"].get("namespace", ""), "uid": r["uid"]}
                                   for r in refs]
                        node = _node(obj, parents)
                        children.append(node)
                        by_uid[node["uid"]] = node
            nodes.extend(children)
            frontier = {n["uid"]: n for n in children}
            if not frontier:
                break
        return {"nodes": nodes}

    # -- helpers the sync uses ---------------------------------------------------
    async def _get(self, app: dict[str, Any] | str) -> dict[str, Any]:
        name = app if isinstance(app, str) else app["metadata"]["name"]
        return await self.kube.get(apps_path(self.namespace, name))

    async def project(self, name: str) -> dict[str, Any] | None:
        res = await self.cluster.resource(GROUP, "AppProject")
        inf = await self.cluster.informer(res) if res is not None else None
        return inf.objects.get((self.namespace, name)) if inf else None

    async def live(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The live object of ``obj`` (read from the API: fresher than the watch cache)."""
        res = await self.cluster.resource(hl.group_of(obj), obj["kind"])
        if res is None:
            return None
        try:
            return await self.kube.get(res.path(obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))
        except KubeError as err:
            if err.status == 404:
                return None
            raise

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """POST ``obj`` (a hook with ``generateName``)."""
        res = await self.cluster.resource(hl.group_of(obj), obj["kind"])
        if res is None:
            raise SyncFailed(f"the server could not find the requested resource {obj['kind']}")
        try:
            return await self.kube.request("POST", res.path(obj["metadata"].get("namespace", "")), obj)
        except KubeError as err:
            raise SyncFailed(f"{obj['kind']}: {err}") from None

    async def delete(self, obj: dict[str, Any], wait: bool = False, propagation: str = "Background") -> None:
        res = await self.cluster.resource(hl.group_of(obj), obj["kind"])
        if res is None:
            return
        path = res.path(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        try:
            await self.kube.request("DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1",
                                                     "propagationPolicy": propagation})
        except KubeError as err:
            if err.status != 404:
                raise
        while wait and await self.live(obj) is not None:
            await asyncio.sleep(0.1)

    async def terminating(self, app: dict[str, Any]) -> bool:
        current = await self._get(app)
        return ((current.get("status") or {}).get("operationState") or {}).get("phase") == "Terminating"

    async def event(self, app: dict[str, Any], reason: str, message: str, warning: bool = False) -> None:
        """A Kubernetes Event on the Application, as the controller emits them."""
        meta, stamp = app["metadata"], now()
        with contextlib.suppress(KubeError):
            await self.kube.request("POST", core_path(meta["namespace"], "events"), {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Application", "name": meta["name"],
                                   "namespace": meta["namespace"], "uid": meta.get("uid", "")},
                "reason": reason, "message": message, "type": "Warning" if warning else "Normal",
                "source": {"component": "argocd-application-controller"},
                "reportingComponent": "argocd-application-controller",
                "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1})

    # -- the reconciliation ----------------------------------------------------------
    async def reconcile(self, name: str) -> None:
        try:
            app = await self._get(name)
        except KubeError as err:
            if err.status == 404:
                self._comparisons.pop(name, None)
                self._specs.pop(name, None)
                return
            raise
        if app["metadata"].get("deletionTimestamp"):
            await self._finalize(app)
            return
        annotations = app["metadata"].get("annotations") or {}
        hard = name in self._hard or annotations.get(REFRESH) == "hard"
        fresh = hard or name in self._fresh or REFRESH in annotations
        self._hard.discard(name)
        self._fresh.discard(name)
        if app.get("operation"):
            await self._operate(app)
            app = await self._get(name)
        comp = await compare(self, app, hard=hard, fresh=fresh)
        self._comparisons[name] = comp
        app = await self._write_status(app, comp)
        if not app.get("operation"):
            await self._auto_sync(app, comp)

    async def _write_status(self, app: dict[str, Any], comp: Comparison) -> dict[str, Any]:
        old = app.get("status") or {}
        stamp = now()
        old_conditions = {c["type"]: c for c in old.get("conditions") or []}
        conditions = [{**c, "lastTransitionTime": (old_conditions.get(c["type"], {}).get("message") == c["message"]
                       and old_conditions[c["type"]].get("lastTransitionTime")) or stamp} for c in comp.conditions]
        sync = {"status": comp.sync, "comparedTo": {"source": comp.source,
                                                    "destination": (app.get("spec") or {}).get("destination", {})}}
        if comp.revision:
            sync["revision"] = comp.revision
        if (app.get("spec") or {}).get("ignoreDifferences"):
            sync["comparedTo"]["ignoreDifferences"] = app["spec"]["ignoreDifferences"]
        health = comp.health if not comp.error or comp.targets else {"status": hl.UNKNOWN}
        status: dict[str, Any] = {
            "sync": sync, "health": health, "resources": comp.resources, "reconciledAt": stamp,
            "conditions": conditions or None, "summary": {"images": comp.images} if comp.images else None,
            "sourceType": comp.source_type or None, "controllerNamespace": self.namespace}
        if old.get("health", {}).get("status") != health["status"]:
            status["health"] = {**health, "lastTransitionTime": stamp}
        patch: dict[str, Any] = {"status": status}
        if REFRESH in (app["metadata"].get("annotations") or {}):
            patch["metadata"] = {"annotations": {REFRESH: None}}
        updated = await self.kube.merge_patch(apps_path(self.namespace, app["metadata"]["name"]), patch)
        old_sync, old_health = (old.get("sync") or {}).get("status"), (old.get("health") or {}).get("status")
        if old_sync and old_sync != comp.sync:
            await self.event(app, "ResourceUpdated", f"Updated sync status: {old_sync} -> {comp.sync}")
        if old_health and old_health != health["status"]:
            await self.event(app, "ResourceUpdated", f"Updated health status: {old_health} -> {health['status']}")
        return updated

    async def _auto_sync(self, app: dict[str, Any], comp: Comparison) -> None:
        """Argo CD's autoSync: an OutOfSync Application with automated sync gets a sync operation (once per
        revision, unless selfHeal; never one that would delete everything, unless allowEmpty)."""
        auto = automated(app)
        name = app["metadata"]["name"]
        if comp.sync != "OutOfSync" or auto is None or comp.error:
            if comp.sync == "Synced":
                self._heal.pop(name, None)
            return
        state = (app.get("status") or {}).get("operationState") or {}
        last = ((state.get("syncResult") or {}).get("revision"), state.get("phase"))
        if not comp.targets and comp.live and not auto.get("allowEmpty"):
            await self._set_condition(app, "SyncError", f"Skipping sync attempt to {comp.revision}: auto-sync will "
                                                        "wipe out all resources")
            return
        if last[0] == comp.revision and state.get("operation", {}).get("initiatedBy", {}).get("automated"):
            if last[1] in ("Failed", "Error") and not auto.get("selfHeal"):
                return  # "Skipping auto-sync: failed previous sync attempt to <rev>"
            if not auto.get("selfHeal"):
                return  # "Skipping auto-sync: most recent sync already to <rev>"
            attempts, at = self._heal.get(name, (0, 0.0))
            first, base, factor, cap = SELF_HEAL_BACKOFF
            delay = first if attempts == 0 else min(cap, base * factor ** (attempts - 1))
            wait = at + delay - asyncio.get_running_loop().time()
            if wait > 0:
                asyncio.get_running_loop().call_later(wait, self.enqueue, name)
                return
            self._heal[name] = (attempts + 1, asyncio.get_running_loop().time())
        op = {"sync": {"revision": comp.revision, "prune": bool(auto.get("prune")),
                       "syncOptions": ((app.get("spec") or {}).get("syncPolicy") or {}).get("syncOptions")},
              "initiatedBy": {"automated": True, "username": "argocd-application-controller"},
              "retry": ((app.get("spec") or {}).get("syncPolicy") or {}).get("retry") or None}
        op["sync"] = {k: v for k, v in op["sync"].items() if v is not None}
        op = {k: v for k, v in op.items() if v is not None}
        try:
            await self.kube.merge_patch(apps_path(self.namespace, name), {
                "metadata": {"resourceVersion": app["metadata"]["resourceVersion"]}, "operation": op})
        except KubeError as err:
            if err.status == 409:
                self.enqueue(name)
                return
            raise
        await self.event(app, "OperationStarted", f"Initiated automated sync to '{comp.revision}'")
        self.enqueue(name)

    async def _set_condition(self, app: dict[str, Any], kind: str, message: str) -> None:
        conditions = [c for c in (app.get("status") or {}).get("conditions") or [] if c["type"] != kind]
        conditions.append({"type": kind, "message": message, "lastTransitionTime": now()})
        await self.kube.merge_patch(apps_path(self.namespace, app["metadata"]["name"]),
                                    {"status": {"conditions": conditions}})

    async def _operate(self, app: dict[str, Any]) -> None:
        """Run the operation written on ``app`` (a sync), with its retries; record the result and the history."""
        name, operation = app["metadata"]["name"], app["operation"]
        path = apps_path(self.namespace, name)
        started = now()
        state: dict[str, Any] = {"operation": operation, "phase": "Running", "message": "", "startedAt": started}
        # a new operation replaces the last one's state whole, as Argo CD does: a merge patch would keep the
        # previous finishedAt/syncResult on a Running operation, and a reader would take it as finished
        stale = ((app.get("status") or {}).get("operationState") or {}).keys() - state.keys()
        await self.kube.merge_patch(path, {"status": {"operationState": {**dict.fromkeys(stale), **state}}})
        sync = operation.get("sync") or {}
        retry = operation.get("retry") or {}
        limit = int(retry.get("limit") or 0)
        backoff = retry.get("backoff") or {}
        duration = _duration(backoff.get("duration"), 5.0)
        factor = float(backoff.get("factor") or 2)
        max_duration = _duration(backoff.get("maxDuration"), 180.0)
        attempt = 0
        while True:
            comp = await compare(self, app, revision=sync.get("revision"), source=sync.get("source"))
            run = SyncRun(self, app, operation, comp)
            phase, message = "Succeeded", ""
            if comp.error:
                phase, message = "Error", f"ComparisonError: {comp.error}"
            else:
                try:
                    message = await run.run()
                except Terminated as err:
                    phase, message = "Failed", str(err)
                except SyncFailed as err:
                    phase, message = "Failed", str(err)
                    await run.fail_hooks()
                except (KubeError, SourceError) as err:
                    phase, message = "Error", str(err)
            if phase == "Succeeded" or message == "Operation terminated" or (limit >= 0 and attempt >= limit):
                break
            delay = min(max_duration, duration * factor ** attempt)
            attempt += 1
            retry_at = datetime.fromtimestamp(datetime.now(UTC).timestamp() + delay, UTC)
            await self.kube.merge_patch(path, {"status": {"operationState": {
                **state, "retryCount": attempt, "syncResult": self._sync_result(comp, run),
                "message": f"Retrying attempt #{attempt} at {retry_at.strftime('%I:%M%p')}: {message}"}}})
            await asyncio.sleep(delay)
            if await self.terminating(app):
                phase, message = "Failed", "Operation terminated"
                break
            app = await self._get(name)
        finished = now()
        final = {**state, "phase": phase, "message": message, "finishedAt": finished,
                 "syncResult": self._sync_result(comp, run)}
        if attempt:
            final["retryCount"] = attempt
        patch: dict[str, Any] = {"operation": None, "status": {"operationState": final}}
        if phase == "Succeeded" and not sync.get("dryRun"):
            history = list((app.get("status") or {}).get("history") or [])
            history.append({"id": max((int(h["id"]) for h in history), default=-1) + 1, "revision": comp.revision,
                            "deployStartedAt": started, "deployedAt": finished, "source": comp.source,
                            "initiatedBy": operation.get("initiatedBy") or {}})
            limit_history = (app.get("spec") or {}).get("revisionHistoryLimit")
            keep = HISTORY_LIMIT if limit_history is None else int(limit_history)
            patch["status"]["history"] = history[-keep:] if keep > 0 else []
        await self.kube.merge_patch(path, patch)
        self.metrics.synced(app, phase)
        if phase == "Succeeded":
            await self.event(app, "OperationCompleted", f"Sync operation to {comp.revision} succeeded")
        else:
            await self.event(app, "OperationCompleted", f"Sync operation to {comp.revision} failed: {message}",
                             warning=True)

    @staticmethod
    def _sync_result(comp: Comparison, run: SyncRun) -> dict[str, Any]:
        return {"resources": run.results, "revision": comp.revision, "source": comp.source}

    async def _finalize(self, app: dict[str, Any]) -> None:
        """A deleted Application with the resources finalizer: its resources deleted, then the finalizer."""
        finalizers = app["metadata"].get("finalizers") or []
        if not any(f in FINALIZERS for f in finalizers):
            return
        comp = self._comparisons.get(app["metadata"]["name"]) or await compare(self, app)
        doomed = [o for o in comp.live.values() if "Delete=false" not in annotation_options(o, SYNC_OPTIONS)]
        for obj in doomed:
            await self.delete(obj)
        for obj in doomed:
            while await self.live(obj) is not None:
                await asyncio.sleep(0.1)
        await self.kube.merge_patch(apps_path(self.namespace, app["metadata"]["name"]), {
            "metadata": {"finalizers": [f for f in finalizers if f not in FINALIZERS] or None,
                         "resourceVersion": app["metadata"]["resourceVersion"]}})


def _node(obj: dict[str, Any], parents: list[dict[str, Any]]) -> dict[str, Any]:
    meta = obj["metadata"]
    node: dict[str, Any] = {"group": hl.group_of(obj), "version": obj.get("apiVersion", "v1").rsplit("/", 1)[-1],
                            "kind": obj["kind"], "namespace": meta.get("namespace", ""), "name": meta["name"],
                            "uid": meta.get("uid", ""), "resourceVersion": meta.get("resourceVersion", ""),
                            "createdAt": meta.get("creationTimestamp", "")}
    if parents:
        node["parentRefs"] = parents
    health = hl.resource_health(obj)
    if health:
        node["health"] = health
    images = sorted({c["image"] for c in ((obj.get("spec") or {}).get("containers") or []) if c.get("image")})
    if images:
        node["images"] = images
    return node
