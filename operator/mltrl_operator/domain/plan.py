"""One technology's reconcile as a plan: everything it will do, decided without I/O.

`plan_technology` takes what the reconciler read (the stored technology, its
InferenceService as observed, its components, the effective policy, an Approved review to
apply if any, Jobs the API server refused) and `now`, and returns a Plan: the new status
(history, incidents, rollback, known-good models, conditions), at most one serving action
with its body, the retraining Jobs to create, and the events to post.

controllers/technology.apply carries a Plan out in a fixed order, chosen so that a crash
between any two steps is repaired by the next reconcile (docs/reliability.md):

1. Jobs: named after their incident, so creating one again answers 409;
2. incident events: named after the incident and its settlement, so never doubled;
3. the status, in one conditional write: the decision is stored before anything acts on
   it; the settled incidents in it are never decided again;
4. the serving event and action: derived from the stored status and the observed
   InferenceService, so the next plan derives the same action until it is done.

The status is computed from the InferenceService as it will be after the action (created,
patched, stopped or deleted), so the write in step 3 already says what step 4 does, and
nothing is served before the promotion that allows it is stored.

One exception, `Plan.serving_first` (issue 17: an alert's latency): when the plan settles
incidents the receiver stored and its serving action serves nothing new (it stops or
deletes the InferenceService, or moves a running one to a model the stored status already
lists as known-good: a rollback), the action goes out with step 2's events, before the
status. Such an action is safe before its record: the intent is stored, the settlement is
a function of the stored status (a rollback's target is read from the status, never from
the InferenceService), so a crash before step 3 plans the same settlement again, finds the
action done and stores the status; and what serves meanwhile is nothing, or an earlier
approved model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from mltrl_operator.api.review import LevelReviewSpec
from mltrl_operator.api.technology import (
    MLTechnologySpec,
    MLTechnologyStatus,
    ModelSpec,
    ServingRollback,
)
from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.claims import name_taken, owned_by
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.gating import GateAction, demotion_action
from mltrl_operator.domain.incidents import (
    DEMOTED_EVENT,
    NORMAL_EVENTS,
    ROLLBACK_ENDED_EVENT,
    ROLLED_BACK_EVENT,
    Owner,
    PlannedJob,
    Settlement,
    carry_rollback,
    decide_incidents,
    incident_id,
    settle,
)
from mltrl_operator.domain.levels import level_name
from mltrl_operator.domain.lifecycle import LifecyclePolicy
from mltrl_operator.domain.lifecycle_plan import LifecycleEvent, settle_lifecycle
from mltrl_operator.domain.owners import (
    OWNER_SET_BY_ANNOTATION,
    integrity_events,
    owners_since_level,
)
from mltrl_operator.domain.policy import EffectivePolicy
from mltrl_operator.domain.reviews import ReviewEvaluation
from mltrl_operator.domain.serving import (
    STOP_ANNOTATION,
    alignment_patch,
    desired_inference_service,
    inference_service_facts,
    inference_service_name,
    serving_wanted,
    storage_uri_of,
)
from mltrl_operator.domain.technology import ComponentFacts, apply_review_to_status, compute_status
from mltrl_operator.domain.waivers import WaiverFacts, waivers_in_force

Body = dict[str, Any]

NORMAL = "Normal"
WARNING = "Warning"

# Serving event reasons.
SERVING_STARTED = "ServingStarted"
SERVING_RESUMED = "ServingResumed"
MODEL_ROLLED_OUT = "ModelRolledOut"
SERVING_STOPPED = "ServingStopped"
SERVING_REMOVED = "ServingRemoved"
SERVING_DELETED = "ServingDeleted"

# Level event reasons: a review applied (one event per promotion, on the technology).
PROMOTED = "Promoted"
SWITCHED_BACK = "SwitchedBack"

CREATE = "create"
PATCH = "patch"
DELETE = "delete"


@dataclass(frozen=True)
class PlannedEvent:
    type: str
    reason: str
    message: str
    key: str
    """With the object and the reason, names the event: posting it twice is one event."""


@dataclass(frozen=True)
class ServingAction:
    verb: str
    """create, patch or delete."""
    name: str
    body: Body | None
    """The object to create, or the merge patch; None for delete."""
    event: PlannedEvent | None
    """None when the transition that caused it tells it in its own event (one event per
    transition: a promotion's Promoted, an alert's RolledBack or Demoted)."""
    after: Body | None
    """The InferenceService as it will stand once the action is done."""


@dataclass(frozen=True)
class ApprovedReview:
    """A review that is Approved and may move the level now."""

    name: str
    spec: LevelReviewSpec
    evaluation: ReviewEvaluation
    uid: str = ""


def promotion_event(review: ApprovedReview, serving: PlannedEvent | None = None) -> PlannedEvent:
    """The one event of a review applied, on the technology: the level change, the review
    and its approvers, and what serving did because of it. Named after the review, so
    whoever posts it (the technology's apply when serving moved, else the review's
    reconcile) and however often, it is one event."""
    spec, evaluation = review.spec, review.evaluation
    approvers = ", ".join(evaluation.approved_by) or "nobody"
    message = (
        f"level {spec.from_level} -> {spec.to_level} ({level_name(spec.to_level)}) "
        f"by review {review.name}, approved by {approvers}"
    )
    if serving is not None:
        message = f"{message}; {serving.message}"
    promotion = evaluation.is_promotion
    return PlannedEvent(
        NORMAL if promotion else WARNING, PROMOTED if promotion else SWITCHED_BACK, message,
        key=f"review/{review.uid or review.name}",
    )


@dataclass(frozen=True)
class PlanInputs:
    technology: Body
    """The MLTechnology as stored: metadata, spec, status."""
    spec: MLTechnologySpec
    status: MLTechnologyStatus
    components: Sequence[ComponentFacts]
    validation_errors: Sequence[FieldError]
    policy: EffectivePolicy
    inference_service: Body | None
    """Our InferenceService as observed (the view, with our own writes), or None."""
    now: datetime
    review: ApprovedReview | None = None
    job_errors: Mapping[str, str] = field(default_factory=dict)
    # --- levels over time (issue 15) ---
    lifecycle: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    """modelChange and validFor as the matching policies say (lifecycle_policy)."""
    waivers: Sequence[WaiverFacts] = ()
    """The technology's MLTRLWaivers as stored; which count is decided here, at `now`, by
    who `policy.waivers` lets approve them."""


@dataclass(frozen=True)
class Plan:
    status: MLTechnologyStatus
    serving: ServingAction | None
    jobs: tuple[PlannedJob, ...]
    events: tuple[PlannedEvent, ...]
    """Posted before the status write (each is named, so a redo posts nothing new)."""
    settlements: tuple[Settlement, ...]
    review_applied: bool
    """Whether `status` carries the review's level change."""
    wake_at: datetime | None = None
    """The next instant the plan changes by itself (a certification warning or lapse, a
    waiver's expiry): the reconciler sets a timer for it."""
    serving_first: bool = False
    """The serving action goes out with the events, before the status (the module's
    docstring: only for incidents settled by stopping serving or rolling back)."""


