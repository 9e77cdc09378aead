"""Chapter 8's helpers on ``lab.logging``: waiting until a namespace's logs are searchable, and the chapter's
Diagnose fault and its repair: the shop's Deployments annotated ``fluentbit.io/exclude: "true"``, so the
collectors' kubernetes filter (``k8s-logging.exclude: on`` in manifests/logging/fluent-bit.yaml) drops every line
of the namespace — visible in Fluent Bit's metrics (records read, none shipped for them), not in any error."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.errors import LabError

if TYPE_CHECKING:
    import pandas as pd

    from ..lab import Lab
    from .lab import TimeLike

NAMESPACE = "shop"
EXCLUDE_ANNOTATION = "fluentbit.io/exclude"
SHIP_SECONDS = 60.0  # how long a notebook waits for lines to become searchable by default


def exclude_patch(value: str | None) -> str:
    """A JSON merge patch setting (or, with None, removing) the pod template's exclude annotation."""
    return json.dumps({"spec": {"template": {"metadata": {"annotations": {EXCLUDE_ANNOTATION: value}}}}})


class LoggingChapter:
    """Mixed into ``LoggingView``."""

    lab: Lab

    if TYPE_CHECKING:
        def count(self, query: str = "", start: TimeLike = "now-15m", end: TimeLike = "now") -> int: ...

        def fluentbit_metrics(self) -> pd.DataFrame: ...

    def wait_searchable(self, query: str, minimum: int = 1, timeout: float = SHIP_SECONDS,
                        start: str = "now-15m") -> int:
        """Until at least ``minimum`` lines match the KQL ``query`` (within ``start``..now); their number."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.count(query, start)
            if found >= minimum:
                return found
            if time.monotonic() > deadline:
                raise LabError(f"after {timeout:.0f} s, {found} lines match {query!r} (wanted {minimum}): see "
                               "lab.logging.fluentbit_metrics() for what each node's collector read, dropped and "
                               "shipped")
            time.sleep(1)

    def wait_settled(self, query: str, start: TimeLike, end: TimeLike, timeout: float = SHIP_SECONDS) -> int:
        """Until the number of lines matching ``query`` in ``start``..``end`` (a window in the past) stops changing
        for 2 s: every line of the window is shipped and searchable. That number."""
        deadline = time.monotonic() + timeout
        last = self.count(query, start, end)
        while time.monotonic() < deadline:
            time.sleep(2)
            now = self.count(query, start, end)
            if now == last:
                return now
            last = now
        raise LabError(f"after {timeout:.0f} s, the lines matching {query!r} in that window still change: see "
                       "lab.logging.fluentbit_metrics() for what each node's collector is shipping")

    def eventually(self, reached: Callable[[], bool], timeout: float = SHIP_SECONDS, every: float = 1.0) -> bool:
        """Whether ``reached()`` becomes true within ``timeout`` seconds (polled every ``every``)."""
        deadline = time.monotonic() + timeout
        while not reached():
            if time.monotonic() > deadline:
                return False
            time.sleep(every)
        return True

    def fluentbit_activity(self, seconds: float = 5) -> pd.DataFrame:
        """What each node's Fluent Bit plugins did over the next ``seconds``: how much each counter of
        ``fluentbit_metrics()`` grew (records read, dropped by a filter, shipped), one row per node and plugin."""
        def counters() -> pd.DataFrame:
            return self.fluentbit_metrics().set_index(["node", "section", "plugin"]).select_dtypes("number")

        before = counters()
        time.sleep(seconds)
        return (counters() - before).fillna(0).astype(int)

    def watch_levels(self, query: str = "", minutes: float = 3, seconds: float = 60, every: float = 5,
                     live: bool = True, marks: dict[str, float] | None = None) -> Any:
        """The log count by level over the last ``minutes`` as a stacked plot in this cell's output, redrawn in
        place every ``every`` seconds for ``seconds`` (once with ``live`` false); ``marks``: label → Unix time."""
        from .views import watch_levels

        return watch_levels(self, query, minutes, seconds, every, live, marks)  # type: ignore[arg-type]

    def deployments(self) -> list[str]:
        return [d.metadata.name for d in self.lab.kubernetes.apps().list_namespaced_deployment(NAMESPACE).items]

    def break_shipping(self) -> None:
        """The Diagnose fault: every shop Deployment's pods annotated to be excluded from the pipeline."""
        for name in self.deployments():
            self.lab.kubectl("patch", "deployment", name, "-n", NAMESPACE, "--type", "merge", "-p",
                             exclude_patch("true"), check=True)

    def restore(self) -> list[str]:
        """The exclude annotation removed from every shop Deployment that has it; what it changed."""
        done = []
        for d in self.lab.kubernetes.apps().list_namespaced_deployment(NAMESPACE).items:
            annotations = d.spec.template.metadata.annotations or {}
            if EXCLUDE_ANNOTATION in annotations:
                self.lab.kubectl("patch", "deployment", d.metadata.name, "-n", NAMESPACE, "--type", "merge", "-p",
                                 exclude_patch(None), check=True)
                done.append(f"deployment {d.metadata.name}'s logs shipped again ({EXCLUDE_ANNOTATION} removed)")
        return done

    def repair(self) -> list[str]:
        return self.restore()
