"""Harbor's list parameters: ``page``/``page_size`` with ``X-Total-Count`` and ``Link``, ``q`` and ``sort``."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ...core.http import json_response
from .errors import harbor_error

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100

Predicate = Callable[[Any], bool]


def _int(request: web.Request, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise harbor_error("UNPROCESSABLE_ENTITY", f"validation failure list:\n{name} in query must be of type "
                                                   f"int64: \"{raw}\"") from None
    if value < low:
        raise harbor_error("UNPROCESSABLE_ENTITY", f"validation failure list:\n{name} in query should be "
                                                   f"greater than or equal to {low}")
    if high is not None and value > high:
        raise harbor_error("UNPROCESSABLE_ENTITY", f"validation failure list:\n{name} in query should be "
                                                   f"less than or equal to {high}")
    return value


def _time(text: str) -> float:
    """A ``q`` range bound: ``2026-01-02 03:04:05`` (UTC) or ISO 8601."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _term(value: str) -> Predicate:
    """One ``q`` value: ``~fuzzy``, ``[low~high]`` range, ``{a b}`` any of, or exact."""
    if value.startswith("~"):
        needle = value[1:]
        return lambda v: needle in str(v)
    if value.startswith("[") and value.endswith("]") and "~" in value:
        low, _, high = value[1:-1].partition("~")

        def in_range(v: Any) -> bool:
            if isinstance(v, float):  # a time: the bounds are dates
                return (not low or v >= _time(low)) and (not high or v <= _time(high))
            return (not low or str(v) >= low) and (not high or str(v) <= high)
        return in_range
    if value.startswith("{") and value.endswith("}"):
        options = set(value[1:-1].split())
        return lambda v: _text(v) in options
    return lambda v: _text(v) == value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def query_filter(request: web.Request, fields: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    """The ``q`` parameter (``k=v,k2=~v2``) as a predicate over raw rows; ``fields`` maps the API's keys to
    the rows' (unknown keys are refused as Harbor does)."""
    q = request.query.get("q", "")
    terms: list[tuple[str, Predicate]] = []
    for part in (p for p in q.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise harbor_error("BAD_REQUEST", f"invalid query: the key {key!r} is not supported"
                               if sep else f"invalid query: {part!r}")
        terms.append((fields[key], _term(urllib.parse.unquote(value.strip()))))
    return lambda row: all(pred(row.get(column)) for column, pred in terms)


def sort_rows(request: web.Request, rows: list[dict[str, Any]], fields: dict[str, str]) -> list[dict[str, Any]]:
    """``sort=-op_time,name``: a ``-`` sorts descending."""
    for key in reversed([k for k in request.query.get("sort", "").split(",") if k.strip()]):
        desc = key.startswith("-")
        name = key.lstrip("-").strip()
        if name not in fields:
            raise harbor_error("BAD_REQUEST", f"invalid sort: the key {name!r} is not supported")
        column = fields[name]
        rows = sorted(rows, key=lambda r: (r.get(column) is None, r.get(column) or 0), reverse=desc)
    return rows


def paged(request: web.Request, items: list[Any], shape: Callable[[Any], Any]) -> web.Response:
    """One page of ``items`` (shaped by ``shape``) with Harbor's ``X-Total-Count`` and ``Link`` headers."""
    page = _int(request, "page", 1, 1)
    size = _int(request, "page_size", DEFAULT_PAGE_SIZE, 0, MAX_PAGE_SIZE)
    total = len(items)
    chosen = items[(page - 1) * size:page * size] if size else items
    headers = {"X-Total-Count": str(total)}
    links = []
    if size:
        if page > 1:
            links.append(f'<{_with_page(request, page - 1, size)}>; rel="prev"')
        if page * size < total:
            links.append(f'<{_with_page(request, page + 1, size)}>; rel="next"')
    if links:
        headers["Link"] = ", ".join(links)
    return json_response([shape(i) for i in chosen], headers=headers)


def _with_page(request: web.Request, page: int, size: int) -> str:
    params = [(k, v) for k, v in request.query.items() if k not in ("page", "page_size")]
    params += [("page", str(page)), ("page_size", str(size))]
    return f"{request.raw_path.split('?')[0]}?{urllib.parse.urlencode(params)}"
