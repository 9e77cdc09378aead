"""Harbor on the registry's listener: its store, policy, the registry's event hooks and ``/api/v2.0``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from ..storage import RegistryStorage
from . import api_accounts, api_artifacts, api_projects, api_system
from .events import RegistryEvents
from .policy import HarborPolicy
from .retention import api as retention_api
from .retention.execution import RetentionRunner
from .retention.store import RetentionStore
from .router import Router
from .scan import api as scan_api
from .scan.worker import scan_jobs
from .store import HarborStore, project_of

# The projects Harbor starts with (``library``) and the lab's own images (``shop``: the nodes pull them
# anonymously), both public.
SEEDED_PROJECTS = ("library", "shop")
# (repository, digest, accepted report mime types) -> an artifact's ``scan_overview``, or None (scanning's part)
ScanOverview = Callable[[str, str, list[str]], dict[str, Any] | None]


class Harbor:
    """What the registry component builds: ``policy`` for its Authority, ``events`` for its API, ``install``
    for ``/api/v2.0``; ``router.add`` takes more routes (scanning, retention)."""

    def __init__(self, state: Path, storage: RegistryStorage, admin_password: str) -> None:
        self.state = state
        self.storage = storage
        self.store = HarborStore(state / "harbor.sqlite")
        self.store.seed(SEEDED_PROJECTS)
        self.policy = HarborPolicy(self.store, admin_password)
        self.events = RegistryEvents(self.store, storage)
        self.events.sync()
        self.scans = scan_jobs(storage, self.store, state)
        self.scan_overview: ScanOverview | None = self.scans.scan_overview
        self.events.on_push.append(self._auto_scan)
        self.retention = RetentionRunner(RetentionStore(state / "retention.sqlite"), self.store, storage,
                                         self.delete_artifact, self.events.immutable)
        self.router = Router(self)
        for module in (api_system, api_projects, api_artifacts, api_accounts, scan_api, retention_api):
            module.install(self.router)

    async def start(self) -> None:
        """Start the background jobs: scans (and those a stop interrupted), retention executions."""
        await self.scans.start()
        self.retention.start()

    async def stop(self) -> None:
        await self.scans.stop()
        await self.retention.stop()

    def delete_artifact(self, user: str, repo: str, digest: str) -> None:
        """Harbor's delete of an artifact, the API's and retention's: refused for an immutable tag, recorded in
        the audit log; its accessories (an SBOM) and scan reports go with it."""
        self.events.before_delete(user, repo, digest, None)
        for accessory in self.storage.meta.referrers(repo, digest):
            self.storage.delete_manifest(repo, accessory.digest)
            self.store.delete_artifact(repo, accessory.digest)
        self.storage.delete_manifest(repo, digest)
        self.events.deleted(user, repo, digest, None)
        self.scans.forget(repo, digest)

    def _auto_scan(self, repo: str, digest: str) -> None:
        project = self.store.project(project_of(repo))
        if project is not None:
            self.scans.on_push(repo, digest, json.loads(project["metadata"]))

    def install(self, app: web.Application) -> None:
        self.router.install(app)

    def close(self) -> None:
        self.store.close()
        self.scans.reports.close()
        self.retention.policies.close()

    def wipe(self) -> None:
        """Forget everything but the seeded projects (``labkit reset``)."""
        self.store.close()
        for suffix in ("", "-wal", "-shm"):
            (self.state / f"harbor.sqlite{suffix}").unlink(missing_ok=True)
        self.store = HarborStore(self.state / "harbor.sqlite")
        self.store.seed(SEEDED_PROJECTS)
        self.policy.store = self.events.store = self.store
        self.scans.reports.wipe()
        self.retention.policies.wipe()
        self.policy.forget()
