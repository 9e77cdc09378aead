"""Tiny but real images for registry tests: gzip tar layers, an OCI config, written as an OCI layout."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_layer(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """(gzip layer, uncompressed tar) holding ``files``, reproducible (fixed mtimes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), raw


@dataclass
class Image:
    config: bytes
    layers: list[bytes]
    manifest: bytes

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    def blobs(self) -> dict[str, bytes]:
        return {sha256(b): b for b in [self.config, *self.layers]}


def make_image(name: str, layer_files: list[dict[str, bytes]] | None = None,
               media_type: str = OCI_MANIFEST, config_type: str = OCI_CONFIG, layer_type: str = OCI_LAYER) -> Image:
    """An amd64 linux image whose layers hold ``layer_files`` (default: one layer naming the image)."""
    layer_files = layer_files or [{"app/name.txt": name.encode(), "app/run.sh": b"#!/bin/sh\necho hello\n"}]
    built = [tar_layer(files) for files in layer_files]
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh", "/app/run.sh"], "WorkingDir": "/app",
                   "Labels": {"name": name}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(raw) for _, raw in built]},
        "history": [{"created_by": f"labkit test layer {i}"} for i in range(len(built))],
    }, sort_keys=True).encode()
    layers = [gz for gz, _ in built]
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": sha256(b), "size": len(b)} for b in layers],
    }).encode()
    return Image(config, layers, manifest)


def write_oci_layout(image: Image, folder: Path, tag: str) -> Path:
    """Write ``image`` as an OCI image layout directory (``oci-layout``, ``index.json``, ``blobs/``)."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for data in [*image.blobs().values(), image.manifest]:
        (blobs / sha256(data).split(":")[1]).write_bytes(data)
    (folder / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (folder / "index.json").write_text(json.dumps(index))
    return folder
