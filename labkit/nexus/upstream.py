"""Where the proxies fetch from: by default the index pip on this machine is configured with (read from pip's own
configuration) and Maven Central (or a configured remote); offline, a stand-in upstream served from the lab's
wheelhouse and a small Maven fixture, which the component labels as the stand-in, never silently."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from ..core.http import Listeners
from .simple import Link as SimpleLink
from .simple import normalize, parse_filename, render_project, render_root

PYPI_DEFAULT = "https://pypi.org/simple"  # pip's own default index
MAVEN_CENTRAL = "https://repo1.maven.org/maven2/"
FIXTURE = Path(__file__).parent / "fixture" / "maven2"
CHECKSUMS = ("sha1", "md5", "sha256", "sha512")
TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Upstream:
    """The remotes the lab's proxy repositories are created with, and where that choice came from."""

    pypi: str  # a pypi proxy's remoteUrl: the index's base, Nexus appends ``simple/<name>/``
    maven: str
    source: str
    pypi_stand_in: bool = False  # the stand-in serves this format
    maven_stand_in: bool = False

    @property
    def stand_in(self) -> bool:
        """The stand-in serves at least one format."""
        return self.pypi_stand_in or self.maven_stand_in

    @classmethod
    def standing_in(cls, stand_in: StandIn, why: str) -> Upstream:
        """Both formats from the stand-in."""
        return cls(stand_in.pypi_url, stand_in.maven_url, f"stand-in: {why}", True, True)


def pip_configuration() -> dict[str, str]:
    """pip's configuration as ``pip config list`` shows it (``global.index-url`` and friends)."""
    try:
        from pip._internal.configuration import Configuration

        config = Configuration(isolated=False)
        config.load()
        values: dict[str, str] = {}
        for key, value in config.items():  # recent pip: per file, in pip's order (later files win)
            values.update({k: str(v) for k, v in value.items()} if isinstance(value, dict) else {key: str(value)})
        return values
    except Exception:  # pip's internals moved: ask pip itself
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                             timeout=30, check=False).stdout
        values = {}
        for line in out.splitlines():
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
        return values


def pip_index(config: dict[str, str] | None = None, env: dict[str, str] | None = None) -> str | None:
    """The index pip installs from on this machine (None: ``no-index``), as pip picks it: the environment, then
    the configuration's install and global sections, else PyPI."""
    env = os.environ if env is None else env
    config = pip_configuration() if config is None else config
    if env.get("PIP_NO_INDEX", "").lower() in TRUE:
        return None
    for key in (":env:.no-index", "install.no-index", "global.no-index"):
        if config.get(key, "").lower() in TRUE:
            return None
    if env.get("PIP_INDEX_URL"):
        return env["PIP_INDEX_URL"]
    for key in (":env:.index-url", "install.index-url", "global.index-url"):
        if config.get(key):
            return config[key]
    return PYPI_DEFAULT


def remote_base(index_url: str) -> str:
    """A simple index URL as a Nexus pypi proxy's remote: ``https://pypi.org/simple`` -> ``https://pypi.org/``."""
    base = index_url.rstrip("/")
    return (base.removesuffix("/simple") if base.endswith("/simple") else base) + "/"


def unreachable(url: str, timeout: float = 3.0) -> str | None:
    """Why ``url`` cannot be reached from this machine (through its proxy settings, as pip would), or None when it
    answers anything at all (even an error status: the remote is there)."""
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "labkit-nexus/probe"})
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except (OSError, ValueError) as err:
        return str(getattr(err, "reason", err))


def choose(settings: dict[str, Any], stand_in: StandIn,
           probe: Callable[[str], str | None] = unreachable) -> Upstream:
    """The lab's upstream: ``settings`` (``nexus_offline``/``offline``, ``nexus_pypi_index``,
    ``nexus_maven_remote``) and ``$LABKIT_OFFLINE`` first, then pip's configuration; the stand-in when the lab is
    offline or pip has no HTTP index; per format, the stand-in when its remote does not answer ``probe`` (a machine
    without internet starts its lab, and builds the shop, from the stand-in rather than from a proxy that cannot
    fetch), saying so in ``source``."""
    maven = settings.get("nexus_maven_remote") or os.environ.get("LABKIT_NEXUS_MAVEN_REMOTE") or MAVEN_CENTRAL
    offline = bool(settings.get("nexus_offline") or settings.get("offline")) or \
        os.environ.get("LABKIT_OFFLINE", "").lower() in TRUE
    if offline:
        return Upstream.standing_in(stand_in, "the lab is offline")
    configured = settings.get("nexus_pypi_index") or os.environ.get("LABKIT_NEXUS_PYPI_INDEX")
    index, source = (configured, "the lab's settings") if configured else (pip_index(), "pip's configuration")
    if index is None or not index.startswith(("http://", "https://")):
        why = "pip has no index (no-index)" if index is None else f"pip's index {index} is not served over HTTP"
        return Upstream.standing_in(stand_in, why)
    with ThreadPoolExecutor(2) as pool:  # both at once: a machine without a network waits one timeout, not two
        pypi_problem, maven_problem = pool.map(probe, (index, maven))
    if pypi_problem and maven_problem:
        return Upstream.standing_in(stand_in, f"{index} is not reachable from this machine ({pypi_problem}); "
                                              f"{maven} is not reachable either ({maven_problem})")
    if pypi_problem:
        return Upstream(stand_in.pypi_url, maven, f"PyPI from the stand-in: {index} is not reachable from this "
                                                  f"machine ({pypi_problem}); Maven from {maven}", pypi_stand_in=True)
    if maven_problem:
        return Upstream(remote_base(index), stand_in.maven_url,
                        f"{index} ({source}); Maven from the stand-in: {maven} is not reachable from this machine "
                        f"({maven_problem})", maven_stand_in=True)
    return Upstream(remote_base(index), maven, f"{index} ({source})")


