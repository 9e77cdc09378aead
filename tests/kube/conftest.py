"""What the runtime tests share: kubectl's output, and a namespace of their own on the runtime lab."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from labkit.lab import Lab

from ..conftest import kubectl


def k(lab: Lab, *args: str, **kw: Any) -> str:
    """The lab's kubectl; its stdout (a failure raises with kubectl's message)."""
    return kubectl(lab, *args, **kw).stdout


@pytest.fixture
def ns(runtime_lab: Lab, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace named after the test on ``runtime_lab``, deleted afterwards."""
    name = request.node.name.replace("_", "-")[:40].strip("-")
    k(runtime_lab, "create", "namespace", name)
    yield name
    k(runtime_lab, "delete", "namespace", name, "--wait=false")
