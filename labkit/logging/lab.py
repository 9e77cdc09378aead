"""``lab.logging``: the lab's logs from a notebook, the same on every backend — Elasticsearch through
``elasticsearch-py`` with the endpoint's credentials (queries in KQL or Lucene, as Kibana's query bar), results as
pandas tables, and each node's Fluent Bit monitoring API. The Kibana-style drawings are in ``views.py``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.view import ProductView
from ..endpoints import LoggingEndpoint
from .chapter import LoggingChapter
from .kql import Query, kql_to_dsl, lucene_to_dsl

if TYPE_CHECKING:
    import pandas as pd
    from elasticsearch import Elasticsearch

INDEX = "logstash-*"  # the pipeline's daily indices (manifests/logging/fluent-bit.yaml)
TIME_FIELD = "@timestamp"
LEVEL_FIELD = "level"
TimeLike = datetime | str


def es_time(value: TimeLike) -> str:
    """A time as Elasticsearch's range query takes it: date math (``now-15m``) as is, a datetime in ISO form."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    return value


def build_query(query: str = "", language: str = "kql", start: TimeLike = "now-15m",
                end: TimeLike = "now") -> Query:
    """Discover's query: the query bar (KQL or Lucene) within the time range on ``@timestamp``."""
    if language not in ("kql", "lucene"):
        raise ValueError(f"unknown query language {language!r}: use 'kql' or 'lucene'")
    bar = kql_to_dsl(query) if language == "kql" else lucene_to_dsl(query)
    time_range = {"range": {TIME_FIELD: {"gte": es_time(start), "lte": es_time(end),
                                         "format": "strict_date_optional_time"}}}
    return {"bool": {"filter": [bar, time_range]}}


def auto_interval(start: TimeLike, end: TimeLike) -> str:
    """A histogram interval giving about 30 to 60 buckets over the range (date math ranges are taken from now)."""
    span = (to_datetime(end) - to_datetime(start)).total_seconds()
    for seconds, text in ((1, "1s"), (5, "5s"), (10, "10s"), (30, "30s"), (60, "1m"), (300, "5m"), (600, "10m"),
                          (1800, "30m"), (3600, "1h"), (10800, "3h"), (43200, "12h")):
        if span / seconds <= 60:
            return text
    return "1d"


