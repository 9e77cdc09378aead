"""The sim's istiod: every meshed pod's xDS files from the API objects, a change rewriting only what it changes,
a gone pod's directory removed; one sidecar started from its bootstrap serves what was pushed."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from labkit.core.network import free_port
from labkit.mesh.controlplane import ControlPlane
from labkit.mesh.envoy import Envoy
from labkit.mesh.translate import ProxyOptions
from labkit.mesh.translate.workloads import proxy_identity
from labkit.mesh.xds import AdminAddress

from .sidecars import address_block
from .test_translate import istio, pod, service


def test_sync_writes_each_meshed_pods_files_and_only_what_changed(tmp_path: Path) -> None:
    block = address_block()
    objects = [service("catalog"), pod("catalog-a", f"{block}2", {"app": "catalog", "version": "v1"}, meshed=True),
               pod("catalog-b", f"{block}3", {"app": "catalog", "version": "v2"}),
               pod("frontend-1", f"{block}1", {"app": "frontend"}, meshed=True)]
    front = proxy_identity(objects[3])
    ports = {"outbound": free_port(front.ip), "inbound": free_port(front.ip)}
    plane = ControlPlane(tmp_path, lambda who: ProxyOptions(outbound_port=ports["outbound"],
                                                            inbound_port=ports["inbound"]))
    catalog = plane.delivery(front).file("eds", "outbound|8080||catalog.shop.svc.cluster.local").name
    first = plane.sync(objects)
    assert first == {key: [catalog, "cds.json", "rds-virtualOutbound.json", "rds-virtualInbound.json", "lds.json"]
                     for key in ("shop.catalog-a", "shop.frontend-1")}
    # a new replica: its service's endpoints file only (istiod's EDS push), the cluster stays as it is
    scaled = [*objects, pod("catalog-c", f"{block}4", {"app": "catalog", "version": "v2"})]
    assert plane.sync(scaled) == {"shop.catalog-a": [catalog], "shop.frontend-1": [catalog]}
    endpoints = json.loads((tmp_path / "shop.frontend-1" / catalog).read_text())["resources"][0]
    assert len(endpoints["endpoints"][0]["lb_endpoints"]) == 3
    canary = istio("VirtualService", "catalog", {"hosts": ["catalog"], "http": [
        {"route": [{"destination": {"host": "catalog", "subset": "v2"}}]}]})
    assert plane.sync([*scaled, canary]) == {"shop.catalog-a": ["rds-virtualOutbound.json"],
                                              "shop.frontend-1": ["rds-virtualOutbound.json"]}
    routes = json.loads((tmp_path / "shop.frontend-1" / "rds-virtualOutbound.json").read_text())
    assert routes["resources"][0]["virtual_hosts"][0]["routes"][0]["route"]["cluster"] == \
        "outbound|8080|v2|catalog.shop.svc.cluster.local"

    envoy = Envoy(plane.bootstrap(front, AdminAddress(front.ip, free_port(front.ip))), tmp_path / "envoy.log")
    with envoy:
        resp = requests.get("http://catalog:8080/", proxies={"http": f"http://{front.ip}:{ports['outbound']}"},
                            timeout=10)
        assert resp.status_code == 503  # the v2 subset has no DestinationRule: NC
        assert envoy.stats()[f"http.outbound_0.0.0.0_{ports['outbound']}.no_cluster"] == 1

    assert plane.sync([o for o in objects if o["metadata"]["name"] != "catalog-a"]).keys() == {"shop.frontend-1"}
    assert not (tmp_path / "shop.catalog-a").exists()
