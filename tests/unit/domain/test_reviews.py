from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

import pytest

from mltrl_operator.api.policy import EvidenceRequirement
from mltrl_operator.api.review import (
    Approval,
    Evidence,
    EvidenceKind,
    LevelReviewSpec,
    ReviewPhase,
)
from mltrl_operator.api.technology import LevelTransition, MLTechnologyStatus
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.policy import DEFAULT_POLICY, EffectivePolicy, LevelRule
from mltrl_operator.domain.reviews import (
    ReviewEvaluation,
    TechnologyFacts,
    evaluate_review,
    technology_facts,
)

from .builders import (
    BOUND_DEFAULT,
    DEFAULT_EVIDENCE,
    approve,
    check,
    document,
    metric,
    reject,
    review,
    tech_spec,
    with_policy,
)


def facts(
    level: int = 4,
    *,
    entry: int = 3,
    target: int = 9,
    visited: Iterable[int] | None = None,
    applied: Iterable[str] = (),
) -> TechnologyFacts:
    return TechnologyFacts(
        name="fraud",
        owner="alice",
        level=level,
        entry_level=entry,
        target_level=target,
        visited_levels=frozenset(range(entry, level + 1) if visited is None else visited),
        applied_reviews=frozenset(applied),
    )


def evaluate(
    spec: LevelReviewSpec,
    technology: TechnologyFacts | None = None,
    policy: EffectivePolicy = BOUND_DEFAULT,
) -> ReviewEvaluation:
    return evaluate_review("r1", spec, technology or facts(), policy)


PROMOTION_4_TO_5 = review(4, 5, DEFAULT_EVIDENCE[5], [approve("bob")])
REASON = "the PoC data was not representative"


@pytest.mark.parametrize(
    ("spec", "technology", "phase", "message", "errors"),
    [
        (
            review(4, 4),
            facts(),
            ReviewPhase.INVALID,
            "spec.toLevel: must differ from spec.fromLevel (4)"
            "; a review that keeps the level has spec.type change or recertify",
            (FieldError("spec.toLevel", "must differ from spec.fromLevel (4)"
            "; a review that keeps the level has spec.type change or recertify"),),
        ),
        (
            PROMOTION_4_TO_5,
            facts(level=5, applied=["r1"]),
            ReviewPhase.APPLIED,
            "applied: moved the technology from level 4 to 5",
            (),
        ),
        (
            PROMOTION_4_TO_5,
            facts(level=5),
            ReviewPhase.SUPERSEDED,
            "the technology moved from level 4 to 5 since this review was opened",
            (),
        ),
        (
            PROMOTION_4_TO_5,
            facts(level=3, entry=3),
            ReviewPhase.INVALID,
            "spec.fromLevel: must equal the technology's current level 3",
            (FieldError("spec.fromLevel", "must equal the technology's current level 3"),),
        ),
        (
            review(4, 6, DEFAULT_EVIDENCE[5]),
            facts(),
            ReviewPhase.INVALID,
            "spec.toLevel: promotion may go up one level at a time (4 -> 5), not 4 -> 6; "
            "the policy does not allow level skipping",
            None,
        ),
        (
            PROMOTION_4_TO_5,
            facts(target=4),
            ReviewPhase.INVALID,
            "spec.toLevel: may not promote above the technology's target level 4",
            None,
        ),
        (
            review(4, 2, reason=REASON),
            facts(),
            ReviewPhase.INVALID,
            "spec.toLevel: may not switch back below the technology's entry level 3",
            None,
        ),
        (
            review(6, 4, reason=REASON),
            facts(6, visited=[3, 6]),
            ReviewPhase.INVALID,
            "spec.toLevel: may not switch back to level 4 (Proof of Concept (PoC) Development): "
            "the technology never went through it",
            None,
        ),
        (
            review(4, 5, DEFAULT_EVIDENCE[5], [approve("bob"), reject("carol", "qa", "flaky")]),
            facts(),
            ReviewPhase.REJECTED,
            "rejected by carol (qa): flaky",
            (),
        ),
        (
            review(4, 5, approvals=[reject("alice", "owner"), reject("dan", "qa", "no tests")]),
            facts(),
            ReviewPhase.REJECTED,
            "rejected by alice (owner); rejected by dan (qa): no tests",
            (),
        ),
        (
            PROMOTION_4_TO_5,
            facts(),
            ReviewPhase.APPROVED,
            "1 of 1 approval, all evidence present",
            (),
        ),
    ],
    ids=[
        "a review that breaks its own rules is Invalid",
        "a review named in the history is Applied",
        "a review from a level the technology has left is Superseded",
        "a review from a level never reached is Invalid",
        "skipping a level without the policy's leave is Invalid",
        "promoting above the target level is Invalid",
        "switching back below the entry level is Invalid",
        "switching back to a level never gone through is Invalid",
        "one reject rejects the review and names who and why",
        "every rejection is named, the owner's too",
        "a review meeting every requirement is Approved",
    ],
)
def test_review_phases(
    spec: LevelReviewSpec,
    technology: TechnologyFacts,
    phase: ReviewPhase,
    message: str,
    errors: tuple[FieldError, ...] | None,
) -> None:
    result = evaluate(spec, technology)
    assert (result.phase, result.message) == (phase, message)
    if errors is not None:
        assert result.errors == errors
    if phase is ReviewPhase.INVALID:
        assert "; ".join(str(e) for e in result.errors) == message


