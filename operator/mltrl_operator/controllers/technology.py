"""Reconcile an MLTechnology: gather what it depends on, plan (domain.plan), apply.

`apply` carries a Plan out in the order domain/plan.py explains, so that a crash (or a
lost answer) between any two steps is repaired by the next reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from mltrl_operator import metrics
from mltrl_operator.api.review import ReviewPhase
from mltrl_operator.api.technology import MLTechnologySpec, MLTechnologyStatus
from mltrl_operator.controllers.audit import record_status_change
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.observe import observe_levels, observe_settled, observe_written
from mltrl_operator.controllers.view import Body, ClusterView, Key
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.plan import (
    CREATE,
    DELETE,
    ApprovedReview,
    Plan,
    PlanInputs,
    PlannedEvent,
    plan_technology,
)
from mltrl_operator.domain.reviews import evaluate_review, technology_facts
from mltrl_operator.domain.serving import inference_service_name
from mltrl_operator.domain.technology import ComponentFacts
from mltrl_operator.domain.validation import find_component_cycle, validate_technology
from mltrl_operator.k8s.errors import ApiError, Conflict, NotFound
from mltrl_operator.k8s.patches import merge_patch
from mltrl_operator.k8s.resources import INFERENCE_SERVICES, JOBS, TECHNOLOGIES

MAX_ATTEMPTS = 5

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TechnologyOutcome:
    level_changed: bool
    effective_level_changed: bool
    stored: Body | None
    """The object as stored after our write; None when nothing needed writing."""
    review_applied: bool = False
    promotion_announced: bool = False
    """The applied review's one event went out with the serving action (domain.plan)."""


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
    ctx: OperatorContext,
    view: ClusterView,
    namespace: str,
    name: str,
    body: Body | None = None,
    review: ApprovedReview | None = None,
) -> TechnologyOutcome | None:
    async with ctx.locks.hold((namespace, name)):
        return await reconcile_locked(ctx, view, namespace, name, body, review)


async def reconcile_locked(
    ctx: OperatorContext,
    view: ClusterView,
    namespace: str,
    name: str,
    body: Body | None = None,
    review: ApprovedReview | None = None,
    confirmed: Awaitable[None] | None = None,
) -> TechnologyOutcome | None:
    """For a caller that already holds the technology's lock (the review controller:
    "reconcile technology X with review R"). `confirmed`: awaited after planning and
    before the plan's first write (the review's re-read, which raises if it moved)."""
    # Whoever held the lock may have written since this snapshot was taken.
    body = view.technology(namespace, name) if body is None else body
    body = view.fresh("MLTechnology", namespace, name, body) if body else None
    for _ in range(MAX_ATTEMPTS):
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        try:
            return await reconcile_snapshot(ctx, view, body, review, confirmed)
        except StaleSnapshot:
            try:
                body = await ctx.client.get(TECHNOLOGIES, namespace, name)
            except NotFound:
                return None
            if review is not None:
                review = still_approved(view, namespace, body, review, ctx.clock())
    raise RuntimeError(f"MLTechnology {namespace}/{name} kept changing; giving up for now")


def still_approved(
    view: ClusterView, namespace: str, body: Body, review: ApprovedReview, now: datetime
) -> ApprovedReview | None:
    """The technology changed under an Approved review: judge the review again on what is
    stored now, since approvals approve content (a new spec.model or owner may dismiss
    them, domain.approvals). None when it no longer may move the level."""
    try:
        spec, status = _parse(body)
    except ValidationError:
        return None
    facts = technology_facts(
        review.spec.technology, spec, status,
        waivers=view.waiver_facts(namespace, review.spec.technology), now=now,
    )
    evaluation = evaluate_review(review.name, review.spec, facts, view.policy_for(namespace))
    if evaluation.phase is not ReviewPhase.APPROVED:
        return None
    return replace(review, evaluation=evaluation)


def _parse(body: Body) -> tuple[MLTechnologySpec, MLTechnologyStatus]:
    return (
        MLTechnologySpec.model_validate(body.get("spec") or {}),
        MLTechnologyStatus.model_validate(body.get("status") or {}),
    )


