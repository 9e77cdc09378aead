"""A document's field values as queries, sorts and doc values read them: the analysed tokens of text, each
mapped type's comparable form (dates as epoch ms, numbers as floats), ``x.keyword`` read from ``x``."""

from __future__ import annotations

import re
from typing import Any

from . import mapping
from .store import Doc, Index

TOKEN = re.compile(r"\w+", re.UNICODE)
NUMERIC = ("long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float")


def tokens(text: Any) -> list[str]:
    return TOKEN.findall(str(text).lower())


def field_type(index: Index, name: str) -> str:
    return index.types.get(name, "")


def values(doc: Doc, index: Index, name: str) -> list[Any]:
    """The field's values (``x.keyword`` reads ``x``)."""
    found = doc.fields.get(name)
    if found is None and name.endswith(".keyword"):
        found = doc.fields.get(name[: -len(".keyword")])
        if found is not None:
            return [str(v) for v in found] if isinstance(found, list) else [str(found)]
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


def comparable(value: Any, kind: str) -> Any:
    """A value as the field's type compares it (dates as epoch ms, numbers as floats)."""
    if kind == "date":
        return mapping.parse_date(value)
    if kind in NUMERIC:
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if kind == "boolean":
        return str(value).lower() == "true"
    return str(value)
