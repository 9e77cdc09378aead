"""The kind backend: a kind cluster plus docker compose, the real products.

``up`` renders every product part's files into ``$LABKIT_HOME/kind/``, then runs the ``kind``,
``docker compose``, ``kubectl`` and ``helm`` commands that the README's "Running on real Kubernetes"
section lists, in that order (``up_commands``, ``down_commands``): the parts' ``create`` commands (the
cluster), ``docker compose up`` for their services, then their ``ready`` and ``configure`` commands, in
``labkit.products`` order. The templates come from ``manifests/kind/`` and ``compose/`` of the checkout
labkit is installed from (``pip install -e .``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ...core.checkout import Checkout
from ...core.errors import LabError
from ...core.files import read_json, write_atomic, write_json
from ...endpoints import Endpoint, LabEndpoints
from ...products import PRODUCTS, Product, endpoint_types, product
from ..base import Backend, ProductStatus, Progress
from .lab import Command, KindLab, load, profile_modules

QUERIES = [Command("checking the Docker engine", ["docker", "info", "--format", "{{.ServerVersion}}"], True),
           Command("looking for the cluster", ["kind", "get", "clusters"], True)]


def modules(lab: KindLab) -> tuple[list[Product], list[Product]]:
    """The products of the lab's profile the kind backend runs, and the planned ones it skips."""
    names = profile_modules(lab.versions, lab.profile)
    chosen = [p for p in PRODUCTS if p.name in names]
    return [p for p in chosen if p.kind_part], [p for p in chosen if not p.kind_part]


def endpoint_of(lab: KindLab, name: str) -> Endpoint | None:
    """Product ``name``'s endpoint when the lab's profile runs it (a product's kind part finds another's this way,
    as the sim's components find each other in ``Context.endpoints``)."""
    found = next((p for p in modules(lab)[0] if p.name == name and p.kind_part), None)
    return found.kind_part.endpoint(lab) if found and found.kind_part else None


def render(lab: KindLab) -> list[Path]:
    """Write every file the kind lab uses into ``$LABKIT_HOME/kind``; returns their paths."""
    files: dict[Path, str] = {}
    for p in PRODUCTS:
        if p.kind_part:
            files.update(p.kind_part.files(lab))
    files[lab.compose_env] = "".join(f'{k}="{val}"\n' for k, val in {
        "LABKIT_CLUSTER": lab.cluster, "LABKIT_KIND_DIR": lab.dir,
        **{f"LABKIT_{name.upper()}_IMAGE": image for name, image in lab.versions["images"].items()},
        **{f"LABKIT_{name.upper()}_PORT": port for name, port in lab.ports.items()},
    }.items())
    for path, text in files.items():
        write_atomic(path, text)
    return list(files)


def up_commands(lab: KindLab, cluster_exists: bool) -> list[Command]:
    """What ``up`` runs after :data:`QUERIES`, in order (the cluster is created only when missing)."""
    active, _ = modules(lab)
    parts = [p.kind_part for p in active if p.kind_part]
    profiles = tuple(sorted({part.compose_profile for part in parts if part.compose_profile}))
    return [*(c for part in parts for c in part.create(lab, cluster_exists)),
            Command("starting the compose services (" + ", ".join(s for part in parts for s in part.compose_services)
                    + ")", lab.compose("up", "--detach", "--wait", profiles=profiles)),
            *(c for part in parts for c in part.ready(lab)),
            *(c for part in parts for c in part.configure(lab))]


def down_commands(lab: KindLab, cluster_exists: bool) -> list[Command]:
    """What ``down`` runs after ``kind get clusters``."""
    parts = [p.kind_part for p in PRODUCTS if p.kind_part]
    return [Command("removing the compose services", lab.compose("down", "--volumes", "--remove-orphans")),
            *(c for part in parts for c in part.destroy(lab, cluster_exists))]


