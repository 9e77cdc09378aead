"""Instance CI/CD variables (Admin area → Settings → CI/CD → Variables; ``/api/v4/admin/ci/variables``).

Every pipeline's jobs get them, as GitLab passes them: above the ``.gitlab-ci.yml`` variables, dotenv reports and
the predefined variables, below the variables a pipeline is created with. GitLab's checks: a key of letters,
digits and ``_`` (at most 255), unique; a masked value of 8+ characters without spaces; only ``env_var`` type here.
"""

from __future__ import annotations

import re
from typing import Any

from .ci.variables import expand_all
from .errors import bad_request, not_found, param_error, unsupported
from .store import GitLabStore

KIND = "instance_variable"
KEY = re.compile(r"^[a-zA-Z0-9_]{1,255}$")
MASKABLE = re.compile(r"^[a-zA-Z0-9_:@\-+.~=/]{8,}$")  # GitLab's masked-value rule (no spaces, 8 or more)
FIELDS = ("key", "variable_type", "value", "protected", "masked", "raw", "description")


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on", "t")


class InstanceVariables:
    """The instance's variables, kept in the GitLab store."""

    def __init__(self, store: GitLabStore) -> None:
        self.store = store

    @staticmethod
    def public(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: doc.get(k) for k in FIELDS}

    def all(self) -> list[dict[str, Any]]:
        return self.store.all(KIND)

    def _find(self, key: str) -> dict[str, Any] | None:
        found = self.store.find(KIND, key=key)
        return found[0] if found else None

    def get(self, key: str) -> dict[str, Any]:
        doc = self._find(key)
        if doc is None:
            raise not_found("Variable")
        return doc

    def _validated(self, doc: dict[str, Any]) -> dict[str, Any]:
        if doc["variable_type"] not in ("env_var", "file"):
            raise bad_request({"variable_type": ["is not included in the list"]})
        if doc["variable_type"] == "file":
            raise unsupported("file-type CI/CD variables (variable_type: file)")
        if doc["masked"] and not MASKABLE.match(doc["value"]):
            raise bad_request({"value": ["is invalid"]})
        return doc

    def create(self, p: dict[str, Any]) -> dict[str, Any]:
        key = str(p.get("key") or "")
        if p.get("key") in (None, "") or p.get("value") is None:
            raise param_error("key is missing" if p.get("key") in (None, "") else "value is missing")
        if not KEY.match(key):
            raise bad_request({"key": ["can contain only letters, digits and '_'."]})
        if self._find(key) is not None:
            raise bad_request({"key": [f"({key}) has already been taken"]})
        doc = self._validated({
            "key": key, "variable_type": str(p.get("variable_type") or "env_var"), "value": str(p["value"]),
            "protected": _flag(p.get("protected")), "masked": _flag(p.get("masked")), "raw": _flag(p.get("raw")),
            "description": p.get("description")})
        return self.store.add(KIND, doc)

    def update(self, key: str, p: dict[str, Any]) -> dict[str, Any]:
        doc = dict(self.get(key))
        for name in ("value", "variable_type", "description"):
            if p.get(name) is not None:
                doc[name] = str(p[name])
        for name in ("protected", "masked", "raw"):
            if p.get(name) is not None:
                doc[name] = _flag(p[name])
        return self.store.put(KIND, self._validated(doc))

    def set(self, key: str, p: dict[str, Any]) -> dict[str, Any]:
        """Create ``key`` or update it (what a provisioning script does through the API)."""
        return self.create({"key": key, **p}) if self._find(key) is None else self.update(key, p)

    def delete(self, key: str) -> None:
        self.store.delete(KIND, self.get(key)["id"])

    def env(self, protected_ref: bool, base: dict[str, str]) -> dict[str, str]:
        """The variables a job gets, ``base`` (the job's variables so far) updated with these: protected ones
        only on a protected ref; values expanded against ``base`` unless ``raw``."""
        chosen = [v for v in self.all() if protected_ref or not v["protected"]]
        out = dict(base)
        out.update({v["key"]: v["value"] for v in chosen if v["raw"]})
        return expand_all({v["key"]: v["value"] for v in chosen if not v["raw"]}, out)
