"""What a technology's reconcile does about its Pending incidents, decided without I/O.

An incident is settled (Acted or Failed) in the same conditional status write that carries
its consequences (a lower level, a rollback), so it is acted on exactly once:

- a crash before that write leaves the incident Pending, and the next reconcile decides
  again from the same stored state, to the same result;
- the rollback target is read from the status (what the operator decided to serve), not
  from the InferenceService, so redoing a rollback never rolls back one model further;
- a model rolled back from leaves the known-good timeline, so it is never chosen again
  until it is shipped anew (served Ready as spec.model at its own generation);
- a retraining Job's name is derived from the incident, so creating it again answers
  409 AlreadyExists, which means it is already done.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mltrl_operator.api.common import API_VERSION
from mltrl_operator.api.technology import (
    AlertAction,
    Incident,
    KnownGoodModel,
    MLTechnologySpec,
    MLTechnologyStatus,
    ServingRollback,
    ServingStatus,
)
from mltrl_operator.domain.alerts import (
    ACTED,
    FAILED,
    alert_id,
    demotion_problem,
    pending_incidents,
    settle_incident,
)
from mltrl_operator.domain.levels import DEFAULT_DEMOTE_LEVEL, level_name
from mltrl_operator.domain.reviews import technology_facts
from mltrl_operator.domain.serving import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    TECHNOLOGY_LABEL,
    rollback_target,
)
from mltrl_operator.domain.technology import apply_demotion
from mltrl_operator.domain.timefmt import rfc3339
from mltrl_operator.domain.transitions import alert_reference

INCIDENT_LABEL = "mltrl.dev/incident"
ALERT_ANNOTATION = "mltrl.dev/alert"
FINGERPRINT_ANNOTATION = "mltrl.dev/alert-fingerprint"
STARTS_AT_ANNOTATION = "mltrl.dev/alert-starts-at"

# Event reasons of settled incidents (what `kubectl describe` shows).
ROLLED_BACK_EVENT = "RolledBack"
ROLLBACK_FAILED_EVENT = "RollbackFailed"
DEMOTED_EVENT = "Demoted"
DEMOTION_REFUSED_EVENT = "DemotionRefused"
RETRAINING_STARTED_EVENT = "RetrainingStarted"
RETRAINING_FAILED_EVENT = "RetrainingFailed"
ALERT_NOTIFIED_EVENT = "AlertNotified"
ROLLBACK_ENDED_EVENT = "RollbackEnded"
# Posted by the alerts receiver: an alert resolved before or after it was acted on.
ALERT_RESOLVED_EVENT = "AlertResolved"
NORMAL_EVENTS = frozenset({RETRAINING_STARTED_EVENT, ALERT_NOTIFIED_EVENT})

Body = dict[str, Any]


@dataclass(frozen=True)
class Owner:
    """The technology the children belong to."""

    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class Settlement:
    incident: Incident
    state: str
    """Acted or Failed."""
    message: str
    reason: str
    """The event's reason."""
    job: str | None = None


@dataclass(frozen=True)
class PlannedJob:
    name: str
    body: Body


@dataclass(frozen=True)
class IncidentDecisions:
    status: MLTechnologyStatus
    """The status to compute from: levels moved and rollbacks decided."""
    settlements: tuple[Settlement, ...] = ()
    jobs: tuple[PlannedJob, ...] = field(default_factory=tuple)


def incident_id(incident: Incident) -> str:
    """A short, stable name for one incident: Alertmanager's fingerprint and start time."""
    return alert_id(incident.fingerprint, incident.starts_at)


def retraining_job_name(technology: str, incident: Incident) -> str:
    # 63 characters at most: the Job controller copies the name into a label of its pods.
    suffix = f"-retrain-{incident_id(incident)}"
    return technology[: 63 - len(suffix)].rstrip("-.") + suffix


