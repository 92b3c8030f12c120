"""The serving gate: may a technology's model be served with KServe at its level?

Under `audit` enforcement the gate only reports: nothing is stopped or deleted, neither
for a demoted technology nor for a foreign InferenceService; the action is WARN.

An InferenceService that claims a technology (label mltrl.dev/technology) opts into the
gate even in a namespace no policy governs; one that claims a technology that does not
exist fails the gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from mltrl_operator.api.policy import Enforcement, OnDemotion
from mltrl_operator.api.technology import MLTechnologySpec
from mltrl_operator.domain import condition_types as reasons
from mltrl_operator.domain.levels import describe_level
from mltrl_operator.domain.owners import stored_owners
from mltrl_operator.domain.policy import EffectivePolicy
from mltrl_operator.domain.serving import TECHNOLOGY_LABEL
from mltrl_operator.domain.timefmt import rfc3339
from mltrl_operator.domain.waivers import (
    WaiverFacts,
    WaiverInForce,
    waived_serving_minimum,
    waivers_in_force,
)


def required_serving_level(policy: EffectivePolicy, technology_required: int | None) -> int:
    if technology_required is None:
        return policy.minimum_serving_level
    return max(policy.minimum_serving_level, technology_required)


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    required_level: int
    effective_level: int | None
    reason: str
    message: str
    waiver: WaiverInForce | None = None
    """The waiver the gate is open by: without it the level would be below the minimum
    (a use of the waiver, to record)."""
    unwaived_level: int | None = None
    """With `waiver`: the level serving would require without it."""


def _requirement_source(policy: EffectivePolicy, technology_required: int | None) -> str:
    if technology_required is not None and technology_required > policy.minimum_serving_level:
        return "spec.serving.requiredLevel"
    if not policy.sources:
        return "built-in default"
    label = "policy" if len(policy.sources) == 1 else "policies"
    return f"{label} {', '.join(policy.sources)}"


def serving_gate(
    effective_level: int | None,
    technology_required: int | None,
    policy: EffectivePolicy,
    technology_name: str,
    waivers: Sequence[WaiverInForce] = (),
) -> GateDecision:
    """`waivers`: the technology's waivers in force (domain.waivers.waivers_in_force); one
    with `servingMinimum` lowers the policy's minimum, never the technology's own
    spec.serving.requiredLevel."""
    unwaived = required_serving_level(policy, technology_required)
    lowered, by = waived_serving_minimum(
        policy.minimum_serving_level, [(w.name, w.spec) for w in waivers]
    )
    waiver = next((w for w in waivers if w.name == by), None)
    required = unwaived if waiver is None else max(lowered, technology_required or 0)
    allowed = effective_level is not None and effective_level >= required
    where = (
        "has no effective level yet"
        if effective_level is None
        else f"is at {describe_level(effective_level)}"
    )
    source = _requirement_source(policy, technology_required)
    if waiver is not None and required < unwaived:
        source = (f"{source} requires {unwaived}, lowered by waiver {waiver.name} until "
                  f"{rfc3339(waiver.expires_at)}")
    helped = allowed and waiver is not None and effective_level is not None and (
        effective_level < unwaived)
    return GateDecision(
        allowed=allowed,
        required_level=required,
        effective_level=effective_level,
        reason=(
            reasons.LEVEL_MEETS_SERVING_REQUIREMENT
            if allowed
            else reasons.LEVEL_BELOW_SERVING_REQUIREMENT
        ),
        message=f"mltech {technology_name} {where}; serving requires level {required} "
        f"({source})",
        waiver=waiver if helped else None,
        unwaived_level=unwaived if helped else None,
    )


def technology_gate(
    name: str, spec: MLTechnologySpec | None, effective_level: int | None,
    policy: EffectivePolicy, waivers: Sequence[WaiverInForce] = (),
) -> GateDecision:
    """The one serving gate: the reconciler (from the effective level it computes), the
    webhooks and foreign InferenceServices (from the stored technology) all call this."""
    required = spec.serving.required_level if spec is not None and spec.serving else None
    return serving_gate(effective_level, required, policy, name, waivers)


def stored_technology_gate(
    name: str, technology: Mapping[str, Any] | None, policy: EffectivePolicy,
    waivers: Sequence[WaiverFacts] = (), now: datetime | None = None,
) -> GateDecision | None:
    """The gate of a technology as stored; None when it does not exist. `waivers`: the
    waivers stored for it, judged at `now` (none count without `now`)."""
    if technology is None:
        return None
    effective = (technology.get("status") or {}).get("effectiveLevel")
    try:
        spec: MLTechnologySpec | None = MLTechnologySpec.model_validate(
            technology.get("spec") or {}
        )
    except ValueError:  # pydantic's ValidationError
        spec = None  # an unreadable spec asks for nothing beyond the policy
    level = effective if isinstance(effective, int) and not isinstance(effective, bool) else None
    in_force = waivers_in_force(
        waivers, technology=name, policy=policy.waivers, owners=stored_owners(technology),
        now=now,
    ) if now is not None else ()
    decision = technology_gate(name, spec, level, policy, in_force)
    lapsed = _closed_by_lapse(technology)
    if lapsed is not None:  # onExpiry stop or demote closed it (domain.lifecycle_plan)
        return GateDecision(False, decision.required_level, level,
                            reasons.CERTIFICATION_LAPSED, lapsed)
    return decision


def _closed_by_lapse(technology: Mapping[str, Any]) -> str | None:
    for condition in (technology.get("status") or {}).get("conditions") or []:
        if (isinstance(condition, Mapping) and condition.get("type") == reasons.SERVING_ALLOWED
                and condition.get("reason") == reasons.CERTIFICATION_LAPSED):
            return str(condition.get("message") or "the level's certification lapsed")
    return None


class GateAction(StrEnum):
    ALLOW = "allow"
    STOP = "stop"
    DELETE = "delete"
    KEEP = "keep"
    WARN = "warn"


_ON_DEMOTION = {
    OnDemotion.STOP: GateAction.STOP,
    OnDemotion.DELETE: GateAction.DELETE,
    OnDemotion.KEEP: GateAction.KEEP,
}


def demotion_action(policy: EffectivePolicy) -> GateAction:
    """What to do with the operator's own InferenceService once the gate closes."""
    if policy.enforcement is Enforcement.AUDIT:
        return GateAction.WARN
    return _ON_DEMOTION[policy.on_demotion]


def _refuse(policy: EffectivePolicy, message: str) -> tuple[GateAction, str]:
    if policy.enforcement is Enforcement.AUDIT:
        return GateAction.WARN, f"{message} (audit: reported only)"
    return GateAction.STOP, message


def foreign_inference_service_action(
    claimed: str | None, decision: GateDecision | None, policy: EffectivePolicy
) -> tuple[GateAction, str]:
    """For an InferenceService the operator did not create.

    `decision` is the claimed technology's gate, None when that technology does not exist.
    Foreign InferenceServices are stopped, never deleted: they are someone else's.
    """
    if claimed is None:
        if not policy.governed:
            return GateAction.ALLOW, "the namespace is not governed by an MLTRL policy"
        return _refuse(
            policy,
            f"the InferenceService claims no MLTechnology (label {TECHNOLOGY_LABEL}) and the "
            f"namespace is governed ({_requirement_source(policy, None)})",
        )
    if decision is None:
        return _refuse(
            policy, f"the InferenceService claims mltech {claimed}, which does not exist"
        )
    if decision.allowed:
        return GateAction.ALLOW, decision.message
    return _refuse(policy, decision.message)
