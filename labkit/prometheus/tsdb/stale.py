"""Prometheus' staleness marker: a NaN with one exact bit pattern (``value.StaleNaN``), told apart from other NaNs."""

from __future__ import annotations

import struct

STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]


def is_stale(value: float) -> bool:
    """Whether ``value`` is the staleness marker (not just any NaN)."""
    return value != value and struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS
