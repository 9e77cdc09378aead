"""The sim kubelet: runs each container of the pods bound to its node as a local process.

Per pod: the image is pulled from the lab registry and unpacked; each
container runs with the image's Entrypoint/Cmd (or the pod's command/args),
WorkingDir inside the image's root filesystem, the image Env plus the
container's env (values, ConfigMap/Secret refs, the downward API), ConfigMap
and Secret volumes as files, and the host's Python for ``python``. Every pod
gets its own loopback address as pod IP; ``HOST`` tells the process to bind it
(the sim's stand-in for a network namespace). Probes, restarts with
CrashLoopBackOff, graceful termination and logs behave as the kubelet's do.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..build import LABEL_ROOTFS_ENV
from ..core.procs import _child_setup
from ..core.tasks import cancel
from .controllers.base import MANAGER, EventRecorder, Obj
from .images import Image, ImagePuller
from .nodes import NodeSpec
from .objects import Objects, now
from .proxy import ServiceProxy
from .store import Watcher

BACKOFF_START, BACKOFF_MAX = 1.0, 20.0  # 10 s and 300 s in a stock kubelet
SYNC = 0.5  # seconds between pod status/probe rounds


@dataclass
class Container:
    spec: Obj
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: str = ""
    last_exit: Obj | None = None
    waiting: tuple[str, str] | None = ("ContainerCreating", "")
    backoff_until: float = 0.0
    ready: bool = False
    started: bool = False  # startup probe passed
    probe_failures: dict[str, int] = field(default_factory=dict)
    next_probe: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec["name"]

    def log_path(self, previous: bool = False) -> Path:
        n = self.restarts - 1 if previous else self.restarts
        return self.log_dir / f"{max(n, 0)}.log"


@dataclass
class PodRuntime:
    uid: str
    ip: str
    root: Path
    image_refs: dict[str, Image] = field(default_factory=dict)
    pulling: dict[str, tuple[float, asyncio.Future[Image]]] = field(default_factory=dict)  # ref -> (began, pull)
    containers: dict[str, Container] = field(default_factory=dict)
    terminating: bool = False


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
        self.proxy = proxy  # the node's ServiceProxy
        self.pods: dict[str, PodRuntime] = {}
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
        self._post_status(pod, rt)

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
        await self._probe(pod, rt, c)

    def _exited(self, pod: Obj, c: Container) -> None:
        assert c.proc is not None
        code = c.proc.returncode
        c.last_exit = {"exitCode": code if code >= 0 else 128 - code,
                       "reason": "Completed" if code == 0 else "Error",
                       "startedAt": c.started_at, "finishedAt": now(), "containerID": f"labkit://{c.proc.pid}"}
        c.proc, c.ready, c.started = None, False, False
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
            argv, cwd, env = self._command(pod, rt, c, image)
        except (KeyError, ValueError) as err:
            c.waiting = ("CreateContainerConfigError", str(err))
            c.backoff_until = time.monotonic() + BACKOFF_START
            self.recorder.emit(pod, "Warning", "Failed", f"Error: {err}", "kubelet", self.node.name)
            return
        if c.last_exit is not None:
            c.restarts += 1
        c.log_dir.mkdir(parents=True, exist_ok=True)
        self.recorder.emit(pod, "Normal", "Created", f"Created container: {c.name}", "kubelet", self.node.name)
        with open(c.log_path(), "ab") as log:
            try:
                c.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, preexec_fn=_child_setup)
            except OSError as err:
                c.waiting = ("RunContainerError", f"failed to start container {c.name!r}: {err}")
                c.backoff_until = time.monotonic() + BACKOFF_START
                return
        c.started_at, c.waiting = now(), None
        c.next_probe = {}
        self.recorder.emit(pod, "Normal", "Started", f"Started container {c.name}", "kubelet", self.node.name)

    # -- the container's command line and environment ----------------------------------
    def _command(self, pod: Obj, rt: PodRuntime, c: Container, image: Image) -> tuple[list[str], Path, dict[str, str]]:
        cfg = image.config
        entry = c.spec.get("command") or cfg.get("Entrypoint") or []
        args = c.spec.get("args") if c.spec.get("command") or c.spec.get("args") else cfg.get("Cmd") or []
        argv = [*entry, *(args or [])]
        if not argv:
            raise ValueError(f"no command specified for container {c.name!r}")
        rootfs = self._rootfs(c, image)
        env: dict[str, str] = {"PATH": os.environ.get("PATH", "")}
        for item in cfg.get("Env") or []:
            k, _, v = item.partition("=")
            env[k] = v
        for name in _rootfs_env(cfg):  # image paths (PATH, PYTHONPATH) are below the container's rootfs
            env[name] = os.pathsep.join(str(rootfs / p.lstrip("/")) for p in env.get(name, "").split(":") if p)
        env["PATH"] = os.pathsep.join(p for p in (env.get("PATH"), str(Path(sys.executable).parent),
                                                  os.environ.get("PATH", "")) if p)
        env.update(self._env(pod, rt, c))
        env.setdefault("HOSTNAME", pod["metadata"]["name"])
        env["POD_IP"] = rt.ip
        if env.get("HOST", "0.0.0.0") in ("0.0.0.0", "::", ""):
            env["HOST"] = rt.ip
        if self.proxy is not None:
            url = self.proxy.url(pod["metadata"]["namespace"])
            env.update(HTTP_PROXY=url, http_proxy=url, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        env["LABKIT_ROOTFS"] = str(rootfs)
        work = rootfs / (c.spec.get("workingDir") or cfg.get("WorkingDir") or "/").lstrip("/")
        work.mkdir(parents=True, exist_ok=True)
        self._volumes(pod, rt, c, rootfs)
        return [self._resolve(argv[0], rootfs), *[_expand(a, env) for a in argv[1:]]], work, env

    @staticmethod
    def _rootfs(c: Container, image: Image) -> Path:
        """The container's own root filesystem: a hard-linked copy of the image's, made once."""
        root = c.log_dir.parent / f"{c.name}.rootfs"
        if not root.exists():
            partial = root.with_suffix(".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(image.rootfs, partial, symlinks=True, copy_function=os.link)
            partial.rename(root)
        return root

    @staticmethod
    def _resolve(exe: str, rootfs: Path) -> str:
        name = Path(exe).name
        if name.startswith("python"):
            return sys.executable
        inside = rootfs / exe.lstrip("/")
        if exe.startswith("/") and inside.exists():
            return str(inside)
        return exe

    def _env(self, pod: Obj, rt: PodRuntime, c: Container) -> dict[str, str]:
        ns = pod["metadata"]["namespace"]
        out: dict[str, str] = {}
        for src in c.spec.get("envFrom") or []:
            data = self._ref_data(ns, src.get("configMapRef"), src.get("secretRef"))
            out.update({src.get("prefix", "") + k: v for k, v in data.items()})
        for e in c.spec.get("env") or []:
            if "value" in e:
                out[e["name"]] = _expand(e["value"], out)
            elif e.get("valueFrom"):
                vf = e["valueFrom"]
                if "fieldRef" in vf:
                    out[e["name"]] = self._field(pod, rt, vf["fieldRef"]["fieldPath"])
                elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
                    ref = vf.get("configMapKeyRef") or vf["secretKeyRef"]
                    data = self._ref_data(ns, vf.get("configMapKeyRef"), vf.get("secretKeyRef"))
                    if ref["key"] not in data:
                        raise KeyError(f"couldn't find key {ref['key']} in {ref.get('name')}")
                    out[e["name"]] = data[ref["key"]]
                elif "resourceFieldRef" in vf:
                    res = vf["resourceFieldRef"]["resource"]
                    kind, _, what = res.partition(".")
                    out[e["name"]] = str((c.spec.get("resources", {}).get(kind) or {}).get(what, "0"))
        return out

    def _ref_data(self, ns: str, cm_ref: Obj | None, secret_ref: Obj | None) -> dict[str, str]:
        if cm_ref:
            cm = self.objects.store.get("/configmaps", ns, cm_ref["name"])
            if cm is None:
                if cm_ref.get("optional"):
                    return {}
                raise KeyError(f'configmap "{cm_ref["name"]}" not found')
            return dict(cm.get("data") or {})
        if secret_ref:
            sec = self.objects.store.get("/secrets", ns, secret_ref["name"])
            if sec is None:
                if secret_ref.get("optional"):
                    return {}
                raise KeyError(f'secret "{secret_ref["name"]}" not found')
            return {k: base64.b64decode(v).decode(errors="replace") for k, v in (sec.get("data") or {}).items()}
        return {}

    def _field(self, pod: Obj, rt: PodRuntime, path: str) -> str:
        meta = pod["metadata"]
        simple = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"], "metadata.uid": meta["uid"],
                  "spec.nodeName": self.node.name, "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
                  "status.podIP": rt.ip, "status.hostIP": self.node.address}
        if path in simple:
            return simple[path]
        for prefix, source in (("metadata.labels", meta.get("labels")), ("metadata.annotations",
                                                                          meta.get("annotations"))):
            if path.startswith(prefix + "['"):
                return (source or {}).get(path[len(prefix) + 2:-2], "")
        raise ValueError(f"unsupported fieldPath {path!r}")

    def _volumes(self, pod: Obj, rt: PodRuntime, c: Container, rootfs: Path) -> None:
        """ConfigMap, Secret and emptyDir volumes as folders, linked at their mountPath in the container's rootfs."""
        ns = pod["metadata"]["namespace"]
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        for m in c.spec.get("volumeMounts") or []:
            vol = volumes.get(m["name"])
            if vol is None:
                raise ValueError(f'volume "{m["name"]}" not found')
            target = rt.root / "volumes" / m["name"]
            target.mkdir(parents=True, exist_ok=True)
            data: dict[str, str] = {}
            if "configMap" in vol:
                data = self._ref_data(ns, vol["configMap"], None)
            elif "secret" in vol:
                data = self._ref_data(ns, None, {"name": vol["secret"]["secretName"],
                                                 "optional": vol["secret"].get("optional")})
            for key, value in data.items():
                (target / key).write_text(value)
            link = rootfs / m["mountPath"].lstrip("/")
            if link.is_symlink() or link.is_file():
                link.unlink()
            elif link.is_dir():
                shutil.rmtree(link)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target, target_is_directory=True)

    # -- probes and status ----------------------------------------------------------------
    async def _probe(self, pod: Obj, rt: PodRuntime, c: Container) -> None:
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = c.spec.get(kind)
            if probe is None:
                if kind == "readinessProbe":
                    c.ready = c.started or c.spec.get("startupProbe") is None
                if kind == "startupProbe":
                    c.started = True
                continue
            if kind != "startupProbe" and not c.started:
                continue
            if kind == "startupProbe" and c.started:
                continue
            due = c.next_probe.get(kind)
            t = time.monotonic()
            if due is None:
                c.next_probe[kind] = t + probe.get("initialDelaySeconds", 0)
                continue
            if t < due:
                continue
            c.next_probe[kind] = t + probe.get("periodSeconds", 10)
            ok, why = await self._run_probe(probe, rt)
            failures = 0 if ok else c.probe_failures.get(kind, 0) + 1
            c.probe_failures[kind] = failures
            name = kind.removesuffix("Probe").capitalize()
            if not ok:
                self.recorder.emit(pod, "Warning", "Unhealthy", f"{name} probe failed: {why}", "kubelet",
                                   self.node.name)
            threshold = probe.get("failureThreshold", 3)
            if kind == "readinessProbe":
                if ok:
                    c.ready = True
                elif failures >= threshold:
                    c.ready = False
            elif kind == "startupProbe" and ok:
                c.started = True
            elif not ok and failures >= threshold:
                reason = "liveness" if kind == "livenessProbe" else "startup"
                self.recorder.emit(pod, "Normal", "Killing", f"Container {c.name} failed {reason} probe, will be "
                                   "restarted", "kubelet", self.node.name)
                self._kill(c, pod["spec"].get("terminationGracePeriodSeconds", 30))
                c.probe_failures[kind] = 0

    async def _run_probe(self, probe: Obj, rt: PodRuntime) -> tuple[bool, str]:
        timeout = probe.get("timeoutSeconds", 1)
        if "httpGet" in probe:
            h = probe["httpGet"]
            port = _port(h["port"], probe)
            url = f"{h.get('scheme', 'HTTP').lower()}://{rt.ip}:{port}{h.get('path', '/')}"

            def get() -> tuple[bool, str]:
                try:
                    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=timeout) as r:
                        return 200 <= r.status < 400, f"HTTP probe failed with statuscode: {r.status}"
                except urllib.error.HTTPError as err:
                    return 200 <= err.code < 400, f"HTTP probe failed with statuscode: {err.code}"
                except OSError as err:
                    return False, f'Get "{url}": {err}'

            return await asyncio.to_thread(get)
        if "tcpSocket" in probe:
            port = _port(probe["tcpSocket"]["port"], probe)
            try:
                with socket.create_connection((rt.ip, port), timeout=timeout):
                    return True, ""
            except OSError as err:
                return False, f"dial tcp {rt.ip}:{port}: {err}"
        if "exec" in probe:
            res = await asyncio.to_thread(subprocess.run, probe["exec"]["command"], capture_output=True,
                                          timeout=timeout + 5)
            return res.returncode == 0, f"command exited with {res.returncode}: {res.stdout.decode()[-200:]}"
        return False, "probe has no handler"

    def _post_status(self, pod: Obj, rt: PodRuntime) -> None:
        statuses = []
        for c in rt.containers.values():
            st: Obj = {"name": c.name, "image": c.spec["image"], "imageID": "", "ready": c.ready,
                       "restartCount": c.restarts, "started": c.proc is not None and c.started}
            if c.spec["image"] in rt.image_refs:
                st["imageID"] = f"{c.spec['image'].split(':')[0]}@{rt.image_refs[c.spec['image']].digest}"
            if c.proc is not None:
                st["state"] = {"running": {"startedAt": c.started_at}}
                st["containerID"] = f"labkit://{c.proc.pid}"
            elif c.waiting is not None:
                st["state"] = {"waiting": {"reason": c.waiting[0], **({"message": c.waiting[1]} if c.waiting[1]
                                                                       else {})}}
            elif c.last_exit is not None:
                st["state"] = {"terminated": c.last_exit}
            if (c.last_exit is not None and c.proc is not None) or (c.waiting and c.last_exit):
                st["lastState"] = {"terminated": c.last_exit}
            statuses.append(st)
        exits = [c.last_exit for c in rt.containers.values()]
        if all(c.proc is None and c.waiting is None and c.last_exit for c in rt.containers.values()):
            phase = "Succeeded" if all(e and e["exitCode"] == 0 for e in exits) else "Failed"
        elif any(c.proc is not None or c.last_exit for c in rt.containers.values()):
            phase = "Running"
        else:
            phase = "Pending"
        ready = all(c.ready for c in rt.containers.values())
        old = pod.get("status") or {}
        conds = {c["type"]: c for c in old.get("conditions") or []}
        stamp = now()

        def cond(kind: str, ok: bool, reason: str = "") -> Obj:
            prev = conds.get(kind)
            status = "True" if ok else "False"
            keep = prev is not None and prev.get("status") == status
            out: Obj = {"type": kind, "status": status, "lastProbeTime": None,
                        "lastTransitionTime": prev["lastTransitionTime"] if keep else stamp}
            if reason and not ok:
                out["reason"] = reason
            return out

        new_conds = [cond("PodReadyToStartContainers", True), cond("Initialized", True),
                     cond("Ready", ready, "ContainersNotReady"), cond("ContainersReady", ready, "ContainersNotReady"),
                     conds.get("PodScheduled") or cond("PodScheduled", True)]
        status = {**old, "phase": phase, "conditions": new_conds, "hostIP": self.node.address,
                  "hostIPs": [{"ip": self.node.address}], "podIP": rt.ip, "podIPs": [{"ip": rt.ip}],
                  "startTime": old.get("startTime") or stamp, "containerStatuses": statuses}
        if _comparable(status) != _comparable(old):
            fresh = self.objects.store.get("/pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
            if fresh is None or fresh["metadata"]["uid"] != rt.uid:
                return
            pods = self.objects.registry.find("", "v1", "pods")
            assert pods is not None
            self.objects.update(pods, pod["metadata"]["namespace"], pod["metadata"]["name"],
                                {**copy.deepcopy(fresh), "status": status}, MANAGER, "status")

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

    async def _teardown(self, uid: str, grace: float, pod: Obj | None = None) -> None:
        rt = self.pods.pop(uid, None)
        if rt is None:
            return
        for c in rt.containers.values():
            if pod is not None and c.proc is not None:
                self.recorder.emit(pod, "Normal", "Killing", f"Stopping container {c.name}", "kubelet",
                                   self.node.name)
            await asyncio.to_thread(self._kill, c, grace)
        self.free_ips.append(rt.ip)

    def _finalize_delete(self, pod: Obj) -> None:
        """The kubelet's final delete (grace period 0) once the containers are gone."""
        fresh = self.objects.store.get("/pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        if fresh is None or fresh["metadata"]["uid"] != pod["metadata"]["uid"] or fresh["metadata"].get("finalizers"):
            return
        self.objects.store.write("/pods", copy.deepcopy(fresh), "DELETED")

    # -- resource usage (kubectl top) -----------------------------------------------------
    def pod_metrics(self) -> list[Obj]:
        """PodMetrics of this node's pods: CPU (nanocores) and memory of each container's processes."""
        out = []
        stamp = now()
        for rt in self.pods.values():
            pod = next((p for p in self.objects.store.items("/pods") if p["metadata"]["uid"] == rt.uid), None)
            if pod is None:
                continue
            containers = [{"name": c.name, "usage": _usage(c.proc)} for c in rt.containers.values()
                          if c.proc is not None]
            out.append({"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                        "metadata": {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"],
                                     "labels": pod["metadata"].get("labels") or {}, "creationTimestamp": stamp},
                        "timestamp": stamp, "window": "10s", "containers": containers})
        return out

    def node_metrics(self) -> Obj:
        cpu = mem = 0
        for pod in self.pod_metrics():
            for c in pod["containers"]:
                cpu += int(c["usage"]["cpu"].rstrip("n"))
                mem += int(c["usage"]["memory"].rstrip("Ki"))
        stamp = now()
        return {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": self.node.name, "creationTimestamp": stamp,
                             "labels": {"kubernetes.io/hostname": self.node.name}},
                "timestamp": stamp, "window": "10s", "usage": {"cpu": f"{cpu}n", "memory": f"{mem}Ki"}}

    # -- logs -------------------------------------------------------------------------------
    def log_file(self, pod: Obj, container: str, previous: bool) -> Path | None:
        rt = self.pods.get(pod["metadata"]["uid"])
        if rt is None or container not in rt.containers:
            return None
        path = rt.containers[container].log_path(previous)
        return path if path.exists() else None


