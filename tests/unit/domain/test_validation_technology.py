from __future__ import annotations

from typing import Any

import pytest

from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.validation import (
    find_component_cycle,
    validate_components,
    validate_technology,
)

from .builders import tech_spec

MODEL = {"version": "v1", "storageUri": "s3://m/v1", "format": "sklearn"}


def errors_for(**fields: Any) -> list[str]:
    return [str(e) for e in validate_technology(tech_spec(**fields), name="fraud", namespace="ml")]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"entryLevel": 4, "targetLevel": 4},
        {"components": [{"name": "features"}, {"name": "features", "namespace": "shared"}]},
        {"components": [{"name": "fraud", "namespace": "other"}]},
        {"targetLevel": 7, "serving": {"requiredLevel": 7, "predictor": {"model": {}}}},
        {"serving": {"enabled": True, "predictor": {"minReplicas": 1}}},
        {"entryLevel": 4, "monitoring": {"rules": [{"action": "demote"}]}},
        {"monitoring": {"rules": [{"action": "demote", "toLevel": 3}]}},
        {"monitoring": {"rules": [{"action": "notify"}]}},
        {"model": MODEL, "monitoring": {"rules": [{"action": "rollback"}]}},
        {
            "retraining": {"jobTemplate": {"template": {}}},
            "monitoring": {"rules": [{"action": "retrain"}]},
        },
    ],
    ids=[
        "a minimal technology",
        "target equal to entry",
        "same name in another namespace is another component",
        "a technology of the same name in another namespace is not itself",
        "serving required at the target level",
        "serving configured before a model exists",
        "demote by default to 4 from entry 4",
        "demote down to the entry level",
        "notify needs nothing",
        "rollback with a model",
        "retrain with a job template",
    ],
)
def test_valid_technologies(fields: dict[str, Any]) -> None:
    assert errors_for(**fields) == []


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"entryLevel": 5, "targetLevel": 4},
            ["spec.targetLevel: must be at least spec.entryLevel (5)"],
        ),
        (
            {"components": [{"name": "fraud"}]},
            ["spec.components[0]: refers to the technology itself"],
        ),
        (
            {"components": [{"name": "fraud", "namespace": "ml"}]},
            ["spec.components[0]: refers to the technology itself"],
        ),
        (
            {"components": [{"name": "a"}, {"name": "b"}, {"name": "a", "namespace": "ml"}]},
            ["spec.components[2]: duplicates spec.components[0] (ml/a)"],
        ),
        (
            {"targetLevel": 6, "serving": {"requiredLevel": 7}},
            [
                "spec.serving.requiredLevel: must not exceed spec.targetLevel (6); "
                "the technology would never be served"
            ],
        ),
        (
            {"serving": {"predictor": {"model": "sklearn"}}},
            [
                "spec.serving.predictor.model: must be an object; "
                "the operator fills in its modelFormat and storageUri"
            ],
        ),
        (
            {"monitoring": {"rules": [{"action": "notify"}, {"action": "notify", "toLevel": 4}]}},
            ["spec.monitoring.rules[1].toLevel: only a demote rule may set toLevel"],
        ),
        (
            {"monitoring": {"rules": [{"action": "demote", "toLevel": 2}]}},
            [
                "spec.monitoring.rules[0].toLevel: must be at least spec.entryLevel (3); "
                "a technology may not switch back below its entry level"
            ],
        ),
        (
            {"entryLevel": 5, "monitoring": {"rules": [{"action": "demote"}]}},
            [
                "spec.monitoring.rules[0].toLevel: defaults to 4, below spec.entryLevel (5); "
                "set a level of at least 5"
            ],
        ),
        (
            {"monitoring": {"rules": [{"action": "retrain"}]}},
            ["spec.monitoring.rules[0].action: retrain needs spec.retraining.jobTemplate"],
        ),
        (
            {"retraining": {}, "monitoring": {"rules": [{"action": "retrain"}]}},
            ["spec.monitoring.rules[0].action: retrain needs spec.retraining.jobTemplate"],
        ),
        (
            {"monitoring": {"rules": [{"action": "rollback"}]}},
            [
                "spec.monitoring.rules[0].action: rollback needs spec.model: "
                "there is nothing to roll back"
            ],
        ),
        (
            {
                "entryLevel": 6,
                "targetLevel": 5,
                "components": [{"name": "fraud"}],
                "monitoring": {"rules": [{"action": "rollback", "toLevel": 6}]},
            },
            [
                "spec.targetLevel: must be at least spec.entryLevel (6)",
                "spec.components[0]: refers to the technology itself",
                "spec.monitoring.rules[0].toLevel: only a demote rule may set toLevel",
                "spec.monitoring.rules[0].action: rollback needs spec.model: "
                "there is nothing to roll back",
            ],
        ),
    ],
    ids=[
        "target below entry",
        "a component that is the technology itself",
        "a component naming its own namespace explicitly is still itself",
        "the same component twice",
        "serving required above the target level",
        "a predictor model template that is not an object",
        "toLevel on a rule that does not demote",
        "demote below the entry level",
        "the default demote level below the entry level",
        "retrain without retraining",
        "retrain with an empty job template",
        "rollback without a model",
        "every error is reported at once",
    ],
)
def test_invalid_technologies(fields: dict[str, Any], errors: list[str]) -> None:
    assert errors_for(**fields) == errors


A, B, C, D = ("ml", "a"), ("ml", "b"), ("ml", "c"), ("other", "d")


@pytest.mark.parametrize(
    ("edges", "cycle"),
    [
        ({}, None),
        ({A: [B], B: [C]}, None),
        ({A: [A]}, [A, A]),
        ({A: [B], B: [A]}, [A, B, A]),
        ({A: [B, C], B: [C], C: [D], D: [A]}, [A, C, D, A]),
        ({A: [B], B: [C], C: [B]}, None),
        ({A: [B], B: [C, A], C: [A]}, [A, B, A]),
    ],
    ids=[
        "no edges no cycle",
        "a chain is no cycle",
        "a self loop",
        "two technologies composed of each other",
        "the shortest of several cycles",
        "a cycle elsewhere is left to the technologies on it",
        "the first shortest cycle in edge order",
    ],
)
def test_find_component_cycle(
    edges: dict[tuple[str, str], list[tuple[str, str]]], cycle: list[tuple[str, str]] | None
) -> None:
    assert find_component_cycle(A, edges) == cycle


def test_validate_components_reports_each_component_that_leads_back() -> None:
    spec = tech_spec(
        components=[
            {"name": "b"},
            {"name": "c"},
            {"name": "d", "namespace": "other"},
            {"name": "a"},
        ]
    )
    edges = {B: [C], C: [D], D: [A], A: [("ml", "stale")]}
    assert validate_components(spec, name="a", namespace="ml", edges=edges) == [
        FieldError("spec.components[0]", "forms a cycle a -> b -> c -> other/d -> a"),
        FieldError("spec.components[1]", "forms a cycle a -> c -> other/d -> a"),
        FieldError("spec.components[2]", "forms a cycle a -> other/d -> a"),
    ]


def test_validate_components_uses_the_spec_not_stale_edges_of_the_technology_itself() -> None:
    spec = tech_spec(components=[{"name": "b"}])
    assert validate_components(spec, name="a", namespace="ml", edges={A: [C], C: [A], B: []}) == []
