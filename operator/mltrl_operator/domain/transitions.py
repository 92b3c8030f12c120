"""History records: MLTRL asks that every promotion and switchback be recorded with
from, to, type, reason and what triggered it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from mltrl_operator.api.review import LevelReviewSpec, ReviewPhase, ReviewType
from mltrl_operator.api.technology import (
    HISTORY_LIMIT,
    LevelTransition,
    SwitchbackType,
    TransitionKind,
)
from mltrl_operator.domain.levels import describe_level
from mltrl_operator.domain.reviews import ReviewEvaluation
from mltrl_operator.domain.timefmt import rfc3339

OPERATOR = "mltrl-operator"

# Transitions after which a level holds for its policy's validFor (issue 15).
CERTIFYING_KINDS = frozenset({
    TransitionKind.ENTRY, TransitionKind.PROMOTION, TransitionKind.CHANGE,
    TransitionKind.RECERTIFICATION,
})

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


def certifies(transition: LevelTransition, level: int) -> bool:
    """Whether `transition` starts `level`'s certification period: an entry, promotion,
    change or re-certification to it, or any move down to it (a switchback, a lapse that
    demoted: coming down starts the lower level's period afresh). A lapse that kept the
    level renews nothing."""
    return transition.to == level and (
        transition.kind in CERTIFYING_KINDS
        or (transition.from_level is not None and transition.from_level > transition.to)
    )


def append_history(
    history: Sequence[LevelTransition], transition: LevelTransition
) -> list[LevelTransition]:
    """`status.history` with `transition` appended, within the CRD's HISTORY_LIMIT: the
    oldest entries go, except the one that certified the level now held. validFor counts
    from it (domain.lifecycle.certified_at); dropped, a level with many later entries
    (lapses that kept it) would look never reviewed and lapse at once. The audit record
    keeps every entry."""
    items = [*history, transition]
    excess = len(items) - HISTORY_LIMIT
    if excess <= 0:
        return items
    certifying = [i for i, t in enumerate(items) if certifies(t, transition.to)]
    kept = certifying[-1] if certifying else None
    dropped = {i for i in range(len(items)) if i != kept}
    dropped = set(sorted(dropped)[:excess])
    return [t for i, t in enumerate(items) if i not in dropped]
