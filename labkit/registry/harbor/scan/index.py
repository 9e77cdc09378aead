"""An image index as Harbor scans it: each of its images is scanned on its own, and the index shows their
reports merged (status, times, the union of the vulnerabilities, the report ids joined and base64-encoded)."""

from __future__ import annotations

import base64
import json
from typing import Any

from ...manifests import INDEX_TYPES
from ...storage import RegistryStorage
from ..shapes import iso
from . import vulnerability
from .layout import is_image
from .reports import ERROR, PENDING, RUNNING, STOPPED, SUCCESS, Report

_CODE = {PENDING: 0, RUNNING: 2, STOPPED: 3, ERROR: 3, SUCCESS: 3}
SEPARATOR = "|"


def children(storage: RegistryStorage, repo: str, digest: str) -> list[str] | None:
    """The images of an index (those the repository holds), or None if ``digest`` is not an index."""
    row = storage.meta.manifest(repo, digest)
    if row is None or row.media_type not in INDEX_TYPES:
        return None
    out = []
    for child in json.loads(storage.blobs.read(digest)).get("manifests") or []:
        found = storage.meta.manifest(repo, str(child.get("digest")))
        if found is not None and is_image(found):
            out.append(found.digest)
    return out


def merge_status(a: str, b: str) -> str:
    """Harbor's MergeScanStatus: Running wins, then Stopped, then Success (one good image is enough)."""
    for status in (RUNNING, STOPPED, SUCCESS):
        if status in (a, b):
            return status
    return a if _CODE.get(a, -1) > _CODE.get(b, -1) else b


def report_id(reports: list[Report]) -> str:
    """The index's report id: its images' ids joined by ``|``, base64-encoded (Harbor's mergeReportID)."""
    return base64.b64encode(SEPARATOR.join(r.uuid for r in reports).encode()).decode()


def report_ids(text: str) -> list[str]:
    """Harbor's ParseReportIDs: a merged (base64) id, or a plain one."""
    try:
        decoded = base64.b64decode(text, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return [text]
    return decoded.split(SEPARATOR) if SEPARATOR in decoded or len(decoded) == 36 else [text]


def merged_data(reports: list[Report]) -> dict[str, Any] | None:
    """The vulnerability reports of the images that succeeded, as one (a finding once, with every digest)."""
    done = [r for r in reports if r.status == SUCCESS and r.data is not None]
    if not done:
        return None
    items: dict[str, dict[str, Any]] = {}
    for r in done:
        assert r.data is not None
        for item in r.data.get("vulnerabilities") or []:
            key = f"{item['id']}-{item['package']}-{item['version']}"
            if key in items:
                items[key]["artifact_digests"] = [*items[key]["artifact_digests"], *item["artifact_digests"]]
            else:
                items[key] = dict(item)
    newest = max(done, key=lambda r: r.end_time or 0.0)
    assert newest.data is not None
    vulnerabilities = list(items.values())
    return {**newest.data, "vulnerabilities": vulnerabilities,
            "severity": vulnerability.overall_severity(vulnerabilities)}


def overview(reports: list[Report]) -> dict[str, Any]:
    """The index's NativeReportSummary, merged from its images' reports."""
    status = reports[0].status
    for r in reports[1:]:
        status = merge_status(status, r.status)
    start = min((r.start_time or r.created) for r in reports)
    end = max((r.end_time or 0.0) for r in reports)
    succeeded = sum(1 for r in reports if r.status == SUCCESS)
    out: dict[str, Any] = {
        "report_id": report_id(reports), "scan_status": status, "severity": "", "duration": max(int(end - start), 0),
        "summary": None, "start_time": iso(start), "end_time": iso(end or None),
        "complete_percent": succeeded * 100 // len(reports)}
    data = merged_data(reports) if status != RUNNING else None
    if data is not None:
        items = data["vulnerabilities"]
        counts: dict[str, int] = {}
        for item in items:
            counts[item["severity"]] = counts.get(item["severity"], 0) + 1
        out.update(severity=data["severity"], scanner=data.get("scanner"),
                   summary={"total": len(items), "fixable": sum(1 for i in items if i.get("fix_version")),
                            "summary": counts})
    return out


def sbom_overview(reports: list[Report]) -> dict[str, Any]:
    """An index's ``sbom_overview``: Harbor shows the status and times of the SBOM job of its images."""
    status = reports[0].status
    for r in reports[1:]:
        status = merge_status(status, r.status)
    start = min((r.start_time or r.created) for r in reports)
    end = max((r.end_time or 0.0) for r in reports)
    return {"start_time": iso(start), "end_time": iso(end or None), "scan_status": status,
            "sbom_digest": None, "duration": max(int(end - start), 0), "report_id": None, "scanner": None}
