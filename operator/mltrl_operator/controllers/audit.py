"""Appends to the audit record, from the points where the operator stores a transition.

`record_status_change` is the one call a controller makes after it stored a technology's
status: it works out from the status before and after what the record must gain (entries,
promotions, switchbacks, rollbacks) and appends it. An append that fails is retried in the
background with backoff; entry ids are deterministic, so a retry never doubles an entry.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import ValidationError

from mltrl_operator.api.audit import AuditEntry
from mltrl_operator.api.review import DismissedApproval, LevelReviewSpec
from mltrl_operator.api.technology import MLTechnologySpec, MLTechnologyStatus
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.view import Body, ClusterView
from mltrl_operator.domain.audit import (
    deletion_entry,
    dismissed_approvals_entry,
    recent_drafts,
    status_change_drafts,
)
from mltrl_operator.domain.timefmt import rfc3339
from mltrl_operator.k8s.audit_store import append_entry, open_record

logger = logging.getLogger(__name__)


def _reviews(view: ClusterView, namespace: str, technology: str
             ) -> dict[str, tuple[LevelReviewSpec, str | None]]:
    found: dict[str, tuple[LevelReviewSpec, str | None]] = {}
    for body in view.reviews_of(namespace, technology):
        raw = body.get("spec") or {}
        try:
            spec = LevelReviewSpec.model_validate(raw)
        except ValidationError:
            continue
        review_type = raw.get("type")  # the integrity branch adds spec.type
        found[body["metadata"]["name"]] = (
            spec, review_type if isinstance(review_type, str) else None
        )
    return found


async def record_status_change(
    ctx: OperatorContext,
    view: ClusterView,
    stored: Body,
    before: MLTechnologyStatus,
    after: MLTechnologyStatus,
) -> None:
    metadata = stored["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    try:
        model = MLTechnologySpec.model_validate(stored.get("spec") or {}).model
    except ValidationError:
        model = None
    drafts = status_change_drafts(
        before_history=before.history,
        after_history=after.history,
        before_rollback=before.serving.rollback if before.serving else None,
        after_rollback=after.serving.rollback if after.serving else None,
        technology_uid=metadata.get("uid"),
        model=model,
        level=after.level,
        reviews=_reviews(view, namespace, name) if after.history != before.history else {},
        before_serving_waiver=before.serving.waiver if before.serving else None,
        after_serving_waiver=after.serving.waiver if after.serving else None,
        at=rfc3339(ctx.clock()),
    )
    if len(drafts) > 1 and await _opened_with(ctx, namespace, name, drafts):
        return
    for draft in drafts:
        await append_or_retry(ctx, namespace, name, draft)


async def _opened_with(
    ctx: OperatorContext, namespace: str, name: str, drafts: list[AuditEntry]
) -> bool:
    """A technology entering and moving in one status write opens its record with both
    entries in one create; any failure leaves it to the appends, one by one, with retries
    (each append finds an entry already there by its id)."""
    try:
        return await open_record(
            ctx.client, namespace, name, drafts, recent=ctx.audit_records
        ) is not None
    except Exception:  # the appends below retry it, and log what fails
        logger.debug("opening the audit record of %s/%s in one write failed", namespace, name,
                     exc_info=True)
        return False


async def record_dismissed_approvals(
    ctx: OperatorContext, view: ClusterView, namespace: str, review: str, technology: str,
    before: Sequence[DismissedApproval], after: Sequence[DismissedApproval],
) -> None:
    """Approvals a review's status is about to dismiss (content changed after they were
    given, an owner's, an unbound role's): one entry naming each and why, appended before
    that status is written, so that no crash between the two loses it. Raises when the
    append fails: the review's status then waits for the record (its reconcile retries)."""
    known = {(d.reviewer, d.role, d.reason) for d in before}
    new = [d for d in after if (d.reviewer, d.role, d.reason) not in known]
    if not new:
        return
    body = view.technology(namespace, technology) or {}
    level = (body.get("status") or {}).get("level")
    draft = dismissed_approvals_entry(
        review_name=review, technology_uid=(body.get("metadata") or {}).get("uid"),
        at=rfc3339(ctx.clock()), dismissed=[(d.reviewer, d.reason) for d in new],
        level=level if isinstance(level, int) else None,
    )
    await append_entry(ctx.client, namespace, technology, draft, recent=ctx.audit_records)


async def record_deletion(ctx: OperatorContext, body: Body) -> None:
    """The technology object is gone (its DELETED event): say so in its record."""
    metadata = body.get("metadata") or {}
    level = (body.get("status") or {}).get("level")
    try:
        model = MLTechnologySpec.model_validate(body.get("spec") or {}).model
    except ValidationError:
        model = None
    draft = deletion_entry(
        technology_uid=metadata.get("uid"), level=level if isinstance(level, int) else None,
        at=rfc3339(ctx.clock()), model=model,
    )
    await append_or_retry(ctx, metadata["namespace"], metadata["name"], draft)


CATCH_UP_WINDOW = timedelta(minutes=15)
"""How far back `catch_up` looks at start-up. The gap it closes, between storing a
transition and appending it, lasts milliseconds; fifteen minutes also covers an operator
that was stopped, and costs one read of the record per technology that moved meanwhile."""


async def catch_up(ctx: OperatorContext, view: ClusterView) -> None:
    """At start-up: append what a previous run stored but may not have recorded."""
    since = ctx.clock() - CATCH_UP_WINDOW
    for namespace, name in view.technology_keys():
        for draft in _recent(view, namespace, name, since):
            await append_or_retry(ctx, namespace, name, draft)


def _recent(view: ClusterView, namespace: str, name: str, since: datetime) -> list[AuditEntry]:
    body = view.technology(namespace, name)
    if body is None:
        return []
    try:
        spec = MLTechnologySpec.model_validate(body.get("spec") or {})
        status = MLTechnologyStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return []

    def drafts(reviews: dict[str, tuple[LevelReviewSpec, str | None]]) -> list[AuditEntry]:
        return recent_drafts(
            history=status.history,
            rollback=status.serving.rollback if status.serving else None,
            since=since, technology_uid=(body.get("metadata") or {}).get("uid"),
            model=spec.model, level=status.level, reviews=reviews,
            serving_waiver=status.serving.waiver if status.serving else None,
        )

    # Reviews are read only for the few technologies that moved recently.
    return drafts({}) and drafts(_reviews(view, namespace, name))


async def append_or_retry(
    ctx: OperatorContext, namespace: str, technology: str, draft: AuditEntry
) -> None:
    key = ("MLTRLAuditRecord", namespace, technology, draft.id)
    try:
        await append_entry(ctx.client, namespace, technology, draft, recent=ctx.audit_records)
    except Exception:  # the transition is stored; its record entry must follow, later
        logger.exception(
            "appending %s %s to the audit record of %s/%s failed; retrying in %.0fs",
            draft.kind, draft.id, namespace, technology, ctx.retries.delay_for(key),
        )
        ctx.retries.schedule(key, lambda: append_or_retry(ctx, namespace, technology, draft))
    else:
        ctx.retries.succeeded(key)
