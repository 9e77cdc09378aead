"""Real ``pip`` through a Nexus index, timed per package from pip's own log.

``pip install --log FILE`` writes every line with a timestamp (``2026-11-26T16:30:01,123 Collecting …``). pip
resolves one requirement after the other: for each it reads the project's index page and downloads the chosen
file (``Collecting X`` … ``Downloading URL (N kB)``), and installs them all at the end. A package's *fetch time* is
the span from its ``Collecting`` line to the next package's (or to ``Installing collected packages``): the part a
proxy cache changes. ``install`` runs pip into a fresh, empty virtual environment (``python -m venv
--without-pip``; the running pip installs into it with ``--python``), so every package is installed again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d{3}) (.*)$")
_COLLECTING = re.compile(r"^\s*Collecting ([A-Za-z0-9][A-Za-z0-9._-]*)")
_DOWNLOADING = re.compile(r"^\s*Downloading (\S+)")
_INSTALLING = re.compile(r"^\s*Installing collected packages")


def normalize(name: str) -> str:
    """PEP 503's normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class PipRun:
    """One pip command: its exit code, output, wall time and pip's own ``--report`` (installs) or log."""

    returncode: int
    output: str
    seconds: float
    log: str
    report: dict | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def pip_env(index_url: str) -> dict[str, str]:
    """The environment for a pip that asks ``index_url`` only: this machine's pip settings (a wheelhouse, another
    index, a cache) do not apply."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_INDEX_URL=index_url, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_CONFIG_FILE=os.devnull, PIP_NO_INPUT="1")
    return env


def run_pip(command: str, args: list[str], index_url: str, python: Path | None = None,
            timeout: float = 600) -> PipRun:
    """``python -m pip [--python P] COMMAND ARGS`` against ``index_url`` only, with ``--log`` (and ``--report``
    for ``install``)."""
    with tempfile.TemporaryDirectory(prefix="labkit-pip-") as tmp:
        log, report = Path(tmp) / "pip.log", Path(tmp) / "report.json"
        extra = ["--log", str(log)] + (["--report", str(report)] if command == "install" else [])
        target = ["--python", str(python)] if python else []
        started = time.monotonic()
        res = subprocess.run([sys.executable, "-m", "pip", *target, command, *args, *extra], capture_output=True,
                             text=True, env=pip_env(index_url), timeout=timeout, stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - started
        text = log.read_text(errors="replace") if log.exists() else ""
        data = json.loads(report.read_text()) if report.exists() else None
    return PipRun(res.returncode, res.stdout + res.stderr, seconds, text, data)


def fresh_venv(folder: Path) -> Path:
    """An empty virtual environment (no pip, no packages) in ``folder``; its Python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(folder)], check=True,
                   capture_output=True, timeout=120)
    return folder / ("Scripts" if os.name == "nt" else "bin") / ("python.exe" if os.name == "nt" else "python")


def install(requirements: Path, index_url: str, venv: Path) -> PipRun:
    """Install ``requirements`` into a new empty venv at ``venv`` through ``index_url``."""
    python = fresh_venv(venv)
    return run_pip("install", ["--no-compile", "-r", str(requirements)], index_url, python)


def package_times(log: str) -> list[dict[str, object]]:
    """Per package, in pip's order: ``package`` (normalized), ``seconds`` (its fetch time, see the module's
    docstring), ``files`` (how many files pip downloaded for it) and ``bytes`` as pip announced them."""
    events: list[tuple[datetime, str]] = []
    for line in log.splitlines():
        m = _STAMP.match(line)
        if m:
            events.append((datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S,%f"), m.group(2)))
    rows: list[dict[str, object]] = []
    current: dict[str, object] | None = None
    for at, text in events:
        collecting = _COLLECTING.match(text)
        if collecting or _INSTALLING.match(text):
            if current is not None:
                current["seconds"] = (at - current.pop("_start")).total_seconds()  # type: ignore[operator]
                rows.append(current)
                current = None
            if collecting:
                current = {"package": normalize(collecting.group(1)), "_start": at, "files": 0, "bytes": 0}
            continue
        downloading = _DOWNLOADING.match(text)
        if downloading and current is not None:
            current["files"] = int(current["files"]) + 1  # type: ignore[call-overload]
            size = re.search(r"\(([\d.]+) (kB|MB|bytes)\)", text)
            if size:
                scale = {"kB": 1e3, "MB": 1e6, "bytes": 1}[size.group(2)]
                current["bytes"] = int(current["bytes"]) + int(float(size.group(1)) * scale)  # type: ignore[call-overload]
    if current is not None and events:
        current["seconds"] = (events[-1][0] - current.pop("_start")).total_seconds()  # type: ignore[operator]
        rows.append(current)
    return rows


def installed_versions(report: dict | None) -> dict[str, str]:
    """Normalized name → version of what pip's ``--report`` says it installed."""
    return {normalize(item["metadata"]["name"]): item["metadata"]["version"]
            for item in (report or {}).get("install", [])}
