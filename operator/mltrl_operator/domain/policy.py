"""Which MLTRLPolicies apply to a namespace, and the one effective policy they add up to.

Built-in defaults (`DEFAULT_POLICY`), used when no policy matches and for every field a
matching policy leaves unset. They follow the "typical evidence" of the paper's example
TRL cards; rules guard a promotion TO the level:

| to level | evidence (kind name)                    | approvals | roles         |
|----------|-----------------------------------------|-----------|---------------|
| 1        | document research-plan                  | 1         | research-lead |
| 2        | document requirements                   | 1         |               |
| 3        | document requirements                   | 1         |               |
| 4        | document requirements, check unit-tests | 1         |               |
| 5        | check unit-tests,                       | 1         |               |
|          | check integration-tests,                |           |               |
|          | document dataset-versions               |           |               |
| 6        | document product-requirements,          | 2         | product-owner |
|          | document ethics-checklist               |           |               |
| 7        | check integration-tests                 | 2         | qa,           |
|          |                                         |           | product-owner |
| 8        | check ci, check shadow-tests,           | 2         |               |
|          | check shift-tests,                      |           |               |
|          | document ethics-checklist,              |           |               |
|          | document fallback-mode                  |           |               |
| 9        | document monitoring-plan,               | 2         | sre           |
|          | check drift-checks                      |           |               |

Serving: minimum level 6 (Application Development), enforcement `enforce`, onDemotion
`stop`, governed `false`. Separation of duties on, level skipping off. Alerts: any alert
that no rule claims is only reported (`notify`).

Merging several matching policies, the strictest value of each field wins. A policy that
leaves a field unset counts as asking for the default, so a policy can loosen a default
only where every matching policy agrees (this is also the only reading the booleans allow,
since the API cannot tell an unset boolean from its default):

| field                 | merge                                                         |
|-----------------------|---------------------------------------------------------------|
| minimumLevel          | highest                                                       |
| enforcement           | enforce beats audit                                           |
| onDemotion            | delete beats stop beats keep                                  |
| governed              | true if any policy says so                                    |
| separationOfDuties    | true if any policy says so                                    |
| allowLevelSkipping    | true only if every policy says so                             |
| minApprovals (level)  | highest; a policy that does not set it counts as the default  |
| requiredRoles (level) | union; a policy that lists none counts as the default's roles |
| evidence (level)      | the union over the policies that list evidence for the level; |
|                       | only when none does, the default evidence                     |
| defaultActions        | all policies' rules in policy-name order, then notify         |
| entry.maxLevel        | lowest; unset counts as the default 4                         |
| dismissStaleApprovals | true if any policy says so                                    |
| reviewers             | a role is held only if every policy that binds it grants it   |

Evidence is the exception on purpose: a platform team that writes the evidence for a
level has replaced the defaults for it, and a policy that is silent about that level must
not bring them back. An empty evidence list counts as silent (the API cannot tell it from
an unset one). Where policies require the same evidence name, the tighter metric bounds
win (highest minimum, lowest maximum); the kind and description of the first policy by
name are kept.

Every rule needs at least as many approvals as it has required roles: a reviewer decides
once with one role, so each role needs its own reviewer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from mltrl_operator.api.common import LabelSelector, SelectorOperator
from mltrl_operator.api.policy import (
    Enforcement,
    EvidenceRequirement,
    LevelRequirements,
    MLTRLPolicySpec,
    OnDemotion,
)
from mltrl_operator.api.review import EvidenceKind
from mltrl_operator.api.technology import AlertAction, MonitoringRule
from mltrl_operator.domain.durations import parse_duration

PROMOTION_LEVELS = range(1, 10)


@dataclass(frozen=True)
class NamedPolicy:
    name: str
    spec: MLTRLPolicySpec


@dataclass(frozen=True)
class LevelRule:
    level: int
    evidence: tuple[EvidenceRequirement, ...]
    min_approvals: int
    required_roles: frozenset[str]


DEFAULT_ENTRY_MAX_LEVEL = 4


@dataclass(frozen=True)
class RoleGrant:
    """The users and groups one policy names: for a reviewer role, or as waiver approvers."""

    policy: str
    users: frozenset[str]
    groups: frozenset[str]

    def grants(self, username: str, groups: Iterable[str]) -> bool:
        return username in self.users or not self.groups.isdisjoint(groups)


# --- who may approve waivers (issue 15): part of the effective policy, so that every caller
# holding an EffectivePolicy judges waivers the same way (domain.waivers.waiver_applies).

DEFAULT_WAIVER_MAX_DURATION = timedelta(days=30)


@dataclass(frozen=True)
class EffectiveWaiverPolicy:
    max_duration: timedelta = DEFAULT_WAIVER_MAX_DURATION
    approver_sets: tuple[RoleGrant, ...] = ()
    """One per matching policy with a `waivers` block: an approver must be named by each.
    Policies without the block have no say; with none at all, nobody may approve."""
    sources: tuple[str, ...] = ()

    def may_approve(self, username: str, groups: Iterable[str]) -> bool:
        groups = frozenset(groups)
        return bool(self.approver_sets) and all(
            s.grants(username, groups) for s in self.approver_sets
        )

    def label(self) -> str:
        if not self.sources:
            return "no policy names waiver approvers"
        return f"policy {', '.join(self.sources)}"


def waiver_policy(policies: Sequence[NamedPolicy]) -> EffectiveWaiverPolicy:
    """The shortest maxDuration wins; approvers must be named by every policy that has a
    `waivers` block."""
    configured = [(p.name, p.spec.waivers) for p in policies if p.spec.waivers is not None]
    durations = [parse_duration(w.max_duration) for _, w in configured if w.max_duration]
    return EffectiveWaiverPolicy(
        max_duration=min(durations, default=DEFAULT_WAIVER_MAX_DURATION),
        approver_sets=tuple(
            RoleGrant(
                name,
                frozenset(u for a in w.approvers for u in a.users),
                frozenset(g for a in w.approvers for g in a.groups),
            )
            for name, w in configured
        ),
        sources=tuple(name for name, _ in configured),
    )


@dataclass(frozen=True)
class EffectivePolicy:
    sources: tuple[str, ...]
    minimum_serving_level: int
    enforcement: Enforcement
    on_demotion: OnDemotion
    governed: bool
    separation_of_duties: bool
    allow_level_skipping: bool
    rules: Mapping[int, LevelRule]
    default_alert_rules: tuple[MonitoringRule, ...]
    entry_max_level: int = DEFAULT_ENTRY_MAX_LEVEL
    dismiss_stale_approvals: bool = True
    role_grants: Mapping[str, tuple[RoleGrant, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Per role, each policy's binding; a role no policy binds is in no one's hands."""
    waivers: EffectiveWaiverPolicy = EffectiveWaiverPolicy()
    """Who may approve waivers, and for how long a waiver may run."""

    def rule_for(self, level: int) -> LevelRule:
        try:
            return self.rules[level]
        except KeyError:
            raise ValueError(f"no promotion leads to level {level}; rules cover 1-9") from None


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.match_labels.items()):
        return False
    for expression in selector.match_expressions:
        present = expression.key in labels
        value = labels.get(expression.key)
        match expression.operator:
            case SelectorOperator.IN:
                holds = present and value in expression.values
            case SelectorOperator.NOT_IN:
                # As in Kubernetes: a missing key is "not in" any set.
                holds = not present or value not in expression.values
            case SelectorOperator.EXISTS:
                holds = present
            case SelectorOperator.DOES_NOT_EXIST:
                holds = not present
        if not holds:
            return False
    return True


