"""One Jaeger (v2, ``all-in-one`` shape) over a trace store: the query service on one loopback listener and the
OTLP/HTTP receiver on another, as Jaeger listens on 16686 and 4318. No credentials: Jaeger's own listeners have
none by default (a deployment puts a proxy in front)."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from ...core.errors import ApiError
from ...core.http import Listeners, api_app
from . import receiver, v1, v3
from .store import DEFAULT_RETENTION, TraceStore

MAX_OTLP_BODY = 16 * 1024 * 1024


def render_query_error(request: web.Request, err: ApiError) -> web.StreamResponse:
    """v3's error shape under ``/api/v3``, the UI API's elsewhere."""
    return (v3.render_error if request.path.startswith("/api/v3/") else v1.render_error)(request, err)


class JaegerServer:
    """The store and both listeners."""

    def __init__(self, db: Path, query: tuple[str, int], otlp: tuple[str, int],
                 retention: float = DEFAULT_RETENTION, logger: logging.Logger | None = None) -> None:
        self.store = TraceStore(db, retention)
        query_app = api_app("jaeger", render_query_error, logger=logger)
        query_app.add_routes(v3.routes(self.store) + v1.routes(self.store))
        otlp_app = api_app("jaeger-otlp", receiver.render_error, max_body=MAX_OTLP_BODY, logger=logger)
        otlp_app.add_routes(receiver.routes(self.store))
        self._query = Listeners(query_app, [query])
        self._otlp = Listeners(otlp_app, [otlp])

    @property
    def url(self) -> str:
        return self._query.urls()[0]

    @property
    def otlp_url(self) -> str:
        return self._otlp.urls()[0]

    async def start(self) -> None:
        await self._query.start()
        await self._otlp.start()

    async def stop(self) -> None:
        await self._otlp.stop()
        await self._query.stop()
        self.store.close()
