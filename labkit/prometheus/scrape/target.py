"""A scrape target as Prometheus builds it from discovered labels: the job's defaults, ``relabel_configs``, the
default port, ``instance``, the URL; and its health as ``/api/v1/targets`` shows it."""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field

from ..config import ScrapeConfig
from .relabel import relabel


def _seconds(value: float) -> str:
    return f"{value:g}s" if value < 60 or value % 60 else f"{int(value // 60)}m"


@dataclass
class Target:
    job: ScrapeConfig
    discovered: dict[str, str]
    labels: dict[str, str]  # the target's labels, without the __ ones
    url: str
    health: str = "unknown"
    last_error: str = ""
    last_scrape: float = 0.0
    last_duration: float = 0.0
    last_samples: int = 0
    metadata: dict[str, object] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.url, repr(sorted(self.labels.items()))

    def api(self) -> dict[str, object]:
        """This target in ``/api/v1/targets``' ``activeTargets``."""
        last = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.last_scrape)) + \
            f".{int(self.last_scrape % 1 * 1e9):09d}Z" if self.last_scrape else "0001-01-01T00:00:00Z"
        return {"discoveredLabels": self.discovered, "labels": self.labels, "scrapePool": self.job.job_name,
                "scrapeUrl": self.url, "globalUrl": self.url, "lastError": self.last_error, "lastScrape": last,
                "lastScrapeDuration": self.last_duration, "health": self.health,
                "scrapeInterval": _seconds(self.job.scrape_interval),
                "scrapeTimeout": _seconds(self.job.scrape_timeout)}


def populate(job: ScrapeConfig, discovered: dict[str, str]) -> tuple[Target | None, dict[str, str]]:
    """(the target, or None when relabeling drops it or it has no address; the labels it was discovered with,
    including the job's defaults)."""
    defaults = {"job": job.job_name, "__scheme__": job.scheme, "__metrics_path__": job.metrics_path,
                "__scrape_interval__": _seconds(job.scrape_interval),
                "__scrape_timeout__": _seconds(job.scrape_timeout),
                **{f"__param_{k}": v[0] for k, v in job.params.items() if v}}
    base = {**defaults, **discovered}
    labels = relabel(base, job.relabel_configs)
    if labels is None or not labels.get("__address__"):
        return None, base
    address = labels["__address__"]
    if ":" not in address.rsplit("]", 1)[-1]:
        address += ":443" if labels.get("__scheme__") == "https" else ":80"
        labels["__address__"] = address
    labels.setdefault("instance", address)
    params = {k: list(v) for k, v in job.params.items()}
    params.update({k[len("__param_"):]: [v] for k, v in labels.items() if k.startswith("__param_")})
    query = urllib.parse.urlencode(params, doseq=True)
    url = f"{labels.get('__scheme__', 'http')}://{address}{labels.get('__metrics_path__', '/metrics')}" + \
        (f"?{query}" if query else "")
    final = {k: v for k, v in labels.items() if not k.startswith("__")}
    return Target(job, base, final, url), base
