"""An MLTechnology's status as a pure function of what the reconciler observed.

Calling compute_status again with the same inputs yields an equal status (timestamps move
only when something changes), so the reconciler can compare and skip the PATCH.

Choices where the paper is silent:
- A component that does not exist (or has no level yet) does not lower the effective
  level; ComponentsReady and Ready turn False (ComponentMissing) instead. A missing
  component is usually a typo or an ordering race, and closing the serving gate on it
  would turn either into an outage; the conditions make it visible.
- nextLevel is absent at level 9 and once the technology has reached its target level:
  a review above the target is refused, so there is no next level to prepare.
- A model becomes known-good only while it is the spec's model and is served Ready at
  the required level; a rolled-back model being served is not recorded again, so the
  known-good timeline keeps its order for the next rollback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mltrl_operator.api.common import MAX_LEVEL, Condition
from mltrl_operator.api.review import LevelReviewSpec
from mltrl_operator.api.technology import (
    KNOWN_GOOD_LIMIT,
    LevelTransition,
    MLTechnologySpec,
    MLTechnologyStatus,
    NextLevel,
    ServingState,
    ServingStatus,
)
from mltrl_operator.api.waiver import WaiverUse
from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.approvals import policy_names
from mltrl_operator.domain.conditions import set_condition
from mltrl_operator.domain.entry import entry_condition, entry_status, level_after_entry
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.gating import GateDecision, technology_gate
from mltrl_operator.domain.levels import describe_level, level_name, phase_of
from mltrl_operator.domain.owners import record_owner
from mltrl_operator.domain.policy import EffectivePolicy
from mltrl_operator.domain.requirements import describe_rule
from mltrl_operator.domain.reviews import ReviewEvaluation
from mltrl_operator.domain.serving import inference_service_name, record_known_good
from mltrl_operator.domain.technology_facts import InferenceServiceFacts

__all__ = ["ComponentFacts", "InferenceServiceFacts", "compute_status"]
from mltrl_operator.domain.timefmt import rfc3339
from mltrl_operator.domain.transitions import (
    alert_switchback,
    append_history,
    entry_transition,
    review_transition,
)
from mltrl_operator.domain.validation import component_key
from mltrl_operator.domain.waivers import WaiverInForce


@dataclass(frozen=True)
class ComponentFacts:
    name: str
    namespace: str
    effective_level: int | None
    """None when the component does not exist or has not been reconciled yet."""


@dataclass(frozen=True)
class _ConditionValue:
    status: bool
    reason: str
    message: str


@dataclass(frozen=True)
class _Components:
    missing: tuple[str, ...]
    below: tuple[tuple[str, int], ...]
    count: int


def _components(
    spec: MLTechnologySpec, namespace: str, level: int, facts: Sequence[ComponentFacts]
) -> tuple[_Components, int]:
    known = {(f.namespace, f.name): f.effective_level for f in facts}
    missing: list[str] = []
    below: list[tuple[str, int]] = []
    effective = level
    for ref in spec.components:
        key = component_key(ref, namespace)
        shown = key[1] if key[0] == namespace else f"{key[0]}/{key[1]}"
        component_level = known.get(key)
        if component_level is None:
            missing.append(shown)
            continue
        effective = min(effective, component_level)
        if component_level < level:
            below.append((shown, component_level))
    return _Components(tuple(missing), tuple(below), len(spec.components)), effective


def _missing_message(components: _Components) -> str:
    return f"missing or without a level yet: {', '.join(components.missing)}"


def _below_message(components: _Components, level: int, effective: int) -> str:
    listed = ", ".join(f"{name} (level {lvl})" for name, lvl in components.below)
    return f"below this technology's level {level}: {listed}; the effective level is {effective}"


def _components_ready(components: _Components, level: int, effective: int) -> _ConditionValue:
    if components.count == 0:
        return _ConditionValue(True, ct.NO_COMPONENTS, "the technology has no components")
    if components.missing:
        return _ConditionValue(False, ct.COMPONENT_MISSING, _missing_message(components))
    if components.below:
        return _ConditionValue(
            False, ct.COMPONENT_BELOW_LEVEL, _below_message(components, level, effective)
        )
    return _ConditionValue(
        True,
        ct.COMPONENTS_AT_LEVEL,
        f"all {components.count} components are at level {level} or above",
    )


def _ready(
    spec: MLTechnologySpec,
    level: int,
    effective: int,
    components: _Components,
    validation_errors: Sequence[FieldError],
) -> _ConditionValue:
    target = spec.target_level
    if validation_errors:
        return _ConditionValue(
            False, ct.VALIDATION_FAILED, "; ".join(str(e) for e in validation_errors)
        )
    if level < target:
        return _ConditionValue(
            False,
            ct.BELOW_TARGET_LEVEL,
            f"at {describe_level(level)}; the target is {describe_level(target)}",
        )
    if components.missing:
        return _ConditionValue(False, ct.COMPONENT_MISSING, _missing_message(components))
    if effective < target:
        return _ConditionValue(
            False,
            ct.COMPONENT_BELOW_LEVEL,
            f"components hold the effective level below the target {target}: "
            + _below_message(components, level, effective),
        )
    return _ConditionValue(
        True, ct.AT_TARGET_LEVEL, f"the effective level {effective} meets the target {target}"
    )


def _serving_enabled(spec: MLTechnologySpec) -> bool:
    # A model without a serving section is meant to be served with the defaults
    # (domain.serving.serving_wanted, which the reconciler acts on).
    return spec.serving.enabled if spec.serving else True


def _serving_state(
    spec: MLTechnologySpec, gate: GateDecision, isvc: InferenceServiceFacts | None
) -> ServingState:
    if not _serving_enabled(spec) or spec.model is None:
        return ServingState.DISABLED
    if isvc is None or not isvc.exists:
        return ServingState.PENDING if gate.allowed else ServingState.BLOCKED
    if isvc.stopped:
        return ServingState.STOPPED
    if not gate.allowed:
        return ServingState.DEGRADED
    return ServingState.SERVING if isvc.ready else ServingState.PENDING


def _serving_condition(
    spec: MLTechnologySpec, gate: GateDecision, isvc: InferenceServiceFacts | None, shown: str
) -> _ConditionValue:
    if not _serving_enabled(spec):
        return _ConditionValue(False, ct.SERVING_DISABLED, "spec.serving.enabled is false")
    if spec.model is None:
        return _ConditionValue(False, ct.NO_MODEL, "spec.model is not set; nothing to serve")
    if isvc is None or not isvc.exists:
        if gate.allowed:
            return _ConditionValue(
                False, ct.INFERENCE_SERVICE_NOT_READY, f"InferenceService {shown} not created yet"
            )
        return _ConditionValue(False, ct.LEVEL_BELOW_SERVING_REQUIREMENT, gate.message)
    if isvc.stopped:
        return _ConditionValue(
            False, ct.INFERENCE_SERVICE_STOPPED, f"InferenceService {isvc.name} is stopped"
        )
    if isvc.ready:
        where = f" at {isvc.url}" if isvc.url else ""
        version = f" (model {isvc.model_version})" if isvc.model_version else ""
        return _ConditionValue(
            True,
            ct.INFERENCE_SERVICE_READY,
            f"InferenceService {isvc.name} is ready{where}{version}",
        )
    return _ConditionValue(
        False, ct.INFERENCE_SERVICE_NOT_READY, f"InferenceService {isvc.name} is not ready yet"
    )


def _degraded(state: ServingState, gate: GateDecision, shown: str) -> _ConditionValue:
    if state is ServingState.DEGRADED:
        return _ConditionValue(
            True,
            ct.KEPT_BELOW_REQUIRED_LEVEL,
            f"InferenceService {shown} is kept serving although {gate.message}",
        )
    return _ConditionValue(False, ct.AS_EXPECTED, "nothing is served below the required level")


def _serving_waiver(
    gate: GateDecision, prior: MLTechnologyStatus, now: datetime
) -> WaiverUse | None:
    """The waiver the gate is open by, what it lowered, and since when: kept from the
    stored status while the same waiver keeps the gate open, so its use is one entry of
    the audit record, whose id follows from what is stored (a retry or a catch-up after a
    crash appends nothing twice)."""
    if gate.waiver is None:
        return None
    use = gate.waiver.use([f"servingMinimum {gate.unwaived_level} -> {gate.required_level}"])
    before = prior.serving.waiver if prior.serving else None
    same = before is not None and (before.name, before.expires_at) == (use.name, use.expires_at)
    since = before.since if same and before is not None and before.since else rfc3339(now)
    return use.model_copy(update={"since": since})


def _next_level(spec: MLTechnologySpec, level: int, policy: EffectivePolicy) -> NextLevel | None:
    if level >= MAX_LEVEL or level >= spec.target_level:
        return None
    following = level + 1
    return NextLevel(
        level=following,
        name=level_name(following),
        requirements=describe_rule(policy.rule_for(following), policy.separation_of_duties),
    )


def compute_status(
    *,
    name: str,
    namespace: str,
    spec: MLTechnologySpec,
    status: MLTechnologyStatus | None,
    generation: int,
    components: Sequence[ComponentFacts],
    policy: EffectivePolicy,
    inference_service: InferenceServiceFacts | None,
    validation_errors: Sequence[FieldError],
    now: datetime,
    owner_set_by: str | None = None,
    waivers: Sequence[WaiverInForce] = (),
    gate_closed: str | None = None,
) -> MLTechnologyStatus:
    """`waivers`: the technology's waivers in force at `now` (domain.waivers).
    `gate_closed`: why the serving gate is closed whatever the level (a lapsed
    certification under onExpiry stop or demote, domain.lifecycle_plan); no waiver opens
    it."""
    # No copy: the result shares the parts it does not change with the caller's status
    # (issue 17: three deep copies were two fifths of a plan's CPU). Safe because nothing
    # changes a status part in place: every step builds new lists and replaces models
    # with model_copy(update=...) (tests/unit/domain/test_plan.py checks that planning
    # leaves its inputs as they were).
    prior = status or MLTechnologyStatus()
    history = list(prior.history)
    entry = entry_status(prior, spec, policy)  # domain.entry: entry is approved, not declared
    level, entered = level_after_entry(prior, entry)
    if entered:
        history = append_history(history, entry_transition(level, now))
    facts, effective = _components(spec, namespace, level, components)
    gate = technology_gate(name, spec, effective, policy, waivers)
    if gate_closed is not None:
        gate = GateDecision(False, gate.required_level, effective, ct.CERTIFICATION_LAPSED,
                            gate_closed)
    state = _serving_state(spec, gate, inference_service)
    isvc = inference_service if inference_service and inference_service.exists else None
    shown = inference_service.name if inference_service else inference_service_name(name, spec)
    values = {
        ct.READY: _ready(spec, level, effective, facts, validation_errors),
        ct.SERVING_ALLOWED: _ConditionValue(gate.allowed, gate.reason, gate.message),
        ct.SERVING: _serving_condition(spec, gate, inference_service, shown),
        ct.DEGRADED: _degraded(state, gate, shown),
        ct.COMPONENTS_READY: _components_ready(facts, level, effective),
        ct.ENTRY_APPROVED: _ConditionValue(*entry_condition(entry, policy_names(policy))),
    }
    conditions: list[Condition] = list(prior.conditions)
    for type_, value in values.items():
        conditions, _ = set_condition(
            conditions,
            type=type_,
            status=value.status,
            reason=value.reason,
            message=value.message,
            generation=generation,
            now=now,
        )
    known_good = list(prior.known_good_models)
    rollback = prior.serving.rollback if prior.serving else None
    if (
        state is ServingState.SERVING
        and spec.model is not None
        and isvc is not None
        and isvc.ready_at_generation
        and rollback is None
        and isvc.model_version == spec.model.version
        # The same version from another artifact is another model (domain.lifecycle).
        and isvc.storage_uri in (None, spec.model.storage_uri)
    ):
        known_good, _ = record_known_good(known_good, spec.model, now, KNOWN_GOOD_LIMIT)
    return prior.model_copy(
        update={
            "level": level,
            "level_name": level_name(level),
            "phase": phase_of(level),
            "effective_level": effective,
            "observed_generation": generation,
            "conditions": conditions,
            "history": history,
            "known_good_models": known_good,
            "next_level": _next_level(spec, level, policy),
            "entry": entry,
            "owners": record_owner(prior.owners, spec.owner, owner_set_by, now),
            "serving": ServingStatus(
                state=state,
                allowed=gate.allowed,
                required_level=gate.required_level,
                inference_service=None
                if state is ServingState.DISABLED and isvc is None
                else shown,
                url=isvc.url if isvc else None,
                ready=isvc.ready if isvc else False,
                model_version=isvc.model_version if isvc else None,
                stopped=isvc.stopped if isvc else False,
                waiver=_serving_waiver(gate, prior, now),
            ),
        }
    )


def _moved(status: MLTechnologyStatus, transition: LevelTransition) -> MLTechnologyStatus:
    # The effective level only ever drops here, at once, so that the serving gate closes
    # on a switchback; raising it needs the components, which compute_status checks.
    effective = status.effective_level
    if effective is None or transition.to < effective:
        effective = transition.to
    return status.model_copy(
        update={
            "level": transition.to,
            "level_name": level_name(transition.to),
            "phase": phase_of(transition.to),
            "effective_level": effective,
            "history": append_history(status.history, transition),
        }
    )


def record_move(status: MLTechnologyStatus, transition: LevelTransition) -> MLTechnologyStatus:
    """Move the level as `transition` says and record it (domain.lifecycle_plan: a
    material change or a lapse that demotes)."""
    return _moved(status, transition)


def _current_level(status: MLTechnologyStatus) -> int:
    if status.level is None:
        raise ValueError("status.level is not set; compute the status first")
    return status.level


def apply_review_to_status(
    status: MLTechnologyStatus,
    review_name: str,
    spec: LevelReviewSpec,
    evaluation: ReviewEvaluation,
    now: datetime,
) -> MLTechnologyStatus:
    """Move the level as an Approved review says; compute_status derives the rest after."""
    level = _current_level(status)
    if level != spec.from_level:
        raise ValueError(
            f"review {review_name} starts at level {spec.from_level}, "
            f"but the technology is at level {level}"
        )
    return _moved(status, review_transition(review_name, spec, evaluation, now))


def apply_demotion(
    status: MLTechnologyStatus, to_level: int, alert_name: str, fingerprint: str, now: datetime
) -> MLTechnologyStatus:
    """An embedded switchback on alert; a level already at or below `to_level` stays."""
    level = _current_level(status)
    if to_level >= level:
        return status
    return _moved(status, alert_switchback(level, to_level, alert_name, fingerprint, now))
