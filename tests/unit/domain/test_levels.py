from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from mltrl_operator.api.technology import Phase
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.levels import LEVEL_NAMES, describe_level, level_name, phase_of
from mltrl_operator.domain.timefmt import rfc3339

from .builders import NOW


@pytest.mark.parametrize(
    ("level", "name", "phase"),
    [
        (0, "First Principles", Phase.RESEARCH),
        (1, "Goal-Oriented Research", Phase.RESEARCH),
        (2, "Proof of Principle (PoP) Development", Phase.RESEARCH),
        (3, "System Development", Phase.PROTOTYPING),
        (4, "Proof of Concept (PoC) Development", Phase.PROTOTYPING),
        (5, 'Machine Learning "Capability"', Phase.PROTOTYPING),
        (6, "Application Development", Phase.PRODUCTIZATION),
        (7, "Integrations", Phase.PRODUCTIZATION),
        (8, "Flight-ready", Phase.PRODUCTIZATION),
        (9, "Deployment", Phase.DEPLOYMENT),
    ],
    ids=lambda v: str(v),
)
def test_each_level_has_the_papers_name_and_phase(level: int, name: str, phase: Phase) -> None:
    assert LEVEL_NAMES[level] == name
    assert level_name(level) == name
    assert phase_of(level) is phase


def test_there_are_exactly_ten_levels() -> None:
    assert sorted(LEVEL_NAMES) == list(range(10))


@pytest.mark.parametrize("level", [-1, 10], ids=["below zero", "above nine"])
@pytest.mark.parametrize("function", [level_name, phase_of], ids=["level_name", "phase_of"])
def test_a_level_outside_zero_to_nine_is_refused(
    function: Callable[[int], object], level: int
) -> None:
    with pytest.raises(ValueError, match=f"MLTRL levels run from 0 to 9, not {level}"):
        function(level)


def test_describe_level_names_number_and_name() -> None:
    assert describe_level(5) == 'level 5 (Machine Learning "Capability")'


def test_a_field_error_reads_path_colon_message() -> None:
    assert str(FieldError("spec.targetLevel", "must be at least 3")) == (
        "spec.targetLevel: must be at least 3"
    )


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (NOW, "2026-11-22T12:00:00Z"),
        (
            datetime(2026, 11, 22, 13, 0, 30, 123456, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-22T12:00:30Z",
        ),
        (datetime(2026, 11, 22, 12, 0, 0), "2026-11-22T12:00:00Z"),
    ],
    ids=["utc stays utc", "other zones become utc without fractions", "naive is taken as utc"],
)
def test_timestamps_are_rfc3339_utc_seconds(moment: datetime, text: str) -> None:
    assert rfc3339(moment) == text
