"""Accept negotiation as the API server does it: JSON (also as Table) or YAML, 406 for anything else.

kubectl and client-go list protobuf first and JSON after it; the simulator
answers those in JSON. A client that accepts only protobuf (or only
text/plain) gets the real 406 NotAcceptable Status.
"""

from __future__ import annotations

import json

import yaml
from aiohttp import web

from ...core.errors import ApiError

JSON, YAML = "json", "yaml"
_JSON_RANGES = ("application/json", "application/*", "*/*", "*")


def _media_types(accept: str) -> list[str]:
    """The media types of an Accept header, by descending q, each without its parameters."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if media and q > 0:
            ranked.append((-q, i, media.lower()))
    return [m for _, _, m in sorted(ranked)]


def not_acceptable(streaming: bool = False) -> ApiError:
    accepted = ("application/json;stream=watch" if streaming else "application/json, application/yaml")
    return ApiError(406, "NotAcceptable", f"only the following media types are accepted: {accepted} "
                                          "(application/vnd.kubernetes.protobuf is not supported by the "
                                          "labkit simulator)")


def response_format(request: web.Request, streaming: bool = False) -> str:
    """JSON or YAML for this request's Accept header; raise 406 when neither is acceptable."""
    accept = request.headers.get("Accept", "").strip()
    if not accept:
        return JSON
    for media in _media_types(accept):
        if media in _JSON_RANGES:
            return JSON
        if media == "application/yaml" and not streaming:
            return YAML
    raise not_acceptable(streaming)


def as_yaml(response: web.StreamResponse) -> web.StreamResponse:
    """A JSON answer re-encoded as YAML (streams and non-JSON bodies are left alone)."""
    if not isinstance(response, web.Response) or response.content_type != "application/json" \
            or not isinstance(response.body, bytes):
        return response
    text = yaml.safe_dump(json.loads(response.body), sort_keys=False)
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")}
    return web.Response(text=text, status=response.status, headers=headers, content_type="application/yaml")
