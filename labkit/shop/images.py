"""Build the demo shop's images (apps/<service>/Dockerfile) and push them to a registry, cached.

What ``labkit up`` needs: ``publish_shop(apps, registry_url, credentials)`` builds each service (an
unchanged service is all cache hits and gives the same manifest digest) and pushes it unless the
registry already has that digest under the tag, so a second ``up`` neither rebuilds nor re-uploads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..images.builder import BuildEvent, build, push

SHOP_SERVICES = ("catalog", "orders", "gateway")
SHOP_TAG = "0.1.0"  # manifests/versions.yaml shop.tag


def image(service: str, tag: str, host: str = "localhost:5001") -> str:
    """The name of a shop service's image: ``localhost:5001/shop/catalog:0.1.0``."""
    return f"{host}/shop/{service}:{tag}"


@dataclass(frozen=True)
class Published:
    service: str
    image: str  # the name pods use, e.g. localhost:5001/shop/catalog:0.1.0
    digest: str
    pushed: bool  # False: the registry already had this digest under the tag
    build_seconds: float


def publish_shop(apps: Path, registry_url: str, credentials: tuple[str, str] | None = None, tag: str = SHOP_TAG,
                 image_host: str = "localhost:5001", cache_dir: Path | None = None,
                 progress: Callable[[BuildEvent], None] | None = None,
                 wheelhouse: Path | None = None) -> list[Published]:
    """Build every shop service and push the ones the registry does not have yet.

    With a ``wheelhouse`` folder, ``pip install`` in the Dockerfiles installs from it and never asks an index."""
    from ..images.client import RegistryClient

    env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)} if wheelhouse and wheelhouse.is_dir() else {}
    client = RegistryClient(registry_url, *(credentials or (None, None)))
    out = []
    try:
        for service in SHOP_SERVICES:
            repo = f"shop/{service}"
            result = build(apps, f"{service}/Dockerfile", tag=image(service, tag, image_host), cache_dir=cache_dir,
                           progress=progress, env=env)
            pushed = client.manifest_digest(repo, tag) != result.manifest_digest
            if pushed:
                push(result.layout_dir, registry_url, repo, tag, credentials, ref=result.ref_name)
            out.append(Published(service, result.tag, result.manifest_digest, pushed, result.seconds))
    finally:
        client.close()
    return out
