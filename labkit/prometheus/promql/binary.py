"""Binary operators: arithmetic, comparisons (filtering, or 0/1 with ``bool``), ``and``/``or``/``unless``, with
vector matching (``on``/``ignoring``, ``group_left``/``group_right``), evaluated for every step at once."""

from __future__ import annotations

import numpy as np

from .errors import PromQLError, execution
from .values import NAME, Row, key, merge_rows

NAN = float("nan")
COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
SET_OPS = {"and", "or", "unless"}


def arith(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if op == "%":
            return np.fmod(a, b)
        if op == "^":
            return np.power(a, b)
        if op == "atan2":
            return np.arctan2(a, b)
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        if op == ">":
            return a > b
        if op == "<":
            return a < b
        if op == ">=":
            return a >= b
        if op == "<=":
            return a <= b
    raise execution(f"operator {op!r} not allowed here")


def drops_name(op: str, return_bool: bool) -> bool:
    """Arithmetic and ``bool`` comparisons drop the metric name; 2.42 keeps it for ``atan2``."""
    return op in ("+", "-", "*", "/", "%", "^") or (op in COMPARISONS and return_bool)


def vector_scalar(op: str, rows: list[Row], s: np.ndarray, scalar_left: bool, return_bool: bool, n: int
                  ) -> list[Row]:
    out = []
    for r in rows:
        a, b = (s, r.v) if scalar_left else (r.v, s)
        res = arith(op, a, b)
        labels = {k: v for k, v in r.labels.items() if k != NAME} if drops_name(op, return_bool) else r.labels
        if op in COMPARISONS:
            if return_bool:
                out.append(Row(labels, res.astype(np.float64), r.ok))
            else:
                out.append(Row(labels, r.v, r.ok & res))
        else:
            out.append(Row(labels, res, r.ok))
    return merge_rows(out, n)


def signature(labels: dict[str, str], on: bool, names: list[str]) -> tuple:
    if on:
        return tuple((k, labels.get(k, "")) for k in sorted(set(names)))
    drop = set(names) | {NAME}
    return key({k: v for k, v in labels.items() if k not in drop})


def set_op(op: str, lhs: list[Row], rhs: list[Row], on: bool, names: list[str], n: int) -> list[Row]:
    present: dict[tuple, np.ndarray] = {}
    for r in rhs if op != "or" else lhs:
        sig = signature(r.labels, on, names)
        present[sig] = present.get(sig, np.zeros(n, bool)) | r.ok
    if op == "and":
        rows = [Row(r.labels, r.v, r.ok & present.get(signature(r.labels, on, names), np.zeros(n, bool)))
                for r in lhs]
    elif op == "unless":
        rows = [Row(r.labels, r.v, r.ok & ~present.get(signature(r.labels, on, names), np.zeros(n, bool)))
                for r in lhs]
    else:
        rows = list(lhs) + [Row(r.labels, r.v, r.ok & ~present.get(signature(r.labels, on, names),
                                                                     np.zeros(n, bool))) for r in rhs]
    return [r for r in rows if r.ok.any()]


def _fmt(sig: tuple) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sig) + "}"


def vector_vector(op: str, lhs: list[Row], rhs: list[Row], card: str, on: bool, names: list[str],
                  include: list[str], return_bool: bool, n: int) -> list[Row]:
    """``card`` is ``one-to-one``, ``many-to-one`` (group_left) or ``one-to-many`` (group_right)."""
    if card == "one-to-many":
        lhs, rhs = rhs, lhs
    ones: dict[tuple, list[Row]] = {}
    for r in rhs:
        ones.setdefault(signature(r.labels, on, names), []).append(r)
    for sig, group in ones.items():  # the "one" side must be unique at every step
        if len(group) > 1:
            stacked = np.vstack([g.ok for g in group]).sum(axis=0)
            if (stacked > 1).any():
                side = "left" if card == "one-to-many" else "right"
                raise execution(f"found duplicate series for the match group {_fmt(sig)} on the {side} hand-side "
                                "of the operation: [...];many-to-many matching not allowed: matching labels must "
                                "be unique on one side")
    out: list[Row] = []
    seen: dict[tuple, np.ndarray] = {}
    for left in lhs:
        sig = signature(left.labels, on, names)
        for right in ones.get(sig, []):
            both = left.ok & right.ok
            if not both.any():
                continue
            if card == "one-to-one":
                taken = seen.get(sig)
                if taken is not None and (taken & both).any():
                    raise execution("multiple matches for labels: many-to-one matching must be explicit "
                                    "(group_left/group_right)")
                seen[sig] = both if taken is None else taken | both
            a, b = (right.v, left.v) if card == "one-to-many" else (left.v, right.v)
            res = arith(op, a, b)
            labels = _result_labels(left.labels, right.labels, op, card, on, names, include, return_bool)
            if op in COMPARISONS and not return_bool:
                out.append(Row(labels, a, both & res))
            else:
                out.append(Row(labels, res.astype(np.float64), both))
    try:
        return merge_rows(out, n)
    except PromQLError as e:
        if card != "one-to-one":
            raise execution("multiple matches for labels: grouping labels must ensure unique matches") from e
        raise


def _result_labels(many: dict[str, str], one: dict[str, str], op: str, card: str, on: bool, names: list[str],
                   include: list[str], return_bool: bool) -> dict[str, str]:
    labels = dict(many)
    if drops_name(op, return_bool):
        labels.pop(NAME, None)
    if card == "one-to-one":
        if on:
            labels = {k: v for k, v in labels.items() if k in set(names)}
        else:
            for k in names:
                labels.pop(k, None)
    for k in include:
        if one.get(k, ""):
            labels[k] = one[k]
        else:
            labels.pop(k, None)
    return labels
