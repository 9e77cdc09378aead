"""``lab.registry`` on a lab that runs only the registry: Harbor's tables through ``/api/v2.0`` as the admin, the
chapter's preparation (``restore``) and its Diagnose fault (the CI robot reduced to pull), checked with a real push
as the robot."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit import control
from labkit.core.files import write_json
from labkit.core.paths import LabPaths
from labkit.core.secrets import Secrets
from labkit.images.client import RegistryClient, RegistryError
from labkit.images.harbor import ci_secret
from labkit.lab import Lab
from labkit.products import PRODUCTS
from labkit.registry.lab import AUDIT_COLUMNS

ROBOT = "robot$shop+ci"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    paths = LabPaths.resolve(tmp_path_factory.mktemp("harbor-view") / "home")
    paths.home.mkdir(parents=True, exist_ok=True)
    write_json(paths.settings, {"skip": [p.name for p in PRODUCTS if p.name != "registry"]})
    lab = Lab.connect(home=paths.home)
    try:
        yield lab
    finally:
        control.down(paths)


def robot_push(lab: Lab, repo: str) -> None:
    """Push one blob to ``repo`` as the CI robot, with its secret (what kaniko does in the pipeline)."""
    client = RegistryClient(lab.registry.endpoint.url, ROBOT, ci_secret(Secrets(lab.paths.secrets)))
    data = os.urandom(256)  # a new blob: an existing one would only be HEADed, which pull allows
    try:
        client.push_blob(repo, data, "sha256:" + hashlib.sha256(data).hexdigest())
    finally:
        client.close()


def test_restore_makes_the_shop_project_and_a_ci_robot_that_may_push(lab: Lab) -> None:
    lab.registry.restore()
    projects = lab.registry.projects()
    assert projects.set_index("project").loc["shop", "public"]
    assert lab.registry.robot_actions() == {"push", "pull"}
    robots = lab.registry.robots()
    assert list(robots["name"]) == [ROBOT] and not robots.iloc[0]["disabled"]
    robot_push(lab, "shop/view-test")


def test_the_fault_leaves_the_robot_pull_only_and_its_push_refused(lab: Lab) -> None:
    lab.registry.restore()
    lab.registry.reduce_ci_robot(("pull",))
    assert lab.registry.robot_actions() == {"pull"}
    with pytest.raises(RegistryError) as refused:
        robot_push(lab, "shop/view-test")
    assert refused.value.status in (401, 403)
    # the change is in the audit log, with the slide's columns
    log = lab.registry.audit_log(page_size=20)
    assert list(log.columns) == list(AUDIT_COLUMNS.values()) == ["Username", "Resource", "Resource Type",
                                                                 "Operation", "Timestamp"]
    assert ((log["Resource"] == ROBOT) & (log["Username"] == "admin")).any()
    assert log["Timestamp"].is_monotonic_decreasing
    assert lab.registry.restore() == [f"Harbor: {ROBOT} may push and pull on shop again"]
    robot_push(lab, "shop/view-test")


def test_restore_deletes_the_chapters_own_projects(lab: Lab, tmp_path: Path) -> None:
    harbor = lab.registry.harbor()
    try:
        harbor.ensure_project("team", public=False)
        project = harbor.call("GET", "/projects/team").json()
        harbor.ensure_robot(project, "ci", "Team1secret-x", ("push", "pull"), "a team's robot")
    finally:
        harbor.close()
    assert "team" in set(lab.registry.projects()["project"])
    assert "Harbor: project team deleted" in lab.registry.restore()
    assert "team" not in set(lab.registry.projects()["project"])
