"""Monitoring alerts turned into incidents: recorded intent the reconciler acts on once.

An incident is keyed by Alertmanager's fingerprint and startsAt, so a re-sent alert
(Alertmanager repeats them) changes nothing, while the same alert firing again later is a
new incident. A resolved alert marks its incident Resolved and undoes nothing: levels go
back up only through reviews. An incident still Pending when its alert resolves is not
acted on any more: the condition cleared by itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from mltrl_operator.api.technology import AlertAction, Incident, MonitoringRule
from mltrl_operator.domain.levels import DEFAULT_DEMOTE_LEVEL, describe_level
from mltrl_operator.domain.policy import NOTIFY_FALLBACK, EffectivePolicy
from mltrl_operator.domain.reviews import TechnologyFacts
from mltrl_operator.domain.timefmt import rfc3339

FIRING = "firing"
RESOLVED = "resolved"

PENDING = "Pending"
ACTED = "Acted"
FAILED = "Failed"
RESOLVED_STATE = "Resolved"


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    name: str
    labels: Mapping[str, str]
    starts_at: str
    status: str
    """Either "firing" or "resolved", as Alertmanager sends it."""


def rule_matches(rule: MonitoringRule, alert: Alert) -> bool:
    if rule.alert_name and rule.alert_name != alert.name:
        return False
    return all(alert.labels.get(key) == value for key, value in rule.matchers.items())


def choose_rule(
    alert: Alert, technology_rules: Sequence[MonitoringRule], policy: EffectivePolicy
) -> MonitoringRule:
    """The technology's own rules first, then the policy's; notify when nothing matches."""
    for rule in (*technology_rules, *policy.default_alert_rules):
        if rule_matches(rule, alert):
            return rule
    return NOTIFY_FALLBACK


def _same(incident: Incident, fingerprint: str, starts_at: str) -> bool:
    return incident.fingerprint == fingerprint and incident.starts_at == starts_at


def _bounded(incidents: list[Incident], limit: int) -> list[Incident]:
    # Settled incidents go first: dropping a Pending one would lose an action never taken.
    while len(incidents) > limit:
        settled = next((i for i, inc in enumerate(incidents) if inc.state != PENDING), 0)
        del incidents[settled]
    return incidents


def _planned(rule: MonitoringRule) -> str:
    if rule.action is AlertAction.DEMOTE:
        return f"demote to level {rule.to_level or DEFAULT_DEMOTE_LEVEL}"
    return str(rule.action)


def record_incident(
    incidents: Sequence[Incident],
    alert: Alert,
    rule: MonitoringRule,
    now: datetime,
    limit: int,
) -> tuple[list[Incident], bool]:
    if alert.status not in (FIRING, RESOLVED):
        raise ValueError(f"alert status must be {FIRING} or {RESOLVED}, not {alert.status!r}")
    result = [i.model_copy() for i in incidents]
    index = next(
        (n for n, i in enumerate(result) if _same(i, alert.fingerprint, alert.starts_at)), None
    )
    if alert.status == RESOLVED:
        if index is None or result[index].state == RESOLVED_STATE:
            return result, False
        current = result[index]
        result[index] = current.model_copy(
            update={
                "state": RESOLVED_STATE,
                "resolved_at": rfc3339(now),
                "message": "resolved before it was acted on"
                if current.state == PENDING
                else current.message,
            }
        )
        return result, True
    if index is not None:
        return result, False
    incident = Incident(
        fingerprint=alert.fingerprint,
        alert_name=alert.name,
        labels=dict(alert.labels),
        starts_at=alert.starts_at,
        action=rule.action,
        to_level=(rule.to_level or DEFAULT_DEMOTE_LEVEL)
        if rule.action is AlertAction.DEMOTE
        else None,
        state=PENDING,
        message=f"received; {_planned(rule)} pending",
        received_at=rfc3339(now),
    )
    return _bounded([*result, incident], limit), True


def pending_incidents(incidents: Sequence[Incident]) -> list[Incident]:
    return [i for i in incidents if i.state == PENDING]


def settle_incident(
    incidents: Sequence[Incident],
    fingerprint: str,
    starts_at: str,
    *,
    state: str,
    message: str,
    job: str | None = None,
) -> tuple[list[Incident], bool]:
    """Record what the reconciler did about an incident (Acted or Failed)."""
    if state not in (ACTED, FAILED):
        raise ValueError(f"an incident is settled as {ACTED} or {FAILED}, not {state!r}")
    result = [i.model_copy() for i in incidents]
    for n, incident in enumerate(result):
        if _same(incident, fingerprint, starts_at) and incident.state == PENDING:
            update: dict[str, object] = {"state": state, "message": message}
            if job is not None:
                update["job"] = job
            result[n] = incident.model_copy(update=update)
            return result, True
    return result, False


def demotion_problem(technology: TechnologyFacts, to_level: int) -> str | None:
    """Why an alert may not demote the technology to `to_level`; None when it may.

    The same limits as a review switchback: never below the entry level, never to a level
    the technology did not go through, and only downwards.
    """
    if to_level >= technology.level:
        return (
            f"the technology is at level {technology.level}, not above level {to_level}; "
            "nothing to demote"
        )
    if to_level < technology.entry_level:
        return f"level {to_level} is below the technology's entry level {technology.entry_level}"
    if to_level not in technology.visited_levels:
        return f"the technology never went through {describe_level(to_level)}"
    return None
