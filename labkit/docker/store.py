"""The daemon's local image store: images by ID (the config digest, as Docker's classic store names them), their
repository tags and digests, blobs in the content-addressed store the image builder writes to. One JSON file,
replaced atomically, so the store survives a restart of the daemon."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..images.oci import BlobStore, canonical_json, descriptor

DEFAULT_TAG = "latest"


class NotFound(LookupError):
    """No image by that name or ID (Docker's "No such image: <name>")."""


def normalize(name: str) -> str:
    """A reference as Docker shows it: ``docker.io/library/x`` → ``x``, a missing tag → ``:latest``;
    digests (``repo@sha256:…``) and IDs are kept."""
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if "@" in name:
        return name
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:{DEFAULT_TAG}"


def split(reference: str) -> tuple[str, str]:
    """``host:5000/repo:tag`` → (``host:5000/repo``, ``tag``)."""
    name, _, tag = normalize(reference).rpartition(":")
    return name, tag


@dataclass
class ImageRecord:
    id: str  # sha256:<config digest>
    manifest: str  # the manifest digest in the blob store
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)
    parent: str = ""

    @property
    def short(self) -> str:
        return self.id.split(":", 1)[1][:12]


class ImageStore:
    """Images, tags and blobs under ``root`` (``ctx.state_dir("docker")``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = BlobStore(root / "blobs")  # the image builder's store too (``build(cache_dir=root)``)
        self._file = root / "images.json"
        self._sizes_file = root / "layer-sizes.json"
        self._lock = threading.RLock()
        data = json.loads(self._file.read_text()) if self._file.exists() else {}
        self.images: dict[str, ImageRecord] = {k: ImageRecord(**v) for k, v in data.items()}
        self._sizes: dict[str, int] = json.loads(self._sizes_file.read_text()) if self._sizes_file.exists() else {}

    def _save(self) -> None:
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: asdict(v) for k, v in self.images.items()}, indent=1))
        os.replace(tmp, self._file)

    # -- reading -------------------------------------------------------------------------------------------
    def manifest(self, image: ImageRecord) -> dict[str, Any]:
        return json.loads(self.blobs.get(image.manifest))

    def config(self, image: ImageRecord) -> dict[str, Any]:
        return json.loads(self.blobs.get(image.id))

    def layer_size(self, digest: str) -> int:
        """The size of a layer's files (what ``docker images`` and ``history`` add up: the graph driver's size of
        the unpacked layer, not of its tar), computed once."""
        if digest not in self._sizes:
            with tarfile.open(self.blobs.path(digest), "r:*") as tar:
                size = sum(m.size for m in tar if m.isfile())
            with self._lock:
                self._sizes[digest] = size
                tmp = self._sizes_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(self._sizes))
                os.replace(tmp, self._sizes_file)
        return self._sizes[digest]

    def size(self, image: ImageRecord) -> int:
        return sum(self.layer_size(layer["digest"]) for layer in self.manifest(image).get("layers") or [])

    def find(self, name: str) -> ImageRecord:
        """An image by ID (``sha256:…``, hex, a unique prefix of at least 4 digits), tag or ``repo@digest``."""
        with self._lock:
            hexpart = name.removeprefix("sha256:")
            if name.startswith("sha256:") or (len(hexpart) >= 4 and all(c in "0123456789abcdef" for c in hexpart)):
                hits = [i for i in self.images.values() if i.id.split(":", 1)[1].startswith(hexpart)]
                if len(hits) == 1:
                    return hits[0]
            ref = normalize(name)
            for image in self.images.values():
                if ref in image.repo_tags or ref in image.repo_digests:
                    return image
        raise NotFound(name)

    def tagged(self, repository: str) -> list[tuple[str, ImageRecord]]:
        """(tag, image) for every tag of ``repository``."""
        repo = split(repository + ":x")[0]
        with self._lock:
            return [(t.rpartition(":")[2], i) for i in self.images.values() for t in i.repo_tags
                    if t.rpartition(":")[0] == repo]

    # -- writing -------------------------------------------------------------------------------------------
    def add(self, manifest_digest: str, tags: tuple[str, ...] = (), repo_digest: str = "") -> ImageRecord:
        """Record the image whose manifest is in the blob store, tagged ``tags`` (moved from other images)."""
        config = json.loads(self.blobs.get(manifest_digest))["config"]["digest"]
        with self._lock:
            image = self.images.setdefault(config, ImageRecord(config, manifest_digest))
            image.manifest = manifest_digest
            for tag in tags:
                self._move_tag(normalize(tag), image)
            if repo_digest and repo_digest not in image.repo_digests:
                image.repo_digests.append(repo_digest)
            self._save()
            return image

    def _move_tag(self, ref: str, image: ImageRecord) -> None:
        for other in self.images.values():
            if ref in other.repo_tags and other is not image:
                other.repo_tags.remove(ref)
        if ref not in image.repo_tags:
            image.repo_tags.append(ref)

    def tag(self, image: ImageRecord, ref: str) -> None:
        with self._lock:
            self._move_tag(normalize(ref), image)
            self._save()

    def untag(self, image: ImageRecord, ref: str) -> None:
        with self._lock:
            ref = normalize(ref)
            if ref in image.repo_tags:
                image.repo_tags.remove(ref)
            repo = ref.rpartition(":")[0] if "@" not in ref else ref.split("@")[0]
            if not any(t.rpartition(":")[0] == repo for t in image.repo_tags):  # the repository's digests go too
                image.repo_digests = [d for d in image.repo_digests if d.split("@")[0] != repo]
            self._save()

    def add_digest(self, image: ImageRecord, repo_digest: str) -> None:
        with self._lock:
            if repo_digest not in image.repo_digests:
                image.repo_digests.append(repo_digest)
                self._save()

    def delete(self, image: ImageRecord) -> None:
        """Forget the image (its blobs stay: the builder's step cache may name them)."""
        with self._lock:
            self.images.pop(image.id, None)
            self._save()

    def wipe(self) -> None:
        """Forget every image and blob (``labkit reset``)."""
        with self._lock:
            self.images.clear()
            self._sizes.clear()
            self._sizes_file.unlink(missing_ok=True)
            shutil.rmtree(self.blobs.dir, ignore_errors=True)
            self.blobs.dir.mkdir(parents=True)
            self._save()

    def relabel(self, manifest_digest: str, labels: dict[str, str]) -> str:
        """The image with ``labels`` added to its config (``docker build --label``): a new config and manifest
        in the store; returns the new manifest digest."""
        if not labels:
            return manifest_digest
        manifest = json.loads(self.blobs.get(manifest_digest))
        config = json.loads(self.blobs.get(manifest["config"]["digest"]))
        inner = config.setdefault("config", {})
        inner["Labels"] = {**(inner.get("Labels") or {}), **labels}
        config_bytes = canonical_json(config)
        manifest["config"] = descriptor(manifest["config"]["mediaType"], self.blobs.put(config_bytes),
                                        len(config_bytes))
        return self.blobs.put(canonical_json(manifest))
