"""Monitoring alerts turned into incidents: recorded intent the reconciler acts on once.

An incident is keyed by Alertmanager's fingerprint and startsAt, so a re-sent alert
(Alertmanager repeats them) changes nothing, while the same alert firing again later is a
new incident. A resolved alert marks its incident Resolved and undoes nothing: levels go
back up only through reviews. An incident still Pending when its alert resolves is not
acted on any more: the condition cleared by itself.

Alerts of one alertname on one technology that start within GROUP_WINDOW of an open
incident of that alertname join it (per-pod alerts carry one fingerprint per pod: one
problem, one rollback). Replays are recognised beyond the kept incidents through
status.settledAlerts, a bounded record of the alerts whose incidents were dropped (or that
joined another); a firing alert that started at or before its horizon is older than
anything remembered and is ignored.

A Pending incident is an action not yet taken, and it is never dropped to make room: when
every kept incident is Pending, a new alert is not taken (outcome `deferred`) and the
receiver answers 503, so Alertmanager sends it again once the operator has settled some.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mltrl_operator.api.technology import (
    INCIDENT_LIMIT,
    SETTLED_ALERT_LIMIT,
    AlertAction,
    Incident,
    MonitoringRule,
    SettledAlerts,
)
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

GROUP_WINDOW = timedelta(minutes=10)
"""Alerts of one alertname starting this close to an open incident of it join it."""

# What receiving one alert did.
RECORDED = "recorded"
DUPLICATE = "duplicate"
GROUPED = "grouped"
RESOLVED_OUTCOME = "resolved"
NO_INCIDENT = "no-incident"
BEYOND_HORIZON = "beyond-horizon"
DEFERRED = "deferred"
"""Not taken: status.incidents is full of Pending incidents (an action is never dropped)."""


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


def _room(incidents: Sequence[Incident], limit: int) -> bool:
    """Whether one more incident fits: only settled incidents make way, oldest first."""
    settled = sum(1 for incident in incidents if incident.state != PENDING)
    return len(incidents) + 1 - limit <= settled


def _dropped(incidents: list[Incident], limit: int) -> list[Incident]:
    """Bound `incidents` in place, dropping the oldest settled ones (never a Pending one:
    that would lose an action never taken; `_room` is asked first); the ones dropped, for
    the settled record."""
    dropped = []
    while len(incidents) > limit:
        settled = next(i for i, inc in enumerate(incidents) if inc.state != PENDING)
        dropped.append(incidents.pop(settled))
    return dropped


def _planned(rule: MonitoringRule) -> str:
    if rule.action is AlertAction.DEMOTE:
        return f"demote to level {rule.to_level or DEFAULT_DEMOTE_LEVEL}"
    return str(rule.action)


def alert_id(fingerprint: str, starts_at: str) -> str:
    """A short, stable name for one firing: Alertmanager's fingerprint and start time."""
    return hashlib.sha256(f"{fingerprint}/{starts_at}".encode()).hexdigest()[:16]


def _epoch(starts_at: str) -> int | None:
    try:
        started = datetime.fromisoformat(starts_at)
    except ValueError:
        return None
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return int(started.timestamp())


@dataclass(frozen=True)
class AlertBook:
    """What a technology's status knows about alerts: the incidents kept, and the compact
    record of the ones handled before."""

    incidents: tuple[Incident, ...]
    settled: SettledAlerts


@dataclass(frozen=True)
class Receipt:
    outcome: str
    incident: Incident | None
    """The incident the alert is (now) part of, when there is one."""


def _remember(
    settled: SettledAlerts, fingerprint: str, starts_at: str, limit: int
) -> SettledAlerts:
    key = alert_id(fingerprint, starts_at)
    if any(k.split("@")[0] == key for k in settled.keys):
        return settled
    keys = [*settled.keys, f"{key}@{_epoch(starts_at) or 0}"]
    horizon = settled.horizon
    while len(keys) > limit:
        dropped = int(keys.pop(0).split("@")[1])
        current = _epoch(horizon) if horizon else None
        if current is None or dropped > current:
            horizon = rfc3339(datetime.fromtimestamp(dropped, UTC))
    return SettledAlerts(keys=keys, horizon=horizon)


def _group(
    incidents: Sequence[Incident], alert: Alert, window: timedelta | None
) -> Incident | None:
    if window is None:
        return None
    started = _epoch(alert.starts_at)
    if started is None:
        return None
    for incident in reversed(incidents):
        if incident.alert_name != alert.name or incident.state == RESOLVED_STATE:
            continue
        other = _epoch(incident.starts_at)
        if other is not None and abs(started - other) <= window.total_seconds():
            return incident
    return None


def receive_alert(
    book: AlertBook,
    alert: Alert,
    rule: MonitoringRule,
    now: datetime,
    *,
    limit: int = INCIDENT_LIMIT,
    window: timedelta | None = GROUP_WINDOW,
    settled_limit: int = SETTLED_ALERT_LIMIT,
) -> tuple[AlertBook, Receipt]:
    """Take one alert into the book; the book is unchanged when the alert changes nothing."""
    if alert.status not in (FIRING, RESOLVED):
        raise ValueError(f"alert status must be {FIRING} or {RESOLVED}, not {alert.status!r}")
    result = [i.model_copy() for i in book.incidents]
    index = next(
        (n for n, i in enumerate(result) if _same(i, alert.fingerprint, alert.starts_at)), None
    )
    if alert.status == RESOLVED:
        if index is None:
            return book, Receipt(NO_INCIDENT, None)
        if result[index].state == RESOLVED_STATE:
            return book, Receipt(DUPLICATE, result[index])
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
        return AlertBook(tuple(result), book.settled), Receipt(RESOLVED_OUTCOME, result[index])
    if index is not None:
        return book, Receipt(DUPLICATE, result[index])
    key = alert_id(alert.fingerprint, alert.starts_at)
    if any(k.split("@")[0] == key for k in book.settled.keys):
        return book, Receipt(DUPLICATE, None)
    horizon = _epoch(book.settled.horizon) if book.settled.horizon else None
    started = _epoch(alert.starts_at)
    if horizon is not None and started is not None and started <= horizon:
        return book, Receipt(BEYOND_HORIZON, None)
    joined = _group(result, alert, window)
    if joined is not None:
        settled = _remember(book.settled, alert.fingerprint, alert.starts_at, settled_limit)
        return AlertBook(tuple(result), settled), Receipt(GROUPED, joined)
    if not _room(result, limit):
        return book, Receipt(DEFERRED, None)
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
    kept = [*result, incident]
    settled = book.settled
    for dropped in _dropped(kept, limit):
        settled = _remember(settled, dropped.fingerprint, dropped.starts_at, settled_limit)
    return AlertBook(tuple(kept), settled), Receipt(RECORDED, incident)


def record_incident(
    incidents: Sequence[Incident],
    alert: Alert,
    rule: MonitoringRule,
    now: datetime,
    limit: int,
) -> tuple[list[Incident], bool]:
    """receive_alert on the incidents alone, without grouping: whether anything changed."""
    book = AlertBook(tuple(incidents), SettledAlerts())
    after, _ = receive_alert(book, alert, rule, now, limit=limit, window=None)
    return list(after.incidents), after != book


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
