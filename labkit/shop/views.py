"""The shop's pods and their lesson knobs as a table: which replica is slowed down or failing."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from .lab import ShopView


def knobs_table(shop: ShopView, app: str = "gateway") -> pd.DataFrame:
    """One row per pod of ``app``: its node and its knobs (``GET /admin`` through ``kubectl port-forward``)."""
    import pandas as pd

    pods = shop.lab.kubernetes.core().list_namespaced_pod(shop.namespace, label_selector=f"app={app}").items
    rows = [{"pod": p.metadata.name, "node": p.spec.node_name, **shop.knob(p.metadata.name, "/admin", "GET")}
            for p in pods if p.metadata.deletion_timestamp is None and p.status.phase == "Running"]
    return pd.DataFrame(rows).set_index("pod") if rows else pd.DataFrame()
