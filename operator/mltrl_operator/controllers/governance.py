"""InferenceServices the operator did not create: checked against the serving gate."""

from __future__ import annotations

import logging
from datetime import datetime

from mltrl_operator.api.technology import MLTechnologySpec, MLTechnologyStatus
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.serving import STOP_ANNOTATION, TECHNOLOGY_LABEL
from mltrl_operator.controllers.view import Body, ClusterView
from mltrl_operator.domain.claims import claim_action, served_storage_uri, technologys_own
from mltrl_operator.domain.gating import GateAction, serving_gate
from mltrl_operator.k8s.events import WARNING
from mltrl_operator.k8s.resources import INFERENCE_SERVICES

STOPPED_BY_ANNOTATION = "mltrl.dev/stopped-by-gate"
AUDIT_ANNOTATION = "mltrl.dev/audit"

logger = logging.getLogger(__name__)


def created_by_operator(body: Body) -> bool:
    references = (body.get("metadata") or {}).get("ownerReferences") or []
    return any(reference.get("kind") == "MLTechnology" for reference in references)


async def _report(
    ctx: OperatorContext, involved: list[Body | None], reason: str, message: str, now: datetime
) -> None:
    """On the InferenceService, and on the technology it claims, so its owners see it too."""
    for obj in involved:
        if obj is not None:
            await ctx.events.record(obj, type=WARNING, reason=reason, message=message, now=now)


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
    decision = None
    technology = None
    spec = None
    status = MLTechnologyStatus()
    if claimed:
        technology = view.technology(namespace, claimed)
        if technologys_own(body, technology):
            return GateAction.ALLOW  # its own reconcile keeps it in line
        effective = ((technology or {}).get("status") or {}).get("effectiveLevel")
        required = None
        if technology is not None:
            spec = MLTechnologySpec.model_validate(technology.get("spec") or {})
            status = MLTechnologyStatus.model_validate(technology.get("status") or {})
            required = spec.serving.required_level if spec.serving else None
            decision = serving_gate(effective, required, policy, claimed)
    action, message = claim_action(
        claimed, decision, policy, served_uri=served_storage_uri(body),
        model=spec.model if spec else None, known_good=status.known_good_models,
    )
    now = ctx.clock()
    if action is GateAction.STOP and annotations.get(STOP_ANNOTATION) != "true":
        stop = {STOP_ANNOTATION: "true", STOPPED_BY_ANNOTATION: message}
        stored = await ctx.client.patch(
            INFERENCE_SERVICES, namespace, name, {"metadata": {"annotations": stop}}
        )
        ctx.writes.remember(("InferenceService", namespace, name), body, stored)
        await _report(ctx, [body, technology], "ServingBlocked", message, now)
    elif action is GateAction.WARN and annotations.get(AUDIT_ANNOTATION) != message:
        # The annotation remembers what was reported, so a re-listed object is not re-reported.
        stored = await ctx.client.patch(
            INFERENCE_SERVICES, namespace, name,
            {"metadata": {"annotations": {AUDIT_ANNOTATION: message}}},
        )
        ctx.writes.remember(("InferenceService", namespace, name), body, stored)
        await _report(ctx, [body, technology], "ServingNotAllowed", f"audit: {message}", now)
    return action
