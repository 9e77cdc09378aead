"""``lab.prometheus``: the lab's Prometheus from a notebook, the same on every backend, through its HTTP API v1
(``/api/v1/query``, ``query_range``, ``targets``, ``rules``, ``alerts``): results as pandas tables. Grafana's
dashboards are drawn by ``lab.grafana`` (``grafana.py``) from the same API; chapter 7's helpers are in
``chapter.py``."""

from __future__ import annotations

import math
import time as _time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core.errors import LabError
from ..core.view import ProductView
from ..endpoints import PrometheusEndpoint
from .chapter import ChapterHelpers

if TYPE_CHECKING:
    import pandas as pd
    import requests

    from .grafana import Grafana

TimeLike = float | int | str | datetime

TARGET_COLUMNS = ("job", "instance", "health", "scrape_url", "last_error", "last_scrape", "scrape_duration",
                  "labels")
ALERT_COLUMNS = ("alertname", "state", "active_at", "value", "labels", "annotations")
RULE_COLUMNS = ("group", "name", "type", "query", "duration", "health", "state", "alerts", "last_error")


class PrometheusAPIError(LabError):
    """An error answer of Prometheus' HTTP API: its ``errorType`` (``bad_data``, ``execution``, ``timeout``…),
    its HTTP status and its message (for bad PromQL, the parser's)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.status, self.error_type, self.message = status, error_type, message


def to_seconds(value: TimeLike) -> float:
    """Unix seconds of a time: a number, a datetime, RFC 3339 text, or ``"-5m"`` (that long before now)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        if value.startswith("-"):
            return _time.time() - parse_duration(value[1:])
        try:
            return float(value)
        except ValueError:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


def api_time(value: TimeLike | None) -> str | None:
    """A time as the API takes it (Unix seconds), None left out."""
    return None if value is None else f"{to_seconds(value):.3f}"


DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str | float) -> float:
    """Seconds of a Prometheus duration (``"1h30m"``, ``"15s"``, ``"500ms"``) or a number of seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    import re

    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|[smhdwy])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        try:
            return float(text)
        except ValueError:
            raise LabError(f"not a duration: {text!r} (e.g. 30s, 5m, 1h30m)") from None
    return sum(float(n) * DURATION_UNITS[u] for n, u in parts)


def sample_value(text: str) -> float:
    """A sample value as the API encodes it (a string: ``"1.5"``, ``"NaN"``, ``"+Inf"``)."""
    return float(text) if text not in ("NaN",) else math.nan


def series_name(metric: dict[str, str]) -> str:
    """A series as Prometheus' UI names it: ``name{a="b", c="d"}``."""
    name = metric.get("__name__", "")
    labels = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{labels}}}" if labels or not name else name


class PrometheusView(ChapterHelpers, ProductView):
    _session: requests.Session | None = None
    _grafana: Grafana | None = None

    @property
    def endpoint(self) -> PrometheusEndpoint:
        return self.lab.endpoints.get(PrometheusEndpoint)

    @property
    def url(self) -> str:
        return self.endpoint.url

    def session(self) -> requests.Session:
        """A ``requests`` session to Prometheus (never through a proxy: the lab is on loopback)."""
        import requests

        if self._session is None:
            self._session = requests.Session()
            self._session.trust_env = False
        return self._session

    def api(self, path: str, method: str = "GET", **params: Any) -> Any:
        """``/api/v1/{path}``'s ``data``; PrometheusAPIError with the API's errorType and message otherwise."""
        params = {k: v for k, v in params.items() if v is not None}
        url = f"{self.url.rstrip('/')}/api/v1/{path.lstrip('/')}"
        kw: dict[str, Any] = {"data": params} if method == "POST" else {"params": params}
        resp = self.session().request(method, url, timeout=60, **kw)
        try:
            body = resp.json()
        except ValueError:
            raise PrometheusAPIError(resp.status_code, "unavailable", resp.text[:300]) from None
        if body.get("status") != "success":
            raise PrometheusAPIError(resp.status_code, body.get("errorType", ""), body.get("error", resp.text))
        return body.get("data")

    # -- PromQL -------------------------------------------------------------
    def query_raw(self, expr: str, time: TimeLike | None = None) -> dict[str, Any]:
        """``/api/v1/query``'s data as it is: ``{"resultType": ..., "result": ...}``."""
        return dict(self.api("query", method="POST", query=expr, time=api_time(time)))

    def query(self, expr: str, time: TimeLike | None = None) -> pd.DataFrame:
        """An instant query: one row per series, its labels as columns, ``value`` and ``timestamp``
        (a scalar or string result: one row; a range vector: one row per sample)."""
        return result_frame(self.query_raw(expr, time))

    def query_range_raw(self, expr: str, start: TimeLike | None = None, end: TimeLike | None = None,
                        step: float | str | None = None, minutes: float = 10) -> dict[str, Any]:
        """``/api/v1/query_range``'s data (default: the last ``minutes``, about 200 points)."""
        end_s = to_seconds(end) if end is not None else _time.time()
        start_s = to_seconds(start) if start is not None else end_s - minutes * 60
        if step is None:
            step = max(1.0, round((end_s - start_s) / 200))
        return dict(self.api("query_range", method="POST", query=expr, start=f"{start_s:.3f}",
                             end=f"{end_s:.3f}", step=str(step)))

    def query_range(self, expr: str, start: TimeLike | None = None, end: TimeLike | None = None,
                    step: float | str | None = None, minutes: float = 10) -> pd.DataFrame:
        """A range query as a long table: ``time`` (a pandas Timestamp), ``value``, ``series`` (its name as the
        UI shows it) and the series' labels as columns. ``.pivot(index="time", columns="series",
        values="value")`` gives one column per series, ready to plot."""
        return result_frame(self.query_range_raw(expr, start, end, step, minutes))

    # -- targets, rules, alerts -------------------------------------------------
    def targets(self, state: str = "active") -> pd.DataFrame:
        """The scrape targets (``/api/v1/targets``): job, instance, health (``up``/``down``/``unknown``), the
        URL scraped, the last error and when. ``state="dropped"``: the targets relabelling dropped."""
        import pandas as pd

        data = self.api("targets", state=state)
        if state == "dropped":
            rows = [{"discovered_labels": t.get("discoveredLabels", {})} for t in data.get("droppedTargets") or []]
            return pd.DataFrame(rows, columns=["discovered_labels"])
        rows = [target_row(t) for t in data.get("activeTargets") or []]
        return pd.DataFrame(rows, columns=list(TARGET_COLUMNS))

    def rules(self) -> pd.DataFrame:
        """Every recording and alerting rule (``/api/v1/rules``): its group, query, ``for`` duration, health
        and, for an alert, its state (``inactive``/``pending``/``firing``) and how many alerts it has."""
        import pandas as pd

        rows = [rule_row(g.get("name", ""), r) for g in self.api("rules").get("groups") or []
                for r in g.get("rules") or []]
        return pd.DataFrame(rows, columns=list(RULE_COLUMNS))

    def alerts(self) -> pd.DataFrame:
        """The active alerts (``/api/v1/alerts``): name, state (``pending``/``firing``), since when, the value
        that triggered it, labels and annotations."""
        import pandas as pd

        rows = [alert_row(a) for a in self.api("alerts").get("alerts") or []]
        return pd.DataFrame(rows, columns=list(ALERT_COLUMNS))

    # -- Grafana ------------------------------------------------------------------
    @property
    def grafana(self) -> Grafana:
        """Grafana dashboards (JSON model) drawn from this Prometheus: ``lab.grafana``."""
        from .grafana import Grafana

        if self._grafana is None:
            self._grafana = Grafana(self)
        return self._grafana


def result_frame(data: dict[str, Any]) -> pd.DataFrame:
    """A query's data as a table (see ``PrometheusView.query``/``query_range``)."""
    import pandas as pd

    kind, result = data.get("resultType"), data.get("result")
    if kind in ("scalar", "string"):
        t, v = result  # type: ignore[misc]
        value: Any = sample_value(v) if kind == "scalar" else v
        return pd.DataFrame([{"time": pd.to_datetime(float(t), unit="s"), "value": value}])
    rows: list[dict[str, Any]] = []
    for series in result or []:
        metric = series.get("metric") or {}
        samples = [series["value"]] if "value" in series else series.get("values") or []
        for t, v in samples:
            rows.append({**metric, "series": series_name(metric), "time": pd.to_datetime(float(t), unit="s"),
                         "value": sample_value(v)})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["series", "time", "value"])
    labels = sorted(c for c in frame.columns if c not in ("series", "time", "value"))
    return frame[[*labels, "series", "time", "value"]]


def target_row(target: dict[str, Any]) -> dict[str, Any]:
    labels = target.get("labels") or {}
    return {"job": labels.get("job", target.get("scrapePool", "")), "instance": labels.get("instance", ""),
            "health": target.get("health", "unknown"), "scrape_url": target.get("scrapeUrl", ""),
            "last_error": target.get("lastError", ""), "last_scrape": target.get("lastScrape", ""),
            "scrape_duration": target.get("lastScrapeDuration", 0.0), "labels": labels}


def rule_row(group: str, rule: dict[str, Any]) -> dict[str, Any]:
    return {"group": group, "name": rule.get("name", ""), "type": rule.get("type", ""),
            "query": rule.get("query", ""), "duration": rule.get("duration", 0), "health": rule.get("health", ""),
            "state": rule.get("state", ""), "alerts": len(rule.get("alerts") or []),
            "last_error": rule.get("lastError", "")}


def alert_row(alert: dict[str, Any]) -> dict[str, Any]:
    labels = alert.get("labels") or {}
    return {"alertname": labels.get("alertname", ""), "state": alert.get("state", ""),
            "active_at": alert.get("activeAt", ""), "value": alert.get("value", ""), "labels": labels,
            "annotations": alert.get("annotations") or {}}
