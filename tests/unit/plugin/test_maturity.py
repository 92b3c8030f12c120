"""MLOps maturity per team and the organisation's ML capacity, from cluster signals."""

from __future__ import annotations

from typing import Any

from mltrl_operator.api.review import ReviewPhase
from mltrl_operator.domain.maturity import (
    ReviewRecord,
    TechnologyRecord,
    assess,
    mlops_level,
)

from .builders import approve, check, review, status, tech

CI = "system:serviceaccount:ci:release"
FULL: dict[str, Any] = {
    "model": {"version": "1", "storageUri": "s3://m/1", "format": "sklearn"},
    "card": {"datasets": [{"name": "d", "version": "1"}], "code": "https://git/x"},
    "monitoring": {"rules": [{"alertName": "Stale", "action": "retrain"}]},
    "retraining": {"jobTemplate": {"template": {"spec": {}}}},
}


def record(name: str, namespace: str = "ns", team: str = "t", **spec: Any) -> TechnologyRecord:
    return TechnologyRecord(namespace, name, tech(team=team, **spec), status(7))


def applied(tech_name: str, namespace: str = "ns", *, ci: bool = False, uri: bool = True
            ) -> ReviewRecord:
    approvals = [approve("bob", "qa"), approve(CI if ci else "carol", "release")]
    spec = review(6, 7, technology=tech_name,
                  evidence=[check("tests", uri="https://ci/1" if uri else None)],
                  approvals=approvals)
    return ReviewRecord(namespace, f"{tech_name}-to-7", spec, ReviewPhase.APPLIED)


def test_nothing_observed_is_level_zero_and_says_what_level_one_needs() -> None:
    verdict = mlops_level("t", [record("a")], [])
    assert verdict.level == 0 and verdict.name == "0 No MLOps"
    assert verdict.missing_for_next == (
        "test evidence in reviews (basic integration and unit tests): "
        "no applied promotion review yet",
    )


def test_versioned_models_data_and_code_make_level_two() -> None:
    techs = [record("a", model=FULL["model"], card=FULL["card"])]
    verdict = mlops_level("t", techs, [applied("a")])
    assert verdict.level == 2
    assert any("CI identity" in m for m in verdict.missing_for_next)


def test_ci_releases_tests_and_gated_serving_make_level_three() -> None:
    techs = [record("a", model=FULL["model"], card=FULL["card"])]
    verdict = mlops_level("t", techs, [applied("a", ci=True)])
    assert verdict.level == 3
    assert any("monitoring" in m for m in verdict.missing_for_next)


def test_retraining_on_alerts_and_monitoring_make_level_four() -> None:
    verdict = mlops_level("t", [record("a", **FULL)], [applied("a", ci=True)])
    assert verdict.level == 4 and verdict.missing_for_next == ()
    assert all(s.met for s in verdict.signals)


def test_a_gap_at_a_lower_level_caps_the_level() -> None:
    # everything of level 4, but no test evidence: level 0, however automated the rest
    verdict = mlops_level("t", [record("a", **FULL)], [])
    assert verdict.level == 0


def test_organisation_stages_grow_with_teams_services_and_policy() -> None:
    one = assess([record("a")], [], frozenset())
    assert one.organisation.name == "Initial"
    two = assess([record("a", model=FULL["model"]), record("b", team="u")], [], frozenset())
    assert two.organisation.name == "Spreading"
    assert any("MLTRLPolicy" in m for m in two.organisation.missing_for_next)
    techs = [record("a", "n1", "t", **FULL), record("b", "n2", "u", **FULL)]
    reviews = [applied("a", "n1", ci=True), applied("b", "n2", ci=True)]
    mature = assess(techs, reviews, frozenset({"n1", "n2"}))
    assert mature.organisation.name == "Mature", mature.organisation.missing_for_next
    assert [t.level for t in mature.teams] == [4, 4]


def test_grouping_by_namespace() -> None:
    report = assess([record("a", "n1"), record("b", "n2")], [], frozenset(), "namespace")
    assert [t.subject for t in report.teams] == ["n1", "n2"]
    assert report.unobservable
