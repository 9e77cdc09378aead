"""The scrape manager: for every job of the configuration, its targets (static and discovered from the lab's
API server, re-listed every few seconds), one scrape loop per target; targets that appear start, targets that
go away stop with stale markers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import aiohttp

from ..config import Config, ScrapeConfig
from .kubernetes import KubeLister, discover
from .loop import Appender, ScrapeLoop
from .target import Target, populate

log = logging.getLogger("labkit.prometheus.scrape")
DISCOVERY_SECONDS = 5.0  # how often the Kubernetes roles are re-listed


class ScrapeManager:
    def __init__(self, config: Config, storage: Appender, kubeconfig: str | Path | None = None,
                 refresh: float = DISCOVERY_SECONDS) -> None:
        self.config, self.storage, self.refresh = config, storage, refresh
        self.lister = KubeLister(kubeconfig) if kubeconfig else None
        self.loops: dict[str, dict[tuple[str, str], ScrapeLoop]] = {j.job_name: {} for j in config.scrape_configs}
        self.dropped: dict[str, list[dict[str, str]]] = {j.job_name: [] for j in config.scrape_configs}
        self.session: aiohttp.ClientSession | None = None
        self.task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()

    async def start(self) -> None:
        if any(j.kubernetes_sd_configs for j in self.config.scrape_configs) and self.lister is None:
            raise ValueError("kubernetes_sd_configs needs the lab's API server (a kubeconfig)")
        self.session = aiohttp.ClientSession(trust_env=False)
        self.task = asyncio.create_task(self.discovery(), name="prometheus discovery")

    async def stop(self) -> None:
        """Stop every loop (no stale markers: the server is going away, not the targets)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for loops in self.loops.values():
            for loop in loops.values():
                await loop.stop(stale=False)
        if self.session is not None:
            await self.session.close()
        if self.lister is not None:
            await self.lister.close()

    def targets(self) -> list[Target]:
        return [loop.target for loops in self.loops.values() for loop in loops.values()]

    async def discovery(self) -> None:
        while True:
            for job in self.config.scrape_configs:
                try:
                    await self.sync(job, await self.discovered(job))
                except (TimeoutError, aiohttp.ClientError, OSError) as err:
                    log.warning("discovery for job %s failed: %s", job.job_name, err)  # keep the last targets
            self.synced.set()
            await asyncio.sleep(self.refresh)

    async def discovered(self, job: ScrapeConfig) -> list[dict[str, str]]:
        found = [{**group.labels, "__address__": address} for group in job.static_configs
                 for address in group.targets]
        for sd in job.kubernetes_sd_configs:
            assert self.lister is not None
            found.extend(await discover(self.lister, sd.role, sd.namespaces))
        return found

    async def sync(self, job: ScrapeConfig, discovered: list[dict[str, str]]) -> None:
        """Start loops for new targets, stop (with stale markers) those no longer discovered."""
        assert self.session is not None
        loops = self.loops[job.job_name]
        wanted: dict[tuple[str, str], Target] = {}
        dropped: list[dict[str, str]] = []
        for labels in discovered:
            target, base = populate(job, labels)
            if target is None:
                dropped.append(base)
            else:
                wanted.setdefault(target.key, target)
        self.dropped[job.job_name] = dropped
        for key in [k for k in loops if k not in wanted]:
            await loops.pop(key).stop(stale=True)
        for key, target in wanted.items():
            if key not in loops:
                loops[key] = ScrapeLoop(target, self.storage, self.session)
                loops[key].start()
            else:
                loops[key].target.discovered = target.discovered
