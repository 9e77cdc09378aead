"""An artifact of the registry as an OCI image layout folder, which Syft (``oci-dir:``) and Trivy
(``image --input``) read: the stored blobs hard-linked (copied across filesystems), never re-encoded."""

from __future__ import annotations

import json
from pathlib import Path

from ....images.oci import link_or_copy
from ...manifests import IMAGE_TYPES, OCI_INDEX, OCI_MANIFEST
from ...metadata import ManifestRow
from ...storage import RegistryStorage

IMAGE_CONFIGS = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")


class NotScannable(ValueError):
    """The artifact is not an image (an index, or an artifact without layers); the scanner cannot read it."""


def is_image(row: ManifestRow) -> bool:
    """A container image Trivy and Syft can read: an image manifest with an image config, not an accessory."""
    return (row.media_type in IMAGE_TYPES and not row.subject
            and (row.artifact_type in IMAGE_CONFIGS or (row.artifact_type is None and row.media_type != OCI_MANIFEST)))


def write_layout(storage: RegistryStorage, repo: str, digest: str, folder: Path, ref_name: str) -> Path:
    """Write ``repo@digest`` (an image manifest) as an OCI layout in ``folder``; returns ``folder``."""
    row = storage.meta.manifest(repo, digest)
    if row is None:
        raise NotScannable(f"{repo}@{digest} is not in the registry")
    if row.media_type not in IMAGE_TYPES:
        raise NotScannable(f"{row.media_type} is not an image manifest")
    manifest = json.loads(storage.blobs.read(digest))
    if manifest["config"]["mediaType"] not in IMAGE_CONFIGS:
        raise NotScannable(f"an artifact of type {manifest['config']['mediaType']} is not an image")
    blobs = [digest, manifest["config"]["digest"], *(layer["digest"] for layer in manifest.get("layers", []))]
    for blob in blobs:
        algorithm, _, hex_ = blob.partition(":")
        link_or_copy(storage.blobs.path(blob), folder / "blobs" / algorithm / hex_)
    (folder / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
        "mediaType": row.media_type, "digest": digest, "size": row.size,
        "annotations": {"org.opencontainers.image.ref.name": ref_name}}]}
    (folder / "index.json").write_text(json.dumps(index))
    return folder