def served_version(spec: MLTechnologySpec, rollback: ServingRollback | None) -> str | None:
    if rollback is not None:
        return rollback.model.version if rollback.model else None
    return spec.model.version if spec.model else None


def with_rollback(
    status: MLTechnologyStatus, rollback: ServingRollback | None
) -> MLTechnologyStatus:
    serving = status.serving or ServingStatus()
    return status.model_copy(update={"serving": serving.model_copy(update={"rollback": rollback})})


def _without(known: Sequence[KnownGoodModel], versions: set[str | None]) -> list[KnownGoodModel]:
    return [entry for entry in known if entry.version not in versions]


def _rollback(
    spec: MLTechnologySpec, status: MLTechnologyStatus, incident: Incident, now: datetime
) -> tuple[MLTechnologyStatus, Settlement]:
    if spec.model is None:
        return status, Settlement(
            incident, FAILED, "not rolled back: spec.model is not set", ROLLBACK_FAILED_EVENT
        )
    current = status.serving.rollback if status.serving else None
    served = served_version(spec, current) if current is None or current.model else None
    # What we roll back from is known-bad: it leaves the timeline until shipped anew.
    withdrawn = {spec.model.version, served}
    target = rollback_target(status.known_good_models, served)
    if target is not None and target.version in withdrawn:
        target = None
    known = _without(status.known_good_models, withdrawn)
    if current is not None and current.model is None:
        target = None  # already stopped with nothing to fall back to
    rollback = ServingRollback(
        model=target.model_copy() if target else None,
        replaced_version=spec.model.version,
        replaced_storage_uri=spec.model.storage_uri,
        alert=alert_reference(incident.alert_name, incident.fingerprint),
        at=rfc3339(now),
    )
    shown = served or spec.model.version
    if target is None:
        message = (
            f"no known-good model was served before {shown}; serving is stopped until "
            "spec.model changes"
        )
    else:
        message = (
            f"serving known-good model {target.version} ({target.storage_uri}) instead of "
            f"{shown} until spec.model changes"
        )
    rolled = with_rollback(status, rollback).model_copy(update={"known_good_models": known})
    return rolled, Settlement(incident, ACTED, message, ROLLED_BACK_EVENT)


def _demote(
    name: str,
    spec: MLTechnologySpec,
    status: MLTechnologyStatus,
    incident: Incident,
    now: datetime,
) -> tuple[MLTechnologyStatus, Settlement]:
    to_level = incident.to_level if incident.to_level is not None else DEFAULT_DEMOTE_LEVEL
    problem = demotion_problem(technology_facts(name, spec, status), to_level)
    if problem:
        return status, Settlement(
            incident, FAILED, f"not demoted: {problem}", DEMOTION_REFUSED_EVENT
        )
    from_level = status.level
    demoted = apply_demotion(status, to_level, incident.alert_name, incident.fingerprint, now)
    message = (
        f"embedded switchback from level {from_level} to {to_level} ({level_name(to_level)}); "
        "going back up takes new reviews"
    )
    return demoted, Settlement(incident, ACTED, message, DEMOTED_EVENT)


def job_body(owner: Owner, spec: MLTechnologySpec, incident: Incident, name: str) -> Body | str:
    """The retraining Job, or why there is none."""
    template = spec.retraining.job_template if spec.retraining else {}
    if not template:
        return "spec.retraining.jobTemplate is not set"
    template = copy.deepcopy(template)
    extra: dict[str, Any] = {}
    if "template" in template:
        job_spec = template
    elif isinstance(template.get("spec"), dict) and "template" in template["spec"]:
        job_spec = template["spec"]
        extra = template.get("metadata") or {}
    else:
        return "spec.retraining.jobTemplate has no pod template (spec.template of a Job)"
    return {
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": {
                **(extra.get("labels") or {}),
                TECHNOLOGY_LABEL: owner.name,
                INCIDENT_LABEL: incident_id(incident),
                MANAGED_BY_LABEL: MANAGED_BY,
            },
            "annotations": {
                **(extra.get("annotations") or {}),
                ALERT_ANNOTATION: incident.alert_name,
                FINGERPRINT_ANNOTATION: incident.fingerprint,
                STARTS_AT_ANNOTATION: incident.starts_at,
            },
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "MLTechnology",
                    "name": owner.name,
                    "uid": owner.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": job_spec,
    }


