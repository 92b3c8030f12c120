"""Material change and re-certification inside the reconcile's plan: what is stored, what
serves, and that planning again from what was stored decides the same."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mltrl_operator.api.common import ConditionStatus
from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.api.review import LevelReviewSpec, ReviewedModel, ReviewPhase, ReviewType
from mltrl_operator.api.technology import Incident, MLTechnologyStatus, ModelSpec
from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.claims import claimed_models
from mltrl_operator.domain.conditions import get_condition
from mltrl_operator.domain.gating import stored_technology_gate
from mltrl_operator.domain.lifecycle import LifecyclePolicy, lifecycle_policy
from mltrl_operator.domain.plan import ApprovedReview, Plan, PlanInputs, plan_technology
from mltrl_operator.domain.policy import NamedPolicy
from mltrl_operator.domain.review_types import ModelRef
from mltrl_operator.domain.reviews import ReviewEvaluation, TechnologyFacts, evaluate_review
from mltrl_operator.domain.timefmt import rfc3339

from .builders import NOW, approve, check, review, stamped, tech_spec, with_policy

POLICY = with_policy(minimum_serving_level=5, entry_max_level=9)
APPROVED = ReviewEvaluation(ReviewPhase.APPROVED, (), ("bob",), "ok", (), False)
UID = "uid-fraud"


def model(version: str) -> dict[str, str]:
    return {"version": version, "storageUri": f"s3://m/{version}", "format": "sklearn"}


def lifecycle(**spec: Any) -> LifecyclePolicy:
    return lifecycle_policy([NamedPolicy("p", MLTRLPolicySpec.model_validate(spec))])


def plan(
    status: MLTechnologyStatus, isvc: dict[str, Any] | None = None, *,
    approved: ApprovedReview | None = None, rules: LifecyclePolicy | None = None,
    now: datetime = NOW, **spec: Any,
) -> Plan:
    body = {
        "metadata": {"name": "fraud", "namespace": "payments", "uid": UID, "generation": 1,
                     "resourceVersion": "10"},
        "spec": tech_spec(**spec).to_wire(),
        "status": status.to_wire(),
    }
    return plan_technology(PlanInputs(
        technology=body, spec=tech_spec(**spec), status=status, components=[],
        validation_errors=[], policy=POLICY, inference_service=isvc, now=now, review=approved,
        lifecycle=rules or LifecyclePolicy(),
    ))


def served(after: Plan) -> dict[str, Any]:
    assert after.serving is not None and after.serving.after is not None
    body = dict(after.serving.after)
    generation = body["metadata"].get("generation", 1)
    body["metadata"] = {**body["metadata"], "resourceVersion": "20", "generation": generation}
    body["status"] = {"observedGeneration": generation,
                      "conditions": [{"type": "Ready", "status": "True"}]}
    return body


def storage_uri(isvc: dict[str, Any]) -> str:
    return str(isvc["spec"]["predictor"]["model"]["storageUri"])


def condition(status: MLTechnologyStatus, type_: str) -> tuple[bool, str, str, str | None]:
    found = get_condition(status.conditions, type_)
    assert found is not None
    return (found.status is ConditionStatus.TRUE, found.reason, found.message,
            found.last_transition_time)


def serving_7(version: str = "1.4.0", rules: LifecyclePolicy | None = None,
              ) -> tuple[MLTechnologyStatus, dict[str, Any]]:
    """A technology that entered at 3 and was promoted to 7 with `version`, serving it."""
    entered = plan(MLTechnologyStatus(), entryLevel=3, model=model(version), rules=rules)
    promoted = ApprovedReview("fraud-to-7", review(3, 7), APPROVED)
    first = plan(entered.status, approved=promoted, entryLevel=3, model=model(version),
                 rules=rules)
    assert first.serving is not None and first.serving.verb == "create"
    isvc = served(first)
    settled = plan(first.status, isvc, entryLevel=3, model=model(version), rules=rules)
    assert settled.serving is None
    return settled.status, isvc


def change_review(version: str, level: int = 7) -> ApprovedReview:
    spec = review(level, level).model_copy(update={
        "type": ReviewType.CHANGE,
        "model": ReviewedModel(version=version, storage_uri=f"s3://m/{version}")})
    return ApprovedReview(f"fraud-change-{version}", spec, APPROVED)


def test_the_model_a_technology_entered_with_is_approved() -> None:
    entered = plan(MLTechnologyStatus(), entryLevel=7, model=model("1.4.0"))
    assert entered.status.approved_model is not None
    assert entered.status.approved_model.how == "entered at level 7 with it"
    assert entered.serving is not None and entered.serving.verb == "create"


def test_a_promotion_approves_the_model_it_was_given_on() -> None:
    status, _ = serving_7()
    assert status.approved_model is not None and status.approved_model.version == "1.4.0"

    assert status.pending_model is None
    assert condition(status, ct.MODEL_APPROVED)[:2] == (True, ct.MODEL_REVIEWED)
    assert condition(status, ct.CERTIFIED)[:2] == (True, ct.NO_EXPIRY)


def test_a_new_model_waits_for_its_change_review_and_the_approved_one_keeps_serving() -> None:
    status, isvc = serving_7()
    held = plan(status, isvc, entryLevel=3, model=model("1.5.0"))
    assert held.serving is None  # the InferenceService keeps serving s3://m/1.4.0
    assert held.status.pending_model is not None
    assert held.status.pending_model.version == "1.5.0"
    assert "1.4.0 keeps serving" in held.status.pending_model.reason
    assert condition(held.status, ct.MODEL_APPROVED)[:2] == (False, ct.PENDING_CHANGE_REVIEW)
    assert [e.reason for e in held.events] == [ct.MODEL_CHANGE_HELD]
    again = plan(held.status, isvc, entryLevel=3, model=model("1.5.0"))
    assert again.status == held.status and again.serving is None
    assert again.events == ()  # announced once, when first held
    # The change review is applied: 1.5.0 is approved and rolled out, 1.4.0 is remembered.
    applied = plan(held.status, isvc, approved=change_review("1.5.0"), entryLevel=3,
                   model=model("1.5.0"))
    assert applied.review_applied and applied.status.level == 7
    assert applied.status.history[-1].kind == "change"
    assert applied.status.pending_model is None
    assert applied.status.approved_model is not None
    assert applied.status.approved_model.version == "1.5.0"
    assert [m.version for m in applied.status.approved_models] == ["1.4.0"]
    assert applied.serving is not None and applied.serving.verb == "patch"
    assert applied.serving.after is not None
    assert storage_uri(applied.serving.after) == "s3://m/1.5.0"
    # One event per transition: ModelChangeApproved tells the roll-out; no Promoted.
    assert applied.serving.event is None
    [told] = [e for e in applied.events if e.reason == ct.MODEL_CHANGE_APPROVED]
    assert told.message.endswith("; InferenceService fraud now serves model 1.5.0")
    assert not [e for e in applied.events if e.reason in ("Promoted", "SwitchedBack")]


def test_returning_to_a_model_approved_before_is_not_a_change() -> None:
    status, isvc = serving_7()
    held = plan(status, isvc, entryLevel=3, model=model("1.5.0"))
    applied = plan(held.status, isvc, approved=change_review("1.5.0"), entryLevel=3,
                   model=model("1.5.0"))
    back = plan(applied.status, served(applied), entryLevel=3, model=model("1.4.0"))
    assert back.status.pending_model is None
    assert back.serving is not None and back.serving.after is not None
    assert storage_uri(back.serving.after) == "s3://m/1.4.0"


def test_the_same_version_from_another_storage_uri_is_a_new_model() -> None:
    status, isvc = serving_7()
    swapped = {**model("1.4.0"), "storageUri": "s3://elsewhere/1.4.0"}
    held = plan(status, isvc, entryLevel=3, model=swapped)
    assert held.status.pending_model is not None and held.serving is None


def test_below_the_serving_level_a_new_model_inherits_the_level() -> None:
    first = plan(MLTechnologyStatus(), entryLevel=3, model=model("1.0"))
    changed = plan(first.status, entryLevel=3, model=model("1.1"))
    assert changed.status.pending_model is None
    assert changed.status.approved_model is not None
    assert changed.status.approved_model.version == "1.1"


def test_a_demote_rule_makes_the_change_an_embedded_switchback() -> None:
    rules = lifecycle(modelChange=[{"fromLevel": 5, "action": "demote", "toLevel": 4}])
    status, isvc = serving_7(rules=rules)
    demoted = plan(status, isvc, entryLevel=3, model=model("1.5.0"), rules=rules)
    assert demoted.status.level == 4
    last = demoted.status.history[-1]
    assert (last.kind, last.switchback_type, last.from_level, last.to) == (
        "switchback", "embedded", 7, 4)
    assert "material change" in last.reason
    assert demoted.status.approved_model is not None
    assert demoted.status.approved_model.version == "1.5.0"
    assert demoted.status.pending_model is None
    assert demoted.serving is not None and demoted.serving.verb == "patch"  # stopped
    # One event per transition: ModelChangeDemoted tells the stop.
    assert demoted.serving.event is None
    [told] = [e for e in demoted.events if e.reason == ct.MODEL_CHANGE_DEMOTED]
    assert "; stopped InferenceService fraud: " in told.message
    again = plan(demoted.status, demoted.serving.after, entryLevel=3, model=model("1.5.0"),
                 rules=rules)
    assert again.status.level == 4 and again.status.history == demoted.status.history


RECERTIFY = {"requirements": [{"level": 7, "validFor": "720h", "warnBefore": "48h",
                               "onExpiry": "stop"}]}


def test_a_level_lapses_at_its_instant_and_a_recertify_review_renews_it() -> None:
    rules = lifecycle(**RECERTIFY)
    status, isvc = serving_7(rules=rules)
    lapse = NOW + timedelta(hours=720)
    first = plan(status, isvc, entryLevel=3, model=model("1.4.0"), rules=rules)
    assert first.wake_at == lapse - timedelta(hours=48)
    warned = plan(status, isvc, entryLevel=3, model=model("1.4.0"), rules=rules,
                  now=lapse - timedelta(hours=1))
    assert condition(warned.status, ct.CERTIFIED)[:2] == (True, ct.EXPIRING_SOON)
    assert [e.reason for e in warned.events] == [ct.CERTIFICATION_EXPIRING]
    assert warned.wake_at == lapse and warned.serving is None
    # The timer is late by a few seconds: the record still says the lapse instant.
    lapsed = plan(warned.status, isvc, entryLevel=3, model=model("1.4.0"), rules=rules,
                  now=lapse + timedelta(seconds=3))
    assert condition(lapsed.status, ct.CERTIFIED) == (
        False, ct.EXPIRED, condition(lapsed.status, ct.CERTIFIED)[2], rfc3339(lapse))
    assert lapsed.status.history[-1].kind == "lapse"
    assert lapsed.status.history[-1].at == rfc3339(lapse)
    assert lapsed.status.level == 7
    assert condition(lapsed.status, ct.SERVING_ALLOWED)[:2] == (False, ct.CERTIFICATION_LAPSED)
    # One event per transition: CertificationExpired tells the stop.
    assert lapsed.serving is not None and lapsed.serving.event is None
    [expired] = [e for e in lapsed.events if e.reason == ct.CERTIFICATION_EXPIRED]
    assert "; stopped InferenceService fraud: " in expired.message
    stopped = lapsed.serving.after
    again = plan(lapsed.status, stopped, entryLevel=3, model=model("1.4.0"), rules=rules,
                 now=lapse + timedelta(seconds=9))
    assert again.status.history == lapsed.status.history and again.serving is None
    renew = ApprovedReview("fraud-recertify-7", review(7, 7).model_copy(
        update={"type": ReviewType.RECERTIFY}), APPROVED)
    renewed = plan(again.status, stopped, approved=renew, entryLevel=3, model=model("1.4.0"),
                   rules=rules, now=lapse + timedelta(hours=1))
    assert renewed.status.history[-1].kind == "recertification"
    assert condition(renewed.status, ct.CERTIFIED)[:2] == (True, ct.CURRENT)
    # One event per transition: Recertified tells the serving it resumed.
    assert renewed.serving is not None and renewed.serving.event is None
    [told] = [e for e in renewed.events if e.reason == ct.RECERTIFIED]
    assert told.message == ("level 7 re-certified by review fraud-recertify-7; "
                            "resumed InferenceService fraud")
    assert renewed.wake_at == lapse + timedelta(hours=1 + 720 - 48)


def test_on_expiry_demote_switches_back_one_level_and_does_not_cascade() -> None:
    rules = lifecycle(requirements=[
        {"level": 7, "validFor": "24h", "onExpiry": "demote"},
        {"level": 6, "validFor": "24h", "onExpiry": "demote"},
    ])
    status, isvc = serving_7(rules=rules)
    # The lower level's period starts at the lapse: it does not lapse with it.
    lapsed = plan(status, isvc, entryLevel=3, model=model("1.4.0"), rules=rules,
                  now=NOW + timedelta(hours=25))
    assert lapsed.status.level == 6
    last = lapsed.status.history[-1]
    assert (last.kind, last.from_level, last.to) == ("lapse", 7, 6)
    # Certified again (warned at once: the default warnBefore is longer than 24h).
    assert condition(lapsed.status, ct.CERTIFIED)[:2] == (True, ct.EXPIRING_SOON)


def test_while_a_model_is_held_only_the_approved_one_may_serve_for_the_technology() -> None:
    status, isvc = serving_7()
    held = plan(status, isvc, entryLevel=3, model=model("1.5.0"))
    stored = {"spec": tech_spec(entryLevel=3, model=model("1.5.0")).to_wire(),
              "status": held.status.to_wire()}
    approved, _ = claimed_models(stored)
    assert approved is not None and approved.storage_uri == "s3://m/1.4.0"


def test_a_lapse_that_stops_serving_closes_the_stored_gate_too() -> None:
    rules = lifecycle(**RECERTIFY)
    status, isvc = serving_7(rules=rules)
    lapsed = plan(status, isvc, entryLevel=3, model=model("1.4.0"), rules=rules,
                  now=NOW + timedelta(days=31))
    stored = {"spec": tech_spec(entryLevel=3, model=model("1.4.0")).to_wire(),
              "status": lapsed.status.to_wire()}
    gate = stored_technology_gate("fraud", stored, POLICY)
    assert gate is not None and not gate.allowed and gate.reason == ct.CERTIFICATION_LAPSED


def _facts(pending: str | None, spec_model: str) -> TechnologyFacts:
    return TechnologyFacts(
        name="fraud", owner="alice", level=7, entry_level=3, target_level=9,
        visited_levels=frozenset(range(3, 8)), applied_reviews=frozenset(),
        model=ModelSpec.model_validate(model(spec_model)),
        pending_model=ModelRef(pending, f"s3://m/{pending}") if pending else None,
    )


def _keeping(type_: str, names: str | None, on: str) -> LevelReviewSpec:
    """A change or recertify review of 7, approved by bob and carol on spec.model `on`."""
    spec = review(7, 7, [check("integration-tests")],
                  [approve("bob", "qa"), approve("carol", "product-owner")],
                  stamp=False, type=ReviewType(type_))
    if names:
        spec = spec.model_copy(update={
            "model": ReviewedModel(version=names, storage_uri=f"s3://m/{names}")})
    return stamped(spec, ModelSpec.model_validate(model(on)))


def test_a_change_review_approves_the_pending_model_and_no_other() -> None:
    ok = evaluate_review("c", _keeping("change", "1.5.0", on="1.5.0"),
                         _facts("1.5.0", "1.5.0"), POLICY)
    assert ok.phase is ReviewPhase.APPROVED, ok.message
    other = evaluate_review("c", _keeping("change", "1.4.9", on="1.5.0"),
                            _facts("1.5.0", "1.5.0"), POLICY)
    assert other.phase is ReviewPhase.INVALID
    assert other.message == "spec.model: Invalid: 1.4.9 is not the pending model (1.5.0)"
    nothing = evaluate_review("c", _keeping("change", "1.5.0", on="1.5.0"),
                              _facts(None, "1.5.0"), POLICY)
    assert nothing.phase is ReviewPhase.INVALID and "no model waiting" in nothing.message
    # Approvals given while spec.model was 1.4.0 approve nothing about 1.5.0.
    stale = evaluate_review("c", _keeping("change", "1.5.0", on="1.4.0"),
                            _facts("1.5.0", "1.5.0"), POLICY)
    assert stale.phase is ReviewPhase.PENDING
    assert {d.reviewer for d in stale.dismissed} == {"bob", "carol"}


def test_a_recertify_review_meets_its_levels_own_rule() -> None:
    renew = evaluate_review("r", _keeping("recertify", None, on="1.4.0"),
                            _facts(None, "1.4.0"), POLICY)
    assert renew.phase is ReviewPhase.APPROVED, renew.message
    bare = review(7, 7, [], [approve("bob", "qa")], type=ReviewType.RECERTIFY,
                  model=ModelSpec.model_validate(model("1.4.0")))  # the stamp's model
    short = evaluate_review("r", bare, _facts(None, "1.4.0"), POLICY)
    assert short.phase is ReviewPhase.PENDING
    assert any("integration-tests" in u for u in short.unmet), short.unmet
    # Of a level the technology has left: superseded, like any review of an old level.
    old = evaluate_review("r", review(6, 6, type=ReviewType.RECERTIFY),
                          _facts(None, "1.4.0"), POLICY)
    assert old.phase is ReviewPhase.SUPERSEDED


def test_after_an_upgrade_the_model_served_is_the_approved_one_and_a_new_one_is_held() -> None:
    status, isvc = serving_7()
    # As an operator that did not record approved models left it.
    before = status.model_copy(update={"approved_model": None, "known_good_models": []})
    upgraded = plan(before, isvc, entryLevel=3, model=model("1.4.0"))
    assert upgraded.status.approved_model is not None
    assert upgraded.status.approved_model.version == "1.4.0" and upgraded.serving is None
    # But a model set for the first time at the serving level waits for a review.
    bare = before.model_copy(update={"serving": None})
    first = plan(bare, None, entryLevel=3, model=model("1.4.0"))
    assert first.status.pending_model is not None and first.serving is None
    assert "nothing is served meanwhile" in first.status.pending_model.reason


def test_after_a_rollback_a_new_model_waits_while_the_rolled_back_to_model_serves() -> None:
    status, isvc = serving_7()
    held = plan(status, isvc, entryLevel=3, model=model("1.5.0"))
    applied = plan(held.status, isvc, approved=change_review("1.5.0"), entryLevel=3,
                   model=model("1.5.0"))
    on_15 = plan(applied.status, served(applied), entryLevel=3, model=model("1.5.0"))
    assert [m.version for m in on_15.status.known_good_models] == ["1.4.0", "1.5.0"]
    incident = Incident(fingerprint="fp1", alert_name="Errors",
                        starts_at="2026-11-22T10:00:00Z", action="rollback",
                        received_at="2026-11-22T11:00:00Z")
    alerted = on_15.status.model_copy(update={"incidents": [incident]})
    rolled = plan(alerted, served(applied), entryLevel=3, model=model("1.5.0"))
    assert rolled.serving is not None and rolled.serving.after is not None
    assert storage_uri(rolled.serving.after) == "s3://m/1.4.0"
    # The team ships a fix: the rollback ends, 1.5.1 waits, and 1.4.0 (not the 1.5.0 the
    # alert rolled back from) is what keeps serving.
    fixed = plan(rolled.status, served(rolled), entryLevel=3, model=model("1.5.1"))
    assert fixed.status.pending_model is not None
    assert fixed.status.pending_model.version == "1.5.1"
    assert fixed.status.approved_model is not None
    assert fixed.status.approved_model.version == "1.4.0"
    assert fixed.serving is None  # still 1.4.0
