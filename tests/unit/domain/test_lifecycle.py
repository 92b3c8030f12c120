"""Material model changes and re-certification, decided from the policy, the facts, now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mltrl_operator.api.lifecycle import ModelChangeAction, ModelChangeRule, OnExpiry
from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.api.review import LevelReviewSpec
from mltrl_operator.api.technology import HISTORY_LIMIT, LevelTransition, ModelSpec
from mltrl_operator.domain.durations import format_duration, parse_duration, parse_instant
from mltrl_operator.domain.lifecycle import (
    REASON_CURRENT,
    REASON_EXPIRED,
    REASON_EXPIRING_SOON,
    CertificationState,
    LifecyclePolicy,
    ModelChangeOutcome,
    Recertification,
    certification,
    certified_at,
    lifecycle_policy,
    lifecycle_policy_errors,
    model_change_action,
    next_wakeup,
    plan_model_change,
)
from mltrl_operator.domain.policy import NamedPolicy
from mltrl_operator.domain.review_types import ModelRef, review_type_errors
from mltrl_operator.domain.transitions import append_history

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def named(name: str, **spec: Any) -> NamedPolicy:
    return NamedPolicy(name, MLTRLPolicySpec.model_validate(spec))


def rule(**fields: Any) -> dict[str, Any]:
    return fields


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("2160h", 2160 * 3600), ("90m", 5400), ("1h30m", 5400), ("1.5h", 5400), ("45s", 45),
])
def test_durations_are_read_as_kubernetes_writes_them(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["30d", "", "h", "1 h", "-1h", "PT1H"])
def test_a_bad_duration_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration such as 2160h"):
        parse_duration(text)


def test_durations_print_short_and_instants_need_a_zone() -> None:
    assert format_duration(timedelta(days=30)) == "720h"
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert parse_instant("2026-03-01T00:00:00Z") == T0
    assert parse_instant("2026-03-01T01:00:00+01:00") == T0
    with pytest.raises(ValueError, match="no time zone"):
        parse_instant("2026-03-01T00:00:00")
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        parse_instant("tomorrow")


# --- policy merge -----------------------------------------------------------------------------


def test_recertification_merges_strictest_per_level() -> None:
    merged = lifecycle_policy([
        named("a", requirements=[{"level": 7, "validFor": "2160h", "onExpiry": "stop"}]),
        named("b", requirements=[{"level": 7, "validFor": "720h", "warnBefore": "480h",
                                  "onExpiry": "warn"},
                                 {"level": 5}]),
    ])
    seven = merged.recertification[7]
    assert seven.valid_for == timedelta(days=30)
    assert seven.warn_before == timedelta(days=20)
    assert seven.on_expiry is OnExpiry.STOP
    assert seven.sources == ("a", "b")
    assert 5 not in merged.recertification
    alone = lifecycle_policy([named("c", requirements=[{"level": 3, "validFor": "24h"}])])
    assert alone.recertification[3].warn_before == timedelta(days=14)
    assert alone.recertification[3].on_expiry is OnExpiry.WARN


def test_policy_errors_name_the_field_and_the_rule() -> None:
    rules = [ModelChangeRule.model_validate(r) for r in (
        {"action": "review"},
        {"level": 7, "fromLevel": 5, "action": "allow"},
        {"level": 7, "action": "demote"},
        {"fromLevel": 8, "action": "demote", "toLevel": 8},
        {"level": 6, "action": "review", "toLevel": 4},
    )]
    errors = [str(e) for e in lifecycle_policy_errors(rules, [(0, "2160h", "0s"), (1, None, None)])]
    assert errors == [
        "spec.modelChange[0]: Invalid: give exactly one of level and fromLevel",
        "spec.modelChange[1]: Invalid: give exactly one of level and fromLevel",
        "spec.modelChange[2].toLevel: Required: a demote rule names the level to switch back to",
        "spec.modelChange[3].toLevel: Invalid: 8 is not below the level the rule is for (8)",
        "spec.modelChange[4].toLevel: Invalid: only a demote rule has one",
        "spec.requirements[0].warnBefore: Invalid: '0s' is not longer than zero",
    ]


def test_the_policy_webhook_sees_every_lifecycle_field() -> None:
    from mltrl_operator.domain.lifecycle import lifecycle_spec_errors

    spec = MLTRLPolicySpec.model_validate({
        "modelChange": [{"fromLevel": 7, "action": "demote"}],
        "requirements": [{"level": 7, "validFor": "0h"}],
        "waivers": {"maxDuration": "0s"},
    })
    assert [str(e) for e in lifecycle_spec_errors(spec)] == [
        "spec.modelChange[0].toLevel: Required: a demote rule names the level to switch back to",
        "spec.requirements[0].validFor: Invalid: '0h' is not longer than zero",
        "spec.waivers.maxDuration: Invalid: '0s' is not longer than zero",
    ]
    assert lifecycle_spec_errors(MLTRLPolicySpec()) == []


# --- model changes ----------------------------------------------------------------------------


def policy_with(*rules: dict[str, Any]) -> LifecyclePolicy:
    return lifecycle_policy([named("prod", modelChange=list(rules))])


def test_without_rules_a_change_needs_review_from_the_serving_level() -> None:
    assert model_change_action(LifecyclePolicy(), 7, 7).action is ModelChangeAction.REVIEW
    assert model_change_action(LifecyclePolicy(), 9, 7).action is ModelChangeAction.REVIEW
    below = model_change_action(LifecyclePolicy(), 6, 7)
    assert below.action is ModelChangeAction.ALLOW and "built-in default" in below.why


def test_the_strictest_matching_rule_wins() -> None:
    policy = lifecycle_policy([
        named("a", modelChange=[rule(fromLevel=5, action="allow"),
                                rule(level=8, action="demote", toLevel=7)]),
        named("b", modelChange=[rule(fromLevel=7, action="review"),
                                rule(fromLevel=8, action="demote", toLevel=6)]),
    ])
    assert model_change_action(policy, 5, 7).action is ModelChangeAction.ALLOW
    seven = model_change_action(policy, 7, 7)
    assert (seven.action, seven.why) == (ModelChangeAction.REVIEW, "policy b")
    eight = model_change_action(policy, 8, 7)
    assert (eight.action, eight.to_level, eight.why) == (ModelChangeAction.DEMOTE, 6, "policy b")
    # A rule below the serving level replaces the default there too.
    assert model_change_action(policy, 6, 9).action is ModelChangeAction.ALLOW


def test_a_demote_target_is_always_below_the_current_level() -> None:
    policy = policy_with(rule(fromLevel=5, action="demote", toLevel=4))
    assert model_change_action(policy, 9, 7).to_level == 4
    clamped = lifecycle_policy([named("x", modelChange=[
        ModelChangeRule.model_construct(from_level=2, level=None, action=ModelChangeAction.DEMOTE,
                                        to_level=8).model_dump(by_alias=True)])])
    assert model_change_action(clamped, 5, 7).to_level == 4


def model(version: str) -> ModelSpec:
    return ModelSpec(version=version, storage_uri=f"s3://m/{version}", format="sklearn")


APPROVED = ModelRef("1.4.0", "s3://m/1.4.0")


def plan(version: str | None, *, level: int = 7, before: tuple[ModelRef, ...] = (),
         policy: LifecyclePolicy | None = None) -> Any:
    return plan_model_change(
        level=level, model=model(version) if version else None, approved=APPROVED,
        approved_before=before, policy=policy or LifecyclePolicy(), serving_minimum=7,
    )


def test_the_approved_model_is_no_change() -> None:
    unchanged = plan("1.4.0")
    assert (unchanged.outcome, unchanged.serve) == (ModelChangeOutcome.UNCHANGED, APPROVED)
    assert plan(None).outcome is ModelChangeOutcome.UNCHANGED


def test_a_new_model_at_the_serving_level_is_held_and_the_approved_one_keeps_serving() -> None:
    held = plan("1.5.0")
    assert held.outcome is ModelChangeOutcome.HOLD
    assert held.serve == APPROVED and held.pending == ModelRef("1.5.0", "s3://m/1.5.0")
    assert held.reason == (
        "model 1.5.0 waits for a change review of level 7 (the built-in default: a new model "
        "at or above the serving level (7) needs a change review); 1.4.0 keeps serving"
    )


def test_returning_to_a_model_approved_before_is_not_a_change() -> None:
    rollback = plan("1.3.0", before=(ModelRef("1.3.0", "s3://m/1.3.0"),))
    assert rollback.outcome is ModelChangeOutcome.ADOPT
    assert rollback.serve == ModelRef("1.3.0", "s3://m/1.3.0")
    # The same version from another place is another model.
    elsewhere = plan("1.3.0", before=(ModelRef("1.3.0", "s3://other/1.3.0"),))
    assert elsewhere.outcome is ModelChangeOutcome.HOLD


def test_allow_adopts_and_demote_switches_back() -> None:
    adopted = plan("1.5.0", policy=policy_with(rule(fromLevel=7, action="allow")))
    assert adopted.outcome is ModelChangeOutcome.ADOPT and adopted.serve == ModelRef(
        "1.5.0", "s3://m/1.5.0")
    demoted = plan("1.5.0", policy=policy_with(rule(fromLevel=7, action="demote", toLevel=5)))
    assert (demoted.outcome, demoted.to_level) == (ModelChangeOutcome.DEMOTE, 5)
    assert "switched back from level 7 to 5 (policy prod)" in demoted.reason


def review(**fields: Any) -> LevelReviewSpec:
    return LevelReviewSpec.model_validate({"technology": "fraud", "fromLevel": 7,
                                           "toLevel": 7, **fields})


PENDING = ModelRef("1.5.0", "s3://m/1.5.0")


def test_a_change_review_must_name_the_pending_model() -> None:
    assert review_type_errors(review(type="change", model={"version": "1.5.0"}), level=7,
                              pending=PENDING) == []
    assert [str(e) for e in review_type_errors(
        review(type="change", model={"version": "1.4.9"}), level=7, pending=PENDING)] == [
        "spec.model: Invalid: 1.4.9 is not the pending model (1.5.0)"]
    assert [str(e) for e in review_type_errors(review(type="change"), level=7,
                                               pending=PENDING)] == [
        "spec.model: Required: a change review names the model it approves (pending: 1.5.0)"]
    assert [str(e) for e in review_type_errors(
        review(type="change", model={"version": "1.5.0"}), level=7, pending=None)] == [
        "spec.type: Invalid: fraud has no model waiting for a change review"]


def test_change_and_recertify_reviews_keep_the_current_level() -> None:
    assert [str(e) for e in review_type_errors(review(type="recertify", toLevel=8), level=7,
                                               pending=None)] == [
        "spec.toLevel: Invalid: a re-certification keeps the level: fromLevel and toLevel must "
        "be equal (7 != 8)"]
    assert [str(e) for e in review_type_errors(
        review(type="recertify", fromLevel=6, toLevel=6), level=7, pending=None)] == [
        "spec.fromLevel: Invalid: a re-certification is of the current level 7, not 6"]
    assert review_type_errors(review(type="recertify"), level=7, pending=None) == []
    assert review_type_errors(review(toLevel=8), level=7, pending=None) == []


# --- re-certification -------------------------------------------------------------------------

RULE = Recertification(timedelta(days=90), timedelta(days=14), OnExpiry.STOP, ("prod",))


def test_a_level_holds_then_warns_then_lapses_at_the_instant() -> None:
    expires = T0 + timedelta(days=90)
    current = certification(7, T0, RULE, T0 + timedelta(days=1))
    assert (current.state, current.certified, current.reason) == (
        CertificationState.CURRENT, True, REASON_CURRENT)
    assert current.wake_at == expires - timedelta(days=14)
    warning = certification(7, T0, RULE, expires - timedelta(days=14))
    assert (warning.state, warning.reason, warning.wake_at) == (
        CertificationState.EXPIRING, REASON_EXPIRING_SOON, expires)
    assert certification(7, T0, RULE, expires - timedelta(seconds=1)).certified
    lapsed = certification(7, T0, RULE, expires)
    assert (lapsed.state, lapsed.certified, lapsed.reason) == (
        CertificationState.EXPIRED, False, REASON_EXPIRED)
    assert lapsed.on_expiry is OnExpiry.STOP and lapsed.wake_at is None
    assert lapsed.message == (
        "level 7 lapsed at 2026-05-30T00:00:00Z: last reviewed 2026-03-01T00:00:00Z, valid "
        "for 2160h (90 days) (policy prod); a recertify review renews it"
    )


def test_demote_on_expiry_goes_one_level_down_and_no_rule_never_lapses() -> None:
    demote = Recertification(timedelta(hours=1), timedelta(0), OnExpiry.DEMOTE)
    assert certification(7, T0, demote, T0 + timedelta(hours=1)).demote_to == 6
    forever = certification(7, T0, None, T0 + timedelta(days=10_000))
    assert forever.certified and forever.wake_at is None
    unknown = certification(7, None, RULE, T0)
    assert not unknown.certified and "no review on record" in unknown.message


def test_a_warning_longer_than_the_validity_starts_at_the_review() -> None:
    short = Recertification(timedelta(days=7), timedelta(days=14), OnExpiry.WARN)
    state = certification(3, T0, short, T0)
    assert state.state is CertificationState.EXPIRING and state.wake_at == T0 + timedelta(days=7)


@settings(max_examples=200, deadline=None)
@given(valid_hours=st.integers(1, 5000), warn_hours=st.integers(0, 6000),
       offset=st.integers(-10, 6_000 * 3600))
def test_lapsed_exactly_from_the_expiry_and_the_wakeup_is_the_next_change(
    valid_hours: int, warn_hours: int, offset: int
) -> None:
    rule = Recertification(timedelta(hours=valid_hours), timedelta(hours=warn_hours),
                           OnExpiry.WARN)
    now = T0 + timedelta(seconds=offset)
    state = certification(5, T0, rule, now)
    expires = T0 + timedelta(hours=valid_hours)
    assert state.certified is (now < expires)
    if state.wake_at is not None:
        assert state.wake_at > now
        assert certification(5, T0, rule, state.wake_at).state is not state.state
        before = state.wake_at - timedelta(seconds=1)
        if before >= now:
            assert certification(5, T0, rule, before).state is state.state
    else:
        assert state.state is CertificationState.EXPIRED


def transition(to: int, kind: str, at: str, **fields: Any) -> LevelTransition:
    return LevelTransition.model_validate({"to": to, "kind": kind, "at": at, **fields})


def test_the_last_review_of_the_current_level_is_the_certification() -> None:
    history = [
        transition(3, "entry", "2026-01-01T00:00:00Z"),
        transition(4, "promotion", "2026-02-01T00:00:00Z", **{"from": 3}),
        transition(3, "switchback", "2026-02-10T00:00:00Z", **{"from": 4}),
        transition(4, "promotion", "2026-03-01T00:00:00Z", **{"from": 3}),
    ]
    assert certified_at(history, 4) == T0
    # Coming down to 3 starts its period afresh: one lapse never cascades.
    assert certified_at(history, 3) == datetime(2026, 2, 10, tzinfo=UTC)
    lapsed = [*history, transition(4, "lapse", "2026-06-01T00:00:00Z", **{"from": 4})]
    assert certified_at(lapsed, 4) == T0
    renewed = [*lapsed, transition(4, "recertification", "2026-06-02T00:00:00Z",
                                   **{"from": 4})]
    assert certified_at(renewed, 4) == datetime(2026, 6, 2, tzinfo=UTC)
    only_switchback = [transition(2, "switchback", "2026-03-01T00:00:00Z", **{"from": 3})]
    assert certified_at(only_switchback, 2) == T0
    assert certified_at(history, 9) is None


def test_the_next_wakeup_is_the_earliest_instant_still_ahead() -> None:
    later, soon = T0 + timedelta(days=2), T0 + timedelta(hours=1)
    assert next_wakeup([later, None, soon, T0 - timedelta(1), T0], T0) == soon
    assert next_wakeup([None, T0], T0) is None


# --- one call for the plan ------------------------------------------------------------------


def lifecycle_at(now: datetime, **overrides: Any) -> Any:
    from mltrl_operator.api.waiver import MLTRLWaiverSpec
    from mltrl_operator.domain.lifecycle import WaiverFacts, decide_lifecycle
    from mltrl_operator.domain.timefmt import rfc3339
    from mltrl_operator.domain.waivers import waiver_policy

    policies = [named("prod", requirements=[{"level": 5, "validFor": "720h",
                                             "warnBefore": "168h", "onExpiry": "stop"}],
                      waivers={"approvers": [{"users": ["dana"]}]})]
    waiver = MLTRLWaiverSpec.model_validate({
        "technology": "fraud", "reason": "audit booked", "waives": {"servingMinimum": 5},
        "expiresAt": rfc3339(T0 + timedelta(days=10)),
        "approvals": [{"approver": "dana", "time": rfc3339(T0)}],
    })
    arguments: dict[str, Any] = {
        "technology": "fraud", "level": 5,
        "history": [transition(5, "promotion", rfc3339(T0), **{"from": 4})],
        "model": model("1.4.0"), "approved_model": APPROVED, "approved_before": (),
        "serving_minimum": 7, "policy": lifecycle_policy(policies),
        "waivers": [WaiverFacts("bias-audit", waiver, T0)],
        "waiver_policy": waiver_policy(policies), "owners": frozenset({"alice"}), "now": now,
    }
    arguments.update(overrides)
    return decide_lifecycle(**arguments)


def test_one_call_gives_the_plan_the_model_the_certificate_the_waivers_and_the_next_instant(
) -> None:
    early = lifecycle_at(T0 + timedelta(days=1))
    assert early.model.outcome is ModelChangeOutcome.UNCHANGED
    assert early.certification.reason == REASON_CURRENT
    assert (early.serving_minimum, early.serving_waiver) == (5, "bias-audit")
    assert [name for name, _ in early.applying_waivers] == ["bias-audit"]
    assert early.wake_at == T0 + timedelta(days=10)  # the waiver ends before the warning
    assert not early.serving_closed_by_lapse

    after_waiver = lifecycle_at(T0 + timedelta(days=10))
    assert (after_waiver.serving_minimum, after_waiver.serving_waiver) == (7, None)
    assert after_waiver.wake_at == T0 + timedelta(days=23)  # the warning, 7 days ahead

    lapsed = lifecycle_at(T0 + timedelta(days=30))
    assert lapsed.certification.reason == REASON_EXPIRED and lapsed.serving_closed_by_lapse
    assert lapsed.wake_at is None

    held = lifecycle_at(T0 + timedelta(days=1), model=model("1.5.0"), level=7,
                        history=[transition(7, "promotion", "2026-03-01T00:00:00Z")])
    assert held.model.outcome is ModelChangeOutcome.HOLD and held.model.serve == APPROVED


@settings(max_examples=100, deadline=None)
@given(offset=st.integers(0, 40 * 86400))
def test_nothing_changes_between_now_and_the_wakeup(offset: int) -> None:
    now = T0 + timedelta(seconds=offset)
    decision = lifecycle_at(now)
    if decision.wake_at is None:
        return
    just_before = lifecycle_at(decision.wake_at - timedelta(seconds=1))
    at_wakeup = lifecycle_at(decision.wake_at)
    summary = lambda d: (d.certification.reason, d.serving_minimum, d.serving_closed_by_lapse)  # noqa: E731
    if decision.wake_at - timedelta(seconds=1) >= now:
        assert summary(just_before) == summary(decision)
    assert summary(at_wakeup) != summary(decision)


def test_a_full_history_never_drops_the_review_that_certified_the_level() -> None:
    # status.history holds 50 entries; the oldest go first, but validFor counts from the
    # review that certified the level now held, so that one stays (the record keeps all).
    promoted = transition(4, "promotion", "2026-03-01T00:00:00Z", **{"from": 3})
    history = [transition(3, "entry", "2026-01-01T00:00:00Z"), promoted]
    lapses = [transition(4, "lapse", f"2026-04-{day:02d}T00:00:00Z", **{"from": 4})
              for day in range(1, 31)] + [
        transition(4, "lapse", f"2026-05-{day:02d}T00:00:00Z", **{"from": 4})
        for day in range(1, 31)]
    for lapse in lapses:
        history = append_history(history, lapse)
    assert len(history) == HISTORY_LIMIT
    assert history[0] == promoted and history[1:] == lapses[-(HISTORY_LIMIT - 1):]
    assert certified_at(history, 4) == T0
    # Once another review certifies the level, the old one may go like any other.
    renewed = transition(4, "recertification", "2026-06-01T00:00:00Z", **{"from": 4})
    history = append_history(append_history(history, renewed), lapses[0])
    assert promoted not in history and certified_at(history, 4) == datetime(
        2026, 6, 1, tzinfo=UTC)
