"""The scan jobs: a small pool of workers in the registry's event loop, so a push never waits for a scan.

``scan`` (an image, or each image of an index) records a Pending report and queues it; a worker marks it
Running, writes the artifact as an OCI layout in a scratch folder, runs the scanner (Syft for ``sbom``, Trivy
for ``vulnerability``) and records Success or Error with the scanner's log. ``stop_scan`` ends a queued or
running job as Stopped (the scanner's process group is killed). Jobs left Pending or Running by a stopped
daemon run again at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ....core.errors import ApiError
from ....core.tasks import cancel
from ...manifests import OCI_MANIFEST
from ...storage import RegistryStorage
from .. import sbom, schedule
from ..store import HarborStore, project_of
from . import index, vulnerability
from .layout import NotScannable, is_image, write_layout
from .reports import ERROR, PENDING, SBOM, STOPPED, SUCCESS, VULNERABILITY, Report, ScanReports

WORKERS = 2  # the lab machine's cores; Harbor's jobservice defaults to 10 workers


class Artifacts(Protocol):
    """What the scan jobs tell Harbor's artifact records (an accessory pushed, an old one deleted)."""

    def accessory_pushed(self, repo: str, digest: str, size: int) -> None: ...

    def accessory_deleted(self, repo: str, digest: str) -> None: ...

    def artifacts(self) -> Iterator[tuple[str, str]]:
        """Every artifact: (repository, digest)."""
        ...


class StoreArtifacts:
    """Harbor's artifact records (``HarborStore``) of the accessories the scan jobs push and delete."""

    def __init__(self, store: HarborStore) -> None:
        self.store = store

    def accessory_pushed(self, repo: str, digest: str, size: int) -> None:
        project = self.store.project(project_of(repo))
        self.store.pushed(repo, project["project_id"] if project is not None else 0, digest, OCI_MANIFEST, size, [])

    def accessory_deleted(self, repo: str, digest: str) -> None:
        self.store.delete_artifact(repo, digest)

    def artifacts(self) -> Iterator[tuple[str, str]]:
        for project in self.store.projects():
            for repo in self.store.repositories(project["project_id"]):
                for artifact in self.store.artifacts(repo["name"]):
                    yield repo["name"], artifact["digest"]


@dataclass
class ScanAll:
    """The latest scan-all execution: its trigger and the reports it queued."""

    trigger: str
    started: float
    report_ids: list[str] = field(default_factory=list)

    def statuses(self, jobs: ScanJobs) -> list[str]:
        found = (jobs.reports.get(i) for i in self.report_ids)
        return [r.status for r in found if r is not None]


