"""Harbor's schedules (scheduled tag retention, scan all): its cron has six fields, seconds first, as robfig/cron
parses it with seconds; read here with croniter. ``run_schedules`` fires each schedule when it comes due."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from croniter import croniter

JOBSERVICE = "harbor-jobservice"  # who Harbor's jobservice acts as (scheduled runs, retention deletes)
FIELDS = 6
TICK = 0.5  # seconds between looks at the clock (the cron has a seconds field)
# the cron of Harbor's preset schedule types
PRESETS = {"Hourly": "0 0 * * * *", "Daily": "0 0 0 * * *", "Weekly": "0 0 0 * * 0"}


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


async def run_schedules(schedules: Callable[[], Mapping[Any, str]], fire: Callable[[Any], None],
                        logger: logging.Logger) -> None:
    """Until cancelled: call ``fire(key)`` whenever the cron ``schedules()[key]`` comes due (a changed cron
    counts from the moment it is seen)."""
    due: dict[Any, tuple[str, float]] = {}
    while True:
        now = time.time()
        crons = schedules()
        for key, cron in crons.items():
            if key not in due or due[key][0] != cron:
                due[key] = (cron, next_run(cron, now))
            elif now >= due[key][1]:
                due[key] = (cron, next_run(cron, now))
                try:
                    fire(key)
                except Exception:
                    logger.exception("the schedule %s (%s) failed to run", key, cron)
        for gone in set(due) - set(crons):
            del due[gone]
        await asyncio.sleep(TICK)
