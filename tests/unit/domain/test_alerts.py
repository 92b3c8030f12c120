from __future__ import annotations

from typing import Any

import pytest

from mltrl_operator.api.technology import AlertAction, Incident, MonitoringRule, SettledAlerts
from mltrl_operator.domain.alerts import (
    Alert,
    AlertBook,
    choose_rule,
    demotion_problem,
    pending_incidents,
    receive_alert,
    record_incident,
    settle_incident,
)
from mltrl_operator.domain.policy import NOTIFY_FALLBACK
from mltrl_operator.domain.reviews import TechnologyFacts

from .builders import LATER, LATER_TEXT, NOW, NOW_TEXT, with_policy


def alert(
    name: str = "ModelDrift",
    status: str = "firing",
    fingerprint: str = "fp1",
    starts_at: str = "2026-11-22T11:00:00Z",
    **labels: str,
) -> Alert:
    return Alert(fingerprint, name, {"alertname": name, **labels}, starts_at, status)


def rule(**fields: Any) -> MonitoringRule:
    return MonitoringRule.model_validate(fields)


TECH_RULES = [
    rule(alertName="ModelDrift", matchers={"severity": "critical"}, action="demote", toLevel=7),
    rule(alertName="ModelDrift", action="retrain"),
    rule(matchers={"team": "fraud"}, action="rollback"),
]
POLICY = with_policy(
    default_alert_rules=(rule(alertName="HighLatency", action="rollback"), NOTIFY_FALLBACK)
)


@pytest.mark.parametrize(
    ("incoming", "chosen"),
    [
        (alert(severity="critical"), TECH_RULES[0]),
        (alert(severity="warning"), TECH_RULES[1]),
        (alert("Other", team="fraud"), TECH_RULES[2]),
        (alert("HighLatency"), POLICY.default_alert_rules[0]),
        (alert("Other"), NOTIFY_FALLBACK),
    ],
    ids=[
        "the first technology rule whose name and matchers fit",
        "a matcher that differs moves on to the next rule",
        "a rule without a name matches any alert with its labels",
        "the policy's rules come after the technology's",
        "anything else is only reported",
    ],
)
def test_choose_rule(incoming: Alert, chosen: MonitoringRule) -> None:
    assert choose_rule(incoming, TECH_RULES, POLICY) == chosen


def test_the_notify_fallback_applies_even_if_a_policy_forgot_it() -> None:
    bare = with_policy(default_alert_rules=())
    assert choose_rule(alert(), [], bare) == MonitoringRule(action=AlertAction.NOTIFY)


def incident(fingerprint: str = "fp1", state: str = "Pending", **fields: Any) -> Incident:
    return Incident.model_validate(
        {
            "fingerprint": fingerprint,
            "alertName": "ModelDrift",
            "labels": {"alertname": "ModelDrift"},
            "startsAt": "2026-11-22T11:00:00Z",
            "action": "demote",
            "toLevel": 4,
            "state": state,
            "message": "received; demote to level 4 pending",
            "receivedAt": NOW_TEXT,
            **fields,
        }
    )


@pytest.mark.parametrize(
    ("chosen", "to_level", "message"),
    [
        (rule(action="demote"), 4, "received; demote to level 4 pending"),
        (rule(action="demote", toLevel=7), 7, "received; demote to level 7 pending"),
        (rule(action="rollback"), None, "received; rollback pending"),
        (rule(action="notify"), None, "received; notify pending"),
    ],
    ids=[
        "demote goes to level 4 by default, the paper's 9 -> 4",
        "demote to the rule's level",
        "rollback has no level",
        "notify is recorded too",
    ],
)
def test_a_firing_alert_becomes_a_pending_incident(
    chosen: MonitoringRule, to_level: int | None, message: str
) -> None:
    result, changed = record_incident([], alert(), chosen, NOW, limit=5)
    assert changed
    assert [i.to_wire() for i in result] == [
        {
            "fingerprint": "fp1",
            "alertName": "ModelDrift",
            "labels": {"alertname": "ModelDrift"},
            "startsAt": "2026-11-22T11:00:00Z",
            "action": str(chosen.action),
            **({"toLevel": to_level} if to_level is not None else {}),
            "state": "Pending",
            "message": message,
            "receivedAt": NOW_TEXT,
        }
    ]


@pytest.mark.parametrize(
    "existing",
    [incident(), incident(state="Acted"), incident(state="Resolved")],
    ids=["while pending", "after it was acted on", "after it resolved"],
)
def test_a_resent_firing_alert_changes_nothing(existing: Incident) -> None:
    result, changed = record_incident([existing], alert(), rule(action="demote"), LATER, 5)
    assert (result, changed) == ([existing], False)


