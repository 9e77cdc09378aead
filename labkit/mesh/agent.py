"""The sidecar's agent (Istio's ``pilot-agent``): it runs the pod's Envoy and serves the sidecar's merged metrics.

Given a :class:`ProxyIdentity`, the bootstrap the control plane wrote and the access log path that bootstrap names,
the agent starts a real Envoy (``envoy.Envoy``: one worker, access log lines flushed every 100 ms), follows its
access log into Istio's standard metrics (:mod:`labkit.mesh.telemetry`) and serves, on the pod's IP and port 15020
as pilot-agent does:

* ``/stats/prometheus``: Envoy's own ``/stats/prometheus`` (read from its admin), the app's own metrics (where the
  injector's ``ISTIO_PROMETHEUS_ANNOTATIONS`` says they were) and the ``istio_*`` series: Istio's metrics merge, the
  target the injected ``prometheus.io/*`` annotations point Prometheus at;
* ``/healthz/ready``: 200 once Envoy's admin says it is ``LIVE``, 503 with Envoy's state before that.

In Istio the stats filter inside Envoy counts requests and pilot-agent only merges; the sim counts from the access
log beside Envoy (the lab's Envoy build has no Istio filters). The app's metrics are read as text (not OpenMetrics).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ..core.http import Listeners
from .envoy import Envoy
from .identity import ADMIN_PORT, MERGED_METRICS_PORT, ProxyIdentity
from .telemetry import AccessLogTail, IstioMetrics

log = logging.getLogger("labkit.mesh.agent")
TAIL_SECONDS = 0.2  # how often the access log is read (Envoy writes its lines every 100 ms: envoy.Envoy)
MAX_LOG_BYTES = 16 << 20  # the access log is rotated (one old file kept, ``<name>.1``) beyond this size
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def app_metrics_url(identity: ProxyIdentity, scrape: Mapping[str, str] | None) -> str | None:
    """Where the app's own metrics are, from the ``prometheus.io`` settings the injector moved aside
    (``ISTIO_PROMETHEUS_ANNOTATIONS``: ``scrape``, ``port``, ``path``); None without a port or with scrape off."""
    if not scrape or not scrape.get("port") or scrape.get("scrape", "true").lower() in ("false", "0", "f"):
        return None
    path = scrape.get("path") or "/metrics"
    return f"http://{identity.ip}:{scrape['port']}{path if path.startswith('/') else '/' + path}"


class Agent:
    """One pod's pilot-agent: its Envoy, the metrics from its access log, and the :15020 listener."""

    def __init__(self, identity: ProxyIdentity, bootstrap: Path, access_log: Path, log_file: Path,
                 listen: tuple[str, int] | None = None, max_log_bytes: int = MAX_LOG_BYTES,
                 app_scrape: Mapping[str, str] | None = None) -> None:
        self.identity, self.bootstrap, self.access_log, self.log_file = identity, bootstrap, access_log, log_file
        self.max_log_bytes = max_log_bytes
        self.app_metrics = app_metrics_url(identity, app_scrape)
        self.listen = listen or (identity.ip, MERGED_METRICS_PORT)
        # Envoy's graceful drain outlasts the agent's (Istio runs it with its drain duration): the inbound listener
        # stays open, answering with ``Connection: close``, until the agent stops Envoy
        self.envoy = Envoy(bootstrap, log_file, drain_time_s=math.ceil(drain_seconds()) + 1)
        self.admin = self.envoy.admin
        self.metrics = IstioMetrics(identity)
        self.tail = AccessLogTail(access_log)
        self.listeners: Listeners | None = None
        self.session: aiohttp.ClientSession | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.listen[0]}:{self.listen[1]}"

    async def start(self) -> None:
        """Start Envoy (waiting until it is ``LIVE``), then follow its access log and serve :15020."""
        await asyncio.to_thread(self.envoy.start)
        self.session = aiohttp.ClientSession(trust_env=False, timeout=aiohttp.ClientTimeout(total=5))
        app = web.Application()
        app.router.add_get("/stats/prometheus", self.prometheus)
        app.router.add_get("/healthz/ready", self.ready)
        self.listeners = Listeners(app, [self.listen])
        await self.listeners.start()
        self.task = asyncio.create_task(self.follow(), name=f"access log of {self.identity.pod}")

    async def drain(self, seconds: float) -> None:
        """What pilot-agent does on SIGTERM: Envoy's inbound listeners drain gracefully (``POST
        /drain_listeners?inboundonly&graceful``: responses say ``Connection: close``, requests in flight finish) for
        ``seconds`` (``terminationDrainDuration``) while the pod's endpoint leaves every other sidecar's EDS, then the
        agent stops Envoy."""
        if self.session is not None:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with self.session.post(f"{self.admin}/drain_listeners?inboundonly&graceful"):
                    pass
        await asyncio.sleep(seconds)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.listeners is not None:
            await self.listeners.stop()
        if self.session is not None:
            await self.session.close()
        await asyncio.to_thread(self.envoy.stop)
        self.tail.close()

    def collect(self) -> int:
        """Read what the access log gained into the metrics; how many requests it was."""
        entries = self.tail.read()
        for entry in entries:
            self.metrics.observe(entry)
        return len(entries)

    async def follow(self) -> None:
        while self.envoy.running:
            try:
                self.collect()
                await self.rotate()
            except OSError as exc:
                log.warning("reading %s: %s", self.access_log, exc)
            await asyncio.sleep(TAIL_SECONDS)
        self.collect()
        code = None if self.envoy.proc is None else self.envoy.proc.returncode
        log.error("Envoy exited with code %s", code)

    async def envoy_exited(self) -> None:
        """Returns when Envoy has exited (pilot-agent then exits too, and the kubelet restarts the container)."""
        assert self.task is not None
        await asyncio.shield(self.task)

    async def rotate(self) -> bool:
        """Past ``max_log_bytes`` (and once the tail follows the current file): rename the access log to
        ``<name>.1`` and have Envoy reopen its logs (admin ``/reopen_logs``), as logrotate with a signal would; the
        tail reads the old file to its end before the new one."""
        tail = self.tail.file
        if tail is None or tail.tell() < self.max_log_bytes \
                or os.fstat(tail.fileno()).st_ino != os.stat(self.access_log).st_ino:
            return False
        os.replace(self.access_log, self.access_log.with_name(self.access_log.name + ".1"))
        assert self.session is not None
        async with self.session.post(f"{self.admin}/reopen_logs") as resp:
            if resp.status != 200:
                log.warning("Envoy did not reopen its logs: %s %s", resp.status, await resp.text())
        return True

    async def _admin(self, path: str) -> tuple[int, str]:
        assert self.session is not None
        try:
            async with self.session.get(f"{self.admin}{path}") as resp:
                return resp.status, await resp.text()
        except (TimeoutError, aiohttp.ClientError) as exc:
            return 503, f"Envoy's admin is not reachable: {exc}"

    async def _app(self) -> str:
        """The app's own metrics in the text format, ``""`` when it has none or they cannot be read."""
        if self.app_metrics is None:
            return ""
        assert self.session is not None
        try:
            async with self.session.get(self.app_metrics, headers={"Accept": CONTENT_TYPE}) as resp:
                if resp.status == 200:
                    return (await resp.text()).rstrip("\n") + "\n"
                log.warning("failed scraping application metrics from %s: %s", self.app_metrics, resp.status)
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("failed scraping application metrics from %s: %s", self.app_metrics, exc)
        return ""

    async def prometheus(self, request: web.Request) -> web.Response:
        self.collect()  # a scrape sees every request logged before it
        (status, envoy), app = await asyncio.gather(self._admin("/stats/prometheus"), self._app())
        if status != 200:
            return web.Response(status=503, text=f"failed scraping envoy metrics: {envoy}\n")
        body = envoy.rstrip("\n") + "\n" + app + self.metrics.exposition()
        return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def ready(self, request: web.Request) -> web.Response:
        if not self.envoy.running:
            code = None if self.envoy.proc is None else self.envoy.proc.returncode
            return web.Response(status=503, text=f"Envoy is not running (exit code {code})\n")
        status, state = await self._admin("/ready")
        if status == 200:
            return web.Response(text="")
        return web.Response(status=503, text=f"Envoy proxy is NOT ready: server is {state.strip()}\n")

    def status(self) -> dict[str, Any]:
        """What the agent runs, for the lab's status."""
        return {"pod": self.identity.pod, "url": self.url, "admin": self.admin,
                "envoy": None if self.envoy.proc is None else self.envoy.proc.pid,
                "series": len(self.metrics.requests), "access_log": str(self.access_log)}

    def __repr__(self) -> str:
        return f"Agent({json.dumps(self.status())})"


