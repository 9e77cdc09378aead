"""The registry fixtures (a running lab registry) for the shop's publishing tests."""

from ..registry.conftest import RunningRegistry, registry

__all__ = ["RunningRegistry", "registry"]
