"""What metrics-server reports for a node's pods (``kubectl top``, the HorizontalPodAutoscaler).

metrics-server scrapes each kubelet's cumulative CPU counters every ``--metric-resolution`` (15 s) and reports
the rate between its last two scrapes, with the time between them as the ``window``. The sim's kubelet samples
the CPU time of each container's process tree every second and keeps a short history, so a pod's CPU is its rate
over the last ``metrics_window_seconds`` (``manifests/versions.yaml`` timings): it rises under load and falls
after. Until a container has run that long, its start is the first point (cumulative 0), as metrics-server uses a
new container's start time. Memory is the tree's resident memory now.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ...core.timings import timings
from ..apiserver.objects import Objects, now
from ..controllers.base import Obj
from .containers import PodRuntime

SAMPLE_EVERY = 1.0  # seconds between two samples of a container (cAdvisor's housekeeping is ~1 s)
WINDOW = timings("sim").metrics_window_seconds
_TREE_TTL = 0.5  # seconds one snapshot of the process table serves every kubelet of the lab


@dataclass
class _Series:
    """One container process's samples: (wall time, cumulative CPU seconds of its tree), oldest first."""

    pid: int
    samples: deque[tuple[float, float]] = field(default_factory=deque)
    memory: int = 0  # bytes resident, at the last sample


@dataclass(frozen=True)
class Usage:
    timestamp: float  # the newest sample (the end of the window)
    window: float  # seconds the rate is over
    cpu: float  # cores
    memory: int  # bytes


class UsageSampler:
    """A node's container CPU and memory, sampled every second (see the module's doc)."""

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._series: dict[tuple[str, str], _Series] = {}  # (pod uid, container name)
        self._last = 0.0

    def sample(self, pods: Iterable[PodRuntime]) -> None:
        """Sample the running containers, every second (a container not seen yet at once)."""
        stamp = time.time()
        due = stamp - self._last >= SAMPLE_EVERY
        running = {(rt.uid, c.name): c.proc for rt in pods for c in rt.containers.values() if c.proc is not None}
        for key in set(self._series) - set(running):
            del self._series[key]
        todo = {k: p for k, p in running.items() if due or k not in self._series}
        if not todo:
            return
        if due:
            self._last = stamp
        children = _children()
        for key, proc in todo.items():
            self._sample(key, proc, children, stamp)

    def _sample(self, key: tuple[str, str], proc: subprocess.Popen[bytes], children: dict[int, list[int]],
                stamp: float) -> None:
        reading = _read(proc.pid, children)
        if reading is None:
            return
        started, cpu, memory = reading
        series = self._series.get(key)
        if series is None or series.pid != proc.pid or cpu < series.samples[-1][1]:
            series = self._series[key] = _Series(proc.pid, deque([(min(started, stamp), 0.0)]))
        series.samples.append((stamp, cpu))
        series.memory = memory
        while len(series.samples) > 2 and series.samples[1][0] <= stamp - self.window:
            series.samples.popleft()  # keep one sample at or before the window's start

    def cumulative(self, uid: str, container: str) -> tuple[float, int] | None:
        """(CPU seconds of the container's process tree since it started, resident bytes), as cAdvisor's counter."""
        series = self._series.get((uid, container))
        return None if series is None else (series.samples[-1][1], series.memory)

    def usage(self, uid: str, container: str) -> Usage | None:
        """The container's CPU rate over the window ending at its newest sample, and its memory."""
        series = self._series.get((uid, container))
        if series is None or len(series.samples) < 2:
            return None
        (t0, c0), (t1, c1) = series.samples[0], series.samples[-1]
        span = max(t1 - t0, 1e-3)
        return Usage(t1, span, max(c1 - c0, 0.0) / span, series.memory)


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids of the whole process table, one snapshot shared for ``_TREE_TTL`` seconds."""
    import psutil

    if time.monotonic() - _TREE["at"] > _TREE_TTL:
        table: dict[int, list[int]] = {}
        for p in psutil.process_iter(["ppid"]):
            table.setdefault(p.info["ppid"] or 0, []).append(p.pid)
        _TREE.update(at=time.monotonic(), children=table)
    return _TREE["children"]


_TREE: dict[str, Any] = {"at": 0.0, "children": {}}


def _read(pid: int, children: dict[int, list[int]]) -> tuple[float, float, int] | None:
    """(start time, cumulative CPU seconds, resident bytes) of a process and its descendants; reaped children's
    CPU is in their parent's ``children_*`` times, so the sum only grows while the container runs."""
    import psutil

    try:
        root = psutil.Process(pid)
        started = root.create_time()
    except psutil.Error:
        return None
    cpu, memory, todo = 0.0, 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        with contextlib.suppress(psutil.Error):
            p = root if current == pid else psutil.Process(current)
            t = p.cpu_times()
            cpu += t.user + t.system + t.children_user + t.children_system
            memory += p.memory_info().rss
    return started, cpu, memory


def _stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    """A window as metav1.Duration prints it (``5.012s``)."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def pod_metrics(objects: Objects, pods: Iterable[PodRuntime], sampler: UsageSampler) -> list[Obj]:
    """PodMetrics of this node's pods: each running container's CPU (nanocores) over the window, and memory."""
    pods = list(pods)
    sampler.sample(pods)  # a container started since the last round gets its first sample now
    by_uid = {p["metadata"]["uid"]: p for p in objects.store.items("/pods")}
    out = []
    for rt in pods:
        pod = by_uid.get(rt.uid)
        if pod is None:
            continue
        measured = [(c.name, u) for c in rt.containers.values() if (u := sampler.usage(rt.uid, c.name)) is not None]
        if not measured:
            continue
        newest = max(u.timestamp for _, u in measured)
        window = next(u.window for _, u in measured if u.timestamp == newest)
        out.append({"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                    "metadata": {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"],
                                 "labels": pod["metadata"].get("labels") or {}, "creationTimestamp": now()},
                    "timestamp": _stamp(newest), "window": _duration(window),
                    "containers": [{"name": name, "usage": {"cpu": f"{int(u.cpu * 1e9)}n",
                                                            "memory": f"{u.memory // 1024}Ki"}}
                                   for name, u in measured]})
    return out


def node_metrics(node: str, pods: list[Obj], window: float) -> Obj:
    """NodeMetrics: the sum of the node's pods (the sim's nodes run nothing else)."""
    cpu = mem = 0
    for pod in pods:
        for c in pod["containers"]:
            cpu += int(c["usage"]["cpu"].rstrip("n"))
            mem += int(c["usage"]["memory"].rstrip("Ki"))
    stamp = now()
    return {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": node, "creationTimestamp": stamp,
                         "labels": {"kubernetes.io/hostname": node}},
            "timestamp": stamp, "window": _duration(window), "usage": {"cpu": f"{cpu}n", "memory": f"{mem}Ki"}}
