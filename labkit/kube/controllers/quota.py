"""The resource-quota controller: every ResourceQuota's ``status.hard`` and ``status.used``, kept current."""

from __future__ import annotations

from collections.abc import Iterable

from ..apiserver.policy import format_quantity, quota_keys, quota_used
from ..apiserver.store import Event
from .base import MANAGER, Controller, Key


class ResourceQuotaController(Controller):
    name = "resourcequota-controller"
    watches = tuple(quota_keys())

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.key == "/resourcequotas":
            return super().keys_for(ev)
        ns = ev.obj["metadata"].get("namespace", "")
        return [(ns, q["metadata"]["name"]) for q in self.store.items("/resourcequotas", ns)]

    def reconcile(self, key: Key) -> None:
        ns, name = key
        quota = self.store.get("/resourcequotas", ns, name)
        if quota is None or quota["metadata"].get("deletionTimestamp"):
            return
        hard = dict((quota.get("spec") or {}).get("hard") or {})
        used = {r: format_quantity(v, r) for r, v in quota_used(self.store, quota).items()}
        status = {"hard": hard, "used": used}
        if quota.get("status") == status:
            return
        self.objects.update(self.rt("", "v1", "resourcequotas"), ns, name, {**quota, "status": status},
                            MANAGER, "status")
