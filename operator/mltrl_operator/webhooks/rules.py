"""The five webhook endpoints: each reads the facts it needs and asks the domain's rules.

A request for a kind the endpoint does not admit is refused (400) with a message that
names both kinds: it can only come from a webhook configuration whose rules send the wrong
resources there, and failing closed makes that visible at once. DELETE and CONNECT are
admitted: none of the rules is about them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from mltrl_operator.api.common import GROUP
from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.api.review import LevelReviewSpec
from mltrl_operator.api.technology import MLTechnologySpec, MLTechnologyStatus
from mltrl_operator.domain.admission import (
    BAD_REQUEST,
    FORBIDDEN,
    INVALID,
    ReviewFacts,
    Verdict,
    allow,
    claimed_technology,
    forbid,
    inference_service_verdict,
    is_stopped,
    refuse,
    review_verdict,
    stamp_approvals,
    technology_errors,
)
from mltrl_operator.domain.approvals import review_content
from mltrl_operator.domain.claims import (
    name_taken,
    owned_by,
    stored_claim_action,
    technologys_own,
)
from mltrl_operator.domain.entry import entry_level_change
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.lifecycle import lifecycle_spec_errors
from mltrl_operator.domain.owners import OWNER_SET_BY_ANNOTATION, owners_since_level
from mltrl_operator.domain.policy import EffectivePolicy
from mltrl_operator.domain.serving import inference_service_name
from mltrl_operator.domain.timefmt import rfc3339
from mltrl_operator.domain.validation import (
    Key,
    component_key,
    validate_policy,
    validate_status_edit,
)
from mltrl_operator.domain.waivers import waiver_facts
from mltrl_operator.webhooks.wire import AdmissionRequest

Body = dict[str, Any]
KSERVE_GROUP = "serving.kserve.io"

logger = logging.getLogger(__name__)


class ClusterState(Protocol):
    """What the webhooks read from the cluster."""

    async def technology(self, namespace: str, name: str) -> Body | None: ...

    async def technologies(self) -> list[Body]: ...

    async def policy_for(self, namespace: str) -> EffectivePolicy: ...

    async def inference_service(self, namespace: str, name: str) -> Body | None: ...

    async def waivers(self, namespace: str) -> list[Body]: ...


@dataclass(frozen=True)
class Settings:
    clock: Callable[[], datetime]
    trusted_groups: frozenset[str] = field(default_factory=frozenset)


Handler = Callable[[AdmissionRequest, ClusterState, Settings], Awaitable[Verdict]]


def _spec(body: Body | None) -> Body:
    spec = (body or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def _unreadable(kind: str, error: ValidationError) -> Verdict:
    problems = [
        FieldError(".".join(["spec", *(str(part) for part in e["loc"])]), e["msg"], INVALID)
        for e in error.errors()
    ]
    return refuse(problems or [FieldError("spec", f"is not a valid {kind}")], INVALID)


def _old(request: AdmissionRequest) -> Body | None:
    return request.old_object if request.operation == "UPDATE" else None


def _technology_parts(
    technology: Body | None,
) -> tuple[MLTechnologySpec | None, MLTechnologyStatus | None]:
    if technology is None:
        return None, None
    try:
        return (
            MLTechnologySpec.model_validate(_spec(technology)),
            MLTechnologyStatus.model_validate(technology.get("status") or {}),
        )
    except ValidationError:
        return None, None


async def mutate_level_review(
    request: AdmissionRequest, state: ClusterState, settings: Settings
) -> Verdict:
    assert request.object is not None
    old = _old(request)
    wire = _spec(request.object)
    content = None
    try:
        # The content approved does not include the approvals, which may still lack the
        # reviewer this webhook fills in.
        spec = LevelReviewSpec.model_validate({**wire, "approvals": []})
    except ValidationError:
        spec = None  # the validating webhook refuses it, naming the field
    if spec is not None:
        technology_spec, _ = _technology_parts(
            await state.technology(request.namespace, spec.technology)
        )
        content = review_content(spec, technology_spec.model if technology_spec else None)
    patch = stamp_approvals(
        _spec(old) if old is not None else None,
        wire,
        request.requester,
        trusted=request.requester.in_any(settings.trusted_groups),
        now=rfc3339(settings.clock()),
        content=content,
    )
    return allow(patch=patch)


async def validate_level_review(
    request: AdmissionRequest, state: ClusterState, settings: Settings
) -> Verdict:
    assert request.object is not None
    wire = _spec(request.object)
    try:
        spec = LevelReviewSpec.model_validate(wire)
    except ValidationError as error:
        return _unreadable("LevelReview", error)
    old = _old(request)
    old_phase = ((old or {}).get("status") or {}).get("phase")
    technology = await state.technology(request.namespace, spec.technology)
    owner = _spec(technology).get("owner") if technology is not None else None
    technology_spec, technology_status = _technology_parts(technology)
    facts = ReviewFacts(
        owner=str(owner) if owner else None,
        policy=await state.policy_for(request.namespace),
        owners=owners_since_level(technology_spec, technology_status)
        if technology_spec
        else frozenset(),
    )
    return review_verdict(
        spec,
        wire,
        _spec(old) if old is not None else None,
        old_phase if isinstance(old_phase, str) else None,
        request.requester,
        trusted=request.requester.in_any(settings.trusted_groups),
        facts=facts,
    )


def _edges(technologies: list[Body], skip: Key) -> tuple[dict[Key, list[Key]], frozenset[Key]]:
    edges: dict[Key, list[Key]] = {}
    for body in technologies:
        metadata = body.get("metadata") or {}
        key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
        if key == skip:
            continue
        edges[key] = [
            (str(ref.get("namespace") or key[0]), str(ref.get("name") or ""))
            for ref in _spec(body).get("components") or []
            if isinstance(ref, dict)
        ]
    return edges, frozenset(edges)


async def validate_technology(
    request: AdmissionRequest, state: ClusterState, settings: Settings
) -> Verdict:
    assert request.object is not None
    if request.sub_resource == "status":
        old_status = (request.old_object or {}).get("status")
        new_status = request.object.get("status")
        errors = validate_status_edit(
            old_status if isinstance(old_status, dict) else None,
            new_status if isinstance(new_status, dict) else None,
        )
        return refuse(errors, FORBIDDEN) if errors else allow()
    try:
        spec = MLTechnologySpec.model_validate(_spec(request.object))
    except ValidationError as error:
        return _unreadable("MLTechnology", error)
    namespace, name = request.namespace, request.name or str(
        (request.object.get("metadata") or {}).get("name") or ""
    )
    old = _old(request)
    old_components: frozenset[Key] = frozenset()
    if old is not None:
        try:
            old_spec = MLTechnologySpec.model_validate(_spec(old))
            old_components = frozenset(
                component_key(ref, namespace) for ref in old_spec.components
            )
        except ValidationError:
            pass
    edges, existing = _edges(await state.technologies(), (namespace, name))
    errors = technology_errors(
        spec,
        name=name,
        namespace=namespace,
        edges=edges,
        existing=existing,
        old_components=old_components,
    )
    if old is not None:
        try:
            immutable = entry_level_change(MLTechnologySpec.model_validate(_spec(old)), spec)
        except ValidationError:
            immutable = None
        if immutable is not None:
            errors.append(immutable)
    isvc_name = inference_service_name(name, spec)
    isvc = await state.inference_service(namespace, isvc_name)
    uid = ((request.object.get("metadata") or {}).get("uid")) or (
        ((old or {}).get("metadata") or {}).get("uid")
    )
    if isvc is not None and not owned_by(isvc, uid):
        errors.append(name_taken(isvc_name, name))
    if not errors:
        return allow()
    forbidden = all(error.type == FORBIDDEN for error in errors)
    return refuse(errors, FORBIDDEN if forbidden else INVALID)


async def mutate_technology(
    request: AdmissionRequest, state: ClusterState, settings: Settings
) -> Verdict:
    """Record who set spec.owner (annotation mltrl.dev/owner-set-by); nobody else writes it:
    on an update that keeps the owner, the stored value is put back."""
    assert request.object is not None
    if request.sub_resource:
        return allow()
    old = _old(request)
    owner = _spec(request.object).get("owner")
    annotations = (request.object.get("metadata") or {}).get("annotations")
    current = annotations.get(OWNER_SET_BY_ANNOTATION) if isinstance(annotations, dict) else None
    if old is None or _spec(old).get("owner") != owner:
        wanted: str | None = request.requester.username
    else:
        old_annotations = (old.get("metadata") or {}).get("annotations") or {}
        wanted = old_annotations.get(OWNER_SET_BY_ANNOTATION)
    if current == wanted:
        return allow()
    path = "/metadata/annotations/" + OWNER_SET_BY_ANNOTATION.replace("/", "~1")
    if wanted is None:
        return allow(patch=[{"op": "remove", "path": path}])
    if not isinstance(annotations, dict):
        return allow(patch=[{"op": "add", "path": "/metadata/annotations",
                             "value": {OWNER_SET_BY_ANNOTATION: wanted}}])
    return allow(patch=[{"op": "add", "path": path, "value": wanted}])


async def validate_status(
    request: AdmissionRequest, state: ClusterState, settings: Settings
) -> Verdict:
    """Status is the operator's: its service account never reaches this webhook (the
    configuration's matchCondition), so whoever does is refused."""
    plural = request.resource or request.kind.lower()
    return forbid(
        f"status: Forbidden: only the operator's service account may write {plural}/status "
        f"({request.requester.username} may not); the status records what the operator "
        "decided"
    )


