from __future__ import annotations

from typing import Any

import pytest

from mltrl_operator.api.common import LabelSelector
from mltrl_operator.api.policy import Enforcement, EvidenceRequirement, OnDemotion
from mltrl_operator.api.review import EvidenceKind
from mltrl_operator.api.technology import AlertAction, MonitoringRule
from mltrl_operator.domain.policy import (
    DEFAULT_POLICY,
    NOTIFY_FALLBACK,
    LevelRule,
    combine_rules,
    effective_policy,
    matching_policies,
    merge_policies,
    selector_matches,
)

from .builders import named_policy

PROD = {"env": "prod", "team": "fraud"}


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {}, True),
        ({}, PROD, True),
        ({"matchLabels": {"env": "prod"}}, PROD, True),
        ({"matchLabels": {"env": "dev"}}, PROD, False),
        ({"matchLabels": {"tier": "gold"}}, PROD, False),
        (
            {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "stg"]}]},
            PROD,
            True,
        ),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}, PROD, False),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}]},
            PROD,
            False,
        ),
        (
            {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]},
            PROD,
            True,
        ),
        (
            {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]},
            PROD,
            False,
        ),
        (
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["gold"]}]},
            PROD,
            True,
        ),
        ({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, PROD, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, PROD, False),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, PROD, True),
        ({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, PROD, False),
        (
            {
                "matchLabels": {"env": "prod"},
                "matchExpressions": [{"key": "team", "operator": "DoesNotExist"}],
            },
            PROD,
            False,
        ),
        (
            {
                "matchExpressions": [
                    {"key": "env", "operator": "Exists"},
                    {"key": "team", "operator": "In", "values": ["fraud"]},
                ]
            },
            PROD,
            True,
        ),
    ],
    ids=[
        "an empty selector matches a namespace without labels",
        "an empty selector matches every namespace",
        "matchLabels with the same value matches",
        "matchLabels with another value does not match",
        "matchLabels with a missing key does not match",
        "In matches a listed value",
        "In does not match an unlisted value",
        "In does not match a missing key",
        "NotIn matches an unlisted value",
        "NotIn does not match a listed value",
        "NotIn matches a missing key as Kubernetes does",
        "Exists matches a present key",
        "Exists does not match a missing key",
        "DoesNotExist matches a missing key",
        "DoesNotExist does not match a present key",
        "matchLabels and matchExpressions must both hold",
        "every expression must hold",
    ],
)
def test_namespace_selectors(
    selector: dict[str, Any], labels: dict[str, str], matches: bool
) -> None:
    assert selector_matches(LabelSelector.model_validate(selector), labels) is matches


def test_the_documented_serving_and_review_defaults() -> None:
    assert DEFAULT_POLICY.sources == ()
    assert DEFAULT_POLICY.minimum_serving_level == 6
    assert DEFAULT_POLICY.enforcement is Enforcement.ENFORCE
    assert DEFAULT_POLICY.on_demotion is OnDemotion.STOP
    assert DEFAULT_POLICY.governed is False
    assert DEFAULT_POLICY.separation_of_duties is True
    assert DEFAULT_POLICY.allow_level_skipping is False
    assert DEFAULT_POLICY.default_alert_rules == (MonitoringRule(action=AlertAction.NOTIFY),)


C, M, D = EvidenceKind.CHECK, EvidenceKind.METRIC, EvidenceKind.DOCUMENT


