"""Reconcile a LevelReview: evaluate it, and have its technology reconciled with it once.

The level change itself is the technology's history entry naming the review, written by
the technology's plan; everything the review records (appliedAt, its phase, the events)
is derived from that entry, so a crash between any two writes is repaired.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from mltrl_operator import metrics
from mltrl_operator.api.common import ConditionStatus
from mltrl_operator.api.review import LevelReviewSpec, LevelReviewStatus, ReviewPhase
from mltrl_operator.api.technology import MLTechnologySpec, MLTechnologyStatus
from mltrl_operator.api.waiver import WaiverUse
from mltrl_operator.controllers.audit import record_dismissed_approvals
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.technology import as_entered, entering, reconcile_locked
from mltrl_operator.controllers.view import Body, ClusterView
from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.conditions import set_condition
from mltrl_operator.domain.plan import ApprovedReview, promotion_event
from mltrl_operator.domain.policy import EffectivePolicy
from mltrl_operator.domain.reviews import ReviewEvaluation, evaluate_review, technology_facts
from mltrl_operator.domain.waivers import WaiverFacts
from mltrl_operator.k8s.errors import Conflict, NotFound
from mltrl_operator.k8s.events import NORMAL, WARNING
from mltrl_operator.k8s.patches import merge_patch
from mltrl_operator.k8s.resources import REVIEWS

TERMINAL = frozenset({ReviewPhase.APPLIED, ReviewPhase.REJECTED, ReviewPhase.SUPERSEDED})
MAX_ATTEMPTS = 5

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReviewOutcome:
    phase: ReviewPhase
    applied: bool


def _review_status(
    old: LevelReviewStatus,
    evaluation: ReviewEvaluation,
    generation: int,
    now: datetime,
    applied_at: str | None,
    technology_missing: bool,
    applied_waivers: Sequence[WaiverUse] = (),
) -> LevelReviewStatus:
    phase = evaluation.phase
    applied = phase is ReviewPhase.APPLIED
    conditions, _ = set_condition(
        old.conditions,
        type=ct.EVALUATED,
        status=ConditionStatus.TRUE,
        reason=ct.TECHNOLOGY_NOT_FOUND
        if technology_missing and phase is ReviewPhase.PENDING
        else ct.EVALUATED_REASONS[phase],
        message=evaluation.message,
        generation=generation,
        now=now,
    )
    conditions, _ = set_condition(
        conditions,
        type=ct.APPLIED,
        status=applied,
        reason=ct.REVIEW_APPLIED if applied else ct.REVIEW_NOT_APPLIED,
        message=evaluation.message if applied else "",
        generation=generation,
        now=now,
    )
    unmet = list(evaluation.unmet) + [str(error) for error in evaluation.errors]
    return LevelReviewStatus(
        phase=phase,
        unmet=unmet,
        approved_by=list(evaluation.approved_by),
        dismissed_approvals=list(evaluation.dismissed),
        waivers=list(evaluation.waivers) or (list(applied_waivers) if applied else []),
        message=evaluation.message,
        applied_at=applied_at or old.applied_at,
        observed_generation=generation,
        conditions=conditions,
    )


async def reconcile_review(
    ctx: OperatorContext, view: ClusterView, body: Body
) -> ReviewOutcome | None:
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    technology_name = (body.get("spec") or {}).get("technology", "")
    # Everything about one technology, its reviews included, happens under one lock, so a
    # review is never evaluated twice at once or from a snapshot older than our own write.
    async with ctx.locks.hold((namespace, technology_name)):
        current = view.fresh("LevelReview", namespace, name, body)
        if current is None:
            return None
        return await _reconcile_locked(ctx, view, current)


def _applied_waivers(technology: Body | None, review: str) -> list[WaiverUse]:
    """The waivers the technology's history says the review was applied with."""
    history = ((technology or {}).get("status") or {}).get("history") or []
    entry = next((e for e in reversed(history) if e.get("review") == review), None)
    try:
        return [WaiverUse.model_validate(w) for w in (entry or {}).get("waivers") or []]
    except ValidationError:
        return []


def applied_at(technology: Body | None, review: str) -> str | None:
    """When the technology's history took the review's level change: the review's
    appliedAt, read from the decision itself, so a crash between the two writes loses
    nothing."""
    history = ((technology or {}).get("status") or {}).get("history") or []
    return next(
        (entry.get("at") for entry in reversed(history) if entry.get("review") == review), None
    )


