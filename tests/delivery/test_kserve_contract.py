"""KServe's contract, with KServe's own SDK as the oracle (a test dependency only; the
operator never imports it, docs/operations.md): every InferenceService the operator builds
from every predictor template in the examples, docs and tests goes through the SDK's
V1beta1InferenceService model and back without losing a field, and the templates our
admission refuses are exactly those the SDK would silently drop fields of."""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mltrl_operator.api.technology import MLTechnologySpec, ModelSpec
from mltrl_operator.domain.predictor import predictor_errors
from mltrl_operator.domain.serving import desired_inference_service
from tests.delivery.support import require

# In the dev extra: a missing one skips locally and fails in CI.
kserve_models = require("kserve.models")
kserve_api_client = require("kserve.api_client")
kubernetes_client = require("kubernetes.client")

REPO = Path(__file__).resolve().parents[2]
ALIASES = {"K8sIoApiAppsV1DeploymentStrategy": "V1DeploymentStrategy",
           "K8sIoApiAutoscalingV2HorizontalPodAutoscalerBehavior":
               "V2HorizontalPodAutoscalerBehavior"}
RAW = {"str", "int", "bool", "float", "object", "ResourceQuantity", "V1Time",
       "V1beta1MetricQuantity", "datetime", "date"}


def _from_json(data: Any, kind: str) -> Any:
    """The SDK's own deserialisation rules (openapi_types, attribute_map, constructors
    with their validation), resolving Kubernetes' models as well as KServe's."""
    if data is None:
        return None
    if match := re.fullmatch(r"(?:list|List)\[(.*)\]", kind):
        return [_from_json(item, match.group(1)) for item in data]
    if match := (re.fullmatch(r"dict\(([^,]*), (.*)\)", kind)
                 or re.fullmatch(r"Dict\[([^,]*), (.*)\]", kind)):
        return {key: _from_json(value, match.group(2)) for key, value in data.items()}
    if kind in RAW:
        return data
    name = ALIASES.get(kind, kind)
    model = getattr(kserve_models, name, None) or getattr(kubernetes_client, name)
    arguments = {
        attribute: _from_json(data[model.attribute_map[attribute]], attribute_kind)
        for attribute, attribute_kind in model.openapi_types.items()
        if model.attribute_map[attribute] in data
    }
    return model(**arguments)


def round_trip(isvc: dict[str, Any]) -> dict[str, Any]:
    model = _from_json(isvc, "V1beta1InferenceService")
    assert isinstance(model, kserve_models.V1beta1InferenceService)
    result: dict[str, Any] = kserve_api_client.ApiClient().sanitize_for_serialization(model)
    return result


def differences(original: Any, back: Any, path: str = "") -> tuple[list[str], list[str]]:
    """(paths lost or changed on the way, paths the SDK added)."""
    if isinstance(original, dict) and isinstance(back, dict):
        lost, added = [], []
        for key, value in original.items():
            if key not in back:
                lost.append(f"{path}.{key}")
            else:
                more_lost, more_added = differences(value, back[key], f"{path}.{key}")
                lost += more_lost
                added += more_added
        added += [f"{path}.{key}={back[key]!r}" for key in back if key not in original]
        return lost, added
    if isinstance(original, list) and isinstance(back, list) and len(original) == len(back):
        lost, added = [], []
        for index, (item, item_back) in enumerate(zip(original, back, strict=True)):
            more_lost, more_added = differences(item, item_back, f"{path}[{index}]")
            lost += more_lost
            added += more_added
        return lost, added
    return ([] if original == back else [f"{path}: {original!r} -> {back!r}"]), []


# --- every predictor template the project shows anyone ------------------------------------


def _yaml_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((REPO / "manifests/examples").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict):
                yield str(path.relative_to(REPO)), document
    for path in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        for index, block in enumerate(re.findall(r"```ya?ml\n(.*?)```", path.read_text(), re.S)):
            try:
                documents = list(yaml.safe_load_all(block))
            except yaml.YAMLError:
                continue
            for document in documents:
                if isinstance(document, dict):
                    yield f"{path.relative_to(REPO)}#{index}", document


