"""The committed CRDs are exactly what the models generate, and Kubernetes can take them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mltrl_operator.api import crdgen

REPO = Path(__file__).resolve().parents[3]


def test_committed_crds_are_what_the_models_generate() -> None:
    expected = crdgen.rendered_files()
    committed = {path.name: path.read_text() for path in (REPO / "crds").glob("*.yaml")}
    assert committed.keys() == expected.keys(), "run `make crds` and commit crds/"
    for name, text in expected.items():
        assert committed[name] == text, f"crds/{name} is stale: run `make crds` and commit it"


def _walk(node: dict[str, Any], path: str) -> list[str]:
    problems = []
    for forbidden in ("$ref", "$defs", "anyOf", "allOf", "oneOf", "title"):
        if forbidden in node:
            problems.append(f"{path}: has {forbidden}")
    if "properties" in node and node.get("type") != "object":
        problems.append(f"{path}: properties without type object")
    if "type" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{path}: no type")
    for name, sub in node.get("properties", {}).items():
        problems += _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        problems += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        problems += _walk(node["additionalProperties"], f"{path}{{}}")
    return problems


@pytest.mark.parametrize("document", crdgen.crd_documents(), ids=lambda d: d["metadata"]["name"])
def test_schemas_are_structural(document: dict[str, Any]) -> None:
    schema = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema, document["spec"]["names"]["kind"]) == []


def _field(document: dict[str, Any], dotted: str) -> dict[str, Any]:
    node = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for part in dotted.split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


def test_technology_schema_carries_validation_and_docs() -> None:
    technology = crdgen.crd_document(crdgen.ALL_RESOURCES[0])
    assert _field(technology, "spec")["required"] == ["owner"]
    target = _field(technology, "spec.targetLevel")
    assert (target["minimum"], target["maximum"], target["type"]) == (0, 9, "integer")
    assert "accountable" in _field(technology, "spec.owner")["description"]
    action = _field(technology, "spec.monitoring.rules.[].action")
    assert action["enum"] == ["rollback", "demote", "retrain", "notify"]
    conditions = _field(technology, "status.conditions")
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert _field(technology, "status.history")["maxItems"] == 50


def test_printer_columns_and_names() -> None:
    by_kind = {doc["spec"]["names"]["kind"]: doc for doc in crdgen.crd_documents()}
    columns = [
        c["name"]
        for c in by_kind["MLTechnology"]["spec"]["versions"][0]["additionalPrinterColumns"]
        if not c.get("priority")
    ]
    assert columns == ["Level", "Phase", "Target", "Serving", "Ready", "Age"]
    assert by_kind["MLTechnology"]["spec"]["names"]["shortNames"] == ["mltech"]
    assert by_kind["LevelReview"]["spec"]["names"]["shortNames"] == ["lvlreview"]
    assert by_kind["MLTRLPolicy"]["spec"]["scope"] == "Cluster"
    audit = by_kind.pop("MLTRLAuditRecord")
    assert all(doc["spec"]["names"]["categories"] == ["mltrl"] for doc in by_kind.values())
    for doc in by_kind.values():
        assert doc["spec"]["versions"][0]["subresources"] == {"status": {}}
    # The record is written by the operator only, whole: no status, not in `get mltrl`.
    assert audit["spec"]["scope"] == "Cluster"
    assert "categories" not in audit["spec"]["names"]
    assert "subresources" not in audit["spec"]["versions"][0]


def test_every_example_parses_with_the_models() -> None:
    from mltrl_operator.api.policy import MLTRLPolicy
    from mltrl_operator.api.review import LevelReview
    from mltrl_operator.api.technology import MLTechnology

    models = {"MLTechnology": MLTechnology, "LevelReview": LevelReview, "MLTRLPolicy": MLTRLPolicy}
    seen = set()
    for path in sorted((REPO / "manifests" / "examples").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["kind"] in models:
                models[document["kind"]].model_validate(document)
                seen.add(document["kind"])
    assert seen == set(models)
