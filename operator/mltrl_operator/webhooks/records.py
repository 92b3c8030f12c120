"""The webhook endpoints of issue 15's kinds: the audit record (every operation, DELETE
included, since removing a chunk is tampering too) and waivers (approvals stamped with the
requester as review approvals are; length, expiry, technology and approvers checked).

They sit beside `rules.ENDPOINTS` rather than inside it because `rules.admit` admits every
DELETE, and the audit record must refuse those.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, cast

from pydantic import ValidationError

from mltrl_operator.api.common import GROUP
from mltrl_operator.api.waiver import MLTRLWaiverSpec
from mltrl_operator.domain.admission import (
    BAD_REQUEST,
    FORBIDDEN,
    INVALID,
    Verdict,
    allow,
    forbid,
    refuse,
)
from mltrl_operator.domain.audit import audit_record_verdict
from mltrl_operator.domain.durations import parse_instant
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.policy import NamedPolicy, matching_policies
from mltrl_operator.domain.timefmt import rfc3339
from mltrl_operator.domain.waiver_admission import stamp_waiver_approvals, waiver_errors
from mltrl_operator.domain.waivers import EffectiveWaiverPolicy, waiver_policy
from mltrl_operator.webhooks.configuration import operator_username
from mltrl_operator.webhooks.rules import ClusterState, Endpoint, Settings
from mltrl_operator.webhooks.wire import AdmissionRequest

Body = dict[str, Any]


class PolicyReader(Protocol):
    """What the waiver rules read beyond `ClusterState` (KubeClusterState has both)."""

    async def policies(self) -> list[NamedPolicy]: ...

    async def namespace_labels(self, namespace: str) -> dict[str, str]: ...


async def validate_audit_record(
    request: AdmissionRequest, state: ClusterState, settings: Settings
) -> Verdict:
    return audit_record_verdict(
        request.requester, request.operation, request.name, operator=operator_username()
    )


def _spec(body: Body | None) -> Body:
    spec = (body or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


async def _waiver_policy(state: ClusterState, namespace: str) -> EffectiveWaiverPolicy:
    reader = cast(PolicyReader, state)
    labels = await reader.namespace_labels(namespace)
    return waiver_policy(matching_policies(await reader.policies(), labels))


async def mutate_waiver(
    request: AdmissionRequest, state: ClusterState, settings: Settings
) -> Verdict:
    if request.sub_resource or request.object is None:
        return allow()
    old = request.old_object if request.operation == "UPDATE" else None
    return allow(patch=stamp_waiver_approvals(
        _spec(old) if old is not None else None, _spec(request.object), request.requester,
        now=rfc3339(settings.clock()),
    ))


def _created_at(old: Body | None, now: datetime) -> datetime:
    stamp = ((old or {}).get("metadata") or {}).get("creationTimestamp")
    try:
        return parse_instant(stamp) if isinstance(stamp, str) else now
    except ValueError:
        return now


async def validate_waiver(
    request: AdmissionRequest, state: ClusterState, settings: Settings
) -> Verdict:
    if request.sub_resource:
        return forbid(f"{request.name}: status: Forbidden: only the operator "
                      f"({operator_username()}) writes a waiver's status")
    if request.object is None:
        return allow()
    wire = _spec(request.object)
    try:
        spec = MLTRLWaiverSpec.model_validate({"expiresAt": "", **wire})
    except ValidationError as error:
        problems = [
            FieldError(".".join(["spec", *(str(part) for part in e["loc"])]), e["msg"])
            for e in error.errors()
        ]
        return refuse(problems, INVALID)
    old = request.old_object if request.operation == "UPDATE" else None
    now = settings.clock()
    technology = await state.technology(request.namespace, spec.technology)
    errors = waiver_errors(
        spec, wire, _spec(old) if old is not None else None,
        requester=request.requester,
        technology_exists=technology is not None,
        policy=await _waiver_policy(state, request.namespace),
        created_at=_created_at(old, now),
        now=now,
        trusted=request.requester.in_any(settings.trusted_groups),
    )
    if not errors:
        return allow()
    forbidden = any(error.type == "Forbidden" for error in errors)
    return refuse(errors, FORBIDDEN if forbidden else INVALID)


RECORD_ENDPOINTS = (
    Endpoint("/validate-mltrlauditrecord", GROUP, "MLTRLAuditRecord", validate_audit_record),
    Endpoint("/mutate-mltrlwaiver", GROUP, "MLTRLWaiver", mutate_waiver, mutating=True),
    Endpoint("/validate-mltrlwaiver", GROUP, "MLTRLWaiver", validate_waiver),
)


async def admit_every_operation(
    endpoint: Endpoint, request: AdmissionRequest, state: ClusterState, settings: Settings
) -> Verdict:
    """As `rules.admit`, but DELETE (which carries no object) reaches the handler too."""
    if (request.group, request.kind) != (endpoint.group, endpoint.kind):
        return Verdict(
            False,
            f"{endpoint.path} admits {endpoint.kind} ({endpoint.group}), not "
            f"{request.kind_text}: the webhook configuration's rules send the wrong "
            "resources here",
            BAD_REQUEST,
        )
    return await endpoint.handler(request, state, settings)
