"""OCI image layout output for the image builder: a content-addressed blob store and layout directories.

An OCI image layout (image-spec ``image-layout.md``) is ``oci-layout`` (``{"imageLayoutVersion": "1.0.0"}``),
``index.json`` (an image index whose manifests carry ``org.opencontainers.image.ref.name``) and
``blobs/sha256/<hex>``. ``skopeo copy oci:<dir>:<tag> docker://...`` reads it; so does ``push`` here,
which sends the blobs and the manifest over the distribution API with labkit's registry client.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
IMAGE_NAME = "io.containerd.image.name"


def canonical_json(value: Any) -> bytes:
    """The bytes the builder writes for a JSON document: sorted keys, no spaces (so digests are stable)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobStore:
    """Blobs by digest under ``root/sha256/<hex>``; writes are atomic, so builds may share a store."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "sha256"
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        algo, _, hexdigest = digest.partition(":")
        if algo != "sha256" or len(hexdigest) != 64:
            raise ValueError(f"unsupported digest {digest!r}")
        return self.dir / hexdigest

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def put(self, data: bytes) -> str:
        digest = sha256(data)
        if not self.has(digest):
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".blob-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path(digest))
        return digest

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()


def descriptor(media_type: str, digest: str, size: int, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
    if annotations:
        out["annotations"] = annotations
    return out


def link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` as a hard link to ``src`` (a copy across filesystems), its folder made; kept if it exists."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_layout(layout: Path, store: BlobStore, manifest_digest: str, ref_name: str, image_name: str) -> None:
    """Add the image ``manifest_digest`` (and every blob it names) to the layout under ``ref_name``.

    Another image in the layout under the same ref name is replaced; other refs stay."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    manifest_bytes = store.get(manifest_digest)
    manifest = json.loads(manifest_bytes)
    for desc in [manifest["config"], *manifest["layers"]]:
        link_or_copy(store.path(desc["digest"]), blobs / desc["digest"].split(":", 1)[1])
    link_or_copy(store.path(manifest_digest), blobs / manifest_digest.split(":", 1)[1])
    (layout / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    entries = [m for m in index.get("manifests", []) if (m.get("annotations") or {}).get(REF_NAME) != ref_name]
    entries.append(descriptor(OCI_MANIFEST, manifest_digest, len(manifest_bytes),
                              {REF_NAME: ref_name, IMAGE_NAME: image_name}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    tmp = index_path.with_suffix(".tmp")
    tmp.write_bytes(canonical_json(index))
    os.replace(tmp, index_path)


def layout_blobs(layout: Path) -> Callable[[str], Path]:
    """A digest -> file function for an OCI layout directory (or a bare ``blobs`` folder)."""
    base = layout / "blobs" if (layout / "blobs").is_dir() else layout
    base = base / "sha256" if (base / "sha256").is_dir() else base

    def find(digest: str) -> Path:
        path = base / digest.split(":", 1)[1]
        if not path.exists():
            raise FileNotFoundError(f"blob {digest} is not in {layout}")
        return path

    return find


def layout_manifest(layout: Path, ref: str | None = None) -> tuple[bytes, str]:
    """(manifest bytes, digest) of the image named ``ref`` (a ref name or digest) in an OCI layout;
    with no ``ref``, the layout's only (or last added) image."""
    index = json.loads((layout / "index.json").read_text())
    entries = index.get("manifests") or []
    if ref:
        entries = [m for m in entries if ref in (m["digest"], (m.get("annotations") or {}).get(REF_NAME))]
    if not entries:
        raise LookupError(f"no image {ref or ''} in the OCI layout {layout}")
    digest = entries[-1]["digest"]
    data = layout_blobs(layout)(digest).read_bytes()
    if sha256(data) != digest:
        raise ValueError(f"manifest {digest} in {layout} does not match its digest")
    return data, digest


def push(layout: Path, registry_url: str, repo: str, tag: str, credentials: tuple[str, str] | None = None,
         ref: str | None = None) -> str:
    """Push an image from an OCI layout to a registry (blobs it already has are skipped); returns the
    manifest digest the registry reports."""
    from .client import RegistryClient  # the registry helper's distribution API client

    manifest_bytes, _ = layout_manifest(layout, ref)
    manifest = json.loads(manifest_bytes)
    blob = layout_blobs(layout)
    client = RegistryClient(registry_url, *(credentials or (None, None)))
    try:
        for desc in [*manifest["layers"], manifest["config"]]:
            client.push_blob(repo, blob(desc["digest"]), desc["digest"])
        return client.push_manifest(repo, tag, manifest_bytes, manifest.get("mediaType") or OCI_MANIFEST)
    finally:
        client.close()
