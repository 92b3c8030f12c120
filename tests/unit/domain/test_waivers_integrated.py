"""Waivers where they count: review evaluation and the serving gate, both through
domain.waivers.waivers_in_force (the one decision), judged at `now`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from mltrl_operator.api.policy import MLTRLPolicySpec, OnDemotion
from mltrl_operator.api.review import ReviewPhase
from mltrl_operator.api.technology import MLTechnologyStatus
from mltrl_operator.api.waiver import MLTRLWaiverSpec
from mltrl_operator.domain.gating import serving_gate, stored_technology_gate
from mltrl_operator.domain.plan import PlanInputs, plan_technology
from mltrl_operator.domain.policy import NamedPolicy, waiver_policy
from mltrl_operator.domain.reviews import TechnologyFacts, evaluate_review, promotion_rule
from mltrl_operator.domain.timefmt import rfc3339
from mltrl_operator.domain.waivers import WaiverFacts, waivers_in_force

from .builders import BOUND_DEFAULT, DEFAULT_EVIDENCE, NOW, approve, review, tech_spec

APPROVERS = waiver_policy([NamedPolicy("prod", MLTRLPolicySpec.model_validate({
    "waivers": {"maxDuration": "336h", "approvers": [{"users": ["dana"]}]},
}))])
POLICY = replace(BOUND_DEFAULT, waivers=APPROVERS)
EXPIRES = NOW + timedelta(days=2)


def waiver(name: str = "w", approver: str = "dana", technology: str = "fraud",
           **waives: Any) -> WaiverFacts:
    spec = MLTRLWaiverSpec.model_validate({
        "technology": technology, "reason": "audit booked", "expiresAt": rfc3339(EXPIRES),
        "waives": waives or {"level": 5, "evidence": ["dataset-versions"]},
        "approvals": [{"approver": approver, "time": rfc3339(NOW - timedelta(hours=1))}],
    })
    return WaiverFacts(name, spec, NOW - timedelta(hours=2))


def facts(*waivers: WaiverFacts, now: Any = NOW, level: int = 4) -> TechnologyFacts:
    return TechnologyFacts(
        name="fraud", owner="alice", level=level, entry_level=3, target_level=9,
        visited_levels=frozenset(range(3, level + 1)), applied_reviews=frozenset(),
        waivers=tuple(waivers), now=now,
    )


WITHOUT_DATASET = [e for e in DEFAULT_EVIDENCE[5] if e.name != "dataset-versions"]
REVIEW = review(4, 5, WITHOUT_DATASET, [approve("bob")])


def test_a_waiver_of_one_evidence_name_lets_the_review_be_approved_and_says_so() -> None:
    result = evaluate_review("r", REVIEW, facts(waiver()), POLICY)
    assert result.phase is ReviewPhase.APPROVED
    assert [(w.name, w.waived, w.approved_by) for w in result.waivers] == [
        ("w", ["evidence dataset-versions"], ["dana"])
    ]
    assert "waiver w took off evidence dataset-versions until" in result.message


def test_without_the_waiver_or_once_it_expired_the_review_waits_for_the_evidence() -> None:
    for technology in (facts(), facts(waiver(), now=EXPIRES),
                       facts(waiver(), now=EXPIRES + timedelta(seconds=5))):
        result = evaluate_review("r", REVIEW, technology, POLICY)
        assert result.phase is ReviewPhase.PENDING
        assert any("dataset-versions" in u for u in result.unmet)
        assert result.waivers == ()
    # one second before expiry it still counts
    before = facts(waiver(), now=EXPIRES - timedelta(seconds=1))
    assert evaluate_review("r", REVIEW, before, POLICY).phase is ReviewPhase.APPROVED


def test_waivers_that_do_not_count_take_nothing_off() -> None:
    cases = [
        waiver(approver="alice"),                # the owner approving her own waiver
        waiver(approver="mallory"),              # someone the policy does not name
        waiver(technology="other"),              # a waiver for another technology
        waiver(level=6, evidence=["dataset-versions"]),  # another level
    ]
    for case in cases:
        result = evaluate_review("r", REVIEW, facts(case), POLICY)
        assert result.phase is ReviewPhase.PENDING, case
    # no instant given: nothing counts
    assert evaluate_review("r", REVIEW, facts(waiver(), now=None), POLICY).phase is (
        ReviewPhase.PENDING)


def test_approvals_and_roles_are_lowered_only_at_the_waived_level() -> None:
    two = review(5, 6, DEFAULT_EVIDENCE[6], [approve("bob", "product-owner")])
    pending = evaluate_review("r", two, facts(level=5), POLICY)
    assert pending.phase is ReviewPhase.PENDING
    lowered = waiver(level=6, minApprovals=1)
    result = evaluate_review("r", two, facts(lowered, level=5), POLICY)
    assert result.phase is ReviewPhase.APPROVED
    assert result.waivers[0].waived == ["approvals 2 -> 1"]


def test_a_waived_role_is_not_asked_for_and_nothing_else_is_taken_off() -> None:
    # Level 6 asks for product-owner and two approvals; bob approves as qa only.
    two = review(5, 6, DEFAULT_EVIDENCE[6], [approve("bob", "qa"), approve("carol", "qa")])
    before = evaluate_review("r", two, facts(level=5), POLICY)
    assert any("product-owner" in u for u in before.unmet)
    no_role = waiver(level=6, roles=["product-owner"])
    result = evaluate_review("r", two, facts(no_role, level=5), POLICY)
    assert result.phase is ReviewPhase.APPROVED, result.unmet
    assert result.waivers[0].waived == ["role product-owner"]
    # the same waiver with one approval fewer: still two approvals needed
    one = review(5, 6, DEFAULT_EVIDENCE[6], [approve("bob", "qa")])
    pending = evaluate_review("r", one, facts(no_role, level=5), POLICY)
    assert pending.phase is ReviewPhase.PENDING
    assert any("2 approvals" in u for u in pending.unmet)


def test_the_serving_gate_opens_below_the_minimum_only_while_the_waiver_counts() -> None:
    lowered = waiver(servingMinimum=5)
    in_force = waivers_in_force([lowered], technology="fraud", policy=APPROVERS,
                                owners=frozenset({"alice"}), now=NOW)
    gate = serving_gate(5, None, POLICY, "fraud", in_force)
    assert gate.allowed and gate.required_level == 5
    assert gate.waiver is not None and gate.waiver.name == "w" and gate.unwaived_level == 6
    assert "lowered by waiver w until" in gate.message
    # above the minimum anyway: the waiver did not help, nothing to record
    assert serving_gate(6, None, POLICY, "fraud", in_force).waiver is None
    # the technology's own requiredLevel is not the waiver's to lower
    assert not serving_gate(5, 7, POLICY, "fraud", in_force).allowed
    expired = waivers_in_force([lowered], technology="fraud", policy=APPROVERS,
                               owners=frozenset({"alice"}), now=EXPIRES)
    assert expired == ()
    assert not serving_gate(5, None, POLICY, "fraud", expired).allowed


def test_the_stored_gate_judges_waivers_with_every_owner_since_the_level() -> None:
    technology = {
        "metadata": {"name": "fraud"},
        "spec": {"owner": "alice", "targetLevel": 9},
        "status": {"level": 5, "effectiveLevel": 5,
                   "history": [{"to": 5, "kind": "promotion", "at": rfc3339(NOW - timedelta(
                       days=1)), "by": ["bob"], "reason": "x"}],
                   "owners": [{"name": "dana", "since": rfc3339(NOW - timedelta(days=3)),
                               "until": rfc3339(NOW - timedelta(hours=3))},
                              {"name": "alice", "since": rfc3339(NOW - timedelta(hours=3))}]},
    }
    by_dana = waiver(servingMinimum=5)
    gate = stored_technology_gate("fraud", technology, POLICY, [by_dana], NOW)
    assert gate is not None and not gate.allowed  # dana owned it since level 5
    alice_only = {**technology, "status": {**technology["status"], "owners": [
        {"name": "alice", "since": rfc3339(NOW - timedelta(days=3))}]}}
    opened = stored_technology_gate("fraud", alice_only, POLICY, [by_dana], NOW)
    assert opened is not None and opened.allowed
    # without an instant no waiver counts
    closed = stored_technology_gate("fraud", alice_only, POLICY, [by_dana])
    assert closed is not None and not closed.allowed


def test_the_plan_serves_by_the_waiver_and_stops_or_deletes_at_its_expiry() -> None:
    spec = tech_spec(entryLevel=5, model={"version": "1.0", "storageUri": "s3://m/1.0",
                                          "format": "sklearn"})
    body: dict[str, Any] = {
        "metadata": {"name": "fraud", "namespace": "payments", "uid": "u", "generation": 1,
                     "resourceVersion": "10"},
        "spec": spec.to_wire(), "status": {},
    }

    def plan(status: MLTechnologyStatus, isvc: Any, now: Any, on_demotion: OnDemotion) -> Any:
        return plan_technology(PlanInputs(
            technology={**body, "status": status.to_wire()}, spec=spec, status=status,
            components=[], validation_errors=[], inference_service=isvc, now=now,
            policy=replace(POLICY, minimum_serving_level=6, on_demotion=on_demotion,
                           entry_max_level=9),
            waivers=[waiver(servingMinimum=5)],
        ))

    first = plan(MLTechnologyStatus(), None, NOW, OnDemotion.STOP)
    assert first.serving is not None and first.serving.verb == "create"
    assert first.status.serving is not None and first.status.serving.waiver is not None
    assert first.status.serving.waiver.waived == ["servingMinimum 6 -> 5"]
    created = first.serving.after
    for on_demotion, verb in ((OnDemotion.STOP, "patch"), (OnDemotion.DELETE, "delete")):
        before = plan(first.status, created, EXPIRES - timedelta(seconds=1), on_demotion)
        assert before.serving is None or (before.serving.verb == "patch" and (
            "serving.kserve.io/stop" not in str(before.serving.body)))
        closed = plan(first.status, created, EXPIRES, on_demotion)
        assert closed.serving is not None and closed.serving.verb == verb
        assert closed.status.serving is not None and not closed.status.serving.allowed
        assert closed.status.serving.waiver is None


def test_a_review_that_keeps_the_level_meets_that_levels_rule() -> None:
    # change and recertify reviews (issue 15) keep the level: their rule is the level's own,
    # never the empty rule of no level passed (waivers then apply to it as to a promotion)
    kept = promotion_rule(review(6, 6), POLICY)
    assert kept == POLICY.rule_for(6)