async def validate_policy_spec(
    request: AdmissionRequest, state: ClusterState, settings: Settings
) -> Verdict:
    assert request.object is not None
    if request.sub_resource:
        return allow()
    try:
        spec = MLTRLPolicySpec.model_validate(_spec(request.object))
    except ValidationError as error:
        return _unreadable("MLTRLPolicy", error)
    errors = validate_policy(spec) + lifecycle_spec_errors(spec)  # the latter: issue 15
    return refuse(errors, INVALID) if errors else allow()


async def validate_inference_service(
    request: AdmissionRequest, state: ClusterState, settings: Settings
) -> Verdict:
    body = request.object
    assert body is not None
    if request.sub_resource:
        return allow()
    namespace = request.namespace or str((body.get("metadata") or {}).get("namespace") or "")
    policy = await state.policy_for(namespace)
    claimed = claimed_technology(body)
    technology = await state.technology(namespace, claimed) if claimed else None
    vouching = technology
    if vouching is not None and (vouching.get("metadata") or {}).get("deletionTimestamp"):
        vouching = None  # a technology being deleted vouches for nothing
    # A stopped InferenceService serves nothing and is always allowed (no gate to ask).
    asked = claimed if claimed and not is_stopped(body) else None
    # The technology's waivers, judged now by the one decision (domain.waivers), as the
    # reconciler judges them: one that lowers the serving minimum opens this gate too.
    waivers = []
    if asked and vouching is not None:
        waivers = [facts for w in await state.waivers(namespace)
                   if (facts := waiver_facts(w)) is not None and facts.spec.technology == asked]
    decision, action = stored_claim_action(asked, body, vouching, policy, waivers,
                                           settings.clock())
    if claimed and technologys_own(body, technology):
        # The technology's own InferenceService: the reconciler keeps its model in line.
        return inference_service_verdict(body, _old(request), decision, policy)
    return inference_service_verdict(body, _old(request), decision, policy, claim=action)