async def reconcile_snapshot(
    ctx: OperatorContext,
    view: ClusterView,
    body: Body,
    review: ApprovedReview | None = None,
    confirmed: Awaitable[None] | None = None,
) -> TechnologyOutcome:
    """Plan from one snapshot and apply the plan. Raises StaleSnapshot when the object
    changed since the snapshot (the caller reads it again and plans afresh)."""
    metadata = body["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    try:
        inputs = _plan_inputs(ctx, view, body, review)
    except ValidationError as error:
        logger.error("MLTechnology %s/%s cannot be read: %s", namespace, name, error)
        return TechnologyOutcome(False, False, None)
    old_status, policy = inputs.status, inputs.policy
    plan, stored = await apply(ctx, inputs, confirmed)
    _wake_at(ctx, view, namespace, name, plan)
    observe_levels(namespace, name, inputs.spec, plan.status)
    if stored is not None:
        observe_written(old_status, plan.status, policy)
        observe_settled(plan.settlements)
        # The audit record follows the stored decision (issue 15); an append that fails is
        # retried in the background, and one lost to a crash is caught up at start-up.
        await record_status_change(ctx, view, stored, old_status, plan.status)
    return TechnologyOutcome(
        level_changed=old_status.level != plan.status.level,
        effective_level_changed=old_status.effective_level != plan.status.effective_level,
        stored=stored,
        review_applied=plan.review_applied,
        promotion_announced=plan.review_applied and plan.serving is not None,
    )


def _plan_inputs(
    ctx: OperatorContext, view: ClusterView, body: Body, review: ApprovedReview | None
) -> PlanInputs:
    """Everything the plan decides on, gathered from the snapshot and the cache. Raises
    ValidationError when the technology cannot be read."""
    metadata = body["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    spec, old_status = _parse(body)
    errors = validate_technology(spec, name=name, namespace=namespace)
    errors += _component_errors(view, namespace, name)
    return PlanInputs(
        technology=body,
        spec=spec,
        status=old_status,
        components=component_facts(view, namespace, spec),
        validation_errors=errors,
        policy=view.policy_for(namespace),
        inference_service=view.inference_service(
            namespace, inference_service_name(name, spec)
        ),
        now=ctx.clock(),
        review=review,
        waivers=view.waiver_facts(namespace, name),
        lifecycle=view.lifecycle_for(namespace),
    )


def entering(body: Body | None) -> bool:
    """A technology that exists and has no level stored yet: its entry is still to come."""
    return body is not None and (body.get("status") or {}).get("level") is None


def as_entered(ctx: OperatorContext, view: ClusterView, body: Body) -> Body | None:
    """A technology not yet entered (no level stored), as its entry would store it, for a
    review to be judged against without that write first: an entering technology with its
    review already approved (a start-up, a technology applied with its review) then enters
    and moves in one status write, as plan_technology does when given the review. Nothing
    is stored here; None when the technology cannot be read."""
    try:
        inputs = _plan_inputs(ctx, view, body, None)
    except ValidationError:
        return None
    return {**body, "status": plan_technology(inputs).status.to_wire()}


def _wake_at(ctx: OperatorContext, view: ClusterView, namespace: str, name: str,
             plan: Plan) -> None:
    """A certification that warns or lapses (or a waiver that expires) at an instant is
    decided again at that instant, by a timer, not at the next resync."""
    key = ("lifecycle", namespace, name)
    if plan.wake_at is None:
        ctx.wakeups.cancel(key)
        return

    async def again() -> None:
        await reconcile_or_retry(ctx, view, namespace, name)

    ctx.wakeups.at(key, plan.wake_at, ctx.clock, again)


async def _create_jobs(ctx: OperatorContext, namespace: str, plan: Plan) -> dict[str, str]:
    """Create the plan's Jobs; the ones refused for good, by name, with why."""
    refused: dict[str, str] = {}
    for job in plan.jobs:
        try:
            await ctx.client.create(JOBS, namespace, job.body)
        except Conflict:
            pass  # created by an earlier attempt of this same decision
        except ApiError as error:
            if error.status >= 500 or error.status == 429:
                raise  # the API server may recover: the incident stays Pending
            refused[job.name] = str(error)
    return refused


async def _post(
    ctx: OperatorContext, involved: Body, event: PlannedEvent, occurrence: str | None = None
) -> None:
    await ctx.events.record(
        involved, type=event.type, reason=event.reason, message=event.message,
        now=ctx.clock(), key=event.key, occurrence=occurrence,
    )


async def apply(
    ctx: OperatorContext, inputs: PlanInputs, confirmed: Awaitable[None] | None = None
) -> tuple[Plan, Body | None]:
    """Carry out a plan in the order that survives a crash between any two steps.
    `confirmed`, when given, is awaited before the first write (reconcile_locked)."""
    body = inputs.technology
    namespace = body["metadata"]["namespace"]
    plan = plan_technology(inputs)
    if confirmed is not None:
        await confirmed
    # 1. Jobs; a refusal is part of what the incident's settlement says, so plan again.
    refused = await _create_jobs(ctx, namespace, plan)
    if refused:
        plan = plan_technology(replace(inputs, job_errors=refused))
    action = plan.serving
    if action is not None and plan.serving_first:
        # An incident settled by stopping serving or rolling back (domain/plan.py): the
        # action goes out with its settlement's event, before the status, since a crash
        # before the status plans the same settlement again and finds it done.
        # The InferenceService's request is sent first: it is what the alert waits for.
        await _all(
            _serve(ctx, namespace, action.verb, action.name, action.body,
                   inputs.inference_service),
            *(_post(ctx, body, event) for event in plan.events),
        )
        return plan, await persist_status(ctx, body, plan.status)
    # 2. Incident events: each named after its incident and settlement.
    for event in plan.events:
        await _post(ctx, body, event)
    # 3. The decision, stored before anything acts on it.
    stored = await persist_status(ctx, body, plan.status)
    # 4. Serving, derived from the stored status: redone identically until it is done.
    if action is not None:
        if action.event is not None:
            # The technology as stored names the occurrence: the same decision redone
            # (nothing written since) is one event; the same action decided again later
            # (InferenceService deleted and created anew) counts into its series.
            involved = stored or body
            await _post(ctx, involved, action.event,
                        occurrence=involved["metadata"].get("resourceVersion"))
        await _serve(ctx, namespace, action.verb, action.name, action.body,
                     inputs.inference_service)
    return plan, stored


async def _all(*steps: Awaitable[None]) -> None:
    """Run the steps at once and wait for every one; then raise the first failure (the
    steps that did land are redone as no-ops by the retry)."""
    for result in await asyncio.gather(*steps, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result


async def _serve(
    ctx: OperatorContext, namespace: str, verb: str, name: str, payload: Body | None,
    current: Body | None,
) -> None:
    ref = ("InferenceService", namespace, name)
    try:
        if verb == CREATE:
            assert payload is not None
            try:
                stored: Body | None = await ctx.client.create(
                    INFERENCE_SERVICES, namespace, payload
                )
            except Conflict:
                # Created by an attempt whose answer was lost; the watch brings it.
                stored = await ctx.client.get(INFERENCE_SERVICES, namespace, name)
        elif verb == DELETE:
            with contextlib.suppress(NotFound):  # already gone: what we wanted
                await ctx.client.delete(INFERENCE_SERVICES, namespace, name)
            stored = None
        else:
            assert payload is not None
            stored = await ctx.client.patch(INFERENCE_SERVICES, namespace, name, payload)
    except NotFound:
        # Deleted while our watch was away: remember it gone, so the retry creates it.
        ctx.writes.remember(ref, current, None)
        raise
    ctx.writes.remember(ref, current, stored)


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


class TechnologiesForServices:
    """What `mltrl run` hands the services beside kopf (k8s.lookups.OperatorTechnologies):
    technologies as the cache holds them, overlaid with our own writes, and `stored`, by
    which the alert receiver tells of the incident it just stored (issue 17: the alert's
    latency). The write is remembered as ours (read-your-writes, so the reconcile plans
    from it and not from the older cached copy) and the technology is queued at once,
    instead of when the watch brings the event back: the same reconcile, a watch delivery
    sooner. The watch's event still queues it too; that reconcile finds nothing to do."""

    def __init__(self, ctx: OperatorContext) -> None:
        self._ctx = ctx

    def __call__(self, namespace: str, name: str) -> Body | None:
        return ClusterView(self._ctx.cache, self._ctx.writes).technology(namespace, name)

    def stored(self, based_on: Body | None, stored: Body) -> None:
        metadata = stored["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        self._ctx.writes.remember((TECHNOLOGIES.kind, namespace, name), based_on, stored)
        self._ctx.queue.add((TECHNOLOGIES.kind, namespace, name))


async def reconcile_many(ctx: OperatorContext, view: ClusterView, keys: Sequence[Key]) -> None:
    """Fan-out after a change others depend on; each one writes only if its status moved."""
    for namespace, name in keys:
        await reconcile_or_retry(ctx, view, namespace, name)
