"""The sim's istiod: from the API server's objects to every sidecar's xDS files.

``sync(objects)`` translates the configuration of each meshed pod (a pod with an ``istio-proxy`` container and
an IP) and pushes it to that sidecar's own directory (``<root>/<namespace>.<pod>``), which its Envoy watches;
``bootstrap`` writes the file its agent starts Envoy with. Directories of pods that are gone are removed. Only the
files whose content changed are rewritten, so an unrelated change does not touch a sidecar.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..core.files import write_atomic
from .identity import ProxyIdentity
from .translate import Mesh, ProxyOptions, translate
from .translate.inputs import SIDECAR_CONTAINER
from .translate.workloads import proxy_identity
from .xds import AdminAddress, FileDelivery, bootstrap


def meshed_pods(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods that have a sidecar and an IP (not finished, not being deleted)."""
    return [o for o in objects if o.get("kind") == "Pod" and (o.get("status") or {}).get("podIP")
            and not (o.get("metadata") or {}).get("deletionTimestamp")
            and (o.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and any(c.get("name") == SIDECAR_CONTAINER for c in (o.get("spec") or {}).get("containers") or [])]


class ControlPlane:
    """One xDS directory per sidecar under ``root``; ``options`` gives each sidecar's ProxyOptions."""

    def __init__(self, root: Path, options: Callable[[ProxyIdentity], ProxyOptions] = lambda _: ProxyOptions()
                 ) -> None:
        self.root = root
        self.options = options
        self.deliveries: dict[str, FileDelivery] = {}
        self.warnings: dict[str, list[str]] = {}

    def directory(self, identity: ProxyIdentity) -> Path:
        return self.root / f"{identity.namespace}.{identity.pod}"

    def delivery(self, identity: ProxyIdentity) -> FileDelivery:
        key = f"{identity.namespace}.{identity.pod}"
        if key not in self.deliveries:
            self.deliveries[key] = FileDelivery(self.directory(identity))
        return self.deliveries[key]

    def sync(self, objects: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
        """Translate and push for every meshed pod; the files written per ``<namespace>.<pod>``."""
        objects = list(objects)
        mesh = Mesh.from_objects(objects)
        written: dict[str, list[str]] = {}
        live = set()
        for pod in meshed_pods(objects):
            identity = proxy_identity(pod)
            key = f"{identity.namespace}.{identity.pod}"
            live.add(key)
            config = translate(mesh, identity, self.options(identity))
            self.warnings[key] = config.warnings
            written[key] = self.delivery(identity).push(config)
        for key in set(self.deliveries) - live:
            shutil.rmtree(self.deliveries.pop(key).directory, ignore_errors=True)
            self.warnings.pop(key, None)
        return written

    def bootstrap(self, identity: ProxyIdentity, admin: AdminAddress, prometheus_port: int | None = None,
                  istio_stats: bool = False) -> Path:
        """Write the sidecar's Envoy bootstrap (beside its xDS files) and return its path."""
        path = self.directory(identity) / "bootstrap.json"
        write_atomic(path, json.dumps(bootstrap(identity, self.delivery(identity), admin, prometheus_port,
                                                istio_stats), indent=1))
        return path
