"""The demo shop on the kind backend: ``docker build`` of every ``apps/<service>/Dockerfile`` (the context
is ``apps/``, which holds shopkit too) and ``docker push`` to the lab registry (Harbor's project ``shop``, with
the Docker configuration the registry part writes: Harbor takes no anonymous pushes); pods pull them by the name
``localhost:5001/shop/<service>:<tag>``. With Nexus in the profile, ``pip install`` in the Dockerfiles goes through
its ``pypi-group`` (``--network host --build-arg PIP_INDEX_URL=…``)."""

from __future__ import annotations

from ..backends.kind.lab import Command, KindLab
from ..backends.kind.parts import KindPart
from ..endpoints import Endpoint, ShopEndpoint
from .images import image


def index_url(lab: KindLab) -> str | None:
    """The lab's Nexus group index when the profile runs Nexus (its endpoint's ``pypi``), else None."""
    from ..backends.kind.backend import endpoint_of  # here: labkit.products imports this module

    return getattr(endpoint_of(lab, "nexus"), "pypi", None) or None


class ShopKind(KindPart):
    def configure(self, lab: KindLab) -> list[Command]:
        tag, push = str(lab.versions["shop"]["tag"]), f"localhost:{lab.ports['registry']}"
        index = index_url(lab)
        # through Nexus: its published port on this machine, which a build reaches on the host's network
        pip = ["--network", "host", "--build-arg", f"PIP_INDEX_URL={index}"] if index else []
        cmds = []
        for app in lab.checkout.apps():
            name = image(app, tag, push)
            cmds += [Command(f"building image {app}" + (" (pip through Nexus)" if index else ""),
                             ["docker", "build", *pip, "--file", str(lab.checkout.root / "apps" / app / "Dockerfile"),
                              "--tag", name, str(lab.checkout.root / "apps")]),
                     Command(f"pushing image {app}",
                             ["docker", "--config", str(lab.docker_config), "push", name])]
        return cmds

    def endpoint(self, lab: KindLab) -> Endpoint:
        tag, pull = str(lab.versions["shop"]["tag"]), lab.versions["registry"]["cluster_name"]
        return ShopEndpoint("Shop images", "", {app: image(app, tag, pull) for app in lab.checkout.apps()}, tag)
