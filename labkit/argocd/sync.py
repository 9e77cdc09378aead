"""A sync operation as gitops-engine runs it: PreSync hooks, then the resources wave by wave
(``argocd.argoproj.io/sync-wave``; a wave waits for the previous one to be healthy) with Sync hooks and prunes in
their wave (``PruneLast`` after all), then PostSync hooks, SyncFail hooks when it fails. Resources are applied with
the real kubectl: client-side apply (the last-applied annotation) or server-side apply (``ServerSideApply=true``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from . import health as hl
from .compare import Comparison, hook_types, key
from .diff import SYNC_OPTIONS, annotation_options, owner_app
from .render import kubectl

if TYPE_CHECKING:
    from .controller import Controller

WAVE = "argocd.argoproj.io/sync-wave"
DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
FIELD_MANAGER = "argocd-controller"
PHASES = ("PreSync", "Sync", "PostSync")
SUPPORTED_OPTIONS = {"ServerSideApply", "CreateNamespace", "PruneLast", "ApplyOutOfSyncOnly", "Validate", "Prune",
                     "Delete", "PrunePropagationPolicy", "FailOnSharedResource", "SkipDryRunOnMissingResource"}
HEALTH_WAIT = 300.0  # seconds a wave (or a hook) may take to become healthy (complete)
# gitops-engine's kind order inside a wave: namespaces and definitions first, workloads after
KIND_ORDER = ["Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget",
              "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
              "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList",
              "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList",
              "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
              "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService"]


class SyncFailed(Exception):
    pass


class Terminated(Exception):
    pass


def wave(obj: dict[str, Any]) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(WAVE, "0"))
    except ValueError:
        return 0


def _order(obj: dict[str, Any]) -> tuple[int, int, str]:
    kind = obj.get("kind", "")
    meta = obj["metadata"]
    return (wave(obj), KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER),
            meta.get("name") or meta.get("generateName", ""))


def options(app: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    return set(((app.get("spec") or {}).get("syncPolicy") or {}).get("syncOptions") or []) | set(
        (operation.get("sync") or {}).get("syncOptions") or [])


def result(obj: dict[str, Any], status: str, message: str, phase: str = "Sync", **extra: Any) -> dict[str, Any]:
    meta = obj["metadata"]
    api = obj.get("apiVersion", "v1")
    out = {"group": hl.group_of(obj), "version": api.rsplit("/", 1)[-1], "kind": obj["kind"],
           "namespace": meta.get("namespace", ""), "name": meta.get("name", ""), "status": status,
           "message": message, "syncPhase": phase, **extra}
    return out


@dataclass
class SyncRun:
    ctl: Controller
    app: dict[str, Any]
    operation: dict[str, Any]
    comparison: Comparison
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def opts(self) -> set[str]:
        return options(self.app, self.operation)

    @property
    def propagation(self) -> str:
        """PrunePropagationPolicy (foreground by default in Argo CD; background and orphan too)."""
        value = next((o.split("=", 1)[1] for o in self.opts if o.startswith("PrunePropagationPolicy=")), "foreground")
        return value.capitalize()

    def check_options(self) -> None:
        """Sync options the simulator does not honour fail the sync, never silently."""
        for opt in sorted(self.opts):
            name, _, value = opt.partition("=")
            if name not in SUPPORTED_OPTIONS or (name == "PrunePropagationPolicy" and value not in (
                    "foreground", "background", "orphan")):
                raise SyncFailed(f"sync option {opt} is not supported by the labkit simulator (supported: "
                                 f"{', '.join(sorted(SUPPORTED_OPTIONS))})")

    def shared(self) -> None:
        """FailOnSharedResource=true: a resource another Application tracks fails the sync."""
        if "FailOnSharedResource=true" not in self.opts:
            return
        name = self.app["metadata"]["name"]
        for obj in self.comparison.targets:
            live = self.comparison.live.get(key(obj))
            other = owner_app(live) if live else ""
            if other and other != name:
                raise SyncFailed(f"{obj['kind']}/{obj['metadata']['name']} is part of applications argocd/{name} "
                                 f"and {other}")

    @property
    def sync(self) -> dict[str, Any]:
        return self.operation.get("sync") or {}

    def _selected(self, obj: dict[str, Any]) -> bool:
        wanted = self.sync.get("resources")
        if not wanted:
            return True
        g, k, ns, n = key(obj)
        return any(r.get("group", "") == g and r.get("kind") == k and r.get("name") == n
                   and r.get("namespace", ns) in (ns, "") for r in wanted)

    async def kubectl(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        env = {**os.environ, "KUBECONFIG": str(self.ctl.kubeconfig)}
        proc = await asyncio.create_subprocess_exec(kubectl(), *args, env=env, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(stdin.encode())
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    async def apply(self, objs: list[dict[str, Any]], phase: str = "Sync", dry_run: bool = False,
                    **extra: Any) -> None:
        """``kubectl apply`` of ``objs`` in one call; a result per object (SyncFailed with kubectl's message)."""
        if not objs:
            return
        server_side = "ServerSideApply=true" in self.opts or any(
            "ServerSideApply=true" in annotation_options(o, SYNC_OPTIONS) for o in objs)
        args = ["apply", "-f", "-"]
        if server_side:
            args += ["--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}"]
        if dry_run:
            args.append("--dry-run=server")
        strategy = self.sync.get("syncStrategy") or {}
        if (strategy.get("apply") or strategy.get("hook") or {}).get("force") and not server_side:
            args.append("--force")
        if "Validate=false" in self.opts:
            args.append("--validate=false")
        code, out, err = await self.kubectl(*args, stdin=yaml.safe_dump_all(objs, sort_keys=False))
        done: dict[tuple[str, str], str] = {}
        for line in out.splitlines():
            m = re.match(r"^([\w-]+)(?:\.([\w.-]+))?/(\S+) (.+)$", line.strip())
            if m:
                done[(m.group(1), m.group(3))] = line.strip()
        failed = False
        for obj in objs:
            line = done.get((obj["kind"].lower(), obj["metadata"]["name"]))
            if line is not None:
                self.results.append(result(obj, "Synced", line, phase, **extra))
            else:
                failed = True
                name = obj["metadata"]["name"]
                msg = next((ln for ln in err.splitlines() if f'"{name}"' in ln or f"/{name}" in ln),
                           err.strip() or f"kubectl apply exited {code}")
                self.results.append(result(obj, "SyncFailed", msg, phase, **extra))
        if failed:
            raise SyncFailed("one or more objects failed to apply, reason: " + "; ".join(
                r["message"] for r in self.results if r["status"] == "SyncFailed"))

    async def check_terminated(self) -> None:
        if await self.ctl.terminating(self.app):
            raise Terminated("Operation terminated")

    async def wait_healthy(self, objs: list[dict[str, Any]]) -> None:
        """Until each of ``objs`` with a health check is healthy (a Degraded one fails the sync)."""
        deadline = asyncio.get_running_loop().time() + HEALTH_WAIT
        while True:
            await self.check_terminated()
            pending = []
            for obj in objs:
                live = await self.ctl.live(obj)
                health = hl.resource_health(live)
                if health is None or health["status"] in (hl.HEALTHY, hl.SUSPENDED):
                    continue
                if health["status"] == hl.DEGRADED:
                    raise SyncFailed(f"{obj['kind']}/{obj['metadata']['name']} is Degraded: "
                                     f"{health.get('message', '')}".rstrip(": "))
                pending.append(obj)
            if not pending:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise SyncFailed(f"{pending[0]['kind']}/{pending[0]['metadata']['name']} is not healthy after "
                                 f"{HEALTH_WAIT:.0f}s")
            await asyncio.sleep(0.2)

    async def run_hooks(self, phase: str) -> None:
        """The hooks of ``phase``, wave by wave: each created afresh (BeforeHookCreation, the default) and waited
        for; a failed one fails the sync; deleted after as their hook-delete-policy says."""
        hooks = sorted((h for h in self.comparison.hooks if phase in hook_types(h)), key=_order)
        for w in sorted({wave(h) for h in hooks}):
            batch = [h for h in hooks if wave(h) == w]
            for hook in batch:
                policies = annotation_options(hook, DELETE_POLICY) or {"BeforeHookCreation"}
                if "BeforeHookCreation" in policies and hook["metadata"].get("name"):
                    await self.ctl.delete(hook, wait=True)
            await self.apply([h for h in batch if h["metadata"].get("name")], phase, hookType=phase)
            for hook in batch:
                if not hook["metadata"].get("name"):  # generateName: created (apply needs a name)
                    created = await self.ctl.create(hook)
                    hook["metadata"]["name"] = created["metadata"]["name"]
                    self.results.append(result(hook, "Synced", f"{hook['kind'].lower()}/{hook['metadata']['name']} "
                                               "created", phase, hookType=phase))
            for hook in batch:
                await self.check_terminated()
                status = await self._wait_hook(hook)
                res = next(r for r in reversed(self.results) if r["name"] == hook["metadata"]["name"]
                           and r["kind"] == hook["kind"])
                res["hookPhase"] = "Succeeded" if status["status"] == hl.HEALTHY else "Failed"
                res["message"] = status.get("message") or res["message"]
                policies = annotation_options(hook, DELETE_POLICY)
                if ("HookSucceeded" in policies and res["hookPhase"] == "Succeeded") or (
                        "HookFailed" in policies and res["hookPhase"] == "Failed"):
                    await self.ctl.delete(hook)
                if res["hookPhase"] == "Failed":
                    raise SyncFailed(f"{phase} hook {hook['kind']}/{hook['metadata']['name']} failed: "
                                     f"{status.get('message', '')}".rstrip(": "))

    async def _wait_hook(self, hook: dict[str, Any]) -> dict[str, str]:
        deadline = asyncio.get_running_loop().time() + HEALTH_WAIT
        while asyncio.get_running_loop().time() < deadline:
            health = hl.resource_health(await self.ctl.live(hook))
            if health is None or health["status"] in (hl.HEALTHY, hl.DEGRADED):
                return health or {"status": hl.HEALTHY}
            if hook["kind"] == "Pod" and health["status"] == hl.PROGRESSING:
                live = await self.ctl.live(hook)
                if live and (live.get("status") or {}).get("phase") == "Failed":
                    return {"status": hl.DEGRADED, "message": "pod failed"}
            await self.check_terminated()
            await asyncio.sleep(0.2)
        return {"status": hl.DEGRADED, "message": f"hook did not complete in {HEALTH_WAIT:.0f}s"}

    async def prune(self, objs: list[dict[str, Any]]) -> None:
        allowed = bool(self.sync.get("prune"))
        for obj in objs:
            no_prune = "Prune=false" in annotation_options(obj, SYNC_OPTIONS)
            if not allowed or no_prune:
                self.results.append(result(obj, "PruneSkipped", "ignored (no prune)" if no_prune
                                           else "ignored (requires pruning)"))
                continue
            if self.sync.get("dryRun"):
                self.results.append(result(obj, "Pruned", "pruned (dry run)"))
                continue
            await self.ctl.delete(obj, propagation=self.propagation)
            self.results.append(result(obj, "Pruned", "pruned"))

    async def create_namespace(self) -> None:
        ns = ((self.app.get("spec") or {}).get("destination") or {}).get("namespace")
        if not ns or "CreateNamespace=true" not in self.opts:
            return
        managed = ((self.app.get("spec") or {}).get("syncPolicy") or {}).get("managedNamespaceMetadata") or {}
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, **{
            k: managed[k] for k in ("labels", "annotations") if managed.get(k)}}}
        if await self.ctl.live(obj) is None or managed:
            await self.apply([obj], "PreSync", dry_run=bool(self.sync.get("dryRun")))

    async def run(self) -> str:
        """The whole sync; its message (raises SyncFailed or Terminated)."""
        dry = bool(self.sync.get("dryRun"))
        self.check_options()
        self.shared()
        strategy = self.sync.get("syncStrategy") or {}
        if self.sync.get("resources") or "apply" in strategy:
            self.comparison.hooks = []  # a selective sync, or the apply strategy, runs no hooks
        targets = [t for t in self.comparison.targets if self._selected(t)]
        if "ApplyOutOfSyncOnly=true" in self.opts:
            synced = {(r.get("group", ""), r["kind"], r.get("namespace", ""), r["name"])
                      for r in self.comparison.resources if r["status"] == "Synced"}
            targets = [t for t in targets if key(t) not in synced]
        target_keys = {key(t) for t in self.comparison.targets}
        extraneous = [o for k, o in self.comparison.live.items() if k not in target_keys and self._selected(o)]
        prune_last = "PruneLast=true" in self.opts
        late = [o for o in extraneous if prune_last or "PruneLast=true" in annotation_options(o, SYNC_OPTIONS)]
        early = [o for o in extraneous if o not in late]
        await self.create_namespace()
        if not dry:
            await self.run_hooks("PreSync")
        sync_hooks = [h for h in self.comparison.hooks if "Sync" in hook_types(h)]
        waves = sorted({wave(o) for o in targets + early + sync_hooks})
        for i, w in enumerate(waves):
            await self.check_terminated()
            await self.prune(sorted((o for o in early if wave(o) == w), key=_order, reverse=True))
            batch = sorted((t for t in targets if wave(t) == w), key=_order)
            await self.apply(batch, dry_run=dry)
            if not dry and any(wave(h) == w for h in sync_hooks):
                saved = self.comparison.hooks
                self.comparison.hooks = [h for h in sync_hooks if wave(h) == w]
                await self.run_hooks("Sync")
                self.comparison.hooks = saved
            later = i < len(waves) - 1 or any("PostSync" in hook_types(h) for h in self.comparison.hooks) or late
            if not dry and later:
                await self.wait_healthy(batch)
        await self.prune(late)
        if not dry:
            await self.run_hooks("PostSync")
        return "successfully synced (all tasks run)"

    async def fail_hooks(self) -> None:
        if any("SyncFail" in hook_types(h) for h in self.comparison.hooks):
            with contextlib.suppress(SyncFailed, Terminated):
                await self.run_hooks("SyncFail")
