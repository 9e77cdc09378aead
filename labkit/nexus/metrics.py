"""Nexus' request and cache counters per repository, exported as Prometheus text
(``/service/metrics/prometheus``, which needs credentials as in Nexus)."""

from __future__ import annotations

from collections import defaultdict

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
COUNTERS = {
    "requests": "Requests for content of the repository",
    "cache_hits": "Requests answered from stored content without asking the remote",
    "cache_misses": "Requests that had to ask the remote (first fetch, re-validation)",
    "upstream_requests": "Requests sent to the proxy repository's remote",
    "upstream_bytes": "Bytes downloaded from the proxy repository's remote",
    "negative_cache_hits": "Requests answered 404 from the negative cache",
}


class Metrics:
    """Counters by (name, repository)."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, float]] = {name: defaultdict(float) for name in COUNTERS}

    def add(self, counter: str, repository: str, amount: float = 1) -> None:
        self.values[counter][repository] += amount

    def get(self, counter: str, repository: str) -> float:
        return self.values[counter].get(repository, 0.0)

    def render(self, stored: dict[str, tuple[int, int]] | None = None) -> str:
        """The counters, and ``stored`` (repository -> (assets, bytes)) as gauges."""
        lines = []
        for index, (metric, help_text) in enumerate((("nexus_repository_assets", "Files stored in the repository"),
                                                     ("nexus_repository_stored_bytes",
                                                      "Bytes of the files stored in the repository"))):
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
            lines += [f'{metric}{{repository="{name}"}} {values[index]}'
                      for name, values in sorted((stored or {}).items())]
        for counter, help_text in COUNTERS.items():
            metric = f"nexus_repository_{counter}_total"
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
            for repository, value in sorted(self.values[counter].items()):
                lines.append(f'{metric}{{repository="{repository}"}} {value:g}')
        return "\n".join(lines) + "\n"
