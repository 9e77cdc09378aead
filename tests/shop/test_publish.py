"""The demo shop on the sim lab: `labkit up` publishes its images (once), chapter 1 deploys it, it answers."""

from __future__ import annotations

import json
import urllib.request

from labkit import Lab, control
from labkit.images.client import RegistryClient
from labkit.shop.lab import SERVICES, ready_pods

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> tuple[dict, str]:
    with _OPENER.open(url, timeout=10) as r:
        return json.load(r), r.headers.get("X-Pod-Name", "")


def test_up_publishes_the_shop_images_once_and_chapter_1_runs_the_shop(lab: Lab) -> None:
    registry = lab.endpoints["components"]["registry"]
    client = RegistryClient(registry["url"])
    digests = {s: client.manifest_digest(f"shop/{s}", "0.1.0") for s in SERVICES}
    assert all(digests.values()), digests  # anonymous pull works, as in the real registry

    lab.chapter(1)
    assert ready_pods(lab) == (7, 7)
    products, pod = _get(f"{lab.service_url('shop', 'gateway')}/api/products")
    assert products["products"] and pod.startswith("gateway-")
    through_haproxy, _ = _get(f"{lab.url('haproxy')}/api/products")
    assert through_haproxy["products"] == products["products"]
    orders = lab.service_url("shop", "orders")  # a ClusterIP Service: one ready endpoint
    assert _get(orders)[0]["service"] == "orders"

    control.down(lab.paths)
    again = Lab.connect(home=lab.paths.home)
    log = (lab.paths.logs / "shop-images.log").read_text()
    assert log.count("already in the registry") == len(SERVICES)  # the second up pushed nothing
    client = RegistryClient(again.endpoints["components"]["registry"]["url"])
    assert {s: client.manifest_digest(f"shop/{s}", "0.1.0") for s in SERVICES} == digests