@dataclass
class ScanJobs:
    """The queue, its workers and the reports they write."""

    storage: RegistryStorage
    reports: ScanReports
    work_dir: Path
    trivy: vulnerability.TrivyOptions
    artifacts: Artifacts
    workers: int = WORKERS
    logger: logging.Logger | None = None

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._stopped: set[str] = set()
        self.latest_scan_all: ScanAll | None = None
        self.log = self.logger or logging.getLogger("labkit.registry.scan")

    async def start(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for report in self.reports.unfinished():  # interrupted by a stop of the daemon: run again
            self.reports.requeue(report.uuid)
            self._queue.put_nowait(report.uuid)
        self._tasks = [asyncio.create_task(self._worker(), name=f"scan-worker-{i}") for i in range(self.workers)]
        periodic = schedule.run_schedules(self._scan_all_cron, lambda _: self.scan_all("Schedule", schedule.JOBSERVICE),
                                          self.log)
        self._tasks.append(asyncio.create_task(periodic, name="scan-all-schedule"))

    def _scan_all_cron(self) -> dict[str, str]:
        found = self.reports.schedule()
        return {"scan_all": found["cron"]} if found else {}

    def scan_all(self, trigger: str, operator: str) -> ScanAll:
        """A vulnerability scan of every image (one already being scanned is skipped), as the latest scan all."""
        execution = ScanAll(trigger, time.time())
        for repo, digest in self.artifacts.artifacts():
            row = self.storage.meta.manifest(repo, digest)
            if row is None or not is_image(row):
                continue
            try:
                execution.report_ids.append(self.submit(repo, digest, VULNERABILITY, operator).uuid)
            except ApiError:
                continue
        self.latest_scan_all = execution
        return execution

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel(task)  # type: ignore[arg-type]
        self._tasks = []

    # -- the API's side --------------------------------------------------------------
    def scan(self, repo: str, digest: str, scan_type: str, operator: str) -> None:
        """Queue a scan of an image, or of each image of an index (409 CONFLICT if every one is still busy)."""
        kids = index.children(self.storage, repo, digest)
        if kids is None:
            self.submit(repo, digest, scan_type, operator)
            return
        conflicts = []
        for kid in kids:
            try:
                self.submit(repo, kid, scan_type, operator)
            except ApiError as exc:
                conflicts.append(exc)
        if conflicts and len(conflicts) == len(kids):
            raise conflicts[0]

    def reports_of(self, repo: str, digest: str, scan_type: str) -> list[Report] | None:
        """The report of an image, or those of an index's images (None until each has one)."""
        kids = index.children(self.storage, repo, digest)
        found = [self.reports.current(repo, d, scan_type) for d in (kids if kids is not None else [digest])]
        reports = [r for r in found if r is not None]
        return reports if reports and len(reports) == len(found) else None

    def submit(self, repo: str, digest: str, scan_type: str, operator: str) -> Report:
        """Queue a scan of ``repo@digest``; 409 CONFLICT while the previous one has not finished."""
        current = self.reports.current(repo, digest, scan_type)
        if current is not None and not current.final:
            what = "sbom generate" if scan_type == SBOM else "scan"
            raise ApiError(409, "CONFLICT", f"a previous {what} process is running")
        if scan_type == SBOM:  # the previous SBOM goes when a new one is asked for, as Harbor does
            self._drop_accessories(repo, digest)
        report = self.reports.create(repo, digest, scan_type, operator)
        self._queue.put_nowait(report.uuid)
        return report

    def forget(self, repo: str, digest: str) -> None:
        """The artifact was deleted: stop its scans and drop its reports."""
        for report in self.reports.forget(repo, digest):
            job = self._jobs.get(report.uuid)
            if job is not None:
                job.cancel()

    def _drop_accessories(self, repo: str, digest: str) -> None:
        for old in sbom.sbom_accessories(self.storage, repo, digest):
            self.storage.delete_manifest(repo, old)
            self.artifacts.accessory_deleted(repo, old)

    def stop_scan(self, repo: str, digest: str, scan_type: str) -> None:
        """Stop the artifact's (or its images') queued or running scans; 400 BAD_REQUEST when there is none."""
        busy = [r for r in self.reports_of(repo, digest, scan_type) or [] if not r.final]
        if not busy:
            raise ApiError(400, "BAD_REQUEST", f"no scan job for artifact digest={digest}")
        for report in busy:
            self._stopped.add(report.uuid)
            job = self._jobs.get(report.uuid)
            if job is not None:
                job.cancel()
            else:
                self.reports.finish(report.uuid, STOPPED, "the scan was stopped before it started\n")

    def scan_overview(self, repo: str, digest: str, accept: list[str]) -> dict[str, Any] | None:
        """An artifact's ``scan_overview`` under the first report type asked for that Trivy produces, or None
        when it was never scanned (Harbor then leaves the field out)."""
        reports = self.reports_of(repo, digest, VULNERABILITY)
        if reports is None:
            return None
        wanted = [m for m in accept if m in vulnerability.REPORT_TYPES] or [vulnerability.GENERIC_REPORT]
        merged = index.children(self.storage, repo, digest) is not None
        return {wanted[0]: index.overview(reports) if merged else vulnerability.overview(reports[0])}

    def sbom_overview(self, repo: str, digest: str) -> dict[str, Any] | None:
        """An artifact's ``sbom_overview``, or None when no SBOM was asked for."""
        reports = self.reports_of(repo, digest, SBOM)
        if reports is None:
            return None
        merged = index.children(self.storage, repo, digest) is not None
        return index.sbom_overview(reports) if merged else sbom.overview(reports[0])

    def on_push(self, repo: str, digest: str, project_metadata: dict[str, str]) -> None:
        """Scan on push, as the project's ``auto_scan`` and ``auto_sbom_generation`` metadata ask (queued:
        the push does not wait)."""
        row = self.storage.meta.manifest(repo, digest)
        if row is None or not is_image(row):
            return
        for key, scan_type in (("auto_scan", VULNERABILITY), ("auto_sbom_generation", SBOM)):
            if project_metadata.get(key) == "true":
                current = self.reports.current(repo, digest, scan_type)
                if current is None or current.final:
                    self.submit(repo, digest, scan_type, "")

    # -- the workers -----------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            report_id = await self._queue.get()
            report = self.reports.get(report_id)
            if report is None or report.status != PENDING:
                continue
            job = asyncio.create_task(self._run(report), name=f"scan-{report_id}")
            self._jobs[report_id] = job
            try:
                await asyncio.wait({job})
            finally:
                if not job.done():  # the daemon is stopping: the report stays Running, to run again
                    await cancel(job)  # type: ignore[arg-type]
                self._jobs.pop(report_id, None)
            if job.cancelled() and report_id in self._stopped:
                self._stopped.discard(report_id)
                self.reports.finish(report_id, STOPPED, "the scan was stopped while it ran\n")

    async def _run(self, report: Report) -> None:
        self.reports.start(report.uuid)
        folder = self.work_dir / report.uuid
        try:
            layout = await asyncio.to_thread(write_layout, self.storage, report.repo, report.digest,
                                             folder / "layout", report.digest)
            if report.scan_type == SBOM:
                await self._sbom(report, layout)
            else:
                await self._vulnerabilities(report, layout)
        except NotScannable as exc:
            self.reports.finish(report.uuid, ERROR, f"the artifact cannot be scanned: {exc}\n")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a scan job's failure is its report's Error, never the daemon's
            self.log.exception("scan %s of %s@%s failed", report.scan_type, report.repo, report.digest)
            self.reports.finish(report.uuid, ERROR, f"scan job failed: {exc!r}\n{traceback.format_exc()}")
        finally:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(shutil.rmtree, folder, True)

    async def _sbom(self, report: Report, layout: Path) -> None:
        document, log = await sbom.generate(layout, report.repo, report.digest)
        if document is None:
            self.reports.finish(report.uuid, ERROR, log)
            return
        if self.storage.meta.manifest(report.repo, report.digest) is None:
            self.reports.finish(report.uuid, ERROR, log + "the artifact was deleted while its SBOM was made\n")
            return
        self._drop_accessories(report.repo, report.digest)
        digest = sbom.store_accessory(self.storage, report.repo, report.digest, document,
                                      self.artifacts.accessory_pushed)
        data = {"sbom_repository": report.repo, "sbom_digest": digest, "scanner": sbom.scanner(),
                "media_type": sbom.SPDX_JSON}
        self.reports.finish(report.uuid, SUCCESS, log + f"SBOM accessory {report.repo}@{digest}\n", data, digest)

    async def _vulnerabilities(self, report: Report, layout: Path) -> None:
        ok, trivy_report, log = await vulnerability.scan(layout, self.trivy)
        if not ok or trivy_report is None:
            self.reports.finish(report.uuid, ERROR, log)
            return
        row = self.storage.meta.manifest(report.repo, report.digest)
        media_type = row.media_type if row else ""
        data = vulnerability.harbor_report(trivy_report, report.repo, report.digest, media_type)
        self.reports.finish(report.uuid, SUCCESS, log, data)



def scan_jobs(storage: RegistryStorage, store: HarborStore, state_dir: Path,
              logger: logging.Logger | None = None) -> ScanJobs:
    """The registry's scan jobs, their reports beside the registry's state (``scans.sqlite``)."""
    return ScanJobs(storage, ScanReports(state_dir / "scans.sqlite"), state_dir / "scan-work",
                    vulnerability.TrivyOptions.from_env(state_dir), StoreArtifacts(store), logger=logger)