def test_the_same_alert_firing_again_later_is_a_new_incident() -> None:
    again = alert(starts_at="2026-11-22T13:00:00Z")
    result, changed = record_incident(
        [incident(state="Acted")], again, rule(action="demote"), LATER, 5
    )
    assert changed
    assert [(i.starts_at, i.state) for i in result] == [
        ("2026-11-22T11:00:00Z", "Acted"),
        ("2026-11-22T13:00:00Z", "Pending"),
    ]


@pytest.mark.parametrize(
    ("existing", "state", "message"),
    [
        (incident(state="Acted", message="demoted 9 -> 4"), "Resolved", "demoted 9 -> 4"),
        (incident(state="Failed", message="no job template"), "Resolved", "no job template"),
        (incident(), "Resolved", "resolved before it was acted on"),
    ],
    ids=[
        "an acted incident keeps what was done",
        "a failed incident keeps why",
        "a pending incident is no longer acted on",
    ],
)
def test_a_resolved_alert_marks_its_incident_resolved(
    existing: Incident, state: str, message: str
) -> None:
    result, changed = record_incident(
        [existing], alert(status="resolved"), NOTIFY_FALLBACK, LATER, 5
    )
    assert changed
    assert (result[0].state, result[0].message, result[0].resolved_at) == (
        state,
        message,
        LATER_TEXT,
    )
    assert (result[0].action, result[0].to_level) == (existing.action, existing.to_level)


@pytest.mark.parametrize(
    ("existing", "incoming"),
    [
        ([], alert(status="resolved")),
        ([incident(state="Resolved", resolvedAt=NOW_TEXT)], alert(status="resolved")),
        ([incident()], alert(status="resolved", starts_at="2026-11-22T09:00:00Z")),
        ([incident()], alert(status="resolved", fingerprint="fp2")),
    ],
    ids=[
        "an unknown resolved alert",
        "a resolved alert sent again",
        "a resolved alert of an earlier firing",
        "a resolved alert of another fingerprint",
    ],
)
def test_resolved_alerts_that_change_nothing(existing: list[Incident], incoming: Alert) -> None:
    result, changed = record_incident(existing, incoming, NOTIFY_FALLBACK, LATER, 5)
    assert (result, changed) == (existing, False)


def test_an_alert_status_other_than_firing_or_resolved_is_refused() -> None:
    with pytest.raises(ValueError, match="alert status must be firing or resolved, not 'pending'"):
        record_incident([], alert(status="pending"), NOTIFY_FALLBACK, NOW, 5)


@pytest.mark.parametrize(
    ("states", "kept"),
    [
        (["Pending", "Acted", "Resolved"], ["fp0", "fp2", "new"]),
        (["Pending", "Pending", "Failed"], ["fp0", "fp1", "new"]),
    ],
    ids=[
        "the oldest settled incident is dropped, not an older pending one",
        "a settled incident goes even when it is the newest",
    ],
)
def test_incidents_beyond_the_limit(states: list[str], kept: list[str]) -> None:
    existing = [incident(f"fp{n}", state) for n, state in enumerate(states)]
    result, _ = record_incident(existing, alert(fingerprint="new"), NOTIFY_FALLBACK, NOW, 3)
    assert [i.fingerprint for i in result] == kept


def test_a_pending_incident_is_never_dropped_to_make_room() -> None:
    """A Pending incident is an action not yet taken: with every kept incident Pending, a
    new alert is deferred (the receiver answers 503, Alertmanager sends it again) and the
    book is unchanged, nothing remembered as settled."""
    book = AlertBook(tuple(incident(f"fp{n}", alert_name=f"A{n}") for n in range(3)),
                     SettledAlerts())
    new = alert("New", fingerprint="new")
    after, receipt = receive_alert(book, new, NOTIFY_FALLBACK, NOW, limit=3)
    assert (receipt.outcome, receipt.incident, after) == ("deferred", None, book)
    # Once the operator has settled one, the same alert sent again is taken.
    settled = AlertBook((book.incidents[0].model_copy(update={"state": "Acted"}),
                         *book.incidents[1:]), SettledAlerts())
    after, receipt = receive_alert(settled, new, NOTIFY_FALLBACK, NOW, limit=3)
    assert receipt.outcome == "recorded"
    assert [(i.fingerprint, i.state) for i in after.incidents] == [
        ("fp1", "Pending"), ("fp2", "Pending"), ("new", "Pending")]
    assert len(after.settled.keys) == 1  # fp0, remembered so a replay is a duplicate


def test_pending_incidents() -> None:
    incidents = [incident("a"), incident("b", "Acted"), incident("c"), incident("d", "Resolved")]
    assert [i.fingerprint for i in pending_incidents(incidents)] == ["a", "c"]


