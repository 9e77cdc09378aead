"""A pod's volumes on its node, as the kubelet's volume manager sets them up, and their mounts in a container.

Each volume is a folder: ``emptyDir`` in the pod's folder (``medium: Memory`` on the machine's tmpfs,
``/dev/shm``, when there is one), ``hostPath`` and a bound ``persistentVolumeClaim`` the host folder itself.
``configMap``, ``secret``, ``downwardAPI`` and ``projected`` volumes are written as the kubelet's AtomicWriter
writes them: the files in a timestamped folder, a ``..data`` symlink to it and one symlink per top-level
entry through ``..data``; the kubelet's periodic sync rewrites them when their sources change and swaps
``..data`` in one rename, so a reader never sees half an update.

A mount is a symlink at the mount path inside the container's root filesystem (there is no mount namespace);
a ``subPath`` mount of an AtomicWriter volume is a hard link to (a copy of) the file of the moment, so it
never updates, as a bind mount of it does not in Kubernetes. ``readOnly`` is recorded, not enforced: the
process runs as the lab's user, who owns the files (the kubelet log says so).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import secrets
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..apiserver.objects import Objects
from ..controllers.base import Obj
from .claims import ClaimNotReady, claim_path
from .downward import FieldError, all_containers, resolve_ref

log = logging.getLogger("labkit.kubelet")

DEFAULT_MODE = 0o644
TOKEN_SECONDS = 3600
SHM = Path("/dev/shm")
ATOMIC = ("configMap", "secret", "downwardAPI", "projected")
Payload = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)


class VolumeError(Exception):
    """A volume cannot be set up: the pod waits in ContainerCreating with a FailedMount event."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {message}')


@dataclass
class PodVolumes:
    """What the volume manager keeps of one pod."""

    root: Path  # the pod's volumes folder
    ready: bool = False
    paths: dict[str, Path] = field(default_factory=dict)  # volume name -> its folder
    tokens: dict[tuple[str, int], tuple[bytes, float]] = field(default_factory=dict)  # (volume, source) -> token
    memory: list[Path] = field(default_factory=list)  # tmpfs folders to remove with the pod
    retry_at: float = 0.0
    synced_at: float = 0.0


