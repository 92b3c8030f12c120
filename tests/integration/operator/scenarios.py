"""Manifests the operator tests build on, written the way a team would write them."""

from __future__ import annotations

from typing import Any

from mltrl_operator.api.review import LevelReviewSpec
from mltrl_operator.api.technology import ModelSpec
from mltrl_operator.domain.approvals import make_stamp, review_content

STAMPED_AT = "2026-11-30T12:00:00Z"


def policy(
    name: str,
    namespace: str,
    *,
    minimum_level: int = 5,
    enforcement: str = "enforce",
    on_demotion: str = "stop",
    governed: bool = False,
    requirements: list[dict[str, Any]] | None = None,
    entry_max_level: int = 9,
    reviewers: list[dict[str, Any]] | None = None,
    model_change: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Technologies may enter at any level (these tests are not about entry) and bob and
    carol hold the role qa, unless said otherwise. `model_change` replaces the built-in
    modelChange default (ALLOW_NEW_MODELS: suites about serving and alerts that ship new
    models without change reviews; test_lifecycle is about those)."""
    body: dict[str, Any] = {
        "apiVersion": "mltrl.dev/v1alpha1",
        "kind": "MLTRLPolicy",
        "metadata": {"name": name},
        "spec": {
            "namespaceSelector": {"matchLabels": {"mltrl-test": namespace}},
            "serving": {
                "minimumLevel": minimum_level,
                "enforcement": enforcement,
                "onDemotion": on_demotion,
                "governed": governed,
            },
            "requirements": requirements
            if requirements is not None
            else [
                {
                    "level": level,
                    "minApprovals": 1,
                    "requiredRoles": ["qa"],
                    "evidence": [{"name": "unit-tests", "kind": "check"}],
                }
                for level in range(1, 10)
            ],
            "entry": {"maxLevel": entry_max_level},
            "reviewers": reviewers
            if reviewers is not None
            else [{"role": "qa", "users": ["bob", "carol"]}],
        },
    }
    if model_change is not None:
        body["spec"]["modelChange"] = model_change
    return body


ALLOW_NEW_MODELS = [{"fromLevel": 0, "action": "allow"}]


def model(name: str, version: str) -> dict[str, Any]:
    return {"version": version, "storageUri": f"s3://models/{name}/{version}", "format": "sklearn"}


def technology(
    name: str,
    namespace: str,
    *,
    entry_level: int = 3,
    target_level: int = 9,
    owner: str = "alice",
    model_version: str | None = None,
    components: list[str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "owner": owner,
        "team": "ml",
        "entryLevel": entry_level,
        "targetLevel": target_level,
    }
    if model_version:
        spec["model"] = model(name, model_version)
        spec["serving"] = {"predictor": {"minReplicas": 1}}
    if components:
        spec["components"] = [{"name": component} for component in components]
    return {
        "apiVersion": "mltrl.dev/v1alpha1",
        "kind": "MLTechnology",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def review(
    name: str,
    namespace: str,
    technology_name: str,
    from_level: int,
    to_level: int,
    *,
    evidence: bool = True,
    approvers: tuple[tuple[str, str], ...] = (("bob", "qa"),),
    reason: str | None = None,
    model_version: str | None = None,
) -> dict[str, Any]:
    """Approvals carry the stamp the admission webhook would write (these suites run
    without webhooks): the reviewer, no groups, and the content with the technology's
    model `model_version` (as technology() builds it)."""
    spec: dict[str, Any] = {
        "technology": technology_name,
        "fromLevel": from_level,
        "toLevel": to_level,
        "evidence": [{"name": "unit-tests", "kind": "check", "passed": True,
                      "uri": "https://ci.example.com/run/1"}] if evidence else [],
        "approvals": [
            {"reviewer": reviewer, "role": role, "decision": "approve"}
            for reviewer, role in approvers
        ],
        "debrief": {"accomplished": "the work", "learned": "a lesson"},
    }
    if reason:
        spec["reason"] = reason
    content = review_content(
        LevelReviewSpec.model_validate({**spec, "approvals": []}),
        ModelSpec.model_validate(model(technology_name, model_version)) if model_version else None,
    )
    for approval in spec["approvals"]:
        approval["approvedBy"] = make_stamp(approval["reviewer"], [], STAMPED_AT, content)
    return {
        "apiVersion": "mltrl.dev/v1alpha1",
        "kind": "LevelReview",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
