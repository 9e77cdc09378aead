"""``lab.grafana``: Grafana dashboards (Grafana's JSON model) drawn in the notebook from the lab's Prometheus."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lab import PrometheusView


class Grafana:
    """Renders a dashboard's panels with matplotlib, querying Prometheus' HTTP API (either backend)."""

    def __init__(self, prometheus: PrometheusView) -> None:
        self.prometheus = prometheus

    def render(self, dashboard: dict[str, Any] | str, **variables: str) -> Any:
        """Draw ``dashboard`` (its JSON model, or a file/name under manifests/dashboards)."""
        raise NotImplementedError("lab.grafana.render is being written (issue 16, P3)")
