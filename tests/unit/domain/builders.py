"""Small builders so each test row states only what matters to it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from mltrl_operator.api.policy import MLTRLPolicySpec
from mltrl_operator.api.review import (
    Approval,
    ApprovalStamp,
    Decision,
    Evidence,
    EvidenceKind,
    LevelReviewSpec,
)
from mltrl_operator.api.technology import MLTechnologySpec, ModelSpec
from mltrl_operator.domain.approvals import make_stamp, review_content
from mltrl_operator.domain.policy import DEFAULT_POLICY, EffectivePolicy, NamedPolicy, RoleGrant

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
NOW_TEXT = "2026-11-22T12:00:00Z"
LATER = datetime(2026, 11, 22, 13, 30, 0, tzinfo=UTC)
LATER_TEXT = "2026-11-22T13:30:00Z"


def tech_spec(**fields: Any) -> MLTechnologySpec:
    """A technology from its wire (camelCase) form, as users write it."""
    return MLTechnologySpec.model_validate({"owner": "alice", "entryLevel": 3, **fields})


def model(version: str = "v1", **fields: Any) -> ModelSpec:
    return ModelSpec.model_validate(
        {"version": version, "storageUri": f"s3://models/fraud/{version}", "format": "sklearn"}
        | fields
    )


def named_policy(name: str, **fields: Any) -> NamedPolicy:
    return NamedPolicy(name, MLTRLPolicySpec.model_validate(fields))


def check(name: str, passed: bool | None = True) -> Evidence:
    return Evidence(name=name, kind=EvidenceKind.CHECK, passed=passed)


def metric(name: str, value: float | None) -> Evidence:
    return Evidence(name=name, kind=EvidenceKind.METRIC, value=value)


def document(name: str, uri: str | None = "https://docs.example/x") -> Evidence:
    return Evidence(name=name, kind=EvidenceKind.DOCUMENT, uri=uri)


def approve(reviewer: str, role: str = "ml-peer") -> Approval:
    return Approval(reviewer=reviewer, role=role, decision=Decision.APPROVE)


def reject(reviewer: str, role: str = "ml-peer", comment: str | None = None) -> Approval:
    return Approval(reviewer=reviewer, role=role, decision=Decision.REJECT, comment=comment)


def review(
    from_level: int,
    to_level: int,
    evidence: Iterable[Evidence] = (),
    approvals: Iterable[Approval] = (),
    *,
    stamp: bool = True,
    model: ModelSpec | None = None,
    **fields: Any,
) -> LevelReviewSpec:
    """Approvals come stamped as the webhook would stamp them (the reviewer, a group named
    after the role, the review's content with `model`), unless `stamp` is False."""
    spec = LevelReviewSpec(
        technology="fraud",
        from_level=from_level,
        to_level=to_level,
        evidence=list(evidence),
        approvals=list(approvals),
        **fields,
    )
    return stamped(spec, model) if stamp else spec


def stamped(spec: LevelReviewSpec, model: ModelSpec | None = None) -> LevelReviewSpec:
    content = review_content(spec, model)
    approvals = [
        a if a.approved_by is not None else a.model_copy(update={
            "approved_by": ApprovalStamp.model_validate(
                make_stamp(a.reviewer, [a.role], NOW_TEXT, content)
            )
        })
        for a in spec.approvals
    ]
    return spec.model_copy(update={"approvals": approvals})


ROLES = ("research-lead", "ml-peer", "qa", "product-owner", "sre", "ethics")
TEST_GRANTS = MappingProxyType({
    role: (RoleGrant("test", frozenset(), frozenset({role})),) for role in ROLES
})
"""Every role bound to the group of its name, which stamped() gives each approver."""
BOUND_DEFAULT = replace(DEFAULT_POLICY, role_grants=TEST_GRANTS)


# Evidence that meets every built-in rule, per level promoted to.
DEFAULT_EVIDENCE: dict[int, list[Evidence]] = {
    1: [document("research-plan")],
    2: [document("requirements")],
    3: [document("requirements")],
    4: [document("requirements"), check("unit-tests")],
    5: [check("unit-tests"), check("integration-tests"), document("dataset-versions")],
    6: [document("product-requirements"), document("ethics-checklist")],
    7: [check("integration-tests")],
    8: [
        check("ci"),
        check("shadow-tests"),
        check("shift-tests"),
        document("ethics-checklist"),
        document("fallback-mode"),
    ],
    9: [document("monitoring-plan"), check("drift-checks")],
}


def with_policy(**fields: Any) -> EffectivePolicy:
    """The default policy, every role bound (TEST_GRANTS), with some fields replaced."""
    return replace(BOUND_DEFAULT, **fields)