def identity_from_json(text: str) -> ProxyIdentity:
    """A :class:`ProxyIdentity` from its fields as JSON (``dataclasses.asdict``), as the kubelet passes it."""
    doc = json.loads(text)
    names = {f.name for f in dataclasses.fields(ProxyIdentity)}
    unknown = set(doc) - names
    if unknown:
        raise ValueError(f"unknown identity fields: {sorted(unknown)}")
    return ProxyIdentity(**doc)


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


def drain_seconds(env: Mapping[str, str] = os.environ) -> float:
    """pilot-agent's ``TERMINATION_DRAIN_DURATION_SECONDS`` (Istio's ``terminationDrainDuration``, default 5 s)."""
    try:
        return max(0.0, float(env.get("TERMINATION_DRAIN_DURATION_SECONDS") or 5))
    except ValueError:
        return 5.0


async def run(agent: Agent) -> int:
    """Start the agent, print its status as one JSON line, serve until SIGTERM or SIGINT (exit code 0) or until
    Envoy exits (1), then stop it and its Envoy."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await agent.start()
        print(json.dumps(agent.status()), flush=True)
        signalled = asyncio.ensure_future(stop.wait())
        exited = asyncio.ensure_future(agent.envoy_exited())
        await asyncio.wait([signalled, exited], return_when=asyncio.FIRST_COMPLETED)
        for waiter in (signalled, exited):
            waiter.cancel()
        if stop.is_set() and agent.envoy.running:
            await agent.drain(drain_seconds())
        return 0 if stop.is_set() else 1
    finally:
        await agent.stop()


DISCOVERY = "http://istiod.istio-system.svc:15014"  # istiod's Service, through the node's service proxy
SIDECAR_FLAGS = ("--domain", "--proxyLogLevel", "--proxyComponentLogLevel", "--log_output_level")


def fetch_sidecar(pod: str, namespace: str, discovery: str = DISCOVERY, timeout: float = 120) -> dict[str, Any]:
    """What istiod holds for this pod (identity, bootstrap, access log), asked until istiod has pushed to it (the
    pod's IP reaches istiod through the API server only after the kubelet reported it)."""
    import time
    import urllib.error
    import urllib.request

    url = f"{discovery}/labkit/v1/sidecar?proxyID={pod}.{namespace}"
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:  # HTTP_PROXY: the node's service proxy
                return dict(json.loads(resp.read()))
        except urllib.error.HTTPError as err:
            last = f"{err.code} {err.read().decode(errors='replace').strip()}"
        except OSError as err:
            last = str(err)
        time.sleep(0.3)
    raise SystemExit(f"istiod at {discovery} did not answer for {pod}.{namespace}: {last}")


def sidecar(argv: list[str]) -> None:
    """``pilot-agent proxy sidecar …`` as the injected container runs it: the pod from the injected environment,
    the rest from istiod."""
    parser = argparse.ArgumentParser(prog="pilot-agent proxy sidecar")
    for flag in SIDECAR_FLAGS:
        parser.add_argument(flag)
    parser.parse_args(argv)  # an unknown flag is an error, as in pilot-agent
    pod, namespace = os.environ.get("POD_NAME", ""), os.environ.get("POD_NAMESPACE", "")
    if not pod or not namespace:
        raise SystemExit("POD_NAME and POD_NAMESPACE must be set (the injected istio-proxy container sets them)")
    found = fetch_sidecar(pod, namespace)
    print(json.dumps({"istiod": DISCOVERY, "bootstrap": found["bootstrap"]}), flush=True)
    app_scrape = os.environ.get("ISTIO_PROMETHEUS_ANNOTATIONS", "")
    agent = Agent(ProxyIdentity(**found["identity"]), Path(found["bootstrap"]), Path(found["access_log"]),
                  Path(found["envoy_log"]), app_scrape=json.loads(app_scrape) if app_scrape else None)
    sys.exit(asyncio.run(run(agent)))


def request(argv: list[str]) -> None:
    """``pilot-agent request <METHOD> <PATH>``: the answer of this pod's Envoy admin API (what istioctl reads
    ``config_dump`` with), printed as it is."""
    import urllib.error
    import urllib.request

    if len(argv) != 2:
        raise SystemExit("usage: pilot-agent request <METHOD> <PATH>")
    method, path = argv[0].upper(), argv[1].lstrip("/")
    host = os.environ.get("INSTANCE_IP") or "127.0.0.1"  # the sim's Envoy admin is on the pod's IP
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(f"http://{host}:{ADMIN_PORT}/{path}", method=method),
                         timeout=30) as resp:
            sys.stdout.buffer.write(resp.read())
    except urllib.error.HTTPError as err:
        sys.stdout.buffer.write(err.read())
        raise SystemExit(1) from None
    except OSError as err:
        raise SystemExit(f"Envoy's admin API is not reachable: {err}") from None


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["proxy", "sidecar"]:
        sidecar(argv[2:])
        return
    if argv[:1] == ["request"]:
        request(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m labkit.mesh.agent", description=__doc__.splitlines()[0])
    parser.add_argument("--identity", required=True, help="the sidecar's ProxyIdentity as JSON")
    parser.add_argument("--bootstrap", type=Path, required=True, help="Envoy's bootstrap (JSON)")
    parser.add_argument("--access-log", type=Path, required=True, help="the access log the bootstrap names")
    parser.add_argument("--envoy-log", type=Path, required=True, help="where Envoy's own log goes")
    parser.add_argument("--listen", type=_address, help="HOST:PORT (default: the pod's IP and 15020)")
    parser.add_argument("--app-scrape", default=os.environ.get("ISTIO_PROMETHEUS_ANNOTATIONS", ""),
                        help="the app's prometheus.io settings as JSON (default: $ISTIO_PROMETHEUS_ANNOTATIONS)")
    args = parser.parse_args(argv)
    agent = Agent(identity_from_json(args.identity), args.bootstrap, args.access_log, args.envoy_log, args.listen,
                  app_scrape=json.loads(args.app_scrape) if args.app_scrape else None)
    sys.exit(asyncio.run(run(agent)))


if __name__ == "__main__":
    main()
