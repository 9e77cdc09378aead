"""The demo shop on the sim lab: `labkit up` publishes its images (once), chapter 1 deploys it, it answers."""

from __future__ import annotations

import json
import urllib.request

from labkit import Lab, control
from labkit.images.client import RegistryClient

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> tuple[dict, str]:
    with _OPENER.open(url, timeout=10) as r:
        return json.load(r), r.headers.get("X-Pod-Name", "")


def test_up_publishes_the_shop_images_once_and_chapter_1_runs_the_shop(lab: Lab) -> None:
    services = lab.shop.services
    client = RegistryClient(lab.registry.endpoint.url)
    digests = {s: client.manifest_digest(f"shop/{s}", "0.1.0") for s in services}
    assert all(digests.values()), digests  # anonymous pull works, as in the real registry

    lab.chapter(1)
    assert lab.shop.ready_pods() == (7, 7)
    with lab.kubernetes.port_forward("svc/gateway", 8080, "shop") as gateway:
        products, pod = _get(f"{gateway}/api/products")
    assert products["products"] and pod.startswith("gateway-")
    through_haproxy, _ = _get(f"{lab.url('haproxy')}/api/products")
    assert through_haproxy["products"] == products["products"]
    with lab.kubernetes.port_forward("svc/orders", 8080, "shop") as orders:  # a ClusterIP Service
        assert _get(orders)[0]["service"] == "orders"

    control.down(lab.paths)
    again = Lab.connect(home=lab.paths.home)
    log = (lab.paths.logs / "shop.log").read_text()
    assert log.count("already in the registry") == len(services)  # the second up pushed nothing
    client = RegistryClient(again.registry.endpoint.url)
    assert {s: client.manifest_digest(f"shop/{s}", "0.1.0") for s in services} == digests
