"""Manifest media types and validation: OCI image manifest and index, Docker schema 2 manifest and list."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .blobs import InvalidDigest, parse_digest
from .errors import registry_error, unsupported

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (*IMAGE_TYPES, *INDEX_TYPES)
SCHEMA1_TYPES = ("application/vnd.docker.distribution.manifest.v1+json",
                 "application/vnd.docker.distribution.manifest.v1+prettyjws")
MAX_MANIFEST = 4 * 1024 * 1024  # the size every registry must accept, and our limit
TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
_GENERIC = ("", "application/json", "application/octet-stream")


@dataclass
class Manifest:
    """What the registry needs to know about a pushed manifest."""

    media_type: str
    blobs: list[str] = field(default_factory=list)  # config and layers that must be in the repository
    manifests: list[str] = field(default_factory=list)  # an index's children, manifests of the repository
    subject: str | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None


def _invalid(detail: str) -> Exception:
    return registry_error("MANIFEST_INVALID", detail=detail)


def _descriptor(value: Any, where: str) -> dict[str, Any]:
    """Checks an OCI descriptor (mediaType, digest, size)."""
    if not isinstance(value, dict):
        raise _invalid(f"{where}: a descriptor must be an object")
    try:
        parse_digest(str(value.get("digest")))
    except InvalidDigest as exc:
        raise _invalid(f"{where}: invalid digest {value.get('digest')!r}") from exc
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}: size must be a non-negative integer")
    if not isinstance(value.get("mediaType"), str):
        raise _invalid(f"{where}: mediaType must be a string")
    return value


def _media_type(doc: dict[str, Any], content_type: str) -> str:
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    if declared and content_type not in _GENERIC and declared != content_type:
        raise _invalid(f"mediaType in manifest should be {content_type!r} not {declared!r}")
    media = declared or (content_type if content_type not in _GENERIC else "")
    if not media:  # an OCI manifest or index may omit mediaType
        media = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media in SCHEMA1_TYPES or doc.get("schemaVersion") == 1:
        raise unsupported("Docker image manifest schema 1 (deprecated; push schema 2 or OCI)", status=415)
    if media not in MANIFEST_TYPES:
        raise unsupported(f"manifest media type {media!r}", status=415)
    return media


def parse(body: bytes, content_type: str) -> Manifest:
    """Validate a manifest as pushed; raises the registry's MANIFEST_INVALID or UNSUPPORTED errors."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise _invalid("a manifest must be a JSON object")
    media = _media_type(doc, content_type.split(";")[0].strip())
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    out = Manifest(media)
    if media in IMAGE_TYPES:
        if "manifests" in doc:
            raise _invalid("an image manifest has no manifests field")
        out.blobs.append(_descriptor(doc.get("config"), "config")["digest"])
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise _invalid("layers must be a list")
        for i, layer in enumerate(layers):
            d = _descriptor(layer, f"layers[{i}]")
            if not d.get("urls"):  # foreign (non-distributable) layers live elsewhere
                out.blobs.append(d["digest"])
        config_type = doc["config"]["mediaType"]
        out.artifact_type = doc.get("artifactType") or (config_type if media == OCI_MANIFEST else None)
    else:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise _invalid("manifests must be a list")
        out.manifests = [_descriptor(m, f"manifests[{i}]")["digest"] for i, m in enumerate(children)]
        out.artifact_type = doc.get("artifactType")
    if "subject" in doc:
        out.subject = _descriptor(doc["subject"], "subject")["digest"]
    annotations = doc.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise _invalid("annotations must be an object")
    out.annotations = annotations or None
    return out


def accepts(accept_headers: list[str], media_type: str) -> bool:
    """Content negotiation as the reference registry does it for OCI types; no Accept (or */*) takes anything."""
    offered = {part.split(";")[0].strip() for header in accept_headers for part in header.split(",")}
    offered.discard("")
    if not offered or "*/*" in offered or media_type in offered:
        return True
    return media_type not in (OCI_MANIFEST, OCI_INDEX)