def _usage(proc: subprocess.Popen[bytes] | None) -> dict[str, str]:
    """CPU since start as an average rate (nanocores) and resident memory of a container's processes."""
    import psutil

    cpu_ns, mem = 0.0, 0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(proc.pid) if proc else None
        for p in [root, *root.children(recursive=True)] if root else []:
            t = p.cpu_times()
            age = max(time.time() - p.create_time(), 1e-3)
            cpu_ns += (t.user + t.system) / age * 1e9
            mem += p.memory_info().rss
    return {"cpu": f"{int(cpu_ns)}n", "memory": f"{mem // 1024}Ki"}


def _port(port: int | str, probe: Obj) -> int:
    if isinstance(port, int):
        return port
    raise ValueError(f"named probe port {port!r} is not supported by the labkit simulator")


def _rootfs_env(config: Obj) -> list[str]:
    """The variables whose entries are paths in the image: PATH, and what the image's label adds (PYTHONPATH)."""
    listed = ((config.get("Labels") or {}).get(LABEL_ROOTFS_ENV) or "").split(",")
    return sorted({"PATH", *(v.strip() for v in listed if v.strip())})


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion."""
    out, i = "", 0
    while i < len(value):
        if value.startswith("$$", i):
            out += "$"
            i += 2
        elif value.startswith("$(", i) and ")" in value[i:]:
            end = value.index(")", i)
            name = value[i + 2:end]
            out += env.get(name, f"$({name})")
            i = end + 1
        else:
            out += value[i]
            i += 1
    return out


def _comparable(status: Obj) -> Obj:
    return {k: v for k, v in status.items() if k not in ("conditions",)} | {
        "conditions": [{k: v for k, v in c.items() if not k.endswith("Time")} for c in status.get("conditions") or []]}