def test_a_review_of_a_missing_technology_waits() -> None:
    result = evaluate_review("r1", PROMOTION_4_TO_5, None, DEFAULT_POLICY)
    assert result == ReviewEvaluation(
        phase=ReviewPhase.PENDING,
        unmet=("technology 'fraud' does not exist in this namespace",),
        approved_by=(),
        message="waiting: technology 'fraud' does not exist in this namespace",
        errors=(),
        is_promotion=True,
    )


def test_a_review_that_breaks_its_rules_is_invalid_even_when_its_technology_is_missing() -> None:
    assert evaluate_review("r1", review(4, 4), None, DEFAULT_POLICY).phase is ReviewPhase.INVALID


def test_an_applied_review_still_reports_who_approved_it() -> None:
    result = evaluate(PROMOTION_4_TO_5, facts(level=5, applied=["r1"]))
    assert result.approved_by == ("bob",)


def test_rules_apply_in_order_applied_before_rejected() -> None:
    spec = review(4, 5, approvals=[approve("bob"), reject("carol")])
    assert evaluate(spec, facts(level=5, applied=["r1"])).phase is ReviewPhase.APPLIED
    assert evaluate(spec, facts(level=4)).phase is ReviewPhase.REJECTED


def req(name: str, kind: EvidenceKind, **bounds: float) -> EvidenceRequirement:
    return EvidenceRequirement(name=name, kind=kind, description=None, **bounds)


STRICT = with_policy(
    rules=MappingProxyType(
        {
            **DEFAULT_POLICY.rules,
            5: LevelRule(
                5,
                (
                    req("ci", EvidenceKind.CHECK).model_copy(update={"description": "CI green"}),
                    req("auc", EvidenceKind.METRIC, minimum=0.85),
                    req("p99", EvidenceKind.METRIC, maximum=200),
                    req("plan", EvidenceKind.DOCUMENT),
                ),
                2,
                frozenset({"qa"}),
            ),
        }
    )
)
GOOD = [check("ci"), metric("auc", 0.85), metric("p99", 200), document("plan")]
GOOD_APPROVALS = [approve("bob", "qa"), approve("carol")]


def replaced(evidence: list[Evidence], index: int, new: Evidence) -> list[Evidence]:
    return [new if n == index else e for n, e in enumerate(evidence)]


@pytest.mark.parametrize(
    ("evidence", "approvals", "unmet", "approved_by"),
    [
        (
            [],
            [],
            [
                "missing check 'ci' (CI green)",
                "missing metric 'auc'",
                "missing metric 'p99'",
                "missing document 'plan'",
                "needs 2 approvals from distinct reviewers, has 0",
                "needs an approval from a reviewer with role 'qa'",
            ],
            (),
        ),
        (
            replaced(GOOD, 0, check("ci", passed=False)),
            GOOD_APPROVALS,
            ["check 'ci' has not passed"],
            ("bob", "carol"),
        ),
        (
            replaced(GOOD, 1, metric("auc", 0.81)),
            GOOD_APPROVALS,
            ["metric 'auc' is 0.81, below the minimum 0.85"],
            ("bob", "carol"),
        ),
        (
            replaced(GOOD, 2, metric("p99", 250)),
            GOOD_APPROVALS,
            ["metric 'p99' is 250, above the maximum 200"],
            ("bob", "carol"),
        ),
        (
            replaced(GOOD, 0, document("ci")),
            GOOD_APPROVALS,
            ["evidence 'ci' is a document; the policy requires a check"],
            ("bob", "carol"),
        ),
        (
            GOOD,
            [approve("bob", "qa")],
            ["needs 2 approvals from distinct reviewers, has 1"],
            ("bob",),
        ),
        (
            GOOD,
            [approve("bob"), approve("carol")],
            ["needs an approval from a reviewer with role 'qa'"],
            ("bob", "carol"),
        ),
        (
            GOOD,
            [approve("alice", "qa"), approve("carol")],
            [
                "alice owns the technology and may not approve its review (separation of duties)",
                "needs 2 approvals from distinct reviewers, has 1",
                "needs an approval from a reviewer with role 'qa'",
            ],
            ("carol",),
        ),
        ([*GOOD, check("extra", passed=False)], GOOD_APPROVALS, [], ("bob", "carol")),
    ],
    ids=[
        "an empty review lists everything it lacks",
        "a failed check",
        "a metric below its minimum",
        "a metric above its maximum",
        "evidence of the wrong kind",
        "too few approvals",
        "no approval from a required role",
        "the owner's approval does not count under separation of duties",
        "evidence nobody asked for is ignored",
    ],
)
def test_unmet_requirements_in_plain_words(
    evidence: list[Evidence],
    approvals: list[Approval],
    unmet: list[str],
    approved_by: tuple[str, ...],
) -> None:
    result = evaluate(review(4, 5, evidence, approvals), policy=STRICT)
    assert list(result.unmet) == unmet
    assert result.approved_by == approved_by
    if unmet:
        count = len(unmet)
        assert result.phase is ReviewPhase.PENDING
        assert result.message == f"{count} requirement{'' if count == 1 else 's'} unmet"
    else:
        assert result.phase is ReviewPhase.APPROVED
        assert result.message == "2 of 2 approvals, all evidence present"


