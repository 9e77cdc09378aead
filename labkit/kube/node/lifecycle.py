"""Container lifecycle as the kubelet runs it: postStart and preStop hooks (exec, httpGet, sleep), exec probes'
commands, and stopping a container within its grace period (preStop, SIGTERM, SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from ..controllers.base import Obj
from .exec import ContainerHandle, ExecError, ExecProcess, go_list

MIN_GRACE = 2.0  # the kubelet's minimumGracePeriodInSeconds: SIGTERM always gets this long after a preStop hook
POLL = 0.1


def named_port(port: int | str, container: Obj) -> int:
    """A handler's or probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"couldn't find port: {port} in {container.get('name')}")


async def run_command(argv: list[str], handle: ContainerHandle, timeout: float) -> tuple[int, str]:
    """``argv`` run in the container (as ``kubectl exec`` runs it): its exit code and output."""
    try:
        proc = await ExecProcess.start(argv, handle, stdin=False, stderr=True, tty=False)
    except ExecError as err:
        return 126, str(err)
    out = bytearray()

    async def collect() -> None:
        async for _, data in proc.output():
            out.extend(data)

    reader = asyncio.ensure_future(collect())
    try:
        code = await asyncio.wait_for(proc.proc.wait(), timeout)
    except TimeoutError:
        await proc.stop()
        code = -1
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader, 3)
    proc.close()
    return (code if code >= 0 else 128 - code), out.decode(errors="replace")


def http_get(url: str, timeout: float) -> tuple[bool, str]:
    """One GET as the kubelet's HTTP handler and probe send it: 2xx and 3xx succeed."""
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=timeout) as r:
            return 200 <= r.status < 400, f"HTTP probe failed with statuscode: {r.status}"
    except urllib.error.HTTPError as err:
        return 200 <= err.code < 400, f"HTTP probe failed with statuscode: {err.code}"
    except OSError as err:
        return False, f'Get "{url}": {err}'


async def run_hook(kind: str, handler: Obj, handle: ContainerHandle, pod: Obj, timeout: float) -> str | None:
    """Run a postStart/preStop handler; None when it succeeded, else the kubelet's message."""
    meta = pod["metadata"]
    who = f'for Container "{handle.name}" in Pod "{meta["name"]}_{meta["namespace"]}({meta["uid"]})"'
    if "exec" in handler:
        argv = handler["exec"]["command"]
        code, out = await run_command(argv, handle, timeout)
        if code == 0:
            return None
        return (f"Exec lifecycle hook ({go_list(argv)}) {who} failed - error: command '{' '.join(argv)}' exited "
                f"with {code}: {out}, message: {out!r}")
    if "httpGet" in handler:
        h = handler["httpGet"]
        path = h.get("path", "/")
        try:
            port = named_port(h["port"], handle.spec)
        except ValueError as err:
            return f"HTTP lifecycle hook ({path}) {who} failed - error: {err}"
        url = f"{h.get('scheme', 'HTTP').lower()}://{h.get('host') or handle.env.get('POD_IP', '')}:{port}{path}"
        ok, why = await asyncio.to_thread(http_get, url, timeout)
        return None if ok else f'HTTP lifecycle hook ({path}) {who} failed - error: {why}, message: ""'
    if "sleep" in handler:
        await asyncio.sleep(min(float(handler["sleep"]["seconds"]), timeout))
        return None
    other = next(iter(handler), "?")
    return f"{kind} handler {other!r} {who} is not supported by the labkit simulator"


async def stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the container's process group, SIGKILL it once ``grace`` seconds have passed; reaped."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
    deadline = time.monotonic() + grace
    while proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(POLL)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        while proc.poll() is None:
            await asyncio.sleep(POLL)