@pytest.mark.parametrize(
    ("level", "evidence", "approvals", "roles"),
    [
        (1, [(D, "research-plan")], 1, {"research-lead"}),
        (2, [(D, "requirements")], 1, set()),
        (3, [(D, "requirements")], 1, set()),
        (4, [(D, "requirements"), (C, "unit-tests")], 1, set()),
        (5, [(C, "unit-tests"), (C, "integration-tests"), (D, "dataset-versions")], 1, set()),
        (6, [(D, "product-requirements"), (D, "ethics-checklist")], 2, {"product-owner"}),
        (7, [(C, "integration-tests")], 2, {"qa", "product-owner"}),
        (
            8,
            [
                (C, "ci"),
                (C, "shadow-tests"),
                (C, "shift-tests"),
                (D, "ethics-checklist"),
                (D, "fallback-mode"),
            ],
            2,
            set(),
        ),
        (9, [(D, "monitoring-plan"), (C, "drift-checks")], 2, {"sre"}),
    ],
    ids=[f"promotion to level {n}" for n in range(1, 10)],
)
def test_the_documented_default_rule_per_level(
    level: int, evidence: list[tuple[EvidenceKind, str]], approvals: int, roles: set[str]
) -> None:
    rule = DEFAULT_POLICY.rule_for(level)
    assert rule.level == level
    assert [(e.kind, e.name) for e in rule.evidence] == evidence
    assert all(e.description for e in rule.evidence)
    assert rule.min_approvals == approvals
    assert rule.required_roles == roles


@pytest.mark.parametrize("level", [0, 10], ids=["no promotion leads to 0", "there is no 10"])
def test_rule_for_a_level_no_promotion_leads_to_is_refused(level: int) -> None:
    with pytest.raises(ValueError, match=f"no promotion leads to level {level}; rules cover 1-9"):
        DEFAULT_POLICY.rule_for(level)


def test_matching_policies_keeps_those_that_select_the_namespace_sorted_by_name() -> None:
    policies = [
        named_policy("zeta"),
        named_policy("dev-only", namespaceSelector={"matchLabels": {"env": "dev"}}),
        named_policy("alpha", namespaceSelector={"matchLabels": {"env": "prod"}}),
    ]
    assert [p.name for p in matching_policies(policies, PROD)] == ["alpha", "zeta"]


def test_no_matching_policy_means_the_defaults() -> None:
    assert merge_policies([]) is DEFAULT_POLICY
    dev_only = named_policy("dev-only", namespaceSelector={"matchLabels": {"env": "dev"}})
    assert effective_policy([dev_only], PROD) is DEFAULT_POLICY


def test_effective_policy_merges_only_the_matching_policies() -> None:
    policies = [
        named_policy(
            "dev", namespaceSelector={"matchLabels": {"env": "dev"}}, serving={"minimumLevel": 9}
        ),
        named_policy(
            "prod", namespaceSelector={"matchLabels": {"env": "prod"}}, serving={"minimumLevel": 7}
        ),
    ]
    merged = effective_policy(policies, PROD)
    assert merged.sources == ("prod",)
    assert merged.minimum_serving_level == 7


def test_a_policy_that_sets_nothing_asks_for_the_defaults() -> None:
    merged = merge_policies([named_policy("empty")])
    assert merged.sources == ("empty",)
    for field in (
        "minimum_serving_level",
        "enforcement",
        "on_demotion",
        "governed",
        "separation_of_duties",
        "allow_level_skipping",
        "default_alert_rules",
    ):
        assert getattr(merged, field) == getattr(DEFAULT_POLICY, field), field
    assert dict(merged.rules) == dict(DEFAULT_POLICY.rules)


def serving(**fields: Any) -> dict[str, Any]:
    return {"serving": fields}