def test_without_separation_of_duties_the_owner_may_approve() -> None:
    policy = with_policy(rules=STRICT.rules, separation_of_duties=False)
    result = evaluate(review(4, 5, GOOD, [approve("alice", "qa"), approve("carol")]), policy=policy)
    assert (result.phase, result.approved_by) == (ReviewPhase.APPROVED, ("alice", "carol"))


def test_a_skipping_promotion_must_meet_every_passed_levels_rule() -> None:
    policy = with_policy(allow_level_skipping=True)
    result = evaluate(review(4, 6, approvals=[approve("bob")]), policy=policy)
    assert result.unmet == (
        "missing check 'unit-tests' (unit tests pass)",
        "missing check 'integration-tests' (integration tests pass)",
        "missing document 'dataset-versions' (the datasets used, with their versions)",
        "missing document 'product-requirements' (the product requirements)",
        "missing document 'ethics-checklist' (the ethics checklist)",
        "needs 2 approvals from distinct reviewers, has 1",
        "needs an approval from a reviewer with role 'product-owner'",
    )
    full = review(
        4,
        6,
        [*DEFAULT_EVIDENCE[5], *DEFAULT_EVIDENCE[6]],
        [approve("bob"), approve("pat", "product-owner")],
    )
    assert evaluate(full, policy=policy).phase is ReviewPhase.APPROVED


@pytest.mark.parametrize(
    ("approvals", "phase", "unmet", "message"),
    [
        ([], ReviewPhase.PENDING, ("needs 1 approval, has 0",), "1 requirement unmet"),
        (
            [approve("alice", "owner")],
            ReviewPhase.APPROVED,
            (),
            "1 of 1 approval, switchback to level 4 (Proof of Concept (PoC) Development)",
        ),
        (
            [approve("bob"), approve("carol")],
            ReviewPhase.APPROVED,
            (),
            "2 of 1 approval, switchback to level 4 (Proof of Concept (PoC) Development)",
        ),
    ],
    ids=[
        "a switchback needs one approval",
        "the owner's approval counts for a switchback",
        "more approvals do no harm",
    ],
)
def test_a_switchback_needs_one_approval_from_anyone_and_no_evidence(
    approvals: list[Approval],
    phase: ReviewPhase,
    unmet: tuple[str, ...],
    message: str,
) -> None:
    result = evaluate(review(5, 4, approvals=approvals, reason=REASON), facts(5))
    assert (result.phase, result.unmet, result.message) == (phase, unmet, message)
    assert result.is_promotion is False


def test_a_switchback_to_the_entry_level_is_allowed() -> None:
    spec = review(6, 3, approvals=[approve("bob")], reason=REASON)
    assert evaluate(spec, facts(6, entry=3)).phase is ReviewPhase.APPROVED


def transition(to: int, review_name: str | None = None) -> LevelTransition:
    return LevelTransition(to=to, kind="promotion", review=review_name, at="t")


@pytest.mark.parametrize(
    ("status", "level", "visited", "applied"),
    [
        (None, 3, {3}, set()),
        (MLTechnologyStatus(), 3, {3}, set()),
        (
            MLTechnologyStatus(
                level=5, history=[transition(3), transition(4, "r1"), transition(5, "r2")]
            ),
            5,
            {3, 4, 5},
            {"r1", "r2"},
        ),
        (MLTechnologyStatus(level=7, history=[transition(6, "r9")]), 7, {3, 6, 7}, {"r9"}),
    ],
    ids=[
        "no status yet means the entry level",
        "a status without a level means the entry level",
        "visited levels and applied reviews come from the history",
        "the entry and current level count as visited even when history was trimmed",
    ],
)
def test_technology_facts(
    status: MLTechnologyStatus | None, level: int, visited: set[int], applied: set[str]
) -> None:
    result = technology_facts("fraud", tech_spec(entryLevel=3, targetLevel=8), status)
    assert result == TechnologyFacts(
        "fraud", "alice", level, 3, 8, frozenset(visited), frozenset(applied),
        owners=frozenset({"alice"}), requested_entry_level=3,
    )
