"""Harbor's JSON shapes of the store's rows (field names as in Harbor's swagger, ``api/v2.0/swagger.yaml``)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from .store import ROLES, UNLIMITED

NEVER = "0001-01-01T00:00:00.000Z"  # Go's zero time, as Harbor shows an unset time


def iso(t: float | None) -> str:
    """Harbor's timestamps: RFC 3339 in UTC with milliseconds."""
    if not t:
        return NEVER
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def project(row: sqlite3.Row, repo_count: int, owner_name: str, role: int | None) -> dict[str, Any]:
    metadata = {"public": row["public"], **json.loads(row["metadata"])}
    return {"project_id": row["project_id"], "owner_id": row["owner_id"], "name": row["name"], "registry_id": 0,
            "creation_time": iso(row["creation_time"]), "update_time": iso(row["update_time"]), "deleted": False,
            "owner_name": owner_name, "togglable": role == 1, "current_user_role_id": role or 0,
            "current_user_role_ids": [role] if role else [], "repo_count": repo_count, "metadata": metadata,
            "cve_allowlist": {"id": 0, "project_id": row["project_id"], "items": [], "expires_at": None,
                              "creation_time": NEVER, "update_time": NEVER}}


def user(row: sqlite3.Row) -> dict[str, Any]:
    return {"user_id": row["user_id"], "username": row["username"], "email": row["email"] or "",
            "realname": row["realname"] or "", "comment": row["comment"] or "",
            "sysadmin_flag": bool(row["sysadmin"]), "admin_role_in_auth": False, "oidc_user_meta": None,
            "creation_time": iso(row["creation_time"]), "update_time": iso(row["update_time"])}


def member(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "project_id": row["project_id"], "entity_name": row["username"],
            "role_name": ROLES.get(row["role_id"], ""), "role_id": row["role_id"], "entity_id": row["user_id"],
            "entity_type": "u"}


def robot(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "description": row["description"], "secret": "",
            "level": row["level"], "duration": row["duration"], "editable": True, "disable": bool(row["disabled"]),
            "expires_at": row["expires_at"], "permissions": json.loads(row["permissions"]),
            "creation_time": iso(row["creation_time"]), "update_time": iso(row["update_time"])}


def label(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "description": row["description"], "color": row["color"],
            "scope": row["scope"], "project_id": row["project_id"], "deleted": False,
            "creation_time": iso(row["creation_time"]), "update_time": iso(row["update_time"])}


def repository(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "project_id": row["project_id"], "name": row["name"],
            "description": row["description"], "artifact_count": row["artifact_count"],
            "pull_count": row["pull_count"], "creation_time": iso(row["creation_time"]),
            "update_time": iso(row["update_time"])}


def tag(row: sqlite3.Row, repository_id: int, artifact_id: int, immutable: bool) -> dict[str, Any]:
    return {"id": row["id"], "repository_id": repository_id, "artifact_id": artifact_id, "name": row["name"],
            "push_time": iso(row["push_time"]), "pull_time": iso(row["pull_time"]), "immutable": immutable}


def immutable_rule(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "priority": row["priority"], "disabled": bool(row["disabled"]),
            "action": "immutable", "template": "immutable_template", "params": {},
            "tag_selectors": json.loads(row["tag_selectors"]),
            "scope_selectors": json.loads(row["scope_selectors"])}


def quota(row: sqlite3.Row, used: int) -> dict[str, Any]:
    return {"id": row["project_id"], "ref": {"id": row["project_id"], "name": row["name"], "owner_name": "admin"},
            "hard": {"storage": row["storage_limit"] if row["storage_limit"] != UNLIMITED else UNLIMITED},
            "used": {"storage": used}, "creation_time": iso(row["creation_time"]),
            "update_time": iso(row["update_time"])}


def audit(row: dict[str, Any], extended: bool) -> dict[str, Any]:
    """An audit log entry: ``/audit-logs`` (legacy) or ``/auditlog-exts`` (with description and result)."""
    out = {"id": row["id"], "username": row["username"], "resource": row["resource"],
           "resource_type": row["resource_type"], "operation": row["operation"], "op_time": iso(row["op_time"])}
    if extended:
        out["operation_description"] = row["operation_description"]
        out["operation_result"] = bool(row["operation_result"])
    return out