@pytest.mark.parametrize(
    ("policies", "field", "expected"),
    [
        ([serving(minimumLevel=3)], "minimum_serving_level", 3),
        ([serving(minimumLevel=3), {}], "minimum_serving_level", 6),
        ([serving(minimumLevel=7), serving(minimumLevel=8)], "minimum_serving_level", 8),
        ([serving(enforcement="audit")], "enforcement", Enforcement.AUDIT),
        (
            [serving(enforcement="audit"), serving(enforcement="enforce")],
            "enforcement",
            Enforcement.ENFORCE,
        ),
        ([serving(enforcement="audit"), {}], "enforcement", Enforcement.ENFORCE),
        ([serving(onDemotion="keep")], "on_demotion", OnDemotion.KEEP),
        ([serving(onDemotion="keep"), serving(onDemotion="stop")], "on_demotion", OnDemotion.STOP),
        (
            [serving(onDemotion="delete"), serving(onDemotion="stop")],
            "on_demotion",
            OnDemotion.DELETE,
        ),
        ([serving(onDemotion="keep"), {}], "on_demotion", OnDemotion.STOP),
        ([{}], "governed", False),
        ([serving(governed=True), serving(governed=False)], "governed", True),
        ([{"separationOfDuties": False}], "separation_of_duties", False),
        (
            [{"separationOfDuties": False}, {"separationOfDuties": True}],
            "separation_of_duties",
            True,
        ),
        ([{"separationOfDuties": False}, {}], "separation_of_duties", True),
        ([{"allowLevelSkipping": True}], "allow_level_skipping", True),
        (
            [{"allowLevelSkipping": True}, {"allowLevelSkipping": False}],
            "allow_level_skipping",
            False,
        ),
        ([{"allowLevelSkipping": True}, {}], "allow_level_skipping", False),
    ],
    ids=[
        "one policy may lower the serving minimum",
        "a silent policy keeps the default serving minimum",
        "the highest serving minimum wins",
        "one policy may choose audit",
        "enforce beats audit",
        "a silent policy keeps enforce",
        "one policy may choose keep",
        "stop beats keep",
        "delete beats stop",
        "a silent policy keeps stop",
        "governed is off by default",
        "governed if any policy governs",
        "one policy may drop separation of duties",
        "separation of duties if any policy asks",
        "a silent policy keeps separation of duties",
        "one policy may allow skipping",
        "skipping only if every policy allows it",
        "a silent policy forbids skipping",
    ],
)
def test_the_strictest_serving_and_review_setting_wins(
    policies: list[dict[str, Any]], field: str, expected: object
) -> None:
    named = [named_policy(f"p{n}", **spec) for n, spec in enumerate(policies)]
    assert getattr(merge_policies(named), field) == expected


def level(number: int, **fields: Any) -> dict[str, Any]:
    return {"requirements": [{"level": number, **fields}]}


def auc(**bounds: Any) -> dict[str, Any]:
    return {"name": "auc", "kind": "metric", **bounds}


@pytest.mark.parametrize(
    ("policies", "number", "approvals", "roles"),
    [
        ([level(4, minApprovals=3)], 4, 3, set()),
        ([level(4, minApprovals=0)], 4, 0, set()),
        ([level(4, minApprovals=0), {}], 4, 1, set()),
        ([level(4, minApprovals=0), level(4)], 4, 1, set()),
        ([level(4, minApprovals=3), level(4, minApprovals=2)], 4, 3, set()),
        ([level(4, requiredRoles=["qa"])], 4, 1, {"qa"}),
        ([level(7, requiredRoles=["security"])], 7, 2, {"security"}),
        ([level(7, requiredRoles=["security"]), {}], 7, 3, {"security", "qa", "product-owner"}),
        ([level(7, minApprovals=3)], 7, 3, {"qa", "product-owner"}),
        (
            [level(6, requiredRoles=["product-owner", "ethics", "legal"])],
            6,
            3,
            {"product-owner", "ethics", "legal"},
        ),
    ],
    ids=[
        "a policy may ask for more approvals",
        "one policy alone may ask for fewer approvals",
        "a policy silent about the level keeps the default approvals",
        "a policy listing the level without minApprovals keeps the default",
        "the most approvals wins",
        "a policy's roles replace the default roles",
        "a policy's roles replace the default roles of a level that has some",
        "a policy silent about the level brings the default roles in, and their approvers",
        "a policy listing the level without roles keeps the default roles",
        "approvals rise to the number of roles, one reviewer per role",
    ],
)
def test_per_level_approvals_and_roles(
    policies: list[dict[str, Any]], number: int, approvals: int, roles: set[str]
) -> None:
    named = [named_policy(f"p{n}", **spec) for n, spec in enumerate(policies)]
    rule = merge_policies(named).rule_for(number)
    assert rule.min_approvals == approvals
    assert rule.required_roles == roles


