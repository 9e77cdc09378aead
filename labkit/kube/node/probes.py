"""The kubelet's probes: startup, liveness and readiness, over HTTP, TCP or a command."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from ..controllers.base import EventRecorder, Obj
from .agent import NodeSpec
from .containers import Container, PodRuntime


class Prober:
    """Probes the containers of one node; ``kill(container, grace)`` restarts one that fails."""

    def __init__(self, recorder: EventRecorder, node: NodeSpec, kill: Callable[[Container, float], None]) -> None:
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
                self.kill(c, pod["spec"].get("terminationGracePeriodSeconds", 30))
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



def _port(port: int | str, probe: Obj) -> int:
    if isinstance(port, int):
        return port
    raise ValueError(f"named probe port {port!r} is not supported by the labkit simulator")


