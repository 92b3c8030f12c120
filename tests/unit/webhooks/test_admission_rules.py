"""The admission rules as pure functions: stamping, trust, immutability, the serving gate."""

from __future__ import annotations

from typing import Any

import pytest

from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.api.review import LevelReviewSpec
from mltrl_operator.api.technology import MLTechnologySpec
from mltrl_operator.domain.admission import (
    FORBIDDEN,
    INVALID,
    Requester,
    ReviewFacts,
    inference_service_verdict,
    review_verdict,
    stamp_approvals,
    technology_errors,
)
from mltrl_operator.domain.approvals import review_content
from mltrl_operator.domain.gating import serving_gate
from mltrl_operator.domain.policy import DEFAULT_POLICY, NamedPolicy, effective_policy

NOW_TEXT = "2026-11-22T12:00:00Z"


def named_policy(name: str, **fields: Any) -> NamedPolicy:
    return NamedPolicy(name, MLTRLPolicySpec.model_validate(fields))


BOB = Requester("bob", frozenset({"qa", "system:authenticated"}))
MALLORY = Requester("mallory")
CI = Requester("system:serviceaccount:ci:approver", frozenset({"system:serviceaccounts:ci"}))
FACTS = ReviewFacts(owner="alice", policy=DEFAULT_POLICY)


def spec(*approvals: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "technology": "fraud",
        "fromLevel": 3,
        "toLevel": 4,
        "approvals": list(approvals),
        **fields,
    }


def approval(reviewer: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"role": "qa", "decision": "approve", **fields}
    if reviewer is not None:
        body["reviewer"] = reviewer
    return body


def verdict(
    new: dict[str, Any],
    old: dict[str, Any] | None = None,
    requester: Requester = BOB,
    *,
    phase: str | None = None,
    trusted: bool = False,
    facts: ReviewFacts = FACTS,
) -> Any:
    return review_verdict(
        LevelReviewSpec.model_validate(new), new, old, phase, requester,
        trusted=trusted, facts=facts,
    )


# --- the mutating webhook ----------------------------------------------------------------


def test_an_approval_without_a_reviewer_gets_the_requester_and_the_time() -> None:
    patch = stamp_approvals(None, spec(approval()), BOB, trusted=False, now=NOW_TEXT)
    assert patch == [
        {"op": "add", "path": "/spec/approvals/0/reviewer", "value": "bob"},
        {"op": "add", "path": "/spec/approvals/0/time", "value": NOW_TEXT},
    ]


def test_the_requesters_own_approval_gets_the_time_now_whatever_it_claimed() -> None:
    claimed = approval("bob", time="2020-01-01T00:00:00Z")
    patch = stamp_approvals(None, spec(claimed), BOB, trusted=False, now=NOW_TEXT)
    assert patch == [{"op": "add", "path": "/spec/approvals/0/time", "value": NOW_TEXT}]


def test_untouched_approvals_keep_their_stamp_and_a_forged_name_is_left_for_validation() -> None:
    carol = approval("carol", time="2026-11-01T00:00:00Z")
    old = spec(carol)
    new = spec(carol, approval("dave"), approval())
    patch = stamp_approvals(old, new, BOB, trusted=False, now=NOW_TEXT)
    # carol's is untouched; dave's is not bob's to stamp (validation refuses it); the third
    # is bob's.
    assert patch == [
        {"op": "add", "path": "/spec/approvals/2/reviewer", "value": "bob"},
        {"op": "add", "path": "/spec/approvals/2/time", "value": NOW_TEXT},
    ]


def test_a_trusted_requester_keeps_the_time_an_approval_carries() -> None:
    new = spec(approval("carol", time="2026-11-01T00:00:00Z"), approval("dave"))
    patch = stamp_approvals(None, new, CI, trusted=True, now=NOW_TEXT)
    assert patch == [{"op": "add", "path": "/spec/approvals/1/time", "value": NOW_TEXT}]


def test_nothing_to_stamp_on_a_review_without_approvals_or_with_junk() -> None:
    assert stamp_approvals(None, spec(), BOB, trusted=False, now=NOW_TEXT) == []
    assert stamp_approvals(None, {"approvals": "no"}, BOB, trusted=False, now=NOW_TEXT) == []
    assert stamp_approvals(None, {"approvals": [3]}, BOB, trusted=False, now=NOW_TEXT) == []


