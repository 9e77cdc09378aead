"""Dynamic mapping as Elasticsearch does it: a string becomes ``text`` with a ``keyword`` sub-field (or ``date`` when it
looks like one), numbers ``long``/``float``, booleans ``boolean``, objects ``properties``; ``flatten`` gives the
document's leaf values by dotted path, which queries and aggregations read."""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

DATE_RE = re.compile(r"^\d{4}[-/]\d{2}[-/]\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
TEXT = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}


def parse_date(value: Any) -> float | None:
    """Epoch milliseconds of a date value (ISO 8601 string or epoch millis), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    return parse_date_text(value)


@functools.lru_cache(maxsize=32768)
def parse_date_text(value: str) -> float | None:
    """``parse_date`` of a string; cached, as a document's date is read when it is checked at ``_bulk`` and again
    when the refresh adds it to the doc values."""
    text = value.strip().replace("/", "-")
    if text.isdigit():
        return float(text)
    if not DATE_RE.match(value.strip()):
        return None
    try:  # Python >= 3.11 reads every form DATE_RE lets through (fractions beyond 6 digits cut)
        d = dt.datetime.fromisoformat(text)
        return (d if d.tzinfo is not None else d.replace(tzinfo=dt.UTC)).timestamp() * 1000
    except ValueError:
        pass
    text = text.replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, dot, rest = text.partition(".")
    if dot:  # Python reads at most 6 fraction digits
        digits = re.match(r"\d+", rest)
        frac = digits.group(0) if digits else ""
        text = f"{main}.{frac[:6].ljust(6, '0')}{rest[len(frac):]}"
    try:
        d = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return d.timestamp() * 1000


def format_date(ms: float) -> str:
    """Elasticsearch's ``strict_date_optional_time`` output: ``2024-01-02T03:04:05.678Z``."""
    d = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def flatten(source: dict[str, Any], prefix: str = "") -> dict[str, list[Any]]:
    """Dotted field path → its leaf values (arrays flattened, as Lucene indexes them)."""
    out: dict[str, list[Any]] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(value, list):
            for v in value:
                walk(v, path)
        elif value is not None:
            out.setdefault(path, []).append(value)

    walk(source, prefix)
    return out


def field_type(value: Any, detect_dates: bool = True) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, str) and detect_dates and parse_date(value) is not None and not value.isdigit():
        return {"type": "date"}
    return dict(TEXT)


def merge_dynamic(properties: dict[str, Any], source: dict[str, Any], detect_dates: bool = True) -> bool:
    """Add fields of ``source`` that ``properties`` does not map yet; True when something was added."""
    changed = False
    for key, value in source.items():
        while isinstance(value, list) and value:
            value = value[0]
        if value is None or value == []:
            continue
        if isinstance(value, dict):
            sub = properties.setdefault(key, {"properties": {}})
            if "properties" not in sub:
                continue
            changed = merge_dynamic(sub["properties"], value, detect_dates) or changed
        elif key not in properties:
            properties[key] = field_type(value, detect_dates)
            changed = True
    return changed


def types(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted field path → mapped type, sub-fields (``message.keyword``) included."""
    out: dict[str, str] = {}
    for key, spec in properties.items():
        path = f"{prefix}{key}"
        if "properties" in spec:
            out.update(types(spec["properties"], path + "."))
            continue
        out[path] = spec.get("type", "object")
        for sub, sub_spec in spec.get("fields", {}).items():
            out[f"{path}.{sub}"] = sub_spec.get("type", "keyword")
    return out
