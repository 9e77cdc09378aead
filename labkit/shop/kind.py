"""The demo shop on the kind backend: ``docker build`` of every ``apps/<service>/Dockerfile`` (the context
is ``apps/``, which holds shopkit too) and ``docker push`` to the lab registry; pods pull them by the name
``localhost:5001/shop/<service>:<tag>``."""

from __future__ import annotations

from ..backends.kind.lab import Command, KindLab
from ..backends.kind.parts import KindPart
from ..endpoints import Endpoint, ShopEndpoint
from .images import image


class ShopKind(KindPart):
    def configure(self, lab: KindLab) -> list[Command]:
        tag, push = str(lab.versions["shop"]["tag"]), f"localhost:{lab.ports['registry']}"
        cmds = []
        for app in lab.checkout.apps():
            name = image(app, tag, push)
            cmds += [Command(f"building image {app}",
                             ["docker", "build", "--file", str(lab.checkout.root / "apps" / app / "Dockerfile"),
                              "--tag", name, str(lab.checkout.root / "apps")]),
                     Command(f"pushing image {app}", ["docker", "push", name])]
        return cmds

    def endpoint(self, lab: KindLab) -> Endpoint:
        tag, pull = str(lab.versions["shop"]["tag"]), lab.versions["registry"]["cluster_name"]
        return ShopEndpoint("Shop images", "", {app: image(app, tag, pull) for app in lab.checkout.apps()}, tag)
