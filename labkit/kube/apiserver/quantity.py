"""Kubernetes resource quantities (``250m``, ``128Mi``, ``1.5``, ``2e3``) as exact numbers, and back.

The parts of ``k8s.io/apimachinery/pkg/api/resource.Quantity`` the autoscaler needs: its milli-value (rounded
up, as ``MilliValue()`` does) and the canonical string of a milli-value in the decimal SI format
(``resource.NewMilliQuantity(v, resource.DecimalSI).String()``).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
             "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
             "P": Decimal("1e15"), "E": Decimal("1e18"), "Ki": Decimal(2**10), "Mi": Decimal(2**20),
             "Gi": Decimal(2**30), "Ti": Decimal(2**40), "Pi": Decimal(2**50), "Ei": Decimal(2**60)}
_FORMAT = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
# resource.ErrFormatWrong, ErrSuffix and ErrNumeric, as the API server's decoder reports them
FORMAT_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
SUFFIX_ERROR = "unable to parse quantity's suffix"
NUMERIC_ERROR = "unable to parse numeric part of quantity"


def parse(value: str | int | float) -> Decimal:
    """The exact value of a quantity; ``ValueError`` (with the API server's message) when it is not one."""
    if isinstance(value, bool):
        raise ValueError(FORMAT_ERROR)
    if isinstance(value, int | float):
        return Decimal(str(value))
    m = _FORMAT.match(value.strip())
    if not m:
        raise ValueError(FORMAT_ERROR)
    number, suffix = m.groups()
    exponent = re.fullmatch(r"[eE]([-+]?[0-9]+)", suffix)
    if suffix not in _SUFFIXES and exponent is None:
        raise ValueError(SUFFIX_ERROR)
    try:
        scale = Decimal(10) ** int(exponent.group(1)) if exponent else _SUFFIXES[suffix]
        return Decimal(number) * scale
    except InvalidOperation:
        raise ValueError(NUMERIC_ERROR) from None


def milli(value: str | int | float) -> int:
    """``Quantity.MilliValue()``: the value in thousandths, rounded up."""
    return math.ceil(parse(value) * 1000)


def format_milli(value: int) -> str:
    """The canonical decimal-SI string of a milli-value: ``35m``, ``2``, ``1500m``, ``52428800``, ``100M``."""
    if value == 0:
        return "0"
    if value % 1000:
        return f"{value}m"
    units, suffix = value // 1000, ""
    for next_suffix in ("k", "M", "G", "T", "P", "E"):
        if units % 1000:
            break
        units, suffix = units // 1000, next_suffix
    return f"{units}{suffix}"


def format_binary(value: int) -> str:
    """The canonical binary-SI string of a whole number of bytes: ``256Mi``, ``1Gi``, ``1500``."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        size = int(_SUFFIXES[suffix])
        if value and value % size == 0:
            return f"{value // size}{suffix}"
    return str(value)
