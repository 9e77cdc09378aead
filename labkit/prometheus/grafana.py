"""``lab.grafana``: Grafana dashboards in Grafana's JSON model, queried as Grafana's Prometheus data source would
(templating variables, ``$__interval``/``$__rate_interval``/``$__range``, ``legendFormat``, instant or range
queries per panel) and drawn with matplotlib (``views.py``), from the Prometheus API of either backend.

Supported: panels ``timeseries`` (and the old ``graph``), ``stat``, ``gauge``, ``table``, ``heatmap``, ``text`` and
``row``; variables ``query`` (``label_values(...)``, ``query_result(...)``, ``metrics(...)``), ``custom``,
``constant``, ``interval``, ``textbox`` and ``datasource``. Another panel type or variable type is drawn or
reported as not supported by the labkit renderer, never silently skipped."""

from __future__ import annotations

import json
import re
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import LabError
from .lab import parse_duration, series_name, to_seconds

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from .lab import PrometheusView

DASHBOARDS = Path(__file__).resolve().parents[2] / "manifests" / "dashboards"
PANEL_TYPES = ("timeseries", "graph", "stat", "gauge", "table", "heatmap", "text", "row")
DEFAULT_SCRAPE_INTERVAL = 15.0  # Grafana's Prometheus data source "Scrape interval" when none is set
GRID_COLUMNS, ROW_PIXELS, DASHBOARD_PIXELS = 24, 30, 1600
# Grafana's rounding of a computed interval (ms): below the bound, the value
ROUND_INTERVALS = ((15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
                   (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000),
                   (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000), (1050000, 900000),
                   (1500000, 1200000), (2700000, 1800000), (5400000, 3600000), (9000000, 7200000),
                   (16200000, 10800000), (24300000, 21600000), (64800000, 43200000), (129600000, 86400000))


def round_interval(ms: float) -> float:
    """Grafana's rounding of an automatic interval to a readable one (milliseconds)."""
    for bound, value in ROUND_INTERVALS:
        if ms <= bound:
            return value
    return 604800000 if ms > 604800000 else 86400000


def format_duration(seconds: float) -> str:
    """A duration as Grafana writes it into a query: ``15s``, ``2m``, ``500ms``."""
    ms = round(seconds * 1000)
    for unit, size in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def grafana_time(text: str | float, now: float) -> float:
    """Unix seconds of a dashboard time (``now``, ``now-15m``, a number, RFC 3339)."""
    if isinstance(text, str) and text.startswith("now"):
        rest = text[3:].split("/")[0]  # rounding (now/d) is not applied: the range keeps its length
        if not rest:
            return now
        sign = -1 if rest[0] == "-" else 1
        return now + sign * parse_duration(rest[1:])
    return to_seconds(text)


def load(dashboard: dict[str, Any] | str | Path) -> dict[str, Any]:
    """A dashboard's JSON model: the dict itself, a JSON file, JSON text, or a name under manifests/dashboards
    (``"shop"``). The API's ``{"dashboard": {...}}`` wrapper is taken off."""
    if isinstance(dashboard, dict):
        model = dashboard
    else:
        text = str(dashboard)
        if text.lstrip().startswith("{"):
            model = json.loads(text)
        else:
            path = Path(text)
            if not path.exists():
                path = DASHBOARDS / f"{text.removesuffix('.json')}.json"
            if not path.exists():
                known = ", ".join(p.stem for p in sorted(DASHBOARDS.glob("*.json")))
                raise LabError(f"no dashboard {text!r}: give a dict, a JSON file, or one of: {known}")
            model = json.loads(path.read_text())
    return dict(model.get("dashboard", model))


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel of a dashboard in reading order, those of collapsed rows included."""
    out: list[dict[str, Any]] = []
    for panel in model.get("panels") or []:
        out.append(panel)
        if panel.get("type") == "row":
            out.extend(panel.get("panels") or [])
    return sorted(out, key=lambda p: ((p.get("gridPos") or {}).get("y", 0), (p.get("gridPos") or {}).get("x", 0)))


@dataclass
class TimeRange:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1.0)


@dataclass
class PanelResult:
    """One panel's queries answered: ``frame`` as ``PrometheusView.query``/``query_range`` give it, plus
    ``legend`` (the series' name after ``legendFormat``) and ``ref`` (the target's refId); ``error``: the
    first query error, as Grafana shows it on the panel."""

    panel: dict[str, Any]
    frame: pd.DataFrame
    queries: list[str] = field(default_factory=list)
    step: float = 0.0
    error: str = ""

    @property
    def title(self) -> str:
        return str(self.panel.get("title", ""))

    @property
    def type(self) -> str:
        return str(self.panel.get("type", ""))


@dataclass
class Rendered:
    """A drawn dashboard: its figure, each panel's data (by title) and the variables' values it used."""

    figure: Figure
    results: list[PanelResult]
    variables: dict[str, list[str]]
    range: TimeRange

    def panel(self, title: str) -> PanelResult:
        for result in self.results:
            if result.title == title:
                return result
        raise KeyError(f"no panel {title!r}; the panels are: {', '.join(r.title for r in self.results)}")

    def _repr_png_(self) -> bytes:
        import io

        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


class Grafana:
    """Grafana's dashboards over ``lab.prometheus`` (``lab.grafana``)."""

    def __init__(self, prometheus: PrometheusView, scrape_interval: float | None = None) -> None:
        self.prometheus = prometheus
        self._scrape_interval = scrape_interval

    @property
    def scrape_interval(self) -> float:
        """The data source's scrape interval (``$__rate_interval`` is built on it): Prometheus'
        ``global.scrape_interval`` from ``/api/v1/status/config``, else Grafana's default of 15 s."""
        if self._scrape_interval is None:
            import yaml

            try:
                config = yaml.safe_load(self.prometheus.api("status/config")["yaml"]) or {}
                self._scrape_interval = parse_duration(str((config.get("global") or {}).get(
                    "scrape_interval", "15s")))
            except (LabError, KeyError, yaml.YAMLError):
                self._scrape_interval = DEFAULT_SCRAPE_INTERVAL
        return self._scrape_interval

    def load(self, dashboard: dict[str, Any] | str | Path) -> dict[str, Any]:
        return load(dashboard)

    def dashboards(self) -> list[str]:
        """The lab's dashboards (manifests/dashboards), by name."""
        return [p.stem for p in sorted(DASHBOARDS.glob("*.json"))]

    def time_range(self, model: dict[str, Any], start: str | float | None = None,
                   end: str | float | None = None) -> TimeRange:
        now = _time.time()
        times = model.get("time") or {}
        return TimeRange(grafana_time(start if start is not None else times.get("from", "now-15m"), now),
                         grafana_time(end if end is not None else times.get("to", "now"), now))

    # -- templating ------------------------------------------------------------
    def variables(self, model: dict[str, Any], chosen: dict[str, str | list[str]] | None = None,
                  span: TimeRange | None = None) -> dict[str, list[str]]:
        """Each templating variable's selected values, in order (a later variable's query may use an earlier
        one): ``chosen`` first, then the dashboard's ``current``, then the first option (``All`` when
        ``includeAll``)."""
        chosen = chosen or {}
        span = span or self.time_range(model)
        values: dict[str, list[str]] = {}
        for var in (model.get("templating") or {}).get("list") or []:
            name = var["name"]
            options = self.options(var, values, span)
            pick = chosen.get(name)
            if pick is None:
                current = (var.get("current") or {}).get("value")
                pick = current if current not in (None, "", []) else None
            if pick is None:
                pick = ["$__all"] if var.get("includeAll") else options[:1]
            picked = [pick] if isinstance(pick, str) else list(pick)
            if "$__all" in picked or ("All" in picked and var.get("includeAll")):
                # a custom "all value" (``.*``) goes into the query as written; else every option
                picked = [Raw(var["allValue"])] if var.get("allValue") else options
            values[name] = [p for p in picked if p != "$__all"]
        return values

    def options(self, var: dict[str, Any], values: dict[str, list[str]], span: TimeRange) -> list[str]:
        """The values a variable offers (a ``query`` variable asks Prometheus, as Grafana does)."""
        kind = var.get("type", "query")
        if kind in ("custom", "interval"):
            return [o.strip() for o in re.split(r"(?<!\\),", str(var.get("query", ""))) if o.strip()]
        if kind in ("constant", "textbox"):
            return [str(var.get("query", ""))]
        if kind == "datasource":
            return ["prometheus"]
        if kind != "query":
            raise LabError(f"variable {var['name']!r}: type {kind!r} is not supported by the labkit renderer")
        query = var.get("query")
        if isinstance(query, dict):  # Grafana 9+: {"query": "label_values(...)", "refId": ...}
            query = query.get("query", "")
        query = self.interpolate(str(query or ""), values, span)
        found = self.variable_query(query, span)
        if var.get("regex"):
            found = apply_regex(found, str(var["regex"]))
        order = int(var.get("sort", 0) or 0)
        if order in (1, 2):
            found = sorted(set(found), reverse=order == 2)
        elif order in (3, 4):
            found = sorted(set(found), key=natural_key, reverse=order == 4)
        return list(dict.fromkeys(found))

    def variable_query(self, query: str, span: TimeRange) -> list[str]:
        """A Prometheus variable query (``label_names()``, ``label_values([metric,] label)``, ``metrics(re)``,
        ``query_result(expr)``) through the HTTP API, as Grafana's Prometheus data source runs them."""
        api, window = self.prometheus.api, {"start": f"{span.start:.3f}", "end": f"{span.end:.3f}"}
        m = re.fullmatch(r"\s*label_values\(\s*(?:(.+?)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", query)
        if m:
            selector, label = m.groups()
            if selector is None:
                return list(api(f"label/{label}/values", **window) or [])
            return sorted({s.get(label, "") for s in api("series", **{"match[]": selector}, **window) or []}
                          - {""})
        if re.fullmatch(r"\s*label_names\(\s*\)\s*", query):
            return list(api("labels", **window) or [])
        m = re.fullmatch(r"\s*metrics\((.*)\)\s*", query)
        if m:
            pattern = re.compile(m.group(1).strip() or ".*")
            return [n for n in api("label/__name__/values", **window) or [] if pattern.search(n)]
        m = re.fullmatch(r"\s*query_result\((.*)\)\s*", query, re.S)
        if m:
            data = self.prometheus.query_raw(m.group(1), span.end)
            if data["resultType"] in ("scalar", "string"):
                return [f"{data['result'][1]} {int(float(data['result'][0]) * 1000)}"]
            return [f"{series_name(s['metric'])} {s['value'][1]} {int(float(s['value'][0]) * 1000)}"
                    for s in data["result"]]
        raise LabError(f"variable query {query!r} is not supported by the labkit renderer (label_names(), "
                       "label_values(), metrics(), query_result())")

    def interpolate(self, text: str, values: dict[str, list[str]], span: TimeRange, interval: float = 0.0,
                    regex: bool = True) -> str:
        """``$name``, ``${name}``, ``${name:format}`` and ``[[name]]`` replaced as Grafana does for Prometheus
        (several values: a regex alternative ``(a|b)`` with regex characters escaped), and the built-ins
        ``$__interval``, ``$__interval_ms``, ``$__rate_interval``, ``$__range``, ``$__range_s``,
        ``$__range_ms``."""
        interval = interval or self.scrape_interval
        builtins = {"__interval": format_duration(interval), "__interval_ms": str(int(interval * 1000)),
                    "__rate_interval": format_duration(max(interval + self.scrape_interval,
                                                           4 * self.scrape_interval)),
                    "__range": format_duration(round(span.seconds)), "__range_s": str(round(span.seconds)),
                    "__range_ms": str(round(span.seconds * 1000))}

        def value(name: str, fmt: str | None) -> str | None:
            if name in builtins:
                return builtins[name]
            if name not in values:
                return None
            vals = values[name]
            if fmt == "csv" or (fmt is None and not regex):
                return ",".join(vals)
            if fmt == "raw" or (fmt is None and len(vals) == 1 and not regex):
                return ",".join(vals)
            if fmt == "pipe":
                return "|".join(vals)
            if fmt == "json":
                return json.dumps(vals)
            escaped = [v if isinstance(v, Raw) or not regex else prometheus_regex_escape(v) for v in vals]
            if len(escaped) == 1 and fmt != "regex":
                return escaped[0]
            return "(" + "|".join(escaped) + ")"

        def replace(m: re.Match[str]) -> str:
            name = m.group("braced") or m.group("bare") or m.group("square")
            got = value(name, m.group("fmt"))
            return m.group(0) if got is None else got

        return VARIABLE.sub(replace, text)

    # -- queries -------------------------------------------------------------------
    def interval(self, panel: dict[str, Any], span: TimeRange) -> float:
        """``$__interval`` for a panel: the range over its width in pixels (or ``maxDataPoints``), rounded as
        Grafana rounds it, at least the panel's or data source's minimum interval."""
        width = (panel.get("gridPos") or {}).get("w", GRID_COLUMNS)
        points = panel.get("maxDataPoints") or max(width / GRID_COLUMNS * DASHBOARD_PIXELS, 100)
        low = parse_duration(str(panel.get("interval") or "").lstrip(">") or self.scrape_interval)
        return max(round_interval(span.seconds * 1000 / points) / 1000, low)

    def run_panel(self, panel: dict[str, Any], values: dict[str, list[str]], span: TimeRange) -> PanelResult:
        """A panel's targets as Grafana's Prometheus data source runs them: a range query with step
        ``$__interval`` for time series and heatmaps (or a target's ``instant``), an instant query at the range's
        end for stat, gauge and table panels (unless the target asks for ``range``)."""
        import pandas as pd

        kind = panel.get("type", "")
        result = PanelResult(panel, pd.DataFrame(columns=["ref", "legend", "series", "time", "value"]))
        if kind in ("text", "row"):
            return result
        interval = self.interval(panel, span)
        result.step = interval
        frames = []
        for target in panel.get("targets") or []:
            if target.get("hide") or not target.get("expr"):
                continue
            expr = self.interpolate(str(target["expr"]), values, span, interval)
            result.queries.append(expr)
            # Grafana's targets are range queries unless they ask for ``instant`` (tables usually do); a stat or
            # gauge reduces each series with its ``reduceOptions.calcs``
            instant = bool(target.get("instant")) and not target.get("range", False) and kind != "heatmap"
            step = max(interval * int(target.get("intervalFactor", 1) or 1), span.seconds / 11000)
            try:
                if instant:
                    frame = self.prometheus.query(expr, span.end)
                else:
                    frame = self.prometheus.query_range(expr, span.start, span.end, format_duration(step))
            except LabError as err:
                result.error = result.error or str(getattr(err, "message", err))
                continue
            frame["ref"] = target.get("refId", "A")
            legend = str(target.get("legendFormat") or "")
            frame["legend"] = [legend_name(legend, row, values, self, span) or expr
                               for row in frame.to_dict("records")]  # no labels, no legend: the query
            frames.append(frame)
        if frames:
            result.frame = pd.concat(frames, ignore_index=True)
        return result

    def render(self, dashboard: dict[str, Any] | str | Path, start: str | float | None = None,
               end: str | float | None = None, variables: dict[str, str | list[str]] | None = None,
               marks: dict[str, float] | None = None) -> Rendered:
        """Query and draw every panel of ``dashboard`` at its ``gridPos``, for its time range (or
        ``start``/``end``: ``"now-30m"``, Unix seconds) and its variables (``variables`` overrides their
        current values: ``{"namespace": "shop"}``). ``marks``: moments to draw on time series (label → time)."""
        from .views import draw_dashboard

        model = load(dashboard)
        span = self.time_range(model, start, end)
        values = self.variables(model, variables, span)
        results = [self.run_panel(p, values, span) for p in panels(model)]
        figure = draw_dashboard(model, results, values, span, marks or {})
        return Rendered(figure, results, values, span)

    def live(self, dashboard: dict[str, Any] | str | Path, seconds: float = 60, every: float = 5,
             live: bool = True, **kw: Any) -> Rendered:
        """Render ``dashboard`` again every ``every`` seconds for ``seconds`` in one output (a notebook's live
        view); with ``live`` false (CI), once."""
        from .views import refresh_in_place

        return refresh_in_place(lambda: self.render(dashboard, **kw), seconds, every, live)


class Raw(str):
    """A variable value put into queries as written (a custom ``allValue`` such as ``.*``)."""


VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::(?P<fmt>\w+))?\}|\$(?P<bare>\w+)|\[\[(?P<square>\w+)\]\]")
REGEX_SPECIALS = re.compile(r"[\\^$*+?.()|{}\[\]]")


