"""Per-request Prometheus metrics for an aiohttp application: a middleware that counts each request by the
labels a product chooses (and its status code) and observes its duration, for the products whose real
counterparts export ``*_http_requests_total``-style series (Harbor's core and registry, GitLab)."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import Counter, Histogram, Summary

from .errors import ApiError
from .http import Handler

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
Labeller = Callable[[web.Request], dict[str, str] | None]  # the request's labels; None: not recorded


def exposition(*registries: CollectorRegistry) -> web.Response:
    """The registries' series in Prometheus' text format, as one scrape answer."""
    return web.Response(body=b"".join(generate_latest(r) for r in registries),
                        headers={"Content-Type": PROMETHEUS_TEXT})


class RequestMetrics:
    """``total`` counts requests by the labeller's labels plus the status code (label ``code_label``, its value
    ``code_name(status)``); ``duration`` (a Histogram or a Summary with the labeller's labels, plus the code when
    ``duration_code``), if any, observes their seconds (of the requests whose labels ``timed`` accepts)."""

    def __init__(self, labeller: Labeller, total: Counter, duration: Histogram | Summary | None,
                 duration_code: bool = False, code_label: str = "code",
                 code_name: Callable[[int], str] = str,
                 timed: Callable[[dict[str, str]], bool] = lambda labels: True) -> None:
        self.labeller, self.total, self.duration = labeller, total, duration
        self._duration_code, self._code, self._code_name = duration_code, code_label, code_name
        self._timed = timed

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        code = 500
        try:
            response = await handler(request)
            code = response.status
            return response
        except ApiError as err:
            code = err.status
            raise
        except web.HTTPException as exc:
            code = exc.status
            raise
        finally:
            found = self.labeller(request)
            if found is not None:
                name = self._code_name(code)
                self.total.labels(**found, **{self._code: name}).inc()
                if self.duration is not None and self._timed(found):
                    extra = {self._code: name} if self._duration_code else {}
                    self.duration.labels(**found, **extra).observe(time.perf_counter() - start)
