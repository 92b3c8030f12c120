from __future__ import annotations

import pytest

from mltrl_operator.api.review import LevelReviewSpec
from mltrl_operator.domain.validation import validate_review_spec

from .builders import approve, check, document, metric, reject, review


def errors_for(spec: LevelReviewSpec) -> list[str]:
    return [str(e) for e in validate_review_spec(spec)]


@pytest.mark.parametrize(
    "spec",
    [
        review(3, 4),
        review(4, 3, reason="the PoC data was not representative"),
        review(4, 3, reason="found a leak", switchback_type="discovery"),
        review(3, 4, [check("ci", passed=False), metric("auc", 0.0), document("plan")]),
        review(3, 4, approvals=[approve("bob"), reject("carol")]),
    ],
    ids=[
        "a bare promotion",
        "a switchback with a reason",
        "a switchback with a type",
        "a failed check and a zero metric are still evidence",
        "different reviewers deciding differently",
    ],
)
def test_valid_reviews(spec: LevelReviewSpec) -> None:
    assert errors_for(spec) == []


@pytest.mark.parametrize(
    ("spec", "errors"),
    [
        (review(4, 4), ["spec.toLevel: must differ from spec.fromLevel (4)"
            "; a review that keeps the level has spec.type change or recertify"]),
        (review(4, 3), ["spec.reason: is required when the review moves the technology down"]),
        (
            review(4, 3, reason="  "),
            ["spec.reason: is required when the review moves the technology down"],
        ),
        (
            review(3, 4, switchback_type="review"),
            ["spec.switchbackType: only a review that moves the technology down may set it"],
        ),
        (
            review(3, 4, [check("ci"), document("ci")]),
            ["spec.evidence[1].name: duplicates spec.evidence[0] ('ci')"],
        ),
        (
            review(3, 4, [check("ci", passed=None)]),
            ["spec.evidence[0].passed: is required for a check"],
        ),
        (review(3, 4, [metric("auc", None)]), ["spec.evidence[0].value: is required for a metric"]),
        (
            review(3, 4, [document("plan", uri=None)]),
            ["spec.evidence[0].uri: is required for a document"],
        ),
        (
            review(3, 4, approvals=[approve("bob"), approve("carol"), reject("bob")]),
            [
                "spec.approvals[2].reviewer: 'bob' already decided in spec.approvals[0]; "
                "each reviewer decides once"
            ],
        ),
    ],
    ids=[
        "a review that moves nowhere",
        "a switchback without a reason",
        "a switchback with a blank reason",
        "a promotion with a switchback type",
        "the same evidence name twice",
        "a check without a result",
        "a metric without a value",
        "a document without a link",
        "a reviewer deciding twice",
    ],
)
def test_invalid_reviews(spec: LevelReviewSpec, errors: list[str]) -> None:
    assert errors_for(spec) == errors


def test_every_review_error_is_reported_at_once() -> None:
    spec = review(5, 4, [metric("auc", None), metric("auc", 0.9)], [approve("a"), approve("a")])
    assert errors_for(spec) == [
        "spec.reason: is required when the review moves the technology down",
        "spec.evidence[0].value: is required for a metric",
        "spec.evidence[1].name: duplicates spec.evidence[0] ('auc')",
        "spec.approvals[1].reviewer: 'a' already decided in spec.approvals[0]; "
        "each reviewer decides once",
    ]
