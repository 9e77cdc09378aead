"""``labkit up``'s shop publishing: built with the sim builder, pushed once, then neither rebuilt nor re-pushed."""

from __future__ import annotations

from pathlib import Path

from labkit.core.checkout import Checkout
from labkit.images.pull import ImagePuller
from labkit.shop.images import publish_shop

from ..registry.conftest import RunningRegistry


def test_publish_shop_pushes_once_and_the_kubelet_can_pull(registry: RunningRegistry, tmp_path: Path) -> None:
    checkout = Checkout.find()
    first = publish_shop(checkout, registry.url, registry.auth, cache_dir=tmp_path / "cache")
    assert [p.service for p in first] == checkout.apps() and all(p.pushed for p in first)
    again = publish_shop(checkout, registry.url, registry.auth, cache_dir=tmp_path / "cache")
    assert [p.digest for p in again] == [p.digest for p in first]
    assert not any(p.pushed for p in again) and all(p.build_seconds < 0.5 for p in again)
    puller = ImagePuller(tmp_path / "pulled", {"localhost:5001": registry.url})
    image = puller.pull(first[0].image)
    assert image.digest == first[0].digest
    assert (image.rootfs / "app" / "catalog" / "__main__.py").exists()
    assert image.config["Labels"]["io.labkit.runtime"] == "host-python"
