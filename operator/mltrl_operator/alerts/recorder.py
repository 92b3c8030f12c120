"""Alerts written into their technology's status.incidents, and nothing else.

The receiver only records intent; the reconciler acts on Pending incidents. So a 2xx to
Alertmanager means the incident is stored in the API server: a crash right after it loses
nothing, and a crash before it makes Alertmanager send again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from mltrl_operator.alerts.payload import ReceivedAlert
from mltrl_operator.api.technology import (
    INCIDENT_LIMIT,
    AlertAction,
    MLTechnologySpec,
    MLTechnologyStatus,
    SettledAlerts,
)
from mltrl_operator.domain.alerts import (
    BEYOND_HORIZON,
    DEFERRED,
    DUPLICATE,
    GROUPED,
    NO_INCIDENT,
    RECORDED,
    RESOLVED_OUTCOME,
    AlertBook,
    Receipt,
    choose_rule,
    receive_alert,
)
from mltrl_operator.domain.policy import EffectivePolicy
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import Conflict, NotFound
from mltrl_operator.k8s.lookups import TechnologyLookup
from mltrl_operator.k8s.resources import TECHNOLOGIES

MAX_ATTEMPTS = 5

RESOLVED = RESOLVED_OUTCOME
UNKNOWN_TECHNOLOGY = "unknown-technology"
__all__ = [
    "BEYOND_HORIZON", "DEFERRED", "DUPLICATE", "GROUPED", "NO_INCIDENT", "RECORDED", "RESOLVED",
    "UNKNOWN_TECHNOLOGY", "Recorded", "TechnologyBusy", "record_alerts",
]

logger = logging.getLogger(__name__)


class TechnologyBusy(Exception):
    """The technology kept changing under our conditional writes; Alertmanager will retry."""


@dataclass(frozen=True)
class Recorded:
    alert: ReceivedAlert
    outcome: str
    action: AlertAction | None
    detail: str
    technology: str | None = None
    """namespace/name of the technology the alert was recorded on, when one was found."""


@dataclass(frozen=True)
class TechnologyRecord:
    results: tuple[Recorded, ...]
    stored: dict[str, Any] | None
    """The technology as stored after our write; None when nothing was written."""
    based_on: dict[str, Any] | None = None
    """The copy the write was conditional on (what `stored` replaced)."""


def _detail(receipt: Receipt) -> str:
    incident = receipt.incident
    match receipt.outcome:
        case "recorded" if incident is not None:
            return incident.message
        case "no-incident":
            return "no incident was recorded for this alert; nothing to close"
        case "beyond-horizon":
            return (
                "started before the oldest alert this technology remembers "
                "(status.settledAlerts.horizon); ignored"
            )
        case "deferred":
            return (
                f"status.incidents holds {INCIDENT_LIMIT} incidents, all Pending: not "
                "stored, since a Pending one is never dropped; send it again once the "
                "operator has settled some"
            )
        case "grouped" if incident is not None:
            return (
                f"part of incident {incident.alert_name} ({incident.fingerprint}), "
                f"{incident.state}: {incident.message}"
            )
        case "resolved" if incident is not None:
            return (
                "closed before it was acted on"
                if incident.message == "resolved before it was acted on"
                else "closed; what was done stays done"
            )
    if incident is None:
        return "already handled" if receipt.outcome == DUPLICATE else ""
    return f"already recorded ({incident.state}): {incident.message}"


def _apply(
    key: str,
    spec: MLTechnologySpec,
    book: AlertBook,
    alerts: Sequence[ReceivedAlert],
    policy: EffectivePolicy,
    now: datetime,
) -> tuple[AlertBook, list[Recorded]]:
    rules = spec.monitoring.rules if spec.monitoring else []
    results: list[Recorded] = []
    for alert in alerts:
        domain_alert = alert.as_domain()
        rule = choose_rule(domain_alert, rules, policy)
        book, receipt = receive_alert(book, domain_alert, rule, now)
        shown = receipt.incident
        results.append(
            Recorded(alert, receipt.outcome, shown.action if shown else None,
                     _detail(receipt), key)
        )
    return book, results


async def record_alerts(
    client: KubeClient,
    namespace: str,
    name: str,
    alerts: Sequence[ReceivedAlert],
    policy: EffectivePolicy,
    now: datetime,
    cached: TechnologyLookup | None = None,
) -> TechnologyRecord:
    """Record `alerts` on one technology with one conditional status PATCH.

    On 409 the technology is read again and the alerts applied to what is stored now, so a
    concurrent reconcile (or another notification) is never overwritten.

    `cached`: the operator's own copy of the technology (its watch cache), tried first to
    save a GET on the way to the 200 (issue 17: the alert's latency). It is trusted only
    through the conditional write: a stale copy is answered 409 and read afresh. A copy
    that asks for no write at all (a duplicate) is not trusted with the answer either,
    since a stale one could call a new alert a duplicate: the technology is read then.
    """
    body = cached(namespace, name) if cached is not None else None
    for _ in range(MAX_ATTEMPTS):
        from_cache = body is not None
        if body is None:
            try:
                body = await client.get(TECHNOLOGIES, namespace, name)
            except NotFound:
                return _unknown(alerts, f"MLTechnology {namespace}/{name} does not exist")
        metadata = body.get("metadata") or {}
        if metadata.get("deletionTimestamp"):
            return _unknown(alerts, f"MLTechnology {namespace}/{name} is being deleted")
        try:
            spec = MLTechnologySpec.model_validate(body.get("spec") or {})
            status = MLTechnologyStatus.model_validate(body.get("status") or {})
        except ValidationError as error:
            logger.error("MLTechnology %s/%s cannot be read: %s", namespace, name, error)
            return _unknown(alerts, f"MLTechnology {namespace}/{name} cannot be read")
        before = AlertBook(tuple(status.incidents), status.settled_alerts or SettledAlerts())
        book, results = _apply(f"{namespace}/{name}", spec, before, alerts, policy, now)
        if book == before:
            if from_cache:
                body = None  # nothing to write, by a copy that may be stale: read it
                continue
            return TechnologyRecord(tuple(results), None)
        patch: dict[str, Any] = {"incidents": [incident.to_wire() for incident in book.incidents]}
        if book.settled != before.settled:
            patch["settledAlerts"] = book.settled.to_wire()
        try:
            stored = await client.patch_status(
                TECHNOLOGIES, namespace, name, patch,
                resource_version=metadata.get("resourceVersion"),
            )
        except Conflict:
            body = None  # changed since that copy: read it again
            continue
        except NotFound:
            return _unknown(alerts, f"MLTechnology {namespace}/{name} does not exist")
        return TechnologyRecord(tuple(results), stored, body)
    raise TechnologyBusy(f"MLTechnology {namespace}/{name} kept changing; try again")


def _unknown(alerts: Sequence[ReceivedAlert], detail: str) -> TechnologyRecord:
    return TechnologyRecord(
        tuple(Recorded(alert, UNKNOWN_TECHNOLOGY, None, detail) for alert in alerts), None
    )