class VolumeManager:
    """Sets up, refreshes and mounts one node's pod volumes."""

    REFRESH = 2.0  # seconds between syncs of a pod's AtomicWriter volumes (about a minute in a stock kubelet)

    def __init__(self, objects: Objects, node_name: str, node_address: str) -> None:
        self.objects = objects
        self.node_name = node_name
        self.node_address = node_address

    # -- set-up and refresh ------------------------------------------------------------------------------
    def setup(self, pod: Obj, vols: PodVolumes, pod_ip: str) -> None:
        """Every volume of the pod, ready to mount; VolumeError or ClaimNotReady when one is not."""
        for vol in pod["spec"].get("volumes") or []:
            vols.paths[vol["name"]] = self._volume(pod, vols, vol, pod_ip)
        vols.ready = True
        vols.synced_at = time.monotonic()

    def refresh(self, pod: Obj, vols: PodVolumes, pod_ip: str) -> None:
        """The periodic sync: AtomicWriter volumes follow their sources (a failure keeps the last content)."""
        if not vols.ready or time.monotonic() - vols.synced_at < self.REFRESH:
            return
        vols.synced_at = time.monotonic()
        for vol in pod["spec"].get("volumes") or []:
            if any(k in vol for k in ATOMIC):
                try:
                    self._volume(pod, vols, vol, pod_ip)
                except VolumeError as err:
                    log.warning("%s/%s: %s", pod["metadata"]["namespace"], pod["metadata"]["name"], err)

    def cleanup(self, vols: PodVolumes) -> None:
        for path in vols.memory:
            shutil.rmtree(path, ignore_errors=True)

    def _volume(self, pod: Obj, vols: PodVolumes, vol: Obj, pod_ip: str) -> Path:
        name = vol["name"]
        here = vols.root / name
        if "emptyDir" in vol:
            return self._empty_dir(pod, vols, vol, here)
        if "hostPath" in vol:
            return _host_path(name, vol["hostPath"])
        if "persistentVolumeClaim" in vol:
            try:
                return claim_path(self.objects.store, pod["metadata"]["namespace"],
                                  vol["persistentVolumeClaim"]["claimName"])
            except ClaimNotReady as err:
                raise VolumeError(name, str(err)) from None
        kind = next((k for k in ATOMIC if k in vol), None)
        if kind is None:
            other = next((k for k in vol if k != "name"), "?")
            raise VolumeError(name, f"volume type {other!r} is not supported by the labkit simulator")
        payload = self._payload(pod, vols, name, kind, vol[kind], pod_ip)
        write_atomic(here, payload)
        return here

    def _empty_dir(self, pod: Obj, vols: PodVolumes, vol: Obj, here: Path) -> Path:
        if vol["emptyDir"].get("medium") == "Memory" and SHM.is_dir() and os.access(SHM, os.W_OK):
            mem = SHM / f"labkit-{pod['metadata']['uid']}" / vol["name"]
            if mem not in vols.memory:
                mem.mkdir(parents=True, exist_ok=True)
                vols.memory.append(mem.parent)
            return mem
        if vol["emptyDir"].get("medium") == "Memory" and not here.exists():
            log.info("emptyDir %s of %s: medium Memory recorded, no tmpfs on this machine: a folder on disk",
                     vol["name"], pod["metadata"]["name"])
        here.mkdir(parents=True, exist_ok=True)
        return here

    # -- what an AtomicWriter volume holds ---------------------------------------------------------------
    def _payload(self, pod: Obj, vols: PodVolumes, name: str, kind: str, src: Obj, pod_ip: str) -> Payload:
        mode = src.get("defaultMode", DEFAULT_MODE)
        if kind == "configMap":
            return self._object_files(pod, name, "configmap", src.get("name", ""), src, mode)
        if kind == "secret":
            return self._object_files(pod, name, "secret", src.get("secretName", ""), src, mode)
        if kind == "downwardAPI":
            return self._downward(pod, name, src.get("items") or [], mode, pod_ip)
        out: Payload = {}
        for i, source in enumerate(src.get("sources") or []):
            if "configMap" in source:
                out.update(self._object_files(pod, name, "configmap", source["configMap"].get("name", ""),
                                              source["configMap"], mode))
            elif "secret" in source:
                out.update(self._object_files(pod, name, "secret", source["secret"].get("name", ""),
                                              source["secret"], mode))
            elif "downwardAPI" in source:
                out.update(self._downward(pod, name, source["downwardAPI"].get("items") or [], mode, pod_ip))
            elif "serviceAccountToken" in source:
                sat = source["serviceAccountToken"]
                out[sat["path"]] = (self._token(pod, vols, name, i, sat), mode)
            else:
                other = next(iter(source), "?")
                raise VolumeError(name, f"projected source {other!r} is not supported by the labkit simulator")
        return out

    def _object_files(self, pod: Obj, volume: str, kind: str, obj_name: str, src: Obj, mode: int) -> Payload:
        ns = pod["metadata"]["namespace"]
        obj = self.objects.store.get("/configmaps" if kind == "configmap" else "/secrets", ns, obj_name)
        optional = bool(src.get("optional"))
        if obj is None:
            if optional:
                return {}
            raise VolumeError(volume, f'{kind} "{obj_name}" not found')
        data: dict[str, bytes] = {}
        if kind == "configmap":
            data.update({k: v.encode() for k, v in (obj.get("data") or {}).items()})
            data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        else:
            data.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
        items = src.get("items")
        if not items:
            return {k: (v, mode) for k, v in data.items()}
        out: Payload = {}
        for item in items:
            if item["key"] not in data:
                if optional:
                    continue
                raise VolumeError(volume, f"{kind} references non-existent config key: {item['key']}")
            out[item["path"]] = (data[item["key"]], item.get("mode", mode))
        return out

    def _downward(self, pod: Obj, volume: str, items: list[Obj], mode: int, pod_ip: str) -> Payload:
        containers = all_containers(pod)
        out: Payload = {}
        for item in items:
            try:
                value = resolve_ref(pod, item, None, containers, pod_ip, self.node_address, self.node_name, True)
            except FieldError as err:
                raise VolumeError(volume, str(err)) from None
            out[item["path"]] = (value.encode(), item.get("mode", mode))
        return out

    def _token(self, pod: Obj, vols: PodVolumes, volume: str, index: int, sat: Obj) -> bytes:
        """A bound service-account token, renewed once 80% of its lifetime has passed, as the kubelet does."""
        cached = vols.tokens.get((volume, index))
        if cached is not None and time.time() < cached[1]:
            return cached[0]
        meta, ns = pod["metadata"], pod["metadata"]["namespace"]
        sa_name = pod["spec"].get("serviceAccountName") or "default"
        sa = self.objects.store.get("/serviceaccounts", ns, sa_name)
        if sa is None:
            raise VolumeError(volume, f'failed to fetch token: serviceaccounts "{sa_name}" not found')
        if self.objects.tokens is None:
            raise VolumeError(volume, "failed to fetch token: the API server issues no service-account tokens")
        seconds = int(sat.get("expirationSeconds") or TOKEN_SECONDS)
        audiences = [sat["audience"]] if sat.get("audience") else None
        token, exp = self.objects.tokens.issue(ns, sa_name, sa["metadata"]["uid"], audiences, seconds,
                                               pod={"name": meta["name"], "uid": meta["uid"]})
        issued = time.time()
        vols.tokens[(volume, index)] = (token.encode(), issued + 0.8 * (exp - issued))
        return token.encode()

    # -- mounts ----------------------------------------------------------------------------------------------
    def mount(self, pod: Obj, vols: PodVolumes, spec: Obj, rootfs: Path) -> list[str]:
        """Link the container's volume mounts into its root filesystem; their mount paths."""
        paths = []
        volumes = list(vols.paths.values())
        # parents first, as the runtime orders mounts: a mount inside another lands in that volume
        for m in sorted(spec.get("volumeMounts") or [], key=lambda m: m["mountPath"].rstrip("/").count("/")):
            source = vols.paths.get(m["name"])
            if source is None:
                raise ValueError(f'volume "{m["name"]}" not found')  # validation refuses it; a safety net
            if m.get("subPathExpr"):
                raise ValueError(f'subPathExpr of volume mount "{m["name"]}" is not supported by the labkit '
                                 "simulator")
            link = inside(rootfs, m["mountPath"], volumes)
            _clear(link)
            link.parent.mkdir(parents=True, exist_ok=True)
            sub = m.get("subPath") or ""
            if not sub:
                link.symlink_to(source, target_is_directory=True)
            elif (source / "..data").is_symlink():  # a snapshot of the file of the moment
                _snapshot(Path(os.path.realpath(source / sub)), link)
            else:
                target = source / sub
                if not target.exists():
                    target.mkdir(parents=True)  # the kubelet creates a missing subPath as a folder
                link.symlink_to(target, target_is_directory=target.is_dir())
            if m.get("readOnly"):
                log.info("%s/%s %s: readOnly mount %s recorded, not enforced by the labkit simulator",
                         pod["metadata"]["namespace"], pod["metadata"]["name"], spec["name"], m["mountPath"])
            paths.append(m["mountPath"].rstrip("/") or "/")
        return paths


