"""Evaluating a LevelReview against its technology and the effective policy.

The evaluation is a pure function of the review, a few facts about the technology and the
policy, so the reconciler can re-evaluate on every change and always reach the same
verdict. Rules, in order (the first that applies decides the phase):

1. the review breaks a rule of its own (validate_review_spec) -> Invalid;
2. the technology does not exist -> Pending (it may be created later);
3. the technology's history names this review -> Applied;
4. fromLevel is not the current level -> Superseded when the technology went through
   fromLevel and has moved on, otherwise Invalid;
5. a promotion that skips levels without the policy's leave, or goes above the target
   level; a switchback below the entry level or to a level never gone through -> Invalid;
6. any reviewer rejects -> Rejected (anyone may stop a review, the owner included);
7. every requirement met -> Approved, otherwise Pending with each unmet requirement in
   plain words.

A promotion must meet policy.rule_for(toLevel); a promotion that skips levels must meet
the rules of every level it passes. A switchback is a safety action: it needs a single
approval from anyone, and the owner's approval counts. An entry review (type entry) goes
from the level the technology was granted to its recorded entryLevel and must meet the
rules of every level in between, skipping or not.

Which approvals count (stamped, on current content, by bound roles, not by an owner since
the current level was reached) is domain.approvals.judge_approvals; approvals that do not
count are listed with the reason in `dismissed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mltrl_operator.api.policy import EvidenceRequirement
from mltrl_operator.api.review import (
    Approval,
    DismissedApproval,
    Evidence,
    EvidenceKind,
    LevelReviewSpec,
    ReviewPhase,
    ReviewType,
)
from mltrl_operator.api.technology import MLTechnologySpec, MLTechnologyStatus, ModelSpec
from mltrl_operator.api.waiver import WaiverUse
from mltrl_operator.domain.approvals import Judgement, judge_approvals, role_unmet
from mltrl_operator.domain.entry import entry_floor, entry_review_problem, requested_entry_level
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.levels import describe_level
from mltrl_operator.domain.owners import owners_since_level
from mltrl_operator.domain.policy import EffectivePolicy, LevelRule, combine_rules
from mltrl_operator.domain.requirements import (
    approvals_needed,
    missing_evidence,
    number,
)
from mltrl_operator.domain.review_types import ModelRef, keeps_level, review_type_errors
from mltrl_operator.domain.validation import validate_review_spec
from mltrl_operator.domain.waivers import (
    WaiverFacts,
    WaiverInForce,
    waive_rule,
    waivers_in_force,
)

SWITCHBACK_APPROVALS = 1


@dataclass(frozen=True)
class TechnologyFacts:
    name: str
    owner: str
    level: int
    entry_level: int
    target_level: int
    visited_levels: frozenset[int]
    applied_reviews: frozenset[str]
    owners: frozenset[str] = frozenset()
    """Everyone who owned the technology since its current level was reached (spec.owner
    included); empty means just `owner`."""
    model: ModelSpec | None = None
    """spec.model now: approvals approve it along with the review."""
    requested_entry_level: int | None = None
    """status.entry.level (or spec.entryLevel before it is recorded)."""
    entry_approved: bool = True
    pending_model: ModelRef | None = None
    """status.pendingModel: the one model a change review may approve."""
    waivers: tuple[WaiverFacts, ...] = ()
    """The technology's MLTRLWaivers as stored (issue 15); which count, at `now`, is
    decided by evaluate_review through domain.waivers.waivers_in_force."""
    now: datetime | None = None
    """The instant waivers are judged at; without it no waiver counts."""


def technology_facts(
    name: str, spec: MLTechnologySpec, status: MLTechnologyStatus | None,
    *, waivers: Sequence[WaiverFacts] = (), now: datetime | None = None,
) -> TechnologyFacts:
    history = status.history if status else []
    floor = entry_floor(spec, status)
    level = floor if status is None or status.level is None else status.level
    return TechnologyFacts(
        name=name,
        owner=spec.owner,
        level=level,
        entry_level=floor,
        target_level=spec.target_level,
        visited_levels=frozenset({floor, level, *(t.to for t in history)}),
        applied_reviews=frozenset(t.review for t in history if t.review),
        owners=owners_since_level(spec, status),
        model=spec.model,
        requested_entry_level=requested_entry_level(spec, status),
        entry_approved=status.entry.approved if status and status.entry else True,
        pending_model=ModelRef(status.pending_model.version, status.pending_model.storage_uri)
        if status and status.pending_model else None,
        waivers=tuple(waivers),
        now=now,
    )


@dataclass(frozen=True)
class ReviewEvaluation:
    phase: ReviewPhase
    unmet: tuple[str, ...]
    approved_by: tuple[str, ...]
    message: str
    errors: tuple[FieldError, ...]
    is_promotion: bool
    dismissed: tuple[DismissedApproval, ...] = ()
    waivers: tuple[WaiverUse, ...] = ()
    """Waivers that took requirements off this review, and what each took off."""


def _evaluation(
    spec: LevelReviewSpec,
    phase: ReviewPhase,
    message: str,
    *,
    unmet: Sequence[str] = (),
    approved_by: Sequence[str] = (),
    errors: Sequence[FieldError] = (),
    dismissed: Sequence[DismissedApproval] = (),
    waivers: Sequence[WaiverUse] = (),
) -> ReviewEvaluation:
    return ReviewEvaluation(
        phase=phase,
        unmet=tuple(unmet),
        approved_by=tuple(approved_by),
        message=message,
        errors=tuple(errors),
        is_promotion=spec.to_level > spec.from_level,
        dismissed=tuple(dismissed),
        waivers=tuple(waivers),
    )


def _invalid(spec: LevelReviewSpec, errors: Sequence[FieldError]) -> ReviewEvaluation:
    return _evaluation(spec, ReviewPhase.INVALID, "; ".join(str(e) for e in errors), errors=errors)


def judge(
    spec: LevelReviewSpec, technology: TechnologyFacts, policy: EffectivePolicy
) -> Judgement:
    return judge_approvals(
        spec,
        owners=technology.owners or frozenset({technology.owner}),
        model=technology.model,
        policy=policy,
    )


def _level_problem(
    spec: LevelReviewSpec, technology: TechnologyFacts, policy: EffectivePolicy
) -> FieldError | None:
    start, end = spec.from_level, spec.to_level
    requested = technology.requested_entry_level
    entry = entry_review_problem(
        spec, requested if requested is not None else end, technology.entry_approved
    )
    if entry is not None:
        return entry
    if end == start:
        return None  # a change or re-certification: review_type_errors judged it
    if end > start:
        skipping_allowed = policy.allow_level_skipping or spec.type is ReviewType.ENTRY
        if end - start > 1 and not skipping_allowed:
            return FieldError(
                "spec.toLevel",
                f"promotion may go up one level at a time ({start} -> {start + 1}), not "
                f"{start} -> {end}; the policy does not allow level skipping",
            )
        if end > technology.target_level:
            return FieldError(
                "spec.toLevel",
                f"may not promote above the technology's target level {technology.target_level}",
            )
        return None
    if end < technology.entry_level:
        return FieldError(
            "spec.toLevel",
            f"may not switch back below the technology's entry level {technology.entry_level}",
        )
    if end not in technology.visited_levels:
        return FieldError(
            "spec.toLevel",
            f"may not switch back to {describe_level(end)}: the technology never went through it",
        )
    return None


def _rule(spec: LevelReviewSpec, policy: EffectivePolicy) -> LevelRule:
    return _waived_rule(spec, policy, ())[0]


def _waived_rule(
    spec: LevelReviewSpec, policy: EffectivePolicy, waivers: Sequence[WaiverInForce]
) -> tuple[LevelRule, list[WaiverUse]]:
    """The rule of every level the review passes, each less what the waivers in force
    waive at that level, and the waivers that took something off. A review that keeps the
    level (a change or re-certification) meets that level's own rule."""
    levels: Sequence[int] = (
        [spec.to_level] if keeps_level(spec) or spec.to_level == spec.from_level
        else range(spec.from_level + 1, spec.to_level + 1)
    )
    used: dict[str, list[str]] = {}
    rules = []
    for level in levels:
        rule, took = waive_rule(policy.rule_for(level), level, waivers)
        rules.append(rule)
        for name, items in took.items():
            used.setdefault(name, []).extend(items)
    uses = [w.use(used[w.name]) for w in waivers if w.name in used]
    return combine_rules(spec.to_level, rules), uses


