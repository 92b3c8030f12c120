"""What a technology's next level still needs, in the words of `status.unmet`.

One decision, many callers: the answer comes from evaluate_review, the function the
reconciler evaluates LevelReviews with. With an open review to the next level, it is that
review's unmet list; without one, it is what an empty review to the next level would lack,
so `kubectl mltrl ls`, `status`, the dashboard and a review skeleton all say what the
operator will say once the review exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mltrl_operator.api.common import MAX_LEVEL
from mltrl_operator.api.review import Evidence, LevelReviewSpec, ReviewPhase, ReviewType
from mltrl_operator.api.technology import MLTechnologySpec, MLTechnologyStatus
from mltrl_operator.api.waiver import WaiverUse
from mltrl_operator.domain.policy import EffectivePolicy, LevelRule
from mltrl_operator.domain.reviews import (
    ReviewEvaluation,
    evaluate_review,
    promotion_rule,
    technology_facts,
)
from mltrl_operator.domain.waivers import WaiverFacts

OPEN_PHASES = frozenset({ReviewPhase.PENDING, ReviewPhase.APPROVED})


@dataclass(frozen=True)
class NamedReview:
    name: str
    spec: LevelReviewSpec


@dataclass(frozen=True)
class NextStep:
    """The next level and everything still missing for it."""

    level: int
    review: str | None
    """The open review to that level the answer comes from; None when there is none."""
    unmet: tuple[str, ...]
    phase: ReviewPhase
    waived: tuple[WaiverUse, ...] = ()
    """Waivers in force that take requirements off that level, and what each takes off."""


def current_level(spec: MLTechnologySpec, status: MLTechnologyStatus | None) -> int:
    return spec.entry_level if status is None or status.level is None else status.level


def skeleton_spec(technology: str, from_level: int, to_level: int) -> LevelReviewSpec:
    return LevelReviewSpec(technology=technology, from_level=from_level, to_level=to_level)


def evaluate(
    name: str,
    spec: LevelReviewSpec,
    technology: str,
    tech_spec: MLTechnologySpec | None,
    tech_status: MLTechnologyStatus | None,
    policy: EffectivePolicy,
    waivers: Sequence[WaiverFacts] = (),
    now: datetime | None = None,
) -> ReviewEvaluation:
    """evaluate_review with the facts gathered the way the reconciler gathers them: the
    technology's waivers judged at `now` (none count without it)."""
    facts = None
    if tech_spec is not None:
        facts = technology_facts(technology, tech_spec, tech_status, waivers=waivers, now=now)
    return evaluate_review(name, spec, facts, policy)


def next_step(
    technology: str,
    spec: MLTechnologySpec,
    status: MLTechnologyStatus | None,
    reviews: Sequence[NamedReview],
    policy: EffectivePolicy,
    waivers: Sequence[WaiverFacts] = (),
    now: datetime | None = None,
) -> NextStep | None:
    """None when the technology is at its target level (nothing further to reach)."""
    level = current_level(spec, status)
    if level >= MAX_LEVEL or level >= spec.target_level:
        return None
    wanted = level + 1
    candidates: list[tuple[NamedReview, ReviewEvaluation]] = []
    for review in reviews:
        if review.spec.technology != technology or review.spec.from_level != level:
            continue
        if review.spec.to_level <= level:
            continue
        evaluation = evaluate(review.name, review.spec, technology, spec, status, policy,
                              waivers, now)
        if evaluation.phase in OPEN_PHASES:
            candidates.append((review, evaluation))
    if candidates:
        # The review closest to done speaks for the technology.
        review, evaluation = min(candidates, key=lambda c: (len(c[1].unmet), c[0].name))
        return NextStep(review.spec.to_level, review.name, evaluation.unmet, evaluation.phase,
                        evaluation.waivers)
    evaluation = evaluate("", skeleton_spec(technology, level, wanted), technology, spec,
                          status, policy, waivers, now)
    return NextStep(wanted, None, evaluation.unmet, evaluation.phase, evaluation.waivers)


def required_rule(technology: str, from_level: int, to_level: int,
                  policy: EffectivePolicy) -> LevelRule:
    spec = skeleton_spec(technology, from_level, to_level)
    if from_level == to_level:  # a change or re-certification meets its level's own rule
        spec = spec.model_copy(update={"type": ReviewType.RECERTIFY})
    return promotion_rule(spec, policy)


def evidence_entry(rule: LevelRule, name: str) -> Evidence | None:
    """The kind a piece of evidence must have, from the policy's rule; None when the rule
    does not ask for it."""
    for required in rule.evidence:
        if required.name == name:
            return Evidence(name=name, kind=required.kind, description=required.description)
    return None


@dataclass(frozen=True)
class PublishedReview:
    """An open review as the operator evaluated it (its status)."""

    name: str
    from_level: int
    to_level: int
    unmet: tuple[str, ...]


def published_step(
    spec: MLTechnologySpec,
    status: MLTechnologyStatus | None,
    reviews: Sequence[PublishedReview],
) -> NextStep | None:
    """The next step from what the operator published, for readers who may not read the
    policy: an open review's status.unmet, else status.nextLevel's requirements. Both were
    computed by the operator from evaluate_review and the policy's rule."""
    level = current_level(spec, status)
    if level >= MAX_LEVEL or level >= spec.target_level:
        return None
    open_ = [r for r in reviews if r.from_level == level and r.to_level > level]
    if open_:
        review = min(open_, key=lambda r: (len(r.unmet), r.name))
        return NextStep(review.to_level, review.name, review.unmet, ReviewPhase.PENDING)
    if status is None or status.next_level is None:
        return NextStep(level + 1, None, (), ReviewPhase.PENDING)
    return NextStep(status.next_level.level, None, tuple(status.next_level.requirements),
                    ReviewPhase.PENDING)