class KindBackend(Backend):
    name = "kind"

    def _lab(self) -> KindLab:
        return load(self.paths, Checkout.find())

    def _clusters(self, lab: KindLab) -> list[str]:
        return lab.run(QUERIES[1].argv, timeout=60).split()

    def _endpoints(self, lab: KindLab, ready: bool) -> LabEndpoints:
        active, planned = modules(lab)
        products = {p.name: ep for p in active if p.kind_part and (ep := p.kind_part.endpoint(lab))}
        return LabEndpoints("kind", lab.kubeconfig, products, {
            "ready": ready, "cluster": lab.cluster, "profile": lab.profile, "nodes": lab.node_containers,
            "modules": {**{p.name: "running" for p in active}, **{p.name: "planned" for p in planned}}})

    def up(self, progress: Progress, jupyter: bool | None = None) -> LabEndpoints:
        """Create (or reuse) the kind cluster and the compose services, wait for the nodes, write endpoints."""
        self.paths.ensure()
        lab = self._lab()
        progress(f"writing the lab files to {lab.dir} (profile {lab.profile})")
        render(lab)
        progress(QUERIES[0].title)
        lab.run(QUERIES[0].argv, timeout=60)
        exists = lab.cluster in self._clusters(lab)
        if exists:
            progress(f"kind cluster {lab.cluster} exists, reusing it")
        # from here on this home is a kind lab, not ready yet: `labkit down` cleans up after a failed up
        write_json(self.paths.endpoints, self._endpoints(lab, ready=False).to_json())
        for cmd in up_commands(lab, exists):
            progress(cmd.title)
            lab.run(cmd.argv)
        for p in modules(lab)[1]:
            progress(f"{p.name}: not part of the kind backend yet (chapter {p.chapter})")
        ep = self._endpoints(lab, ready=True)
        write_json(self.paths.endpoints, ep.to_json())
        return ep

    def down(self, progress: Progress) -> bool:
        """Remove the compose services, the cluster and the rendered files; True if the cluster existed."""
        lab = self._lab()
        render(lab)  # compose needs its env file to read compose.yaml
        try:
            exists = lab.cluster in self._clusters(lab)
        except LabError as err:  # no kind: still remove the compose project
            progress(str(err))
            exists = False
        failures = []
        for cmd in down_commands(lab, exists):
            progress(cmd.title)
            try:
                lab.run(cmd.argv)
            except LabError as err:
                failures.append(str(err))
        was_up = bool(exists) or self.paths.endpoints.exists()
        self.paths.endpoints.unlink(missing_ok=True)
        self.paths.kubeconfig.unlink(missing_ok=True)
        shutil.rmtree(lab.dir, ignore_errors=True)
        if failures:
            raise LabError("\n".join(failures))
        return was_up

    def endpoints(self) -> LabEndpoints | None:
        """The endpoints when this home's kind lab is up (a finished ``up`` and a cluster kind lists)."""
        data = read_json(self.paths.endpoints)
        if not data or data.get("backend") != "kind" or not data.get("ready"):
            return None
        try:
            listed = data.get("cluster") in self._clusters(self._lab())
        except LabError:
            return None
        return LabEndpoints.from_json(data, endpoint_types()) if listed else None

    def status(self) -> list[ProductStatus]:
        """One row per product, checked through its real protocol (Kubernetes API, HTTP)."""
        data = read_json(self.paths.endpoints)
        if not data:
            return []
        lab, ep = self._lab(), LabEndpoints.from_json(data, endpoint_types())
        rows = []
        for name, endpoint in ep.products.items():
            part = product(name).kind_part
            ok, detail = part.health(lab, endpoint) if part else (True, "")
            rows.append(ProductStatus(name, endpoint.title, endpoint.url, ok, detail))
        return rows

    def action(self, product_name: str, operation: str, **args: Any) -> Any:
        lab = self._lab()
        part = product(product_name).kind_part
        fn = part.actions(lab).get(operation) if part else None
        if fn is None:
            raise LabError(f"the kind backend has no operation {operation!r} for {product_name!r}")
        try:
            return fn(**args)
        except TypeError as err:
            raise LabError(f"{product_name} {operation}: {err}") from None
