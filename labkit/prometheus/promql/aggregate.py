"""Aggregation operators (``sum``, ``avg``, ``min``, ``max``, ``count``, ``group``, ``stddev``, ``stdvar``,
``topk``, ``bottomk``, ``quantile``, ``count_values``) with ``by``/``without``, evaluated for every step at once."""

from __future__ import annotations

import numpy as np

from .errors import execution
from .functions import LABEL_NAME
from .range_functions import quantile
from .values import NAME, Row, format_value, key

NAN = float("nan")


def group_labels(labels: dict[str, str], names: list[str], without: bool) -> dict[str, str]:
    if without:
        drop = set(names) | {NAME}
        return {k: v for k, v in labels.items() if k not in drop}
    keep = set(names)
    return {k: v for k, v in labels.items() if k in keep}


def aggregate(op: str, rows: list[Row], names: list[str], without: bool, param: np.ndarray | str | None,
              n: int) -> list[Row]:
    if op == "count_values":
        return _count_values(str(param), rows, names, without, n)
    groups: dict[tuple, tuple[dict[str, str], list[Row]]] = {}
    for r in rows:
        labels = group_labels(r.labels, names, without)
        groups.setdefault(key(labels), (labels, []))[1].append(r)
    if op in ("topk", "bottomk"):
        return _top(op, groups, param, n)  # type: ignore[arg-type]
    out = []
    for labels, members in groups.values():
        values = np.vstack([m.v for m in members])
        ok = np.vstack([m.ok for m in members])
        present = ok.any(axis=0)
        count = ok.sum(axis=0)
        with np.errstate(all="ignore"):
            if op == "sum":
                v = np.where(ok, values, 0.0).sum(axis=0)
            elif op == "avg":
                v = np.where(ok, values, 0.0).sum(axis=0) / count
            elif op == "count":
                v = count.astype(np.float64)
            elif op == "group":
                v = np.ones(n)
            elif op in ("min", "max"):
                masked = np.where(ok, values, NAN)
                v = np.full(n, NAN)
                has = (~np.isnan(masked)).any(axis=0)
                fn = np.nanmin if op == "min" else np.nanmax
                if has.any():
                    v[has] = fn(masked[:, has], axis=0)
            elif op in ("stddev", "stdvar"):
                mean = np.where(ok, values, 0.0).sum(axis=0) / count
                var = (np.where(ok, (values - mean) ** 2, 0.0)).sum(axis=0) / count
                v = np.sqrt(var) if op == "stddev" else var
            elif op == "quantile":
                q = param
                v = np.full(n, NAN)
                for i in np.nonzero(present)[0]:
                    v[i] = quantile(float(q[i]), values[ok[:, i], i])  # type: ignore[index]
            else:
                raise execution(f"unknown aggregation operator {op!r}")
        out.append(Row(labels, v, present))
    return [r for r in out if r.ok.any()]


def _top(op: str, groups: dict[tuple, tuple[dict[str, str], list[Row]]], param: np.ndarray, n: int) -> list[Row]:
    """Each group's ``k`` largest (smallest) at every step; NaN ranks last for both, as Prometheus' heaps do."""
    k = np.where(np.isnan(param), 0, param)
    with np.errstate(all="ignore"):
        k = np.clip(k, -1, 2**31).astype(np.int64)
    out: list[Row] = []
    for _, members in groups.values():
        values = np.vstack([m.v for m in members])
        ok = np.vstack([m.ok for m in members])
        category = np.where(ok, np.where(np.isnan(values), 1, 0), 2)  # values, then NaN, then absent
        score = np.where(category == 0, -values if op == "topk" else values, 0.0)
        order = np.lexsort((score, category), axis=0)
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(len(members))[:, None].repeat(n, axis=1), axis=0)
        keep = ok & (rank < k[None, :])
        for j, m in enumerate(members):
            if keep[j].any():
                out.append(Row(m.labels, m.v, keep[j]))
    return out


def _count_values(label: str, rows: list[Row], names: list[str], without: bool, n: int) -> list[Row]:
    if not LABEL_NAME.match(label):
        raise execution(f"invalid label name {label!r}".replace("'", '"'))
    counts: dict[tuple, tuple[dict[str, str], np.ndarray]] = {}
    for r in rows:
        base = group_labels(r.labels, names, without)
        for i in np.nonzero(r.ok)[0]:
            labels = {**base, label: format_value(float(r.v[i]))}
            entry = counts.setdefault(key(labels), (labels, np.zeros(n)))
            entry[1][i] += 1
    return [Row(labels, c, c > 0) for labels, c in counts.values()]
