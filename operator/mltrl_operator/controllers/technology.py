"""Reconcile an MLTechnology: snapshot, compute the new status, act on serving, persist once."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mltrl_operator import metrics
from mltrl_operator.api.technology import MLTechnologySpec, MLTechnologyStatus
from mltrl_operator.controllers.audit import record_status_change
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.incidents import (
    act_on_incidents,
    announce,
    carry_rollback,
    settle,
)
from mltrl_operator.controllers.observe import observe_levels, observe_written
from mltrl_operator.controllers.serving import (
    inference_service_facts,
    inference_service_name,
    sync_serving,
)
from mltrl_operator.controllers.view import Body, ClusterView, Key
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.technology import ComponentFacts, compute_status
from mltrl_operator.domain.validation import find_component_cycle, validate_technology
from mltrl_operator.k8s.errors import Conflict, NotFound
from mltrl_operator.k8s.patches import merge_patch
from mltrl_operator.k8s.resources import TECHNOLOGIES

MAX_ATTEMPTS = 5

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TechnologyOutcome:
    level_changed: bool
    effective_level_changed: bool
    stored: Body | None
    """The object as stored after our write; None when nothing needed writing."""


class StaleSnapshot(Exception):
    """Our snapshot was older than the stored object; read again and recompute."""


def _component_keys(namespace: str, body: Body | None) -> list[Key]:
    if body is None:
        return []
    return [
        (component.get("namespace") or namespace, component["name"])
        for component in (body.get("spec") or {}).get("components") or []
        if component.get("name")
    ]


def _component_errors(view: ClusterView, namespace: str, name: str) -> list[FieldError]:
    edges: dict[Key, list[Key]] = {}
    pending = [(namespace, name)]
    while pending:
        key = pending.pop()
        if key in edges:
            continue
        edges[key] = _component_keys(key[0], view.technology(*key))
        pending.extend(edges[key])
    cycle = find_component_cycle((namespace, name), edges)
    if not cycle:
        return []
    path = " -> ".join(f"{ns}/{n}" if ns != namespace else n for ns, n in cycle)
    return [FieldError("spec.components", f"forms a cycle: {path}")]


def component_facts(
    view: ClusterView, namespace: str, spec: MLTechnologySpec
) -> list[ComponentFacts]:
    facts = []
    for component in spec.components:
        component_namespace = component.namespace or namespace
        body = view.technology(component_namespace, component.name)
        effective = ((body or {}).get("status") or {}).get("effectiveLevel")
        facts.append(
            ComponentFacts(
                name=component.name, namespace=component_namespace, effective_level=effective
            )
        )
    return facts


async def reconcile_technology(
    ctx: OperatorContext, view: ClusterView, namespace: str, name: str, body: Body | None = None
) -> TechnologyOutcome | None:
    async with ctx.locks.hold((namespace, name)):
        # Whoever held the lock may have written since this snapshot was taken.
        body = ctx.writes.fresh(("MLTechnology", namespace, name), body) if body else None
        return await _reconcile_with_retries(ctx, view, namespace, name, body)


async def _reconcile_with_retries(
    ctx: OperatorContext, view: ClusterView, namespace: str, name: str, body: Body | None
) -> TechnologyOutcome | None:
    body = body if body is not None else view.technology(namespace, name)
    for _ in range(MAX_ATTEMPTS):
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        try:
            return await reconcile_snapshot(ctx, view, body)
        except StaleSnapshot:
            try:
                body = await ctx.client.get(TECHNOLOGIES, namespace, name)
            except NotFound:
                return None
    raise RuntimeError(f"MLTechnology {namespace}/{name} kept changing; giving up for now")


def _parse(body: Body) -> tuple[MLTechnologySpec, MLTechnologyStatus]:
    return (
        MLTechnologySpec.model_validate(body.get("spec") or {}),
        MLTechnologyStatus.model_validate(body.get("status") or {}),
    )


async def reconcile_snapshot(
    ctx: OperatorContext,
    view: ClusterView,
    body: Body,
    base_status: MLTechnologyStatus | None = None,
) -> TechnologyOutcome:
    """Compute and persist one technology's status from one snapshot.

    `base_status` lets a review hand over the status with its level change already applied,
    so a promotion and everything that follows from it land in a single write.
    Raises StaleSnapshot when the object changed since the snapshot.
    """
    metadata = body["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    try:
        spec, old_status = _parse(body)
    except ValidationError as error:
        logger.error("MLTechnology %s/%s cannot be read: %s", namespace, name, error)
        return TechnologyOutcome(False, False, None)
    start = base_status or old_status
    policy = view.policy_for(namespace)
    errors = validate_technology(spec, name=name, namespace=namespace)
    errors += _component_errors(view, namespace, name)
    components = component_facts(view, namespace, spec)
    isvc_name = inference_service_name(name, spec)
    isvc = view.inference_service(namespace, isvc_name)
    now = ctx.clock()
    # Pending incidents are acted on first, so that a demotion's closed gate and a
    # rollback's model reach the InferenceService in this same pass.
    work = await act_on_incidents(ctx, body, spec, start, now)

    def compute(isvc_body: Body | None) -> MLTechnologyStatus:
        computed = compute_status(
            name=name,
            namespace=namespace,
            spec=spec,
            status=work.status,
            generation=int(metadata.get("generation") or 1),
            components=components,
            policy=policy,
            inference_service=inference_service_facts(isvc_name, isvc_body),
            validation_errors=errors,
            now=now,
        )
        return carry_rollback(work.status, computed, spec)

    status = compute(isvc)
    served = await sync_serving(ctx, body, spec, status, policy, isvc, now)
    if served is not isvc:
        status = compute(served)
    status = settle(status, work.settlements)
    stored = await persist_status(ctx, body, status)
    observe_levels(namespace, name, spec, status)
    if stored is not None:
        observe_written(old_status, status, policy)
        await record_status_change(ctx, view, stored, old_status, status)
        await announce(ctx, stored, start, status, work.settlements, now)
    return TechnologyOutcome(
        level_changed=old_status.level != status.level,
        effective_level_changed=old_status.effective_level != status.effective_level,
        stored=stored,
    )


async def persist_status(
    ctx: OperatorContext, body: Body, status: MLTechnologyStatus
) -> Body | None:
    """One conditional PATCH of the status subresource, skipped when nothing changed.

    Returns the object as stored after the write, or None when there was nothing to write.
    """
    current: Mapping[str, Any] = body.get("status") or {}
    patch = merge_patch(dict(current), status.to_wire())
    if not patch:
        return None
    metadata = body["metadata"]
    try:
        stored = await ctx.client.patch_status(
            TECHNOLOGIES, metadata["namespace"], metadata["name"], patch,
            resource_version=metadata.get("resourceVersion"),
        )
    except Conflict as error:
        raise StaleSnapshot() from error
    ctx.writes.remember(("MLTechnology", metadata["namespace"], metadata["name"]), body, stored)
    return stored


async def reconcile_or_retry(
    ctx: OperatorContext, view: ClusterView, namespace: str, name: str, body: Body | None = None
) -> None:
    """Reconcile, and on failure try again later with backoff, from the then-current cache."""
    key = ("MLTechnology", namespace, name)
    try:
        await reconcile_technology(ctx, view, namespace, name, body)
    except Exception:  # one broken object must not starve the others
        metrics.count_reconcile_error("MLTechnology")
        logger.exception(
            "reconciling MLTechnology %s/%s failed; retrying in %.0fs",
            namespace, name, ctx.retries.delay_for(key),
        )
        ctx.retries.schedule(key, lambda: reconcile_or_retry(ctx, view, namespace, name))
    else:
        ctx.retries.succeeded(key)


async def reconcile_many(ctx: OperatorContext, view: ClusterView, keys: Sequence[Key]) -> None:
    """Fan-out after a change others depend on; each one writes only if its status moved."""
    for namespace, name in keys:
        await reconcile_or_retry(ctx, view, namespace, name)
