"""SBOMs as Harbor makes them: Syft's SPDX JSON of an artifact, stored beside it as an accessory.

The accessory is what Harbor's scan job pushes: an OCI image manifest whose config media type is
``application/vnd.goharbor.harbor.sbom.v1``, whose single layer is the SBOM document, and whose
``subject`` is the artifact, so the referrers API lists it and Harbor lists it among the artifact's
``accessories`` (type ``sbom.harbor``). ``.../additions/sbom`` on the accessory returns the document.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..manifests import OCI_MANIFEST, parse
from ..storage import RegistryStorage
from .scan import tools
from .scan.reports import Report
from .shapes import iso
from .store import HarborStore

SBOM_TYPE = "application/vnd.goharbor.harbor.sbom.v1"
SBOM_LAYER = "application/vnd.oci.image.layer.v1.tar"  # how Harbor's static layer is typed
SPDX_JSON = "application/spdx+json"
ACCESSORY_TYPE = "sbom.harbor"


def scanner() -> dict[str, str]:
    """Who writes the SBOM: Syft (Harbor's own Trivy adapter would; the lab uses Anchore's Syft)."""
    return {"name": "Syft", "vendor": "Anchore", "version": tools.version(tools.syft())}


async def generate(layout: Path, repo: str, reference: str) -> tuple[dict[str, Any] | None, str]:
    """Syft's SPDX JSON SBOM of the image in an OCI layout: (document or None, the log)."""
    argv = [str(tools.syft()), "scan", f"oci-dir:{layout}", "--output", "spdx-json", "--quiet",
            "--source-name", repo, "--source-version", reference]
    run = await tools.run(argv)
    log = f"$ syft {' '.join(argv[2:])}\n{run.stderr}"
    if not run.ok:
        return None, log + f"\nsyft exited with status {run.returncode}\n"
    try:
        return json.loads(run.stdout), log
    except ValueError as exc:
        return None, log + f"\nsyft's output is not JSON: {exc}\n"


def accessory_manifest(storage: RegistryStorage, repo: str, subject: str, document: bytes) -> bytes:
    """Store the SBOM layer and config blobs in ``repo``; returns the accessory's manifest (not yet stored)."""
    subject_row = storage.meta.manifest(repo, subject)
    assert subject_row is not None
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    layer = storage.blobs.put(document)
    config = json.dumps({
        "architecture": "", "os": "", "created": created, "config": {},
        "history": [{"created": created, "author": "harbor", "created_by": "harbor"}],
        "rootfs": {"type": "layers", "diff_ids": [layer]}}, separators=(",", ":")).encode()
    config_digest = storage.blobs.put(config)
    for digest in (layer, config_digest):
        storage.meta.link(repo, digest)
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": SBOM_TYPE, "size": len(config), "digest": config_digest},
        "layers": [{"mediaType": SBOM_LAYER, "size": len(document), "digest": layer}],
        "annotations": {"created": created, "created-by": "Harbor", "org.opencontainers.artifact.created": created,
                        "org.opencontainers.artifact.description": "SPDX JSON SBOM"},
        "subject": {"mediaType": subject_row.media_type, "size": subject_row.size, "digest": subject},
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


def store_accessory(storage: RegistryStorage, repo: str, subject: str, document: dict[str, Any],
                    pushed: Callable[[str, str, int], None]) -> str:
    """Put the SBOM accessory of ``repo@subject`` into the registry; ``pushed(repo, digest, size)`` records it."""
    body = accessory_manifest(storage, repo, subject, json.dumps(document).encode())
    digest = storage.put_manifest(repo, body, parse(body, OCI_MANIFEST), [])
    pushed(repo, digest, len(body))
    return digest


def sbom_accessories(storage: RegistryStorage, repo: str, subject: str) -> list[str]:
    """The digests of ``repo@subject``'s SBOM accessories (its referrers of the SBOM type)."""
    return [r.digest for r in storage.meta.referrers(repo, subject) if r.artifact_type == SBOM_TYPE]


def document(storage: RegistryStorage, repo: str, accessory: str) -> bytes | None:
    """The SBOM document an accessory holds (its one layer), or None if ``accessory`` is not one."""
    row = storage.meta.manifest(repo, accessory)
    if row is None or row.artifact_type != SBOM_TYPE:
        return None
    layers = json.loads(storage.blobs.read(accessory)).get("layers") or []
    return storage.blobs.read(layers[0]["digest"]) if len(layers) == 1 else None


def overview(report: Report) -> dict[str, Any]:
    """Harbor's ``sbom_overview``: while the job runs or when it failed, only its report id and status; once it
    succeeded, the summary the job wrote (times, duration, the accessory, the scanner; no report id)."""
    keys = ("start_time", "end_time", "scan_status", "sbom_digest", "duration", "report_id", "scanner")
    out: dict[str, Any] = dict.fromkeys(keys)
    if report.status != "Success" or not report.data:
        return {**out, "report_id": report.uuid, "scan_status": report.status}
    return {**out, "start_time": iso(report.start_time or report.created), "end_time": iso(report.end_time),
            "scan_status": report.status, "sbom_digest": report.accessory, "duration": report.duration,
            "scanner": report.data.get("scanner")}


# artifactType of a referrer -> Harbor's accessory type
ACCESSORY_TYPES = {SBOM_TYPE: ACCESSORY_TYPE, "application/vnd.cncf.notary.signature": "signature.notation",
                   "application/vnd.dev.cosign.artifact.sig.v1+json": "signature.cosign"}


def accessories(storage: RegistryStorage, store: HarborStore, repo: str, subject: str) -> list[dict[str, Any]]:
    """Harbor's ``accessories`` of ``repo@subject``: its referrers (an SBOM, signatures), with their artifact ids."""
    parent = store.artifact(repo, subject)
    out = []
    for row in storage.meta.referrers(repo, subject):
        record = store.artifact(repo, row.digest)
        out.append({"id": record["id"] if record else 0, "artifact_id": record["id"] if record else 0,
                    "subject_artifact_id": parent["id"] if parent else 0, "subject_artifact_digest": subject,
                    "subject_artifact_repo": repo, "size": row.size, "digest": row.digest,
                    "type": ACCESSORY_TYPES.get(row.artifact_type or "", "subject.accessory"), "icon": "",
                    "creation_time": iso(record["push_time"] if record else None)})
    return out
