"""``ReleaseView.trace_of_new_version``: a trace counts once the new version's own spans are in it, not when the
sidecars' spans (exported on their own schedule) made Jaeger know the trace id first."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd

from labkit.release.lab import ReleaseView

SIDECAR = {"p1": {"serviceName": "catalog.shop", "tags": [{"key": "istio.canonical_revision", "value": "x"}]}}
APP = {"p2": {"serviceName": "catalog", "tags": [{"key": "service.version", "value": "abcd1234"}]}}


class Jaeger:
    """Jaeger's answers, round by round: unknown, then the sidecars' spans only, then the app's too."""

    def __init__(self) -> None:
        self.asked = 0

    def trace(self, trace_id: str) -> dict[str, Any]:
        self.asked += 1
        if self.asked == 1:
            raise LookupError("trace not found")
        processes = SIDECAR if self.asked == 2 else {**SIDECAR, **APP}
        return {"traceID": trace_id, "processes": processes, "spans": []}


def test_waits_for_the_apps_own_spans() -> None:
    jaeger = Jaeger()
    logs = pd.DataFrame({"kubernetes.pod_name": ["catalog-1"], "msg": ["ratings served"], "trace_id": ["t1"]})
    lab = SimpleNamespace(mesh=jaeger, logging=SimpleNamespace(search=lambda *a, **k: logs))
    view = ReleaseView(lab)  # type: ignore[arg-type]
    trace = view.trace_of_new_version("abcd1234", timeout=10)
    assert jaeger.asked == 3 and "p2" in trace["processes"]
