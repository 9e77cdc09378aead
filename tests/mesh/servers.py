"""aiohttp servers on a loop thread of their own, for the mesh tests' apps behind real Envoys."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class LoopServers:
    """Serve aiohttp applications from a background event loop; ``close`` stops them all."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()
        self.runners: list[web.AppRunner] = []

    def _serve(self, app: web.Application, host: str, port: int) -> None:
        async def start() -> None:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            self.runners.append(runner)
        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def close(self) -> None:
        async def stop() -> None:
            for runner in self.runners:
                await runner.cleanup()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
