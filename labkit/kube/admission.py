"""What every write goes through before it is stored: defaults and validation.

Schema validation and defaulting come from ``labkit.kube.schema`` (built from
the Kubernetes OpenAPI schemas) when present; the checks here are the ones
the API server does for every object whatever its schema.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.errors import ApiError
from .resources import ResourceType
from .status import invalid

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_ONLY = {"namespaces", "services"}


def _name_causes(rt: ResourceType, name: str) -> list[dict[str, str]]:
    label = rt.plural in _LABEL_ONLY and not rt.group
    pattern, limit = (_DNS1123_LABEL, 63) if label else (_DNS1123_SUBDOMAIN, 253)
    if len(name) <= limit and pattern.match(name):
        return []
    what = "RFC 1123 label" if label else "lowercase RFC 1123 subdomain"
    chars = "" if label else " or '.'"
    regex = ("[a-z0-9]([-a-z0-9]*[a-z0-9])?" if label
             else "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
    return [{"reason": "FieldValueInvalid", "field": "metadata.name",
             "message": f'Invalid value: "{name}": a {what} must consist of lower case alphanumeric '
                        f"characters, '-'{chars}, and must start and end with an "
                        f"alphanumeric character (e.g. 'my-name', or '123-abc', regex used for validation is "
                        f"'{regex}')"}]


def defaults(obj: dict[str, Any]) -> None:
    try:
        from .schema import apply_defaults
    except ImportError:
        return
    apply_defaults(obj)


def validate(rt: ResourceType, obj: dict[str, Any], crds: list[dict[str, Any]],
             field_validation: str) -> list[str]:
    """Raise Invalid (422) or BadRequest (strict unknown fields); return warnings for Warn mode."""
    name = obj.get("metadata", {}).get("name", "")
    causes = _name_causes(rt, name) if name else [
        {"reason": "FieldValueRequired", "field": "metadata.name",
         "message": "Required value: name or generateName is required"}]
    unknown: list[str] = []
    try:
        from .schema import validate as schema_validate
    except ImportError:
        schema_validate = None
    if schema_validate is not None:
        more, unknown = schema_validate(obj, crds, field_validation == "Strict")
        causes += more
    if causes:
        raise invalid(rt, name, causes)
    if unknown and field_validation == "Strict":
        text = ", ".join(f'unknown field "{u}"' for u in unknown)
        raise ApiError(400, "BadRequest", f"strict decoding error: {text}")
    return [f'unknown field "{u}"' for u in unknown] if field_validation == "Warn" else []
