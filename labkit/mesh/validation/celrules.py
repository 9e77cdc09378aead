"""The CEL rules (``x-kubernetes-validations``) of Istio's CRDs that the API server evaluates before any webhook.

Istio 1.27 moved some checks from its webhook into its CRDs: every duration (``timeout``, ``fixedDelay``,
``interval``, ``baseEjectionTime`` …) must be ``duration(self) >= duration('1ms')``, ports must lie in 1..65535,
some hosts may not hold ``*``; a string ``duration()`` cannot read is CEL's evaluation error
(``type conversion error from 'string' to 'google.protobuf.Duration' evaluating rule: must be a valid duration
greater than 1ms``). The sim's API server has no CEL interpreter, so this module knows those rules by
their exact text and walks the CRD's schema beside the object; a failure is the API server's own answer
(422 Invalid, ``spec.http[0].timeout: Invalid value: "string": must be a valid duration greater than 1ms``, the value
shown as its type, as apiextensions-apiserver words it). Rules on whole objects (one-of checks) are not evaluated by
the labkit simulator; the webhook's checks (``validation``) cover what the lab uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration(text: str) -> float | None:
    """Seconds of a Go duration (``time.ParseDuration``, as CEL's ``duration()`` reads it); None if malformed."""
    sign, rest = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.removeprefix("+"))
    if rest == "0":
        return 0.0
    total, pos = 0.0, 0
    for m in _PART.finditer(rest):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total if rest and pos == len(rest) else None


CONVERSION_ERROR = "type conversion error from 'string' to 'google.protobuf.Duration'"  # cel-go's words


def _duration_at_least_1ms(value: Any) -> bool | str:
    """True, False, or the CEL evaluation error of a string ``duration()`` cannot read."""
    seconds = go_duration(value) if isinstance(value, str) else None
    return CONVERSION_ERROR if seconds is None else seconds >= 1e-3


RULES: dict[str, Callable[[Any], bool | str]] = {
    "duration(self) >= duration('1ms')": _duration_at_least_1ms,
    "0 < self && self <= 65535": lambda v: not isinstance(v, int) or 0 < v <= 65535,
    'self != "*"': lambda v: v != "*",
    '!self.contains("*")': lambda v: not isinstance(v, str) or "*" not in v,
}


def _type(schema: dict[str, Any], value: Any) -> str:
    return str(schema.get("type") or ("object" if isinstance(value, dict) else "string"))


def failures(schema: dict[str, Any], value: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """Every known rule ``value`` breaks: (field path, the value's schema type, the rule's message)."""
    for rule in schema.get("x-kubernetes-validations") or []:
        check = RULES.get(" ".join(str(rule.get("rule", "")).split()))
        verdict = True if check is None else check(value)
        message = str(rule.get("message") or "").strip()
        if isinstance(verdict, str):  # as apiextensions-apiserver words an evaluation error
            yield path, _type(schema, value), f"{verdict} evaluating rule: {message or rule['rule'].strip()}"
        elif not verdict:
            yield path, _type(schema, value), message or f"failed rule: {rule['rule'].strip()}"
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key) if key in props else extra if isinstance(extra, dict) else None
            if sub is not None:
                yield from failures(sub, item, (f"{path}.{key}" if path else key) if key in props else f"{path}[{key}]")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from failures(schema["items"], item, f"{path}[{i}]")
