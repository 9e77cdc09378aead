"""``lab.nexus`` on a running sim lab: the endpoint, the admin password file, pip through ``pip_env()``, the REST
helper's paging, and ``lab.status()`` naming the stand-in upstream."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from labkit.lab import Lab


def test_the_lab_view_drives_the_labs_nexus(shared_lab: Lab, tmp_path: Path) -> None:
    nexus = shared_lab.nexus
    ep = nexus.endpoint
    assert ep.pypi == f"{ep.url}/repository/pypi-group/simple/" and ep.maven.endswith("/repository/maven-central/")
    assert Path(ep.password_file).stat().st_mode & 0o777 == 0o600 and nexus.password
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | nexus.pip_env() | {"NO_PROXY": "*"}
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-cache-dir", "-d", str(tmp_path), "idna"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    rest = nexus.rest()
    try:
        names = {c["name"] for c in rest.pages("/components", repository="pypi-proxy")}
        assert "idna" in names
        assert rest.get("/security/anonymous")["enabled"] is True  # an admin-only read
    finally:
        rest.close()
    detail = shared_lab.status().loc["nexus", "detail"]
    assert "STAND-IN upstream" in detail  # the tests' pip has no index: the lab says it uses the stand-in