def _retrain(
    owner: Owner,
    spec: MLTechnologySpec,
    incident: Incident,
    job_errors: Mapping[str, str],
) -> tuple[Settlement, PlannedJob | None]:
    name = retraining_job_name(owner.name, incident)
    body = job_body(owner, spec, incident, name)
    if isinstance(body, str):
        return Settlement(
            incident, FAILED, f"no retraining: {body}", RETRAINING_FAILED_EVENT
        ), None
    if name in job_errors:
        return Settlement(
            incident, FAILED, f"could not create Job {name}: {job_errors[name]}",
            RETRAINING_FAILED_EVENT,
        ), None
    message = f"created Job {name} from spec.retraining.jobTemplate"
    return Settlement(
        incident, ACTED, message, RETRAINING_STARTED_EVENT, job=name
    ), PlannedJob(name, body)


def decide_incidents(
    owner: Owner,
    spec: MLTechnologySpec,
    status: MLTechnologyStatus,
    now: datetime,
    job_errors: Mapping[str, str] | None = None,
) -> IncidentDecisions:
    """Decide every Pending incident on `status`, oldest first.

    `job_errors` holds the Jobs the API server refused for good (4xx other than 409), by
    name, so the plan made again after such a refusal settles their incidents as Failed.
    """
    pending = pending_incidents(status.incidents)
    if not pending:
        return IncidentDecisions(status)
    settlements: list[Settlement] = []
    jobs: list[PlannedJob] = []
    for incident in pending:
        match incident.action:
            case AlertAction.ROLLBACK:
                status, settlement = _rollback(spec, status, incident, now)
            case AlertAction.DEMOTE:
                if status.level is None:
                    continue  # not reconciled yet: this pass gives it a level, the next acts
                status, settlement = _demote(owner.name, spec, status, incident, now)
            case AlertAction.RETRAIN:
                settlement, job = _retrain(owner, spec, incident, job_errors or {})
                if job is not None:
                    jobs.append(job)
            case AlertAction.NOTIFY:
                settlement = Settlement(
                    incident, ACTED, "reported only (notify)", ALERT_NOTIFIED_EVENT
                )
        settlements.append(settlement)
    return IncidentDecisions(status, tuple(settlements), tuple(jobs))


def carry_rollback(
    start: MLTechnologyStatus, computed: MLTechnologyStatus, spec: MLTechnologySpec
) -> MLTechnologyStatus:
    """Keep the rollback across compute_status, which rebuilds status.serving, unless
    spec.model has moved on from the model the rollback replaced."""
    rollback = start.serving.rollback if start.serving else None
    if rollback is None or computed.serving is None:
        return computed
    if spec.model is None or (spec.model.version, spec.model.storage_uri) != (
        rollback.replaced_version,
        rollback.replaced_storage_uri,
    ):
        rollback = None
    return with_rollback(computed, rollback)


def settle(status: MLTechnologyStatus, settlements: Sequence[Settlement]) -> MLTechnologyStatus:
    incidents = list(status.incidents)
    serving = status.serving.state if status.serving else None
    for settlement in settlements:
        message = settlement.message
        if settlement.reason == DEMOTED_EVENT and serving is not None:
            message += f"; serving is now {serving}"
        incidents, _ = settle_incident(
            incidents,
            settlement.incident.fingerprint,
            settlement.incident.starts_at,
            state=settlement.state,
            message=message,
            job=settlement.job,
        )
    return status.model_copy(update={"incidents": incidents})