# --- the validating webhook --------------------------------------------------------------


def test_a_reviewer_approving_as_themselves_is_admitted() -> None:
    assert verdict(spec(approval("bob", time=NOW_TEXT))).allowed


def test_forging_another_reviewers_name_is_refused() -> None:
    result = verdict(spec(approval("carol")), requester=MALLORY)
    assert not result.allowed and result.reason == FORBIDDEN and result.code == 403
    assert result.message == (
        "spec.approvals[0].reviewer: Forbidden: mallory may not record an approval as 'carol': "
        "reviewers approve as themselves (leave reviewer empty and it is filled in)"
    )


def test_a_trusted_group_may_record_approvals_for_others() -> None:
    assert verdict(spec(approval("carol")), requester=CI, trusted=True).allowed


def test_the_owner_may_not_approve_a_promotion_under_separation_of_duties() -> None:
    alice = Requester("alice")
    result = verdict(spec(approval("alice")), requester=alice)
    assert not result.allowed
    assert "alice owns mltech fraud and may not approve its promotion" in result.message
    assert "separation of duties, the built-in default policy" in result.message
    # Not even through a trusted group.
    assert not verdict(spec(approval("alice")), requester=CI, trusted=True).allowed


def test_the_owner_may_reject_and_may_approve_a_switchback_or_without_separation() -> None:
    alice = Requester("alice")
    assert verdict(spec(approval("alice", decision="reject")), requester=alice).allowed
    switchback = spec(approval("alice"), fromLevel=4, toLevel=3, reason="a finding")
    assert verdict(switchback, requester=alice).allowed
    lenient = effective_policy([named_policy("lab", separationOfDuties=False)], {})
    assert verdict(
        spec(approval("alice")), requester=alice, facts=ReviewFacts("alice", lenient)
    ).allowed
    # Unknown owner (the technology does not exist yet): the reconciler decides later.
    assert verdict(
        spec(approval("alice")), requester=alice, facts=ReviewFacts(None, DEFAULT_POLICY)
    ).allowed


def test_editing_or_removing_someone_elses_approval_is_refused() -> None:
    carol = approval("carol", time="2026-11-01T00:00:00Z")
    old = spec(carol)
    edited = verdict(spec({**carol, "decision": "reject"}), old)
    assert not edited.allowed
    # Changing carol's decision is both: not bob's name, and carol's approval changed.
    assert "bob may not change or remove carol's approval (changed)" in edited.message
    removed = verdict(spec(), old)
    assert not removed.allowed and removed.message == (
        "spec.approvals: Forbidden: bob may not change or remove carol's approval (removed)"
    )
    # Their own: fine. Others' untouched while adding one's own: fine.
    assert verdict(spec(), spec(approval("bob", time=NOW_TEXT))).allowed
    assert verdict(spec(carol, approval("bob", time=NOW_TEXT)), old).allowed
    assert verdict(spec(), old, CI, trusted=True).allowed


@pytest.mark.parametrize("phase", ["Applied", "Rejected"])
def test_an_applied_or_rejected_review_is_a_record(phase: str) -> None:
    old = spec(approval("carol"))
    new = {**old, "reason": "edited afterwards"}
    result = verdict(new, old, phase=phase)
    assert not result.allowed and result.reason == FORBIDDEN
    assert result.message.startswith(
        f"spec: Forbidden: the review is {phase}: it records a decision"
    )
    # Trust does not help, and the same spec (a metadata-only update) passes.
    assert not verdict(new, old, CI, phase=phase, trusted=True).allowed
    assert verdict(old, old, phase=phase).allowed


def test_pending_and_approved_reviews_may_still_change() -> None:
    old = spec()
    assert verdict({**old, "reason": "typo fixed"}, old, phase="Pending").allowed


