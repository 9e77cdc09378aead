"""Build the demo shop's images (apps/<service>/Dockerfile) and push them to a registry, cached.

What ``labkit up`` needs: ``publish_shop(checkout, registry_url, ...)`` builds each service (an
unchanged service is all cache hits and gives the same manifest digest) and pushes it unless the
registry already has that digest under the tag, so a second ``up`` neither rebuilds nor re-uploads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.checkout import Checkout
from ..images.builder import BuildEvent, build, push
from ..images.pipindex import pip_env

__all__ = ["Published", "image", "pip_env", "publish_shop"]


def image(service: str, tag: str, host: str) -> str:
    """The name of a shop service's image: ``localhost:5001/shop/catalog:0.1.0``."""
    return f"{host}/shop/{service}:{tag}"


@dataclass(frozen=True)
class Published:
    service: str
    image: str  # the name pods use, e.g. localhost:5001/shop/catalog:0.1.0
    digest: str
    pushed: bool  # False: the registry already had this digest under the tag
    build_seconds: float


def publish_shop(checkout: Checkout, registry_url: str, credentials: tuple[str, str] | None = None,
                 cache_dir: Path | None = None, progress: Callable[[BuildEvent], None] | None = None,
                 index_url: str | None = None) -> list[Published]:
    """Build every shop service (``apps/*/Dockerfile``) and push the ones the registry does not have yet,
    tagged as ``manifests/versions.yaml`` says. ``pip install`` in the Dockerfiles installs through
    ``index_url`` (the lab's Nexus group), else from the checkout's wheelhouse when it has one, and never asks an
    index then. The index reaches pip as the build host's pip setting (the Dockerfiles' ``ARG PIP_INDEX_URL`` is
    left unset), not as a build arg: a build arg is part of the step's cache key, as in Docker, and each lab's
    Nexus has its own address, so every new lab would install the shop's requirements again; this way a lab's
    first start reuses the pip layer any lab on this machine built (a restart of one lab hits either way)."""
    from ..images.client import RegistryClient

    apps = checkout.root / "apps"
    tag, image_host = str(checkout.versions["shop"]["tag"]), checkout.versions["registry"]["cluster_name"]
    env = pip_env(checkout.wheelhouse, index_url)
    client = RegistryClient(registry_url, *(credentials or (None, None)))
    out = []
    try:
        for service in checkout.apps():
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
