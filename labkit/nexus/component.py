"""Nexus Repository as a lab component: its repositories (``/repository/<name>/…``) and REST API on one
loopback listener, content and metadata under the lab home, the first admin password in ``admin.password``."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from ..core.addresses import NEXUS
from ..core.checkout import Checkout
from ..core.component import Component, Context, Health
from ..core.errors import LabError
from ..core.files import write_atomic
from ..core.http import Credentials, Listeners, api_app
from ..endpoints import NexusEndpoint
from . import repositories as model
from . import rest
from .content import Content
from .errors import REALM, render
from .maven import Maven
from .metrics import Metrics
from .proxy import ProxyEngine
from .pypi import PyPI
from .rest.system import ANONYMOUS
from .store import NexusStore
from .upstream import StandIn, Upstream, choose

ADMIN = "admin"
MAX_UPLOAD = 1024**3  # a hosted upload's multipart body
STAND_IN_PORT = 8082  # beside Nexus' 8081, on its address
ALWAYS_PUBLIC = ("/service/rest/v1/status", "/service/rest/v1/status/writable")
PRIVATE = ("/service/metrics", "/service/rest/v1/security")


class Nexus(Component):
    """The Nexus emulator. ``bind``, ``data_dir`` and ``fresh`` are for the standalone server the kind harness runs
    for ``sonatype/nexus3``: its listener, the folder ``admin.password`` is written to (the container's
    ``/nexus-data``), and a new Nexus' repositories only (Maven ones; the lab creates the PyPI ones by REST)."""

    bind: tuple[str, int] | None = None
    data_dir: Path | None = None
    fresh: bool = False

    async def start(self, ctx: Context) -> None:
        self.ctx = ctx
        state = ctx.state_dir(self.name or "nexus")
        self.store = NexusStore(state)
        self.metrics = Metrics()
        self.engine = ProxyEngine(self.store, self.metrics)
        self.address = self.bind or ctx.network.slot(NEXUS)
        host, port = self.address
        self.base_url = f"http://{host}:{port}"
        self.stand_in = StandIn(_wheelhouse(), ctx.network.listener("nexus-stand-in", host, STAND_IN_PORT))
        self.upstream: Upstream = await asyncio.to_thread(choose, ctx.settings, self.stand_in)
        if self.upstream.stand_in:
            await self.stand_in.start()
        self._seed()
        self.password_file = (self.data_dir or state) / "admin.password"
        self.credentials = Credentials({}, {ADMIN: self._password()}, realm=REALM)
        app = api_app(self.name or "nexus", render_error=render, credentials=self.credentials, public=self._public,
                      max_body=MAX_UPLOAD, logger=ctx.logger(self.name or "nexus"))
        repository = self.store.repository
        Content(self.store, PyPI(self.store, self.engine, repository), Maven(self.store, self.engine, repository),
                self.metrics, repository).install(app)
        rest.install(app, rest.Services(self.store, self.engine, self.metrics, self.base_url, self._change_password))
        self.listeners = Listeners(app, [self.address])
        await self.listeners.start()

    def _password(self) -> str:
        """The first admin password, in ``admin.password`` (mode 0600) as a new Nexus writes it; once changed
        (``PUT /v1/security/users/admin/change-password``) the new one, and the file is gone, as in Nexus."""
        changed = self.store.setting("admin-password")
        if changed is not None:
            self.password_file.unlink(missing_ok=True)
            return str(changed)
        if self.data_dir is not None:
            password = self.password_file.read_text().strip() if self.password_file.is_file() else str(uuid.uuid4())
        else:
            password = self.ctx.secrets.get("nexus-admin-password")
        write_atomic(self.password_file, password, mode=0o600)
        return password

    def _change_password(self, user: str, password: str) -> None:
        self.store.set_setting("admin-password", password)
        self.credentials.users[user] = password
        self.password_file.unlink(missing_ok=True)

    def _public(self, request: web.Request) -> bool:
        """Reads anonymous users may do: status always; content and REST reads while anonymous access is on."""
        if request.path in ALWAYS_PUBLIC:
            return True
        if "Authorization" in request.headers or request.method not in ("GET", "HEAD"):
            return False
        if request.path.startswith(PRIVATE):
            return False
        return bool(self.store.setting(ANONYMOUS, True))

    def _seed(self) -> None:
        """The lab's repositories, created once; proxies still on the upstream they were seeded with follow the lab's
        current choice (the stand-in when it goes offline, pip's index when back)."""
        up = self.upstream
        remotes = {"pypi": up.pypi, "maven2": up.maven}
        seeded = self.store.setting("seeded-remotes")
        if seeded is None:
            configs = [model.proxy("maven-central", "maven2", up.maven),
                       model.group("maven-public", "maven2", ["maven-central"])]
            if not self.fresh:
                configs = [model.proxy("pypi-proxy", "pypi", up.pypi), model.hosted("pypi-hosted", "pypi"),
                           model.group("pypi-group", "pypi", ["pypi-hosted", "pypi-proxy"]), *configs]
            for config in configs:
                self.store.save_repository(config)
        else:
            for config in self.store.repositories():
                fmt = config["format"]
                if config["type"] == "proxy" and config["proxy"]["remoteUrl"] == seeded.get(fmt) != remotes[fmt]:
                    config["proxy"]["remoteUrl"] = remotes[fmt]
                    self.store.save_repository(config)
        self.store.set_setting("seeded-remotes", remotes)

    async def stop(self) -> None:
        await self.listeners.stop()
        await self.stand_in.stop()
        await self.engine.close()
        self.store.close()

    async def reset(self) -> None:
        self.store.wipe()
        self.engine.forget_all()
        self._seed()
        self.credentials.users = {ADMIN: self._password()}

    def endpoint(self) -> NexusEndpoint:
        return NexusEndpoint(self.title or "Nexus", self.base_url,
                             pypi=f"{self.base_url}/repository/pypi-group/simple/",
                             maven=f"{self.base_url}/repository/maven-central/", user=ADMIN,
                             password_file=str(self.password_file))

    async def health(self) -> Health:
        blocked = [c["name"] for c in self.store.repositories()
                   if "Blocked" in self.engine.status(c)["description"]]
        upstream = self.upstream.source
        if self.upstream.stand_in:
            serves = " and ".join(part for part, on in (("the lab's wheelhouse", self.upstream.pypi_stand_in),
                                                        ("a Maven fixture", self.upstream.maven_stand_in)) if on)
            upstream = (f"STAND-IN upstream ({serves} at {self.stand_in.url}"
                        f"{'' if self.stand_in.running else ', stopped'}) - {upstream}")
        detail = f"{len(self.store.repositories())} repositories; upstream: {upstream}"
        if blocked:
            detail += f"; remote blocked: {', '.join(blocked)}"
        return Health(True, detail)

    def actions(self) -> dict[str, Any]:
        return {"upstream-off": lambda: self.switch_upstream(False), "upstream-on": lambda: self.switch_upstream(True),
                "stand_in": self.switch_stand_in, "upstream": self.describe_upstream}

    async def switch_upstream(self, on: bool) -> dict[str, Any]:
        """The outage lesson (the kind backend's ``upstream-off``/``upstream-on``): the stand-in upstream is stopped
        or started; a proxy on a real upstream is blocked or unblocked (``httpClient.blocked``)."""
        for config in self.store.repositories():
            if config["type"] != "proxy":
                continue
            from_stand_in = config["proxy"]["remoteUrl"].startswith(self.stand_in.url)
            if not from_stand_in and config["httpClient"].get("blocked") is on:
                config["httpClient"]["blocked"] = not on
                self.store.save_repository(config)
            if on:
                self.engine.forget(config["name"])  # reachable again: no waiting out the auto-block
        if self.upstream.stand_in:
            await (self.stand_in.start() if on else self.stand_in.stop())
        return await self.describe_upstream()

    async def switch_stand_in(self, running: bool) -> dict[str, Any]:
        """Start or stop the stand-in upstream (only where the lab uses it)."""
        if not self.upstream.stand_in:
            raise LabError(f"this lab's proxies use {self.upstream.source}, not the stand-in: block the remote "
                           "through the REST API (httpClient.blocked) instead")
        return await self.switch_upstream(running)

    async def describe_upstream(self) -> dict[str, Any]:
        return {"pypi": self.upstream.pypi, "maven": self.upstream.maven, "source": self.upstream.source,
                "stand_in": self.upstream.stand_in, "pypi_stand_in": self.upstream.pypi_stand_in,
                "maven_stand_in": self.upstream.maven_stand_in, "stand_in_running": self.stand_in.running,
                "stand_in_url": self.stand_in.url}


def _wheelhouse() -> Path:
    try:
        return Checkout.find().wheelhouse
    except LabError:
        return Path("/nonexistent-wheelhouse")
