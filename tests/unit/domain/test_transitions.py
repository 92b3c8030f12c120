from __future__ import annotations

import pytest

from mltrl_operator.api.review import ReviewPhase
from mltrl_operator.api.technology import Debrief, SwitchbackType
from mltrl_operator.domain.reviews import ReviewEvaluation
from mltrl_operator.domain.transitions import (
    alert_switchback,
    append_bounded,
    entry_transition,
    review_transition,
)

from .builders import NOW, NOW_TEXT, review


def approved(*by: str, promotion: bool = True) -> ReviewEvaluation:
    return ReviewEvaluation(ReviewPhase.APPROVED, (), by, "ok", (), promotion)


def test_the_entry_record() -> None:
    assert entry_transition(3, NOW).to_wire() == {
        "to": 3,
        "kind": "entry",
        "reason": "entered at level 3 (System Development)",
        "by": ["mltrl-operator"],
        "at": NOW_TEXT,
    }


def test_a_promotion_record_copies_approvers_and_debrief() -> None:
    debrief = Debrief(accomplished="PoC on real data, by bob", technical_debt="none")
    spec = review(4, 5, debrief=debrief)
    record = review_transition("fraud-to-5", spec, approved("bob", "carol"), NOW)
    assert record.to_wire() == {
        "from": 4,
        "to": 5,
        "kind": "promotion",
        "reason": "promoted by review fraud-to-5",
        "review": "fraud-to-5",
        "by": ["bob", "carol"],
        "at": NOW_TEXT,
        "debrief": {"accomplished": "PoC on real data, by bob", "technicalDebt": "none"},
    }
    debrief.learned = "edited later"
    assert record.debrief is not None and record.debrief.learned is None


@pytest.mark.parametrize(
    ("given", "recorded"),
    [
        (None, SwitchbackType.REVIEW),
        (SwitchbackType.DISCOVERY, SwitchbackType.DISCOVERY),
        (SwitchbackType.EMBEDDED, SwitchbackType.EMBEDDED),
    ],
    ids=["a review switchback by default", "a discovery switchback", "an embedded switchback"],
)
def test_a_switchback_record(given: SwitchbackType | None, recorded: SwitchbackType) -> None:
    spec = review(5, 4, reason="leak found", switchback_type=given)
    record = review_transition("back", spec, approved("bob", promotion=False), NOW)
    assert (record.kind, record.switchback_type, record.reason, record.from_level, record.to) == (
        "switchback",
        recorded,
        "leak found",
        5,
        4,
    )


@pytest.mark.parametrize(
    "phase", [p for p in ReviewPhase if p is not ReviewPhase.APPROVED], ids=lambda p: f"{p}"
)
def test_only_an_approved_review_is_recorded(phase: ReviewPhase) -> None:
    evaluation = ReviewEvaluation(phase, (), (), "", (), True)
    with pytest.raises(ValueError, match=f"review r1 is {phase}, not Approved"):
        review_transition("r1", review(4, 5), evaluation, NOW)


def test_an_alert_switchback_record() -> None:
    assert alert_switchback(9, 4, "ModelDrift", "a1b2", NOW).to_wire() == {
        "from": 9,
        "to": 4,
        "kind": "switchback",
        "switchbackType": "embedded",
        "reason": "alert ModelDrift switched the technology back from level 9 to 4",
        "alert": "ModelDrift/a1b2",
        "by": ["mltrl-operator"],
        "at": NOW_TEXT,
    }


@pytest.mark.parametrize(
    ("items", "limit", "expected"),
    [
        ([], 3, [9]),
        ([1, 2], 3, [1, 2, 9]),
        ([1, 2, 3], 3, [2, 3, 9]),
        ([1, 2, 3, 4, 5], 3, [4, 5, 9]),
        ([1], 1, [9]),
    ],
    ids=[
        "into an empty list",
        "below the limit nothing is dropped",
        "at the limit the oldest is dropped",
        "an over-long list is cut to the limit",
        "a limit of one keeps only the newest",
    ],
)
def test_append_bounded(items: list[int], limit: int, expected: list[int]) -> None:
    assert append_bounded(items, 9, limit) == expected


def test_append_bounded_refuses_a_limit_below_one() -> None:
    with pytest.raises(ValueError, match="limit must be at least 1, not 0"):
        append_bounded([1], 2, 0)
