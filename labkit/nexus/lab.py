"""``lab.nexus``: the lab's Nexus from a notebook, the same on every backend: its endpoint, the admin password,
the environment that sends ``pip`` through the PyPI group, and a REST client (``/service/rest/v1``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..core.errors import LabError
from ..core.view import ProductView
from ..endpoints import NexusEndpoint
from .lessons import NexusLessons

if TYPE_CHECKING:
    import requests


class NexusRest:
    """Nexus' REST API v1 with the admin's credentials; ``pages`` follows ``continuationToken``."""

    def __init__(self, url: str, auth: tuple[str, str] | None) -> None:
        import requests

        self.api = url.rstrip("/") + "/service/rest/v1"
        self.session = requests.Session()
        self.session.trust_env = False  # the lab is on loopback: never through a proxy
        self.session.auth = auth

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        r = self.session.request(method, self.api + path, timeout=kw.pop("timeout", 30), **kw)
        r.raise_for_status()
        return r

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paged list (``/components``, ``/assets``, ``/search``)."""
        items: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.get(path, **params, **({"continuationToken": token} if token else {}))
            items += page["items"]
            token = page.get("continuationToken")
            if not token:
                return items

    def close(self) -> None:
        self.session.close()


class NexusView(NexusLessons, ProductView):
    @property
    def endpoint(self) -> NexusEndpoint:
        return self.lab.endpoints.get(NexusEndpoint)

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def password(self) -> str:
        """The admin's password (the lab keeps it in a 0600 file, Nexus' ``admin.password`` on the sim)."""
        path = self.endpoint.password_file
        if not path or not Path(path).is_file():
            raise LabError("this lab's Nexus has no admin password file yet: `labkit status` says whether it is up")
        return Path(path).read_text().strip()

    def pip_env(self, repository: str = "pypi-group") -> dict[str, str]:
        """Environment that makes ``pip`` install through ``repository`` (the group by default) and only it."""
        index = self.endpoint.pypi if repository == "pypi-group" else \
            f"{self.url}/repository/{repository}/simple/"
        return {"PIP_INDEX_URL": index, "PIP_EXTRA_INDEX_URL": "", "PIP_FIND_LINKS": "", "PIP_NO_INDEX": "",
                "PIP_TRUSTED_HOST": urlsplit(index).hostname or "", "PIP_CONFIG_FILE": "/dev/null"}

    def rest(self) -> NexusRest:
        """A REST client signed in as the admin."""
        return NexusRest(self.url, (self.endpoint.user, self.password))