@pytest.mark.parametrize(
    ("incidents", "state", "job", "changed", "after"),
    [
        ([incident()], "Acted", None, True, ("Acted", "done", None)),
        ([incident(action="retrain")], "Acted", "retrain-1", True, ("Acted", "done", "retrain-1")),
        ([incident()], "Failed", None, True, ("Failed", "done", None)),
        (
            [incident(state="Resolved")],
            "Acted",
            None,
            False,
            ("Resolved", "received; demote to level 4 pending", None),
        ),
        (
            [incident(fingerprint="other")],
            "Acted",
            None,
            False,
            ("Pending", "received; demote to level 4 pending", None),
        ),
    ],
    ids=[
        "a pending incident is settled as acted",
        "a retrain records its job",
        "a pending incident is settled as failed",
        "a resolved incident is not settled again",
        "another incident is untouched",
    ],
)
def test_settle_incident(
    incidents: list[Incident],
    state: str,
    job: str | None,
    changed: bool,
    after: tuple[str, str, str | None],
) -> None:
    result, did = settle_incident(
        incidents, "fp1", "2026-11-22T11:00:00Z", state=state, message="done", job=job
    )
    assert did is changed
    assert (result[0].state, result[0].message, result[0].job) == after


def test_an_incident_is_settled_only_as_acted_or_failed() -> None:
    with pytest.raises(
        ValueError, match="an incident is settled as Acted or Failed, not 'Pending'"
    ):
        settle_incident([incident()], "fp1", "2026-11-22T11:00:00Z", state="Pending", message="")


def tech(level: int, entry: int = 3, visited: set[int] | None = None) -> TechnologyFacts:
    seen = frozenset(range(entry, level + 1) if visited is None else visited)
    return TechnologyFacts("fraud", "alice", level, entry, 9, seen, frozenset())


@pytest.mark.parametrize(
    ("technology", "to_level", "problem"),
    [
        (tech(9), 4, None),
        (tech(9), 3, None),
        (tech(4), 4, "the technology is at level 4, not above level 4; nothing to demote"),
        (tech(3), 4, "the technology is at level 3, not above level 4; nothing to demote"),
        (tech(9, entry=5), 4, "level 4 is below the technology's entry level 5"),
        (
            tech(9, visited={3, 7, 9}),
            4,
            "the technology never went through level 4 (Proof of Concept (PoC) Development)",
        ),
    ],
    ids=[
        "a deployed technology may go back to 4",
        "back to the entry level",
        "a technology already at the level",
        "a technology already below the level",
        "never below the entry level",
        "never to a level skipped on the way up",
    ],
)
def test_demotion_problem(technology: TechnologyFacts, to_level: int, problem: str | None) -> None:
    assert demotion_problem(technology, to_level) == problem


def _book(*incidents: Incident, **settled: Any) -> AlertBook:
    return AlertBook(tuple(incidents), SettledAlerts.model_validate(settled))


def test_alerts_of_one_alertname_within_the_window_are_one_incident() -> None:
    book, first = receive_alert(_book(), alert(), rule(action="rollback"), NOW)
    other_pod = alert(fingerprint="fp2", starts_at="2026-11-22T11:04:00Z")
    book, second = receive_alert(book, other_pod, rule(action="rollback"), NOW)
    assert (first.outcome, second.outcome) == ("recorded", "grouped")
    assert [i.fingerprint for i in book.incidents] == ["fp1"]
    assert second.incident == first.incident
    # Outside the window, or once the incident resolved, it is a new one.
    later = alert(fingerprint="fp3", starts_at="2026-11-22T11:30:00Z")
    _, third = receive_alert(book, later, rule(action="rollback"), NOW)
    assert third.outcome == "recorded"


def test_settled_alerts_are_bounded_and_move_the_horizon() -> None:
    book = _book()
    for n in range(4):
        book, _ = receive_alert(
            book, alert(f"A{n}", fingerprint=f"fp{n}", starts_at=f"2026-11-22T1{n}:00:00Z"),
            NOTIFY_FALLBACK, NOW, limit=1, settled_limit=2,
        )
        # The operator settles each before the next arrives (a Pending one is never dropped).
        book = AlertBook(tuple(i.model_copy(update={"state": "Acted"}) for i in book.incidents),
                         book.settled)
    # fp0..fp2 were dropped from the incidents; fp0 also from the record: the horizon.
    assert [i.fingerprint for i in book.incidents] == ["fp3"]
    assert len(book.settled.keys) == 2
    assert book.settled.horizon == "2026-11-22T10:00:00Z"
    replay = alert("A1", fingerprint="fp1", starts_at="2026-11-22T11:00:00Z")
    assert receive_alert(book, replay, NOTIFY_FALLBACK, NOW, limit=1)[1].outcome == "duplicate"
    ancient = alert("A0", fingerprint="fp0", starts_at="2026-11-22T10:00:00Z")
    after, receipt = receive_alert(book, ancient, NOTIFY_FALLBACK, NOW, limit=1)
    assert (receipt.outcome, after) == ("beyond-horizon", book)
