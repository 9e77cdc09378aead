"""Who may do what to the registry's repositories, as Harbor decides it: the admin everything; a project's
members by role; robot accounts by their permissions; anyone may pull from a public project; nothing is pushed
to a project that does not exist."""

from __future__ import annotations

import hashlib
import hmac
import time

from .store import ADMIN_ID, ROBOT_PREFIX, ROLE_ACTIONS, HarborStore, project_of

ADMIN = "admin"
CACHE_SECONDS = 30.0  # a verified password is not re-hashed (PBKDF2) on every request for this long


class HarborPolicy:
    """Implements the registry's ``Policy`` (``authenticate``, ``may``, ``refusal``) over Harbor's store."""

    def __init__(self, store: HarborStore, admin_password: str) -> None:
        self.store = store
        self.admin_password = admin_password
        self._verified: dict[tuple[str, bytes], float] = {}

    def forget(self) -> None:
        """Drop cached credentials (a user or robot changed)."""
        self._verified.clear()

    def authenticate(self, name: str, password: str) -> bool:
        if name == ADMIN:
            return hmac.compare_digest(self.admin_password.encode(), password.encode())
        if name.startswith(ROBOT_PREFIX):
            robot = self.store.check_robot(name, password)
            return robot is not None and not robot.disabled and not robot.expired()
        key = (name, hashlib.sha256(password.encode()).digest())
        now = time.monotonic()
        if self._verified.get(key, 0.0) > now:
            return True
        if not self.store.check_user(name, password):
            return False
        self._verified[key] = now + CACHE_SECONDS
        return True

    def is_admin(self, user: str) -> bool:
        return user == ADMIN

    def actions(self, user: str, project_name: str) -> set[str]:
        """What ``user`` ("" anonymous) may do to the repositories of ``project_name``."""
        project = self.store.project(project_name)
        if project is None:
            return set()
        out = {"pull"} if project["public"] == "true" else set()
        if user == ADMIN:
            return out | {"pull", "push", "delete", "*"}
        if user.startswith(ROBOT_PREFIX):
            robot = self.store.robot(user)
            if robot is not None and not robot.disabled and not robot.expired():
                out |= robot.actions(project_name)
            return out
        if user:
            row = self.store.user(user)
            role = self.store.role(project["project_id"], row["user_id"]) if row is not None else None
            out |= ROLE_ACTIONS.get(role or 0, set())
        return out

    def may(self, user: str, kind: str, name: str, action: str) -> bool:
        if kind == "registry":
            return user == ADMIN
        if kind != "repository":
            return False
        return action in self.actions(user, project_of(name))

    def refusal(self, kind: str, name: str) -> str | None:
        """Why Harbor refuses any access: the project does not exist."""
        if kind == "repository" and self.store.project(project_of(name)) is None:
            project = project_of(name)
            return f"project {project} not found: project {project} not found"
        return None

    def user_id(self, user: str) -> int:
        row = self.store.user(user)
        return int(row["user_id"]) if row is not None else ADMIN_ID


# What a project role may do through the API (Harbor's RBAC, the resources the simulator serves): resource ->
# action -> role ids (1 projectAdmin, 2 developer, 3 guest, 4 maintainer, 5 limitedGuest).
_ANY = frozenset({1, 2, 3, 4, 5})
_ADMINS = frozenset({1, 4})
_WRITERS = frozenset({1, 2, 4})
RBAC: dict[str, dict[str, frozenset[int]]] = {
    "project": {"read": _ANY, "update": frozenset({1}), "delete": frozenset({1})},
    "member": {"read": _ANY, "list": _ANY, "create": frozenset({1}), "update": frozenset({1}),
               "delete": frozenset({1})},
    "repository": {"read": _ANY, "list": _ANY, "pull": _ANY, "push": _WRITERS, "update": _ADMINS,
                   "delete": _ADMINS},
    "artifact": {"read": _ANY, "list": _ANY, "delete": _ADMINS},
    "tag": {"list": _ANY, "create": _WRITERS, "delete": _ADMINS},
    "artifact-label": {"create": _WRITERS, "delete": _WRITERS},
    "label": {"read": _ANY, "list": _ANY, "create": _ADMINS, "update": _ADMINS, "delete": _ADMINS},
    "immutable-tag": {"list": _ANY, "create": _ADMINS, "update": _ADMINS, "delete": _ADMINS},
    "tag-retention": {"read": _ANY, "list": _ANY, "create": _ADMINS, "update": _ADMINS, "delete": _ADMINS,
                      "operate": _ADMINS},
    "robot": {"read": _ADMINS, "list": _ADMINS, "create": frozenset({1}), "update": frozenset({1}),
              "delete": frozenset({1})},
    "quota": {"read": _ANY},
    "log": {"list": frozenset({1, 2, 4})},
    "scan": {"read": _ANY, "create": _WRITERS, "stop": _WRITERS},
    "sbom": {"read": _ANY, "create": _WRITERS, "stop": _WRITERS},
}
# What anyone may do in a public project, and what a robot's repository pull/push permission lets it read.
PUBLIC_READ = {("project", "read"), ("repository", "read"), ("repository", "list"), ("repository", "pull"),
               ("artifact", "read"), ("artifact", "list"), ("tag", "list"), ("label", "read"), ("label", "list"),
               ("scan", "read"), ("sbom", "read")}


def api_may(policy: HarborPolicy, user: str, project: dict[str, object] | None, resource: str,
            action: str) -> bool:
    """``user`` may do ``action`` on ``resource`` of ``project`` (a row) through the API."""
    if policy.is_admin(user):
        return True
    if project is None:
        return False
    if project["public"] == "true" and (resource, action) in PUBLIC_READ:
        return True
    if user.startswith(ROBOT_PREFIX):
        robot = policy.store.robot(user)
        if robot is None or robot.disabled or robot.expired():
            return False
        name = str(project["name"])
        granted = {(a.get("resource"), a.get("action")) for p in robot.permissions
                   if p.get("kind") == "project" and p.get("namespace") in (name, "*") for a in p.get("access", [])}
        repo_access = {a for r, a in granted if r == "repository"} & {"pull", "push"}
        return (resource, action) in granted or (bool(repo_access) and (resource, action) in PUBLIC_READ)
    if not user:
        return False
    row = policy.store.user(user)
    role = policy.store.role(int(project["project_id"]), row["user_id"]) if row is not None else None  # type: ignore[call-overload]
    return role is not None and role in RBAC.get(resource, {}).get(action, frozenset())
