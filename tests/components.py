"""One product's sim component alone, outside a lab daemon: a temporary lab home's context and an asyncio loop on a
background thread that serves the component as the daemon would, so tests drive it from the test thread with real
clients. Used as a context manager (``with RunningRegistry(home) as registry: ...``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Self, TypeVar

from labkit.core.component import Component
from labkit.core.standalone import standalone_context

C = TypeVar("C", bound=Component)
KUBECTL = Path(sys.executable).parent / "kubectl"


class ComponentLoop:
    def __init__(self, home: Path, name: str = "component") -> None:
        self.ctx = standalone_context(home)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"{name}-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        """Run ``coro`` on the component's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def start(self, component: C, name: str, title: str = "") -> C:
        """Start ``component`` under the product name ``name`` (as the daemon names it)."""
        component.name, component.title = name, title or component.title
        self.run(component.start(self.ctx))
        return component

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The real kubectl against this home's API server (when the loop serves one), as a user runs it."""
        env = {**os.environ, "KUBECONFIG": str(self.ctx.paths.kubeconfig)}
        res = subprocess.run([str(KUBECTL), *args], capture_output=True, text=True, env=env, input=input, timeout=60)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {res.stdout}{res.stderr}")
        return res

    def stop_components(self) -> None:
        """Stop what this loop serves (subclasses)."""

    def close(self) -> None:
        try:
            self.stop_components()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
