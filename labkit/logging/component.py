"""The logging product on the sim: one Elasticsearch node (``labkit.logging.elasticsearch``) on the lab's
Elasticsearch slot and one Fluent Bit collector per node (``labkit.logging.fluentbit``) running the chapter's pipeline
(``manifests/logging/fluent-bit.yaml``) over the node's ``/var/log``, with its monitoring API on the node's slot."""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..core.addresses import ELASTICSEARCH, fluentbit
from ..core.checkout import Checkout
from ..core.component import Component, Context, Health
from ..core.files import write_atomic
from ..endpoints import KubernetesEndpoint, LoggingEndpoint
from .elasticsearch.server import USER, ElasticsearchNode
from .fluentbit.collector import Collector

ELASTIC_PASSWORD = "elastic-password"  # the lab secret: Elasticsearch's ``elastic`` user, as ECK generates it


def pipeline_config() -> Path:
    """The Fluent Bit configuration both backends run."""
    return Checkout.find().root / "manifests" / "logging" / "fluent-bit.yaml"


class Logging(Component):
    """Elasticsearch and the per-node collectors shipping to it."""

    title = "Elasticsearch + Fluent Bit"

    async def start(self, ctx: Context) -> None:
        self.ctx = ctx
        state = ctx.state_dir(self.name)
        password = ctx.secrets.get(ELASTIC_PASSWORD)
        self.password_file = state / "elastic-password"
        write_atomic(self.password_file, password, mode=0o600)
        self.es = ElasticsearchNode(state / "elasticsearch", ctx.network.slot(ELASTICSEARCH), password,
                                    logger=ctx.logger(self.name))
        await self.es.start()
        self.config = pipeline_config()
        self.collectors: dict[str, Collector] = {}
        kube = ctx.endpoints.get("kubernetes")
        if isinstance(kube, KubernetesEndpoint) and self.config.exists():
            host, port = ctx.network.slot(ELASTICSEARCH)
            env = {"ES_HOST": host, "ES_PORT": str(port), "ES_PASSWORD": password, "ES_TLS": "off",
                   "ES_TLS_VERIFY": "off"}
            for node, folder in kube.node_logs.items():  # each node's /var/log, where its kubelet writes
                node_dir = Path(folder)
                node_dir.mkdir(parents=True, exist_ok=True)
                collector = Collector(self.config, node, node_dir, Path(kube.kubeconfig),
                                      listen=ctx.network.slot(fluentbit(node)), env=env)
                await collector.start()
                self.collectors[node] = collector

    async def stop(self) -> None:
        for collector in self.collectors.values():
            with contextlib.suppress(Exception):
                await collector.stop()
        await self.es.stop()

    async def reset(self) -> None:
        self.es.store.wipe()

    def endpoint(self) -> LoggingEndpoint:
        return LoggingEndpoint(self.title, self.es.url, user=USER, password_file=str(self.password_file),
                               fluentbit={n: c.url for n, c in self.collectors.items() if c.url},
                               config=str(self.config))

    async def health(self) -> Health:
        down = [n for n, c in self.collectors.items() if not c.healthy()]
        detail = f"{len(self.es.store.indices)} indices, {len(self.collectors)} collectors"
        return Health(not down, detail + (f"; unhealthy: {', '.join(down)}" if down else ""))
