"""Reconcile an MLTRLPolicy's own status: is it valid, and which namespaces does it cover."""

from __future__ import annotations

import contextlib

from pydantic import ValidationError

from mltrl_operator.api.policy import MLTRLPolicySpec, MLTRLPolicyStatus
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.view import Body, ClusterView
from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.conditions import set_condition
from mltrl_operator.domain.policy import selector_matches
from mltrl_operator.domain.validation import validate_policy
from mltrl_operator.k8s.errors import NotFound
from mltrl_operator.k8s.patches import merge_patch
from mltrl_operator.k8s.resources import POLICIES


async def reconcile_policy(ctx: OperatorContext, view: ClusterView, body: Body) -> None:
    metadata = body["metadata"]
    try:
        spec = MLTRLPolicySpec.model_validate(body.get("spec") or {})
        old = MLTRLPolicyStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return
    errors = validate_policy(spec)
    generation = int(metadata.get("generation") or 1)
    conditions, _ = set_condition(
        old.conditions,
        type=ct.VALID,
        status=not errors,
        reason=ct.POLICY_VALID if not errors else ct.POLICY_INVALID,
        message="; ".join(str(error) for error in errors),
        generation=generation,
        now=ctx.clock(),
    )
    status = MLTRLPolicyStatus(
        namespaces=[
            namespace
            for namespace in view.namespaces()
            if selector_matches(spec.namespace_selector, view.namespace_labels(namespace))
        ],
        observed_generation=generation,
        conditions=conditions,
    )
    patch = merge_patch(body.get("status") or {}, status.to_wire())
    if patch:
        with contextlib.suppress(NotFound):  # deleted meanwhile: nothing left to report on
            await ctx.client.patch_status(POLICIES, None, metadata["name"], patch)


