"""The registry fixtures (a running lab registry) for the builder's push tests."""

from ..registry.conftest import RunningRegistry, registry

__all__ = ["RunningRegistry", "registry"]
