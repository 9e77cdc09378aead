"""Query parameters parsed as Jaeger's Go code parses them, failing with the same messages: Go's
``time.ParseDuration`` (``1.2s``, ``100ms``, ``1h30m``), ``strconv`` integers and booleans, and Jaeger's trace ids
(up to 32 hex digits, or base64 of 16 bytes)."""

from __future__ import annotations

import base64
import binascii
import re

GO_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}
_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")
INT64 = 2**63


class ParamError(ValueError):
    """A parameter Jaeger would refuse; the message is Go's."""


def go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_go_duration(text: str) -> int:
    """Nanoseconds in a Go duration string, as ``time.ParseDuration``."""
    orig, s = text, text
    negative = s[:1] == "-"
    if s[:1] in "+-" and s:
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ParamError(f"time: invalid duration {go_quote(orig)}")
    total = 0.0
    while s:
        m = _PART.match(s)
        number, unit = (m.group(1), m.group(2)) if m else ("", "")
        if number in ("", "."):
            raise ParamError(f"time: invalid duration {go_quote(orig)}")
        if not unit:
            raise ParamError(f"time: missing unit in duration {go_quote(orig)}")
        if unit not in GO_UNITS:
            raise ParamError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(orig)}")
        total += float(number) * GO_UNITS[unit]
        s = s[len(number) + len(unit):]
    if total >= INT64:
        raise ParamError(f"time: invalid duration {go_quote(orig)}")
    return -int(total) if negative else int(total)


def parse_go_int(text: str) -> int:
    """``strconv.ParseInt(text, 10, 64)``."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ParamError(f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not -INT64 <= value < INT64:
        raise ParamError(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    return value


def parse_go_bool(text: str) -> bool:
    """``strconv.ParseBool``."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ParamError(f"strconv.ParseBool: parsing {go_quote(text)}: invalid syntax")


def _parse_hex_uint(text: str) -> int:
    if not text or not re.fullmatch(r"[0-9a-fA-F]+", text):
        raise ParamError(f"strconv.ParseUint: parsing {go_quote(text)}: invalid syntax")
    return int(text, 16)


def parse_trace_id(text: str) -> str:
    """A trace id (hex of up to 32 digits, or base64 of 16 bytes) as the 32 hex digits the store keys by."""
    try:
        if len(text) > 32:
            raise ParamError(f"TraceID cannot be longer than 32 hex characters: {text}")
        if len(text) > 16:
            high, low = _parse_hex_uint(text[:-16]), _parse_hex_uint(text[-16:])
        else:
            high, low = 0, _parse_hex_uint(text)
        return f"{high:016x}{low:016x}"
    except ParamError:
        if len(text) <= 24:
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                for padded in (text, text + "=" * (-len(text) % 4)):
                    try:
                        raw = decode(padded.encode(), validate=True) if decode is base64.b64decode \
                            else decode(padded.encode())
                    except (binascii.Error, ValueError):
                        continue
                    if len(raw) == 16:
                        return raw.hex()
        raise
