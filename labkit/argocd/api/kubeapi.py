"""The Kubernetes API as Argo CD's API server uses it: JSON over HTTPS with the kubeconfig's server, CA and token
(the in-cluster service account's, or the lab's admin), async (aiohttp), so the API server never blocks its loop."""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

GROUP = "argoproj.io"
VERSION = "v1alpha1"


@dataclass
class KubeError(Exception):
    """A non-2xx answer of the Kubernetes API: its HTTP status and the Status object."""

    status: int
    body: dict[str, Any]

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", ""))

    def __str__(self) -> str:
        return str(self.body.get("message", f"HTTP {self.status}"))


class KubeApi:
    """A small async client of the Kubernetes REST API from a kubeconfig file (its current context)."""

    def __init__(self, kubeconfig: str | Path) -> None:
        cfg = yaml.safe_load(Path(kubeconfig).read_text()) or {}
        context_name = cfg.get("current-context")
        context = next(c["context"] for c in cfg["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == context["user"])
        self.server = cluster["server"].rstrip("/")
        self.ssl: ssl.SSLContext | bool = True
        if self.server.startswith("https"):
            ca = cluster.get("certificate-authority-data")
            self.ssl = ssl.create_default_context(cadata=base64.b64decode(ca).decode() if ca else None)
            if cluster.get("insecure-skip-tls-verify"):
                self.ssl.check_hostname, self.ssl.verify_mode = False, ssl.CERT_NONE
        self.headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self.headers, trust_env=False,
                                                  timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None,
                      content_type: str = "application/json") -> dict[str, Any]:
        """``method path`` with a JSON body; the decoded answer, or KubeError."""
        import json

        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        async with self.session().request(method, self.server + path, data=data, params=params, headers=headers,
                                          ssl=self.ssl) as resp:
            text = await resp.text()
            answer = json.loads(text) if text.strip().startswith("{") else {"message": text}
            if resp.status >= 300:
                raise KubeError(resp.status, answer)
            return answer

    async def get(self, path: str, **params: str) -> dict[str, Any]:
        return await self.request("GET", path, params=params or None)

    async def exists(self, path: str) -> bool:
        try:
            await self.get(path)
        except KubeError as err:
            if err.status == 404:
                return False
            raise
        return True

    async def ensure(self, collection: str, obj: dict[str, Any]) -> None:
        """Create ``obj`` under ``collection`` unless an object of its name is there."""
        if not await self.exists(f"{collection}/{obj['metadata']['name']}"):
            try:
                await self.request("POST", collection, obj)
            except KubeError as err:
                if err.status != 409:
                    raise

    async def merge_patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self.request("PATCH", path, patch, content_type="application/merge-patch+json")


def apps_path(namespace: str, name: str = "") -> str:
    """The path of the namespace's Applications (or of one)."""
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/applications" + (f"/{name}" if name else "")


def projects_path(namespace: str, name: str = "") -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/appprojects" + (f"/{name}" if name else "")


def core_path(namespace: str, plural: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/{plural}" + (f"/{name}" if name else "")
