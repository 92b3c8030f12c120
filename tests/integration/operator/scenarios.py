"""Manifests the operator tests build on, written the way a team would write them."""

from __future__ import annotations

from typing import Any


def policy(
    name: str,
    namespace: str,
    *,
    minimum_level: int = 5,
    enforcement: str = "enforce",
    on_demotion: str = "stop",
    governed: bool = False,
    requirements: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
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
        },
    }


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
        spec["model"] = {
            "version": model_version,
            "storageUri": f"s3://models/{name}/{model_version}",
            "format": "sklearn",
        }
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
) -> dict[str, Any]:
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
    return {
        "apiVersion": "mltrl.dev/v1alpha1",
        "kind": "LevelReview",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