def test_an_approval_stays_with_the_transition_it_was_given_to() -> None:
    old = spec(approval("carol"))
    result = verdict({**spec(approval("carol")), "toLevel": 5}, old)
    assert not result.allowed and result.message == (
        "spec.toLevel: Forbidden: cannot change once the review carries approvals (was 4); "
        "open a new review"
    )
    assert verdict({**spec(), "toLevel": 5}, spec()).allowed  # no approvals yet


def test_the_reviews_own_rules_are_checked_with_the_reconcilers_validator() -> None:
    result = verdict(spec(approval("bob"), approval("bob", role="sre")))
    assert not result.allowed and result.reason == INVALID and result.code == 422
    assert "'bob' already decided in spec.approvals[0]" in result.message
    same = verdict({**spec(), "toLevel": 3})
    assert not same.allowed
    assert ("spec.toLevel: Invalid: must differ from spec.fromLevel (3)"
            "; a review that keeps the level has spec.type change or recertify") in same.message


def test_change_and_recertify_reviews_keep_the_level_at_admission() -> None:
    change = {**spec(), "type": "change", "fromLevel": 7, "toLevel": 7,
              "model": {"version": "1.5.0"}}
    assert verdict(change).allowed
    assert verdict({**change, "type": "recertify", "model": None}).allowed
    moving = verdict({**change, "toLevel": 8})
    assert not moving.allowed and (
        "spec.toLevel: Invalid: a change review keeps the level: fromLevel and toLevel must "
        "be equal (7 != 8)") in moving.message
    named = verdict({**spec(), "model": {"version": "1.5.0"}})
    assert not named.allowed and "spec.model: Invalid: only a change review names a model" in (
        named.message)
    # The model a change review approves cannot change once it carries approvals.
    approved = {**change, "approvals": [approval("carol")]}
    swapped = verdict({**approved, "model": {"version": "1.6.0"}}, approved)
    assert not swapped.allowed and "spec.model: Forbidden: cannot change once the review " \
        "carries approvals" in swapped.message


# --- InferenceService --------------------------------------------------------------------

PROD = effective_policy(
    [named_policy("prod", serving={"minimumLevel": 7, "governed": True})], {}
)
AUDIT = effective_policy(
    [named_policy("watch", serving={"minimumLevel": 7, "governed": True,
                                    "enforcement": "audit"})], {}
)


def isvc(technology: str | None = "scorer", stopped: bool = False, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "scorer", "namespace": "payments"}
    if technology:
        metadata["labels"] = {"mltrl.dev/technology": technology}
    if stopped:
        metadata["annotations"] = {"serving.kserve.io/stop": "true"}
    return {"metadata": metadata, "spec": {"predictor": {"model": {}}, **spec}}


def test_a_technology_below_the_gate_may_not_serve() -> None:
    decision = serving_gate(5, None, PROD, "scorer")
    result = inference_service_verdict(isvc(), None, decision, PROD)
    assert not result.allowed and result.code == 403
    assert result.message == (
        "metadata.labels[mltrl.dev/technology]: Forbidden: "
        'InferenceService payments/scorer may not serve: mltech scorer is at level 5 '
        '(Machine Learning "Capability"); serving requires level 7 (policy prod)'
    )


def test_at_the_gate_it_serves_and_audit_only_warns() -> None:
    assert inference_service_verdict(
        isvc(), None, serving_gate(7, None, PROD, "scorer"), PROD
    ).allowed
    warned = inference_service_verdict(isvc(), None, serving_gate(5, None, AUDIT, "s"), AUDIT)
    assert warned.allowed and len(warned.warnings) == 1
    assert "requires level 7 (policy watch) (audit: reported only)" in warned.warnings[0]


def test_a_governed_namespace_needs_a_claim_and_the_claim_must_exist() -> None:
    unclaimed = inference_service_verdict(isvc(None), None, None, PROD)
    assert not unclaimed.allowed
    assert "claims no MLTechnology (label mltrl.dev/technology)" in unclaimed.message
    assert "namespace is governed (policy prod)" in unclaimed.message
    missing = inference_service_verdict(isvc("ghost"), None, None, DEFAULT_POLICY)
    assert not missing.allowed and "claims mltech ghost, which does not exist" in missing.message
    # Ungoverned and unclaimed: not the gate's business.
    assert inference_service_verdict(isvc(None), None, None, DEFAULT_POLICY).allowed


