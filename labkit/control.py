"""Starting, stopping and asking a lab, from the CLI or a notebook kernel."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from .backends import CONTROL_TOKEN, settings_path
from .core.errors import LabError
from .core.files import read_json, write_json
from .core.paths import LabPaths
from .core.procs import kill_group
from .core.secrets import Secrets

Progress = Callable[[str], None]


def daemon_pid(paths: LabPaths) -> int | None:
    """The pid of the daemon holding this home's lock, or None when none runs."""
    if not paths.lock.exists():
        return None
    with open(paths.lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            text = f.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def endpoints(paths: LabPaths) -> dict[str, Any] | None:
    """The running lab's endpoints, or None when it is not up and ready."""
    data = read_json(paths.endpoints)
    if data and data.get("backend") == "kind":
        from .backends import kind

        return kind.endpoints(paths)
    pid = daemon_pid(paths)
    if pid is None or not data or data.get("pid") != pid:
        return None
    return data


def _read(path: Any) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return ""


def _tail(path: Any, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def up(paths: LabPaths, backend: str = "sim", jupyter: bool | None = None,
       progress: Progress = lambda s: None, timeout: float = 60.0) -> dict[str, Any]:
    """Start the lab (idempotent) and return its endpoints once it is ready."""
    if backend != "sim":
        from .backends import kind

        return kind.up(paths, progress=progress)
    paths.ensure()
    if jupyter is not None:
        settings = read_json(settings_path(paths), {}) or {}
        if settings.get("jupyter") != jupyter:
            settings["jupyter"] = jupyter
            write_json(settings_path(paths), settings)
            if endpoints(paths):
                progress("updating the running lab")
                call(paths, "POST", "/v1/reconcile")
    ready = endpoints(paths)
    if ready:
        return ready
    pid = daemon_pid(paths)
    if pid is None:
        progress("starting the lab daemon")
        log = open(paths.logs / "daemon.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "labkit.backends.sim", "--home", str(paths.home)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )
        log.close()
    else:
        proc = None
    progress("waiting for the components")
    deadline, shown = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        ready = endpoints(paths)
        if ready:
            return ready
        line = _read(paths.startup)
        if line and line != shown:  # a component still making progress (the first shop build) gets more time
            progress(line)
            shown, deadline = line, max(deadline, time.monotonic() + timeout)
        if proc is not None and proc.poll() not in (None, 3):
            raise LabError(f"the lab daemon exited with code {proc.returncode}:\n"
                           f"{_tail(paths.logs / 'daemon.log')}\n(see `labkit logs daemon`)")
        time.sleep(0.02)
    raise LabError(f"the lab was not ready after {timeout:.0f} s; see `labkit logs daemon`")


def call(paths: LabPaths, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
    """Call the running daemon's control API."""
    ep = endpoints(paths)
    if not ep:
        raise LabError("the lab is not running: start it with `labkit up`")
    token = Secrets(paths.secrets).get(CONTROL_TOKEN)
    req = urllib.request.Request(
        ep["control"] + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def action(paths: LabPaths, component: str, operation: str, **args: Any) -> Any:
    """Run a lesson operation of a component (e.g. stop a node) on the running lab."""
    ep = endpoints(paths)
    if ep and ep["backend"] == "kind":
        from .backends import kind

        return kind.action(paths, component, operation, **args)
    try:
        return call(paths, "POST", f"/v1/components/{component}/{operation}", args)["result"]
    except urllib.error.HTTPError as err:
        detail = json.loads(err.read() or b"{}").get("message", err.reason)
        raise LabError(detail) from None


def status(paths: LabPaths) -> list[dict[str, Any]]:
    """Every component of the running lab: name, title, url, healthy, detail."""
    ep = endpoints(paths)
    if not ep:
        raise LabError("the lab is not running: start it with `labkit up`")
    if ep["backend"] == "kind":
        from .backends import kind

        return kind.status(paths)
    return call(paths, "GET", "/v1/status")["components"]


def down(paths: LabPaths, timeout: float = 20.0, progress: Progress = lambda s: None) -> bool:
    """Stop the lab and every process it started; True if one was running."""
    ep = read_json(paths.endpoints) or {}
    if ep.get("backend") == "kind":
        from .backends import kind

        return kind.down(paths, progress=progress)
    pid = daemon_pid(paths)
    if pid is None:
        _reap_children(paths)
        return False
    progress("stopping the lab daemon")
    if pid > 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while daemon_pid(paths) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if daemon_pid(paths) is not None and pid > 0:
        kill_group(pid, grace=1.0)
    _reap_children(paths)
    paths.endpoints.unlink(missing_ok=True)
    return True


def _reap_children(paths: LabPaths) -> None:
    from .core.procs import Supervisor

    Supervisor(paths.children, paths.logs).reap_leftovers()


def reset(paths: LabPaths, progress: Progress = lambda s: None) -> None:
    """Stop the lab and forget its state (learner progress and credentials stay)."""
    down(paths, progress=progress)
    progress("removing the lab state")
    shutil.rmtree(paths.state, ignore_errors=True)
    paths.kubeconfig.unlink(missing_ok=True)
