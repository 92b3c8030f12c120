from __future__ import annotations

from typing import Any

import pytest

from mltrl_operator.api.policy import EvidenceRequirement
from mltrl_operator.domain.policy import DEFAULT_POLICY, LevelRule
from mltrl_operator.domain.requirements import (
    approvals_needed,
    describe_requirement,
    describe_rule,
    missing_evidence,
)


def req(**fields: Any) -> EvidenceRequirement:
    return EvidenceRequirement.model_validate(fields)


@pytest.mark.parametrize(
    ("requirement", "words"),
    [
        (req(name="ci", kind="check"), "check 'ci' has passed"),
        (
            req(name="ci", kind="check", description="CI is green"),
            "check 'ci' has passed (CI is green)",
        ),
        (req(name="plan", kind="document"), "document 'plan' with a link"),
        (req(name="auc", kind="metric", minimum=0.85), "metric 'auc' of at least 0.85"),
        (req(name="p99", kind="metric", maximum=200.0), "metric 'p99' of at most 200"),
        (
            req(name="auc", kind="metric", minimum=0.8, maximum=0.99),
            "metric 'auc' between 0.8 and 0.99",
        ),
        (req(name="auc", kind="metric"), "metric 'auc' reported"),
    ],
    ids=[
        "a check must have passed",
        "the description follows in brackets",
        "a document needs a link",
        "a metric with a minimum",
        "a metric with a maximum, whole numbers without decimals",
        "a metric with both bounds",
        "a metric without bounds need only be reported",
    ],
)
def test_requirements_in_plain_words(requirement: EvidenceRequirement, words: str) -> None:
    assert describe_requirement(requirement) == words


def test_missing_evidence_names_kind_name_and_description() -> None:
    assert missing_evidence(req(name="ci", kind="check", description="CI is green")) == (
        "missing check 'ci' (CI is green)"
    )
    assert missing_evidence(req(name="auc", kind="metric")) == "missing metric 'auc'"


@pytest.mark.parametrize(
    ("needed", "has", "words"),
    [
        (1, None, "needs 1 approval"),
        (2, None, "needs 2 approvals from distinct reviewers"),
        (2, 1, "needs 2 approvals from distinct reviewers, has 1"),
        (1, 0, "needs 1 approval, has 0"),
    ],
    ids=["one", "several", "several with the count so far", "one with none so far"],
)
def test_approvals_in_plain_words(needed: int, has: int | None, words: str) -> None:
    assert approvals_needed(needed, has) == words


def test_a_rule_in_plain_words_lists_evidence_approvals_roles_and_separation_of_duties() -> None:
    assert describe_rule(DEFAULT_POLICY.rule_for(7), separation_of_duties=True) == [
        "check 'integration-tests' has passed "
        "(integration tests across infrastructure, data pipelines and security)",
        "needs 2 approvals from distinct reviewers",
        "needs an approval from a reviewer with role 'product-owner'",
        "needs an approval from a reviewer with role 'qa'",
        "the owner's approval does not count (separation of duties)",
    ]


def test_a_rule_without_approvals_or_separation_of_duties_says_nothing_about_them() -> None:
    rule = LevelRule(4, (), 0, frozenset())
    assert describe_rule(rule, separation_of_duties=False) == []
