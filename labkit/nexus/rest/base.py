"""What the REST handlers share: the store, the proxy engine, the metrics and the base URL."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ...core.errors import ApiError
from ..metrics import Metrics
from ..proxy import ProxyEngine
from ..repositories import validation
from ..store import NexusStore

V1 = "/service/rest/v1"


@dataclass
class Services:
    store: NexusStore
    engine: ProxyEngine
    metrics: Metrics
    base_url: str
    change_password: Callable[[str, str], None] = field(default=lambda user, password: None)

    def repository(self, name: str) -> dict[str, Any]:
        config = self.store.repository(name)
        if config is None:
            raise ApiError(404, "NotFound", f"Repository not found: {name}")
        return config


async def json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except ValueError:
        raise validation(("request", "the body is not valid JSON")) from None


def iso(seconds: float | None) -> str | None:
    """A time as Nexus writes it (``2026-11-26T16:20:00.000+00:00``)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def encode_id(repository: str, number: int) -> str:
    """An opaque component/asset id, as Nexus' (base64 of ``<repository>:<id>``)."""
    return base64.urlsafe_b64encode(f"{repository}:{number}".encode()).decode().rstrip("=")


def decode_id(text: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        return int(raw.rpartition(":")[2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(422, "MalformedId", f"Malformed ID: {text}") from None


def token(last: int) -> str:
    """A continuationToken for the page after id ``last``."""
    return f"{last:016x}"


def after(request: web.Request) -> int:
    """The id the page asked for by ``continuationToken`` starts after."""
    text = request.query.get("continuationToken")
    if not text:
        return 0
    try:
        return int(text, 16)
    except ValueError:
        raise validation(("continuationToken", f"Invalid continuation token: {text}")) from None
