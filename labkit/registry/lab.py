"""``lab.registry``: the lab's image registry through the OCI distribution API, the same on every backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.secrets import REGISTRY_PASSWORD, Secrets
from ..core.view import ProductView
from ..endpoints import RegistryEndpoint
from ..images.client import RegistryClient

if TYPE_CHECKING:
    import pandas as pd


class RegistryView(ProductView):
    @property
    def endpoint(self) -> RegistryEndpoint:
        return self.lab.endpoints.get(RegistryEndpoint)

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) a push needs, or None where pushes are anonymous (kind's CNCF registry)."""
        ep = self.endpoint
        return (ep.user, Secrets(self.lab.paths.secrets).get(REGISTRY_PASSWORD)) if ep.user else None

    def client(self) -> RegistryClient:
        """A distribution API client with the lab's push credentials."""
        return RegistryClient(self.endpoint.url, *(self.credentials() or (None, None)))

    def images(self) -> pd.DataFrame:
        """Every repository and tag with its manifest digest (``/v2/_catalog``, ``tags/list``, ``HEAD``)."""
        from .views import image_table

        client = self.client()
        try:
            return image_table(client)
        finally:
            client.close()
