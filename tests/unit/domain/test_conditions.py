from __future__ import annotations

import re

import pytest

from mltrl_operator.api.common import Condition, ConditionStatus
from mltrl_operator.api.review import ReviewPhase
from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.conditions import get_condition, set_condition

from .builders import LATER, LATER_TEXT, NOW, NOW_TEXT


def ready(
    status: ConditionStatus = ConditionStatus.FALSE,
    reason: str = "BelowTargetLevel",
    message: str = "at level 3",
    generation: int | None = 1,
) -> Condition:
    return Condition(
        type="Ready",
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=NOW_TEXT,
    )


def serving() -> Condition:
    return Condition(
        type="Serving",
        status=ConditionStatus.FALSE,
        reason="NoModel",
        last_transition_time=NOW_TEXT,
    )


BASE = {
    "type": "Ready",
    "status": False,
    "reason": "BelowTargetLevel",
    "message": "at level 3",
    "generation": 1,
}


@pytest.mark.parametrize(
    ("change", "changed", "transition_time"),
    [
        ({}, False, NOW_TEXT),
        ({"status": ConditionStatus.FALSE}, False, NOW_TEXT),
        ({"status": True}, True, LATER_TEXT),
        ({"status": ConditionStatus.UNKNOWN}, True, LATER_TEXT),
        ({"reason": "ValidationFailed"}, True, NOW_TEXT),
        ({"message": "at level 4"}, True, NOW_TEXT),
        ({"generation": 2}, True, NOW_TEXT),
        ({"generation": None}, True, NOW_TEXT),
    ],
    ids=[
        "the same values change nothing",
        "False given as the enum equals False given as a bool",
        "a new status moves lastTransitionTime",
        "Unknown is a new status too",
        "a new reason is a change but keeps the transition time",
        "a new message is a change but keeps the transition time",
        "a new observedGeneration is a change but keeps the transition time",
        "dropping observedGeneration is a change",
    ],
)
def test_setting_an_existing_condition(
    change: dict[str, object], changed: bool, transition_time: str
) -> None:
    before = [ready(), serving()]
    after, did_change = set_condition(before, **{**BASE, **change, "now": LATER})  # type: ignore[arg-type]
    assert did_change is changed
    assert [c.type for c in after] == ["Ready", "Serving"]
    assert after[0].last_transition_time == transition_time
    assert after[1] == serving()


def test_a_new_condition_is_appended_with_the_time_of_now() -> None:
    after, changed = set_condition(
        [serving()],
        type="Ready",
        status=True,
        reason="AtTargetLevel",
        message="done",
        generation=3,
        now=NOW,
    )
    assert changed
    assert after == [
        serving(),
        Condition(
            type="Ready",
            status=ConditionStatus.TRUE,
            reason="AtTargetLevel",
            message="done",
            observed_generation=3,
            last_transition_time=NOW_TEXT,
        ),
    ]


def test_setting_a_condition_leaves_the_input_list_untouched() -> None:
    before = [ready()]
    set_condition(before, **{**BASE, "status": True, "now": LATER})  # type: ignore[arg-type]
    assert before == [ready()]


@pytest.mark.parametrize(
    ("wanted", "found"),
    [("Serving", serving()), ("Ready", ready()), ("Degraded", None)],
    ids=["finds the second", "finds the first", "absent gives None"],
)
def test_get_condition_by_type(wanted: str, found: Condition | None) -> None:
    assert get_condition([ready(), serving()], wanted) == found


def test_every_reason_and_type_is_camel_case_and_distinct() -> None:
    names = [*ct.TECHNOLOGY_CONDITION_TYPES, *ct.REVIEW_CONDITION_TYPES, *ct.REASONS]
    assert all(re.fullmatch(r"(?:[A-Z][a-z]+)+", n) for n in names), names
    assert len(set(ct.REASONS)) == len(ct.REASONS)


def test_the_documented_technology_and_review_condition_types() -> None:
    assert ct.TECHNOLOGY_CONDITION_TYPES == (
        "Ready",
        "ServingAllowed",
        "Serving",
        "Degraded",
        "ComponentsReady",
        "EntryApproved",
        "ModelApproved",
        "Certified",
    )
    assert ct.REVIEW_CONDITION_TYPES == ("Evaluated", "Applied")


def test_every_review_phase_has_an_evaluated_reason_listed_in_the_docstring() -> None:
    assert set(ct.EVALUATED_REASONS) == set(ReviewPhase)
    doc = ct.__doc__ or ""
    assert all(f"| {reason} " in doc for reason in ct.REASONS)
