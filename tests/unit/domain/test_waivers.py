"""Waivers: one decision whether a waiver counts at `now`, what it takes off, and the
admission rules (length, expiry, technology, approvers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.api.waiver import MLTRLWaiverSpec
from mltrl_operator.domain.admission import Requester
from mltrl_operator.domain.owners import stored_owners
from mltrl_operator.domain.policy import NamedPolicy
from mltrl_operator.domain.timefmt import rfc3339
from mltrl_operator.domain.waiver_admission import stamp_waiver_approvals, waiver_errors
from mltrl_operator.domain.waivers import (
    DEFAULT_MAX_DURATION,
    EffectiveWaiverPolicy,
    waive_requirements,
    waived_serving_minimum,
    waiver_applies,
    waiver_policy,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
POLICY = waiver_policy([NamedPolicy("prod", MLTRLPolicySpec.model_validate({
    "waivers": {"maxDuration": "336h",
                "approvers": [{"users": ["dana"]}, {"groups": ["risk-office"]}]},
}))])


def waiver(expires: datetime = T0 + timedelta(days=7), **fields: Any) -> MLTRLWaiverSpec:
    body: dict[str, Any] = {
        "technology": "fraud", "reason": "the bias audit is booked", "ticket": "RISK-12",
        "expiresAt": rfc3339(expires), "waives": {"level": 7, "evidence": ["bias-audit"]},
        "approvals": [{"approver": "dana", "groups": [], "time": rfc3339(T0)}],
    }
    return MLTRLWaiverSpec.model_validate({**body, **fields})


def applies(spec: MLTRLWaiverSpec, now: datetime, **kwargs: Any) -> Any:
    return waiver_applies(spec, technology=kwargs.pop("technology", "fraud"), created_at=T0,
                          policy=kwargs.pop("policy", POLICY), now=now, **kwargs)


# --- the policy ---------------------------------------------------------------------------


def test_the_shortest_max_duration_wins_and_every_policy_must_name_the_approver() -> None:
    merged = waiver_policy([
        NamedPolicy("a", MLTRLPolicySpec.model_validate(
            {"waivers": {"maxDuration": "720h", "approvers": [{"users": ["dana", "erin"]}]}})),
        NamedPolicy("b", MLTRLPolicySpec.model_validate(
            {"waivers": {"maxDuration": "168h", "approvers": [{"groups": ["risk"]}]}})),
        NamedPolicy("c", MLTRLPolicySpec.model_validate({})),  # no say
    ])
    assert merged.max_duration == timedelta(days=7)
    assert merged.may_approve("dana", ["risk"])
    assert not merged.may_approve("dana", [])
    assert not merged.may_approve("frank", ["risk"])
    assert waiver_policy([]).max_duration == DEFAULT_MAX_DURATION
    assert not waiver_policy([]).may_approve("anyone", ["system:masters"])


# --- does it apply ------------------------------------------------------------------------


def test_an_approved_waiver_counts_until_its_expiry_and_says_when_to_look_again() -> None:
    decision = applies(waiver(), T0 + timedelta(hours=1))
    assert decision.applies and decision.approved_by == ("dana",)
    assert decision.wake_at == T0 + timedelta(days=7)
    assert decision.reason == "approved by dana; counts until 2026-03-08T00:00:00Z"


def test_at_the_expiry_instant_it_stops_counting() -> None:
    expires = T0 + timedelta(days=7)
    assert applies(waiver(), expires - timedelta(seconds=1)).applies
    expired = applies(waiver(), expires)
    assert not expired.applies and expired.reason == "expired at 2026-03-08T00:00:00Z"
    assert expired.wake_at is None


@settings(max_examples=300, deadline=None)
@given(length=st.integers(1, 14 * 86400), offset=st.integers(-3600, 20 * 86400))
def test_it_applies_exactly_between_approval_and_expiry(length: int, offset: int) -> None:
    expires = T0 + timedelta(seconds=length)
    now = T0 + timedelta(seconds=offset)
    decision = applies(waiver(expires), now)
    assert decision.applies is (T0 <= now < expires)
    if decision.applies:
        assert decision.wake_at == expires > now


@settings(max_examples=100, deadline=None)
@given(extra=st.integers(1, 10 * 86400))
def test_a_waiver_longer_than_the_policy_allows_never_counts(extra: int) -> None:
    expires = T0 + timedelta(days=14, seconds=extra)
    for now in (T0, T0 + timedelta(days=1), expires - timedelta(seconds=1)):
        decision = applies(waiver(expires), now)
        assert not decision.applies and "longer than waivers.maxDuration 336h" in decision.reason


def test_approvals_that_do_not_count() -> None:
    later = T0 + timedelta(hours=1)
    unnamed = waiver(approvals=[{"approver": "mallory", "time": rfc3339(T0)}])
    assert applies(unnamed, later).reason == (
        "not approved by anyone policy prod names in waivers.approvers")
    by_group = waiver(approvals=[{"approver": "gus", "groups": ["risk-office"],
                                  "time": rfc3339(T0)}])
    assert applies(by_group, later).applies
    unstamped = waiver(approvals=[{"approver": "dana"}])
    assert not applies(unstamped, later).applies
    future = waiver(approvals=[{"approver": "dana", "time": rfc3339(later)}])
    assert not applies(future, T0).applies and applies(future, later).applies
    owner = applies(waiver(), later, owners=frozenset({"dana"}))
    assert not owner.applies and "owners of the technology may not approve" in owner.reason
    nobody = applies(waiver(), later, policy=EffectiveWaiverPolicy())
    assert nobody.reason == "not approved by anyone: no matching policy names waiver approvers"


def test_a_waiver_for_another_technology_or_with_a_bad_expiry_does_not_apply() -> None:
    assert applies(waiver(), T0, technology="other").reason == "it is for fraud, not other"
    bad = waiver(expiresAt="next week")
    assert not applies(bad, T0).applies and "spec.expiresAt" in applies(bad, T0).reason


# --- what it takes off --------------------------------------------------------------------


def test_waivers_take_off_evidence_roles_and_approvals_of_their_level_only() -> None:
    spec = waiver(waives={"level": 7, "evidence": ["bias-audit", "absent"], "roles": ["ethics"],
                          "minApprovals": 1})
    other_level = waiver(waives={"level": 6, "evidence": ["load-test"]})
    result = waive_requirements(
        level=7, evidence=["unit-tests", "bias-audit", "load-test"], min_approvals=2,
        required_roles=["qa", "ethics"], waivers=[("w1", spec), ("w2", other_level)],
    )
    assert result.evidence == ("unit-tests", "load-test")
    assert result.required_roles == frozenset({"qa"})
    assert result.min_approvals == 1
    assert result.used == {"w1": ("evidence bias-audit", "role ethics", "approvals 2 -> 1")}
    never_raises = waive_requirements(level=7, evidence=[], min_approvals=1, required_roles=[],
                                      waivers=[("w", waiver(waives={"level": 7,
                                                                    "minApprovals": 3}))])
    assert never_raises.min_approvals == 1 and never_raises.used == {}


def test_the_lowest_serving_minimum_granted_wins() -> None:
    low = waiver(waives={"servingMinimum": 5})
    lower = waiver(waives={"servingMinimum": 4})
    assert waived_serving_minimum(7, [("a", low), ("b", lower)]) == (4, "b")
    assert waived_serving_minimum(7, []) == (7, None)
    assert waived_serving_minimum(3, [("a", low)]) == (3, None)


# --- admission ----------------------------------------------------------------------------

DANA = Requester("dana", frozenset({"system:authenticated"}))
MALLORY = Requester("mallory", frozenset({"system:authenticated"}))


def raw(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "technology": "fraud", "reason": "audit booked",
        "expiresAt": rfc3339(T0 + timedelta(days=7)), "waives": {"servingMinimum": 5},
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def errors(body: dict[str, Any], old: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
    spec = MLTRLWaiverSpec.model_validate({"expiresAt": "", **body})
    return [str(e) for e in waiver_errors(
        spec, body, old, requester=kwargs.pop("requester", MALLORY),
        technology_exists=kwargs.pop("exists", True), policy=POLICY,
        created_at=kwargs.pop("created_at", T0), now=kwargs.pop("now", T0), **kwargs)]


def test_a_good_waiver_is_admitted() -> None:
    assert errors(raw()) == []


def test_refusals_name_the_field_and_the_rule() -> None:
    assert errors(raw(expiresAt=None)) == ["spec.expiresAt: Required: a waiver must expire"]
    assert errors(raw(expiresAt=rfc3339(T0 + timedelta(days=15)))) == [
        "spec.expiresAt: Invalid: 2026-03-16T00:00:00Z is 360h after the waiver's creation, "
        "more than waivers.maxDuration 336h (policy prod)"]
    assert errors(raw(expiresAt="soon")) == [
        "spec.expiresAt: Invalid: 'soon' is not an RFC 3339 time such as 2026-06-01T00:00:00Z"]
    assert errors(raw(expiresAt=rfc3339(T0))) == [
        "spec.expiresAt: Invalid: 2026-03-01T00:00:00Z has passed"]
    assert errors(raw(), exists=False) == [
        "spec.technology: Not found: no MLTechnology fraud in this namespace"]
    assert errors(raw(waives={})) == [
        "spec.waives: Required: name what is waived (evidence, roles, minApprovals or "
        "servingMinimum)"]
    assert errors(raw(waives={"evidence": ["x"]})) == [
        "spec.waives.level: Required: evidence, roles and minApprovals are waived for one level"]


def test_only_named_people_approve_and_only_in_their_own_name() -> None:
    own = [{"approver": "mallory", "groups": [], "time": rfc3339(T0)}]
    assert errors(raw(approvals=own)) == [
        "spec.approvals[0].approver: Forbidden: mallory is not named in waivers.approvers "
        "(policy prod)"]
    forged = [{"approver": "dana", "groups": [], "time": rfc3339(T0)}]
    assert errors(raw(approvals=forged)) == [
        "spec.approvals[0].approver: Forbidden: mallory may not approve in dana's name"]
    assert errors(raw(approvals=forged), requester=DANA) == []
    inflated = [{"approver": "mallory", "groups": ["risk-office"], "time": rfc3339(T0)}]
    assert errors(raw(approvals=inflated)) == [
        "spec.approvals[0].groups: Forbidden: an approval carries only its approver's own "
        "groups (the webhook stamps them)"]
    # An approval already stored is not re-judged when someone else edits the waiver.
    stored = raw(approvals=forged)
    assert errors(raw(approvals=forged, ticket="RISK-13"), old=stored) == []


def test_what_was_approved_cannot_change_under_the_approval() -> None:
    approved = raw(approvals=[{"approver": "dana", "groups": [], "time": rfc3339(T0)}])
    longer = dict(approved, expiresAt=rfc3339(T0 + timedelta(days=10)))
    assert errors(longer, old=approved, requester=DANA) == [
        "spec.expiresAt: Forbidden: fixed once the waiver is approved; remove the approvals "
        "first, or create another waiver"]


def test_new_approvals_are_stamped_with_the_requester() -> None:
    old = raw(approvals=[{"approver": "dana", "groups": [], "time": "2026-02-01T00:00:00Z"}])
    new = raw(approvals=[old["approvals"][0], {"comment": "ok"},
                         {"approver": "erin", "comment": "forged"}])
    patch = stamp_waiver_approvals(old, new, MALLORY, now="2026-03-01T00:00:00Z")
    assert patch == [{"op": "replace", "path": "/spec/approvals/1", "value": {
        "comment": "ok", "approver": "mallory", "groups": ["system:authenticated"],
        "time": "2026-03-01T00:00:00Z"}}]


def test_the_status_says_whether_it_applies_and_keeps_its_transition_time() -> None:
    from mltrl_operator.api.waiver import MLTRLWaiverStatus
    from mltrl_operator.domain.waivers import REASON_APPLIES, REASON_EXPIRED, waiver_status

    active = waiver_status(MLTRLWaiverStatus(), applies(waiver(), T0), generation=1, now=T0)
    (condition,) = active.conditions
    assert active.active and (condition.type, condition.status, condition.reason) == (
        "Active", "True", REASON_APPLIES)
    later = T0 + timedelta(days=1)
    again = waiver_status(active, applies(waiver(), later), generation=1, now=later)
    assert again.conditions[0].last_transition_time == "2026-03-01T00:00:00Z"
    expiry = T0 + timedelta(days=7)
    expired = waiver_status(again, applies(waiver(), expiry), generation=1, now=expiry)
    assert not expired.active and expired.message == "expired at 2026-03-08T00:00:00Z"
    assert (expired.conditions[0].reason, expired.conditions[0].last_transition_time) == (
        REASON_EXPIRED, "2026-03-08T00:00:00Z")


def test_a_former_owner_may_not_approve_a_waiver_either() -> None:
    """Issue 11 in issue 15's decision: dana owned fraud since its level was reached and
    renamed the owner to erin; her approval of a waiver for it counts no more than her
    approval of its review would."""
    technology = {
        "spec": {"owner": "erin", "entryLevel": 3},
        "status": {
            "level": 7,
            "history": [{"from": 6, "to": 7, "kind": "promotion", "at": "2026-02-01T00:00:00Z",
                         "reason": "promoted by review fraud-to-7"}],
            "owners": [
                {"name": "dana", "since": "2026-01-01T00:00:00Z",
                 "until": "2026-02-15T00:00:00Z"},
                {"name": "erin", "since": "2026-02-15T00:00:00Z"},
            ],
        },
    }
    owners = stored_owners(technology)
    assert owners == {"dana", "erin"}
    decision = applies(waiver(), T0 + timedelta(hours=1), owners=owners)
    assert not decision.applies and "owners of the technology may not approve" in decision.reason
