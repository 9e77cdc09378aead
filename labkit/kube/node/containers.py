"""A container in the sim: its state in the kubelet, and what it runs with (command line, working directory,
environment from the image, the pod spec, ConfigMaps, Secrets, the downward API and the service links, volumes
linked into its root filesystem)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ...images.pull import Image
from ...images.run import image_env, resolve_executable
from ...mesh.identity import OUTBOUND_PORT, SIDECAR_CONTAINER, has_sidecar
from ..apiserver.objects import Objects
from ..controllers.base import Obj
from .agent import NodeSpec
from .downward import all_containers, pod_field, resource_field
from .exec import ContainerHandle
from .pathmap import FOLDER as PATHMAP
from .volumes import PodVolumes, VolumeManager

if TYPE_CHECKING:
    import asyncio

    from .attach import ContainerIO
    from .crilog import CriLog, LogPump
    from .proxy import ServiceProxy


@dataclass
class Container:
    spec: Obj
    log_dir: Path  # pods/<ns>_<pod>_<uid>/<container> below the node's /var/log (crilog)
    kind: str = "app"  # app, init (runs to completion first) or sidecar (an init container with restartPolicy Always)
    pod_dir: Path | None = None  # the pod's own folder (its containers' root filesystems)
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
    env: dict[str, str] = field(default_factory=dict)  # what the process runs with, for kubectl exec
    cwd: Path | None = None
    io: ContainerIO | None = None  # its stdin pipe or terminal (stdin: true, tty: true), for kubectl attach
    hook: asyncio.Task[str | None] | None = None  # the postStart hook in flight: the container is not started yet
    stopping: asyncio.Task[None] | None = None  # preStop, SIGTERM, SIGKILL in flight
    log: CriLog | None = None  # the running instance's log file
    pump: LogPump | None = None  # copies its stdout and stderr into the log
    links: list[Path] = field(default_factory=list)  # its containers/<pod>_<ns>_<name>-<id>.log symlinks

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def running(self) -> bool:
        """Started and its postStart hook done (what the status shows as running)."""
        return self.proc is not None and self.hook is None

    @property
    def succeeded(self) -> bool:
        return self.proc is None and self.last_exit is not None and self.last_exit["exitCode"] == 0

    def handle(self) -> ContainerHandle | None:
        """What ``kubectl exec`` and ``attach`` need of the container, while it runs."""
        if self.proc is None or self.proc.poll() is not None or self.cwd is None:
            return None
        return ContainerHandle(self.name, self.spec, self.env, self.cwd, Path(self.env["LABKIT_ROOTFS"]), self.proc,
                               self.log_path(), self.io)

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
    containers: dict[str, Container] = field(default_factory=dict)  # init containers first, in order
    volumes: PodVolumes | None = None
    terminating: bool = False
    initialized: bool = False  # every init container done (they do not run again)
    init_failed: bool = False  # an init container failed under restartPolicy Never: the pod failed
    finished: bool = False  # the app containers are done for good (restartPolicy Never/OnFailure)

    def of(self, *kinds: str) -> list[Container]:
        return [c for c in self.containers.values() if c.kind in kinds]



class ContainerConfig:
    """Builds what a container of this node runs with; the kubelet starts it, ``kubectl exec`` reuses it."""

    def __init__(self, objects: Objects, node: NodeSpec, proxy: ServiceProxy | None) -> None:
        self.objects = objects
        self.node = node
        self.proxy = proxy
        self.volumes = VolumeManager(objects, node.name, node.address)

    def command(self, pod: Obj, rt: PodRuntime, c: Container, image: Image) -> tuple[list[str], Path, dict[str, str]]:
        cfg = image.config
        entry = c.spec.get("command") or cfg.get("Entrypoint") or []
        args = c.spec.get("args") if c.spec.get("command") or c.spec.get("args") else cfg.get("Cmd") or []
        argv = [*entry, *(args or [])]
        if not argv:
            raise ValueError(f"no command specified for container {c.name!r}")
        rootfs = self._rootfs(c, image)
        env = image_env(cfg, rootfs)  # image paths (PATH, PYTHONPATH) are below the container's rootfs
        env.update(self._service_env())
        env.update(self._env(pod, rt, c))
        env.setdefault("HOSTNAME", pod["metadata"]["name"])
        env["POD_IP"] = rt.ip
        if env.get("HOST", "0.0.0.0") in ("0.0.0.0", "::", ""):
            env["HOST"] = rt.ip
        if self.proxy is not None:
            url = self.proxy.url(pod["metadata"]["namespace"])
            direct = ",".join(["127.0.0.1", "localhost", rt.ip, *filter(None, [env.get("KUBERNETES_SERVICE_HOST")])])
            if c.name != SIDECAR_CONTAINER and has_sidecar(pod):  # istio-init's redirect: through the sidecar
                url = f"http://{rt.ip}:{OUTBOUND_PORT}"
            env.update(HTTP_PROXY=url, http_proxy=url, NO_PROXY=direct, no_proxy=direct)
        env["LABKIT_ROOTFS"] = str(rootfs)
        work = rootfs / (c.spec.get("workingDir") or cfg.get("WorkingDir") or "/").lstrip("/")
        work.mkdir(parents=True, exist_ok=True)
        assert rt.volumes is not None
        mounts = self.volumes.mount(pod, rt.volumes, c.spec, rootfs)
        if mounts:  # Python finds the mounts at their absolute paths (pathmap.sitecustomize)
            env["LABKIT_MOUNTS"] = os.pathsep.join(mounts)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PATHMAP), env.get("PYTHONPATH")) if p)
        return [resolve_executable(argv[0], rootfs), *[_expand(a, env) for a in argv[1:]]], work, env

    def _service_env(self) -> dict[str, str]:
        """The ``kubernetes`` Service's variables, as the kubelet sets them in every container. Its ClusterIP
        routes nowhere in the sim, so they name the API server it fronts (its Endpoints), which the server's
        certificate covers."""
        ep = self.objects.store.get("/endpoints", "default", "kubernetes")
        subsets = (ep or {}).get("subsets") or []
        if not subsets or not subsets[0].get("addresses"):
            return {}
        host, port = subsets[0]["addresses"][0]["ip"], str(subsets[0]["ports"][0]["port"])
        tcp = f"KUBERNETES_PORT_{port}_TCP"
        return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
                "KUBERNETES_SERVICE_PORT_HTTPS": port, "KUBERNETES_PORT": f"tcp://{host}:{port}",
                tcp: f"tcp://{host}:{port}", f"{tcp}_PROTO": "tcp", f"{tcp}_PORT": port, f"{tcp}_ADDR": host}

    @staticmethod
    def _rootfs(c: Container, image: Image) -> Path:
        """The container's own root filesystem: a hard-linked copy of the image's, made once."""
        root = (c.pod_dir or c.log_dir.parent) / f"{c.name}.rootfs"
        if not root.exists():
            partial = root.with_suffix(".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(image.rootfs, partial, symlinks=True, copy_function=os.link)
            partial.rename(root)
        return root

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
                    out[e["name"]] = pod_field(pod, vf["fieldRef"]["fieldPath"], rt.ip, self.node.address,
                                               self.node.name)
                elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
                    ref = vf.get("configMapKeyRef") or vf["secretKeyRef"]
                    data = self._ref_data(ns, vf.get("configMapKeyRef"), vf.get("secretKeyRef"))
                    if ref["key"] in data:
                        out[e["name"]] = data[ref["key"]]
                    elif not ref.get("optional"):
                        kind = "ConfigMap" if "configMapKeyRef" in vf else "Secret"
                        raise KeyError(f"couldn't find key {ref['key']} in {kind} {ns}/{ref.get('name')}")
                elif "resourceFieldRef" in vf:
                    rf = vf["resourceFieldRef"]
                    target = c.spec
                    if rf.get("containerName"):
                        every = all_containers(pod)
                        target = next((x for x in every if x["name"] == rf["containerName"]), c.spec)
                    out[e["name"]] = resource_field(target, rf["resource"], rf.get("divisor"))
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


