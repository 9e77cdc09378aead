"""The sim kubelet: runs each container of the pods bound to its node as a local process.

Per pod: the image is pulled from the lab registry and unpacked; each
container runs as ``containers.ContainerConfig`` describes it, on the pod's own
loopback address (the sim's stand-in for a network namespace). Probes
(``probes``), restarts with CrashLoopBackOff, graceful termination, the pod
status (``podstatus``) and logs behave as the kubelet's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import signal
import subprocess
import time
from pathlib import Path

from ...core.tasks import cancel
from ..apiserver.objects import Objects, now
from ..apiserver.portforward import PodNet
from ..apiserver.store import Watcher
from ..controllers.base import EventRecorder, Obj
from .agent import NodeSpec
from .attach import ContainerIO
from .containers import Container, ContainerConfig, PodRuntime
from .exec import ContainerHandle
from .images import Image, ImagePuller
from .podstatus import post_status
from .probes import Prober
from .proxy import ServiceProxy
from .usage import UsageSampler, node_metrics, pod_metrics

BACKOFF_START, BACKOFF_MAX = 1.0, 20.0  # 10 s and 300 s in a stock kubelet
SYNC = 0.5  # seconds between pod status/probe rounds



class Kubelet:
    """One node's kubelet."""

    def __init__(self, objects: Objects, node: NodeSpec, pod_ips: list[str], pods_dir: Path,
                 puller: ImagePuller, recorder: EventRecorder, proxy: ServiceProxy | None = None) -> None:
        self.objects = objects
        self.node = node
        self.free_ips = list(pod_ips)
        self.pods_dir = pods_dir
        self.puller = puller
        self.recorder = recorder
        self.config = ContainerConfig(objects, node, proxy)
        self.prober = Prober(recorder, node, self._kill)
        self.pods: dict[str, PodRuntime] = {}
        self.usage = UsageSampler()  # what metrics-server reads (kubectl top, the HPA)
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()

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
        for rt in self.pods.values():
            for c in rt.containers.values():
                self._kill(c, 0)
                self._release(c)
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
                await self._teardown(uid, 0)
        for pod in mine.values():
            try:
                await self._sync_pod(pod)
            except Exception as exc:  # one pod's trouble must not stop the node
                import logging

                logging.getLogger("labkit.kubelet").exception("sync %s: %s", pod["metadata"]["name"], exc)

    async def _sync_pod(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        if pod["metadata"].get("deletionTimestamp"):
            grace = pod["metadata"].get("deletionGracePeriodSeconds",
                                        pod["spec"].get("terminationGracePeriodSeconds", 30))
            await self._teardown(uid, grace, pod)
            self._finalize_delete(pod)
            return
        rt = self.pods.get(uid)
        if rt is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            if not self.free_ips:
                return
            root = self.pods_dir / f"{pod['metadata']['namespace']}_{pod['metadata']['name']}_{uid[:8]}"
            rt = PodRuntime(uid, self.free_ips.pop(0), root)
            for spec in pod["spec"]["containers"]:
                rt.containers[spec["name"]] = Container(spec, root / spec["name"])
            self.pods[uid] = rt
        for c in rt.containers.values():
            await self._sync_container(pod, rt, c)
        post_status(self.objects, self.node, pod, rt)

    async def _sync_container(self, pod: Obj, rt: PodRuntime, c: Container) -> None:
        if c.proc is not None and c.proc.poll() is not None:
            self._exited(pod, c)
        if c.proc is None:
            policy = pod["spec"].get("restartPolicy", "Always")
            if c.last_exit is not None and (policy == "Never" or (policy == "OnFailure"
                                                                   and c.last_exit["exitCode"] == 0)):
                return
            if time.monotonic() < c.backoff_until:
                return
            await self._start_container(pod, rt, c)
            return
        await self.prober.probe(pod, rt, c)

    def _exited(self, pod: Obj, c: Container) -> None:
        assert c.proc is not None
        code = c.proc.returncode
        c.last_exit = {"exitCode": code if code >= 0 else 128 - code,
                       "reason": "Completed" if code == 0 else "Error",
                       "startedAt": c.started_at, "finishedAt": now(), "containerID": f"labkit://{c.proc.pid}"}
        c.proc, c.ready, c.started = None, False, False
        self._release(c)
        policy = pod["spec"].get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and code != 0):
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

    def _pull(self, ref: str) -> asyncio.Future[Image]:
        """The pull of ``ref`` (shared with other pods and nodes); the kubelet syncs again when it ends."""
        future = self.puller.pull_async(ref)
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
                rt.pulling[ref] = (time.monotonic(), self._pull(ref))
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
        try:
            c.proc, c.io = ContainerIO.spawn(argv, cwd, env, c.spec, c.log_path())
        except OSError as err:
            c.waiting = ("RunContainerError", f"failed to start container {c.name!r}: {err}")
            c.backoff_until = time.monotonic() + BACKOFF_START
            return
        c.env, c.cwd = env, cwd
        c.started_at, c.waiting = now(), None
        c.next_probe = {}
        self.recorder.emit(pod, "Normal", "Started", f"Started container {c.name}", "kubelet", self.node.name)

    # -- termination ------------------------------------------------------------------------
    def _kill(self, c: Container, grace: float) -> None:
        proc = c.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM if grace else signal.SIGKILL)
        if grace:
            try:
                proc.wait(timeout=min(grace, 5))  # a lab kubelet does not hold its loop for 30 s
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    @staticmethod
    def _release(c: Container) -> None:
        """The container's stdin pipe or terminal goes with its process."""
        if c.io is not None:
            c.io.close()
            c.io = None

    async def _teardown(self, uid: str, grace: float, pod: Obj | None = None) -> None:
        rt = self.pods.pop(uid, None)
        if rt is None:
            return
        for c in rt.containers.values():
            if pod is not None and c.proc is not None:
                self.recorder.emit(pod, "Normal", "Killing", f"Stopping container {c.name}", "kubelet",
                                   self.node.name)
            await asyncio.to_thread(self._kill, c, grace)
            self._release(c)
        self.free_ips.append(rt.ip)

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
        path = rt.containers[container].log_path(previous)
        return path if path.exists() else None

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