def _owner(technology: Body) -> Owner:
    metadata = technology["metadata"]
    return Owner(metadata["name"], metadata["namespace"], metadata.get("uid") or "")


def _merged(current: Any, patch: Any) -> Any:
    """RFC 7386 merge patch, for predicting the object after our PATCH."""
    if not isinstance(patch, dict):
        return patch
    result = dict(current) if isinstance(current, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merged(result.get(key), value)
    return result


def _after_patch(current: Body, patch: Body) -> Body:
    after: Body = _merged(current, patch)
    if "spec" in patch:  # the API server bumps the generation on a spec change
        metadata = dict(after.get("metadata") or {})
        metadata["generation"] = int(metadata.get("generation") or 1) + 1
        after["metadata"] = metadata
    return after


def _stopped(body: Body) -> bool:
    return ((body.get("metadata") or {}).get("annotations") or {}).get(STOP_ANNOTATION) == "true"


def _action(
    verb: str, name: str, body: Body | None, current: Body | None, after: Body | None,
    type_: str, reason: str, message: str,
) -> ServingAction:
    # The key names the event by what it says: the same action telling the same thing is
    # one event object, a series when it happens again (controllers.technology counts an
    # occurrence by the technology's stored version, so a redo is not a repeat).
    key = f"{verb}/{name}/{message}"
    return ServingAction(verb, name, body, PlannedEvent(type_, reason, message, key), after)


def _stop(name: str, current: Body, why: str) -> ServingAction | None:
    """Stopped, not deleted: KServe keeps the object and its history and serves nothing."""
    if _stopped(current):
        return None
    patch = {"metadata": {"annotations": {STOP_ANNOTATION: "true"}}}
    return _action(
        PATCH, name, patch, current, _after_patch(current, patch), WARNING, SERVING_STOPPED,
        f"stopped InferenceService {name}: {why}",
    )


def serving_action(
    owner: Owner,
    spec: MLTechnologySpec,
    status: MLTechnologyStatus,
    policy: EffectivePolicy,
    current: Body | None,
    serve: ModelSpec | None = None,
    *,
    approved_only: bool = False,
) -> ServingAction | None:
    """What to do with our InferenceService so that it matches `status`; None when it does.

    `serve` is the model approved to serve (domain.lifecycle_plan: the approved model while
    a new spec.model waits for its change review); with `approved_only` and no such model,
    nothing is served."""
    name = inference_service_name(owner.name, spec)
    if current is not None and not owned_by(current, owner.uid):
        return None  # someone else's: governed as a foreign InferenceService
    gate_open = bool(status.serving and status.serving.allowed)
    healthy = not any(
        c.type == ct.READY and c.reason == ct.VALIDATION_FAILED for c in status.conditions
    )
    rollback = status.serving.rollback if status.serving else None
    if serving_wanted(spec) and gate_open and healthy and spec.model is not None:
        approved = serve if serve is not None or approved_only else spec.model
        model = rollback.model if rollback else approved
        if model is None:  # a rollback with no earlier known-good model, or none approved
            if current is None:
                return None
            why = ("rolled back with no earlier known-good model to serve" if rollback
                   else f"model {spec.model.version} waits for a change review and no "
                   "earlier model was approved")
            return _stop(name, current, why)
        desired = desired_inference_service(
            name, owner.namespace, owner.name, owner.uid, spec, model
        )
        if current is None:
            after = {**desired, "metadata": {**desired["metadata"], "generation": 1}}
            return _action(
                CREATE, name, desired, None, after, NORMAL, SERVING_STARTED,
                f"created InferenceService {name} serving model {model.version}",
            )
        patch = alignment_patch(current, desired)
        if not patch:
            return None
        reason, message = (
            (SERVING_RESUMED, f"resumed InferenceService {name}")
            if _stopped(current)
            else (MODEL_ROLLED_OUT, f"InferenceService {name} now serves model {model.version}")
        )
        return _action(
            PATCH, name, patch, current, _after_patch(current, patch), NORMAL, reason, message
        )
    if current is None:
        return None
    if not serving_wanted(spec):
        return _action(
            DELETE, name, None, current, None, NORMAL, SERVING_REMOVED,
            f"deleted InferenceService {name}: serving is disabled or no model is set",
        )
    gate = next((c for c in status.conditions if c.type == ct.SERVING_ALLOWED), None)
    gate_message = gate.message if gate else ""
    if gate is not None and gate.reason == ct.CERTIFICATION_LAPSED and (
        demotion_action(policy) is not GateAction.WARN
    ):
        return _stop(name, current, gate_message)  # onExpiry stop: whatever onDemotion says
    why = f"below the required level. {gate_message}".strip()
    match demotion_action(policy):
        case GateAction.DELETE:
            return _action(
                DELETE, name, None, current, None, WARNING, SERVING_DELETED,
                f"deleted InferenceService {name}: {why}",
            )
        case GateAction.STOP:
            return _stop(name, current, why)
    return None


def _settlement_events(
    settlements: Sequence[Settlement], status: MLTechnologyStatus
) -> list[PlannedEvent]:
    events = []
    for settlement in settlements:
        incident = settlement.incident
        message = next(
            (
                i.message for i in status.incidents
                if (i.fingerprint, i.starts_at) == (incident.fingerprint, incident.starts_at)
            ),
            settlement.message,
        )
        events.append(PlannedEvent(
            NORMAL if settlement.reason in NORMAL_EVENTS else WARNING,
            settlement.reason,
            f"alert {incident.alert_name} ({incident.fingerprint}): {message}",
            key=f"incident/{incident_id(incident)}/{settlement.state}",
        ))
    return events


def _told_once(
    action: ServingAction, settled: list[PlannedEvent], review: ApprovedReview | None
) -> tuple[ServingAction, list[PlannedEvent]]:
    """One event per transition (issue 17): serving moved by a promotion is told in the
    promotion's event, serving moved by an alert's rollback or demotion in its settlement
    event, serving moved by a new model that ends a rollback in RollbackEnded; the serving
    action then posts none of its own."""
    if action.event is None:
        return action, settled
    if review is not None:
        return replace(action, event=promotion_event(review, action.event)), settled
    acting = [i for i, event in enumerate(settled)
              if event.reason in (ROLLED_BACK_EVENT, DEMOTED_EVENT, ROLLBACK_ENDED_EVENT)]
    if not acting:
        return action, settled
    told = settled[acting[-1]]
    settled = list(settled)
    settled[acting[-1]] = replace(told, message=f"{told.message}; {action.event.message}")
    return replace(action, event=None), settled


_REVIEWED = (ct.MODEL_CHANGE_APPROVED, ct.RECERTIFIED)
_LIFECYCLE_MOVES = (ct.MODEL_CHANGE_DEMOTED, ct.CERTIFICATION_EXPIRED)


def _told_in_lifecycle(
    action: ServingAction, told: list[PlannedEvent], reasons: tuple[str, ...]
) -> tuple[ServingAction, list[PlannedEvent]]:
    """Serving moved by a lifecycle transition (a change or re-certification review
    applied, a demote by modelChange, a lapse) is told in that transition's event (one
    event per transition); the serving action then posts none of its own."""
    reviewed = [i for i, event in enumerate(told) if event.reason in reasons]
    if action.event is None or not reviewed:
        return action, told
    told = list(told)
    event = told[reviewed[0]]
    told[reviewed[0]] = replace(event, message=f"{event.message}; {action.event.message}")
    return replace(action, event=None), told


def _rollback_ended(start: MLTechnologyStatus, status: MLTechnologyStatus) -> list[PlannedEvent]:
    before = start.serving.rollback if start.serving else None
    after = status.serving.rollback if status.serving else None
    if before is None or after is not None or status.serving is None:
        return []
    return [PlannedEvent(
        NORMAL, ROLLBACK_ENDED_EVENT,
        f"spec.model changed from {before.replaced_version}; the rollback to "
        f"{before.model.version if before.model else 'no model'} no longer applies",
        key=f"rollback/{before.alert}/{before.at}",
    )]


def _integrity_events(
    old: MLTechnologyStatus, new: MLTechnologyStatus, generation: int
) -> list[PlannedEvent]:
    """domain.owners' events (an owner change, an entry held at maxLevel), named so that
    a redo after a crash or a conflict posts nothing new: an owner change by the spec
    generation that made it, an entry by the level asked for."""
    events = []
    for type_, reason, message in integrity_events(old, new):
        if reason == ct.OWNER_CHANGED:
            key = f"owner/{generation}/{new.owners[-1].name}"
        else:
            key = f"entry/{new.entry.level if new.entry else '-'}"
        events.append(PlannedEvent(type_, reason, message, key=key))
    return events


def plan_technology(inputs: PlanInputs) -> Plan:
    technology = inputs.technology
    metadata = technology["metadata"]
    owner = _owner(technology)
    spec = inputs.spec
    isvc_name = inference_service_name(owner.name, spec)
    generation = int(metadata.get("generation") or 1)
    owner_set_by = (metadata.get("annotations") or {}).get(OWNER_SET_BY_ANNOTATION)
    validation_errors = list(inputs.validation_errors)
    observed = inputs.inference_service
    if observed is not None and not owned_by(observed, owner.uid):
        # domain.claims: status never reports an InferenceService the technology does not
        # own (serving_action leaves it alone; governance checks it as a foreign one).
        validation_errors.append(name_taken(isvc_name, owner.name))
        observed = None

    in_force = waivers_in_force(
        inputs.waivers, technology=owner.name, policy=inputs.policy.waivers,
        owners=owners_since_level(spec, inputs.status), now=inputs.now,
    )

    def compute(
        base: MLTechnologyStatus, isvc: Body | None, gate_closed: str | None = None
    ) -> MLTechnologyStatus:
        computed = compute_status(
            name=owner.name,
            namespace=owner.namespace,
            spec=spec,
            status=base,
            generation=generation,
            components=inputs.components,
            policy=inputs.policy,
            inference_service=inference_service_facts(isvc_name, isvc),
            validation_errors=validation_errors,
            now=inputs.now,
            owner_set_by=owner_set_by,
            waivers=in_force,
            gate_closed=gate_closed,
        )
        return carry_rollback(base, computed, spec)

    start = inputs.status
    review_applied = False
    review = inputs.review
    if review is not None:
        if start.level is None:  # give it its entry level first, then move it
            start = compute(start, observed)
        if start.level == review.spec.from_level:
            start = apply_review_to_status(
                start, review.name, review.spec, review.evaluation, inputs.now
            )
            review_applied = True
    decided = decide_incidents(owner, spec, start, inputs.now, inputs.job_errors)
    # Levels over time: the model approved to serve and the certification
    # (domain.lifecycle_plan makes the one decide_lifecycle call). The serving gate lowers
    # the policy's minimum by the waivers in force itself (compute_status(waivers=)), so
    # status.serving.waiver names the waiver that keeps it open.
    computed = compute(decided.status, observed)
    life = settle_lifecycle(
        computed,
        spec,
        name=owner.name,
        serving_minimum=inputs.policy.minimum_serving_level,
        policy=inputs.lifecycle,
        waivers=inputs.waivers,
        waiver_policy=inputs.policy.waivers,
        applied=(review.name, review.spec) if review is not None and review_applied else None,
        entered=inputs.status.level is None,
        rollback_ended=_ended_rollback(start, computed),
        generation=generation,
        now=inputs.now,
    )
    status = compute(life.status, observed, life.gate_closed)
    action = serving_action(owner, spec, status, inputs.policy, inputs.inference_service,
                            life.serve, approved_only=True)
    if action is not None:
        status = compute(life.status, action.after, life.gate_closed)
    status = settle(status, decided.settlements)
    told = _settlement_events(decided.settlements, status) + _rollback_ended(start, status)
    lifecycle_told = [_lifecycle_event(event) for event in life.events]
    moved_by = review if review_applied and review is not None and (
        review.spec.to_level != review.spec.from_level) else None
    if action is not None and review_applied and moved_by is None:
        # A change or re-certification review keeps the level: its one event is the
        # lifecycle's (ModelChangeApproved, Recertified), telling the serving it started.
        action, lifecycle_told = _told_in_lifecycle(action, lifecycle_told, _REVIEWED)
    if action is not None:
        action, told = _told_once(action, told, moved_by)
    if action is not None:
        # A demote by modelChange or a lapse that stopped serving tells the stop itself.
        action, lifecycle_told = _told_in_lifecycle(action, lifecycle_told, _LIFECYCLE_MOVES)
    events = told + _integrity_events(inputs.status, status, generation) + lifecycle_told
    first = _safe_before_status(action, decided.settlements, decided.jobs, review_applied,
                                inputs.status, inputs.inference_service)
    return Plan(
        status=status,
        serving=action,
        jobs=decided.jobs,
        events=tuple(events),
        settlements=decided.settlements,
        review_applied=review_applied,
        wake_at=life.decision.wake_at,
        serving_first=first,
    )


def _safe_before_status(
    action: ServingAction | None,
    settlements: Sequence[Settlement],
    jobs: Sequence[PlannedJob],
    review_applied: bool,
    stored: MLTechnologyStatus,
    current: Body | None,
) -> bool:
    """Whether the serving action may go out before the status that settles the stored
    incidents (Plan.serving_first). Only when nothing but incidents moves (no review
    applied, no Job to create), the settlement's event tells the action, and the action
    serves nothing new: a deletion, a stop, or a running InferenceService moved to a model
    the stored status already lists as known-good (served while the level was met)."""
    if action is None or not settlements or jobs or review_applied or action.event is not None:
        return False
    if action.verb == DELETE:
        return True
    if action.verb != PATCH or current is None or action.after is None or _stopped(current):
        return False
    if _stopped(action.after):
        return True
    uri = storage_uri_of(action.after)
    return uri is not None and uri in {model.storage_uri for model in stored.known_good_models}


def _ended_rollback(
    start: MLTechnologyStatus, status: MLTechnologyStatus
) -> ServingRollback | None:
    """The rollback this plan ended (spec.model changed), if any."""
    before = start.serving.rollback if start.serving else None
    after = status.serving.rollback if status.serving else None
    return before if before is not None and after is None else None


def _lifecycle_event(event: LifecycleEvent) -> PlannedEvent:
    return PlannedEvent(event.type, event.reason, event.message, key=event.key)