def to_datetime(value: TimeLike) -> datetime:
    """A datetime for a time or simple date math (``now``, ``now-15m``, ``now-2h``)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    now = datetime.now(UTC)
    if value == "now":
        return now
    if value.startswith("now-"):
        amount, unit = int(value[4:-1]), value[-1]
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
        return now - timedelta(seconds=amount * seconds)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class LoggingView(LoggingChapter, ProductView):
    """Search the lab's logs, count them by level, read the collectors' metrics."""

    @property
    def endpoint(self) -> LoggingEndpoint:
        return self.lab.endpoints.get(LoggingEndpoint)

    @property
    def client(self) -> Elasticsearch:
        """An ``elasticsearch-py`` client as the ``elastic`` user."""
        from elasticsearch import Elasticsearch

        ep = self.endpoint
        password = Path(ep.password_file).read_text().strip() if ep.password_file else ""
        tls: dict[str, Any] = {"ca_certs": ep.ca_file, "ssl_assert_hostname": False} if ep.ca_file else {}
        return Elasticsearch(ep.url, basic_auth=(ep.user, password), request_timeout=30, **tls)

    def search_raw(self, query: str = "", language: str = "kql", start: TimeLike = "now-15m",
                   end: TimeLike = "now", size: int = 100, index: str = INDEX,
                   aggs: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``_search`` answer for a query bar and time range, newest first."""
        body: dict[str, Any] = {"query": build_query(query, language, start, end), "size": size,
                                "sort": [{TIME_FIELD: {"order": "desc"}}], "track_total_hits": True}
        if aggs:
            body["aggs"] = aggs
        return self.client.search(index=index, ignore_unavailable=True, allow_no_indices=True, **body).body

    def search(self, query: str = "", language: str = "kql", start: TimeLike = "now-15m", end: TimeLike = "now",
               fields: list[str] | None = None, size: int = 100, index: str = INDEX) -> pd.DataFrame:
        """Hits as a table: ``@timestamp`` and the chosen fields (dotted names reach into objects)."""
        hits = self.search_raw(query, language, start, end, size, index)["hits"]["hits"]
        return hits_frame(hits, fields)

    def count(self, query: str = "", start: TimeLike = "now-15m", end: TimeLike = "now",
              language: str = "kql", index: str = INDEX) -> int:
        """How many lines match the query bar in the time range (``_count``)."""
        answer = self.client.count(index=index, query=build_query(query, language, start, end),
                                   ignore_unavailable=True, allow_no_indices=True)
        return int(answer["count"])

    def count_by_level(self, query: str = "", language: str = "kql", start: TimeLike = "now-15m",
                       end: TimeLike = "now", interval: str | None = None, index: str = INDEX) -> pd.DataFrame:
        """Log lines per time bucket (rows) and level (columns): a ``date_histogram`` with a ``terms``
        sub-aggregation on ``level``."""
        import pandas as pd

        aggs = {"over_time": {"date_histogram": {"field": TIME_FIELD,
                                                 "fixed_interval": interval or auto_interval(start, end),
                                                 "min_doc_count": 0},
                              "aggs": {"levels": {"terms": {"field": LEVEL_FIELD + ".keyword", "size": 10}}}}}
        answer = self.search_raw(query, language, start, end, 0, index, aggs)
        buckets = answer.get("aggregations", {}).get("over_time", {}).get("buckets", [])
        rows = {pd.Timestamp(b["key"], unit="ms", tz="UTC"): {lv["key"]: lv["doc_count"]
                                                               for lv in b["levels"]["buckets"]}
                for b in buckets}
        frame = pd.DataFrame.from_dict(rows, orient="index").fillna(0).astype(int)
        frame.index.name = TIME_FIELD
        return frame.sort_index()

    def fluentbit_metrics(self) -> pd.DataFrame:
        """Each node's Fluent Bit counters (``/api/v1/metrics``): one row per node and plugin, with records,
        bytes, errors, retries and dropped records."""
        import pandas as pd
        import requests

        rows = []
        for node, url in sorted(self.endpoint.fluentbit.items()):
            data = requests.get(url.rstrip("/") + "/api/v1/metrics", timeout=10).json()
            for section, plugins in data.items():
                for plugin, counters in plugins.items():
                    rows.append({"node": node, "section": section, "plugin": plugin, **counters})
        return pd.DataFrame(rows)

    def discover(self, query: str = "", language: str = "kql", start: TimeLike = "now-15m", end: TimeLike = "now",
                 fields: list[str] | None = None, size: int = 50) -> pd.DataFrame:
        """Kibana's Discover: the hits histogram drawn, the hits table returned."""
        from .views import discover

        return discover(self, query, language, start, end, fields, size)


def field_value(source: dict[str, Any], name: str) -> Any:
    """A field of ``_source`` by its dotted name (a literal dotted key first)."""
    if name in source:
        return source[name]
    value: Any = source
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def hits_frame(hits: list[dict[str, Any]], fields: list[str] | None) -> pd.DataFrame:
    """Hits as a table: ``@timestamp`` then the chosen fields (all of ``_source`` when none are chosen)."""
    import pandas as pd

    rows = []
    for hit in hits:
        source = hit.get("_source", {})
        names = fields or [k for k in source if k != TIME_FIELD]
        rows.append({TIME_FIELD: source.get(TIME_FIELD), **{n: field_value(source, n) for n in names}})
    frame = pd.DataFrame(rows)
    if TIME_FIELD in frame:
        frame[TIME_FIELD] = pd.to_datetime(frame[TIME_FIELD], utc=True, format="ISO8601")
    return frame
