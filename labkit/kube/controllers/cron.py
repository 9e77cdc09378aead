"""Cron schedules as Kubernetes parses them (robfig/cron's standard parser): five fields with ranges, steps,
lists and names, the ``@hourly``-style macros and ``@every <duration>``; the next time after a moment, in a
time zone. Parse errors carry the parser's own words, which the API server quotes in its 422."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                           "nov", "dec"))}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (minimum, maximum, names) of minute, hour, day of month, month, day of week
_BOUNDS: tuple[tuple[int, int, dict[str, int]], ...] = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS),
                                                        (0, 6, _DAYS))
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class CronError(ValueError):
    """An unparseable schedule, in robfig/cron's words."""


@dataclass(frozen=True)
class Field:
    values: frozenset[int]
    star: bool  # written as * or ? (robfig's star bit): day of month and day of week then combine with AND


def _int(text: str, expr: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise CronError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax')
    value = int(text)
    if value < 0:
        raise CronError(f"negative number ({value}) not allowed: {text}")
    return value


def _value(text: str, names: dict[str, int], expr: str) -> int:
    return names[text.lower()] if text.lower() in names else _int(text, expr)


def _range(expr: str, low: int, high: int, names: dict[str, int]) -> tuple[set[int], bool]:
    range_step = expr.split("/")
    low_high = range_step[0].split("-")
    star = False
    if low_high[0] in ("*", "?"):
        start, end, star = low, high, True
    else:
        start = _value(low_high[0], names, expr)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _value(low_high[1], names, expr)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_step) == 1:
        step = 1
    elif len(range_step) == 2:
        step = _int(range_step[1], expr)
        if len(low_high) == 1 and not star:  # "N/step" means "N-max/step"
            end = high
        if step > 1:
            star = False
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < low:
        raise CronError(f"beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise CronError(f"end of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star


def _field(text: str, bounds: tuple[int, int, dict[str, int]]) -> Field:
    values: set[int] = set()
    star = False
    for part in text.split(","):
        got, part_star = _range(part, *bounds)
        values |= got
        star = star or part_star
    return Field(frozenset(values), star)


def _duration(text: str) -> float:
    """A Go duration (``1h30m``, ``90s``) in seconds."""
    if not text or _DURATION.sub("", text) != "":
        raise CronError(f'failed to parse duration @every {text}: time: invalid duration "{text}"')
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(text))


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; ``every`` (seconds) for ``@every``, else the five fields."""

    fields: tuple[Field, ...] = ()
    every: float = 0.0

    def _day_matches(self, day: dt.datetime) -> bool:
        dom, dow = self.fields[2], self.fields[4]
        in_dom = day.day in dom.values
        in_dow = (day.isoweekday() % 7) in dow.values
        return in_dom and in_dow if dom.star or dow.star else in_dom or in_dow

    def next(self, after: dt.datetime, tz: dt.tzinfo = dt.UTC) -> dt.datetime | None:
        """The first activation strictly after ``after`` (aware), in ``tz``'s wall clock; None if none within five
        years (as robfig gives up)."""
        if self.every:
            whole = max(1, int(self.every))
            return after.replace(microsecond=0) + dt.timedelta(seconds=whole)
        local = after.astimezone(tz)
        t = local.replace(tzinfo=None, second=0, microsecond=0) + dt.timedelta(minutes=1)
        limit = t.year + 5
        minute, hour, _, month, _ = self.fields
        while t.year <= limit:
            if t.month not in month.values:
                t = (t.replace(day=1, hour=0, minute=0) + dt.timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + dt.timedelta(days=1)
                continue
            if t.hour not in hour.values:
                t = t.replace(minute=0) + dt.timedelta(hours=1)
                continue
            if t.minute not in minute.values:
                t += dt.timedelta(minutes=1)
                continue
            aware = t.replace(tzinfo=tz)
            if aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != t:  # skipped by a DST change
                t += dt.timedelta(minutes=1)
                continue
            if aware <= after:
                t += dt.timedelta(minutes=1)
                continue
            return aware
        return None


def parse(spec: str) -> Schedule:
    """Parse a schedule as ``cron.ParseStandard``; raises CronError with its message."""
    spec = spec.strip()
    if not spec:
        raise CronError("empty spec string")
    if spec.startswith(("TZ=", "CRON_TZ=")):  # the parser takes a zone prefix (the API server then refuses it)
        location, _, spec = spec.partition(" ")
        location = location.partition("=")[2]
        try:
            zone(location)
        except (ValueError, KeyError) as err:
            raise CronError(f"provided bad location {location}: unknown time zone {location}") from err
        spec = spec.strip()
    if spec.startswith("@"):
        if spec.startswith("@every "):
            seconds = _duration(spec[len("@every "):].strip())
            return Schedule(every=max(seconds, 1.0))
        if spec not in MACROS:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = MACROS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    return Schedule(tuple(_field(f, b) for f, b in zip(fields, _BOUNDS, strict=True)))


def zone(name: str | None) -> dt.tzinfo:
    """The IANA zone of a CronJob's ``spec.timeZone`` (UTC, the lab controller's local zone, when unset)."""
    return ZoneInfo(name) if name else dt.UTC
