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
    Incident,
    MLTechnologySpec,
    MLTechnologyStatus,
)
from mltrl_operator.domain.alerts import (
    FIRING,
    RESOLVED_STATE,
    choose_rule,
    record_incident,
)
from mltrl_operator.domain.policy import EffectivePolicy
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import Conflict, NotFound
from mltrl_operator.k8s.resources import TECHNOLOGIES

MAX_ATTEMPTS = 5

RECORDED = "recorded"
DUPLICATE = "duplicate"
RESOLVED = "resolved"
NO_INCIDENT = "no-incident"
UNKNOWN_TECHNOLOGY = "unknown-technology"

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


def _find(incidents: Sequence[Incident], alert: ReceivedAlert) -> Incident | None:
    return next(
        (
            i
            for i in incidents
            if i.fingerprint == alert.fingerprint and i.starts_at == alert.starts_at
        ),
        None,
    )


def _outcome(before: Incident | None, after: Incident | None, alert: ReceivedAlert) -> str:
    if alert.status == FIRING:
        return DUPLICATE if before is not None else RECORDED
    if before is None:
        return NO_INCIDENT
    if before.state != RESOLVED_STATE and after is not None and after.state == RESOLVED_STATE:
        return RESOLVED
    return DUPLICATE


def _detail(outcome: str, incident: Incident | None) -> str:
    if outcome == RECORDED and incident is not None:
        return incident.message
    if outcome == NO_INCIDENT:
        return "no incident was recorded for this alert; nothing to close"
    if incident is None:
        return ""
    if outcome == RESOLVED:
        return (
            "closed before it was acted on"
            if incident.message == "resolved before it was acted on"
            else "closed; what was done stays done"
        )
    return f"already recorded ({incident.state}): {incident.message}"


def _apply(
    key: str,
    spec: MLTechnologySpec,
    incidents: list[Incident],
    alerts: Sequence[ReceivedAlert],
    policy: EffectivePolicy,
    now: datetime,
) -> tuple[list[Incident], list[Recorded], bool]:
    rules = spec.monitoring.rules if spec.monitoring else []
    results: list[Recorded] = []
    changed_any = False
    for alert in alerts:
        before = _find(incidents, alert)
        domain_alert = alert.as_domain()
        rule = choose_rule(domain_alert, rules, policy)
        incidents, changed = record_incident(incidents, domain_alert, rule, now, INCIDENT_LIMIT)
        changed_any |= changed
        after = _find(incidents, alert)
        outcome = _outcome(before, after, alert)
        shown = after or before
        results.append(
            Recorded(alert, outcome, shown.action if shown else None, _detail(outcome, shown), key)
        )
    return incidents, results, changed_any


async def record_alerts(
    client: KubeClient,
    namespace: str,
    name: str,
    alerts: Sequence[ReceivedAlert],
    policy: EffectivePolicy,
    now: datetime,
) -> TechnologyRecord:
    """Record `alerts` on one technology with one conditional status PATCH.

    On 409 the technology is read again and the alerts applied to what is stored now, so a
    concurrent reconcile (or another notification) is never overwritten.
    """
    for _ in range(MAX_ATTEMPTS):
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
        incidents, results, changed = _apply(
            f"{namespace}/{name}", spec, list(status.incidents), alerts, policy, now
        )
        if not changed:
            return TechnologyRecord(tuple(results), None)
        try:
            stored = await client.patch_status(
                TECHNOLOGIES, namespace, name,
                {"incidents": [incident.to_wire() for incident in incidents]},
                resource_version=metadata.get("resourceVersion"),
            )
        except Conflict:
            continue
        except NotFound:
            return _unknown(alerts, f"MLTechnology {namespace}/{name} does not exist")
        return TechnologyRecord(tuple(results), stored)
    raise TechnologyBusy(f"MLTechnology {namespace}/{name} kept changing; try again")


def _unknown(alerts: Sequence[ReceivedAlert], detail: str) -> TechnologyRecord:
    return TechnologyRecord(
        tuple(Recorded(alert, UNKNOWN_TECHNOLOGY, None, detail) for alert in alerts), None
    )
