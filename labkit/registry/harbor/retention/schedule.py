"""Scheduled retention: Harbor's cron (six fields, seconds first, as robfig/cron parses it with seconds) read with
croniter; the next time after a moment, in UTC."""

from __future__ import annotations

import datetime as dt

from croniter import croniter

FIELDS = 6


def check(spec: str) -> str | None:
    """Why ``spec`` is not a schedule Harbor takes (its error's words), or None."""
    fields = spec.split()
    if len(fields) != FIELDS:
        return f"expected exactly {FIELDS} fields, found {len(fields)}: [{' '.join(fields)}]"
    if not croniter.is_valid(spec, second_at_beginning=True):
        return f"invalid cron expression: [{spec}]"
    return None


def next_run(spec: str, after: float) -> float:
    """The first activation of ``spec`` strictly after ``after`` (Unix seconds)."""
    start = dt.datetime.fromtimestamp(after, dt.UTC)
    return float(croniter(spec, start, second_at_beginning=True).get_next(float))
