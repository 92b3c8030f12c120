"""Technologies, reviews and policies in the wire form users write."""

from __future__ import annotations

from typing import Any

from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.api.review import Approval, Decision, Evidence, EvidenceKind, LevelReviewSpec
from mltrl_operator.api.technology import LevelTransition, MLTechnologySpec, MLTechnologyStatus
from mltrl_operator.domain.policy import NamedPolicy, effective_policy

AT = "2026-11-22T12:00:00Z"

PRODUCTION = effective_policy(
    [NamedPolicy("prod", MLTRLPolicySpec.model_validate({"requirements": [{
        "level": 7, "minApprovals": 2, "requiredRoles": ["qa", "product-owner"],
        "evidence": [{"name": "integration-tests", "kind": "check"},
                     {"name": "auc", "kind": "metric", "minimum": 0.9}],
    }], "reviewers": [{"role": "qa", "users": ["bob"]},  # no policy, no roles (issue 11)
                      {"role": "product-owner", "users": ["carol"]}]}))],
    {},
)


def tech(**fields: Any) -> MLTechnologySpec:
    return MLTechnologySpec.model_validate({"owner": "alice", "entryLevel": 6, **fields})


def transition(to: int, kind: str = "entry", **fields: Any) -> LevelTransition:
    return LevelTransition.model_validate({"to": to, "kind": kind, "at": AT, **fields})


def status(level: int, *history: LevelTransition, **fields: Any) -> MLTechnologyStatus:
    return MLTechnologyStatus.model_validate({
        "level": level,
        "history": [h.model_dump(by_alias=True, exclude_none=True) for h in history]
        or [{"to": level, "kind": "entry", "at": AT}],
        **fields,
    })


def check(name: str, passed: bool = True, uri: str | None = None) -> Evidence:
    return Evidence(name=name, kind=EvidenceKind.CHECK, passed=passed, uri=uri)


def metric(name: str, value: float) -> Evidence:
    return Evidence(name=name, kind=EvidenceKind.METRIC, value=value)


def approve(reviewer: str, role: str) -> Approval:
    return Approval(reviewer=reviewer, role=role, decision=Decision.APPROVE)


def review(from_level: int, to_level: int, technology: str = "fraud", evidence: list[Evidence]
           | None = None, approvals: list[Approval] | None = None) -> LevelReviewSpec:
    return LevelReviewSpec(technology=technology, from_level=from_level, to_level=to_level,
                           evidence=evidence or [], approvals=approvals or [])
