"""A small async client of the Kubernetes REST API (aiohttp, JSON over HTTPS with a kubeconfig's server, CA and
token), for the lab's controllers that run beside the cluster, as in-cluster controllers use client-go: Argo CD's
controller and API server, the mesh's istiod. ``informers`` keeps list+watch caches over it."""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml


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

    async def create_or_replace(self, collection: str, obj: dict[str, Any], keep: str = "") -> None:
        """Create ``obj`` under ``collection``, or replace the object of its name (at its resourceVersion); with
        ``keep``, an annotation: leave the object alone when it already has ``obj``'s value of it (a CRD of the
        same release)."""
        path = f"{collection}/{obj['metadata']['name']}"
        try:
            current = await self.get(path)
        except KubeError as err:
            if err.status != 404:
                raise
            await self.request("POST", collection, obj)
            return
        mine, theirs = ((o["metadata"].get("annotations") or {}).get(keep) for o in (obj, current))
        if keep and mine is not None and mine == theirs:
            return
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await self.request("PUT", path, obj)


def core_path(namespace: str, plural: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/{plural}" + (f"/{name}" if name else "")
