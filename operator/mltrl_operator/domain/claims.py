"""InferenceServices and the technologies they name: a foreign InferenceService that claims
a technology (label mltrl.dev/technology) must serve that technology's model, and a
technology may only name an InferenceService it owns.

One function decides each, for the webhook (at admission) and the operator (governance,
re-run whenever the claimed technology's level or model or the policy changes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from mltrl_operator.api.technology import (
    KnownGoodModel,
    MLTechnologySpec,
    MLTechnologyStatus,
    ModelSpec,
)
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.gating import (
    GateAction,
    GateDecision,
    foreign_inference_service_action,
    stored_technology_gate,
)
from mltrl_operator.domain.policy import EffectivePolicy
from mltrl_operator.domain.waivers import WaiverFacts

Body = Mapping[str, Any]


def served_storage_uri(body: Body | None) -> str | None:
    """spec.predictor.model.storageUri, or a predictor's first framework's storageUri."""
    predictor = ((body or {}).get("spec") or {}).get("predictor") or {}
    if not isinstance(predictor, Mapping):
        return None
    model = predictor.get("model")
    if isinstance(model, Mapping) and isinstance(model.get("storageUri"), str):
        return str(model["storageUri"])
    for value in predictor.values():  # the older per-framework form, e.g. predictor.sklearn
        if isinstance(value, Mapping) and isinstance(value.get("storageUri"), str):
            return str(value["storageUri"])
    return None


def allowed_storage_uris(
    model: ModelSpec | None, known_good: Sequence[KnownGoodModel]
) -> list[str]:
    uris = [m.storage_uri for m in known_good]
    if model is not None:
        uris.append(model.storage_uri)
    return list(dict.fromkeys(uris))


def claim_action(
    claimed: str | None,
    decision: GateDecision | None,
    policy: EffectivePolicy,
    *,
    served_uri: str | None,
    model: ModelSpec | None,
    known_good: Sequence[KnownGoodModel],
) -> tuple[GateAction, str]:
    """The serving gate for a foreign InferenceService, plus: it serves the claimed
    technology's current model or one of its known-good ones (by storageUri)."""
    action, message = foreign_inference_service_action(claimed, decision, policy)
    if action is not GateAction.ALLOW or claimed is None or decision is None:
        return action, message
    allowed = allowed_storage_uris(model, known_good)
    if served_uri in allowed:
        return action, message
    served = served_uri or "no storageUri"
    wanted = ", ".join(allowed) if allowed else "nothing (the technology has no model)"
    problem = (
        f"the InferenceService claims mltech {claimed} but serves {served}; {claimed} may "
        f"serve {wanted} (spec.model or status.knownGoodModels)"
    )
    if policy.enforcement.value == "audit":
        return GateAction.WARN, f"{problem} (audit: reported only)"
    return GateAction.STOP, problem


def claimed_models(
    technology: Body | None,
) -> tuple[ModelSpec | None, Sequence[KnownGoodModel]]:
    """The stored technology's model approved to serve (status.approvedModel; spec.model
    for a technology not reconciled since approved models were recorded) and
    status.knownGoodModels; nothing when it does not exist or cannot be read."""
    if technology is None:
        return None, ()
    try:
        spec = MLTechnologySpec.model_validate(technology.get("spec") or {})
        status = MLTechnologyStatus.model_validate(technology.get("status") or {})
    except ValueError:  # pydantic's ValidationError: an unreadable technology vouches for nothing
        return None, ()
    # The approved model, not spec.model: a new model is served, by anyone, only once the
    # operator approved it (a change review, or a policy that allows it), so an
    # InferenceService racing the reconcile is judged on what is approved.
    approved = status.approved_model
    model = spec.model if status.pending_model is None else None  # not reconciled since
    if approved is not None:
        model = ModelSpec(version=approved.version, storage_uri=approved.storage_uri,
                          format=approved.format, runtime=approved.runtime)
    return model, status.known_good_models


def stored_claim_action(
    claimed: str | None, body: Body, technology: Body | None, policy: EffectivePolicy,
    waivers: Sequence[WaiverFacts] = (), now: datetime | None = None,
) -> tuple[GateDecision | None, tuple[GateAction, str]]:
    """The whole decision for a foreign InferenceService against the technology it claims,
    as stored: the one serving gate (domain.gating.stored_technology_gate, with the
    technology's waivers judged at `now`) and the model it serves. The webhook and
    governance both call this."""
    decision = (stored_technology_gate(claimed, technology, policy, waivers, now)
                if claimed else None)
    model, known_good = claimed_models(technology)
    return decision, claim_action(
        claimed, decision, policy, served_uri=served_storage_uri(body),
        model=model, known_good=known_good,
    )


def owned_by(body: Body | None, uid: str | None) -> bool:
    references = ((body or {}).get("metadata") or {}).get("ownerReferences") or []
    return bool(uid) and any(
        isinstance(r, Mapping) and r.get("uid") == uid and r.get("kind") == "MLTechnology"
        for r in references
    )


def technologys_own(body: Body, technology: Body | None) -> bool:
    """Whether an InferenceService is the claimed technology's own: an owner reference to
    that technology's uid. A reference to kind MLTechnology alone proves nothing, since
    anyone who may create the InferenceService may write its ownerReferences."""
    metadata = (technology or {}).get("metadata") or {}
    return owned_by(body, metadata.get("uid"))


def name_taken(isvc_name: str, technology: str) -> FieldError:
    return FieldError(
        "spec.serving.inferenceServiceName",
        f"InferenceService {isvc_name} exists and is not owned by mltech {technology}; "
        "name one this technology creates",
        "Forbidden",
    )
