"""File-based xDS and Envoy's inotify budget: a service cluster without endpoints is sent whole in CDS (no file
subscription of its own), and becomes an EDS cluster with an endpoints file once a ready pod backs it."""

from __future__ import annotations

import json
from pathlib import Path

from labkit.mesh.controlplane import ControlPlane
from labkit.mesh.translate import ProxyOptions
from labkit.mesh.translate.workloads import proxy_identity

from .sidecars import address_block
from .test_translate import pod, service

CATALOG = "outbound|8080||catalog.shop.svc.cluster.local"


def _clusters(directory: Path) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads((directory / "cds.json").read_text())["resources"]}


def test_an_empty_service_cluster_is_static_until_it_has_endpoints(tmp_path: Path) -> None:
    block = address_block()
    front = pod("frontend-1", f"{block}1", {"app": "frontend"}, meshed=True)
    plane = ControlPlane(tmp_path, lambda who: ProxyOptions())
    delivery = plane.delivery(proxy_identity(front))
    plane.sync([service("catalog"), front])
    empty = _clusters(delivery.directory)[CATALOG]
    assert empty["type"] == "STATIC" and "eds_cluster_config" not in empty
    assert not delivery.file("eds", CATALOG).exists()
    written = plane.sync([service("catalog"), front, pod("catalog-a", f"{block}2", {"app": "catalog"})])
    assert delivery.file("eds", CATALOG).name in written["shop.frontend-1"]
    backed = _clusters(delivery.directory)[CATALOG]
    assert backed["type"] == "EDS" and backed["eds_cluster_config"]["service_name"] == CATALOG
    lb = json.loads(delivery.file("eds", CATALOG).read_text())["resources"][0]["endpoints"][0]["lb_endpoints"]
    assert len(lb) == 1