@dataclass(frozen=True)
class Endpoint:
    path: str
    group: str
    kind: str
    handler: Handler
    mutating: bool = False
    also: tuple[str, ...] = ()
    """Further kinds of `group` the endpoint admits."""


STATUS_KINDS = ("MLTechnology", "LevelReview", "MLTRLPolicy")

ENDPOINTS = (
    Endpoint("/mutate-levelreview", GROUP, "LevelReview", mutate_level_review, mutating=True),
    Endpoint("/mutate-mltechnology", GROUP, "MLTechnology", mutate_technology, mutating=True),
    Endpoint("/validate-status", GROUP, STATUS_KINDS[0], validate_status, also=STATUS_KINDS[1:]),
    Endpoint("/validate-levelreview", GROUP, "LevelReview", validate_level_review),
    Endpoint("/validate-mltechnology", GROUP, "MLTechnology", validate_technology),
    Endpoint("/validate-mltrlpolicy", GROUP, "MLTRLPolicy", validate_policy_spec),
    Endpoint(
        "/validate-inferenceservice", KSERVE_GROUP, "InferenceService", validate_inference_service
    ),
)


async def admit(
    endpoint: Endpoint, request: AdmissionRequest, state: ClusterState, settings: Settings
) -> Verdict:
    if request.group != endpoint.group or request.kind not in (endpoint.kind, *endpoint.also):
        return Verdict(
            False,
            f"{endpoint.path} admits {endpoint.kind} ({endpoint.group}), not "
            f"{request.kind_text}: the webhook configuration's rules send the wrong "
            "resources here",
            BAD_REQUEST,
        )
    if request.operation not in ("CREATE", "UPDATE") or request.object is None:
        return allow()
    return await endpoint.handler(request, state, settings)