def test_stopping_is_never_refused_and_unchanged_serving_is_only_warned_about() -> None:
    closed = serving_gate(5, None, PROD, "scorer")
    assert inference_service_verdict(isvc(stopped=True), isvc(), closed, PROD).allowed
    relabelled = isvc()
    relabelled["metadata"]["finalizers"] = ["inferenceservice.finalizers"]
    kept = inference_service_verdict(relabelled, isvc(), closed, PROD)
    assert kept.allowed and "this update changes nothing it serves" in kept.warnings[0]
    # Resuming a stopped one, or changing what is served, is gated.
    assert not inference_service_verdict(isvc(), isvc(stopped=True), closed, PROD).allowed
    changed = isvc(predictor={"model": {"storageUri": "s3://other"}})
    assert not inference_service_verdict(changed, isvc(), closed, PROD).allowed


# --- MLTechnology ------------------------------------------------------------------------


def tech(**fields: Any) -> MLTechnologySpec:
    return MLTechnologySpec.model_validate({"owner": "alice", "entryLevel": 3, **fields})


def test_technology_rules_cover_levels_missing_components_and_cycles() -> None:
    errors = technology_errors(
        tech(targetLevel=2, components=[{"name": "ghost"}, {"name": "b"}]),
        name="a", namespace="ml",
        edges={("ml", "b"): [("ml", "a")]},
        existing=frozenset({("ml", "b")}),
    )
    assert [str(e) for e in errors] == [
        "spec.targetLevel: must be at least spec.entryLevel (3)",
        "spec.components[0]: mltech ghost does not exist",
        "spec.components[1]: forms a cycle a -> b -> a",
    ]


def test_a_component_listed_before_may_have_gone_since() -> None:
    errors = technology_errors(
        tech(components=[{"name": "gone", "namespace": "other"}]),
        name="a", namespace="ml", edges={}, existing=frozenset(),
        old_components=frozenset({("other", "gone")}),
    )
    assert errors == []


# --- issue 11: roles, stamps and every owner ---------------------------------------------

BOUND = effective_policy(
    [named_policy("production", reviewers=[{"role": "product-owner", "users": ["carol"]}])], {}
)


def test_an_approval_in_a_role_the_policy_gives_others_is_refused() -> None:
    refused = verdict(spec(approval("bob", role="product-owner")),
                      facts=ReviewFacts("alice", BOUND))
    assert not refused.allowed
    assert "spec.approvals[0].role: Forbidden: bob does not hold role product-owner: policy " \
        "production binds it to other users and groups (spec.reviewers)" in refused.message
    assert verdict(spec(approval("bob", role="ml-peer")),
                   facts=ReviewFacts("alice", BOUND)).allowed  # unbound: admitted


def test_a_stamp_naming_someone_else_is_refused() -> None:
    stamp = {"username": "carol", "time": NOW_TEXT, "content": {"digest": "0" * 64}}
    refused = verdict(spec(approval("bob", approvedBy=stamp)))
    assert not refused.allowed
    assert "spec.approvals[0].approvedBy: Forbidden: is written by the admission webhook" in (
        refused.message
    )


def test_a_former_owner_is_refused_like_the_owner() -> None:
    dave = Requester("dave")
    refused = verdict(spec(approval("dave", role="ml-peer")), requester=dave,
                      facts=ReviewFacts("alice", DEFAULT_POLICY, owners=frozenset({"dave"})))
    assert not refused.allowed
    assert "dave owned mltech fraud and may not approve its promotion" in refused.message


def test_new_approvals_are_stamped_with_the_requester_and_the_content() -> None:
    content = review_content(LevelReviewSpec.model_validate(spec()), None)
    patch = stamp_approvals(None, spec(approval("bob", approvedBy={"username": "x"})), BOB,
                            trusted=False, now=NOW_TEXT, content=content)
    stamp = next(op for op in patch if op["path"].endswith("/approvedBy"))
    assert stamp["value"] == {
        "username": "bob", "groups": ["qa", "system:authenticated"], "time": NOW_TEXT,
        "content": content.to_wire(),
    }
