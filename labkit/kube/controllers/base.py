"""A level-triggered controller loop: watch store keys, queue object keys, reconcile each once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.errors import ApiError
from ...core.tasks import cancel
from ..apiserver.objects import Objects, WriteOptions, now
from ..apiserver.resources import ResourceType
from ..apiserver.store import Event, Watcher

Obj = dict[str, Any]
Key = tuple[str, str]  # namespace, name of the controller's primary resource
MANAGER = WriteOptions(field_validation="Ignore")


def parse_time(ts: str | None) -> float:
    if not ts:
        return 0.0
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def owned_by(obj: Obj, owner: Obj) -> bool:
    return any(r.get("uid") == owner["metadata"]["uid"] and r.get("controller")
               for r in obj["metadata"].get("ownerReferences") or [])


def owner_ref(owner: Obj) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def ready_since(pod: Obj) -> float:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return 0.0


def active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return not pod["metadata"].get("deletionTimestamp") and phase not in ("Succeeded", "Failed")


@dataclass(frozen=True)
class Cluster:
    """What a controller may need beyond the API objects, handed over by the kube component before start."""

    metrics: Callable[[str, str], list[Obj]]  # metrics.k8s.io as metrics-server serves it: (plural, namespace)
    ca: Any  # core.tls.LabCA: the cluster CA (signs client certificates, is kube-root-ca.crt)
    volumes: Path  # where the local-path provisioner keeps its folders, one per node


class Controller:
    """Subclasses name the store keys they watch, map events to keys, and reconcile a key."""

    name = "controller"
    watches: tuple[str, ...] = ()  # store keys; the first is the primary resource
    owner_kind = ""  # events of other watched keys concern their controlling owner of this kind
    resync = 5.0  # seconds between full resyncs (time-based conditions)

    def __init__(self, objects: Objects, recorder: EventRecorder) -> None:
        self.objects = objects
        self.store = objects.store
        self.recorder = recorder
        self.log = logging.getLogger(f"labkit.kube-controller.{self.name}")
        self.dirty: set[Key] = set()
        self.wake = asyncio.Event()
        self._watchers: list[Watcher] = []
        self._tasks: list[asyncio.Task[None]] = []

    def rt(self, group: str, version: str, plural: str) -> ResourceType:
        found = self.objects.registry.find(group, version, plural)
        assert found is not None
        return found

    @staticmethod
    def owners(ev: Event, kind: str) -> list[Key]:
        """The controlling owners of kind ``kind`` of the event's object."""
        ns = ev.obj["metadata"].get("namespace", "")
        return [(ns, r["name"]) for r in ev.obj["metadata"].get("ownerReferences") or []
                if r.get("kind") == kind and r.get("controller")]

    def keys_for(self, ev: Event) -> Iterable[Key]:
        """Which primary objects an event concerns: the object itself, or its owner of ``owner_kind``."""
        if ev.key != self.watches[0] and self.owner_kind:
            return self.owners(ev, self.owner_kind)
        meta = ev.obj["metadata"]
        return [(meta.get("namespace", ""), meta["name"])]

    def all_keys(self) -> Iterable[Key]:
        """Every primary object (resynced periodically, for time-based conditions)."""
        return self.keys_of(self.watches[0])

    def keys_of(self, store_key: str) -> list[Key]:
        """Every object under ``store_key``, as keys."""
        return [(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in self.store.items(store_key)]

    def reconcile(self, key: Key) -> None:
        raise NotImplementedError

    def configure(self, cluster: Cluster) -> None:
        """Take what this controller needs from ``cluster`` (most need nothing)."""

    def start(self) -> None:
        for store_key in self.watches:
            w = Watcher(store_key, "", lambda o: True)
            self.store.subscribe(w)
            self._watchers.append(w)
            self._tasks.append(asyncio.get_running_loop().create_task(self._pump(w)))
        self._tasks.append(asyncio.get_running_loop().create_task(self._run()))

    async def stop(self) -> None:
        for w in self._watchers:
            self.store.unsubscribe(w)
        for t in self._tasks:
            await cancel(t)

    async def _pump(self, w: Watcher) -> None:
        while True:
            ev = await w.queue.get()
            if ev is None:
                return
            self.dirty.update(self.keys_for(ev))
            self.wake.set()

    async def _run(self) -> None:
        self.dirty.update(self.all_keys())
        next_resync = time.monotonic() + self.resync
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(0.0, next_resync - time.monotonic()))
            self.wake.clear()
            if time.monotonic() >= next_resync:
                self.dirty.update(self.all_keys())
                next_resync = time.monotonic() + self.resync
            await asyncio.sleep(0.01)  # let a burst of events coalesce
            batch, self.dirty = self.dirty, set()
            for key in sorted(batch):
                try:
                    self.reconcile(key)
                except ApiError as err:
                    if err.status == 409:  # a stale read: do it again
                        self.dirty.add(key)
                        self.wake.set()
                    elif err.status != 404:
                        self.log.warning("%s %s: %s", self.name, key, err)
                except Exception:
                    self.log.exception("%s failed on %s", self.name, key)


class EventRecorder:
    """Writes core/v1 Events as real components do, folding repeats into a count; events live an hour."""

    TTL = 3600.0  # the API server's --event-ttl

    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self._pruned = time.monotonic()

    def _prune(self, rt: ResourceType) -> None:
        if time.monotonic() - self._pruned < 60:
            return
        self._pruned = time.monotonic()
        cutoff = time.time() - self.TTL
        for ev in list(self.objects.store.items(rt.key)):
            if parse_time(ev.get("lastTimestamp") or ev["metadata"].get("creationTimestamp")) < cutoff:
                self.objects.store.write(rt.key, dict(ev), "DELETED")

    def emit(self, obj: Obj, kind: str, reason: str, message: str, component: str, host: str = "") -> None:
        rt = self.objects.registry.find("", "v1", "events")
        assert rt is not None
        self._prune(rt)
        meta = obj["metadata"]
        ns = meta.get("namespace") or "default"
        stamp = now()
        for ev in self.objects.store.items(rt.key, ns):
            io = ev["involvedObject"]
            if io.get("uid") == meta.get("uid") and ev["reason"] == reason and ev["message"] == message:
                updated = {**ev, "count": ev.get("count", 1) + 1, "lastTimestamp": stamp}
                self.objects.update(rt, ns, ev["metadata"]["name"], updated, MANAGER)
                return
        source = {"component": component, **({"host": host} if host else {})}
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}"[:253], "namespace": ns},
            "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                               "name": meta["name"], "namespace": meta.get("namespace", ""),
                               "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
            "reason": reason, "message": message, "type": kind, "source": source,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "reportingComponent": component, "reportingInstance": host,
        }
        with contextlib.suppress(ApiError):
            self.objects.create(rt, ns, event, MANAGER)
