"""Organisation maturity from what a cluster holds.

Two verdicts, each a pure function of the technologies, their reviews and the policies:
- per team, the MLOps maturity level 0-4 (the MLOps maturity model: people, model
  creation, model release, application integration);
- for the organisation, the ML capacity stage (Initial, Spreading, Widespread, Mature).

Each verdict lists the signals it was reached from and, like a review's `unmet`, every
criterion the next level still misses. A level is reached when its criteria and those of
every level below it are met. docs/maturity.md maps each criterion to the seeds' wording and
says what a cluster cannot observe (people, training, strategy, experiment tracking).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from mltrl_operator.api.review import Decision, EvidenceKind, LevelReviewSpec, ReviewPhase
from mltrl_operator.api.technology import (
    AlertAction,
    MLTechnologySpec,
    MLTechnologyStatus,
    TransitionKind,
)

T = TypeVar("T")

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"

MLOPS_LEVEL_NAMES = {
    0: "No MLOps",
    1: "DevOps but no MLOps",
    2: "Automated training",
    3: "Automated model deployment",
    4: "Full MLOps automated operations",
}
CAPACITY_STAGES = ("Initial", "Spreading", "Widespread", "Mature")


@dataclass(frozen=True)
class TechnologyRecord:
    namespace: str
    name: str
    spec: MLTechnologySpec
    status: MLTechnologyStatus | None


@dataclass(frozen=True)
class ReviewRecord:
    namespace: str
    name: str
    spec: LevelReviewSpec
    phase: ReviewPhase | None


@dataclass(frozen=True)
class Signal:
    """One thing observed in the cluster, and whether it meets its criterion."""

    criterion: str
    met: bool
    observed: str


@dataclass(frozen=True)
class Verdict:
    subject: str
    level: int
    name: str
    signals: tuple[Signal, ...]
    missing_for_next: tuple[str, ...]
    technologies: tuple[str, ...] = ()


@dataclass(frozen=True)
class MaturityReport:
    grouping: str
    teams: tuple[Verdict, ...]
    organisation: Verdict
    unobservable: tuple[str, ...] = field(default=())


UNOBSERVABLE = (
    "how data scientists, data engineers and software engineers work together (People)",
    "whether experiments are tracked and compute is managed",
    "training for staff, a corporate ML strategy, the organisational structure",
    "whether the scoring script is versioned with tests outside the evidence reviews carry",
)


def team_of(record: TechnologyRecord, grouping: str) -> str:
    if grouping == "namespace":
        return record.namespace
    return record.spec.team or f"(no team, namespace {record.namespace})"


def _is_service_account(name: str) -> bool:
    return name.startswith(SERVICE_ACCOUNT_PREFIX)


def _count(label: str, hits: int, total: int) -> str:
    return f"{hits} of {total} {label}"


def _applied_promotions(reviews: Sequence[ReviewRecord]) -> list[ReviewRecord]:
    return [
        r for r in reviews
        if r.phase is ReviewPhase.APPLIED and r.spec.to_level > r.spec.from_level
    ]


def _has_passed_check(review: ReviewRecord) -> bool:
    return any(e.kind is EvidenceKind.CHECK and e.passed for e in review.spec.evidence)


def _ci_evidence(review: ReviewRecord) -> bool:
    """A passed check with a link: a CI run someone can open."""
    return any(e.kind is EvidenceKind.CHECK and e.passed and e.uri for e in review.spec.evidence)


def _released_by_ci(review: ReviewRecord) -> bool:
    return any(
        a.decision is Decision.APPROVE and _is_service_account(a.reviewer)
        for a in review.spec.approvals
    )


def _served(record: TechnologyRecord) -> bool:
    return bool(record.spec.model and (record.spec.serving is None or record.spec.serving.enabled))


def _monitored(record: TechnologyRecord) -> bool:
    return bool(record.spec.monitoring and record.spec.monitoring.rules)


def _retrains_on_alerts(record: TechnologyRecord) -> bool:
    rules = record.spec.monitoring.rules if record.spec.monitoring else []
    has_rule = any(rule.action is AlertAction.RETRAIN for rule in rules)
    return has_rule and bool(record.spec.retraining and record.spec.retraining.job_template)


def _retrained(record: TechnologyRecord) -> bool:
    incidents = record.status.incidents if record.status else []
    return any(i.action is AlertAction.RETRAIN and i.job for i in incidents)


@dataclass(frozen=True)
class _Criterion:
    level: int
    text: str
    check: Callable[[Sequence[TechnologyRecord], Sequence[ReviewRecord]], tuple[bool, str]]


def _all_of(items: Sequence[T], predicate: Callable[[T], bool], label: str) -> tuple[bool, str]:
    hits = sum(1 for item in items if predicate(item))
    return bool(items) and hits == len(items), _count(label, hits, len(items))


def _models_versioned(techs: Sequence[TechnologyRecord], _: Sequence[ReviewRecord]
                      ) -> tuple[bool, str]:
    with_model = [t for t in techs if t.spec.model]
    return _all_of(with_model, lambda t: True, "technologies name a versioned model artifact") \
        if with_model else (False, "no technology names a model artifact (spec.model)")


def _datasets_versioned(techs: Sequence[TechnologyRecord], _: Sequence[ReviewRecord]
                        ) -> tuple[bool, str]:
    return _all_of(techs, lambda t: bool(t.spec.card and t.spec.card.datasets),
                   "technologies name their datasets with versions (spec.card.datasets)")


def _code_linked(techs: Sequence[TechnologyRecord], _: Sequence[ReviewRecord]
                 ) -> tuple[bool, str]:
    return _all_of(techs, lambda t: bool(t.spec.card and t.spec.card.code),
                   "technologies link their version-controlled code (spec.card.code)")


def _test_evidence(_: Sequence[TechnologyRecord], reviews: Sequence[ReviewRecord]
                   ) -> tuple[bool, str]:
    applied = _applied_promotions(reviews)
    hits = sum(1 for r in applied if _has_passed_check(r))
    if not applied:
        return False, "no applied promotion review yet"
    return hits > 0, _count("applied promotions carry a passed test check", hits, len(applied))


def _every_release_tested(_: Sequence[TechnologyRecord], reviews: Sequence[ReviewRecord]
                          ) -> tuple[bool, str]:
    applied = _applied_promotions(reviews)
    if not applied:
        return False, "no applied promotion review yet"
    return _all_of(applied, _ci_evidence,
                   "applied promotions carry a passed check linked to a CI run")


def _ci_releases(_: Sequence[TechnologyRecord], reviews: Sequence[ReviewRecord]
                 ) -> tuple[bool, str]:
    applied = _applied_promotions(reviews)
    hits = sum(1 for r in applied if _released_by_ci(r))
    if not applied:
        return False, "no applied promotion review yet"
    return hits > 0, _count(
        "applied promotions approved by a CI identity (a ServiceAccount)", hits, len(applied)
    )


def _gated_serving(techs: Sequence[TechnologyRecord], _: Sequence[ReviewRecord]
                   ) -> tuple[bool, str]:
    served = [t for t in techs if _served(t)]
    if not served:
        return False, "no technology is served through the operator (spec.model + serving)"
    return True, _count("technologies served through the level gate", len(served), len(techs))


def _monitoring(techs: Sequence[TechnologyRecord], _: Sequence[ReviewRecord]
                ) -> tuple[bool, str]:
    served = [t for t in techs if _served(t)]
    if not served:
        return False, "no served technology to monitor"
    return _all_of(served, _monitored,
                   "served technologies have monitoring rules (spec.monitoring)")


def _retraining(techs: Sequence[TechnologyRecord], _: Sequence[ReviewRecord]
                ) -> tuple[bool, str]:
    served = [t for t in techs if _served(t)]
    if not served:
        return False, "no served technology to retrain"
    ok, observed = _all_of(served, _retrains_on_alerts,
                           "served technologies retrain on an alert (retrain rule + job)")
    ran = sum(1 for t in served if _retrained(t))
    return ok, f"{observed}; {ran} retrained after an alert so far"


MLOPS_CRITERIA: tuple[_Criterion, ...] = (
    _Criterion(1, "test evidence in reviews (basic integration and unit tests)", _test_evidence),
    _Criterion(2, "models version controlled", _models_versioned),
    _Criterion(2, "datasets named with versions", _datasets_versioned),
    _Criterion(2, "training code under version control", _code_linked),
    _Criterion(3, "unit and integration tests for each model release", _every_release_tested),
    _Criterion(3, "release managed by a CI/CD pipeline (CI identities approve)", _ci_releases),
    _Criterion(3, "models released through the serving gate", _gated_serving),
    _Criterion(4, "post-deployment metrics gathering (monitoring rules)", _monitoring),
    _Criterion(4, "retraining triggered automatically by production alerts", _retraining),
)


def _graded(
    subject: str,
    criteria: Iterable[tuple[int, str, bool, str]],
    top: int,
    names: Callable[[int], str],
    technologies: Sequence[str] = (),
) -> Verdict:
    rows = list(criteria)
    level = 0
    for candidate in range(1, top + 1):
        if all(met for lvl, _, met, _ in rows if lvl == candidate):
            level = candidate
        else:
            break
    missing = tuple(
        f"{text}: {observed}" for lvl, text, met, observed in rows
        if lvl == level + 1 and not met
    )
    signals = tuple(
        Signal(criterion=f"[{names(lvl)}] {text}", met=met, observed=observed)
        for lvl, text, met, observed in rows
    )
    return Verdict(subject, level, names(level), signals, missing, tuple(technologies))


def mlops_level(
    subject: str, techs: Sequence[TechnologyRecord], reviews: Sequence[ReviewRecord]
) -> Verdict:
    rows = []
    for criterion in MLOPS_CRITERIA:
        met, observed = criterion.check(techs, reviews)
        rows.append((criterion.level, criterion.text, met, observed))
    return _graded(
        subject, rows, 4, lambda lvl: f"{lvl} {MLOPS_LEVEL_NAMES[lvl]}",
        sorted(f"{t.namespace}/{t.name}" for t in techs),
    )


def _level(record: TechnologyRecord) -> int:
    if record.status and record.status.level is not None:
        return record.status.level
    return record.spec.entry_level


def _switchbacks(techs: Sequence[TechnologyRecord]) -> int:
    return sum(
        1 for t in techs for h in (t.status.history if t.status else [])
        if h.kind is TransitionKind.SWITCHBACK
    )


def capacity_stage(
    teams: Sequence[Verdict],
    techs: Sequence[TechnologyRecord],
    reviews: Sequence[ReviewRecord],
    governed_namespaces: frozenset[str] | None,
) -> Verdict:
    namespaces = sorted({t.namespace for t in techs})
    served = [t for t in techs if _served(t)]
    reviewed_teams = {
        r.namespace for r in _applied_promotions(reviews)
    }
    governed = [ns for ns in namespaces if ns in (governed_namespaces or ())]
    policy_observed = (
        _count("namespaces covered by an MLTRLPolicy", len(governed), len(namespaces))
        if governed_namespaces is not None
        else "cannot tell: the MLTRLPolicies or namespaces are not readable with your credentials"
    )
    productized = [t for t in techs if _level(t) >= 6]
    at_least = sum(1 for v in teams if v.level >= 2)
    automated = sum(1 for v in teams if v.level >= 3)
    monitored = sum(1 for t in served if _monitored(t))
    rows = [
        (1, "someone experiments with ML (technologies exist)", bool(techs),
         f"{len(techs)} technologies in {len(namespaces)} namespaces"),
        (2, "several teams work on ML", len(teams) >= 2, f"{len(teams)} teams"),
        (2, "models provided as a service", bool(served),
         _count("technologies served", len(served), len(techs))),
        (3, "ML work formalised: policies govern every namespace with technologies",
         bool(namespaces) and len(governed) == len(namespaces), policy_observed),
        (3, "reviews are the common process across teams", len(reviewed_teams) >= 2,
         f"applied promotion reviews in {len(reviewed_teams)} namespaces"),
        (3, "most teams version models and data (MLOps level 2 or more)",
         bool(teams) and at_least * 2 >= len(teams),
         _count("teams at MLOps level 2 or more", at_least, len(teams))),
        (3, "technologies reach productization", bool(productized),
         _count("technologies at level 6 or more", len(productized), len(techs))),
        (4, "ML development streamlined: every team releases through CI (MLOps level 3+)",
         bool(teams) and automated == len(teams),
         _count("teams at MLOps level 3 or more", automated, len(teams))),
        (4, "monitoring is automated for everything served",
         bool(served) and monitored == len(served),
         _count("served technologies with monitoring rules", monitored, len(served))),
    ]
    verdict = _graded("organisation", rows, 4, lambda lvl: _stage_name(lvl))
    switchbacks = _switchbacks(techs)
    extra = Signal(
        criterion="switchbacks recorded (a process that goes back when it learns)",
        met=True, observed=f"{switchbacks} switchbacks in the technologies' history",
    )
    return Verdict(verdict.subject, verdict.level, verdict.name, (*verdict.signals, extra),
                   verdict.missing_for_next)


def _stage_name(level: int) -> str:
    return "None" if level == 0 else CAPACITY_STAGES[level - 1]


def assess(
    techs: Sequence[TechnologyRecord],
    reviews: Sequence[ReviewRecord],
    governed_namespaces: frozenset[str] | None,
    grouping: str = "team",
) -> MaturityReport:
    if grouping not in ("team", "namespace"):
        raise ValueError(f"group by team or namespace, not {grouping!r}")
    groups: dict[str, list[TechnologyRecord]] = {}
    for record in techs:
        groups.setdefault(team_of(record, grouping), []).append(record)
    verdicts = []
    for team, members in sorted(groups.items()):
        keys = {(m.namespace, m.name) for m in members}
        team_reviews = [r for r in reviews if (r.namespace, r.spec.technology) in keys]
        verdicts.append(mlops_level(team, members, team_reviews))
    organisation = capacity_stage(verdicts, techs, reviews, governed_namespaces)
    return MaturityReport(grouping, tuple(verdicts), organisation, UNOBSERVABLE)
