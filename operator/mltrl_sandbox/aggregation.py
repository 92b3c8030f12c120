"""The ClusterRole aggregation controller, the one controller of a real cluster the
sandbox runs: a ClusterRole with an aggregationRule gets, as its rules, the rules of every
ClusterRole its selectors match (so the chart's mltrl-editor, labelled
aggregate-to-edit, becomes part of `edit`). Like kube-controller-manager's, it writes
the aggregated roles after the fact, on every change to a ClusterRole."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Mapping
from typing import Any

from .api import Api, WriteOptions
from .errors import ApiError
from .rbac import CLUSTER_ROLES, GROUP
from .store import Watcher
from .users import MASTERS, UserInfo

Obj = dict[str, Any]
log = logging.getLogger(__name__)

CONTROLLER = UserInfo("system:kube-controller-manager", (MASTERS, "system:authenticated"))
# the field manager kube-controller-manager's aggregation controller writes the rules as
# (`kubectl get clusterrole edit --show-managed-fields`)
MANAGER = "clusterrole-aggregation-controller"


def selector_matches(selector: Obj, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector; an empty one matches nothing here (as aggregation treats it)."""
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in expressions:
        key, op = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def aggregated_rules(role: Obj, roles: list[Obj]) -> list[Obj]:
    selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    rules: list[Obj] = []
    name = role["metadata"]["name"]
    for other in sorted(roles, key=lambda r: str(r["metadata"]["name"])):
        if other["metadata"]["name"] == name:
            continue
        labels = other["metadata"].get("labels") or {}
        if any(selector_matches(s, labels) for s in selectors):
            for rule in other.get("rules") or []:
                if rule not in rules:
                    rules.append(copy.deepcopy(rule))
    return rules


class AggregationController:
    def __init__(self, api: Api) -> None:
        self.api = api
        self._task: asyncio.Task[None] | None = None

    async def reconcile(self) -> None:
        """Aggregate until nothing changes (view feeds edit, which feeds admin)."""
        rt = self.api.registry.get(f"{GROUP}/v1", "clusterroles")
        if rt is None:
            return
        for _ in range(10):
            changed = False
            roles = self.api.store.list(CLUSTER_ROLES)
            for role in roles:
                if not role.get("aggregationRule"):
                    continue
                rules = aggregated_rules(role, roles)
                if rules == (role.get("rules") or []):
                    continue
                updated = {**copy.deepcopy(role), "rules": rules}
                try:
                    await self.api.update(rt, None, role["metadata"]["name"], updated,
                                          WriteOptions(user=CONTROLLER, field_manager=MANAGER))
                    changed = True
                except ApiError as error:  # a concurrent write: the next event retries
                    log.debug("aggregating %s: %s", role["metadata"]["name"], error)
            if not changed:
                return

    async def _run(self, watcher: Watcher) -> None:
        try:
            await self.reconcile()
            while True:
                event = await watcher.queue.get()
                if event is None:
                    return
                while not watcher.queue.empty():  # one pass for a burst of changes
                    if watcher.queue.get_nowait() is None:
                        return
                await self.reconcile()
        finally:
            self.api.store.unsubscribe(CLUSTER_ROLES, watcher)

    def start(self) -> None:
        # Subscribed now, not when the task first runs: no write in between goes unseen.
        watcher = Watcher(lambda _obj: True)
        self.api.store.subscribe(CLUSTER_ROLES, watcher, None)
        self._task = asyncio.create_task(self._run(watcher), name="clusterrole-aggregation")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