def promotion_rule(spec: LevelReviewSpec, policy: EffectivePolicy) -> LevelRule:
    """What a promotion review must meet: the rule evaluate_review checks it against
    (kubectl mltrl builds review skeletons from it)."""
    return _rule(spec, policy)


def _evidence_unmet(required: EvidenceRequirement, presented: Evidence | None) -> str | None:
    # A document without a uri, a check without a result and a metric without a value never
    # get here: validate_review_spec makes such a review Invalid first.
    name = f"'{required.name}'"
    if presented is None:
        return missing_evidence(required)
    if presented.kind is not required.kind:
        return f"evidence {name} is a {presented.kind}; the policy requires a {required.kind}"
    if required.kind is EvidenceKind.CHECK and not presented.passed:
        return f"check {name} has not passed"
    if required.kind is EvidenceKind.METRIC and presented.value is not None:
        value = presented.value
        if required.minimum is not None and value < required.minimum:
            return f"metric {name} is {number(value)}, below the minimum {number(required.minimum)}"
        if required.maximum is not None and value > required.maximum:
            return f"metric {name} is {number(value)}, above the maximum {number(required.maximum)}"
    return None


def _unmet(
    spec: LevelReviewSpec,
    technology: TechnologyFacts,
    policy: EffectivePolicy,
    judgement: Judgement,
) -> tuple[list[str], int, list[WaiverUse]]:
    unmet: list[str] = []
    counting = _distinct(judgement.counting)
    if spec.to_level < spec.from_level:
        needed = SWITCHBACK_APPROVALS
        if len(counting) < needed:
            unmet.append(approvals_needed(needed, len(counting)))
        return unmet, needed, []
    rule, waivers = _waived_rule(spec, policy, _in_force(technology, policy))
    presented = {e.name: e for e in spec.evidence}
    for required in rule.evidence:
        problem = _evidence_unmet(required, presented.get(required.name))
        if problem:
            unmet.append(problem)
    for owner in judgement.owner_approvals:
        verb = "owns" if owner == technology.owner else "owned"
        unmet.append(
            f"{owner} {verb} the technology and may not approve its review "
            "(separation of duties)"
        )
    if len(counting) < rule.min_approvals:
        unmet.append(approvals_needed(rule.min_approvals, len(counting)))
    unmet.extend(
        role_unmet(policy, role, judgement.unheld_claims)
        for role in sorted(rule.required_roles - judgement.roles)
    )
    return unmet, rule.min_approvals, waivers


