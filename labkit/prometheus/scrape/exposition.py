"""A scrape's body as Prometheus reads it: the text format 0.0.4 or OpenMetrics 1.0 (by the answer's
Content-Type), into samples and per-family metadata (type, help, unit)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families as text_families

ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")  # what Prometheus 2.42 asks a target for


@dataclass(frozen=True)
class Metadata:
    type: str
    help: str
    unit: str = ""


@dataclass
class Exposition:
    samples: list[tuple[str, dict[str, str], float, int | None]] = field(default_factory=list)  # name, labels, v, ms
    metadata: dict[str, Metadata] = field(default_factory=dict)


def is_openmetrics(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "application/openmetrics-text"


def parse(body: str, content_type: str) -> Exposition:
    """Samples and metadata of one scrape; ValueError (the parser's message) when the body is malformed."""
    om = is_openmetrics(content_type)
    out = Exposition()
    for family in (openmetrics_families if om else text_families)(body):
        out.metadata[family.name] = Metadata(family.type, family.documentation, getattr(family, "unit", "") or "")
        for s in family.samples:
            ts = s.timestamp
            ms = None
            if ts is not None:
                ms = round(float(ts.sec + ts.nsec / 1e9 if hasattr(ts, "sec") else ts) * 1000)
            out.samples.append((s.name, dict(s.labels), float(s.value), ms))
    return out
