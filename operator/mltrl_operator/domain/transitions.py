"""History records: MLTRL asks that every promotion and switchback be recorded with
from, to, type, reason and what triggered it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from mltrl_operator.api.review import LevelReviewSpec, ReviewPhase, ReviewType
from mltrl_operator.api.technology import LevelTransition, SwitchbackType, TransitionKind
from mltrl_operator.domain.levels import describe_level
from mltrl_operator.domain.reviews import ReviewEvaluation
from mltrl_operator.domain.timefmt import rfc3339

OPERATOR = "mltrl-operator"

T = TypeVar("T")


def entry_transition(entry_level: int, now: datetime) -> LevelTransition:
    return LevelTransition(
        to=entry_level,
        kind=TransitionKind.ENTRY,
        reason=f"entered at {describe_level(entry_level)}",
        by=[OPERATOR],
        at=rfc3339(now),
    )


def review_transition(
    review_name: str, spec: LevelReviewSpec, evaluation: ReviewEvaluation, now: datetime
) -> LevelTransition:
    if evaluation.phase is not ReviewPhase.APPROVED:
        # Recording an unapproved review would put a level change in the audit trail that
        # no gate allowed; refuse loudly rather than write it.
        raise ValueError(f"review {review_name} is {evaluation.phase}, not Approved")
    promotion = spec.to_level > spec.from_level
    kind = TransitionKind.PROMOTION if promotion else TransitionKind.SWITCHBACK
    reason = f"promoted by review {review_name}"
    if spec.type is ReviewType.ENTRY:
        kind = TransitionKind.ENTRY
    elif spec.type is ReviewType.CHANGE:
        kind = TransitionKind.CHANGE
        model = spec.model.version if spec.model else "the pending model"
        reason = f"model {model} approved at level {spec.to_level} by change review {review_name}"
    elif spec.type is ReviewType.RECERTIFY:
        kind = TransitionKind.RECERTIFICATION
        reason = f"level {spec.to_level} re-certified by review {review_name}"
    moves_down = spec.to_level < spec.from_level
    return LevelTransition(
        from_level=spec.from_level,
        to=spec.to_level,
        kind=kind,
        switchback_type=(spec.switchback_type or SwitchbackType.REVIEW) if moves_down else None,
        reason=spec.reason or reason,
        review=review_name,
        by=list(evaluation.approved_by),
        at=rfc3339(now),
        debrief=spec.debrief.model_copy() if spec.debrief else None,
        waivers=[w.model_copy() for w in evaluation.waivers] or None,
    )


def alert_reference(alert_name: str, fingerprint: str) -> str:
    return f"{alert_name}/{fingerprint}"


def alert_switchback(
    from_level: int, to_level: int, alert_name: str, fingerprint: str, now: datetime
) -> LevelTransition:
    return LevelTransition(
        from_level=from_level,
        to=to_level,
        kind=TransitionKind.SWITCHBACK,
        switchback_type=SwitchbackType.EMBEDDED,
        reason=f"alert {alert_name} switched the technology back from level {from_level} "
        f"to {to_level}",
        alert=alert_reference(alert_name, fingerprint),
        by=[OPERATOR],
        at=rfc3339(now),
    )


def model_change_switchback(
    from_level: int, to_level: int, reason: str, now: datetime
) -> LevelTransition:
    """Policy modelChange demote: a new spec.model is an embedded switchback."""
    return LevelTransition(
        from_level=from_level, to=to_level, kind=TransitionKind.SWITCHBACK,
        switchback_type=SwitchbackType.EMBEDDED, reason=reason, by=[OPERATOR], at=rfc3339(now),
    )


def lapse_transition(level: int, to_level: int, reason: str, at: datetime) -> LevelTransition:
    """A level's certification ran out at `at` (the instant, not when the operator
    noticed); `to_level` is below `level` when the policy's onExpiry demoted."""
    return LevelTransition(
        from_level=level, to=to_level, kind=TransitionKind.LAPSE,
        switchback_type=SwitchbackType.EMBEDDED if to_level < level else None,
        reason=reason, by=[OPERATOR], at=rfc3339(at),
    )


def append_bounded(items: Sequence[T], item: T, limit: int) -> list[T]:
    """Append and drop the oldest entries beyond `limit` (the CRD caps these lists)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    return [*items, item][-limit:]
