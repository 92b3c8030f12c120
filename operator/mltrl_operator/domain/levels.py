"""The ten MLTRL levels, their names as the paper writes them, and their phases."""

from __future__ import annotations

from mltrl_operator.api.common import MAX_LEVEL, MIN_LEVEL
from mltrl_operator.api.technology import Phase

LEVEL_NAMES: dict[int, str] = {
    0: "First Principles",
    1: "Goal-Oriented Research",
    2: "Proof of Principle (PoP) Development",
    3: "System Development",
    4: "Proof of Concept (PoC) Development",
    5: 'Machine Learning "Capability"',
    6: "Application Development",
    7: "Integrations",
    8: "Flight-ready",
    9: "Deployment",
}


def _check(level: int) -> None:
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(f"MLTRL levels run from {MIN_LEVEL} to {MAX_LEVEL}, not {level}")


def level_name(level: int) -> str:
    _check(level)
    return LEVEL_NAMES[level]


def phase_of(level: int) -> Phase:
    _check(level)
    if level <= 2:
        return Phase.RESEARCH
    if level <= 5:
        return Phase.PROTOTYPING
    if level <= 8:
        return Phase.PRODUCTIZATION
    return Phase.DEPLOYMENT


def describe_level(level: int) -> str:
    """The form messages use, e.g. `level 5 (Machine Learning "Capability")`."""
    return f"level {level} ({level_name(level)})"


# The paper's embedded switchback for a deployed technology that needs new ML work (9 -> 4).
DEFAULT_DEMOTE_LEVEL = 4
