"""InferenceServices the operator did not create: checked against the serving gate."""

from __future__ import annotations

import logging
from datetime import datetime

from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.view import Body, ClusterView
from mltrl_operator.domain.claims import stored_claim_action, technologys_own
from mltrl_operator.domain.gating import GateAction
from mltrl_operator.domain.serving import STOP_ANNOTATION, TECHNOLOGY_LABEL
from mltrl_operator.k8s.events import WARNING
from mltrl_operator.k8s.resources import INFERENCE_SERVICES

STOPPED_BY_ANNOTATION = "mltrl.dev/stopped-by-gate"
AUDIT_ANNOTATION = "mltrl.dev/audit"

logger = logging.getLogger(__name__)


async def _report(
    ctx: OperatorContext, involved: list[Body | None], reason: str, message: str, now: datetime,
    occurrence: str | None,
) -> None:
    """On the InferenceService, and on the technology it claims, so its owners see it too."""
    for obj in involved:
        if obj is not None:
            # Keyed by what is reported: a re-delivered snapshot (the same resourceVersion)
            # does not report it twice; the same report on a changed object counts into
            # the event's series.
            await ctx.events.record(
                obj, type=WARNING, reason=reason, message=message, now=now, key=message,
                occurrence=occurrence,
            )


async def govern_inference_service(
    ctx: OperatorContext, view: ClusterView, body: Body
) -> GateAction:
    metadata = body["metadata"]
    if metadata.get("deletionTimestamp"):
        return GateAction.ALLOW
    namespace, name = metadata["namespace"], metadata["name"]
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    policy = view.policy_for(namespace)
    claimed = labels.get(TECHNOLOGY_LABEL)
    technology = view.technology(namespace, claimed) if claimed else None
    if claimed and technologys_own(body, technology):
        return GateAction.ALLOW  # its own reconcile keeps it in line
    now = ctx.clock()
    waivers = view.waiver_facts(namespace, claimed) if claimed else []
    _, (action, message) = stored_claim_action(claimed, body, technology, policy, waivers, now)
    if action is GateAction.STOP and annotations.get(STOP_ANNOTATION) != "true":
        stop = {STOP_ANNOTATION: "true", STOPPED_BY_ANNOTATION: message}
        stored = await ctx.client.patch(
            INFERENCE_SERVICES, namespace, name, {"metadata": {"annotations": stop}}
        )
        ctx.writes.remember(("InferenceService", namespace, name), body, stored)
        await _report(ctx, [body, technology], "ServingBlocked", message, now,
                      metadata.get("resourceVersion"))
    elif action is GateAction.WARN and annotations.get(AUDIT_ANNOTATION) != message:
        # The annotation remembers what was reported, so a re-listed object is not re-reported.
        stored = await ctx.client.patch(
            INFERENCE_SERVICES, namespace, name,
            {"metadata": {"annotations": {AUDIT_ANNOTATION: message}}},
        )
        ctx.writes.remember(("InferenceService", namespace, name), body, stored)
        await _report(ctx, [body, technology], "ServingNotAllowed", f"audit: {message}", now,
                      metadata.get("resourceVersion"))
    return action