def _document(name: str, description: str) -> EvidenceRequirement:
    return EvidenceRequirement(name=name, kind=EvidenceKind.DOCUMENT, description=description)


def _check(name: str, description: str) -> EvidenceRequirement:
    return EvidenceRequirement(name=name, kind=EvidenceKind.CHECK, description=description)


_REQUIREMENTS = "research requirements with a V&V table and a risk figure per requirement"
_ETHICS = "the ethics checklist"


def _rule(
    level: int, evidence: Iterable[EvidenceRequirement], approvals: int, roles: Iterable[str] = ()
) -> LevelRule:
    role_set = frozenset(roles)
    return LevelRule(level, tuple(evidence), max(approvals, len(role_set)), role_set)


NOTIFY_FALLBACK = MonitoringRule(action=AlertAction.NOTIFY)

_DEFAULT_RULES = (
    _rule(
        1,
        [_document("research-plan", "hypotheses, research plan and data-readiness note")],
        1,
        ["research-lead"],
    ),
    _rule(2, [_document("requirements", _REQUIREMENTS)], 1),
    _rule(3, [_document("requirements", _REQUIREMENTS)], 1),
    _rule(
        4, [_document("requirements", _REQUIREMENTS), _check("unit-tests", "unit tests pass")], 1
    ),
    _rule(
        5,
        [
            _check("unit-tests", "unit tests pass"),
            _check("integration-tests", "integration tests pass"),
            _document("dataset-versions", "the datasets used, with their versions"),
        ],
        1,
    ),
    _rule(
        6,
        [
            _document("product-requirements", "the product requirements"),
            _document("ethics-checklist", _ETHICS),
        ],
        2,
        ["product-owner"],
    ),
    _rule(
        7,
        [
            _check(
                "integration-tests",
                "integration tests across infrastructure, data pipelines and security",
            )
        ],
        2,
        ["qa", "product-owner"],
    ),
    _rule(
        8,
        [
            _check("ci", "CI/CD is green"),
            _check("shadow-tests", "shadow tests against production traffic pass"),
            _check("shift-tests", "data and environment shift tests pass"),
            _document("ethics-checklist", "the completed ethics checklist"),
            _document("fallback-mode", "the fallback or bypass mode"),
        ],
        2,
    ),
    _rule(
        9,
        [
            _document("monitoring-plan", "monitoring with owners and a feedback channel"),
            _check("drift-checks", "drift checks are in place and pass"),
        ],
        2,
        ["sre"],
    ),
)

