"""``python -m labkit.registry.provision``: wait for a Harbor to be healthy, then make it the lab's through its
REST API (the project ``shop``, public; the CI robot ``robot$shop+ci``; ``labkit.images.harbor``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.paths import LabPaths
from ..core.secrets import REGISTRY_PASSWORD, Secrets
from ..images.harbor import SHOP_PROJECT, provision, wait_ready


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.registry.provision", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="the lab home (its secrets hold admin's password)")
    parser.add_argument("--api", required=True, help="Harbor's REST API from this machine (…/api/v2.0)")
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for Harbor to be healthy first")
    args = parser.parse_args(argv)
    secrets = Secrets(LabPaths(args.home).secrets)
    if args.wait:
        wait_ready(args.api, args.wait)
    robot = provision(args.api, secrets.get(REGISTRY_PASSWORD), secrets)
    print(f"Harbor at {args.api} is provisioned: project {SHOP_PROJECT} (public), robot account {robot.name}")


if __name__ == "__main__":
    main()
