from __future__ import annotations

from typing import Any

import pytest

from mltrl_operator.api.technology import KnownGoodModel
from mltrl_operator.domain.serving import (
    desired_inference_service,
    inference_service_name,
    record_known_good,
    rollback_target,
)

from .builders import LATER, NOW, NOW_TEXT, model, tech_spec

OWNER = {
    "apiVersion": "mltrl.dev/v1alpha1",
    "kind": "MLTechnology",
    "name": "fraud",
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def test_the_desired_inference_service_in_full() -> None:
    spec = tech_spec(
        serving={
            "inferenceServiceName": "fraud-isvc",
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"},
            "predictor": {
                "minReplicas": 2,
                "model": {"resources": {"limits": {"cpu": "1"}}, "storageUri": "old://"},
            },
        }
    )
    isvc = desired_inference_service(
        "fraud-isvc", "ml", "fraud", "uid-1", spec, model("v7", runtime="kserve-sklearnserver")
    )
    assert isvc == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "fraud-isvc",
            "namespace": "ml",
            "labels": {
                "mltrl.dev/technology": "fraud",
                "app.kubernetes.io/managed-by": "mltrl-operator",
            },
            "annotations": {
                "serving.kserve.io/deploymentMode": "RawDeployment",
                "mltrl.dev/model-version": "v7",
            },
            "ownerReferences": [OWNER],
        },
        "spec": {
            "predictor": {
                "minReplicas": 2,
                "model": {
                    "resources": {"limits": {"cpu": "1"}},
                    "storageUri": "s3://models/fraud/v7",
                    "modelFormat": {"name": "sklearn"},
                    "runtime": "kserve-sklearnserver",
                },
            }
        },
    }


@pytest.mark.parametrize(
    ("serving", "predictor"),
    [
        (
            None,
            {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://models/fraud/v1"}},
        ),
        (
            {
                "predictor": {
                    "model": {"runtime": "custom", "modelFormat": {"name": "onnx", "version": "1"}}
                }
            },
            {
                "model": {
                    "runtime": "custom",
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": "s3://models/fraud/v1",
                }
            },
        ),
    ],
    ids=[
        "without a serving section the predictor is just the model",
        "the template's runtime stays when the model names none, its model format is replaced",
    ],
)
def test_the_predictor_model(serving: dict[str, Any] | None, predictor: dict[str, Any]) -> None:
    spec = tech_spec(**({"serving": serving} if serving else {}))
    isvc = desired_inference_service("fraud", "ml", "fraud", "uid-1", spec, model("v1"))
    assert isvc["spec"] == {"predictor": predictor}
    assert isvc["metadata"]["annotations"] == {"mltrl.dev/model-version": "v1"}


def test_the_template_is_not_changed_by_building_or_by_editing_the_result() -> None:
    spec = tech_spec(serving={"predictor": {"model": {"args": ["--x"]}}})
    isvc = desired_inference_service("fraud", "ml", "fraud", "uid-1", spec, model())
    isvc["spec"]["predictor"]["model"]["args"].append("--y")
    assert spec.serving is not None
    assert spec.serving.predictor == {"model": {"args": ["--x"]}}


def test_a_known_good_model_can_be_served_again() -> None:
    good = KnownGoodModel(version="v6", storage_uri="s3://m/v6", format="xgboost", served_at="t")
    isvc = desired_inference_service("fraud", "ml", "fraud", "uid-1", tech_spec(), good)
    assert isvc["spec"]["predictor"]["model"] == {
        "modelFormat": {"name": "xgboost"},
        "storageUri": "s3://m/v6",
    }
    assert isvc["metadata"]["annotations"]["mltrl.dev/model-version"] == "v6"


@pytest.mark.parametrize(
    ("serving", "name"),
    [(None, "fraud"), ({}, "fraud"), ({"inferenceServiceName": "fraud-v2"}, "fraud-v2")],
    ids=["defaults to the technology name", "an empty serving section too", "an explicit name"],
)
def test_inference_service_name(serving: dict[str, Any] | None, name: str) -> None:
    spec = tech_spec(**({} if serving is None else {"serving": serving}))
    assert inference_service_name("fraud", spec) == name


def known(*versions: str) -> list[KnownGoodModel]:
    return [
        KnownGoodModel(
            version=v, storage_uri=f"s3://models/fraud/{v}", format="sklearn", served_at="t"
        )
        for v in versions
    ]


@pytest.mark.parametrize(
    ("before", "served", "after", "changed"),
    [
        ([], model("v1"), ["v1"], True),
        (known("v1"), model("v1"), ["v1"], False),
        (known("v1", "v2"), model("v1"), ["v1", "v2", "v1"], True),
        (known("v1"), model("v1", storageUri="s3://elsewhere"), ["v1", "v1"], True),
        (known("v1", "v2", "v3"), model("v4"), ["v2", "v3", "v4"], True),
    ],
    ids=[
        "the first model",
        "the newest model again changes nothing",
        "an older model served again is appended as the newest",
        "the same version from another place is another model",
        "the oldest is dropped beyond the limit",
    ],
)
def test_record_known_good(
    before: list[KnownGoodModel], served: Any, after: list[str], changed: bool
) -> None:
    result, did_change = record_known_good(before, served, LATER, limit=3)
    assert [m.version for m in result] == after
    assert did_change is changed


def test_a_recorded_model_keeps_format_runtime_and_the_time_it_served() -> None:
    result, _ = record_known_good([], model("v1", runtime="rt"), NOW, limit=3)
    assert result[0].to_wire() == {
        "version": "v1",
        "storageUri": "s3://models/fraud/v1",
        "format": "sklearn",
        "runtime": "rt",
        "servedAt": NOW_TEXT,
    }


@pytest.mark.parametrize(
    ("versions", "current", "target"),
    [
        ([], "v1", None),
        (["v1"], "v1", None),
        (["v1", "v2", "v3"], "v3", "v2"),
        (["v1", "v2", "v3"], "v2", "v1"),
        (["v1", "v2", "v1"], "v1", "v2"),
        (["v1", "v1", "v2"], "v2", "v1"),
        (["v1", "v2"], "v9", "v2"),
        (["v1", "v2"], None, "v2"),
    ],
    ids=[
        "nothing known",
        "only the current model is known",
        "the model before the current one",
        "a rolled-back model rolls back further",
        "the newest position of the current model counts",
        "entries of the current version are skipped",
        "a model never known good rolls back to the newest",
        "with no current model the newest",
    ],
)
def test_rollback_target(versions: list[str], current: str | None, target: str | None) -> None:
    found = rollback_target(known(*versions), current)
    assert (found.version if found else None) == target