async def _reconcile_locked(
    ctx: OperatorContext, view: ClusterView, body: Body
) -> ReviewOutcome | None:
    """Evaluate; ask for "reconcile technology X with review R" when it is Approved; then
    announce (named events) and store the review's status, in that order, so that every
    step a crash interrupts is redone from the technology's stored history."""
    metadata = body["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    try:
        spec = LevelReviewSpec.model_validate(body.get("spec") or {})
        old_status = LevelReviewStatus.model_validate(body.get("status") or {})
    except ValidationError as error:
        logger.error("LevelReview %s/%s cannot be read: %s", namespace, name, error)
        return None
    if old_status.phase in TERMINAL or metadata.get("deletionTimestamp"):
        return None
    try:
        evaluation, technology, announced = await _evaluate_and_apply(
            ctx, view, namespace, name, spec, metadata.get("resourceVersion"),
            metadata.get("uid") or "",
        )
    except _ReviewMoved:
        return None  # its own next event (or none: it is gone) reconciles it afresh
    now = ctx.clock()
    generation = int(metadata.get("generation") or 1)
    when = applied_at(technology, name) if evaluation.phase is ReviewPhase.APPLIED else None
    status = _review_status(old_status, evaluation, generation, now, when, technology is None,
                            _applied_waivers(technology, name) if when else ())
    if old_status.phase != status.phase:
        await _announce(ctx, body, technology, spec, evaluation, generation, announced)
    patch = merge_patch(body.get("status") or {}, status.to_wire())
    if patch:
        # Dismissed approvals go on the technology's record before the status that
        # dismisses them is stored (issue 15): a crash in between redoes the same entry.
        await record_dismissed_approvals(
            ctx, view, namespace, name, spec.technology, old_status.dismissed_approvals,
            status.dismissed_approvals,
        )
        try:
            stored = await ctx.client.patch_status(
                REVIEWS, namespace, name, patch, resource_version=metadata.get("resourceVersion")
            )
        except (NotFound, Conflict):
            return None  # changed or gone: its own next event reconciles it afresh
        ctx.writes.remember(("LevelReview", namespace, name), body, stored)
        if old_status.phase != status.phase:
            # Counted after the conditional write: a redo starts from the stored phase.
            metrics.count_review_outcome(evaluation.phase.value)
    return ReviewOutcome(phase=evaluation.phase, applied=when is not None)


class _ReviewMoved(Exception):
    """The review changed or went away since the snapshot being evaluated."""


async def _confirm_unchanged(
    ctx: OperatorContext, namespace: str, name: str, resource_version: str | None
) -> None:
    """One read before a review moves a technology: a snapshot from a watch that missed an
    edit or a deletion (a resumed HA replica, a watch restarted after 410 Gone) must never
    promote anything."""
    try:
        current = await ctx.client.get(REVIEWS, namespace, name)
    except NotFound:
        raise _ReviewMoved() from None
    if (current.get("metadata") or {}).get("resourceVersion") != resource_version:
        raise _ReviewMoved()


def _evaluate(
    name: str, spec: LevelReviewSpec, technology: Body | None, policy: EffectivePolicy,
    waivers: Sequence[WaiverFacts], now: datetime,
) -> ReviewEvaluation:
    facts = None
    if technology is not None:
        facts = technology_facts(
            spec.technology,
            MLTechnologySpec.model_validate(technology.get("spec") or {}),
            MLTechnologyStatus.model_validate(technology.get("status") or {}),
            waivers=waivers, now=now,
        )
    return evaluate_review(name, spec, facts, policy)


async def _evaluate_and_apply(
    ctx: OperatorContext,
    view: ClusterView,
    namespace: str,
    name: str,
    spec: LevelReviewSpec,
    resource_version: str | None,
    review_uid: str,
) -> tuple[ReviewEvaluation, Body | None, bool]:
    """The evaluation, the technology as stored after it, and whether the promotion's
    event already went out (with the serving it started)."""
    technology = view.technology(namespace, spec.technology)
    policy = view.policy_for(namespace)
    announced = False
    for _ in range(MAX_ATTEMPTS):
        waivers = view.waiver_facts(namespace, spec.technology)
        if technology is not None and entering(technology):
            # Not entered yet: judged against its entry as that would be stored. Approved,
            # it enters and moves in one status write (the plan gives the entry first:
            # issue 17, half the writes of a start-up); otherwise the entry is stored
            # alone and the review judged again against what was stored.
            entered = as_entered(ctx, view, technology)
            evaluation = None if entered is None else _evaluate(
                name, spec, entered, policy, waivers, ctx.clock())
            if evaluation is None or evaluation.phase is not ReviewPhase.APPROVED:
                await reconcile_locked(ctx, view, namespace, spec.technology, technology)
                technology = view.technology(namespace, spec.technology)
                continue
        else:
            evaluation = _evaluate(name, spec, technology, policy, waivers, ctx.clock())
        if evaluation.phase is not ReviewPhase.APPROVED or technology is None:
            return evaluation, technology, announced
        # The review's re-read runs while the technology's plan is computed (issue 17:
        # the promotion's latency); the plan's writes wait for it (technology.apply).
        confirmed = asyncio.ensure_future(
            _confirm_unchanged(ctx, namespace, name, resource_version)
        )
        await asyncio.sleep(0)  # the read goes out now, not when the plan first waits
        try:
            outcome = await reconcile_locked(
                ctx, view, namespace, spec.technology, technology,
                review=ApprovedReview(name, spec, evaluation, review_uid), confirmed=confirmed,
            )
        except BaseException:
            if not confirmed.done():
                confirmed.cancel()
            elif not confirmed.cancelled():
                confirmed.exception()  # seen: the error that stopped the apply is raised
            raise
        await confirmed  # also when nothing was planned: a review that moved stops here
        announced = announced or bool(outcome and outcome.promotion_announced)
        # Evaluated again against what is stored now: Applied once the history has it.
        technology = view.technology(namespace, spec.technology)
    raise RuntimeError(f"MLTechnology {namespace}/{spec.technology} kept changing")


async def _announce(
    ctx: OperatorContext,
    review: Body,
    technology: Body | None,
    spec: LevelReviewSpec,
    evaluation: ReviewEvaluation,
    generation: int,
    promotion_announced: bool = False,
) -> None:
    """Named events: posted again after a crash, they are still one event each."""
    phase = evaluation.phase
    now = ctx.clock()
    metadata = review["metadata"]
    if phase is ReviewPhase.APPLIED:
        # One event per transition (issue 17): a review applied is the technology's level
        # moving, told once on the technology (`kubectl describe mltech` is where its
        # story is read), naming the review; the review itself shows it in its Applied
        # condition and appliedAt. Unless the technology's apply already posted it with
        # the serving it started, posted here (again after a crash: the same name).
        # A change or re-certification review keeps the level: the technology's plan
        # tells it (ModelChangeApproved, Recertified), not as a promotion.
        if technology is not None and not promotion_announced and (
            spec.to_level != spec.from_level
        ):
            event = promotion_event(
                ApprovedReview(metadata["name"], spec, evaluation, metadata.get("uid") or "")
            )
            await ctx.events.record(
                technology, type=event.type, reason=event.reason, message=event.message,
                now=now, key=event.key,
            )
        return
    event_type = WARNING if phase in (ReviewPhase.REJECTED, ReviewPhase.INVALID) else NORMAL
    # Rejected is final: once per review, whatever later writes do to its generation (a
    # spec write that lands on a decided review must not announce it again).
    final = phase is ReviewPhase.REJECTED
    await ctx.events.record(
        review, type=event_type, reason=f"Review{phase.value}", message=evaluation.message,
        now=now, key=phase.value if final else f"{phase.value}/{generation}",
    )


async def reconcile_or_retry(ctx: OperatorContext, view: ClusterView, body: Body) -> None:
    """Reconcile, and on failure try again later with backoff, from the then-current cache."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    technology = (body.get("spec") or {}).get("technology", "")
    key = ("LevelReview", namespace, name)
    try:
        await reconcile_review(ctx, view, body)
    except Exception:  # one broken review must not starve the others
        metrics.count_reconcile_error("LevelReview")
        logger.exception(
            "reconciling LevelReview %s/%s failed; retrying in %.0fs",
            namespace, name, ctx.retries.delay_for(key),
        )

        async def again() -> None:
            for review in view.reviews_of(namespace, technology):
                if review["metadata"]["name"] == name:
                    await reconcile_or_retry(ctx, view, review)

        ctx.retries.schedule(key, again)
    else:
        ctx.retries.succeeded(key)


async def reconcile_reviews_of(
    ctx: OperatorContext, view: ClusterView, namespace: str, technology: str
) -> None:
    for review in view.reviews_of(namespace, technology):
        await reconcile_or_retry(ctx, view, review)
