"""The sim kubelet: runs each container of the pods bound to its node as a local process.

Per pod: its volumes are set up (``volumes``; a missing source keeps it in ContainerCreating with a FailedMount
event), the image is pulled from the lab registry and unpacked; each container runs as
``containers.ContainerConfig`` describes it, on the pod's own loopback address (the sim's stand-in for a network
namespace). Init containers run in order, each to completion, before the app containers; sidecars (init
containers with ``restartPolicy: Always``) start in order and run beside them. Lifecycle hooks and the grace
period (``lifecycle``), probes (``probes``), restarts with CrashLoopBackOff, the pod status (``podstatus``) and
logs behave as the kubelet's do: each container's stdout and stderr are kept in the CRI format below the node's
``/var/log`` (``crilog``). Hooks, stops and pod teardowns run as tasks, so one pod's grace period holds up
no other pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import shutil
import signal
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from ...core.tasks import cancel
from ...images.pull import Image, ImagePuller, parse_ref, pull_secret_auth
from ..apiserver.objects import Objects, now
from ..apiserver.portforward import PodNet
from ..apiserver.store import Watcher
from ..controllers.base import EventRecorder, Obj
from .agent import NodeSpec
from .attach import ContainerIO
from .containers import Container, ContainerConfig, PodRuntime
from .crilog import CriLog, container_id, link_path, node_log_dir, pod_log_dir
from .downward import all_containers
from .exec import ContainerHandle
from .lifecycle import MIN_GRACE, run_hook, stop_process
from .podstatus import post_status
from .probes import Prober
from .proxy import ServiceProxy
from .usage import UsageSampler, node_metrics, pod_metrics
from .volumes import PodVolumes, VolumeError

BACKOFF_START, BACKOFF_MAX = 1.0, 20.0  # 10 s and 300 s in a stock kubelet
SYNC = 0.5  # seconds between pod status/probe rounds
MOUNT_RETRY = 2.0  # seconds between attempts to set up a pod's volumes
LOG_GC_DELAY = 30.0  # seconds a deleted pod's logs stay for the node's log collector (the kubelet's housekeeping)
HOOK_TIMEOUT = 3600.0  # a postStart hook has no timeout in Kubernetes; the lab stops waiting after an hour
SECURITY_FIELDS = ("runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups", "privileged",
                   "allowPrivilegeEscalation", "readOnlyRootFilesystem", "capabilities", "seLinuxOptions",
                   "seccompProfile", "appArmorProfile", "procMount", "sysctls", "fsGroupChangePolicy")
log = logging.getLogger("labkit.kubelet")
T = TypeVar("T")


def _grace(pod: Obj) -> float:
    return float(pod["spec"].get("terminationGracePeriodSeconds", 30))


def security_context(pod: Obj) -> str:
    """The securityContext settings the pod asks for (pod and containers), as ``runAsUser=1000, ...``."""
    asked: dict[str, Any] = {}
    for ctx in [pod["spec"].get("securityContext") or {},
                *((c.get("securityContext") or {}) for c in all_containers(pod))]:
        asked.update({k: v for k, v in ctx.items() if k in SECURITY_FIELDS})
    return ", ".join(f"{k}={v}" for k, v in asked.items())



class Kubelet:
    """One node's kubelet."""

    def __init__(self, objects: Objects, node: NodeSpec, pod_ips: list[str], pods_dir: Path,
                 puller: ImagePuller, recorder: EventRecorder, proxy: ServiceProxy | None = None) -> None:
        self.objects = objects
        self.node = node
        self.free_ips = list(pod_ips)
        self.pods_dir = pods_dir
        self.log_root = node_log_dir(pods_dir.parent.parent, node.name)  # the node's /var/log
        self.puller = puller
        self.recorder = recorder
        self.config = ContainerConfig(objects, node, proxy)
        self.prober = Prober(recorder, node, self._unhealthy)
        self.pods: dict[str, PodRuntime] = {}
        self.usage = UsageSampler()  # what metrics-server reads (kubectl top, the HPA)
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()  # hooks, stops and teardowns in flight

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """The node goes down: every container process stops at once (no graceful shutdown)."""
        await cancel(self._task)
        self._task = None
        for task in list(self._tasks):
            await cancel(task)
        for rt in self.pods.values():
            for c in rt.containers.values():
                if c.proc is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(c.proc.pid, signal.SIGKILL)
                    c.proc.wait()
                self._release(c)
                self._close_log(c)
            if rt.volumes is not None:
                self.config.volumes.cleanup(rt.volumes)
        self.free_ips.extend(rt.ip for rt in self.pods.values())
        self.pods.clear()

    # -- the sync loop ------------------------------------------------------
    async def _loop(self) -> None:
        watcher = Watcher("/pods", "", lambda o: o["spec"].get("nodeName") == self.node.name)
        self.objects.store.subscribe(watcher)
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._next_change(watcher), SYNC)
                while not watcher.queue.empty():
                    watcher.queue.get_nowait()
                self._wakeup.clear()
                await self._sync()
                self.usage.sample(self.pods.values())
        finally:
            self.objects.store.unsubscribe(watcher)

    def _wake(self) -> None:
        self._wakeup.set()

    async def _next_change(self, watcher: Watcher) -> None:
        """A change to this node's pods, or a wake-up (a pull ended)."""
        if self._wakeup.is_set():
            return
        getter = asyncio.ensure_future(watcher.queue.get())
        woken = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({getter, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (getter, woken):
                f.cancel()

    async def _sync(self) -> None:
        mine = {p["metadata"]["uid"]: p for p in self.objects.store.items("/pods")
                if p["spec"].get("nodeName") == self.node.name}
        for uid in list(self.pods):
            if uid not in mine:  # deleted (force, or by the API while we were away)
                self._begin_teardown(uid, 0, None)
        for pod in mine.values():
            try:
                await self._sync_pod(pod)
            except Exception as exc:  # one pod's trouble must not stop the node
                log.exception("sync %s: %s", pod["metadata"]["name"], exc)

    async def _sync_pod(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        rt = self.pods.get(uid)
        if pod["metadata"].get("deletionTimestamp"):
            if rt is None:
                self._finalize_delete(pod)
            else:
                grace = pod["metadata"].get("deletionGracePeriodSeconds",
                                            pod["spec"].get("terminationGracePeriodSeconds", 30))
                self._begin_teardown(uid, grace, pod)
            return
        if rt is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") or not self.free_ips:
                return
            rt = self._new_runtime(pod)
        if rt.terminating:
            return
        if self._mounted(pod, rt) and not (rt.finished or rt.init_failed):
            if not rt.initialized:
                await self._sync_init(pod, rt)
            if rt.initialized:
                for c in rt.of("sidecar", "app"):
                    await self._sync_container(pod, rt, c)
                self._check_finished(pod, rt)
        post_status(self.objects, self.node, pod, rt)

    def _new_runtime(self, pod: Obj) -> PodRuntime:
        uid = pod["metadata"]["uid"]
        root = self.pods_dir / f"{pod['metadata']['namespace']}_{pod['metadata']['name']}_{uid[:8]}"
        rt = PodRuntime(uid, self.free_ips.pop(0), root, volumes=PodVolumes(root / "volumes"))
        logs = pod_log_dir(self.log_root, pod["metadata"]["namespace"], pod["metadata"]["name"], uid)
        for spec in pod["spec"].get("initContainers") or []:
            kind = "sidecar" if spec.get("restartPolicy") == "Always" else "init"
            rt.containers[spec["name"]] = Container(spec, logs / spec["name"], kind, pod_dir=root)
        for spec in pod["spec"]["containers"]:
            rt.containers[spec["name"]] = Container(spec, logs / spec["name"], pod_dir=root)
        self.pods[uid] = rt
        asked = security_context(pod)
        if asked:
            self.recorder.emit(pod, "Warning", "SecurityContextNotApplied",
                               f"securityContext {asked} is recorded in the pod spec; the labkit simulator runs the "
                               f"containers as the lab's user (uid {os.getuid()}, gid {os.getgid()})",
                               "kubelet", self.node.name)
        return rt

    def _mounted(self, pod: Obj, rt: PodRuntime) -> bool:
        """The pod's volumes are set up (and their sources synced); else a FailedMount event and a retry."""
        vols = rt.volumes
        assert vols is not None
        if vols.ready:
            self.config.volumes.refresh(pod, vols, rt.ip)
            return True
        if time.monotonic() < vols.retry_at:
            return False
        try:
            self.config.volumes.setup(pod, vols, rt.ip)
            return True
        except VolumeError as err:
            vols.retry_at = time.monotonic() + MOUNT_RETRY
            self.recorder.emit(pod, "Warning", "FailedMount", str(err), "kubelet", self.node.name)
            return False

    async def _sync_init(self, pod: Obj, rt: PodRuntime) -> None:
        """Init containers in order, each to completion; a sidecar only has to start (its startupProbe pass)."""
        for c in rt.of("init", "sidecar"):
            if c.kind == "init" and c.succeeded:
                continue
            await self._sync_container(pod, rt, c)
            if c.kind == "sidecar" and c.running and c.started:
                continue
            if c.kind == "init" and c.succeeded:
                continue
            if c.kind == "init" and c.proc is None and c.last_exit is not None and not self._restarts(pod, c):
                rt.init_failed = True  # restartPolicy Never: the pod failed; its sidecars stop
                self._stop_all(pod, rt.of("sidecar")[::-1], sequential=True)
            return
        rt.initialized = True

    def _check_finished(self, pod: Obj, rt: PodRuntime) -> None:
        """Under restartPolicy Never/OnFailure the pod is done when its app containers are: sidecars stop."""
        apps = rt.of("app")
        if all(c.proc is None and c.last_exit is not None and not self._restarts(pod, c) for c in apps):
            rt.finished = True
            self._stop_all(pod, rt.of("sidecar")[::-1], sequential=True)

    async def _sync_container(self, pod: Obj, rt: PodRuntime, c: Container) -> None:
        if c.stopping is not None:
            if not c.stopping.done():
                return
            c.stopping = None
        if c.hook is not None:
            if not c.hook.done():
                return
            failure = c.hook.exception() or c.hook.result()
            c.hook = None
            if failure:
                self.recorder.emit(pod, "Warning", "FailedPostStartHook", str(failure), "kubelet", self.node.name)
                c.stopping = self._spawn(self._stop(pod, c, _grace(pod), prestop=False))
                return
        if c.proc is not None and c.proc.poll() is not None:
            self._exited(pod, c)
        if c.proc is None:
            if c.last_exit is not None and not self._restarts(pod, c):
                return
            if time.monotonic() < c.backoff_until:
                return
            await self._start_container(pod, rt, c)
            return
        await self.prober.probe(pod, rt, c)

    @staticmethod
    def _restarts(pod: Obj, c: Container) -> bool:
        """Whether an exited container runs again: sidecars always, init containers until they succeed."""
        code = c.last_exit["exitCode"] if c.last_exit else 0
        policy = pod["spec"].get("restartPolicy", "Always")
        if c.kind == "sidecar":
            return True
        if c.kind == "init":
            return code != 0 and policy != "Never"
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    def _record_exit(self, c: Container) -> int:
        assert c.proc is not None
        code = c.proc.returncode
        code = code if code >= 0 else 128 - code
        c.last_exit = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                       "startedAt": c.started_at, "finishedAt": now(), "containerID": f"labkit://{c.proc.pid}"}
        c.proc, c.ready, c.started = None, False, False
        self._release(c)
        return code

    def _exited(self, pod: Obj, c: Container) -> None:
        self._record_exit(c)
        if self._restarts(pod, c):
            if c.restarts == 0:  # the first restart is immediate, back-off starts after it
                c.waiting = None
                return
            delay = min(BACKOFF_MAX, BACKOFF_START * 2 ** min(c.restarts - 1, 10))
            c.backoff_until = time.monotonic() + delay
            c.waiting = ("CrashLoopBackOff", f"back-off {delay:.0f}s restarting failed container={c.name} "
                                             f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}"
                                             f"({pod['metadata']['uid']})")
            self.recorder.emit(pod, "Warning", "BackOff", "Back-off restarting failed container "
                               f"{c.name} in pod {pod['metadata']['name']}_{pod['metadata']['namespace']}"
                               f"({pod['metadata']['uid']})", "kubelet", self.node.name)
        else:
            c.waiting = None

    def _pull(self, pod: Obj, ref: str) -> asyncio.Future[Image]:
        """The pull of ``ref`` with the pod's image pull secrets (shared with other pods and nodes that pull it the
        same way); the kubelet syncs again when it ends."""
        ns = pod["metadata"]["namespace"]
        secrets = [s for r in pod["spec"].get("imagePullSecrets") or []
                   if (s := self.objects.store.get("/secrets", ns, r.get("name", ""))) is not None]
        future = self.puller.pull_async(ref, pull_secret_auth(secrets, parse_ref(ref)[0]))
        future.add_done_callback(lambda _: self._wake())
        return future

    async def _start_container(self, pod: Obj, rt: PodRuntime, c: Container) -> None:
        ref = c.spec["image"]
        policy = c.spec.get("imagePullPolicy") or "IfNotPresent"
        if ref not in rt.image_refs and policy != "Always" and ref in self.puller.present:
            rt.image_refs[ref] = self.puller.present[ref]
            self.recorder.emit(pod, "Normal", "Pulled", f'Container image "{ref}" already present on machine',
                               "kubelet", self.node.name)
        if ref not in rt.image_refs and policy == "Never":
            c.waiting = ("ErrImageNeverPull", f'Container image "{ref}" is not present with pull policy of Never')
            c.backoff_until = time.monotonic() + BACKOFF_START
            self.recorder.emit(pod, "Warning", "ErrImageNeverPull", c.waiting[1], "kubelet", self.node.name)
            return
        if ref not in rt.image_refs:
            if ref not in rt.pulling:
                self.recorder.emit(pod, "Normal", "Pulling", f'Pulling image "{ref}"', "kubelet", self.node.name)
                rt.pulling[ref] = (time.monotonic(), self._pull(pod, ref))
            started, task = rt.pulling[ref]
            if not task.done():
                return  # the node's other pods go on; this one starts when its pull is done
            del rt.pulling[ref]
            err = task.exception()
            if err is not None:
                first = c.waiting is None or c.waiting[0] not in ("ErrImagePull", "ImagePullBackOff")
                c.waiting = ("ErrImagePull" if first else "ImagePullBackOff",
                             str(err) if first else f'Back-off pulling image "{ref}": ErrImagePull: {err}')
                c.backoff_until = time.monotonic() + (BACKOFF_START if first else BACKOFF_MAX / 2)
                self.recorder.emit(pod, "Warning", "Failed", f'Failed to pull image "{ref}": {err}', "kubelet",
                                   self.node.name)
                if not first:
                    self.recorder.emit(pod, "Normal", "BackOff", f'Back-off pulling image "{ref}"', "kubelet",
                                       self.node.name)
                return
            rt.image_refs[ref] = task.result()
            took = time.monotonic() - started
            self.recorder.emit(pod, "Normal", "Pulled", f'Successfully pulled image "{ref}" in {took * 1000:.0f}ms',
                               "kubelet", self.node.name)
        image = rt.image_refs[ref]
        try:
            argv, cwd, env = self.config.command(pod, rt, c, image)
        except (KeyError, ValueError) as err:
            c.waiting = ("CreateContainerConfigError", str(err))
            c.backoff_until = time.monotonic() + BACKOFF_START
            self.recorder.emit(pod, "Warning", "Failed", f"Error: {err}", "kubelet", self.node.name)
            return
        if c.last_exit is not None:
            c.restarts += 1
        c.log_dir.mkdir(parents=True, exist_ok=True)
        self.recorder.emit(pod, "Normal", "Created", f"Created container: {c.name}", "kubelet", self.node.name)
        self._close_log(c)  # the instance before: what its pipes still hold
        log = CriLog(c.log_path())
        try:
            c.proc, c.io, c.pump = ContainerIO.spawn(argv, cwd, env, c.spec, log)
        except OSError as err:
            log.close()
            c.waiting = ("RunContainerError", f"failed to start container {c.name!r}: {err}")
            c.backoff_until = time.monotonic() + BACKOFF_START
            return
        c.log = log
        self._link_log(pod, c)
        c.env, c.cwd = env, cwd
        c.started_at, c.waiting = now(), None
        c.next_probe, c.probe_failures = {}, {}
        self.recorder.emit(pod, "Normal", "Started", f"Started container {c.name}", "kubelet", self.node.name)
        post_start = (c.spec.get("lifecycle") or {}).get("postStart")
        handle = c.handle()
        if post_start and handle is not None:  # the container counts as started once its hook succeeded
            c.hook = self._spawn(run_hook("PostStart", post_start, handle, pod, HOOK_TIMEOUT))

    # -- termination ------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """A task of this kubelet's (cancelled when the node stops)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._wake())
        return task

    def _unhealthy(self, pod: Obj, c: Container) -> None:
        """A failed liveness or startup probe: the container is stopped (preStop, grace period) and restarts."""
        if c.stopping is None:
            c.stopping = self._spawn(self._stop(pod, c, _grace(pod)))

    async def _stop(self, pod: Obj | None, c: Container, grace: float, prestop: bool = True,
                    final: bool = False) -> None:
        """Stop one container as the kubelet does: its preStop hook, then SIGTERM, then SIGKILL when the grace
        period (what is left of it after the hook, at least 2 s) is over. ``final``: record its exit now."""
        proc = c.proc
        if proc is None:
            return
        if c.hook is not None:
            c.hook.cancel()
            c.hook = None
        began = time.monotonic()
        pre_stop = (c.spec.get("lifecycle") or {}).get("preStop")
        handle = c.handle()
        if prestop and pre_stop and grace > 0 and handle is not None and pod is not None:
            try:
                failure = await asyncio.wait_for(run_hook("PreStop", pre_stop, handle, pod, grace), grace)
            except TimeoutError:
                failure = None  # the grace period ran out during the hook: SIGTERM, then SIGKILL soon after
            if failure:
                self.recorder.emit(pod, "Warning", "FailedPreStopHook", failure, "kubelet", self.node.name)
            grace = max(grace - (time.monotonic() - began), MIN_GRACE)
        await stop_process(proc, grace)
        if final and c.proc is proc:
            self._record_exit(c)

    def _stop_all(self, pod: Obj, containers: list[Container], sequential: bool) -> None:
        """Stop ``containers`` for good (in order when ``sequential``), in the background."""
        running = [c for c in containers if c.proc is not None and c.stopping is None]
        if not running:
            return

        async def stop_in_order() -> None:
            for c in running:
                self.recorder.emit(pod, "Normal", "Killing", f"Stopping container {c.name}", "kubelet",
                                   self.node.name)
                await self._stop(pod, c, _grace(pod), final=True)

        task = self._spawn(stop_in_order())
        for c in running:
            c.stopping = task

    def _begin_teardown(self, uid: str, grace: float, pod: Obj | None) -> None:
        rt = self.pods.get(uid)
        if rt is not None and not rt.terminating:
            rt.terminating = True
            self._spawn(self._teardown(rt, grace, pod))

    async def _teardown(self, rt: PodRuntime, grace: float, pod: Obj | None) -> None:
        """The pod goes: app containers stop together (preStop, SIGTERM, SIGKILL at the end of the grace
        period), then the sidecars one by one in reverse order, then the pod's volumes and address."""
        deadline = time.monotonic() + grace

        async def stop(c: Container) -> None:
            if c.stopping is not None and not c.stopping.done():
                with contextlib.suppress(Exception):
                    await asyncio.shield(c.stopping)
            if c.proc is None:
                return
            if pod is not None:
                self.recorder.emit(pod, "Normal", "Killing", f"Stopping container {c.name}", "kubelet",
                                   self.node.name)
            left = max(deadline - time.monotonic(), MIN_GRACE) if grace else 0
            await self._stop(pod, c, left, final=True)

        await asyncio.gather(*(stop(c) for c in rt.of("app", "init")))
        for c in rt.of("sidecar")[::-1]:
            await stop(c)
        for c in rt.containers.values():
            self._release(c)
            self._close_log(c)
        self._forget_logs(rt)
        if rt.volumes is not None:
            self.config.volumes.cleanup(rt.volumes)
        self.pods.pop(rt.uid, None)
        self.free_ips.append(rt.ip)
        if pod is not None:
            self._finalize_delete(pod)

    @staticmethod
    def _release(c: Container) -> None:
        """The container's stdin pipe or terminal goes with its process."""
        if c.io is not None:
            c.io.close()
            c.io = None

    @staticmethod
    def _close_log(c: Container) -> None:
        """The container is gone for good: what its output pipes hold is logged, and the log closed."""
        if c.pump is not None:
            c.pump.close()
            c.pump = None
        if c.log is not None:
            c.log.close()

    def _finalize_delete(self, pod: Obj) -> None:
        """The kubelet's final delete (grace period 0) once the containers are gone."""
        fresh = self.objects.store.get("/pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        if fresh is None or fresh["metadata"]["uid"] != pod["metadata"]["uid"] or fresh["metadata"].get("finalizers"):
            return
        self.objects.store.write("/pods", copy.deepcopy(fresh), "DELETED")

    # -- resource usage (kubectl top) -----------------------------------------------------
    # -- logs -------------------------------------------------------------------------------
    def log_file(self, pod: Obj, container: str, previous: bool) -> Path | None:
        rt = self.pods.get(pod["metadata"]["uid"])
        if rt is None or container not in rt.containers:
            return None
        c = rt.containers[container]
        if previous and c.restarts == 0:
            return None
        path = c.log_path(previous)
        return path if path.exists() else None

    def log_live(self, pod: Obj, container: str, path: Path) -> bool:
        """Whether ``path`` is the log a running container instance still writes (``kubectl logs -f`` goes on)."""
        rt = self.pods.get(pod["metadata"]["uid"])
        c = rt.containers.get(container) if rt is not None else None
        if c is None or c.log is None or c.log.path != path:
            return False
        return (c.proc is not None and c.proc.poll() is None) or (c.pump is not None and not c.pump.done)

    def _link_log(self, pod: Obj, c: Container) -> None:
        """``containers/<pod>_<ns>_<name>-<id>.log`` for the new instance; the one before stays (as the kubelet
        keeps the last dead container), older ones go."""
        meta = pod["metadata"]
        link = link_path(self.log_root, meta["namespace"], meta["name"], c.name,
                         container_id(meta["uid"], c.name, c.restarts))
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(c.log_path().absolute())
        c.links.append(link)
        while len(c.links) > 2:
            c.links.pop(0).unlink(missing_ok=True)

    def _forget_logs(self, rt: PodRuntime) -> None:
        """A deleted pod's logs and links go, ``LOG_GC_DELAY`` seconds later."""
        links = [link for c in rt.containers.values() for link in c.links]
        folder = next(iter(rt.containers.values())).log_dir.parent if rt.containers else None

        def remove() -> None:
            for link in links:
                link.unlink(missing_ok=True)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

        asyncio.get_running_loop().call_later(LOG_GC_DELAY, remove)

    # -- streaming (kubectl exec, attach, port-forward) ------------------------------------
    def container_handle(self, pod: Obj, name: str) -> ContainerHandle | None:
        """The running container ``name`` of ``pod`` on this node, or None (the kubelet's "container not found")."""
        rt = self.pods.get(pod["metadata"]["uid"])
        c = rt.containers.get(name) if rt is not None else None
        return c.handle() if c is not None else None

    def pod_net(self, pod: Obj) -> PodNet | None:
        """Where the pod's ports are, once it has a sandbox (its loopback address) on this node."""
        rt = self.pods.get(pod["metadata"]["uid"])
        return PodNet(rt.uid, rt.ip) if rt is not None and not rt.terminating else None



    # -- resource usage (kubectl top) -----------------------------------------------------
    def pod_metrics(self) -> list[Obj]:
        return pod_metrics(self.objects, self.pods.values(), self.usage)

    def node_metrics(self) -> Obj:
        return node_metrics(self.node.name, self.pod_metrics(), self.usage.window)
