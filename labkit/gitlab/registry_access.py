"""The CI/CD variables that let the shop's pipeline push to the lab's Harbor: ``HARBOR_USER`` (the CI robot,
``robot$shop+ci``) and ``HARBOR_PASSWORD`` (its secret, masked). The build job writes kaniko's Docker config from
them, as GitLab's kaniko documentation shows, so a push is made with the robot's rights, not an administrator's.

Both are ``raw``: a robot's name holds ``$``, which GitLab would otherwise expand as a variable reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.secrets import REGISTRY_PASSWORD, Secrets
from ..endpoints import RegistryEndpoint
from ..images.harbor import provision

USER, PASSWORD = "HARBOR_USER", "HARBOR_PASSWORD"


@dataclass(frozen=True)
class Variable:
    key: str
    value: str
    masked: bool
    description: str


def harbor_variables(user: str, secret: str) -> list[Variable]:
    return [Variable(USER, user, False, "the Harbor robot account the shop's pipeline pushes images with"),
            Variable(PASSWORD, secret, True, "its secret (Harbor shows it once; labkit keeps it in the lab)")]


def sim_variables(registry: RegistryEndpoint, secrets: Secrets) -> list[Variable]:
    """The sim's: the robot provisioned through the registry's Harbor API; a registry without one (no ``api``)
    has no robots, and its administrator is who may push there."""
    if registry.api:
        robot = provision(registry.api, secrets.get(REGISTRY_PASSWORD), secrets)
        return harbor_variables(robot.name, robot.secret)
    if registry.user:
        return harbor_variables(registry.user, secrets.get(REGISTRY_PASSWORD))
    return []
