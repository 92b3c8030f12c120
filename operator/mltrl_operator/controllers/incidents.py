"""Acting on incidents: the receiver records an alert as intent, the reconcile carries it out.

Everything here runs inside a technology's reconcile, on the snapshot it computes from, and
the incident is settled (Acted or Failed) in the same conditional status write that carries
the consequences (a lower level, a rollback), so an action is taken exactly once:

- a crash before that write leaves the incident Pending and the next reconcile does it
  again from the same stored state, to the same result;
- the rollback target is read from the status (what the operator decided to serve), not
  from the InferenceService, so redoing a rollback never rolls back one model further;
- a retraining Job has a name derived from the incident, so creating it again answers
  409 AlreadyExists, which means it is already done.

Side effects that are not part of the status (the Job, events, metrics) are idempotent or
happen only once the write succeeded.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mltrl_operator import metrics
from mltrl_operator.api.common import API_VERSION
from mltrl_operator.api.technology import (
    AlertAction,
    Incident,
    MLTechnologySpec,
    MLTechnologyStatus,
    ServingRollback,
    ServingStatus,
)
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.domain.alerts import (
    ACTED,
    FAILED,
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
from mltrl_operator.k8s.errors import ApiError, Conflict
from mltrl_operator.k8s.events import NORMAL, WARNING
from mltrl_operator.k8s.resources import JOBS

INCIDENT_LABEL = "mltrl.dev/incident"
ALERT_ANNOTATION = "mltrl.dev/alert"
FINGERPRINT_ANNOTATION = "mltrl.dev/alert-fingerprint"
STARTS_AT_ANNOTATION = "mltrl.dev/alert-starts-at"

logger = logging.getLogger(__name__)

Body = dict[str, Any]


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
class IncidentWork:
    status: MLTechnologyStatus
    """The status to compute from: levels moved and rollbacks decided."""
    settlements: tuple[Settlement, ...] = field(default_factory=tuple)


def incident_id(incident: Incident) -> str:
    """A short, stable name for one incident: Alertmanager's fingerprint and start time."""
    key = f"{incident.fingerprint}/{incident.starts_at}".encode()
    return hashlib.sha256(key).hexdigest()[:16]


def retraining_job_name(technology: str, incident: Incident) -> str:
    # 63 characters at most: the Job controller copies the name into a label of its pods.
    suffix = f"-retrain-{incident_id(incident)}"
    return technology[: 63 - len(suffix)].rstrip("-.") + suffix


def _served_version(spec: MLTechnologySpec, rollback: ServingRollback | None) -> str | None:
    if rollback is not None:
        return rollback.model.version if rollback.model else rollback.replaced_version
    return spec.model.version if spec.model else None


def _with_rollback(
    status: MLTechnologyStatus, rollback: ServingRollback | None
) -> MLTechnologyStatus:
    serving = status.serving or ServingStatus()
    return status.model_copy(update={"serving": serving.model_copy(update={"rollback": rollback})})


def _rollback(
    spec: MLTechnologySpec, status: MLTechnologyStatus, incident: Incident, now: datetime
) -> tuple[MLTechnologyStatus, Settlement]:
    if spec.model is None:
        return status, Settlement(
            incident, FAILED, "not rolled back: spec.model is not set", "RollbackFailed"
        )
    current = status.serving.rollback if status.serving else None
    served = _served_version(spec, current)
    target = rollback_target(status.known_good_models, served)
    rollback = ServingRollback(
        model=target.model_copy() if target else None,
        replaced_version=spec.model.version,
        replaced_storage_uri=spec.model.storage_uri,
        alert=alert_reference(incident.alert_name, incident.fingerprint),
        at=rfc3339(now),
    )
    if target is None:
        message = (
            f"no known-good model was served before {served}; serving is stopped until "
            "spec.model changes"
        )
    else:
        message = (
            f"serving known-good model {target.version} ({target.storage_uri}) instead of "
            f"{served} until spec.model changes"
        )
    return _with_rollback(status, rollback), Settlement(incident, ACTED, message, "RolledBack")


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
        return status, Settlement(incident, FAILED, f"not demoted: {problem}", "DemotionRefused")
    from_level = status.level
    demoted = apply_demotion(status, to_level, incident.alert_name, incident.fingerprint, now)
    message = (
        f"embedded switchback from level {from_level} to {to_level} ({level_name(to_level)}); "
        "going back up takes new reviews"
    )
    return demoted, Settlement(incident, ACTED, message, "Demoted")


