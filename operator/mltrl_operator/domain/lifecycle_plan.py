"""What domain.lifecycle decides, applied to one technology's status inside its plan.

`settle_lifecycle` makes the one call (`decide_lifecycle`) and maps the answer onto the
status, the serving gate and the plan's events:
- the approved model (`status.approvedModel`, with the ones approved before in
  `status.approvedModels`) is set by the review that reached or kept the level (a
  promotion's or entry's approvals are bound to spec.model, so it approved that model),
  by a change review, by entry (the model the technology entered with), or where the
  policy's modelChange allows a new model to inherit the level;
- hold: a new spec.model waits in `status.pendingModel` (with why) and the approved model
  keeps serving; demote: the change is an embedded switchback to the rule's toLevel;
- the `Certified` condition; at the lapse the history records it (at the lapse instant),
  and onExpiry warns, stops serving (the gate closes) or demotes one level;
- the serving minimum (after waivers) the plan's gate uses, and `wake_at` for the timer.

A move down (demote by change or by lapse) is decided again at the new level, so the
status written is consistent with itself: at most two rounds, since after a move the
model is approved and the lower level's period starts afresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from mltrl_operator.api.lifecycle import OnExpiry
from mltrl_operator.api.review import LevelReviewSpec, ReviewType
from mltrl_operator.api.technology import (
    KNOWN_GOOD_LIMIT,
    ApprovedModel,
    MLTechnologySpec,
    MLTechnologyStatus,
    ModelSpec,
    PendingModel,
    ServingRollback,
    TransitionKind,
)
from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.approvals import review_type
from mltrl_operator.domain.conditions import get_condition, set_condition
from mltrl_operator.domain.entry import entry_floor
from mltrl_operator.domain.lifecycle import (
    CertificationState,
    LifecycleDecision,
    LifecyclePolicy,
    ModelChangeOutcome,
    ModelChangePlan,
    decide_lifecycle,
)
from mltrl_operator.domain.owners import owners_since_level
from mltrl_operator.domain.review_types import ModelRef
from mltrl_operator.domain.technology import record_move
from mltrl_operator.domain.timefmt import rfc3339
from mltrl_operator.domain.transitions import (
    append_bounded,
    append_history,
    lapse_transition,
    model_change_switchback,
)
from mltrl_operator.domain.waivers import EffectiveWaiverPolicy, WaiverFacts

# Review types whose approvals approve spec.model along with the level.
_APPROVES_MODEL = frozenset({ReviewType.PROMOTION, ReviewType.ENTRY, ReviewType.CHANGE})


@dataclass(frozen=True)
class LifecycleEvent:
    type: str
    reason: str
    message: str
    key: str


@dataclass(frozen=True)
class LifecycleOutcome:
    status: MLTechnologyStatus
    decision: LifecycleDecision
    serve: ModelSpec | None
    """The model to serve: spec.model, or the approved model while a new one is held;
    None when nothing is approved to serve."""
    gate_closed: str | None
    """Why the serving gate is closed by a lapse (onExpiry stop or demote), or None."""
    events: tuple[LifecycleEvent, ...]


def _ref(model: ModelSpec | ApprovedModel | None) -> ModelRef | None:
    return ModelRef(model.version, model.storage_uri) if model is not None else None


def _approved(model: ModelSpec, how: str, now: datetime) -> ApprovedModel:
    return ApprovedModel(
        version=model.version, storage_uri=model.storage_uri, format=model.format,
        runtime=model.runtime, approved_at=rfc3339(now), how=how,
    )


def _as_spec(model: ApprovedModel) -> ModelSpec:
    return ModelSpec(version=model.version, storage_uri=model.storage_uri,
                     format=model.format, runtime=model.runtime)


def _adopt(
    status: MLTechnologyStatus, model: ModelSpec | None, how: str, now: datetime
) -> MLTechnologyStatus:
    """`model` becomes the approved model; the one it replaces joins the approved-before
    list (a rollback to it later is not a change)."""
    if model is None:
        return status.model_copy(update={"pending_model": None})
    current = status.approved_model
    if current is not None and _ref(current) == _ref(model) and current.format == model.format:
        return status.model_copy(update={"pending_model": None})
    before = list(status.approved_models)
    if current is not None:
        before = [m for m in before if _ref(m) != _ref(current)]
        before = append_bounded(before, current, KNOWN_GOOD_LIMIT)
    return status.model_copy(update={
        "approved_model": _approved(model, how, now), "approved_models": before,
        "pending_model": None,
    })


def _bootstrap(
    status: MLTechnologyStatus, spec: MLTechnologySpec, entered: bool, now: datetime
) -> MLTechnologyStatus:
    """The first approved model: the one the technology entered with, or (for a
    technology the operator tracked before it recorded approved models) the one it has
    served at the required level."""
    if status.approved_model is not None or spec.model is None:
        return status
    if entered:
        return _adopt(status, spec.model, f"entered at level {status.level} with it", now)
    new = _ref(spec.model)
    served = any(ModelRef(m.version, m.storage_uri) == new for m in status.known_good_models)
    # Or its InferenceService serves it now: the operator served it before it recorded
    # approvals (an upgrade), since it served only what the gate allowed.
    serving = status.serving
    served = served or (
        serving is not None and serving.model_version == spec.model.version
        and serving.inference_service is not None and not serving.stopped
    )
    if served and status.pending_model is None:
        return _adopt(status, spec.model, "served at the required level before model "
                      "approvals were recorded", now)
    return status


def _after_rollback(
    status: MLTechnologyStatus, rollback: ServingRollback, now: datetime
) -> MLTechnologyStatus:
    known = rollback.model
    how = f"served by the rollback of alert {rollback.alert}"
    if known is not None:
        return _adopt(status, ModelSpec(version=known.version, storage_uri=known.storage_uri,
                                        format=known.format, runtime=known.runtime), how, now)
    current = status.approved_model  # rolled back to nothing: nothing approved serves
    if current is None:
        return status
    before = append_bounded([m for m in status.approved_models if _ref(m) != _ref(current)],
                            current, KNOWN_GOOD_LIMIT)
    return status.model_copy(update={"approved_model": None, "approved_models": before})


def _lapse_recorded(status: MLTechnologyStatus, level: int, at: str) -> bool:
    return any(
        t.kind is TransitionKind.LAPSE and t.from_level == level and t.at == at
        for t in status.history
    )


def _decide(
    status: MLTechnologyStatus, spec: MLTechnologySpec, *, name: str, serving_minimum: int,
    policy: LifecyclePolicy, waivers: Sequence[WaiverFacts],
    waiver_policy: EffectiveWaiverPolicy, now: datetime,
) -> LifecycleDecision:
    assert status.level is not None
    known_good = [ModelRef(m.version, m.storage_uri) for m in status.known_good_models]
    before = [ModelRef(m.version, m.storage_uri) for m in status.approved_models]
    return decide_lifecycle(
        technology=name, level=status.level, history=status.history, model=spec.model,
        approved_model=_ref(status.approved_model), approved_before=[*before, *known_good],
        serving_minimum=serving_minimum, policy=policy, waivers=waivers,
        waiver_policy=waiver_policy, owners=owners_since_level(spec, status), now=now,
    )


def settle_lifecycle(
    status: MLTechnologyStatus,
    spec: MLTechnologySpec,
    *,
    name: str,
    serving_minimum: int,
    policy: LifecyclePolicy,
    waivers: Sequence[WaiverFacts],
    waiver_policy: EffectiveWaiverPolicy,
    applied: tuple[str, LevelReviewSpec] | None,
    entered: bool,
    generation: int,
    now: datetime,
    rollback_ended: ServingRollback | None = None,
) -> LifecycleOutcome:
    """`status` is computed (it has a level); `applied` is the review this plan applied,
    if any; `entered` says this plan recorded the technology's entry; `rollback_ended`, a
    rollback this plan ended because spec.model changed."""
    if rollback_ended is not None:
        # What served last under approval is the rollback's known-good model, not the one
        # the alert rolled back from: it is what keeps serving while a new model waits.
        status = _after_rollback(status, rollback_ended, now)
    events: list[LifecycleEvent] = []
    if applied is not None:
        review_name, review = applied
        kind = review_type(review)
        if kind in _APPROVES_MODEL:
            status = _adopt(status, spec.model, f"{kind} review {review_name}", now)
            if kind is ReviewType.CHANGE and spec.model is not None:
                events.append(LifecycleEvent(
                    "Normal", ct.MODEL_CHANGE_APPROVED,
                    f"model {spec.model.version} approved at level {review.to_level} by "
                    f"change review {review_name}; it serves from now on",
                    key=f"change/{review_name}"))
        elif kind is ReviewType.RECERTIFY:
            events.append(LifecycleEvent(
                "Normal", ct.RECERTIFIED,
                f"level {review.to_level} re-certified by review {review_name}",
                key=f"recertify/{review_name}"))
    status = _bootstrap(status, spec, entered, now)
    floor = entry_floor(spec, status)
    gate_closed: str | None = None
    for _ in range(3):
        decision = _decide(status, spec, name=name, serving_minimum=serving_minimum,
                           policy=policy, waivers=waivers, waiver_policy=waiver_policy, now=now)
        level = status.level
        assert level is not None
        change = decision.model
        if change.outcome is ModelChangeOutcome.ADOPT:
            status = _adopt(status, spec.model, change.reason, now)
        elif change.outcome is ModelChangeOutcome.DEMOTE and spec.model is not None:
            target = max(change.to_level if change.to_level is not None else level - 1, floor)
            if target < level:
                status = record_move(status, model_change_switchback(level, target,
                                                                     change.reason, now))
                status = _adopt(status, spec.model, f"switched back to level {target} by a "
                                "material change", now)
                events.append(LifecycleEvent(
                    "Warning", ct.MODEL_CHANGE_DEMOTED, change.reason,
                    key=f"demote/{spec.model.version}/{spec.model.storage_uri}"))
                continue
            change = _hold_instead(change, level, ModelRef(spec.model.version,
                                                           spec.model.storage_uri))
        if change.outcome is ModelChangeOutcome.HOLD and change.pending is not None:
            pending = change.pending
            old = status.pending_model
            same = old is not None and ModelRef(old.version, old.storage_uri) == pending
            status = status.model_copy(update={"pending_model": PendingModel(
                version=pending.version, storage_uri=pending.storage_uri or "",
                since=old.since if same and old else rfc3339(now), reason=change.reason)})
            if not same:  # announced once, when the model is first held (named: no double)
                events.append(LifecycleEvent(
                    "Warning", ct.MODEL_CHANGE_HELD, change.reason,
                    key=f"hold/{pending.version}/{pending.storage_uri}"))
        elif change.outcome is ModelChangeOutcome.UNCHANGED:
            status = status.model_copy(update={"pending_model": None})
        certificate = decision.certification
        if certificate.state is CertificationState.EXPIRED and certificate.expires_at:
            at = rfc3339(certificate.expires_at)
            if not _lapse_recorded(status, level, at):
                target = level
                if certificate.on_expiry is OnExpiry.DEMOTE and certificate.demote_to is not None:
                    target = max(certificate.demote_to, floor)
                transition = lapse_transition(
                    level, target, f"{certificate.message} (onExpiry {certificate.on_expiry})",
                    certificate.expires_at)
                events.append(LifecycleEvent(
                    "Warning", ct.CERTIFICATION_EXPIRED,
                    f"{certificate.message}; onExpiry {certificate.on_expiry}"
                    + (f": switched back to level {target}" if target < level else ""),
                    key=f"lapse/{level}/{at}"))
                if target < level:
                    status = record_move(status, transition)
                    continue
                status = status.model_copy(update={"history": append_history(
                    status.history, transition)})
        warned = get_condition(status.conditions, ct.CERTIFIED)
        if certificate.state is CertificationState.EXPIRING and certificate.expires_at and (
            warned is None or warned.reason != ct.EXPIRING_SOON  # once, when it starts
        ):
            events.append(LifecycleEvent(
                "Warning", ct.CERTIFICATION_EXPIRING, certificate.message,
                key=f"expiring/{level}/{rfc3339(certificate.expires_at)}"))
        if decision.serving_closed_by_lapse:
            gate_closed = (f"{certificate.message}; the policy's onExpiry is "
                           f"{certificate.on_expiry}: nothing serves until it is renewed")
        break
    status = _conditions(status, spec, decision, generation, now)
    approved = status.approved_model
    serve = spec.model
    if status.pending_model is not None:
        serve = _as_spec(approved) if approved is not None else None
    return LifecycleOutcome(status, decision, serve, gate_closed, tuple(events))


def _hold_instead(change: ModelChangePlan, level: int, model: ModelRef) -> ModelChangePlan:
    """A demote rule that cannot go lower (the entry level is the floor) holds instead."""
    return replace(change, pending=model, outcome=ModelChangeOutcome.HOLD,
                   reason=f"{change.reason}; level {level} is the entry level, so the model "
                   "waits for a change review instead")


def _conditions(
    status: MLTechnologyStatus, spec: MLTechnologySpec, decision: LifecycleDecision,
    generation: int, now: datetime,
) -> MLTechnologyStatus:
    certificate = decision.certification
    # The lapse happened at its instant, not when the operator noticed it.
    when = certificate.expires_at if (
        certificate.state is CertificationState.EXPIRED and certificate.expires_at
    ) else now
    conditions, _ = set_condition(
        status.conditions, type=ct.CERTIFIED, status=certificate.certified,
        reason=certificate.reason, message=certificate.message, generation=generation,
        now=when,
    )
    pending, approved = status.pending_model, status.approved_model
    if spec.model is None:
        value = (False, ct.NO_MODEL, "spec.model is not set")
    elif pending is not None:
        value = (False, ct.PENDING_CHANGE_REVIEW, pending.reason)
    else:
        how = f": {approved.how}" if approved is not None else ""
        value = (True, ct.MODEL_REVIEWED,
                 f"model {spec.model.version} is approved at level {status.level}{how}")
    conditions, _ = set_condition(
        conditions, type=ct.MODEL_APPROVED, status=value[0], reason=value[1], message=value[2],
        generation=generation, now=now,
    )
    return status.model_copy(update={"conditions": conditions})
