"""``labkit up --backend kind`` and ``labkit down`` with stand-in kind/docker/helm/kubectl on PATH.

The recorded commands must be exactly the README's "The commands, by hand" blocks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labkit import control
from labkit.backends import kind
from labkit.core.files import read_json
from labkit.core.paths import LabPaths

from .conftest import REPO, StandIns, normalized, readme_commands

LABKIT = Path(sys.executable).parent / "labkit"


def _labkit(standins: StandIns, *args: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([str(LABKIT), *args], capture_output=True, text=True, env=standins.env, timeout=60)
    assert res.returncode == 0, f"labkit {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
    return res


def _variables(paths: LabPaths) -> dict[str, str]:
    checkout = kind.Checkout.find()
    return kind.load(paths, checkout).variables(checkout)


def test_up_and_down_run_the_readme_commands(standins: StandIns, kind_home: LabPaths) -> None:
    up = _labkit(standins, "up", "--backend", "kind")
    assert "lab ready" in up.stderr and "kube-apiserver" in up.stderr
    variables = _variables(kind_home)
    expected_up = readme_commands("kind-up-commands", variables, apps=kind.Checkout.find().apps())
    assert normalized(standins.calls()) == expected_up
    assert [c[:3] for c in expected_up][:4] == [["docker", "info", "--format"], ["kind", "get", "clusters"],
                                              ["kind", "create", "cluster"], ["kind", "export", "kubeconfig"]]

    ep = read_json(kind_home.endpoints)
    assert ep["backend"] == "kind" and ep["cluster"] == variables["CLUSTER"] and ep["profile"] == "minimal"
    assert ep["components"]["kube-apiserver"]["url"] == f"https://127.0.0.1:{variables['API_PORT']}"
    assert set(ep["components"]) == {"kube-apiserver", "haproxy", "registry"}
    assert ep["nodes"]["agent-1"] == f"{variables['CLUSTER']}-worker"
    assert yaml.safe_load(kind_home.kubeconfig.read_text())["current-context"] == f"kind-{variables['CLUSTER']}"
    assert control.endpoints(kind_home) == ep  # the cluster is listed by kind
    assert standins.calls() == [["kind", "get", "clusters"]]

    # idempotent: a second up reuses the cluster
    _labkit(standins, "up", "--backend", "kind")
    assert normalized(standins.calls()) == [c for c in expected_up if c[:2] != ["kind", "create"]]

    down = _labkit(standins, "down")
    assert "lab stopped" in down.stderr
    assert normalized(standins.calls()) == readme_commands("kind-down-commands", variables, apps=[])
    assert not kind_home.endpoints.exists() and not (kind_home.home / "kind").exists()
    assert "the lab was not running" in _labkit(standins, "down").stderr or not kind_home.endpoints.exists()


def test_up_builds_and_pushes_the_shop_images(standins: StandIns, kind_home: LabPaths, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = tmp_path / "checkout"
    for part in ("manifests", "compose"):
        (checkout / part).parent.mkdir(parents=True, exist_ok=True)
        (checkout / part).symlink_to(REPO / part)
    for app in ("orders", "gateway", "catalog"):
        (checkout / "apps" / app).mkdir(parents=True)
        (checkout / "apps" / app / "Dockerfile").write_text("FROM scratch\n")
    (checkout / "apps" / "README.md").write_text("not a service\n")
    monkeypatch.setenv("LABKIT_REPO", str(checkout))
    steps: list[str] = []
    kind.up(kind_home, steps.append)
    apps = ["catalog", "gateway", "orders"]
    expected = readme_commands("kind-up-commands", _variables(kind_home), apps=apps)
    assert normalized(standins.calls(), root=checkout) == expected
    image = f"localhost:{kind.planned_ports(kind_home)['registry']}/shop/orders:0.1.0"
    assert expected[-2:] == [["docker", "build", "--file", "apps/orders/Dockerfile", "--tag", image, "apps"],
                             ["docker", "push", image]]
    assert "building image gateway" in steps and "waiting for the nodes to be Ready" in steps


def test_up_reports_progress_and_skips_what_is_not_built_yet(standins: StandIns, kind_home: LabPaths,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kind.PROFILE_ENV, "standard")
    steps: list[str] = []
    ep = kind.up(kind_home, steps.append)
    assert ep["modules"]["gitlab"] == "planned" and ep["modules"]["haproxy"] == "running"
    assert any(s.startswith("gitlab: not part of the kind backend yet") for s in steps)
    assert "building image catalog" in steps and "pushing image gateway" in steps
    assert any(s.startswith("creating kind cluster") for s in steps)


def test_a_missing_docker_engine_is_explained(standins: StandIns, kind_home: LabPaths,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "docker info")
    with pytest.raises(control.LabError, match="Docker engine does not answer"):
        kind.up(kind_home, lambda s: None)
    assert normalized(standins.calls()) == [["docker", "info", "--format", "{{.ServerVersion}}"]]
    assert not kind_home.endpoints.exists()


def test_a_failing_step_stops_up_with_its_output(standins: StandIns, kind_home: LabPaths,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "helm upgrade")
    with pytest.raises(control.LabError, match=r"helm upgrade .* failed \(exit 1\):\nhelm: failing as asked"):
        kind.up(kind_home, lambda s: None)
    assert "$ helm upgrade --install metrics-server" in (kind_home.logs / "kind.log").read_text()
    # not ready, but known as a kind lab: `labkit down` removes what the failed up created
    assert control.endpoints(kind_home) is None and read_json(kind_home.endpoints)["backend"] == "kind"
    monkeypatch.delenv("STANDIN_FAIL")
    standins.calls()
    assert control.down(kind_home) is True
    assert [c[:3] for c in standins.calls()] == [["kind", "get", "clusters"], ["docker", "compose", "--project-name"],
                                                 ["kind", "delete", "cluster"]]


def test_status_and_node_actions(standins: StandIns, kind_home: LabPaths) -> None:
    ep = kind.up(kind_home, lambda s: None)
    standins.calls()
    rows = {r["name"]: r for r in kind.status(kind_home)}
    assert set(rows) == {"kube-apiserver", "haproxy", "registry"}
    assert not any(r["healthy"] for r in rows.values())  # nothing listens: reported, not raised
    assert rows["kube-apiserver"]["detail"].startswith("API not reachable")

    assert "stopped" in kind.action(kind_home, "kube-apiserver", "node-stop", name="agent-1")
    kind.action(kind_home, "kube-apiserver", "node-start", name="agent-1")
    assert standins.calls() == [["docker", "stop", ep["nodes"]["agent-1"]], ["docker", "start", ep["nodes"]["agent-1"]]]
    with pytest.raises(control.LabError, match="no node 'agent-9'"):
        kind.action(kind_home, "kube-apiserver", "node-stop", name="agent-9")