class _Literal(ast.NodeVisitor):
    """Dict literals under a "predictor" key in test sources (f-strings read as "x")."""

    def __init__(self) -> None:
        self.found: list[dict[str, Any]] = []

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "predictor":
                try:
                    literal = _evaluate(value)
                except ValueError:
                    continue
                if isinstance(literal, dict):
                    self.found.append(literal)
        self.generic_visit(node)


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "x"
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise ValueError("** in a literal")
        return {_evaluate(k): _evaluate(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.List):
        return [_evaluate(item) for item in node.elts]
    raise ValueError(ast.dump(node))


def predictor_templates() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for where, document in _yaml_documents():
        spec = document.get("spec") or {}
        if document.get("kind") == "MLTechnology":
            predictor = (spec.get("serving") or {}).get("predictor")
        elif document.get("kind") == "InferenceService":
            predictor = spec.get("predictor")
        else:
            continue
        if isinstance(predictor, dict):
            found.append((where, predictor))
    for path in sorted([*(REPO / "tests").rglob("*.py"), *(REPO / "e2e").rglob("*.py")]):
        if path == Path(__file__) or "test_predictor" in path.name:
            continue  # this contract's own counter-examples
        visitor = _Literal()
        visitor.visit(ast.parse(path.read_text()))
        for index, predictor in enumerate(visitor.found):
            if "traffic" in predictor:
                continue  # an InferenceService's status.components.predictor, not a template
            if isinstance(predictor.get("model"), str):
                continue  # validation's own counter-example (model must be an object)
            found.append((f"{path.relative_to(REPO)}#{index}", predictor))
    return found


TEMPLATES = predictor_templates()
MODEL = ModelSpec(version="1.4.0", storage_uri="s3://models/fraud/1.4.0", format="sklearn",
                  runtime="kserve-sklearnserver")


def test_the_templates_were_found() -> None:
    sources = {where.split("#")[0] for where, _ in TEMPLATES}
    assert "manifests/examples/30-technology-fraud-detection.yaml" in sources
    assert any(source.startswith("tests/unit/") for source in sources)
    assert any(source.startswith("tests/integration/") for source in sources)
    assert len(TEMPLATES) >= 10


@pytest.mark.parametrize(("where", "predictor"), TEMPLATES, ids=[w for w, _ in TEMPLATES])
def test_every_template_is_one_kserve_knows(where: str, predictor: dict[str, Any]) -> None:
    assert predictor_errors(predictor) == []


@pytest.mark.parametrize(("where", "predictor"), TEMPLATES, ids=[w for w, _ in TEMPLATES])
def test_every_inference_service_the_operator_builds_round_trips_through_kserve(
    where: str, predictor: dict[str, Any]
) -> None:
    spec = MLTechnologySpec.model_validate({
        "owner": "alice", "team": "ml", "entryLevel": 6, "targetLevel": 9,
        "serving": {"predictor": copy.deepcopy(predictor),
                    "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"}},
    })
    built = desired_inference_service("fraud-isvc", "payments", "fraud", "uid-1", spec, MODEL)
    lost, added = differences(built, round_trip(built))
    assert lost == []
    # The SDK fills in nothing but an empty container name for the model.
    assert set(added) <= {".spec.predictor.model.name=''"}


def test_a_field_kserve_does_not_know_is_lost_in_its_model_and_so_refused() -> None:
    """Why the admission check exists: KServe's model drops what it does not know."""
    predictor = {"minReplicas": 1, "minReplica": 2, "model": {"storageURI": "s3://typo"}}
    spec = MLTechnologySpec.model_validate({
        "owner": "alice", "team": "ml", "entryLevel": 6, "targetLevel": 9,
        "serving": {"predictor": predictor},
    })
    built = desired_inference_service("fraud", "payments", "fraud", "uid-1", spec, MODEL)
    back = round_trip(built)["spec"]["predictor"]
    assert "minReplica" not in back and "storageURI" not in back["model"]
    assert [error.path for error in predictor_errors(predictor)] == [
        "spec.serving.predictor.minReplica", "spec.serving.predictor.model.storageURI",
    ]