class StandIn:
    """A small PyPI simple index of the wheelhouse and a Maven 2 repository of the fixture, on loopback, counting
    the requests it answers (the proof that a proxy fetched a file once)."""

    def __init__(self, wheelhouse: Path, address: tuple[str, int], maven_root: Path = FIXTURE) -> None:
        self.wheelhouse, self.maven_root, self.address = wheelhouse, maven_root, address
        self.requests: Counter[str] = Counter()
        self._digests: dict[tuple[str, float], str] = {}
        self.listeners: Listeners | None = None

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    @property
    def pypi_url(self) -> str:
        return self.url + "/"

    @property
    def maven_url(self) -> str:
        return self.url + "/maven2/"

    @property
    def running(self) -> bool:
        return self.listeners is not None

    async def start(self) -> None:
        if self.listeners is not None:
            return
        app = web.Application()
        app.router.add_get("/_stand-in/requests", self._count)
        app.router.add_get("/simple/", self._root)
        app.router.add_get("/simple/{project}/", self._project)
        app.router.add_get("/files/{filename}", self._file)
        app.router.add_get("/maven2/{path:.+}", self._maven)
        self.listeners = Listeners(app, [self.address])
        await self.listeners.start()

    async def stop(self) -> None:
        if self.listeners is not None:
            await self.listeners.stop()
            self.listeners = None

    def _counted(self, request: web.Request) -> None:
        self.requests[request.path] += 1

    def _wheels(self) -> dict[str, list[Path]]:
        projects: dict[str, list[Path]] = {}
        for path in sorted(self.wheelhouse.glob("*")) if self.wheelhouse.is_dir() else []:
            parsed = parse_filename(path.name)
            if parsed is not None:
                projects.setdefault(parsed[0], []).append(path)
        return projects

    def _sha256(self, path: Path) -> str:
        key = (str(path), path.stat().st_mtime)
        if key not in self._digests:
            with path.open("rb") as f:
                self._digests[key] = hashlib.file_digest(f, "sha256").hexdigest()
        return self._digests[key]

    async def _count(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.requests))

    async def _root(self, request: web.Request) -> web.Response:
        self._counted(request)
        body, content_type = render_root(sorted(self._wheels()), as_json=False)
        return web.Response(text=body, content_type=content_type.split(";")[0])

    async def _project(self, request: web.Request) -> web.Response:
        self._counted(request)
        files = self._wheels().get(normalize(request.match_info["project"]))
        if not files:
            return web.Response(status=404, text="Not Found")
        links = [SimpleLink(p.name, f"../../files/{p.name}", self._sha256(p)) for p in files]
        body, content_type = render_project(normalize(request.match_info["project"]), links, as_json=False)
        return web.Response(text=body, content_type=content_type.split(";")[0])

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self._counted(request)
        path = self.wheelhouse / request.match_info["filename"]
        if "/" in request.match_info["filename"] or not path.is_file():
            return web.Response(status=404, text="Not Found")
        return web.FileResponse(path)

    async def _maven(self, request: web.Request) -> web.StreamResponse:
        self._counted(request)
        relative = request.match_info["path"]
        base, _, ext = relative.rpartition(".")
        target = (self.maven_root / (base if ext in CHECKSUMS else relative)).resolve()
        if not target.is_relative_to(self.maven_root.resolve()) or not target.is_file():
            return web.Response(status=404, text="Not Found")
        if ext in CHECKSUMS:
            with target.open("rb") as f:
                return web.Response(text=hashlib.file_digest(f, ext).hexdigest(), content_type="text/plain")
        return web.FileResponse(target)


def request_counts(stand_in_url: str) -> dict[str, int]:
    """What a stand-in upstream (maybe in another process) has answered, path -> requests."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(stand_in_url.rstrip("/") + "/_stand-in/requests", timeout=10) as r:
        return json.loads(r.read())
