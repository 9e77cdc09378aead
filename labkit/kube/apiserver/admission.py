"""What every write goes through before it is stored: defaults, then validation.

Both come from the Kubernetes schemas (``validation`` and ``defaults``); this module
turns the validation result into the API server's answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...core.errors import ApiError
from . import validation
from .defaults import apply_defaults
from .resources import ResourceType
from .status import invalid


def defaults(obj: dict[str, Any]) -> None:
    apply_defaults(obj)


def validate(rt: ResourceType, obj: dict[str, Any], crds: list[dict[str, Any]],
             field_validation: str) -> list[str]:
    """Raise Invalid (422) or BadRequest (strict unknown fields); return warnings for Warn mode.

    Unknown fields are dropped from ``obj`` (and custom resources pruned), as the real decoder does.
    """
    causes, unknown = validation.validate(obj, crds, field_validation == "Strict")
    if causes:
        raise invalid(rt, obj.get("metadata", {}).get("name", ""), causes)
    return _unknown_fields(unknown, field_validation)


def decode(obj: dict[str, Any], crds: list[dict[str, Any]], field_validation: str) -> list[str]:
    """Only the decoding of a body against its own version's schema (for a version that is converted before
    it is checked): wrong types are a BadRequest, unknown fields are dropped and answered as ``validate`` does."""
    _, unknown = validation.validate(obj, crds, field_validation == "Strict", checks=False)
    return _unknown_fields(unknown, field_validation)


def _unknown_fields(unknown: list[str], field_validation: str) -> list[str]:
    if unknown and field_validation == "Strict":
        text = ", ".join(f'unknown field "{u}"' for u in unknown)
        raise ApiError(400, "BadRequest", f"strict decoding error: {text}")
    return [f'unknown field "{u}"' for u in unknown] if field_validation == "Warn" else []


# -- admission plugins ------------------------------------------------------------------------------------
# The API server's admission chain after defaulting and schema validation: every create and update of a stored
# object passes each plugin's ``admit`` (mutating, in order) and then each ``validate``. A plugin raises ApiError
# (Forbidden/Invalid, worded as the real plugin words it) to refuse; it returns warnings, if any.
# The chain itself, in order, is ``plugins.CHAIN``; ``Objects`` runs it.


@dataclass
class Request:
    """One write as admission sees it."""

    objects: Any  # apiserver.objects.Objects: reads through objects.store
    rt: ResourceType
    obj: dict[str, Any]  # the new object (mutable in ``admit``)
    old: dict[str, Any] | None  # None on create
    dry_run: bool

    @property
    def operation(self) -> str:
        return "CREATE" if self.old is None else "UPDATE"

    @property
    def namespace(self) -> str:
        return self.obj.get("metadata", {}).get("namespace", "")


class Plugin:
    """A named admission plugin; subclasses override what they need."""

    name = "plugin"

    def admit(self, req: Request) -> list[str]:
        return []

    def validate(self, req: Request) -> list[str]:
        return []

