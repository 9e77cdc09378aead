"""A recording ``_bulk`` endpoint for the collector's output tests: it answers as Elasticsearch 8 does
(``create`` of an existing ``_id`` is a 409 item, ``_type`` in an action is a 400 ``illegal_argument_exception``,
items in request order, the ``errors`` flag) and can refuse requests or items, which a real server cannot be made
to do on demand. End-to-end runs ship to the lab's own Elasticsearch."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class BulkServer:
    user: str = "elastic"
    password: str = "s3cret"
    docs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: int = 0
    refuse_requests: int = 0  # the next N requests answer 503
    refuse_items: int = 0  # the next N items answer 429
    port: int = 0

    def start(self) -> BulkServer:
        ready = threading.Event()
        self.loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_post("/_bulk", self._bulk)
            self.runner = web.AppRunner(app)
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def sources(self) -> list[dict[str, Any]]:
        return list(self.docs.values())

    async def _bulk(self, request: web.Request) -> web.Response:
        self.requests += 1
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": {"type": "security_exception", "reason": "unable to authenticate"},
                                      "status": 401}, status=401)
        if self.refuse_requests:
            self.refuse_requests -= 1
            return web.json_response({"error": {"type": "unavailable", "reason": "refused by the test"},
                                      "status": 503}, status=503)
        lines = (await request.read()).decode().splitlines()
        items = []
        for i in range(0, len(lines), 2):
            action = json.loads(lines[i])
            op, meta = next(iter(action.items()))
            if "_type" in meta:
                reason = f"Action/metadata line [{i + 1}] contains an unknown parameter [_type]"
                return web.json_response({"error": {"root_cause": [{"type": "illegal_argument_exception",
                                                                    "reason": reason}],
                                                    "type": "illegal_argument_exception", "reason": reason},
                                          "status": 400}, status=400)
            index, doc_id = meta["_index"], meta.get("_id") or f"auto-{len(self.docs)}-{i}"
            if self.refuse_items:
                self.refuse_items -= 1
                items.append({op: {"_index": index, "_id": doc_id, "status": 429,
                                   "error": {"type": "es_rejected_execution_exception", "reason": "busy"}}})
            elif op == "create" and (index, doc_id) in self.docs:
                items.append({op: {"_index": index, "_id": doc_id, "status": 409,
                                   "error": {"type": "version_conflict_engine_exception",
                                             "reason": f"[{doc_id}]: version conflict, document already exists"}}})
            else:
                self.docs[(index, doc_id)] = json.loads(lines[i + 1])
                items.append({op: {"_index": index, "_id": doc_id, "_version": 1, "result": "created",
                                   "status": 201}})
        return web.json_response({"took": 1, "errors": any(next(iter(it.values()))["status"] >= 300
                                                           for it in items), "items": items},
                                 headers={"X-Elastic-Product": "Elasticsearch"})