DEFAULT_POLICY = EffectivePolicy(
    sources=(),
    minimum_serving_level=6,
    enforcement=Enforcement.ENFORCE,
    on_demotion=OnDemotion.STOP,
    governed=False,
    separation_of_duties=True,
    allow_level_skipping=False,
    rules=MappingProxyType({rule.level: rule for rule in _DEFAULT_RULES}),
    default_alert_rules=(NOTIFY_FALLBACK,),
)

_ON_DEMOTION_STRICTNESS = (OnDemotion.KEEP, OnDemotion.STOP, OnDemotion.DELETE)


def matching_policies(
    policies: Iterable[NamedPolicy], namespace_labels: Mapping[str, str]
) -> list[NamedPolicy]:
    matching = [
        p for p in policies if selector_matches(p.spec.namespace_selector, namespace_labels)
    ]
    return sorted(matching, key=lambda p: p.name)


def _tighter(
    first: float | None, second: float | None, pick: Callable[[list[float]], float]
) -> float | None:
    values = [v for v in (first, second) if v is not None]
    return pick(values) if values else None


def union_evidence(
    groups: Iterable[Iterable[EvidenceRequirement]],
) -> tuple[EvidenceRequirement, ...]:
    """Union by name, keeping first-seen order; a repeated metric keeps the tighter bounds."""
    merged: dict[str, EvidenceRequirement] = {}
    for group in groups:
        for requirement in group:
            seen = merged.get(requirement.name)
            if seen is None:
                merged[requirement.name] = requirement.model_copy()
                continue
            merged[requirement.name] = seen.model_copy(
                update={
                    "minimum": _tighter(seen.minimum, requirement.minimum, max),
                    "maximum": _tighter(seen.maximum, requirement.maximum, min),
                    "description": seen.description or requirement.description,
                }
            )
    return tuple(merged.values())


