"""The kubelet's probes: startup, liveness and readiness, over HTTP, TCP or a command."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from ..controllers.base import EventRecorder, Obj
from .agent import NodeSpec
from .containers import Container, PodRuntime
from .exec import go_list
from .lifecycle import http_get, named_port, run_command


class Prober:
    """Probes the containers of one node; ``kill(pod, container)`` restarts one that fails."""

    def __init__(self, recorder: EventRecorder, node: NodeSpec, kill: Callable[[Obj, Container], None]) -> None:
        self.recorder = recorder
        self.node = node
        self.kill = kill

    async def probe(self, pod: Obj, rt: PodRuntime, c: Container) -> None:
        """Run the probes that are due; a failed liveness or startup probe restarts the container."""
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
            ok, why = await self._run_probe(probe, rt, c)
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
                self.kill(pod, c)
                c.probe_failures[kind] = 0

    async def _run_probe(self, probe: Obj, rt: PodRuntime, c: Container) -> tuple[bool, str]:
        timeout = probe.get("timeoutSeconds", 1)
        try:
            if "httpGet" in probe:
                h = probe["httpGet"]
                url = (f"{h.get('scheme', 'HTTP').lower()}://{h.get('host') or rt.ip}:{named_port(h['port'], c.spec)}"
                       f"{h.get('path', '/')}")
                return await asyncio.to_thread(http_get, url, timeout)
            if "tcpSocket" in probe:
                port = named_port(probe["tcpSocket"]["port"], c.spec)
                return await asyncio.to_thread(_dial, probe["tcpSocket"].get("host") or rt.ip, port, timeout)
        except ValueError as err:
            return False, str(err)
        if "exec" in probe:
            handle = c.handle()
            if handle is None:
                return False, "container is not running"
            code, out = await run_command(probe["exec"]["command"], handle, timeout)
            if code == 0:
                return True, ""
            return False, f"command {go_list(probe['exec']['command'])} exited with {code}: {out[-200:]}"
        if "grpc" in probe:
            return False, "gRPC probes are not supported by the labkit simulator"
        return False, "probe has no handler"


def _dial(host: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, ""
    except OSError as err:
        return False, f"dial tcp {host}:{port}: {err}"
