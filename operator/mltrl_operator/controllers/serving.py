"""Keeps the operator's own InferenceService in line with the serving gate."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

from mltrl_operator.api.technology import MLTechnologySpec, MLTechnologyStatus
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.domain.gating import GateAction, demotion_action
from mltrl_operator.domain.policy import EffectivePolicy
from mltrl_operator.domain.serving import desired_inference_service
from mltrl_operator.domain.technology import InferenceServiceFacts
from mltrl_operator.k8s.errors import NotFound
from mltrl_operator.k8s.events import NORMAL, WARNING
from mltrl_operator.k8s.resources import INFERENCE_SERVICES

Body = dict[str, Any]

STOP_ANNOTATION = "serving.kserve.io/stop"
MODEL_VERSION_ANNOTATION = "mltrl.dev/model-version"
TECHNOLOGY_LABEL = "mltrl.dev/technology"

logger = logging.getLogger(__name__)


def inference_service_name(name: str, spec: MLTechnologySpec) -> str:
    return (spec.serving.inference_service_name if spec.serving else None) or name


def inference_service_facts(name: str, body: Body | None) -> InferenceServiceFacts:
    if body is None:
        return InferenceServiceFacts(
            name=name, exists=False, ready=False, url=None, stopped=False, model_version=None
        )
    status = body.get("status") or {}
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    ready = any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in status.get("conditions") or []
    )
    return InferenceServiceFacts(
        name=name,
        exists=True,
        ready=ready,
        url=status.get("url"),
        stopped=annotations.get(STOP_ANNOTATION) == "true",
        model_version=annotations.get(MODEL_VERSION_ANNOTATION),
    )


def owned_by(body: Body, uid: str) -> bool:
    references = (body.get("metadata") or {}).get("ownerReferences") or []
    return any(reference.get("uid") == uid for reference in references)


def _is_subset(wanted: Any, actual: Any) -> bool:
    """Whether everything we want is already there; fields others default in are left alone."""
    if isinstance(wanted, dict) and isinstance(actual, dict):
        return all(
            key in actual and _is_subset(value, actual[key]) for key, value in wanted.items()
        )
    return bool(wanted == actual)


def _alignment_patch(current: Body, desired: Body) -> Body:
    """A merge patch that brings our fields of an existing InferenceService in line."""
    patch: Body = {}
    current_meta = current.get("metadata") or {}
    desired_meta = desired["metadata"]
    metadata: Body = {}
    for field in ("labels", "annotations"):
        have = current_meta.get(field) or {}
        changes: dict[str, Any] = {
            key: value for key, value in (desired_meta.get(field) or {}).items()
            if have.get(key) != value
        }
        if field == "annotations" and have.get(STOP_ANNOTATION) == "true":
            changes[STOP_ANNOTATION] = None
        if changes:
            metadata[field] = changes
    if metadata:
        patch["metadata"] = metadata
    if not _is_subset(desired["spec"], current.get("spec") or {}):
        patch["spec"] = desired["spec"]
    return patch


async def _stop(
    ctx: OperatorContext, technology: Body, current: Body, why: str, now: datetime
) -> Body:
    """Stopped, not deleted: KServe keeps the object and its history and serves nothing."""
    if (current["metadata"].get("annotations") or {}).get(STOP_ANNOTATION) == "true":
        return current
    updated = await _patch_inference_service(
        ctx, current, {"metadata": {"annotations": {STOP_ANNOTATION: "true"}}}
    )
    await ctx.events.record(
        technology, type=WARNING, reason="ServingStopped", now=now,
        message=f"stopped InferenceService {current['metadata']['name']}: {why}",
    )
    return updated


async def _patch_inference_service(
    ctx: OperatorContext, current: Body, patch: dict[str, Any]
) -> Body:
    namespace, name = current["metadata"]["namespace"], current["metadata"]["name"]
    ref = ("InferenceService", namespace, name)
    try:
        updated: Body = await ctx.client.patch(INFERENCE_SERVICES, namespace, name, patch)
    except NotFound:
        # Deleted while our watch was away: remember it gone, so the retry creates it.
        ctx.writes.remember(ref, current, None)
        raise
    ctx.writes.remember(ref, current, updated)
    return updated


async def _delete_inference_service(ctx: OperatorContext, current: Body) -> None:
    namespace, name = current["metadata"]["namespace"], current["metadata"]["name"]
    with contextlib.suppress(NotFound):  # already gone: what we wanted
        await ctx.client.delete(INFERENCE_SERVICES, namespace, name)
    ctx.writes.remember(("InferenceService", namespace, name), current, None)


async def sync_serving(
    ctx: OperatorContext,
    technology: Body,
    spec: MLTechnologySpec,
    status: MLTechnologyStatus,
    policy: EffectivePolicy,
    current: Body | None,
    now: datetime,
) -> Body | None:
    """Create, update, stop or delete the InferenceService; return it as it now stands."""
    metadata = technology["metadata"]
    namespace, name, uid = metadata["namespace"], metadata["name"], metadata["uid"]
    isvc_name = inference_service_name(name, spec)
    ref = ("InferenceService", namespace, isvc_name)
    if current is not None and not owned_by(current, uid):
        return current
    gate_open = bool(status.serving and status.serving.allowed)
    wants_serving = bool(spec.serving and spec.serving.enabled and spec.model)
    healthy = not any(
        condition.type == "Ready" and condition.reason == "ValidationFailed"
        for condition in status.conditions
    )
    client = ctx.client
    rollback = status.serving.rollback if status.serving else None
    if wants_serving and gate_open and healthy and spec.model is not None:
        model = rollback.model if rollback else spec.model
        if model is None:  # a rollback that found no earlier known-good model
            if current is None:
                return None
            return await _stop(
                ctx, technology, current,
                "rolled back with no earlier known-good model to serve", now,
            )
        desired = desired_inference_service(isvc_name, namespace, name, uid, spec, model)
        if current is None:
            created = await client.create(INFERENCE_SERVICES, namespace, desired)
            ctx.writes.remember(ref, None, created)
            await ctx.events.record(
                technology, type=NORMAL, reason="ServingStarted", now=now,
                message=f"created InferenceService {isvc_name} serving model {model.version}",
            )
            return created
        patch = _alignment_patch(current, desired)
        if not patch:
            return current
        updated = await _patch_inference_service(ctx, current, patch)
        was_stopped = (current["metadata"].get("annotations") or {}).get(STOP_ANNOTATION)
        reason, message = (
            ("ServingResumed", f"resumed InferenceService {isvc_name}")
            if was_stopped == "true"
            else (
                "ModelRolledOut",
                f"InferenceService {isvc_name} now serves model {model.version}",
            )
        )
        await ctx.events.record(technology, type=NORMAL, reason=reason, message=message, now=now)
        return updated
    if current is None:
        return None
    if not wants_serving:
        await _delete_inference_service(ctx, current)
        await ctx.events.record(
            technology, type=NORMAL, reason="ServingRemoved", now=now,
            message=f"deleted InferenceService {isvc_name}: serving is disabled or no model is set",
        )
        return None
    action = demotion_action(policy)
    gate_message = next(
        (c.message for c in status.conditions if c.type == "ServingAllowed"), ""
    )
    if action is GateAction.DELETE:
        await _delete_inference_service(ctx, current)
        await ctx.events.record(
            technology, type=WARNING, reason="ServingDeleted", now=now,
            message=f"deleted InferenceService {isvc_name}: below the required level. "
            f"{gate_message}".strip(),
        )
        return None
    if action is GateAction.STOP:
        why = f"below the required level. {gate_message}".strip()
        return await _stop(ctx, technology, current, why, now)
    return current
