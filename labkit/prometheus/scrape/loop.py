"""One target's scrape loop: every interval (at an offset of the target's own), fetch, parse, label, relabel,
append; ``up``, ``scrape_duration_seconds``, ``scrape_samples_scraped``,
``scrape_samples_post_metric_relabeling`` and ``scrape_series_added``; stale markers for every series that
disappears, for a failed scrape's and for a target that goes away."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import ssl
import time
from typing import Any, Protocol

import aiohttp

from .exposition import ACCEPT, parse
from .relabel import relabel
from .target import Target

USER_AGENT = "Prometheus/2.42.0"
Labels = dict[str, str]
SeriesKey = tuple[tuple[str, str], ...]
log = logging.getLogger("labkit.prometheus.scrape")


class Appender(Protocol):
    """The storage side a scrape loop writes to (``labkit.prometheus.tsdb.Storage``'s)."""

    def append(self, samples: Any) -> None: ...

    def mark_stale_all(self, many: Any, t_ms: int) -> int: ...


def tls_context(job: Any) -> ssl.SSLContext | bool:
    """What aiohttp verifies a target's certificate with: the job's ``ca_file``, none (``insecure_skip_verify``),
    or the system's CAs."""
    if job.insecure_skip_verify:
        return False
    return ssl.create_default_context(cafile=job.ca_file) if job.ca_file else True


def series_key(labels: Labels) -> SeriesKey:
    return tuple(sorted(labels.items()))


def sample_labels(name: str, labels: Labels, target: Labels, honor: bool) -> Labels:
    """A scraped sample's labels with the target's: on a clash the target wins and the sample's becomes
    ``exported_<name>`` (``honor_labels: false``), or the sample's wins (``honor_labels: true``)."""
    out = {**labels, "__name__": name}
    for k, v in target.items():
        if k in out and k != "__name__":
            if honor:
                continue
            out[f"exported_{k}"] = out[k]
        out[k] = v
    return {k: v for k, v in out.items() if v != ""}


class ScrapeLoop:
    def __init__(self, target: Target, storage: Appender, session: aiohttp.ClientSession) -> None:
        self.target, self.storage, self.session = target, storage, session
        self.previous: dict[SeriesKey, Labels] = {}  # the series of the last scrape
        self.reported: list[Labels] = []  # its up, scrape_duration_seconds...
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"scrape {self.target.url}")

    async def stop(self, stale: bool = True) -> None:
        """Stop scraping; with ``stale``, end every series it wrote (the target went away)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if stale:
            t = int(time.time() * 1000)
            self.storage.mark_stale_all([*self.previous.values(), *self.reported], t)
            self.previous, self.reported = {}, []

    def offset(self) -> float:
        """Where in each interval this target is scraped (spread by a hash of the target, as Prometheus does)."""
        digest = hashlib.sha256(repr(self.target.key).encode()).digest()
        return int.from_bytes(digest[:8], "big") % 1000 / 1000 * self.target.job.scrape_interval

    async def run(self) -> None:
        interval = self.target.job.scrape_interval
        now = time.time()
        next_at = now - now % interval + self.offset()
        if next_at < now:
            next_at += interval
        while True:
            await asyncio.sleep(max(0.0, next_at - time.time()))
            try:
                await self.scrape_once()
            except Exception:  # a bug must not end the loop
                log.exception("scrape of %s failed", self.target.url)
            next_at += interval
            while next_at <= time.time():  # fell behind: skip the missed ticks
                next_at += interval

    async def fetch(self) -> tuple[str, str]:
        job = self.target.job
        headers = {"Accept": ACCEPT, "User-Agent": USER_AGENT,
                   "X-Prometheus-Scrape-Timeout-Seconds": f"{job.scrape_timeout:g}"}
        if job.bearer_token:
            headers["Authorization"] = f"Bearer {job.bearer_token}"
        credentials = job.credentials()
        auth = aiohttp.BasicAuth(*credentials) if credentials else None
        async with self.session.get(self.target.url, headers=headers, auth=auth,
                                    timeout=aiohttp.ClientTimeout(total=job.scrape_timeout),
                                    ssl=tls_context(job)) as resp:
            if resp.status != 200:
                raise RuntimeError(f"server returned HTTP status {resp.status} {resp.reason}")
            return await resp.text(), resp.headers.get("Content-Type", "")

    async def scrape_once(self) -> None:
        """One scrape at the time it starts, as Prometheus timestamps it."""
        t = self.target
        start = time.time()
        t_ms = int(start * 1000)
        samples: list[tuple[Labels, int, float]] = []
        scraped = 0
        error = ""
        try:
            body, content_type = await self.fetch()
            exposition = parse(body, content_type)
            scraped = len(exposition.samples)
            if t.job.sample_limit and scraped > t.job.sample_limit:
                raise RuntimeError("sample limit exceeded")
            for name, labels, value, ts in exposition.samples:
                full = relabel(sample_labels(name, labels, t.labels, t.job.honor_labels),
                               t.job.metric_relabel_configs)
                if full is not None and full.get("__name__"):
                    samples.append((full, ts if ts is not None and t.job.honor_timestamps else t_ms, value))
            t.metadata = dict(exposition.metadata)
        except TimeoutError:
            error = f"Get \"{t.url}\": context deadline exceeded"
        except aiohttp.ClientError as err:
            error = f"Get \"{t.url}\": {go_error(err)}"
        except (RuntimeError, ValueError, UnicodeDecodeError) as err:
            error = str(err)
        if error:
            samples, scraped = [], 0
        duration = time.time() - start
        current = {series_key(labels): labels for labels, _, _ in samples}
        added = sum(1 for k in current if k not in self.previous)
        self.storage.mark_stale_all([labels for key, labels in self.previous.items() if key not in current], t_ms)
        self.previous = current
        report = [("up", 0.0 if error else 1.0), ("scrape_duration_seconds", duration),
                  ("scrape_samples_scraped", float(scraped)),
                  ("scrape_samples_post_metric_relabeling", float(len(samples))),
                  ("scrape_series_added", float(added))]
        self.reported = [{**t.labels, "__name__": n} for n, _ in report]
        reports = [(labels, t_ms, v) for labels, (_, v) in zip(self.reported, report, strict=True)]
        self.storage.append([*samples, *reports])
        t.health, t.last_error, t.last_scrape, t.last_duration, t.last_samples = \
            ("down" if error else "up"), error, start, duration, scraped


def go_error(err: aiohttp.ClientError) -> str:
    """A connection error as Go's net package words it, which Prometheus shows as the target's last error
    (``dial tcp 127.0.0.1:9: connect: connection refused``); other client errors as aiohttp words them."""
    if isinstance(err, aiohttp.ClientConnectorDNSError):
        return f"dial tcp: lookup {err.host}: no such host"
    if isinstance(err, aiohttp.ClientConnectorError):
        code = err.os_error.errno if err.os_error else None
        reason = os.strerror(code).lower() if code else str(err.os_error or err)
        return f"dial tcp {err.host}:{err.port}: connect: {reason}"
    return str(err)
