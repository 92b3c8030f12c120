"""What the next level still needs comes from evaluate_review: one decision, many callers."""

from __future__ import annotations

from mltrl_operator.api.review import ReviewPhase
from mltrl_operator.domain.policy import DEFAULT_POLICY
from mltrl_operator.domain.progress import (
    NamedReview,
    evidence_entry,
    next_step,
    required_rule,
    skeleton_spec,
)
from mltrl_operator.domain.reviews import evaluate_review, technology_facts

from .builders import PRODUCTION, approve, check, review, status, tech


def test_without_a_review_the_next_step_is_what_an_empty_review_would_lack() -> None:
    spec = tech()
    step = next_step("fraud", spec, status(6), [], PRODUCTION)
    assert step is not None and step.review is None and step.level == 7
    empty = evaluate_review("", skeleton_spec("fraud", 6, 7),
                            technology_facts("fraud", spec, status(6)), PRODUCTION)
    assert step.unmet == empty.unmet
    assert "missing check 'integration-tests'" in step.unmet
    assert any("role 'qa'" in line for line in step.unmet)


def test_an_open_review_speaks_for_the_technology_with_its_own_unmet() -> None:
    spec = tech()
    open_review = review(6, 7, evidence=[check("integration-tests")],
                         approvals=[approve("bob", "qa")])
    step = next_step("fraud", spec, status(6), [NamedReview("fraud-to-7", open_review)],
                     PRODUCTION)
    assert step is not None and step.review == "fraud-to-7"
    expected = evaluate_review("fraud-to-7", open_review,
                               technology_facts("fraud", spec, status(6)), PRODUCTION)
    assert step.unmet == expected.unmet and step.phase is ReviewPhase.PENDING
    assert "missing check 'integration-tests'" not in step.unmet


def test_reviews_of_other_technologies_or_levels_do_not_count() -> None:
    other = review(6, 7, technology="another")
    stale = review(5, 6)
    step = next_step("fraud", tech(), status(6),
                     [NamedReview("a", other), NamedReview("b", stale)], PRODUCTION)
    assert step is not None and step.review is None


def test_at_the_target_level_nothing_is_needed() -> None:
    assert next_step("fraud", tech(targetLevel=6), status(6), [], PRODUCTION) is None


def test_the_skeleton_rule_names_every_required_evidence_with_its_kind() -> None:
    rule = required_rule("fraud", 6, 7, PRODUCTION)
    assert [r.name for r in rule.evidence] == ["integration-tests", "auc"]
    found = evidence_entry(rule, "auc")
    assert found is not None and found.kind == "metric"
    assert evidence_entry(rule, "nothing-like-it") is None
    assert required_rule("x", 3, 4, DEFAULT_POLICY).evidence
