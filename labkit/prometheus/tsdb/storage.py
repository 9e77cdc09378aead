"""``Storage``: the sim Prometheus' time-series database.

Every series in retention is held in memory (timestamps and values in typed arrays) behind an inverted index of
label pairs; on disk, a write-ahead log of everything since the last compaction plus compacted blocks. ``open``
loads the blocks and replays the log, so samples acknowledged by ``append`` survive a SIGKILL. Retention is
counted back from the newest sample, as Prometheus' time-based retention is."""

from __future__ import annotations

import bisect
import threading
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import blocks as blk
from .matchers import Matcher
from .stale import STALE_NAN, is_stale
from .wal import SAMPLES, SERIES, WAL, encode_samples, encode_series

Labels = dict[str, str]
HOUR_MS = 3_600_000


@dataclass
class SeriesData:
    """One series' samples in a time range, oldest first (stale markers included)."""

    labels: Labels
    timestamps: array
    values: array


class _Series:
    __slots__ = ("labels", "ref", "t", "v")

    def __init__(self, ref: int, labels: Labels) -> None:
        self.ref, self.labels = ref, labels
        self.t: array = array("q")
        self.v: array = array("d")


class Storage:
    """Samples of labelled series kept under ``path`` for ``retention_seconds``.

    ``head_seconds`` is how much recent data stays only in the write-ahead log before being compacted into a block
    (Prometheus' head block: two hours)."""

    def __init__(self, path: Path | str, retention_seconds: float = 15 * 86400, head_seconds: float = 7200) -> None:
        self.path = Path(path)
        self.retention_ms = int(retention_seconds * 1000)
        self.head_ms = int(head_seconds * 1000)
        self._lock = threading.RLock()
        self._series: dict[int, _Series] = {}
        self._by_key: dict[tuple[tuple[str, str], ...], _Series] = {}
        self._postings: dict[str, dict[str, set[int]]] = {}
        self._next_ref = 1
        self.max_t = -(2**62)
        self._min_cache: int | None = None
        self.persisted_until = -(2**62)  # samples before this are in blocks; older appends are out of bounds
        self.rejected = 0
        self._blocks_dir = self.path / "blocks"
        self._load()
        self._wal = WAL(self.path / "wal")

    # -- loading -----------------------------------------------------------------------------------------------
    def _load(self) -> None:
        for block in blk.list_blocks(self._blocks_dir):
            for labels, ts, vs in blk.read_block(block):
                s = self._get_or_create(labels)
                s.t.extend(ts.tolist())
                s.v.extend(vs.tolist())
                self.max_t = max(self.max_t, int(ts[-1])) if len(ts) else self.max_t
            self.persisted_until = max(self.persisted_until, block.maxt)
        refs: dict[int, _Series] = {}
        for kind, record in WAL(self.path / "wal").replay():
            if kind == SERIES:
                ref, labels = record  # type: ignore[misc]
                refs[ref] = self._get_or_create(labels)
            elif kind == SAMPLES:
                for ref, t, v in record.tolist():  # type: ignore[union-attr]
                    s = refs.get(ref)
                    if s is not None and t >= self.persisted_until:
                        self._add(s, t, v)
        self._trim(self.max_t - self.retention_ms)  # blocks straddling the horizon hold older samples too

    # -- index ---------------------------------------------------------------------------------------------------
    def _get_or_create(self, labels: Labels) -> _Series:
        key = tuple(sorted(labels.items()))
        s = self._by_key.get(key)
        if s is None:
            s = _Series(self._next_ref, dict(key))
            self._next_ref += 1
            self._series[s.ref] = s
            self._by_key[key] = s
            for name, value in key:
                self._postings.setdefault(name, {}).setdefault(value, set()).add(s.ref)
        return s

    def _drop_series(self, s: _Series) -> None:
        del self._series[s.ref]
        del self._by_key[tuple(sorted(s.labels.items()))]
        for name, value in s.labels.items():
            values = self._postings[name]
            values[value].discard(s.ref)
            if not values[value]:
                del values[value]
            if not values:
                del self._postings[name]

    def _candidates(self, matchers: list[Matcher]) -> Iterable[_Series]:
        sets: list[set[int]] = []
        for m in matchers:
            if m.matches_empty:
                continue
            values = self._postings.get(m.name, {})
            if m.op == "=":
                sets.append(values.get(m.value, set()))
            else:
                refs: set[int] = set()
                for value, ids in values.items():
                    if m.matches(value):
                        refs |= ids
                sets.append(refs)
        if not sets:
            pool: Iterable[_Series] = list(self._series.values())
        else:
            sets.sort(key=len)
            refs = set(sets[0]).intersection(*sets[1:])
            pool = [self._series[r] for r in sorted(refs)]
        return [s for s in pool if all(m.matches(s.labels.get(m.name, "")) for m in matchers if m.matches_empty)]

    # -- writing -------------------------------------------------------------------------------------------------
    def _add(self, s: _Series, t: int, v: float) -> bool:
        if s.t and t <= s.t[-1]:
            if t == s.t[-1] and (s.v[-1] == v or (v != v and s.v[-1] != s.v[-1])):
                return False  # the same sample again
            self.rejected += 1
            return False
        if not s.t and self._min_cache is not None:
            self._min_cache = min(self._min_cache, t)
        s.t.append(t)
        s.v.append(v)
        if t > self.max_t:
            self.max_t = t
        return True

    def append(self, samples: Iterable[tuple[Labels, int, float]]) -> int:
        """Add samples ``(labels incl. __name__, t_ms, value)``; returns how many were new. Samples older than a
        series' newest, or older than what is already compacted, are rejected (counted in ``rejected``), as
        Prometheus rejects out-of-order and out-of-bounds samples."""
        with self._lock:
            records: list[bytes] = []
            refs: list[int] = []
            ts: list[int] = []
            vs: list[float] = []
            for labels, t, v in samples:
                t, v = int(t), float(v)
                key = tuple(sorted(labels.items()))
                s = self._by_key.get(key)
                if s is None:
                    if t < self.persisted_until:
                        self.rejected += 1
                        continue
                    s = self._get_or_create(labels)
                    records.append(encode_series(s.ref, s.labels))
                elif t < self.persisted_until:
                    self.rejected += 1
                    continue
                if self._add(s, t, v):
                    refs.append(s.ref)
                    ts.append(t)
                    vs.append(v)
            if refs:
                records.append(encode_samples(refs, ts, vs))
            self._wal.write(b"".join(records))
            if self.max_t - max(self.persisted_until, self._min_t()) >= self.head_ms * 3 // 2:
                self.compact()
            return len(refs)

    def mark_stale(self, labels: Labels, t_ms: int) -> bool:
        """Write Prometheus' staleness marker for a series that disappeared (no-op if it is unknown or already
        stale)."""
        return self.mark_stale_all([labels], t_ms) == 1

    def mark_stale_all(self, many: Iterable[Labels], t_ms: int) -> int:
        """``mark_stale`` for many series in one append (a target with thousands of series going away); how many
        were marked."""
        with self._lock:
            found = (self._by_key.get(tuple(sorted(labels.items()))) for labels in many)
            marks = [(s.labels, t_ms, STALE_NAN) for s in found if s is not None and s.t and not is_stale(s.v[-1])]
            return self.append(marks) if marks else 0

    # -- compaction and retention ---------------------------------------------------------------------------
    def _min_t(self) -> int:
        """The oldest sample in the head (kept between appends: a scan of every series per append was quadratic
        in the series a scrape brings)."""
        if self._min_cache is None:
            first = [s.t[0] for s in self._series.values() if s.t]
            if not first:
                return self.max_t  # nothing yet: not kept, the first sample sets it
            self._min_cache = min(first)
        return self._min_cache

    def compact(self) -> None:
        """Move samples older than the head window into a block, checkpoint the log, apply retention."""
        with self._lock:
            cut = self.max_t - self.head_ms // 2
            start = max(self.persisted_until, self._min_t())
            if cut > start:
                chunk = []
                for s in self._series.values():
                    lo = bisect.bisect_left(s.t, start)
                    hi = bisect.bisect_left(s.t, cut)
                    if hi > lo:
                        chunk.append((s.labels, np.array(s.t[lo:hi], np.int64), np.array(s.v[lo:hi], np.float64)))
                blk.write_block(self._blocks_dir, start, cut, chunk)
                self.persisted_until = cut
            self._apply_retention()
            records = []
            refs: list[int] = []
            ts: list[int] = []
            vs: list[float] = []
            for s in self._series.values():
                records.append(encode_series(s.ref, s.labels))
                lo = bisect.bisect_left(s.t, self.persisted_until)
                refs.extend([s.ref] * (len(s.t) - lo))
                ts.extend(s.t[lo:])
                vs.extend(s.v[lo:])
            if refs:
                records.append(encode_samples(refs, ts, vs))
            self._wal.checkpoint(b"".join(records))

    def _apply_retention(self) -> None:
        horizon = self.max_t - self.retention_ms
        for block in blk.list_blocks(self._blocks_dir):
            if block.maxt <= horizon:
                block.path.unlink(missing_ok=True)
        self._trim(horizon)

    def _trim(self, horizon: int) -> None:
        """Forget samples older than ``horizon`` (and series left without any)."""
        self._min_cache = None
        for s in list(self._series.values()):
            i = bisect.bisect_left(s.t, horizon)
            if i:
                del s.t[:i]
                del s.v[:i]
            if not s.t:
                self._drop_series(s)

    # -- reading ---------------------------------------------------------------------------------------------------
    def select(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        """The samples of matching series with ``start_ms <= t <= end_ms`` (series without any left out)."""
        out = []
        with self._lock:
            for s in self._candidates(matchers):
                lo = bisect.bisect_left(s.t, start_ms)
                hi = bisect.bisect_right(s.t, end_ms)
                if hi > lo:
                    out.append(SeriesData(s.labels, s.t[lo:hi], s.v[lo:hi]))
        return out

    def series(self, matchers: list[Matcher], start_ms: int | None = None,
               end_ms: int | None = None) -> list[Labels]:
        """Label sets of matching series with a sample in the range (``/api/v1/series``)."""
        lo = -(2**62) if start_ms is None else start_ms
        hi = 2**62 if end_ms is None else end_ms
        return [dict(d.labels) for d in self.select(matchers, lo, hi)]

    def label_names(self, matchers: list[Matcher] | None = None, start_ms: int | None = None,
                    end_ms: int | None = None) -> list[str]:
        """Sorted label names (``/api/v1/labels``)."""
        if not matchers and start_ms is None and end_ms is None:
            with self._lock:
                return sorted(self._postings)
        return sorted({n for lbl in self.series(matchers or [], start_ms, end_ms) for n in lbl})

    def label_values(self, name: str, matchers: list[Matcher] | None = None, start_ms: int | None = None,
                     end_ms: int | None = None) -> list[str]:
        """Sorted values of one label (``/api/v1/label/<name>/values``)."""
        if not matchers and start_ms is None and end_ms is None:
            with self._lock:
                return sorted(self._postings.get(name, {}))
        return sorted({lbl[name] for lbl in self.series(matchers or [], start_ms, end_ms) if name in lbl})

    def stats(self) -> dict[str, int]:
        """Head statistics (``/api/v1/status/tsdb``-like): series and samples held."""
        with self._lock:
            return {"numSeries": len(self._series), "numSamples": sum(len(s.t) for s in self._series.values()),
                    "maxTime": self.max_t, "persistedUntil": self.persisted_until}

    def close(self) -> None:
        with self._lock:
            self._wal.close()
