"""Reconcile an MLTRLWaiver: whether it applies now, in its status, re-decided at its
expiry by a timer. The decision is `domain.waivers.waiver_applies`, the same one the
webhooks, the reviews and the serving gate ask.

What a waiver allowed is decided again whenever it may have changed: on every change of
the waiver (created, approved, edited, deleted), and at its expiresAt by the timer, the
technology it names and that technology's open reviews are reconciled, so a serving gate
it lowered closes at that instant (as the policy's onDemotion says) and a review it let
through goes back to Pending."""

from __future__ import annotations

import logging
from datetime import datetime

from pydantic import ValidationError

from mltrl_operator import metrics
from mltrl_operator.api.waiver import MLTRLWaiverSpec, MLTRLWaiverStatus
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.governance import govern_inference_service
from mltrl_operator.controllers.review import reconcile_reviews_of
from mltrl_operator.controllers.technology import reconcile_or_retry
from mltrl_operator.controllers.view import Body, ClusterView
from mltrl_operator.domain.durations import parse_instant
from mltrl_operator.domain.owners import stored_owners
from mltrl_operator.domain.waivers import (
    REASON_TECHNOLOGY_NOT_FOUND,
    WaiverDecision,
    waiver_applies,
    waiver_status,
)
from mltrl_operator.k8s.errors import NotFound
from mltrl_operator.k8s.patches import merge_patch
from mltrl_operator.k8s.resources import WAIVERS

logger = logging.getLogger(__name__)


def decide(view: ClusterView, body: Body, now: datetime) -> WaiverDecision:
    metadata = body["metadata"]
    namespace = metadata["namespace"]
    spec = MLTRLWaiverSpec.model_validate({"expiresAt": "", **(body.get("spec") or {})})
    technology = view.technology(namespace, spec.technology)
    if technology is None:
        return WaiverDecision(False, f"no MLTechnology {spec.technology} in {namespace}",
                              code=REASON_TECHNOLOGY_NOT_FOUND)
    try:
        created_at = parse_instant(str(metadata.get("creationTimestamp")))
    except ValueError:
        created_at = now
    policy = view.policy_for(namespace).waivers
    return waiver_applies(
        spec, technology=spec.technology, created_at=created_at, policy=policy,
        owners=stored_owners(technology), now=now,  # every owner since its level (issue 11)
    )


async def reconcile_waiver(ctx: OperatorContext, view: ClusterView, body: Body) -> None:
    metadata = body["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    key = ("MLTRLWaiver", namespace, name)
    if metadata.get("deletionTimestamp"):
        ctx.wakeups.cancel(key)
        return
    now = ctx.clock()
    try:
        decision = decide(view, body, now)
        old = MLTRLWaiverStatus.model_validate(body.get("status") or {})
    except ValidationError as error:
        logger.error("MLTRLWaiver %s/%s cannot be read: %s", namespace, name, error)
        return
    status = waiver_status(old, decision, generation=metadata.get("generation"), now=now)
    patch = merge_patch(body.get("status") or {}, status.to_wire())
    if patch:
        try:
            await ctx.client.patch_status(WAIVERS, namespace, name, patch)
        except NotFound:
            return
    if decision.wake_at is not None:
        ctx.wakeups.at(key, decision.wake_at, ctx.clock,
                          lambda: _reconcile_fresh(ctx, view, namespace, name))
    else:
        ctx.wakeups.cancel(key)


async def _reconcile_fresh(
    ctx: OperatorContext, view: ClusterView, namespace: str, name: str
) -> None:
    """The timer at a waiver's expiry: what it allowed first (the gate closes at this
    instant), then the waiver's own status."""
    try:
        body = await ctx.client.get(WAIVERS, namespace, name)
    except NotFound:
        return
    technology = str((body.get("spec") or {}).get("technology") or "")
    if technology:
        await redecide_technology(ctx, view, namespace, technology)
    await reconcile_waiver(ctx, view, body)


async def redecide_technology(
    ctx: OperatorContext, view: ClusterView, namespace: str, technology: str
) -> None:
    """A waiver of `technology` changed or expired: its plan (the serving gate), its open
    reviews and the InferenceServices that claim it are decided again."""
    await reconcile_or_retry(ctx, view, namespace, technology)
    await reconcile_reviews_of(ctx, view, namespace, technology)
    for body in view.claimers_of(namespace, technology):
        action = await govern_inference_service(ctx, view, body)
        metrics.count_gate_decision("governance", action.value)


async def reconcile_waivers_of(
    ctx: OperatorContext, view: ClusterView, namespace: str, technology: str
) -> None:
    """The technology changed (its owners, or it was created or deleted): whether its
    waivers count is decided again."""
    for body in view.waivers_of(namespace, technology):
        try:
            await reconcile_waiver(ctx, view, body)
        except Exception:  # one waiver must not stop the others; its next event retries
            logger.exception("reconciling MLTRLWaiver %s/%s failed", namespace,
                             body["metadata"].get("name"))
