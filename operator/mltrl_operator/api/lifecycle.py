"""Policy parts that keep a level true over time (issue 15): what a new model needs
(modelChange), how long a level's certification lasts (validFor, warnBefore, onExpiry), and
who may grant time-bound exceptions (waivers). Referenced by one field each from
MLTRLPolicySpec and LevelRequirements, so the policy model stays easy to read.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from mltrl_operator.api.common import ApiModel, Level

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(h|m|s))+$"
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]
"""A Go/Kubernetes duration: 2160h, 336h, 90m, 1h30m."""


class ModelChangeAction(StrEnum):
    ALLOW = "allow"
    REVIEW = "review"
    DEMOTE = "demote"


class ModelChangeRule(ApiModel):
    """What a new spec.model needs at some levels. Give `level` (exactly that level) or
    `fromLevel` (that level and every level above). Where several rules apply, across all
    matching policies, the strictest wins: demote over review over allow, and of two
    demotes the lower toLevel. With no rule for a level, a change at or above the serving
    level needs a review and one below it is allowed."""

    level: Level | None = None
    """The one level this rule is for."""
    from_level: Level | None = None
    """The lowest level this rule is for; it covers every level above too."""
    action: ModelChangeAction
    """allow (the new model inherits the level), review (it is not served until a change
    review of the current level is Applied; the last approved model keeps serving), or
    demote (an embedded switchback to toLevel, recorded as such)."""
    to_level: Level | None = None
    """For demote: the level the technology switches back to."""


class OnExpiry(StrEnum):
    WARN = "warn"
    STOP = "stop"
    DEMOTE = "demote"


class WaiverApprovers(ApiModel):
    """People who may approve waivers: a user name or a group membership suffices."""

    users: list[str] = Field(default_factory=list)
    """Authenticated user names (e.g. jane@example.com, system:serviceaccount:ci:approver)."""
    groups: list[str] = Field(default_factory=list)
    """Groups whose members may approve."""


class WaiverPolicy(ApiModel):
    """Time-bound exceptions (MLTRLWaiver) to a policy's requirements."""

    max_duration: Duration | None = None
    """The longest a waiver may run, from its creation to its expiresAt (default 720h, 30
    days; the shortest across matching policies wins)."""
    approvers: list[WaiverApprovers] = Field(default_factory=list)
    """Who may approve a waiver. A waiver counts only once approved by someone named here;
    where several policies match, by someone every one of them names. No approvers: no
    waiver counts."""
