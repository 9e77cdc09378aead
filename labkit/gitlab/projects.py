"""Namespaces (users' and groups) and projects: their records, who may see and write them, and GitLab's JSON."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from .accounts import Caller
from .errors import bad_request, not_found
from .model import Project
from .repos import GitRepos
from .store import GitLabStore, now

PATH_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$")


class Projects:
    """Projects and namespaces in the store, with their bare repositories."""

    def __init__(self, store: GitLabStore, repos: GitRepos, base_url: str) -> None:
        self.store = store
        self.repos = repos
        self.base_url = base_url

    # namespaces --------------------------------------------------------------------------------------------
    def namespace_for_user(self, user: dict[str, Any]) -> dict[str, Any]:
        found = self.store.find("namespace", kind="user", owner_id=user["id"])
        if found:
            return found[0]
        return self.store.add("namespace", {"name": user["username"], "path": user["username"], "kind": "user",
                                            "full_path": user["username"], "parent_id": None, "avatar_url": None,
                                            "web_url": f"{self.base_url}/{user['username']}", "owner_id": user["id"]})

    def create_group(self, name: str, path: str, visibility: str = "private",
                     owner: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.namespace_by_path(path) is not None:
            raise bad_request("Failed to save group {:path=>[\"has already been taken\"]}")
        return self.store.add("namespace", {"name": name, "path": path, "kind": "group", "full_path": path,
                                            "parent_id": None, "avatar_url": None, "visibility": visibility,
                                            "web_url": f"{self.base_url}/groups/{path}", "description": "",
                                            "created_at": now(), "owner_id": owner["id"] if owner else None})

    def namespace_by_path(self, path: str) -> dict[str, Any] | None:
        return next((n for n in self.store.all("namespace") if n["full_path"].lower() == path.lower()), None)

    @staticmethod
    def namespace_json(ns: dict[str, Any]) -> dict[str, Any]:
        return {k: ns.get(k) for k in ("id", "name", "path", "kind", "full_path", "parent_id", "avatar_url",
                                       "web_url")}

    # projects ----------------------------------------------------------------------------------------------
    def create(self, owner: dict[str, Any], name: str | None, path: str | None,
               namespace: dict[str, Any] | None = None, visibility: str = "private", description: str = "",
               default_branch: str = "main") -> dict[str, Any]:
        """A new, empty project; GitLab's 400 ``{"message": {"name": [...], "path": [...]}}`` on a clash."""
        namespace = namespace or self.namespace_for_user(owner)
        path = path or re.sub(r"[^a-zA-Z0-9_.-]+", "-", (name or "").strip()).strip("-").lower()
        name = name or path
        errors: dict[str, list[str]] = {}
        if not path or not PATH_RE.match(path) or path.endswith((".git", ".atom")):
            errors["path"] = ["can contain only letters, digits, '_', '-' and '.'. Cannot start with '-', end in "
                              "'.git' or end in '.atom'"]
        siblings = [p for p in self.store.all("project") if p["namespace"]["id"] == namespace["id"]]
        if any(p["name"].lower() == name.lower() for p in siblings):
            errors["name"] = ["has already been taken"]
        if any(p["path"].lower() == path.lower() for p in siblings):
            errors["path"] = ["has already been taken"]
        if visibility not in ("private", "internal", "public"):
            errors["visibility_level"] = ["private, internal or public"]
        if errors:
            raise bad_request(errors)
        full = f"{namespace['full_path']}/{path}"
        stamp = now()
        project = self.store.add("project", {
            "description": description, "name": name, "name_with_namespace": f"{namespace['name']} / {name}",
            "path": path, "path_with_namespace": full, "created_at": stamp, "default_branch": default_branch,
            "tag_list": [], "topics": [], "ssh_url_to_repo": f"git@localhost:{full}.git",
            "http_url_to_repo": f"{self.base_url}/{full}.git", "web_url": f"{self.base_url}/{full}",
            "readme_url": None, "avatar_url": None, "forks_count": 0, "star_count": 0,
            "last_activity_at": stamp, "namespace": self.namespace_json(namespace), "visibility": visibility,
            "creator_id": owner["id"], "archived": False, "empty_repo": True, "issues_enabled": True,
            "merge_requests_enabled": True, "jobs_enabled": True, "builds_access_level": "enabled",
            "ci_config_path": "", "shared_runners_enabled": True, "only_allow_merge_if_pipeline_succeeds": False,
            "_members": [owner["id"]],
        })
        project["_links"] = {"self": f"{self.base_url}/api/v4/projects/{project['id']}"}
        self.store.put("project", project)
        self.repos.init(full, default_branch)
        return project

    def all(self) -> list[dict[str, Any]]:
        return self.store.all("project")

    def find(self, ref: str) -> dict[str, Any] | None:
        """A project by id or by its URL-encoded full path (``shop%2Fshop``), or None."""
        if ref.isdigit():
            return self.store.get("project", int(ref))
        path = unquote(ref).lower()
        return next((p for p in self.all() if p["path_with_namespace"].lower() == path), None)

    def by_repo_path(self, path: str) -> dict[str, Any] | None:
        """A project by the path in a git URL (``shop/shop`` or ``shop/shop.git``)."""
        return self.find_path(path.removesuffix(".git"))

    def find_path(self, path: str) -> dict[str, Any] | None:
        return next((p for p in self.all() if p["path_with_namespace"].lower() == path.lower()), None)

    def visible(self, project: dict[str, Any], caller: Caller) -> bool:
        if project["visibility"] == "public":
            return True
        if caller.user is None:
            return False
        if caller.job is not None:  # a job's token: its own project, or one whose inbound allowlist names it
            source = caller.job["pipeline"]["project_id"]
            if source != project["id"] and source not in project.get("_job_token_allowlist", []):
                return False
        return project["visibility"] == "internal" or caller.admin or caller.user["id"] in project["_members"]

    def writable(self, project: dict[str, Any], caller: Caller) -> bool:
        return caller.user is not None and caller.job is None and (
            caller.admin or caller.user["id"] in project["_members"])

    def get_visible(self, ref: str, caller: Caller) -> dict[str, Any]:
        """The project, or 404 Project Not Found (also when the caller may not see it), as GitLab answers."""
        project = self.find(ref)
        if project is None or not self.visible(project, caller):
            raise not_found("Project")
        return project

    def touch(self, project: dict[str, Any], **changes: Any) -> dict[str, Any]:
        return self.store.put("project", {**project, "last_activity_at": now(), **changes})

    def delete(self, project: dict[str, Any]) -> None:
        self.store.delete("project", project["id"])
        self.repos.remove(project["path_with_namespace"])

    @staticmethod
    def to_json(project: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in project.items() if not k.startswith("_") or k == "_links"}

    @staticmethod
    def model(project: dict[str, Any]) -> Project:
        """What the runner and planner know of a project (``model.Project``)."""
        return Project(project["id"], project["path_with_namespace"], project["default_branch"],
                       project["http_url_to_repo"], project["web_url"])
