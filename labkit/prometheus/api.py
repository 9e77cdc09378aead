"""Prometheus' HTTP API v1 over the engine and the storage: ``query``, ``query_range``, ``series``, ``labels``,
``label/<name>/values``, ``targets``, ``targets/metadata``, ``metadata``, ``rules``, ``alerts``,
``status/buildinfo|config|flags|runtimeinfo|tsdb``, with the real answers' shape, its error shape
(``{"status":"error","errorType":...,"error":...}``) and HTTP codes (400 bad_data, 422 execution, 503 timeout)."""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..core.errors import ApiError
from ..core.http import json_response
from .promql import Engine, PromQLError, selector_matchers
from .tsdb import Matcher

if TYPE_CHECKING:
    from .config import Config
    from .rules import RuleManager
    from .scrape.manager import ScrapeManager

VERSION = "2.42.0"
MAX_POINTS = 11000
ERROR_STATUS = {"bad_data": 400, "execution": 422, "timeout": 503, "canceled": 503, "internal": 500,
                "not_found": 404, "unavailable": 503}
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DURATION = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")


def render(request: web.Request, err: ApiError) -> web.StreamResponse:
    """Prometheus' error body for every API error."""
    error_type = err.details.get("errorType") or {400: "bad_data", 404: "not_found", 422: "execution",
                                                  503: "unavailable"}.get(err.status, "internal")
    return json_response({"status": "error", "errorType": error_type, "error": err.message}, err.status,
                         err.headers)


def bad_data(message: str) -> ApiError:
    return ApiError(400, "bad_data", message, {"errorType": "bad_data"})


def success(data: Any) -> web.Response:
    return json_response({"status": "success", "data": data})


