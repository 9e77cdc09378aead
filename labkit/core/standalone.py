"""A component's Context outside the lab daemon: a lab home of its own, for a product run alone
(``python -m labkit.registry``, ``python -m labkit.gitlab``) and for tests that start one component."""

from __future__ import annotations

from pathlib import Path

from .component import Context
from .network import Network
from .paths import LabPaths
from .procs import Supervisor
from .secrets import Secrets
from .tls import LabCA


def standalone_context(home: Path) -> Context:
    """A Context over a lab home of its own (state, secrets, network choices, logs)."""
    paths = LabPaths(home).ensure()
    return Context(paths=paths, network=Network(paths.network, home), secrets=Secrets(paths.secrets),
                   ca=LabCA(paths.tls), supervisor=Supervisor(paths.children, paths.logs))
