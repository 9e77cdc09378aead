"""One Elasticsearch node: the store, its REST API behind HTTP Basic auth, and the periodic refresh."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

from aiohttp import web

from ...core.http import Credentials, Listeners, api_app
from ...core.tasks import cancel
from . import errors
from .api import ElasticsearchApi
from .store import Store

USER = "elastic"
MAX_BODY = 100 * 1024 * 1024  # http.max_content_length
REFRESH_TICK = 0.2  # seconds between checks of the indices' refresh_interval


class ElasticsearchNode:
    """``await start()`` serves ``state_dir``'s indices on ``address`` as the ``elastic`` user with ``password``."""

    def __init__(self, state_dir: Path, address: tuple[str, int], password: str, cluster_name: str = "labkit",
                 logger: object | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self.store = Store(Path(state_dir) / "indices.sqlite")
        self.address = address
        self.ssl_context = ssl_context  # HTTPS, as Elasticsearch 8 serves by default (the sim's lab: plain HTTP)
        self.password = password
        self.cluster_name = cluster_name
        self.logger = logger
        self.listeners: Listeners | None = None
        self._refresher: asyncio.Task[None] | None = None

    def app(self) -> web.Application:
        app = api_app("elasticsearch", render_error=errors.render, max_body=MAX_BODY,
                      credentials=Credentials(tokens={}, users={USER: self.password}, realm="security"),
                      logger=self.logger)  # type: ignore[arg-type]
        ElasticsearchApi(self.store, self.cluster_name).install(app)
        return app

    async def start(self) -> None:
        self.listeners = Listeners(self.app(), [self.address], ssl_context=self.ssl_context)
        await self.listeners.start()
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())

    @property
    def url(self) -> str:
        assert self.listeners is not None
        return self.listeners.urls()[0]

    async def _refresh_loop(self) -> None:
        """Each index is refreshed every ``index.refresh_interval`` (1 s unless set; -1: only on request)."""
        last: dict[str, float] = {}
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(REFRESH_TICK)
            now = loop.time()
            for index in list(self.store.indices.values()):
                interval = index.refresh_interval
                if interval < 0 or not index.pending:
                    continue
                if now - last.get(index.name, 0.0) >= interval:
                    index.refresh()
                    last[index.name] = now

    async def stop(self) -> None:
        await cancel(self._refresher)
        if self.listeners is not None:
            with contextlib.suppress(Exception):
                await self.listeners.stop()
        self.store.close()
