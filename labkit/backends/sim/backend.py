"""The sim backend from the outside: start the lab daemon of a home, ask it, stop it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ...core.errors import LabError
from ...core.files import read_json, write_json
from ...core.paths import LabPaths
from ...core.procs import Supervisor, kill_group
from ...core.secrets import CONTROL_TOKEN, Secrets
from ...endpoints import LabEndpoints
from ...products import endpoint_types
from ..base import Backend, ProductStatus, Progress


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


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return ""


class SimBackend(Backend):
    name = "sim"

    def endpoints(self) -> LabEndpoints | None:
        data = read_json(self.paths.endpoints)
        pid = daemon_pid(self.paths)
        if pid is None or not data or data.get("backend") != "sim" or data.get("pid") != pid:
            return None
        return LabEndpoints.from_json(data, endpoint_types())

    def up(self, progress: Progress, jupyter: bool | None = None, timeout: float = 60.0) -> LabEndpoints:
        paths = self.paths
        paths.ensure()
        if jupyter is not None:
            settings = read_json(paths.settings, {}) or {}
            if settings.get("jupyter") != jupyter:
                settings["jupyter"] = jupyter
                write_json(paths.settings, settings)
                if self.endpoints():
                    progress("updating the running lab")
                    self._call("POST", "/v1/reconcile")
        ready = self.endpoints()
        if ready and self._answers(ready):
            return ready
        if ready:  # a daemon killed a moment ago still holds its lock and sockets until the kernel tears it down
            self._wait_gone(ready.backend_data["pid"], timeout)
        proc = None
        if daemon_pid(paths) is None:
            progress("starting the lab daemon")
            log = open(paths.logs / "daemon.log", "ab")  # noqa: SIM115 - handed to the child
            proc = subprocess.Popen([sys.executable, "-m", "labkit.backends.sim", "--home", str(paths.home)],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True)
            log.close()
        progress("waiting for the products")
        deadline, shown = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            ready = self.endpoints()
            if ready and self._answers(ready):
                return ready
            line = _read(paths.startup)
            if line and line != shown:  # a product still making progress (the first shop build) gets more time
                progress(line)
                shown, deadline = line, max(deadline, time.monotonic() + timeout)
            if proc is not None and proc.poll() not in (None, 3):
                tail = "\n".join(_read(paths.logs / "daemon.log").splitlines()[-15:])
                raise LabError(f"the lab daemon exited with code {proc.returncode}:\n{tail}\n"
                               "(see `labkit logs daemon`)")
            time.sleep(0.02)
        raise LabError(f"the lab was not ready after {timeout:.0f} s; see `labkit logs daemon`")

    @staticmethod
    def _answers(ep: LabEndpoints) -> bool:
        """Whether the daemon behind ``ep`` answers its control API's health check as itself."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(ep.backend_data["control"] + "/healthz", timeout=5) as resp:
                return json.loads(resp.read()).get("pid") == ep.backend_data["pid"]
        except (OSError, ValueError):
            return False

    def _wait_gone(self, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while daemon_pid(self.paths) == pid:
            if time.monotonic() > deadline:
                raise LabError(f"the lab daemon (pid {pid}) holds its lock but does not answer; "
                               "stop it with `labkit down`")
            time.sleep(0.05)

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        """Call the running daemon's control API."""
        ep = self.endpoints()
        if not ep:
            raise LabError("the lab is not running: start it with `labkit up`")
        token = Secrets(self.paths.secrets).get(CONTROL_TOKEN)
        req = urllib.request.Request(
            ep.backend_data["control"] + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")

    def action(self, product: str, operation: str, **args: Any) -> Any:
        try:
            return self._call("POST", f"/v1/products/{product}/{operation}", args)["result"]
        except urllib.error.HTTPError as err:
            raise LabError(json.loads(err.read() or b"{}").get("message", err.reason)) from None

    def status(self) -> list[ProductStatus]:
        return [ProductStatus(**row) for row in self._call("GET", "/v1/status")["products"]]

    def down(self, progress: Progress, timeout: float = 20.0) -> bool:
        paths = self.paths
        pid = daemon_pid(paths)
        if pid is None:
            Supervisor(paths.children, paths.logs).reap_leftovers()
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
        Supervisor(paths.children, paths.logs).reap_leftovers()
        paths.endpoints.unlink(missing_ok=True)
        return True
