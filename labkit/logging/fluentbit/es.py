"""The ``es`` and ``opensearch`` outputs: records as ``_bulk`` requests (``create`` by default, an ``_index`` by
``index`` or ``logstash_format``, ``@timestamp`` by ``time_key``), HTTP Basic auth, TLS.

A rejected bulk (no answer, or an HTTP error) is retried up to ``Retry_Limit`` times, waiting as Fluent Bit's
scheduler does (a random time between ``scheduler.base`` and the doubled wait, at most ``scheduler.cap``). In a bulk
Elasticsearch accepted, the items it refused with 429 or 5xx are retried alike; the others (a mapping conflict, an
existing ``_id``) are counted (``errors``, ``dropped_records``) and not sent again. Fluent Bit itself would retry the
whole chunk, and index its good records twice; the labkit simulator sends only the refused ones again."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import random
import ssl
import time
from typing import Any

import aiohttp

from .config import ConfigError, Section
from .filters import accessor, lookup
from .paths import PathMap

Event = tuple[str, float, dict[str, Any]]
RETRYABLE = {429, 500, 502, 503, 504}
BULK_MAX = 2 * 1024 * 1024  # bytes in one _bulk request


class EsOutput:
    """One ``[OUTPUT] Name es`` (or ``opensearch``)."""

    def __init__(self, s: Section, index: int, paths: PathMap, scheduler: tuple[float, float]) -> None:
        self.plugin = s.name.lower()
        self.name = f"{self.plugin}.{index}"
        self.alias = s.get("alias") or self.name
        self.host, self.port = s.get("host", "127.0.0.1"), int(s.get("port", "9200"))
        self.path = s.get("path").rstrip("/")
        self.index, self.type = s.get("index", "fluent-bit"), s.get("type", "_doc")
        self.logstash = s.flag("logstash_format")
        self.prefix = s.get("logstash_prefix", "logstash")
        self.prefix_key = accessor(s.get("logstash_prefix_key")) if s.get("logstash_prefix_key") else None
        self.dateformat = s.get("logstash_dateformat", "%Y.%m.%d")
        self.time_key = s.get("time_key", "@timestamp")
        self.time_format = s.get("time_key_format", "%Y-%m-%dT%H:%M:%S")
        self.nanos = s.flag("time_key_nanos")
        self.tag_key = s.get("tag_key", "_flb-key") if s.flag("include_tag_key") else ""
        self.generate_id = s.flag("generate_id")
        self.id_key = accessor(s.get("id_key")) if s.get("id_key") else None
        self.operation = s.get("write_operation", "create").lower()
        if self.operation not in ("create", "index", "update", "upsert"):
            raise ConfigError(f"[output:{self.plugin}] invalid write_operation '{self.operation}'")
        if self.operation in ("update", "upsert") and not (self.generate_id or self.id_key):
            raise ConfigError(f"[output:{self.plugin}] write_operation {self.operation} needs Generate_ID or "
                              "ID_Key")
        self.replace_dots = s.flag("replace_dots")
        self.suppress_type = s.flag("suppress_type_name")
        self.current_time_index = s.flag("current_time_index")
        limit = s.get("retry_limit", "1").lower()
        self.retry_limit: int | None = (None if limit in ("no_limits", "false", "off", "-1")
                                        else 0 if limit == "no_retries" else int(limit))
        self.base, self.cap = scheduler
        self.auth = ""
        if s.get("http_user"):
            raw = f"{s.get('http_user')}:{s.get('http_passwd')}".encode()
            self.auth = "Basic " + base64.b64encode(raw).decode()
        self.ssl: ssl.SSLContext | bool = False
        self.scheme = "https" if s.flag("tls") else "http"
        if s.flag("tls"):
            ca = s.get("tls.ca_file")
            self.ssl = ssl.create_default_context(cafile=str(paths.real(ca)) if ca else None)
            if not s.flag("tls.verify", True):
                self.ssl.check_hostname = False
                self.ssl.verify_mode = ssl.CERT_NONE
        self.metrics = {"proc_records": 0, "proc_bytes": 0, "errors": 0, "retries": 0, "retries_failed": 0,
                        "dropped_records": 0, "retried_records": 0}
        self.last_error = ""
        self._session: aiohttp.ClientSession | None = None
        self._seconds: dict[tuple[int, str], str] = {}

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}/_bulk"

    # -- formatting ---------------------------------------------------------------------------------------------
    def _second(self, second: int, fmt: str) -> str:
        """``fmt`` of a whole second (the last few kept: records come in time order)."""
        key = (second, fmt)
        hit = self._seconds.get(key)
        if hit is None:
            if len(self._seconds) > 64:
                self._seconds.clear()
            hit = self._seconds[key] = dt.datetime.fromtimestamp(second, dt.UTC).strftime(fmt)
        return hit

    def _stamp(self, ts: float) -> str:
        second = int(ts // 1)
        frac = f"{round((ts - second) * 1e9) % 1_000_000_000:09d}" if self.nanos \
            else f"{int((ts - second) * 1000) % 1000:03d}"
        return f"{self._second(second, self.time_format)}.{frac}Z"

    def _index_of(self, ts: float, rec: dict[str, Any]) -> str:
        if not self.logstash:
            return self.index
        prefix = self.prefix
        if self.prefix_key is not None:
            value = lookup(rec, self.prefix_key)
            prefix = str(value) if value is not None else prefix
        when = time.time() if self.current_time_index else ts
        return f"{prefix}-{self._second(int(when // 1), self.dateformat)}"

    def _doc(self, tag: str, ts: float, rec: dict[str, Any]) -> dict[str, Any]:
        doc = _dots(rec) if self.replace_dots else dict(rec)
        doc[self.time_key] = self._stamp(ts)
        if self.tag_key:
            doc[self.tag_key] = tag
        return doc

    def _action(self, ts: float, rec: dict[str, Any], doc_json: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"_index": self._index_of(ts, rec)}
        if not self.suppress_type:
            meta["_type"] = self.type
        if self.id_key is not None:
            value = lookup(rec, self.id_key)
            if value is not None:
                meta["_id"] = str(value)
        elif self.generate_id:
            h = hashlib.sha256(f"{ts:.9f}".encode() + doc_json.encode()).hexdigest()
            meta["_id"] = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        op = "update" if self.operation == "upsert" else self.operation
        return {op: meta}

    def bulk_lines(self, events: list[Event]) -> list[bytes]:
        out = []
        encode = COMPACT.encode
        same: dict[str, str] = {}  # an action line without an id is the same for every record of an index
        for tag, ts, rec in events:
            doc = self._doc(tag, ts, rec)
            doc_json = encode(doc)
            action = self._action(ts, rec, doc_json)
            if self.operation == "update":
                doc_json = encode({"doc": doc})
            elif self.operation == "upsert":
                doc_json = encode({"doc": doc, "doc_as_upsert": True})
            meta = next(iter(action.values()))
            if "_id" in meta:
                line = encode(action)
            else:
                line = same.get(meta["_index"]) or same.setdefault(meta["_index"], encode(action))
            out.append(f"{line}\n{doc_json}\n".encode())
        return out

    # -- delivery -----------------------------------------------------------------------------------------------
    async def deliver(self, events: list[Event]) -> None:
        """Sends the records in bulks of at most ``BULK_MAX`` bytes (Fluent Bit sends one per chunk of about
        2 MB), retrying as the module doc says; returns once they are indexed or given up."""
        lines = self.bulk_lines(events)
        start, size = 0, 0
        for i, line in enumerate(lines):
            if size and size + len(line) > BULK_MAX:
                await self._deliver(lines[start:i])
                start, size = i, 0
            size += len(line)
        if start < len(lines):
            await self._deliver(lines[start:])

    async def _deliver(self, pending: list[bytes]) -> None:
        attempt = 0
        while pending:
            body = b"".join(pending)
            status, answer = await self._post(body)
            retry: list[bytes] = []
            if status in (200, 201) and isinstance(answer, dict):
                items = answer.get("items") or []
                failed = 0
                for line, item in zip(pending, items, strict=False):
                    result = next(iter(item.values())) if item else {}
                    code = int(result.get("status", 500))
                    if code < 300:
                        self.metrics["proc_records"] += 1
                        self.metrics["proc_bytes"] += len(line)
                    elif code in RETRYABLE:
                        retry.append(line)
                    else:
                        failed += 1
                        self.last_error = json.dumps(result.get("error"))[:500]
                if failed:
                    self.metrics["errors"] += 1
                    self.metrics["dropped_records"] += failed
            else:
                self.metrics["errors"] += 1
                self.last_error = f"HTTP status={status} {str(answer)[:500]}"
                retry = pending
            if not retry:
                return
            if self.retry_limit is not None and attempt >= self.retry_limit:
                self.metrics["retries_failed"] += 1
                self.metrics["dropped_records"] += len(retry)
                return
            attempt += 1
            self.metrics["retries"] += 1
            self.metrics["retried_records"] += len(retry)
            wait = min(self.cap, self.base * 2 ** (attempt - 1))
            await asyncio.sleep(random.uniform(self.base, max(self.base, wait)))
            pending = retry

    async def _post(self, body: bytes) -> tuple[int, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        headers = {"Content-Type": "application/x-ndjson", "User-Agent": "Fluent-Bit"}
        if self.auth:
            headers["Authorization"] = self.auth
        try:
            async with self._session.post(self.url, data=body, headers=headers, ssl=self.ssl) as r:
                text = await r.text()
                try:
                    return r.status, json.loads(text)
                except ValueError:
                    return r.status, text
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            return 0, f"no upstream connections available to {self.host}:{self.port}: {err}"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)  # one encoder for every record


def _dots(rec: dict[str, Any]) -> dict[str, Any]:
    if not any("." in k or isinstance(v, dict) for k, v in rec.items()):
        return dict(rec)
    return {k.replace(".", "_"): _dots(v) if isinstance(v, dict) else v for k, v in rec.items()}
