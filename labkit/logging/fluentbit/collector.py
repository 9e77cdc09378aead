"""One node's Fluent Bit: reads its configuration, follows the node's container logs, enriches, filters and ships
the records, and serves its monitoring API.

``Collector(config_path, node, node_dir, kubeconfig, listen)``: ``node_dir`` is the node's ``/var/log`` (the
kubelet's ``pods/`` and ``containers/``), ``kubeconfig`` what the ``kubernetes`` filter authenticates with when no
service account token file is mounted, ``listen`` the (host, port) of the monitoring API (the node's
``core.addresses.fluentbit(node)`` slot; it overrides ``HTTP_Listen``/``HTTP_Port``). ``await start()`` checks the
whole configuration first (``ConfigError`` names any key it does not support) and runs; ``await stop()`` stops
reading, delivers what is buffered (within ``Grace`` seconds) and keeps the offsets, so a restart neither loses nor
repeats a line. ``python -m labkit.logging.fluentbit`` runs one as a process (SIGTERM stops it the same way).

The engine: every ``POLL`` seconds the inputs are read, the records go through the filters whose ``Match`` takes
their tag, and wait in the outputs' buffers; every ``Flush`` seconds (or once ``FLUSH_BYTES`` are waiting) each
output sends its buffer, and once all have answered the inputs' offsets are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from ...core.http import Listeners
from ...core.tasks import cancel
from .config import Config, ConfigError, Section, load
from .es import EsOutput
from .filters import Grep, Modify, ParserFilter, RecordModifier, matcher
from .kubernetes import KubernetesFilter
from .monitor import Metrics, monitoring_app
from .parsers import Parser, RegexRules
from .paths import PathMap
from .tail import Event, TailInput

POLL = 0.1  # seconds between reads of the inputs while lines arrive (Fluent Bit is woken by inotify)
IDLE_POLL = 0.5  # ... and once nothing has arrived for IDLE_AFTER polls: five idle collectors per lab stay cheap
IDLE_AFTER = 10
FLUSH_BYTES = 4 * 1024 * 1024  # a buffer this big is sent before the flush interval ends
READ_BUDGET = 2 * 1024 * 1024  # bytes read from an input per poll
log = logging.getLogger("labkit.fluent-bit")


class Collector:
    """A node's Fluent Bit (see the module doc)."""

    def __init__(self, config_path: Path, node: str, node_dir: Path, kubeconfig: Path | None = None,
                 listen: tuple[str, int] | None = None, env: dict[str, str] | None = None) -> None:
        self.config_path = Path(config_path)
        self.node = node
        self.node_dir = Path(node_dir)
        self.kubeconfig = kubeconfig
        self.listen = listen
        self.env = env
        self.inputs: list[TailInput] = []
        self.filters: list[tuple[str, Any, Any]] = []  # name, match, filter
        self.outputs: list[tuple[Any, EsOutput]] = []
        self.filter_metrics: dict[str, dict[str, int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._listeners: Listeners | None = None
        self._stopping = asyncio.Event()
        self.started = time.time()
        self.flushes = 0

    # -- set-up -------------------------------------------------------------------------------------------------
    def _build(self, cfg: Config) -> None:
        paths = PathMap(self.node_dir, cfg.base)
        parsers = {s.name: Parser.of(s) for s in cfg.parsers}
        multiline = {s.name: RegexRules.of(s) for s in cfg.multiline_parsers}
        svc = cfg.service
        self.flush = svc.number("flush", 1.0)
        self.grace = svc.number("grace", 5.0)
        scheduler = (svc.number("scheduler.base", 5.0), svc.number("scheduler.cap", 2000.0))
        self.inputs = [TailInput(s, i, paths, parsers, multiline) for i, s in enumerate(cfg.inputs)]
        counts: dict[str, int] = {}
        for s in cfg.filters:
            kind = s.name.lower()
            index = counts[kind] = counts.get(kind, -1) + 1
            f: Any
            if kind == "kubernetes":
                f = KubernetesFilter(s, paths, self.kubeconfig, parsers)
            elif kind == "parser":
                f = ParserFilter(s, parsers)
            else:
                f = {"grep": Grep, "modify": Modify, "record_modifier": RecordModifier}[kind](s)
            name = s.get("alias") or f"{kind}.{index}"
            self.filters.append((name, matcher(s), f))
            self.filter_metrics[name] = {"drop_records": 0, "add_records": 0}
        counts = {}
        for s in cfg.outputs:
            kind = s.name.lower()
            index = counts[kind] = counts.get(kind, -1) + 1
            self.outputs.append((matcher(s), EsOutput(s, index, paths, scheduler)))
        self.service = svc
        self.health = (svc.flag("health_check"), int(svc.number("hc_errors_count", 5)),
                       int(svc.number("hc_retry_failure_count", 5)), svc.number("hc_period", 60))
        self._errors_seen: list[tuple[float, int, int]] = []
        self._delivery: asyncio.Task[None] | None = None
        self._failed: tuple[list[list[Event]], list[dict[int, int]]] | None = None

    async def start(self) -> None:
        cfg = load(self.config_path, self.env)
        self._build(cfg)
        if self.service.flag("http_server"):
            host = self.listen[0] if self.listen else self.service.get("http_listen", "127.0.0.1")
            port = self.listen[1] if self.listen else int(self.service.get("http_port", "2020"))
            if host in ("0.0.0.0", "::"):
                host = "127.0.0.1"  # everything the sim starts listens on loopback
            app = monitoring_app(self.metrics, self.healthy, self.health[0], self.started, self.node)
            self._listeners = Listeners(app, [(host, port)])
            await self._listeners.start()
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def url(self) -> str:
        """The monitoring API's URL ("" without ``HTTP_Server On``)."""
        return self._listeners.urls()[0] if self._listeners else ""

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.grace + 5)
            except TimeoutError:
                await cancel(self._task)
            self._task = None
        for inp in self.inputs:
            inp.close()
        for _, f in ((m, f) for _, m, f in self.filters):
            if hasattr(f, "close"):
                await f.close()
        for _, out in self.outputs:
            await out.close()
        if self._listeners is not None:
            await self._listeners.stop()
            self._listeners = None

    # -- the engine ---------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        buffers: list[list[Event]] = [[] for _ in self.outputs]
        marks: list[dict[int, int]] = [{} for _ in self.inputs]
        waiting = 0
        next_flush = time.monotonic() + self.flush
        empty = 0  # polls in a row that read nothing
        while not self._stopping.is_set():
            try:
                read_any, waiting, next_flush = await self._cycle(buffers, marks, waiting, next_flush)
            except Exception:  # a bad record or plugin must not end the collector: its offsets are not kept
                log.exception("fluent-bit %s: a pipeline cycle failed", self.node)
                read_any = False
            empty = 0 if read_any else empty + 1
            if not read_any:
                delay = IDLE_POLL if empty > IDLE_AFTER else POLL
                if waiting:  # lines buffered: the flush stays on time
                    delay = min(delay, max(next_flush - time.monotonic(), 0.0))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        with contextlib.suppress(TimeoutError):  # Grace: what is buffered is delivered before the end
            await asyncio.wait_for(self._last_flush(buffers, marks), self.grace)

    async def _last_flush(self, buffers: list[list[Event]], marks: list[dict[int, int]]) -> None:
        await self._flush(buffers, marks)
        await self._delivered()

    async def _cycle(self, buffers: list[list[Event]], marks: list[dict[int, int]], waiting: int,
                     next_flush: float) -> tuple[bool, int, float]:
        """One poll of the inputs, and a flush when it is due; (whether anything was read, bytes waiting, the next
        flush's time)."""
        now = time.monotonic()
        read_any = False
        for i, inp in enumerate(self.inputs):
            inp.scan(time.time())
            events, m = inp.read(READ_BUDGET)
            marks[i].update(m)
            if events:
                read_any = True
                events = await self._filter(events)
                for (match, _), buf in zip(self.outputs, buffers, strict=True):
                    routed = [e for e in events if match(e[0])]
                    buf.extend(routed)
                    waiting += len(str(routed[0][2])) * len(routed) if routed else 0  # about the bytes
        if now >= next_flush or waiting >= FLUSH_BYTES:
            await self._flush(buffers, marks)
            waiting = 0
            next_flush = time.monotonic() + self.flush
        return read_any, waiting, next_flush

    async def _filter(self, events: list[Event]) -> list[Event]:
        for name, match, f in self.filters:
            if hasattr(f, "prepare"):
                await f.prepare([e for e in events if match(e[0])])
            out: list[Event] = []
            stats = self.filter_metrics[name]
            for tag, ts, rec in events:
                if not match(tag):
                    out.append((tag, ts, rec))
                    continue
                result = f(tag, ts, rec)
                if not result:
                    stats["drop_records"] += 1
                stats["add_records"] += max(0, len(result) - 1)
                out.extend((tag, t, r) for t, r in result)
            events = out
        return events

    async def _flush(self, buffers: list[list[Event]], marks: list[dict[int, int]]) -> None:
        """Hands the buffers to a delivery that runs while the inputs go on reading (as Fluent Bit's output runs
        apart from its inputs), after the previous delivery has ended: deliveries, and so the offsets they keep,
        stay in order. A delivery that failed is sent again with the next one."""
        await self._delivered()
        chunks = [list(buf) for buf in buffers]
        offsets = [dict(m) for m in marks]
        for buf in buffers:
            buf.clear()
        for m in marks:
            m.clear()
        if self._failed is not None:  # the earlier events first; the later offsets win
            chunks = [old + new for old, new in zip(self._failed[0], chunks, strict=True)]
            offsets = [{**old, **new} for old, new in zip(self._failed[1], offsets, strict=True)]
            self._failed = None
        if any(chunks) or any(offsets):
            self._delivery = asyncio.get_running_loop().create_task(self._deliver(chunks, offsets))

    async def _delivered(self) -> None:
        """Waits for the delivery under way, if any."""
        if self._delivery is not None:
            await asyncio.shield(self._delivery)
            self._delivery = None

    async def _deliver(self, chunks: list[list[Event]], offsets: list[dict[int, int]]) -> None:
        """Every output sends its chunk; once all are done the inputs' offsets are kept."""
        try:
            sends = [out.deliver(chunk) for (_, out), chunk in zip(self.outputs, chunks, strict=True) if chunk]
            if sends:
                await asyncio.gather(*sends)
                self.flushes += 1
            for inp, m in zip(self.inputs, offsets, strict=True):
                if m:
                    inp.commit(m)
        except Exception:  # kept for the next flush: nothing is lost, and no offset passes these events
            log.exception("fluent-bit %s: a delivery failed", self.node)
            self._failed = (chunks, offsets)

    # -- monitoring ---------------------------------------------------------------------------------------------
    def metrics(self) -> Metrics:
        return {"input": {inp.alias: dict(inp.metrics) for inp in self.inputs},
                "filter": {name: dict(v) for name, v in self.filter_metrics.items()},
                "output": {out.alias: dict(out.metrics) for _, out in self.outputs}}

    def healthy(self) -> bool:
        """Fluent Bit's health check: fewer than ``HC_Errors_Count`` errors and ``HC_Retry_Failure_Count``
        abandoned retries in the last ``HC_Period`` seconds."""
        now = time.time()
        errors = sum(out.metrics["errors"] for _, out in self.outputs)
        failed = sum(out.metrics["retries_failed"] for _, out in self.outputs)
        self._errors_seen.append((now, errors, failed))
        period = self.health[3]
        self._errors_seen = [e for e in self._errors_seen if now - e[0] <= period]
        _, e0, f0 = self._errors_seen[0]
        return errors - e0 < self.health[1] and failed - f0 < self.health[2]




__all__ = ["Collector", "ConfigError", "Section"]
