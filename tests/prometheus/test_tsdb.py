"""The sim Prometheus' storage: what ``append`` acknowledged survives a SIGKILL (write-ahead log) and a restart
after compaction (blocks), retention drops old data, the staleness marker keeps its exact bit pattern, out-of-order
samples are rejected as Prometheus rejects them, and the label index answers the matchers."""

from __future__ import annotations

import math
import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from labkit.prometheus.tsdb import STALE_NAN, Matcher, Storage, is_stale

UP = {"__name__": "up", "job": "api", "instance": "a:80"}


def test_stale_nan_is_prometheus_bit_pattern() -> None:
    assert struct.pack("<d", STALE_NAN) == struct.pack("<Q", 0x7FF0000000000002)
    assert is_stale(STALE_NAN) and not is_stale(float("nan")) and not is_stale(1.0)


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """A child appends in batches and prints each acknowledged batch; it is SIGKILLed mid-stream. Every printed
    batch is there after reopening, and a torn last record is dropped, not misread."""
    script = textwrap.dedent(f"""
        import sys
        from labkit.prometheus.tsdb import Storage
        s = Storage({str(tmp_path / 'db')!r}, retention_seconds=86400, head_seconds=600)
        for batch in range(100000):
            s.append([({{"__name__": "m", "i": str(i)}}, batch * 1000, float(batch)) for i in range(20)])
            print(batch, flush=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    acked = -1
    assert child.stdout is not None
    for line in child.stdout:
        acked = int(line)
        if acked >= 1500:  # past two compactions (head 600 s: a block every ~900 batches)
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    s = Storage(tmp_path / "db", retention_seconds=86400, head_seconds=600)
    try:
        data = s.select([Matcher("__name__", "=", "m")], 0, 10**12)
        assert len(data) == 20
        for d in data:
            got = list(d.timestamps)
            assert got[: acked + 1] == [b * 1000 for b in range(acked + 1)]
        assert (tmp_path / "db" / "blocks").exists() and any((tmp_path / "db" / "blocks").iterdir())
    finally:
        s.close()


def test_torn_wal_tail_is_dropped(tmp_path: Path) -> None:
    s = Storage(tmp_path, retention_seconds=3600)
    s.append([(UP, 1000, 1.0)])
    s.append([(UP, 2000, 2.0)])
    s.close()
    segment = max((tmp_path / "wal").iterdir())
    segment.write_bytes(segment.read_bytes()[:-5])  # a crash in the middle of the last write
    s = Storage(tmp_path, retention_seconds=3600)
    assert list(s.select([Matcher("job", "=", "api")], 0, 10**9)[0].timestamps) == [1000]
    s.append([(UP, 3000, 3.0)])  # and the log goes on after the torn record
    s.close()
    s = Storage(tmp_path, retention_seconds=3600)
    assert list(s.select([Matcher("job", "=", "api")], 0, 10**9)[0].values) == [1.0, 3.0]
    s.close()


def test_compaction_restart_and_retention(tmp_path: Path) -> None:
    s = Storage(tmp_path, retention_seconds=1800, head_seconds=600)
    s.append([])  # a failed first scrape: no samples yet (the head's oldest time must not be taken from it)
    for minute in range(120):
        s.append([(UP, minute * 60_000, float(minute)), ({**UP, "instance": "b:80"}, minute * 60_000, 1.0)])
    blocks = sorted(p.name for p in (tmp_path / "blocks").iterdir())
    assert blocks, "no block was compacted"
    assert all(re.fullmatch(r"\d+-\d+", name.split(".")[0]) for name in blocks), blocks
    kept = list(s.select([Matcher("instance", "=", "a:80")], 0, 10**9)[0].timestamps)
    assert kept[0] >= (119 - 30) * 60_000 - 600_000  # older than retention (plus one block) is gone
    assert kept[-1] == 119 * 60_000
    s.close()
    s = Storage(tmp_path, retention_seconds=1800, head_seconds=600)
    after = list(s.select([Matcher("instance", "=", "a:80")], 0, 10**9)[0].timestamps)
    horizon = 119 * 60_000 - 1800_000
    assert after == [t for t in kept if t >= horizon]  # everything in retention came back from blocks + WAL
    assert after == list(range(horizon, 119 * 60_000 + 1, 60_000))
    s.close()


def test_series_that_age_out_are_forgotten(tmp_path: Path) -> None:
    s = Storage(tmp_path, retention_seconds=600, head_seconds=300)
    s.append([({"__name__": "gone"}, 0, 1.0)])
    for minute in range(1, 40):
        s.append([(UP, minute * 60_000, 1.0)])
    assert "gone" not in s.label_values("__name__")
    assert s.series([Matcher("__name__", "=", "gone")]) == []
    s.close()


def test_out_of_order_and_duplicates(tmp_path: Path) -> None:
    s = Storage(tmp_path)
    assert s.append([(UP, 2000, 1.0)]) == 1
    assert s.append([(UP, 1000, 5.0)]) == 0  # out of order
    assert s.append([(UP, 2000, 1.0)]) == 0  # the same sample again: ignored, not an error
    assert s.append([(UP, 2000, 7.0)]) == 0  # a different value for the same time: rejected
    assert s.rejected == 2
    assert list(s.select([Matcher("__name__", "=", "up")], 0, 10**9)[0].values) == [1.0]
    s.close()


def test_mark_stale(tmp_path: Path) -> None:
    s = Storage(tmp_path)
    s.append([(UP, 1000, 1.0)])
    assert s.mark_stale(UP, 2000)
    assert not s.mark_stale(UP, 3000)  # already stale
    assert not s.mark_stale({"__name__": "unknown"}, 3000)
    values = list(s.select([Matcher("__name__", "=", "up")], 0, 10**9)[0].values)
    assert values[0] == 1.0 and is_stale(values[1]) and math.isnan(values[1])
    s.close()
    s = Storage(tmp_path)
    assert is_stale(s.select([Matcher("__name__", "=", "up")], 0, 10**9)[0].values[-1])
    s.close()


@pytest.fixture
def indexed(tmp_path: Path) -> Storage:
    s = Storage(tmp_path)
    s.append([({"__name__": "http_requests_total", "code": code, "pod": pod}, 1000 * i, float(i))
              for i in range(1, 4) for code in ("200", "404", "500") for pod in ("web-1", "web-2")])
    s.append([({"__name__": "up", "pod": "web-1"}, 5000, 1.0)])
    yield s
    s.close()


@pytest.mark.parametrize(("matchers", "count"), [
    ([Matcher("__name__", "=", "http_requests_total")], 6),
    ([Matcher("__name__", "=", "http_requests_total"), Matcher("code", "!=", "200")], 4),
    ([Matcher("code", "=~", "4..|5..")], 4),
    ([Matcher("code", "=~", "4")], 0),  # anchored, as in Prometheus
    ([Matcher("code", "!~", "2.*"), Matcher("pod", "=", "web-1")], 3),  # up has no code: "" matches !~
    ([Matcher("code", "=", ""), Matcher("pod", "=~", "web-.*")], 1),  # the absent label equals ""
    ([Matcher("pod", "=~", ".+")], 7),
])
def test_matchers(indexed: Storage, matchers: list[Matcher], count: int) -> None:
    assert len(indexed.series(matchers)) == count


def test_labels_and_time_ranges(indexed: Storage) -> None:
    assert indexed.label_names() == ["__name__", "code", "pod"]
    assert indexed.label_values("code") == ["200", "404", "500"]
    assert indexed.label_values("__name__", [Matcher("pod", "=", "web-2")]) == ["http_requests_total"]
    assert indexed.label_names([Matcher("__name__", "=", "up")]) == ["__name__", "pod"]
    assert indexed.series([Matcher("pod", "=", "web-1")], 4000, 6000) == [{"__name__": "up", "pod": "web-1"}]
    assert indexed.label_values("__name__", None, 0, 500) == []
