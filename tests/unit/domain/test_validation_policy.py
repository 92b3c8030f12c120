from __future__ import annotations

from typing import Any

import pytest

from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.domain.validation import validate_policy, validate_status_edit


def errors_for(**fields: Any) -> list[str]:
    return [str(e) for e in validate_policy(MLTRLPolicySpec.model_validate(fields))]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod"]},
                    {"key": "env", "operator": "NotIn", "values": ["dev"]},
                    {"key": "team", "operator": "Exists"},
                    {"key": "sandbox", "operator": "DoesNotExist"},
                ]
            }
        },
        {
            "requirements": [
                {
                    "level": 6,
                    "minApprovals": 2,
                    "requiredRoles": ["qa", "product-owner"],
                    "evidence": [{"name": "auc", "kind": "metric", "minimum": 0.9, "maximum": 0.9}],
                },
                {"level": 7, "requiredRoles": ["qa", "sre", "security"]},
            ]
        },
        {"alerts": {"defaultActions": [{"action": "demote", "toLevel": 7}]}},
    ],
    ids=[
        "an empty policy",
        "every selector operator used properly",
        "requirements with equal bounds and enough approvals for their roles",
        "a default demote rule with a level",
    ],
)
def test_valid_policies(fields: dict[str, Any]) -> None:
    assert errors_for(**fields) == []


def expression(operator: str, values: list[str] | None = None) -> dict[str, Any]:
    return {
        "namespaceSelector": {
            "matchExpressions": [{"key": "env", "operator": operator, "values": values or []}]
        }
    }


def requirement(**fields: Any) -> dict[str, Any]:
    return {"requirements": [{"level": 4, **fields}]}


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            expression("In"),
            ["spec.namespaceSelector.matchExpressions[0].values: must not be empty for In"],
        ),
        (
            expression("NotIn"),
            ["spec.namespaceSelector.matchExpressions[0].values: must not be empty for NotIn"],
        ),
        (
            expression("Exists", ["x"]),
            ["spec.namespaceSelector.matchExpressions[0].values: must be empty for Exists"],
        ),
        (
            expression("DoesNotExist", ["x"]),
            ["spec.namespaceSelector.matchExpressions[0].values: must be empty for DoesNotExist"],
        ),
        (
            {"requirements": [{"level": 0}]},
            ["spec.requirements[0].level: no promotion leads to level 0; requirements start at 1"],
        ),
        (
            {"requirements": [{"level": 4}, {"level": 5}, {"level": 4}]},
            ["spec.requirements[2].level: duplicates spec.requirements[0] (level 4)"],
        ),
        (
            requirement(
                evidence=[{"name": "ci", "kind": "check"}, {"name": "ci", "kind": "check"}]
            ),
            [
                "spec.requirements[0].evidence[1].name: duplicates "
                "spec.requirements[0].evidence[0] ('ci')"
            ],
        ),
        (
            requirement(evidence=[{"name": "ci", "kind": "check", "minimum": 1}]),
            ["spec.requirements[0].evidence[0].minimum: only a metric may have a minimum"],
        ),
        (
            requirement(evidence=[{"name": "plan", "kind": "document", "maximum": 1}]),
            ["spec.requirements[0].evidence[0].maximum: only a metric may have a maximum"],
        ),
        (
            requirement(
                evidence=[{"name": "auc", "kind": "metric", "minimum": 0.9, "maximum": 0.8}]
            ),
            ["spec.requirements[0].evidence[0].minimum: must not exceed the maximum (0.8)"],
        ),
        (
            requirement(requiredRoles=["qa", "sre", "qa"]),
            [
                "spec.requirements[0].requiredRoles[2]: duplicates "
                "spec.requirements[0].requiredRoles[0] ('qa')"
            ],
        ),
        (
            requirement(minApprovals=1, requiredRoles=["qa", "sre"]),
            [
                "spec.requirements[0].minApprovals: must be at least the number of "
                "requiredRoles (2); each role needs its own reviewer"
            ],
        ),
        (
            {
                "alerts": {
                    "defaultActions": [{"action": "notify"}, {"action": "retrain", "toLevel": 4}]
                }
            },
            ["spec.alerts.defaultActions[1].toLevel: only a demote rule may set toLevel"],
        ),
    ],
    ids=[
        "In without values",
        "NotIn without values",
        "Exists with values",
        "DoesNotExist with values",
        "requirements for level 0",
        "the same level twice",
        "the same evidence twice in a level",
        "a check with a minimum",
        "a document with a maximum",
        "a metric whose minimum exceeds its maximum",
        "the same role twice",
        "fewer approvals than roles",
        "toLevel on a default rule that does not demote",
    ],
)
def test_invalid_policies(fields: dict[str, Any], errors: list[str]) -> None:
    assert errors_for(**fields) == errors


HISTORY = [{"to": 3, "kind": "entry", "at": "2026-11-22T12:00:00Z"}]
KNOWN = [{"version": "v1", "storageUri": "s3://m", "format": "sklearn", "servedAt": "t"}]
STATUS = {"level": 4, "history": HISTORY, "knownGoodModels": KNOWN, "phase": "Prototyping"}

LEVEL = "status.level: may only be changed by the operator through level reviews"
HISTORY_ERR = (
    "status.history: may only be changed by the operator, which records every level change"
)
KNOWN_ERR = (
    "status.knownGoodModels: may only be changed by the operator, which records models that served"
)


@pytest.mark.parametrize(
    ("old", "new", "errors"),
    [
        (None, None, []),
        (STATUS, STATUS, []),
        (STATUS, {**STATUS, "phase": "Research", "conditions": []}, []),
        ({}, {"level": None, "history": [], "knownGoodModels": []}, []),
        (None, {"history": []}, []),
        (STATUS, {**STATUS, "level": 9}, [LEVEL]),
        ({**STATUS, "level": 0}, {**STATUS, "level": None}, [LEVEL]),
        (None, {"level": 0}, [LEVEL]),
        (STATUS, {**STATUS, "history": []}, [HISTORY_ERR]),
        (STATUS, {**STATUS, "knownGoodModels": [*KNOWN, *KNOWN]}, [KNOWN_ERR]),
        (STATUS, None, [LEVEL, HISTORY_ERR, KNOWN_ERR]),
    ],
    ids=[
        "no status before or after",
        "an unchanged status",
        "other status fields are not guarded here",
        "absent, null and empty all mean nothing recorded",
        "a new empty history is no change",
        "raising the level",
        "level 0 to unset is a change",
        "setting level 0 on a new object",
        "clearing the history",
        "adding a known-good model",
        "dropping the whole status",
    ],
)
def test_users_may_not_edit_the_operators_status_fields(
    old: dict[str, Any] | None, new: dict[str, Any] | None, errors: list[str]
) -> None:
    assert [str(e) for e in validate_status_edit(old, new)] == errors