def _in_force(technology: TechnologyFacts, policy: EffectivePolicy) -> tuple[WaiverInForce, ...]:
    if technology.now is None or not technology.waivers:
        return ()
    return waivers_in_force(
        technology.waivers, technology=technology.name, policy=policy.waivers,
        owners=technology.owners or frozenset({technology.owner}), now=technology.now,
    )


def _waived_text(waivers: Sequence[WaiverUse]) -> str:
    return "; ".join(
        f"waiver {w.name} took off {', '.join(w.waived)} until {w.expires_at}" for w in waivers
    )


def _distinct(approvals: Sequence[Approval]) -> list[str]:
    return sorted({a.reviewer for a in approvals})


def evaluate_review(
    name: str,
    spec: LevelReviewSpec,
    technology: TechnologyFacts | None,
    policy: EffectivePolicy,
) -> ReviewEvaluation:
    errors = validate_review_spec(spec)
    if errors:
        return _invalid(spec, errors)
    if technology is None:
        missing = f"technology '{spec.technology}' does not exist in this namespace"
        return _evaluation(spec, ReviewPhase.PENDING, f"waiting: {missing}", unmet=[missing])
    judgement = judge(spec, technology, policy)
    dismissed = judgement.dismissed
    approved_by = _distinct(judgement.counting)
    if name in technology.applied_reviews:
        return _evaluation(
            spec,
            ReviewPhase.APPLIED,
            _applied_message(spec),
            approved_by=approved_by,
            dismissed=dismissed,
        )
    if spec.from_level != technology.level:
        if spec.from_level in technology.visited_levels:
            return _evaluation(
                spec,
                ReviewPhase.SUPERSEDED,
                f"the technology moved from level {spec.from_level} to {technology.level} "
                "since this review was opened",
            )
        return _invalid(
            spec,
            [
                FieldError(
                    "spec.fromLevel",
                    f"must equal the technology's current level {technology.level}",
                )
            ],
        )
    kept = review_type_errors(spec, level=technology.level, pending=technology.pending_model)
    if kept:  # a change or re-certification review against this technology
        return _invalid(spec, kept)
    problem = _level_problem(spec, technology, policy)
    if problem:
        return _invalid(spec, [problem])
    rejections = judgement.rejections
    if rejections:
        return _evaluation(
            spec,
            ReviewPhase.REJECTED,
            "; ".join(_rejection(a) for a in rejections),
            approved_by=approved_by,
            dismissed=dismissed,
        )
    unmet, needed, waivers = _unmet(spec, technology, policy, judgement)
    waived = f" ({_waived_text(waivers)})" if waivers else ""
    if unmet:
        count = len(unmet)
        return _evaluation(
            spec,
            ReviewPhase.PENDING,
            f"{count} requirement{'' if count == 1 else 's'} unmet{waived}",
            unmet=unmet,
            approved_by=approved_by,
            dismissed=dismissed,
            waivers=waivers,
        )
    approvals = f"{len(approved_by)} of {needed} approval{'' if needed == 1 else 's'}"
    outcome = (
        "all evidence present"
        if spec.to_level >= spec.from_level
        else f"switchback to {describe_level(spec.to_level)}"
    )
    return _evaluation(
        spec,
        ReviewPhase.APPROVED,
        f"{approvals}, {outcome}{waived}",
        approved_by=approved_by,
        dismissed=dismissed,
        waivers=waivers,
    )


def _applied_message(spec: LevelReviewSpec) -> str:
    if spec.type is ReviewType.CHANGE and spec.model is not None:
        return f"applied: model {spec.model.version} approved at level {spec.to_level}"
    if spec.type is ReviewType.RECERTIFY:
        return f"applied: level {spec.to_level} re-certified"
    return f"applied: moved the technology from level {spec.from_level} to {spec.to_level}"


def _rejection(approval: Approval) -> str:
    who = f"rejected by {approval.reviewer} ({approval.role})"
    return f"{who}: {approval.comment}" if approval.comment else who