def combine_rules(level: int, rules: Sequence[LevelRule]) -> LevelRule:
    """All of several rules at once, e.g. every level a skipping promotion passes."""
    return _rule(
        level,
        union_evidence(rule.evidence for rule in rules),
        max((rule.min_approvals for rule in rules), default=0),
        frozenset().union(*(rule.required_roles for rule in rules)),
    )


def _requirements_for(policy: NamedPolicy, level: int) -> LevelRequirements | None:
    # Validation rejects duplicate levels; should one slip through, the first one counts.
    return next((r for r in policy.spec.requirements if r.level == level), None)


def _merge_level(level: int, policies: Sequence[NamedPolicy]) -> LevelRule:
    default = DEFAULT_POLICY.rule_for(level)
    approvals: list[int] = []
    roles: list[frozenset[str]] = []
    evidence: list[list[EvidenceRequirement]] = []
    for policy in policies:
        requirements = _requirements_for(policy, level)
        if requirements is None:
            approvals.append(default.min_approvals)
            roles.append(default.required_roles)
            continue
        approvals.append(
            default.min_approvals
            if requirements.min_approvals is None
            else requirements.min_approvals
        )
        roles.append(frozenset(requirements.required_roles or default.required_roles))
        if requirements.evidence:
            evidence.append(requirements.evidence)
    return _rule(
        level,
        union_evidence(evidence) if evidence else default.evidence,
        max(approvals),
        frozenset().union(*roles),
    )


def _role_grants(policies: Sequence[NamedPolicy]) -> Mapping[str, tuple[RoleGrant, ...]]:
    grants: dict[str, list[RoleGrant]] = {}
    for policy in policies:
        for binding in policy.spec.reviewers:
            grants.setdefault(binding.role, []).append(
                RoleGrant(policy.name, frozenset(binding.users), frozenset(binding.groups))
            )
    return MappingProxyType({role: tuple(found) for role, found in grants.items()})


def merge_policies(policies: Sequence[NamedPolicy]) -> EffectivePolicy:
    if not policies:
        return DEFAULT_POLICY
    ordered = sorted(policies, key=lambda p: p.name)
    default = DEFAULT_POLICY
    servings = [p.spec.serving for p in ordered]
    minimum = max(
        default.minimum_serving_level if s.minimum_level is None else s.minimum_level
        for s in servings
    )
    enforcements = {s.enforcement or default.enforcement for s in servings}
    on_demotion = max(
        (s.on_demotion or default.on_demotion for s in servings),
        key=_ON_DEMOTION_STRICTNESS.index,
    )
    return EffectivePolicy(
        sources=tuple(p.name for p in ordered),
        minimum_serving_level=minimum,
        enforcement=Enforcement.ENFORCE
        if Enforcement.ENFORCE in enforcements
        else Enforcement.AUDIT,
        on_demotion=on_demotion,
        governed=any(default.governed if s.governed is None else s.governed for s in servings),
        separation_of_duties=any(p.spec.separation_of_duties for p in ordered),
        allow_level_skipping=all(p.spec.allow_level_skipping for p in ordered),
        rules=MappingProxyType({level: _merge_level(level, ordered) for level in PROMOTION_LEVELS}),
        default_alert_rules=(
            *(rule.model_copy() for p in ordered for rule in p.spec.alerts.default_actions),
            NOTIFY_FALLBACK,
        ),
        entry_max_level=min(
            DEFAULT_ENTRY_MAX_LEVEL if p.spec.entry.max_level is None else p.spec.entry.max_level
            for p in ordered
        ),
        dismiss_stale_approvals=any(p.spec.dismiss_stale_approvals for p in ordered),
        role_grants=_role_grants(ordered),
        waivers=waiver_policy(ordered),
    )


def effective_policy(
    policies: Iterable[NamedPolicy], namespace_labels: Mapping[str, str]
) -> EffectivePolicy:
    return merge_policies(matching_policies(policies, namespace_labels))
