"""Chapter 10's one dashboard: every product's view of a release on one time axis, each panel read from the product
that knows it (GitLab's jobs, Harbor's audit log, Argo CD's Application, Prometheus, Elasticsearch) and every panel
marked with the moments the release reached each stage. Live in the cell that creates it (redrawn in place in a
notebook a person runs); ``figure()`` draws it once, as CI keeps it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..core.sampling import Sampler

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..lab import Lab
    from ..traffic import Traffic

SERVICE = "catalog"  # the service the chapter changes
STATUS_COLOURS = {"success": "tab:green", "failed": "tab:red", "running": "tab:blue", "pending": "tab:gray",
                  "created": "tab:gray", "canceled": "tab:brown", "skipped": "white", "manual": "tab:purple"}
SYNC_LEVEL = {"Synced": 1.0, "OutOfSync": 0.0, "Unknown": 0.5}
HEALTH_LEVEL = {"Healthy": 1.0, "Progressing": 0.5, "Degraded": 0.0, "Missing": 0.0, "Suspended": 0.25,
                "Unknown": 0.5}
PANELS = ("GitLab: pipeline jobs", "Harbor: artifacts pushed (audit log)", "Argo CD: shop sync and health",
          f"Prometheus: {SERVICE} requests/s by version", "Elasticsearch: shop log lines at level error, per 10 s",
          f"Prometheus: {SERVICE} p95 latency by version")


def _utc(epoch: float) -> pd.Timestamp:
    return pd.Timestamp(epoch, unit="s", tz="UTC")


class Dashboard(Sampler):
    """``Dashboard(lab, traffic)`` samples the ``shop`` Application every second from now on; ``mark(label)``
    notes a moment (drawn on every panel), ``pipeline(id)`` adds a pipeline's jobs, ``figure()`` draws it all."""

    def __init__(self, lab: Lab, traffic: Traffic | None = None, every: float = 1.0, redraw: float = 10.0,
                 application: str = "shop") -> None:
        super().__init__(every)
        self.lab, self.traffic, self.redraw, self.application = lab, traffic, redraw, application
        self.marks: list[tuple[str, float]] = []
        self.pipelines: list[int] = []
        self.states: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._drawn = 0.0
        self.handle: Any = None
        from ..checks import interactive

        if interactive():
            from IPython.display import HTML, display

            self.handle = display(HTML("<b>the release, product by product</b><br><i>first draw in a few "
                                       "seconds…</i>"), display_id=True)
        self.__enter__()

    # -- what it collects ------------------------------------------------------------------------------------
    def mark(self, label: str, at: float | None = None) -> None:
        """Note a moment (default now) as a vertical line on every panel."""
        with self._lock:
            self.marks.append((label, at if at is not None else time.time()))

    def pipeline(self, pipeline_id: int) -> None:
        """Draw this pipeline's jobs in the GitLab panel."""
        with self._lock:
            if pipeline_id not in self.pipelines:
                self.pipelines.append(pipeline_id)

    def sample(self, elapsed: float) -> None:
        try:
            app = self.lab.argocd.get(self.application) or {}
        except Exception:  # a sampler keeps sampling: the API answers again after a restart
            app = {}
        status = app.get("status") or {}
        with self._lock:
            self.states.append({"time": _utc(time.time()), "sync": (status.get("sync") or {}).get("status", ""),
                                "health": (status.get("health") or {}).get("status", ""),
                                "revision": str((status.get("sync") or {}).get("revision", ""))[:8]})
        if self.handle is not None and time.monotonic() - self._drawn >= self.redraw:
            self._drawn = time.monotonic()
            self.show()

    def show(self) -> None:
        """Redraw in place (a notebook a person runs)."""
        import matplotlib.pyplot as plt

        if self.handle is None:
            return
        try:
            fig = self.figure()
        except Exception as err:  # a product that does not answer this time: the next redraw tries again
            from IPython.display import HTML

            self.handle.update(HTML(f"<i>redraw failed: {type(err).__name__}: {err}</i>"))
            return
        self.handle.update(fig)
        plt.close(fig)

    # -- the panels' data --------------------------------------------------------------------------------
    def jobs(self) -> pd.DataFrame:
        """The marked pipelines' jobs: pipeline, job, stage, status, started, finished (UTC)."""
        rows = []
        for pid in list(self.pipelines):
            for job in self.lab.gitlab.jobs(pid):
                start = job.get("started_at") or job.get("created_at")
                rows.append({"pipeline": pid, "job": job["name"], "stage": job.get("stage", ""),
                             "status": job.get("status", ""),
                             "started": pd.Timestamp(start) if start else pd.NaT,
                             "finished": pd.Timestamp(job["finished_at"]) if job.get("finished_at") else pd.NaT})
        return pd.DataFrame(rows, columns=["pipeline", "job", "stage", "status", "started", "finished"])

    def pushes(self) -> pd.DataFrame:
        """Harbor's audit log entries for artifacts created since the dashboard started."""
        log = self.lab.registry.audit_log(page_size=100, q="operation=create")
        log = log[log["Resource Type"] == "artifact"]
        return log[log["Timestamp"] >= _utc(self.started)].reset_index(drop=True)

    def series(self, expr: str) -> pd.DataFrame:
        """A range query since the start, one column per ``version``."""
        start = _utc(self.started)
        frame = self.lab.prometheus.query_range(expr, start=start.to_pydatetime(warn=False), end=datetime.now(UTC),
                                                step=2.0)
        if frame.empty or "version" not in frame:
            return pd.DataFrame()
        return frame.pivot_table(index="time", columns="version", values="value")

    def error_logs(self) -> pd.Series:
        counts = self.lab.logging.count_by_level("kubernetes.namespace_name: shop",
                                                 start=_utc(self.started).to_pydatetime(warn=False),
                                                 end=datetime.now(UTC), interval="10s")
        return counts["error"] if "error" in counts else pd.Series(0, index=counts.index, dtype=int)

    # -- drawing ------------------------------------------------------------------------------------------
    def figure(self) -> Figure:
        import matplotlib.pyplot as plt

        rate = (f'sum by (version) (rate(http_requests_total{{namespace="shop",app="{SERVICE}",'
                f'route!~"/healthz|/readyz|/metrics"}}[30s]))')
        errors = rate.replace('route!~', 'status=~"5..",route!~')
        p95 = (f'1000 * histogram_quantile(0.95, sum by (version, le) (rate(http_request_duration_seconds_bucket'
               f'{{namespace="shop",app="{SERVICE}",route!~"/healthz|/readyz|/metrics"}}[30s])))')
        fig, axes = plt.subplots(len(PANELS), 1, figsize=(12, 15), sharex=True)
        drawers: list[Callable[[Axes], None]] = [
            self._draw_jobs, self._draw_pushes, self._draw_sync,
            lambda ax: self._draw_versions(ax, rate, errors, "requests/s"),
            self._draw_errors, lambda ax: self._draw_versions(ax, p95, None, "ms")]
        for ax, title, draw in zip(axes, PANELS, drawers, strict=True):
            ax.set_title(title, loc="left", fontsize=10)
            try:
                draw(ax)
            except Exception as err:  # one product not answering leaves its panel empty, with the reason
                ax.text(0.5, 0.5, f"{type(err).__name__}: {str(err)[:120]}", transform=ax.transAxes,
                        ha="center", va="center", fontsize=8, color="tab:red")
        with self._lock:
            marks = list(self.marks)
        for ax in axes:
            for _, at in marks:
                ax.axvline(_utc(at), color="black", linestyle=":", linewidth=1)
        for label, at in marks:
            axes[0].annotate(label, (_utc(at), 1.0), xycoords=("data", "axes fraction"), rotation=30, fontsize=8,
                             xytext=(0, 4), textcoords="offset points", ha="left", va="bottom")
        axes[-1].set_xlabel("time (UTC)")
        axes[-1].set_xlim(_utc(self.started), _utc(time.time()))
        fig.suptitle("One release through the platform: push → pipeline → Harbor → shop/manifests → Argo CD → "
                     "traffic", y=0.995)
        fig.tight_layout()
        return fig

    def _draw_jobs(self, ax: Axes) -> None:
        import matplotlib.dates as mdates

        jobs = self.jobs().dropna(subset=["started"])
        now = _utc(time.time())
        for y, job in enumerate(jobs.itertuples()):
            start = mdates.date2num(job.started.to_pydatetime(warn=False))
            end = mdates.date2num((job.finished if not pd.isna(job.finished) else now).to_pydatetime(warn=False))
            ax.barh(y, end - start, left=start, color=STATUS_COLOURS.get(job.status, "tab:gray"), height=0.7)
        ax.set_yticks(range(len(jobs)), [f"#{r.pipeline} {r.job}" for r in jobs.itertuples()], fontsize=7)
        ax.invert_yaxis()

    def _draw_pushes(self, ax: Axes) -> None:
        pushes = self.pushes()
        ax.scatter(pushes["Timestamp"], [1] * len(pushes), marker="v", color="tab:blue")
        for r in pushes.itertuples():
            ax.annotate(str(r.Resource).split("/")[-1], (r.Timestamp, 1), rotation=60, fontsize=7,
                        xytext=(0, 5), textcoords="offset points")
        ax.set_yticks([])
        ax.set_ylim(0.5, 2.5)

    def _draw_sync(self, ax: Axes) -> None:
        with self._lock:
            states = pd.DataFrame(self.states, columns=["time", "sync", "health", "revision"])
        ax.step(states["time"], states["sync"].map(SYNC_LEVEL), where="post", label="sync (1 Synced)")
        ax.step(states["time"], states["health"].map(HEALTH_LEVEL), where="post", label="health (1 Healthy)")
        ax.set_ylim(-0.1, 1.2)
        ax.set_ylabel("level")
        ax.legend(loc="lower left", fontsize=7)

    def _draw_versions(self, ax: Axes, expr: str, errors: str | None, unit: str) -> None:
        frame = self.series(expr)
        for version in frame.columns:
            ax.plot(frame.index, frame[version], label=f"version {version}")
        if errors is not None:
            failed = self.series(errors)
            for version in failed.columns:
                ax.plot(failed.index, failed[version], linestyle="--", label=f"5xx, version {version}")
            if self.traffic is not None:
                rows = pd.DataFrame(list(self.traffic.rows), columns=["time", "status", "latency_ms", "pod"])
                bad = rows[~rows["status"].between(200, 399)]
                if not bad.empty:
                    ax.scatter(pd.to_datetime(bad["time"], unit="s", utc=True), [0] * len(bad), marker="x",
                               color="tab:red", label="failed at HAProxy (lab.traffic)")
        ax.set_ylabel(unit)
        if frame.columns.size or errors is not None:
            ax.legend(loc="upper left", fontsize=7)

    def _draw_errors(self, ax: Axes) -> None:
        errors = self.error_logs()
        ax.bar(errors.index, errors.values, width=pd.Timedelta(seconds=9), align="edge", color="tab:red")
        ax.set_ylabel("lines")

    def close(self) -> Figure | None:
        """Stop sampling; the final figure (None when it is already on the page)."""
        import matplotlib.pyplot as plt

        self.stop()
        fig = self.figure()
        if self.handle is None:
            return fig
        self.handle.update(fig)
        plt.close(fig)
        return None
