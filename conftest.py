"""Session-wide test setup: no test ever touches the user's own lab.

The session gets a fresh default ``LABKIT_HOME`` (used by the notebooks that
nbval runs), checks raise instead of waiting for a person, and every lab
started in that home is stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_session_home: Path | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _session_home
    _session_home = Path(tempfile.mkdtemp(prefix="labkit-test-home-"))
    os.environ["LABKIT_HOME"] = str(_session_home)
    os.environ["LABKIT_NONINTERACTIVE"] = "1"
    os.environ.pop("LABKIT_BACKEND", None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _session_home is not None:
        from labkit import control
        from labkit.core.paths import LabPaths

        control.down(LabPaths.resolve(_session_home))
        shutil.rmtree(_session_home, ignore_errors=True)
