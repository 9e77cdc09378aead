"""A lab home deep in the file system (pytest-xdist's worker folders, a long user name): HAProxy's runtime socket
path would pass its 97-character limit, so it lives in a short folder of its own, removed when the lab stops."""

from __future__ import annotations

from pathlib import Path

from labkit import control
from labkit.core.paths import LabPaths
from labkit.haproxy.runtime import runtime_command
from labkit.lab import Lab


def test_a_deep_home_still_gets_haproxy_and_its_runtime_api(tmp_path: Path) -> None:
    paths = LabPaths.resolve(tmp_path / ("a-long-folder-name-" * 4) / "home")
    try:
        lab = Lab.connect(home=paths.home)
        runtime = lab.haproxy.endpoint.runtime
        socket = Path(runtime.removeprefix("unix://"))
        assert not socket.is_relative_to(paths.home) and len(str(socket)) <= 97
        assert socket.parent.stat().st_mode & 0o777 == 0o700
        assert "Name: HAProxy" in runtime_command(runtime, "show info")
    finally:
        control.down(paths)
    assert not socket.parent.exists()
