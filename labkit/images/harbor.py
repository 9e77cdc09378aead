"""Harbor's REST API (``/api/v2.0``) as an administrator's script uses it, and the lab's provisioning through it
(``python -m labkit.registry.provision``, and the sim's GitLab for its CI variables), on either backend: the project
``shop``
(public, so that every node pulls the shop's images anonymously) and the CI robot account ``robot$shop+ci``
(push and pull on ``shop``), whose secret is the lab's (``harbor-ci-robot-secret`` in the lab's secrets).

Harbor returns a robot's secret only once, when it is created; a lab that provisions again (a restart, a second
``labkit up``) sets the secret it keeps through Harbor's refresh call (``PATCH /robots/{id}`` with
``{"secret": ...}``), so the secret in GitLab's CI/CD variables and Harbor's always agree. Only the secret is
touched: permissions an attendee (or a chapter's fault) changed stay as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from ..core.secrets import Secrets

CI_ROBOT_SECRET = "harbor-ci-robot-secret"  # the lab's secret of robot$shop+ci
SHOP_PROJECT = "shop"
CI_ROBOT = "ci"
ADMIN = "admin"


def service_address(versions: dict[str, Any]) -> str:
    """Harbor's Service on a kind cluster's network (host:port), where the CI job pods' relay connects."""
    return f"harbor.{versions['charts']['harbor']['namespace']}.svc.cluster.local:80"


class HarborError(Exception):
    """Harbor refused a provisioning call; the message carries Harbor's own ``errors``."""


@dataclass(frozen=True)
class Robot:
    name: str  # robot$<project>+<name>, the user name for docker login
    secret: str
    id: int


def robot_name(project: str, name: str) -> str:
    """The user name Harbor gives a project-level robot account."""
    return f"robot${project}+{name}"


def ci_secret(secrets: Secrets) -> str:
    """The CI robot's secret: Harbor wants 8-128 characters with an upper-case letter, a lower-case one and a digit
    (the prefix guarantees them); GitLab can mask it (letters, digits, ``-`` and ``_`` only)."""
    return "Ci7" + secrets.get(CI_ROBOT_SECRET, 24)


class Harbor:
    """Harbor's REST API with Basic auth, as an administrator's script uses it."""

    def __init__(self, api: str, user: str, password: str, timeout: float = 30) -> None:
        self.api = api.rstrip("/")
        self.session = requests.Session()
        self.session.auth = (user, password)
        self.session.trust_env = False  # loopback and the lab's own names: never through a proxy
        self.timeout = timeout

    def call(self, method: str, path: str, ok: tuple[int, ...] = (200, 201), **kwargs: Any) -> requests.Response:
        res = self.session.request(method, self.api + path, timeout=self.timeout,
                                   headers={"X-Is-Resource-Name": "true"}, **kwargs)
        if res.status_code not in ok:
            try:
                errors = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in res.json().get("errors", []))
            except ValueError:
                errors = res.text[:300]
            raise HarborError(f"{method} {path}: {res.status_code} {errors}")
        return res

    def close(self) -> None:
        self.session.close()

    def ensure_project(self, name: str, public: bool) -> dict[str, Any]:
        """The project ``name``, created or set to ``public``."""
        flag = "true" if public else "false"  # Harbor's metadata values are strings
        if self.call("HEAD", f"/projects?project_name={name}", ok=(200, 404)).status_code == 404:
            self.call("POST", "/projects", json={"project_name": name, "metadata": {"public": flag}})
        project = self.call("GET", f"/projects/{name}").json()
        if (project.get("metadata") or {}).get("public") != flag:
            self.call("PUT", f"/projects/{name}", json={"metadata": {"public": flag}})
            project = self.call("GET", f"/projects/{name}").json()
        return project

    def find_robot(self, project: dict[str, Any], name: str) -> dict[str, Any] | None:
        wanted = robot_name(project["name"], name)
        res = self.call("GET", "/robots", params={"q": f"Level=project,ProjectID={project['project_id']}",
                                                  "page_size": 100})
        return next((r for r in res.json() if r.get("name") == wanted), None)

    def ensure_robot(self, project: dict[str, Any], name: str, secret: str, actions: tuple[str, ...],
                     description: str) -> Robot:
        """A project-level robot with ``actions`` on the project's repositories (when created) and ``secret``."""
        found = self.find_robot(project, name)
        if found is None:
            body = {"name": name, "description": description, "level": "project", "duration": -1,
                    "disable": False, "permissions": [{
                        "kind": "project", "namespace": project["name"],
                        "access": [{"resource": "repository", "action": a} for a in actions]}]}
            created = self.call("POST", "/robots", json=body).json()
            robot_id = int(created["id"])
        else:
            robot_id = int(found["id"])
        self.call("PATCH", f"/robots/{robot_id}", json={"secret": secret})
        return Robot(robot_name(project["name"], name), secret, robot_id)


    def set_robot_actions(self, robot_id: int, project: str, actions: tuple[str, ...]) -> bool:
        """Give robot ``robot_id`` exactly ``actions`` on ``project``'s repositories, enabled (Harbor's update:
        ``PUT /robots/{id}`` with the whole robot); False when it had them already."""
        robot = self.call("GET", f"/robots/{robot_id}").json()
        wanted = [{"kind": "project", "namespace": project,
                   "access": [{"resource": "repository", "action": a} for a in actions]}]
        have = sorted(a["action"] for p in robot.get("permissions") or [] for a in p.get("access") or []
                      if a.get("resource") == "repository")
        if have == sorted(actions) and not robot.get("disable"):
            return False
        body = {k: robot[k] for k in ("id", "name", "description", "level", "duration") if k in robot}
        self.call("PUT", f"/robots/{robot_id}", json={**body, "disable": False, "permissions": wanted})
        return True


def wait_ready(api: str, deadline_s: float, progress: Callable[[str], None] = print) -> None:
    """Wait until ``/api/v2.0/health`` says every Harbor component is healthy, saying which are not yet."""
    end, last, said = time.monotonic() + deadline_s, "no answer yet", 0.0
    while time.monotonic() < end:
        try:
            res = requests.get(api.rstrip("/") + "/health", timeout=5, proxies={"http": "", "https": ""})
            if res.ok:
                body = res.json()
                waiting = [c["name"] for c in body.get("components", []) if c.get("status") != "healthy"]
                if body.get("status") == "healthy" and not waiting:
                    return
                last = "waiting for " + ", ".join(waiting or ["Harbor"])
            else:
                last = f"HTTP {res.status_code}"
        except (requests.RequestException, ValueError) as err:
            last = type(err).__name__
        if time.monotonic() - said > 30:
            progress(f"Harbor is starting ({last}); up to {end - time.monotonic():.0f} s more")
            said = time.monotonic()
        time.sleep(3)
    raise HarborError(f"Harbor at {api} was not healthy within {deadline_s:.0f} s ({last})")


def provision(api: str, password: str, secrets: Secrets) -> Robot:
    """The lab's project ``shop`` (public) and its CI robot (push, pull); returns the robot."""
    harbor = Harbor(api, ADMIN, password)
    try:
        project = harbor.ensure_project(SHOP_PROJECT, public=True)
        return harbor.ensure_robot(project, CI_ROBOT, ci_secret(secrets), ("push", "pull"),
                                   "the shop's GitLab pipeline pushes its images with it")
    finally:
        harbor.close()
