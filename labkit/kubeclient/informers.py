"""A controller's view of the cluster, as client-go's informers (and gitops-engine's cluster cache) keep it: API
discovery (which kinds exist, their plural and scope) and, per kind, a list+watch cache of the live objects; each
change is reported to the controller (Argo CD's compares the Application it belongs to again; istiod pushes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..core.tasks import cancel_all
from .api import KubeApi, KubeError

log = logging.getLogger("labkit.kubeclient.informers")
Key = tuple[str, str]  # (group, kind)


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        ns = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{base}{ns}/{self.plural}" + (f"/{name}" if name else "")


class Informer:
    """The live objects of one kind, kept by list and watch."""

    def __init__(self, cluster: Cluster, res: Resource) -> None:
        self.cluster, self.res = cluster, res
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                listed = await self.cluster.kube.get(self.res.path())
                objects = {}
                for item in listed.get("items") or []:
                    item.setdefault("apiVersion", self.res.api_version)
                    item.setdefault("kind", self.res.kind)
                    objects[(item["metadata"].get("namespace", ""), item["metadata"]["name"])] = item
                old, self.objects = self.objects, objects
                self.synced.set()
                for key in set(old) | set(objects):
                    if old.get(key, {}).get("metadata", {}).get("resourceVersion") != \
                            objects.get(key, {}).get("metadata", {}).get("resourceVersion"):
                        self.cluster.changed(objects.get(key) or old[key])
                await self._watch(listed["metadata"].get("resourceVersion", ""))
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.debug("watch %s: %s", self.res.plural, err)
                await asyncio.sleep(0.5)

    async def _watch(self, rv: str) -> None:
        kube = self.cluster.kube
        params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true"}
        async with self.cluster.stream_session().get(kube.server + self.res.path(), params=params,
                                                     ssl=kube.ssl) as resp:
            if resp.status != 200:
                raise KubeError(resp.status, {"message": await resp.text()})
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    return  # 410 Gone and the like: list again
                if event.get("type") == "BOOKMARK":
                    continue
                obj.setdefault("apiVersion", self.res.api_version)
                obj.setdefault("kind", self.res.kind)
                key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                if event["type"] == "DELETED":
                    self.objects.pop(key, None)
                else:
                    self.objects[key] = obj
                self.cluster.changed(obj)


class Cluster:
    def __init__(self, kube: KubeApi, on_change: Callable[[dict[str, Any]], None]) -> None:
        self.kube, self.on_change = kube, on_change
        self.resources: dict[Key, Resource] = {}
        self.informers: dict[Key, Informer] = {}
        self._session: aiohttp.ClientSession | None = None
        self._discovered = 0.0

    def stream_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self.kube.headers, trust_env=False,
                                                  timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._session

    def changed(self, obj: dict[str, Any]) -> None:
        try:
            self.on_change(obj)
        except Exception:
            log.exception("change listener")

    async def discover(self) -> None:
        """Every kind the API serves (the preferred version of each group)."""
        found: dict[Key, Resource] = {}

        async def group(path: str, group: str, version: str) -> None:
            for r in (await self.kube.get(path)).get("resources") or []:
                if "/" in r["name"]:
                    continue
                found.setdefault((group, r["kind"]), Resource(group, version, r["kind"], r["name"],
                                                              bool(r.get("namespaced"))))

        await group("/api/v1", "", "v1")
        groups = (await self.kube.get("/apis")).get("groups") or []
        await asyncio.gather(*(group(f"/apis/{g['preferredVersion']['groupVersion']}", g["name"],
                                     g["preferredVersion"]["version"]) for g in groups))
        self.resources = found
        self._discovered = asyncio.get_running_loop().time()

    async def resource(self, group: str, kind: str) -> Resource | None:
        """The kind's API resource (discovery again, at most once a second, for a kind not known yet: a CRD)."""
        res = self.resources.get((group, kind))
        if res is None and asyncio.get_running_loop().time() - self._discovered > 1:
            await self.discover()
            res = self.resources.get((group, kind))
        return res

    async def informer(self, res: Resource, wait: bool = True) -> Informer:
        """The kind's cache, started on first use (``wait``: until its first list is in)."""
        key = (res.group, res.kind)
        inf = self.informers.get(key)
        if inf is None:
            inf = self.informers[key] = Informer(self, res)
        if not wait:
            return inf
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(inf.synced.wait(), 20)
        return inf

    async def close(self) -> None:
        await cancel_all([inf.task for inf in list(self.informers.values())])
        if self._session is not None:
            await self._session.close()
