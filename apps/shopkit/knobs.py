"""Admin knobs for the lessons: make a replica slow, failing, not ready, or crash.

Set at start from the environment (``SLOW_MS``, ``FAIL_RATE``, ``CRASH_ON_START``) or at run time with
``POST /admin/slow?ms=500``, ``/admin/fail?rate=0.5``, ``/admin/ready?value=false``, ``/admin/crash``
and ``/admin/reset``; ``GET /admin`` shows them. Slow and fail apply to the service's own routes, not
to /healthz, /readyz, /metrics or /admin.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Knobs:
    slow_ms: int = 0
    fail_rate: float = 0.0
    ready: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Knobs:
        knobs = cls()
        knobs.set_slow(env.get("SLOW_MS") or "0")
        knobs.set_fail(env.get("FAIL_RATE") or "0")
        return knobs

    @staticmethod
    def crash_on_start(env: Mapping[str, str] = os.environ) -> bool:
        return _flag(env.get("CRASH_ON_START"))

    def set_slow(self, ms: str) -> None:
        value = int(ms)
        if not 0 <= value <= 60_000:
            raise ValueError("ms must be between 0 and 60000")
        self.slow_ms = value

    def set_fail(self, rate: str) -> None:
        value = float(rate)
        if not 0.0 <= value <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        self.fail_rate = value

    def set_ready(self, value: str) -> None:
        self.ready = _flag(value)

    def reset(self) -> None:
        self.slow_ms, self.fail_rate, self.ready = 0, 0.0, True

    def should_fail(self) -> bool:
        return self.fail_rate > 0 and random.random() < self.fail_rate

    def state(self) -> dict[str, object]:
        return asdict(self)
