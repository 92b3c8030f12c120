"""The webhook endpoints of issue 15's kinds: the audit record (every operation, DELETE
included, since removing a chunk is tampering too) and, later, waivers.

They sit beside `rules.ENDPOINTS` rather than inside it because `rules.admit` admits every
DELETE, and the audit record must refuse those.
"""

from __future__ import annotations

from mltrl_operator.api.common import GROUP
from mltrl_operator.domain.admission import BAD_REQUEST, Verdict
from mltrl_operator.domain.audit import audit_record_verdict
from mltrl_operator.webhooks.configuration import operator_username
from mltrl_operator.webhooks.rules import ClusterState, Endpoint, Settings
from mltrl_operator.webhooks.wire import AdmissionRequest


async def validate_audit_record(
    request: AdmissionRequest, state: ClusterState, settings: Settings
) -> Verdict:
    return audit_record_verdict(
        request.requester, request.operation, request.name, operator=operator_username()
    )


RECORD_ENDPOINTS = (
    Endpoint("/validate-mltrlauditrecord", GROUP, "MLTRLAuditRecord", validate_audit_record),
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
