"""What every REST API route shares: the caller, parameters from the query and the body, GitLab's pagination."""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web
from multidict import MultiDict
from yarl import URL

from ..accounts import Caller
from ..errors import gl_error, param_error

CALLER = web.RequestKey("gitlab_caller", Caller)
DEFAULT_PER_PAGE, MAX_PER_PAGE = 20, 100


def caller(request: web.Request, scope: str = "read_api") -> Caller:
    """The caller, whose token must allow ``scope`` (403 ``insufficient_scope`` otherwise, as GitLab)."""
    who = request[CALLER]
    if who.user is not None and not who.can(scope):
        raise ApiScopeError.make(scope)
    return who


def user(request: web.Request, scope: str = "read_api") -> Caller:
    """A signed-in caller, or 401 ``{"message": "401 Unauthorized"}``."""
    who = caller(request, scope)
    if who.user is None:
        raise gl_error(401)
    return who


def admin(request: web.Request) -> Caller:
    who = user(request, "api")
    if not who.admin:
        raise gl_error(403)
    return who


class ApiScopeError:
    @staticmethod
    def make(scope: str) -> Exception:
        from ...core.errors import ApiError

        return ApiError(403, "Forbidden", "insufficient_scope", {"body": {
            "error": "insufficient_scope",
            "error_description": "The request requires higher privileges than provided by the access token.",
            "scope": scope}})


async def params(request: web.Request) -> dict[str, Any]:
    """Query parameters and the body (JSON or form), the body winning, as Grape merges them."""
    out: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        if key.endswith("[]"):
            out[key[:-2]] = values
        else:
            out[key] = values[-1]
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = json.loads(await request.read() or b"{}")
            except json.JSONDecodeError:
                raise gl_error(400, "Bad request: the body is not valid JSON") from None
            if isinstance(body, dict):
                out.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form: MultiDict[Any] = MultiDict(await request.post())
            out.update(_nested(form))
    return out


def _nested(form: MultiDict[Any]) -> dict[str, Any]:
    """``variables[][key]=A&variables[][value]=1`` and ``scopes[]=api`` as Rack nests them."""
    out: dict[str, Any] = {}
    for key, value in form.items():
        value = value if isinstance(value, str) else getattr(value, "file", value)
        if key.endswith("[]") and "[" not in key[:-2]:
            out.setdefault(key[:-2], []).append(value)
        elif "[][" in key:
            head, _, rest = key.partition("[][")
            field = rest.rstrip("]")
            items = out.setdefault(head, [])
            if not items or field in items[-1]:
                items.append({})
            items[-1][field] = value
        else:
            out[key] = value
    return out


def required(p: dict[str, Any], *names: str) -> None:
    """``{"error": "ref is missing"}`` for the first missing parameter."""
    missing = [n for n in names if p.get(n) in (None, "")]
    if missing:
        raise param_error(", ".join(missing) + (" are missing" if len(missing) > 1 else " is missing"))


def flag(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes", "on", "t")


def integer(p: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = p.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise param_error(f"{name} is invalid") from None


def paginate(request: web.Request, items: list[Any], p: dict[str, Any] | None = None) -> web.Response:
    """One page of ``items`` with GitLab's headers: ``Link`` (python-gitlab follows its ``rel="next"``),
    ``X-Page``, ``X-Per-Page``, ``X-Next-Page``, ``X-Prev-Page``, ``X-Total``, ``X-Total-Pages``."""
    q = request.query
    try:
        page = max(1, int(q.get("page", 1)))
    except ValueError:
        raise param_error("page is invalid") from None
    try:
        per_page = min(MAX_PER_PAGE, max(1, int(q.get("per_page", DEFAULT_PER_PAGE))))
    except ValueError:
        raise param_error("per_page is invalid") from None
    total = len(items)
    pages = max(1, math.ceil(total / per_page))
    chunk = items[(page - 1) * per_page: page * per_page]
    base = URL(f"{request.scheme}://{request.host}{request.path}").with_query(
        {**{k: v for k, v in q.items() if k not in ("page", "per_page")}, "per_page": str(per_page)})

    def link(n: int, rel: str) -> str:
        return f'<{base.update_query(page=str(n))}>; rel="{rel}"'

    links = []
    if page > 1:
        links.append(link(min(page - 1, pages), "prev"))
    if page < pages:
        links.append(link(page + 1, "next"))
    links += [link(1, "first"), link(pages, "last")]
    headers = {"Link": ", ".join(links), "X-Page": str(page), "X-Per-Page": str(per_page),
               "X-Next-Page": str(page + 1) if page < pages else "", "X-Prev-Page": str(page - 1) if page > 1 else "",
               "X-Total": str(total), "X-Total-Pages": str(pages)}
    return json_list(chunk, headers)


def json_list(body: Any, headers: dict[str, str] | None = None, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status, headers=headers,
                        content_type="application/json")


def ok(body: Any, status: int = 200) -> web.Response:
    return json_list(body, None, status)
