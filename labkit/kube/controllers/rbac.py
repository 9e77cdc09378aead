"""The ClusterRole aggregation controller: a ClusterRole with an aggregationRule holds the rules of the
ClusterRoles its selectors match, as kube-controller-manager's clusterrole-aggregation controller keeps them."""

from __future__ import annotations

from collections.abc import Iterable

from ..apiserver.objects import WriteOptions
from ..apiserver.rbac import CLUSTER_ROLES, GROUP
from ..apiserver.selectors import selector_matches
from ..apiserver.store import Event
from .base import Controller, Key, Obj

MANAGER = WriteOptions(field_manager="clusterrole-aggregation-controller", field_validation="Ignore")


def aggregated_rules(role: Obj, roles: list[Obj]) -> list[Obj]:
    """The rules of every other ClusterRole a selector of ``role`` matches, by role name, without duplicates."""
    selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    rules: list[Obj] = []
    for other in sorted(roles, key=lambda r: r["metadata"]["name"]):
        if other["metadata"]["name"] == role["metadata"]["name"]:
            continue
        if any(selector_matches(s, other["metadata"].get("labels")) for s in selectors):
            rules += [r for r in other.get("rules") or [] if r not in rules]
    return rules


class ClusterRoleAggregationController(Controller):
    name = "clusterrole-aggregation-controller"
    watches = (CLUSTER_ROLES,)

    def start(self) -> None:
        super().start()
        self.wake.set()  # aggregate at once: the bootstrap roles admin, edit and view start empty

    def keys_for(self, ev: Event) -> Iterable[Key]:
        """Any ClusterRole's change may concern every aggregated ClusterRole."""
        return self.all_keys()

    def all_keys(self) -> Iterable[Key]:
        return [("", r["metadata"]["name"]) for r in self.store.items(CLUSTER_ROLES) if r.get("aggregationRule")]

    def reconcile(self, key: Key) -> None:
        role = self.store.get(CLUSTER_ROLES, "", key[1])
        if role is None or not role.get("aggregationRule"):
            return
        rules = aggregated_rules(role, list(self.store.items(CLUSTER_ROLES)))
        if rules != (role.get("rules") or []):
            self.objects.update(self.rt(GROUP, "v1", "clusterroles"), "", key[1], {**role, "rules": rules}, MANAGER)