def _job_body(
    technology: Body, spec: MLTechnologySpec, incident: Incident, name: str
) -> Body | str:
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
    metadata = technology["metadata"]
    return {
        "metadata": {
            "name": name,
            "namespace": metadata["namespace"],
            "labels": {
                **(extra.get("labels") or {}),
                TECHNOLOGY_LABEL: metadata["name"],
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
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": job_spec,
    }


async def _retrain(
    ctx: OperatorContext, technology: Body, spec: MLTechnologySpec, incident: Incident
) -> Settlement:
    metadata = technology["metadata"]
    name = retraining_job_name(metadata["name"], incident)
    body = _job_body(technology, spec, incident, name)
    if isinstance(body, str):
        return Settlement(incident, FAILED, f"no retraining: {body}", "RetrainingFailed")
    try:
        await ctx.client.create(JOBS, metadata["namespace"], body)
        message = f"created Job {name} from spec.retraining.jobTemplate"
    except Conflict:
        message = f"Job {name} was already created for this incident"
    except ApiError as error:
        if error.status >= 500:
            raise  # the API server may recover: the incident stays Pending for the next pass
        return Settlement(
            incident, FAILED, f"could not create Job {name}: {error}", "RetrainingFailed"
        )
    return Settlement(incident, ACTED, message, "RetrainingStarted", job=name)


async def act_on_incidents(
    ctx: OperatorContext,
    technology: Body,
    spec: MLTechnologySpec,
    status: MLTechnologyStatus,
    now: datetime,
) -> IncidentWork:
    """Carry out every Pending incident on `status`, oldest first."""
    pending = pending_incidents(status.incidents)
    if not pending:
        return IncidentWork(status)
    name = technology["metadata"]["name"]
    settlements: list[Settlement] = []
    for incident in pending:
        match incident.action:
            case AlertAction.ROLLBACK:
                status, settlement = _rollback(spec, status, incident, now)
            case AlertAction.DEMOTE:
                if status.level is None:
                    continue  # not reconciled yet: this pass gives it a level, the next acts
                status, settlement = _demote(name, spec, status, incident, now)
            case AlertAction.RETRAIN:
                settlement = await _retrain(ctx, technology, spec, incident)
            case AlertAction.NOTIFY:
                settlement = Settlement(
                    incident, ACTED, "reported only (notify)", "AlertNotified"
                )
        settlements.append(settlement)
    return IncidentWork(status, tuple(settlements))


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
    return _with_rollback(computed, rollback)


def settle(status: MLTechnologyStatus, settlements: Sequence[Settlement]) -> MLTechnologyStatus:
    incidents = list(status.incidents)
    serving = status.serving.state if status.serving else None
    for settlement in settlements:
        message = settlement.message
        if settlement.reason == "Demoted" and serving is not None:
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


def _seconds_since(starts_at: str) -> float | None:
    try:
        started = datetime.fromisoformat(starts_at)
    except ValueError:
        return None
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return (datetime.now(UTC) - started).total_seconds()


async def announce(
    ctx: OperatorContext,
    technology: Body,
    start: MLTechnologyStatus,
    status: MLTechnologyStatus,
    settlements: Sequence[Settlement],
    now: datetime,
) -> None:
    """Events and metrics, once the status that records the actions is stored."""
    for settlement in settlements:
        incident = settlement.incident
        acted = settlement.state == ACTED
        message = next(
            (
                i.message for i in status.incidents
                if (i.fingerprint, i.starts_at) == (incident.fingerprint, incident.starts_at)
            ),
            settlement.message,
        )
        await ctx.events.record(
            technology,
            type=NORMAL if settlement.reason in ("RetrainingStarted", "AlertNotified") else WARNING,
            reason=settlement.reason,
            message=f"alert {incident.alert_name} ({incident.fingerprint}): {message}",
            now=now,
        )
        metrics.count_alert_action(str(incident.action), "acted" if acted else "failed")
        if acted and (seconds := _seconds_since(incident.starts_at)) is not None:
            metrics.observe_alert_to_action(seconds)
    before = start.serving.rollback if start.serving else None
    after = status.serving.rollback if status.serving else None
    if before is not None and after is None and status.serving is not None:
        await ctx.events.record(
            technology, type=NORMAL, reason="RollbackEnded", now=now,
            message=f"spec.model changed from {before.replaced_version}; the rollback to "
            f"{before.model.version if before.model else 'no model'} no longer applies",
        )