def prometheus_regex_escape(value: str) -> str:
    """A value escaped for a PromQL regex matcher, as Grafana's Prometheus data source escapes it."""
    return REGEX_SPECIALS.sub(lambda m: "\\\\" + m.group(0), value)


def apply_regex(found: list[str], pattern: str) -> list[str]:
    """A variable's ``regex`` (``/…/``): keep matching values, or the first capture group when it has one."""
    body = pattern.strip()
    if body.startswith("/") and body.rfind("/") > 0:
        body = body[1:body.rfind("/")]
    compiled = re.compile(body)
    out = []
    for value in found:
        m = compiled.search(value)
        if m:
            out.append(m.group("value") if "value" in compiled.groupindex else (m.group(1) if m.groups()
                                                                                else value))
    return out


def natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def legend_name(legend: str, row: dict[str, Any], values: dict[str, list[str]], grafana: Grafana,
                span: TimeRange) -> str:
    """A series' name on the panel: ``legendFormat`` with ``{{label}}`` filled in (``__auto`` or empty: the
    series as Prometheus writes it)."""
    if not legend or legend == "__auto":
        series = str(row.get("series", ""))
        return "" if series == "{}" else series
    def label(m: re.Match[str]) -> str:
        value = row.get(m.group(1))
        return value if isinstance(value, str) else ""  # a series without the label: empty, as Grafana

    filled = re.sub(r"\{\{\s*([^}\s]+)\s*\}\}", label, legend)
    return grafana.interpolate(filled, values, span, regex=False)