def _host_path(volume: str, src: Obj) -> Path:
    path, kind = Path(src["path"]), src.get("type") or ""
    if kind == "DirectoryOrCreate" and not path.exists():
        path.mkdir(mode=0o755, parents=True)
    elif not kind and not path.exists():
        path.mkdir(parents=True)  # as the container runtime creates a missing bind-mount source
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o644)
    checks = {"Directory": (stat.S_ISDIR, "directory"), "DirectoryOrCreate": (stat.S_ISDIR, "directory"),
              "File": (stat.S_ISREG, "file"), "FileOrCreate": (stat.S_ISREG, "file"),
              "Socket": (stat.S_ISSOCK, "socket"), "CharDevice": (stat.S_ISCHR, "character device"),
              "BlockDevice": (stat.S_ISBLK, "block device")}
    if kind in checks:
        test, what = checks[kind]
        try:
            ok = test(path.stat().st_mode)
        except OSError:
            ok = False
        if not ok:
            raise VolumeError(volume, f"hostPath type check failed: {path} is not a {what}")
    return path


def write_atomic(target: Path, payload: Payload) -> bool:
    """The AtomicWriter: write ``payload`` under ``target`` through a ``..data`` symlink; False if unchanged."""
    target.mkdir(parents=True, exist_ok=True)
    data = target / "..data"
    if data.is_symlink() and _current(target / os.readlink(data)) == payload:
        return False
    stamp = dt.datetime.now(dt.UTC).strftime("..%Y_%m_%d_%H_%M_%S.") + secrets.token_hex(4)
    new = target / stamp
    new.mkdir()
    for rel, (content, mode) in payload.items():
        f = new / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(content)
        f.chmod(mode & 0o777)
    old = os.readlink(data) if data.is_symlink() else None
    tmp = target / "..data_tmp"
    _clear(tmp)
    tmp.symlink_to(stamp)
    os.replace(tmp, data)
    visible = {rel.split("/", 1)[0] for rel in payload}
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in visible:
            _clear(entry)
    for top in visible:
        link = target / top
        if not link.is_symlink():
            _clear(link)
            link.symlink_to(f"..data/{top}")
    if old is not None and old != stamp:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


def _current(folder: Path) -> Payload:
    out: Payload = {}
    if folder.is_dir():
        for f in folder.rglob("*"):
            if f.is_file():
                out[str(f.relative_to(folder))] = (f.read_bytes(), f.stat().st_mode & 0o777)
    return out


def inside(rootfs: Path, path: str, volumes: list[Path] | None = None) -> Path:
    """``path`` as the container sees it, below ``rootfs``: symlinks in the image (``/var/run`` -> ``/run``)
    are followed within the root filesystem, never out to the host's; a mount's link (to one of ``volumes``)
    leads into that volume."""
    current = rootfs
    parts = [p for p in path.split("/") if p not in ("", ".")]
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current.parent if current != rootfs else rootfs
            continue
        nxt = current / part
        if nxt.is_symlink() and parts and hops < 40:  # the last part is replaced by the mount, not followed
            hops += 1
            dest = os.readlink(nxt)
            if any(v == Path(dest) or v in Path(dest).parents for v in volumes or []):
                current = Path(dest)
                continue
            parts = [p for p in dest.split("/") if p not in ("", ".")] + parts
            current = rootfs if dest.startswith("/") else current
            continue
        current = nxt
    return current


def _clear(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _snapshot(source: Path, dest: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, dest, symlinks=True)
        return
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)
