"""KServe's contract for predictor templates, checked without importing kserve."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.predictor import predictor_errors
from mltrl_operator.domain.validation import validate_technology

from .builders import tech_spec

REPO = Path(__file__).resolve().parents[3]
SCHEMA = REPO / "operator/mltrl_operator/domain/kserve_schema.py"


def test_the_committed_schema_is_what_the_kserve_sdk_generates() -> None:
    """Upgrading kserve (or hand-editing the file) fails here until the schema is
    regenerated with `.venv/bin/python tools/gen_kserve_schema.py`."""
    spec = importlib.util.spec_from_file_location("gen", REPO / "tools/gen_kserve_schema.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert SCHEMA.read_text() == generator.render(), "run tools/gen_kserve_schema.py"


@pytest.mark.parametrize("predictor", [
    {},
    {"minReplicas": 1, "maxReplicas": 3, "canaryTrafficPercent": 10, "timeout": 60},
    {"model": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                             "limits": {"nvidia.com/gpu": 1}}}},
    {"model": {"args": ["--workers", "2"], "env": [{"name": "A", "value": "b"}],
               "ports": [{"containerPort": 8080, "protocol": "TCP"}],
               "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}}}},
    {"tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
     "nodeSelector": {"pool": "gpu"}, "serviceAccountName": "model-reader",
     "logger": {"mode": "all", "url": "http://logger"}},
], ids=["empty", "scaling", "resources", "container", "pod"])
def test_templates_kserve_knows_pass(predictor: dict[str, object]) -> None:
    assert predictor_errors(predictor) == []


@pytest.mark.parametrize(("predictor", "expected"), [
    ({"minReplica": 1}, [FieldError(
        "spec.serving.predictor.minReplica",
        "is not a field of KServe's V1beta1PredictorSpec (kserve 0.21.0) "
        '(did you mean "minReplicas"?)')]),
    ({"model": {"storageURI": "s3://x"}}, [FieldError(
        "spec.serving.predictor.model.storageURI",
        "is not a field of KServe's V1beta1ModelSpec (kserve 0.21.0) "
        '(did you mean "storageUri"?)')]),
    ({"model": {"env": [{"name": "A", "valu": "b"}]}}, [FieldError(
        "spec.serving.predictor.model.env[0].valu",
        "is not a field of KServe's V1EnvVar (kserve 0.21.0) (did you mean \"value\"?)")]),
    ({"minReplicas": "two", "tolerations": {"key": "x"}, "model": {"args": "--x"}}, [
        FieldError("spec.serving.predictor.minReplicas", "must be an integer"),
        FieldError("spec.serving.predictor.tolerations", "must be a list"),
        FieldError("spec.serving.predictor.model.args", "must be a list"),
    ]),
], ids=["typo", "nested", "in-a-list", "wrong-kinds"])
def test_fields_kserve_does_not_know_are_named(
    predictor: dict[str, object], expected: list[FieldError]
) -> None:
    assert predictor_errors(predictor) == expected


def test_the_technology_validation_refuses_them() -> None:
    spec = tech_spec(serving={"predictor": {"minReplicas": 1, "scaleTargett": 5}})
    errors = validate_technology(spec, name="fraud", namespace="ml")
    assert [error.path for error in errors] == ["spec.serving.predictor.scaleTargett"]


def test_a_model_that_is_not_an_object_is_reported_once() -> None:
    spec = tech_spec(serving={"predictor": {"model": "sklearn"}})
    errors = validate_technology(spec, name="fraud", namespace="ml")
    assert [error.path for error in errors] == ["spec.serving.predictor.model"]
