"""The proxy engine both formats share, as Nexus' proxy facet behaves.

Content is fetched from the remote once and stored; a stored file is re-validated (a conditional GET) once it is
older than ``metadataMaxAge`` (indexes, ``maven-metadata.xml``) or ``contentMaxAge`` (files; -1: never); a 404 is
remembered for ``negativeCache.timeToLive`` minutes; concurrent requests for the same missing file share one
upstream fetch; when the remote fails, the repository is auto-blocked (40 s, doubling up to an hour) and serves
what it has stored, and an uncached file is refused saying why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ..core.network import is_loopback
from .metrics import Metrics
from .store import Asset, NexusStore

FIRST_BLOCK_SECONDS, MAX_BLOCK_SECONDS = 40.0, 3600.0
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=60)
USER_AGENT = "Nexus/3 (labkit simulator)"


class RemoteUnavailable(Exception):
    """The remote cannot be asked (blocked, offline or failing) and the file is not stored."""


@dataclass
class RemoteStatus:
    """How a proxy's remote last answered (Nexus' "Online - Remote Available" and friends)."""

    state: str = "ready"  # ready | available | auto-blocked
    until: float = 0.0
    reason: str = ""
    failures: int = 0


class ProxyEngine:
    """Fetch-once-and-store for proxy repositories; ``clock`` is seconds (tests move it)."""

    def __init__(self, store: NexusStore, metrics: Metrics, clock: Callable[[], float] = time.time) -> None:
        self.store, self.metrics, self.clock = store, metrics, clock
        self.remotes: dict[str, RemoteStatus] = {}
        self.negative: dict[tuple[str, str], float] = {}
        self._flights: dict[tuple[str, str], asyncio.Future[Asset | None]] = {}
        self._sessions: dict[bool, aiohttp.ClientSession] = {}

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    def forget_all(self) -> None:
        self.remotes.clear()
        self.negative.clear()

    def forget(self, repository: str) -> None:
        """A repository was changed or deleted: its negative cache and remote status start over."""
        self.remotes.pop(repository, None)
        self.negative = {k: v for k, v in self.negative.items() if k[0] != repository}

    # -- status ----------------------------------------------------------------------------------
    def status(self, config: dict[str, Any]) -> dict[str, Any]:
        """``{"online", "description", "reason"}`` as Nexus' repository list shows a proxy's remote."""
        if not config.get("online", True):
            return {"online": False, "description": "Offline", "reason": None}
        if config["type"] != "proxy":
            return {"online": True, "description": "Online", "reason": None}
        if config["httpClient"].get("blocked"):
            return {"online": True, "description": "Online - Remote Manually Blocked and Unavailable",
                    "reason": "Remote manually blocked"}
        remote = self.remotes.get(config["name"], RemoteStatus())
        if remote.state == "auto-blocked":
            return {"online": True, "description": "Online - Remote Automatically Blocked and Unavailable",
                    "reason": remote.reason}
        if remote.state == "available":
            return {"online": True, "description": "Online - Remote Available", "reason": None}
        return {"online": True, "description": "Online - Ready to Connect", "reason": None}

    def _blocked(self, config: dict[str, Any]) -> str | None:
        """Why the remote must not be asked now, or None."""
        if not config.get("online", True):
            return "the repository is offline"
        if config["httpClient"].get("blocked"):
            return "the remote is manually blocked"
        remote = self.remotes.get(config["name"])
        if remote is not None and remote.state == "auto-blocked" and self.clock() < remote.until:
            return f"the remote is auto-blocked and unavailable ({remote.reason})"
        return None

    def _failed(self, config: dict[str, Any], reason: str) -> None:
        remote = self.remotes.setdefault(config["name"], RemoteStatus())
        remote.failures += 1
        remote.reason = reason
        if config["httpClient"].get("autoBlock", True):
            remote.state = "auto-blocked"
            remote.until = self.clock() + min(FIRST_BLOCK_SECONDS * 2 ** (remote.failures - 1), MAX_BLOCK_SECONDS)

    def _answered(self, config: dict[str, Any]) -> None:
        self.remotes[config["name"]] = RemoteStatus("available")

    # -- content -----------------------------------------------------------------------------------
    def _fresh(self, config: dict[str, Any], asset: Asset, metadata: bool) -> bool:
        minutes = config["proxy"]["metadataMaxAge" if metadata else "contentMaxAge"]
        return minutes < 0 or self.clock() - asset.verified < minutes * 60

    async def get(self, config: dict[str, Any], path: str, url: str, *, metadata: bool,
                  component: tuple[str, str, str] | None = None) -> Asset | None:
        """``path`` of proxy repository ``config`` (from ``url`` upstream when needed); None when the remote has no
        such file. Raises RemoteUnavailable when the file is not stored and the remote cannot be asked."""
        name = config["name"]
        cached = self.store.asset(name, path)
        if cached is not None and self._fresh(config, cached, metadata):
            self.metrics.add("cache_hits", name)
            return cached
        blocked = self._blocked(config)
        if blocked is not None:
            if cached is not None:
                self.metrics.add("cache_hits", name)
                return cached
            raise RemoteUnavailable(f"Repository {name}: {blocked}; {path} is not stored in the repository "
                                    f"(remote {config['proxy']['remoteUrl']})")
        key = (name, path)
        if cached is None and self.negative.get(key, 0) > self.clock():
            self.metrics.add("negative_cache_hits", name)
            return None
        flight = self._flights.get(key)
        if flight is None:
            self.metrics.add("cache_misses", name)
            flight = asyncio.ensure_future(self._fetch(config, path, url, cached, component))
            self._flights[key] = flight
            flight.add_done_callback(lambda _: self._flights.pop(key, None))
        return await asyncio.shield(flight)

    async def _session(self, url: str) -> aiohttp.ClientSession:
        """A client session; the machine's HTTP proxy settings apply to remotes that are not on loopback."""
        trust_env = not is_loopback(urlsplit(url).hostname or "")
        if trust_env not in self._sessions:
            self._sessions[trust_env] = aiohttp.ClientSession(timeout=TIMEOUT, trust_env=trust_env,
                                                              headers={"User-Agent": USER_AGENT})
        return self._sessions[trust_env]

    async def _fetch(self, config: dict[str, Any], path: str, url: str, cached: Asset | None,
                     component: tuple[str, str, str] | None) -> Asset | None:
        name = config["name"]
        headers = {}
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        if cached is not None and cached.last_modified:
            headers["If-Modified-Since"] = cached.last_modified
        if path.startswith("simple/"):
            headers["Accept"] = "application/vnd.pypi.simple.v1+json, text/html;q=0.2"
        session = await self._session(url)
        self.metrics.add("upstream_requests", name)
        try:
            async with session.get(url, headers=headers) as resp:
                if resp.status == 304 and cached is not None:
                    self._answered(config)
                    return self.store.verified(cached, self.clock())
                if resp.status == 200:
                    stored = await self.store.blobs.write(self._counted(name, resp.content.iter_chunked(1 << 16)))
                    self._answered(config)
                    self.negative.pop((name, path), None)
                    return self.store.put_asset(
                        name, path, stored, resp.headers.get("Content-Type", "application/octet-stream"), component,
                        etag=resp.headers.get("ETag"), last_modified=resp.headers.get("Last-Modified"))
                if resp.status >= 500 or resp.status in (401, 403, 407, 429):
                    raise RemoteUnavailable(f"the remote answered HTTP {resp.status} {resp.reason}")
                self._answered(config)
                if config["negativeCache"].get("enabled", True):
                    self.negative[(name, path)] = self.clock() + config["negativeCache"]["timeToLive"] * 60
                return None
        except (TimeoutError, aiohttp.ClientError, OSError, RemoteUnavailable) as err:
            reason = str(err) or type(err).__name__
            self._failed(config, reason)
            if cached is not None:
                return cached
            raise RemoteUnavailable(f"Repository {name}: the remote {config['proxy']['remoteUrl']} is unavailable "
                                    f"({reason}) and {path} is not stored in the repository") from None

    async def _counted(self, repository: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.metrics.add("upstream_bytes", repository, len(chunk))
            yield chunk