def evidence_of(rule: LevelRule) -> list[tuple[str, float | None, float | None]]:
    return [(e.name, e.minimum, e.maximum) for e in rule.evidence]


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        ([level(4, evidence=[auc(minimum=0.8)])], [("auc", 0.8, None)]),
        ([level(4, evidence=[auc(minimum=0.8)]), {}], [("auc", 0.8, None)]),
        ([level(4, evidence=[auc(minimum=0.8)]), level(4, minApprovals=2)], [("auc", 0.8, None)]),
        ([level(4, minApprovals=2)], [("requirements", None, None), ("unit-tests", None, None)]),
        (
            [
                level(4, evidence=[auc(minimum=0.8)]),
                level(4, evidence=[{"name": "ci", "kind": "check"}]),
            ],
            [("auc", 0.8, None), ("ci", None, None)],
        ),
        (
            [
                level(4, evidence=[auc(minimum=0.8, maximum=0.99)]),
                level(4, evidence=[auc(minimum=0.85, maximum=0.95)]),
            ],
            [("auc", 0.85, 0.95)],
        ),
        (
            [level(4, evidence=[auc(minimum=0.9)]), level(4, evidence=[auc(maximum=0.99)])],
            [("auc", 0.9, 0.99)],
        ),
    ],
    ids=[
        "a policy's evidence replaces the default evidence of the level",
        "a policy silent about the level does not bring the default evidence back",
        "a policy listing the level without evidence does not bring the defaults back",
        "with no policy listing evidence the defaults stay",
        "the evidence of the listing policies adds up by name",
        "the same metric keeps the highest minimum and the lowest maximum",
        "bounds from different policies combine",
    ],
)
def test_per_level_evidence(
    policies: list[dict[str, Any]], expected: list[tuple[str, float | None, float | None]]
) -> None:
    named = [named_policy(f"p{n}", **spec) for n, spec in enumerate(policies)]
    merged = merge_policies(named)
    assert evidence_of(merged.rule_for(4)) == expected
    assert merged.rule_for(5) == DEFAULT_POLICY.rule_for(5)


def test_the_same_evidence_keeps_the_kind_of_the_first_policy_and_the_first_description() -> None:
    merged = merge_policies(
        [
            named_policy(
                "b", **level(4, evidence=[{"name": "x", "kind": "check", "description": "from b"}])
            ),
            named_policy("a", **level(4, evidence=[{"name": "x", "kind": "document"}])),
        ]
    )
    (only,) = merged.rule_for(4).evidence
    assert (only.kind, only.description) == (EvidenceKind.DOCUMENT, "from b")


def test_default_alert_rules_follow_policy_names_then_notify() -> None:
    demote = {"alertName": "Drift", "action": "demote", "toLevel": 7}
    rollback = {"alertName": "Errors", "action": "rollback"}
    merged = merge_policies(
        [
            named_policy("b-team", alerts={"defaultActions": [rollback]}),
            named_policy("a-platform", alerts={"defaultActions": [demote]}),
        ]
    )
    assert merged.sources == ("a-platform", "b-team")
    assert merged.default_alert_rules == (
        MonitoringRule.model_validate(demote),
        MonitoringRule.model_validate(rollback),
        NOTIFY_FALLBACK,
    )


def test_combine_rules_demands_everything_of_every_rule() -> None:
    def req(name: str, low: float | None = None) -> EvidenceRequirement:
        return EvidenceRequirement(name=name, kind=EvidenceKind.METRIC, minimum=low)

    combined = combine_rules(
        6,
        [
            LevelRule(5, (req("auc", 0.8), req("f1")), 1, frozenset({"qa"})),
            LevelRule(6, (req("auc", 0.9),), 2, frozenset({"product-owner"})),
        ],
    )
    assert combined.level == 6
    assert evidence_of(combined) == [("auc", 0.9, None), ("f1", None, None)]
    assert combined.min_approvals == 2
    assert combined.required_roles == {"qa", "product-owner"}
