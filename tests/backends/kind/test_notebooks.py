"""Notebooks 00-02 with ``backend="kind"``, through the contract harness: the kind backend's own code (its
command plan, endpoints, actions through ``docker`` and HAProxy's TCP Runtime API) under every check."""

from __future__ import annotations

from pathlib import Path

from labkit.backends.kind.lab import cluster_name
from labkit.notebooks import checks_per_chapter

from .conftest import KindLab, labkit


def test_notebooks_00_to_02_pass_on_the_kind_backend(kind_lab: KindLab, tmp_path: Path) -> None:
    kind_lab.harness.records()  # forget `labkit up`'s calls
    res = labkit(kind_lab.env, "notebooks", "run", "00", "01", "02", "--backend", "kind", "--out",
                 str(tmp_path / "executed"), check=False, timeout=1500)
    table = " ".join(res.stdout.split())
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    checks = checks_per_chapter()
    for n, name in ((0, "00-welcome"), (1, "01-haproxy"), (2, "02-kubernetes")):
        assert f"{name} │" in table and f"│ {checks[n]} │ 0 │ ok │" in table, (name, table)
    calls = [[Path(r["argv"][0]).name, *r["argv"][1:]] for r in kind_lab.harness.records()]
    cluster = cluster_name(kind_lab.home.home)
    # the lessons went through the kind backend's actions: docker for nodes and API servers, a hitless
    # HAProxy reload for the balance (the notebooks' own kubectl runs directly, through HAProxy)
    assert ["docker", "stop", f"{cluster}-worker"] in calls and ["docker", "start", f"{cluster}-worker"] in calls
    assert ["docker", "stop", f"{cluster}-control-plane"] in calls
    assert ["docker", "kill", "--signal", "USR2", f"{cluster}-haproxy"] in calls
