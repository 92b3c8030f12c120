"""The InferenceService the operator wants for a technology, what it observed of it, and
the known-good models it can roll back to. Plain dicts in KServe's serving.kserve.io/v1beta1
shape.

Ready counts only at the InferenceService's own generation: KServe reports
status.observedGeneration, and a Ready condition from before the last spec change
belongs to the model served before it (the new one may never load)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mltrl_operator.api.common import API_VERSION
from mltrl_operator.api.technology import KnownGoodModel, MLTechnologySpec, ModelSpec
from mltrl_operator.domain.technology_facts import InferenceServiceFacts
from mltrl_operator.domain.timefmt import rfc3339
from mltrl_operator.domain.transitions import append_bounded

KSERVE_API_VERSION = "serving.kserve.io/v1beta1"
TECHNOLOGY_LABEL = "mltrl.dev/technology"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "mltrl-operator"
MODEL_VERSION_ANNOTATION = "mltrl.dev/model-version"
STOP_ANNOTATION = "serving.kserve.io/stop"


def inference_service_name(technology_name: str, spec: MLTechnologySpec) -> str:
    if spec.serving and spec.serving.inference_service_name:
        return spec.serving.inference_service_name
    return technology_name


def _predictor(spec: MLTechnologySpec, model: ModelSpec | KnownGoodModel) -> dict[str, Any]:
    # A deep copy: the template belongs to the spec, and callers may mutate the result.
    predictor: dict[str, Any] = copy.deepcopy(spec.serving.predictor) if spec.serving else {}
    template_model = predictor.get("model")
    merged: dict[str, Any] = dict(template_model) if isinstance(template_model, dict) else {}
    merged["modelFormat"] = {"name": model.format}
    merged["storageUri"] = model.storage_uri
    if model.runtime:
        merged["runtime"] = model.runtime
    predictor["model"] = merged
    return predictor


def desired_inference_service(
    name: str,
    namespace: str,
    technology_name: str,
    technology_uid: str,
    spec: MLTechnologySpec,
    model: ModelSpec | KnownGoodModel,
) -> dict[str, Any]:
    annotations = dict(spec.serving.annotations) if spec.serving else {}
    annotations[MODEL_VERSION_ANNOTATION] = model.version
    return {
        "apiVersion": KSERVE_API_VERSION,
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {TECHNOLOGY_LABEL: technology_name, MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "MLTechnology",
                    "name": technology_name,
                    "uid": technology_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"predictor": _predictor(spec, model)},
    }


def record_known_good(
    known: Sequence[KnownGoodModel], model: ModelSpec, now: datetime, limit: int
) -> tuple[list[KnownGoodModel], bool]:
    """Remember `model` as the newest known-good one unless it already is.

    An older entry of the same version stays where it is: the list is a timeline, and
    rollback_target reads it as one.
    """
    if known and (known[-1].version, known[-1].storage_uri) == (model.version, model.storage_uri):
        return list(known), False
    entry = KnownGoodModel(
        version=model.version,
        storage_uri=model.storage_uri,
        format=model.format,
        runtime=model.runtime,
        served_at=rfc3339(now),
    )
    return append_bounded(known, entry, limit), True


def rollback_target(
    known: Sequence[KnownGoodModel], current_version: str | None
) -> KnownGoodModel | None:
    """The newest known-good model served before the current one, if any."""
    positions = [i for i, entry in enumerate(known) if entry.version == current_version]
    before = known[: positions[-1]] if positions else known
    return next((e for e in reversed(before) if e.version != current_version), None)


def serving_wanted(spec: MLTechnologySpec) -> bool:
    """A model without a serving section is meant to be served with the defaults."""
    enabled = spec.serving.enabled if spec.serving else True
    return enabled and spec.model is not None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def inference_service_facts(name: str, body: dict[str, Any] | None) -> InferenceServiceFacts:
    if body is None:
        return InferenceServiceFacts(
            name=name, exists=False, ready=False, url=None, stopped=False, model_version=None
        )
    status = body.get("status") or {}
    metadata = body.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    generation = _int(metadata.get("generation"))
    observed = _int(status.get("observedGeneration"))
    condition_ready = any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in status.get("conditions") or []
    )
    # Without observedGeneration nobody can say which spec is Ready: shown as ready, but
    # never proof of a known-good model.
    current = observed is not None and (generation is None or observed == generation)
    return InferenceServiceFacts(
        name=name,
        exists=True,
        ready=condition_ready and (observed is None or current),
        url=status.get("url"),
        stopped=annotations.get(STOP_ANNOTATION) == "true",
        model_version=annotations.get(MODEL_VERSION_ANNOTATION),
        ready_at_generation=condition_ready and current,
        storage_uri=storage_uri_of(body),
    )


def storage_uri_of(body: dict[str, Any]) -> str | None:
    """spec.predictor.model.storageUri of an InferenceService body, as the operator writes it."""
    model = (((body.get("spec") or {}).get("predictor") or {}).get("model") or {})
    uri = model.get("storageUri") if isinstance(model, dict) else None
    return uri if isinstance(uri, str) else None


def _is_subset(wanted: Any, actual: Any) -> bool:
    """Whether everything we want is already there; fields others default in are left alone."""
    if isinstance(wanted, dict) and isinstance(actual, dict):
        return all(
            key in actual and _is_subset(value, actual[key]) for key, value in wanted.items()
        )
    return bool(wanted == actual)


def alignment_patch(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """A merge patch that brings our fields of an existing InferenceService in line."""
    patch: dict[str, Any] = {}
    current_meta = current.get("metadata") or {}
    desired_meta = desired["metadata"]
    metadata: dict[str, Any] = {}
    for field in ("labels", "annotations"):
        have = current_meta.get(field) or {}
        changes: dict[str, Any] = {
            key: value for key, value in (desired_meta.get(field) or {}).items()
            if have.get(key) != value
        }
        if field == "annotations" and have.get(STOP_ANNOTATION) == "true":
            changes[STOP_ANNOTATION] = None
        if changes:
            metadata[field] = changes
    if metadata:
        patch["metadata"] = metadata
    if not _is_subset(desired["spec"], current.get("spec") or {}):
        patch["spec"] = desired["spec"]
    return patch