def parse_time(text: str, name: str, wrapped: bool = False) -> float:
    """A time parameter: Unix seconds (a float) or RFC 3339, as Prometheus' parseTime (``wrapped``: read by its
    parseTimeParam, whose message names the parameter twice)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        why = f"Invalid time value for '{name}': " if wrapped else ""
        raise bad_data(f'invalid parameter "{name}": {why}cannot parse "{text}" to a valid timestamp') from None


def parse_duration(text: str, name: str) -> float:
    """A duration parameter: seconds (a float) or a Prometheus duration (``15s``, ``1m``)."""
    try:
        seconds = float(text)
        if math.isinf(seconds) or math.isnan(seconds):
            raise ValueError
        return seconds
    except ValueError:
        pass
    m = DURATION.match(text)
    if not text or not m:
        raise bad_data(f'invalid parameter "{name}": cannot parse "{text}" to a valid duration')
    units = (31536000, 604800, 86400, 3600, 60, 1, 0.001)
    return sum(int(m.group(2 * i + 2)) * u for i, u in enumerate(units) if m.group(2 * i + 2))


def matchers_of(selector: str) -> list[Matcher]:
    """The matchers of a ``match[]`` series selector."""
    try:
        return selector_matchers(selector)
    except PromQLError as err:
        raise bad_data(f'invalid parameter "match[]": {err.message}') from None


class PrometheusApi:
    """The routes of ``/api/v1`` and the server's own ``/-/healthy``, ``/-/ready``."""

    def __init__(self, engine: Engine, storage: Any, config: Config, scrape: ScrapeManager | None,
                 rules: RuleManager | None, started: float | None = None) -> None:
        self.engine, self.storage, self.config = engine, storage, config
        self.scrape, self.rules = scrape, rules
        self.started = started or time.time()

    def install(self, app: web.Application) -> None:
        both: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
            "/api/v1/query": self.query, "/api/v1/query_range": self.query_range, "/api/v1/series": self.series,
            "/api/v1/labels": self.labels, "/api/v1/query_exemplars": self.exemplars}
        for path, handler in both.items():
            app.router.add_get(path, handler)
            app.router.add_post(path, handler)
        for path, handler in {
            "/api/v1/label/{name}/values": self.label_values, "/api/v1/targets": self.targets,
            "/api/v1/targets/metadata": self.targets_metadata, "/api/v1/metadata": self.metadata,
            "/api/v1/rules": self.rules_api, "/api/v1/alerts": self.alerts, "/api/v1/status/buildinfo": self.buildinfo,
            "/api/v1/status/config": self.status_config, "/api/v1/status/flags": self.flags,
            "/api/v1/status/runtimeinfo": self.runtimeinfo,
            "/-/healthy": self.healthy, "/-/ready": self.ready,
        }.items():
            app.router.add_get(path, handler)
        app.router.add_route("*", "/api/v1/admin/{rest:.*}", self.unsupported)
        app.router.add_route("*", "/api/v1/write", self.unsupported)
        app.router.add_route("*", "/api/v1/status/tsdb", self.unsupported)

    @staticmethod
    async def params(request: web.Request) -> dict[str, list[str]]:
        """GET query parameters and POST form fields, as Prometheus' r.ParseForm merges them."""
        out: dict[str, list[str]] = {}
        for k, v in request.query.items():
            out.setdefault(k, []).append(v)
        if request.method == "POST":
            for k, v in (await request.post()).items():
                out.setdefault(k, []).append(str(v))
        return out

    def run(self, call: Callable[[], dict[str, Any]]) -> web.Response:
        try:
            return success(call())
        except PromQLError as err:
            raise ApiError(ERROR_STATUS.get(err.error_type, 422), err.error_type, err.message,
                           {"errorType": err.error_type}) from None

    async def query(self, request: web.Request) -> web.Response:
        p = await self.params(request)
        at = parse_time(p["time"][0], "time", wrapped=True) if p.get("time") else time.time()
        text = (p.get("query") or [""])[0]
        self._parse(text)
        return self.run(lambda: self.engine.instant(text, at))

    async def query_range(self, request: web.Request) -> web.Response:
        p = await self.params(request)
        start = parse_time((p.get("start") or [""])[0], "start")
        end = parse_time((p.get("end") or [""])[0], "end")
        if end < start:
            raise bad_data('invalid parameter "end": end timestamp must not be before start time')
        step = parse_duration((p.get("step") or [""])[0], "step")
        if step <= 0:
            raise bad_data('invalid parameter "step": zero or negative query resolution step widths are not '
                           'accepted. Try a positive integer')
        if (end - start) / step > MAX_POINTS:
            raise bad_data(f"exceeded maximum resolution of {MAX_POINTS:,} points per timeseries. Try decreasing "
                           "the query resolution (?step=XX)")
        text = (p.get("query") or [""])[0]
        self._parse(text)
        return self.run(lambda: self.engine.range(text, start, end, step))

    @staticmethod
    def _parse(text: str) -> None:
        from .promql import parse

        try:
            parse(text)
        except PromQLError as err:
            raise bad_data(f'invalid parameter "query": {err.message}') from None

    def _window(self, p: dict[str, list[str]]) -> tuple[int | None, int | None]:
        start = parse_time(p["start"][0], "start", wrapped=True) if p.get("start") else None
        end = parse_time(p["end"][0], "end", wrapped=True) if p.get("end") else None
        return (None if start is None else int(start * 1000)), (None if end is None else int(end * 1000))

    async def series(self, request: web.Request) -> web.Response:
        p = await self.params(request)
        if not p.get("match[]"):
            raise bad_data("no match[] parameter provided")
        start, end = self._window(p)
        found: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        for selector in p["match[]"]:
            for labels in self.storage.series(matchers_of(selector), start, end):
                found[tuple(sorted(labels.items()))] = labels
        return success([found[k] for k in sorted(found)])

    async def labels(self, request: web.Request) -> web.Response:
        p = await self.params(request)
        start, end = self._window(p)
        if not p.get("match[]"):
            return success(self.storage.label_names(None, start, end))
        names = {n for s in p["match[]"] for n in self.storage.label_names(matchers_of(s), start, end)}
        return success(sorted(names))

    async def label_values(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not LABEL_NAME.match(name):
            raise bad_data(f'invalid label name: "{name}"')
        p = await self.params(request)
        start, end = self._window(p)
        if not p.get("match[]"):
            return success(self.storage.label_values(name, None, start, end))
        values = {v for s in p["match[]"] for v in self.storage.label_values(name, matchers_of(s), start, end)}
        return success(sorted(values))

    async def exemplars(self, request: web.Request) -> web.Response:
        raise ApiError(422, "execution", "exemplar storage is not supported by the labkit simulator",
                       {"errorType": "execution"})

    async def targets(self, request: web.Request) -> web.Response:
        state = request.query.get("state", "any").lower()
        active = [t.api() for t in self.scrape.targets()] if self.scrape else []
        dropped = [{"discoveredLabels": d} for ds in (self.scrape.dropped.values() if self.scrape else [])
                   for d in ds]
        data: dict[str, Any] = {"activeTargets": active if state in ("any", "active") else [],
                                "droppedTargets": dropped if state in ("any", "dropped") else []}
        return success(data)

    async def targets_metadata(self, request: web.Request) -> web.Response:
        metric = request.query.get("metric", "")
        limit = int(request.query.get("limit") or -1)
        match = request.query.get("match_target", "")
        wanted = matchers_of(match) if match else []
        out = []
        for t in self.scrape.targets() if self.scrape else []:
            if not all(m.matches(t.labels.get(m.name, "")) for m in wanted):
                continue
            for name, md in sorted(t.metadata.items()):
                if metric and name != metric:
                    continue
                out.append({"target": t.labels, "metric": name, "type": md.type, "help": md.help,  # type: ignore
                            "unit": md.unit})  # type: ignore
        return success(out if limit < 0 else out[:limit])

    async def metadata(self, request: web.Request) -> web.Response:
        metric = request.query.get("metric", "")
        limit = int(request.query.get("limit") or -1)
        out: dict[str, list[dict[str, str]]] = {}
        for t in self.scrape.targets() if self.scrape else []:
            for name, md in t.metadata.items():
                if metric and name != metric:
                    continue
                entry = {"type": md.type, "help": md.help, "unit": md.unit}  # type: ignore[attr-defined]
                if entry not in out.setdefault(name, []):
                    out[name].append(entry)
        names = sorted(out)[:limit] if limit >= 0 else sorted(out)
        return success({n: out[n] for n in names})

    async def rules_api(self, request: web.Request) -> web.Response:
        kind = request.query.get("type", "")
        if kind not in ("", "alert", "record"):
            raise bad_data(f'invalid parameter "type": not supported value "{kind}"')
        groups = self.rules.groups if self.rules else []
        return success({"groups": [g.api({"alert": "alerting", "record": "recording"}.get(kind)) for g in groups]})

    async def alerts(self, request: web.Request) -> web.Response:
        return success({"alerts": [a.api() for a in self.rules.alerts()] if self.rules else []})

    async def buildinfo(self, request: web.Request) -> web.Response:
        return success({"version": VERSION, "revision": "labkit-simulator", "branch": "labkit",
                        "buildUser": "labkit", "buildDate": "", "goVersion": "n/a (labkit simulator)"})

    async def status_config(self, request: web.Request) -> web.Response:
        return success({"yaml": self.config.text})

    async def flags(self, request: web.Request) -> web.Response:
        return success({"storage.tsdb.retention.time": f"{int(getattr(self.storage, 'retention_seconds', 0))}s",
                        "query.lookback-delta": f"{int(self.engine.lookback)}s" if hasattr(self.engine, "lookback")
                        else "5m", "query.max-samples": "50000000"})

    async def runtimeinfo(self, request: web.Request) -> web.Response:
        started = datetime.fromtimestamp(self.started).astimezone().isoformat()
        return success({"startTime": started, "CWD": os.getcwd(), "reloadConfigSuccess": True,
                        "lastConfigTime": started,
                        "storageRetention": f"{int(getattr(self.storage, 'retention_seconds', 0))}s"})

    async def healthy(self, request: web.Request) -> web.Response:
        return web.Response(text="Prometheus Server is Healthy.\n")

    async def ready(self, request: web.Request) -> web.Response:
        return web.Response(text="Prometheus Server is Ready.\n")

    async def unsupported(self, request: web.Request) -> web.Response:
        raise ApiError(501, "unavailable", f"{request.path} is not supported by the labkit simulator",
                       {"errorType": "unavailable"})
