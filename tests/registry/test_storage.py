"""Storage under the lab home: content-addressed blobs, nothing lost across a restart, reset, stale uploads."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from labkit.registry.blobs import BlobStore, InvalidDigest, parse_digest
from labkit.registry.storage import RegistryStorage

from .conftest import RunningRegistry
from .images import make_image, sha256


def test_images_survive_a_restart(fresh_registry: RunningRegistry) -> None:
    registry = fresh_registry
    client = registry.client()
    image = make_image("kept")
    digest = client.push_image("t/kept", "1", image.config, list(image.layers))
    layer = sha256(image.layers[0])
    hexa = layer.split(":")[1]
    stored = registry.state / "blobs" / "sha256" / hexa[:2] / hexa
    assert stored.read_bytes() == image.layers[0]  # content-addressed under the lab home
    start = requests.post(f"{registry.url}/v2/t/kept/blobs/uploads/", auth=registry.auth, timeout=5)
    session = registry.url + start.headers["Location"]
    requests.patch(session, data=b"first half ", auth=registry.auth, timeout=5)
    url_before = registry.url
    registry.restart()
    assert registry.url == url_before
    again = registry.client(anonymous=True)
    body, _, got = again.manifest("t/kept", "1")
    assert got == digest and sha256(body) == digest
    assert again.pull_blob("t/kept", layer) == image.layers[0]
    assert again.tags("t/kept") == ["1"]
    # an upload session started before the restart resumes (hashed from its file now)
    requests.patch(session, data=b"second half", auth=registry.auth, timeout=5)
    whole = b"first half second half"
    done = requests.put(f"{session}?digest={sha256(whole)}", auth=registry.auth, timeout=5)
    assert done.status_code == 201
    assert again.pull_blob("t/kept", sha256(whole)) == whole


def test_reset_forgets_everything(fresh_registry: RunningRegistry) -> None:
    client = fresh_registry.client()
    image = make_image("reset")
    client.push_image("t/reset", "1", image.config, list(image.layers))
    fresh_registry.run(fresh_registry.component.reset())
    assert client.catalog() == []
    assert not list((fresh_registry.state / "blobs").glob("sha256/*/*"))
    projects = requests.get(f"{fresh_registry.api}/projects", auth=fresh_registry.auth, timeout=5).json()
    assert [p["name"] for p in projects] == ["library", "shop"]  # Harbor's projects are forgotten too, but the seeded
    fresh_registry.project("t")
    assert client.push_image("t/reset", "1", image.config, list(image.layers))  # usable again


def test_blob_files_are_collected_when_unreferenced(fresh_registry: RunningRegistry) -> None:
    client = fresh_registry.client()
    data = b"shared by two repositories"
    digest = client.push_blob("t/gc-a", data)
    assert client.mount_blob("t/gc-b", digest, "t/gc-a")
    store = BlobStore(fresh_registry.state / "blobs")
    client.delete_blob("t/gc-a", digest)
    assert store.exists(digest)  # t/gc-b still links it
    client.delete_blob("t/gc-b", digest)
    assert not store.exists(digest)


def test_stale_uploads_are_purged_and_digests_parsed(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    upload = storage.uploads.start("t/stale")
    assert storage.uploads.path("t/stale", upload) is not None
    assert storage.uploads.purge_stale(now=time.time() + 2 * 86400) == 1
    assert storage.uploads.path("t/stale", upload) is None
    storage.close()
    assert parse_digest("sha256:" + "a" * 64) == ("sha256", "a" * 64)
    for bad in ("sha256:" + "A" * 64, "sha256:abc", "md5:" + "a" * 32, "sha256", ""):
        try:
            parse_digest(bad)
        except InvalidDigest:
            continue
        raise AssertionError(f"{bad!r} accepted")
