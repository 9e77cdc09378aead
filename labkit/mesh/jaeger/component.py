"""Jaeger on the sim: :class:`~.server.JaegerServer` on the lab's ``JAEGER`` (16686) and ``JAEGER_OTLP`` (4318)
slots, its traces in the component's state folder (``traces.db``), kept ``jaeger_retention`` seconds (setting;
72 h by default, as Badger's ``ttl.spans``)."""

from __future__ import annotations

from ...core.addresses import JAEGER, JAEGER_OTLP
from ...core.component import Component, Context, Health
from ...endpoints import MeshEndpoint
from .server import JaegerServer
from .store import DEFAULT_RETENTION


class Jaeger(Component):
    """The OTLP/HTTP receiver and the query service over one trace store."""

    title = "Jaeger"

    async def start(self, ctx: Context) -> None:
        self.ctx = ctx
        self.server = JaegerServer(ctx.state_dir(self.name) / "traces.db", ctx.network.slot(JAEGER),
                                   ctx.network.slot(JAEGER_OTLP),
                                   float(ctx.settings.get("jaeger_retention", DEFAULT_RETENTION)),
                                   logger=ctx.logger(self.name))
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    async def reset(self) -> None:
        self.server.store.wipe()

    def endpoint(self) -> MeshEndpoint:
        return MeshEndpoint(self.title, self.server.url, otlp=self.server.otlp_url)

    async def health(self) -> Health:
        return Health(True, f"{len(self.server.store.services())} services traced")
