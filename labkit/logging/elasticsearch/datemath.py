"""Elasticsearch's date math: ``now-15m``, ``now/d``, ``2024-01-01||+1M/d``, epoch millis."""

from __future__ import annotations

import calendar
import datetime as dt
import re
import time

from . import mapping
from .errors import es_error

UNITS = "yMwdhHms"
STEP = re.compile(r"([+-]\d+|/)([yMwdhHms])")


def parse(text: str | float | int, round_up: bool = False, now_ms: float | None = None) -> float:
    """Epoch milliseconds of a date-math expression; ``round_up`` for ``lte``/``gt`` bounds (ends of a period)."""
    if isinstance(text, int | float):
        return float(text)
    if text.startswith("now"):
        anchor, expr = (now_ms if now_ms is not None else time.time() * 1000), text[3:]
    else:
        date, _, expr = text.partition("||")
        anchor = mapping.parse_date(date)
        if anchor is None:
            raise es_error(400, "parse_exception", f"failed to parse date field [{text}] with format "
                           "[strict_date_optional_time||epoch_millis]")
    d = dt.datetime.fromtimestamp(anchor / 1000, dt.UTC)
    pos = 0
    while pos < len(expr):
        m = STEP.match(expr, pos)
        if not m:
            raise es_error(400, "parse_exception", f"operator not supported for date math [{expr}]")
        op, unit = m.groups()
        d = round_to(d, unit, round_up) if op == "/" else add(d, int(op), unit)
        pos = m.end()
    return d.timestamp() * 1000


def add(d: dt.datetime, n: int, unit: str) -> dt.datetime:
    if unit in "yM":
        months = d.month - 1 + n * (12 if unit == "y" else 1)
        year, month = d.year + months // 12, months % 12 + 1
        return d.replace(year=year, month=month, day=min(d.day, calendar.monthrange(year, month)[1]))
    return d + dt.timedelta(**{{"w": "weeks", "d": "days", "h": "hours", "H": "hours", "m": "minutes",
                                "s": "seconds"}[unit]: n})


def round_to(d: dt.datetime, unit: str, up: bool) -> dt.datetime:
    """The start of ``d``'s period (``up``: its last millisecond, as Elasticsearch rounds ``lte`` bounds)."""
    start = {
        "y": d.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
        "M": d.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        "w": (d - dt.timedelta(days=d.weekday())).replace(hour=0, minute=0, second=0, microsecond=0),
        "d": d.replace(hour=0, minute=0, second=0, microsecond=0),
        "h": d.replace(minute=0, second=0, microsecond=0),
        "H": d.replace(minute=0, second=0, microsecond=0),
        "m": d.replace(second=0, microsecond=0),
        "s": d.replace(microsecond=0),
    }[unit]
    if not up:
        return start
    return add(start, 1, unit) - dt.timedelta(milliseconds=1)
