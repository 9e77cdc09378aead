"""Durations as GitLab reads them (ChronicDuration): ``timeout``, ``start_in``, ``expire_in``."""

from __future__ import annotations

import re
from typing import Any

_UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60, "minute": 60,
          "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400,
          "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}


def duration(text: Any) -> int | None:
    """Seconds in a duration as ChronicDuration reads the common forms (``1h 30m``, ``90 minutes``, ``600``)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text)
    if not isinstance(text, str):
        return None
    s = text.strip().lower().replace(" and ", " ")
    if re.fullmatch(r"\d+", s):
        return int(s)
    if re.fullmatch(r"\d+:\d{2}(:\d{2})?", s):
        parts = [int(p) for p in s.split(":")]
        return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)\s*([a-z]+)\s*,?\s*", s):
        if m.start() != pos or m.group(2) not in _UNITS:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return int(total) if pos == len(s) and pos else None
