"""Waivers: time-bound, approved exceptions to a technology's requirements.

`waiver_applies` is the one decision whether a waiver counts at `now`; the reviews, the
serving gate, the webhooks and the CLI all ask it, so an expired waiver can never count in
one place and not in another (kyverno/kyverno#17473). It stops counting at `expiresAt`
exactly: at that instant and after, it applies to nothing.

`waive_requirements` and `waived_serving_minimum` say what the waivers that apply take
off a level's requirements and off the serving minimum, and which waiver was used for
what, so that every use can be recorded.

The admission rules (`waiver_errors`, `stamp_waiver_approvals`) are in
domain/waiver_admission.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mltrl_operator.api.waiver import MLTRLWaiverSpec, MLTRLWaiverStatus, WaiverUse
from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.conditions import set_condition
from mltrl_operator.domain.durations import format_duration, parse_instant
from mltrl_operator.domain.policy import (
    DEFAULT_WAIVER_MAX_DURATION,
    EffectiveWaiverPolicy,
    LevelRule,
    waiver_policy,
)
from mltrl_operator.domain.timefmt import rfc3339

DEFAULT_MAX_DURATION = DEFAULT_WAIVER_MAX_DURATION


# The merged policy (who may approve, the longest a waiver may run) is part of the
# effective policy: domain.policy.EffectiveWaiverPolicy, `EffectivePolicy.waivers`.
__all__ = ["EffectiveWaiverPolicy", "waiver_policy"]


# --- does it apply ----------------------------------------------------------------------------


# The waiver's `Active` condition and its reasons, documented in condition_types.py.
ACTIVE = ct.ACTIVE
REASON_APPLIES = ct.WAIVER_APPLIES
REASON_OTHER_TECHNOLOGY = ct.OTHER_TECHNOLOGY
REASON_TECHNOLOGY_NOT_FOUND = ct.TECHNOLOGY_NOT_FOUND
REASON_INVALID_EXPIRY = ct.INVALID_EXPIRY
REASON_EXPIRED = ct.EXPIRED
REASON_TOO_LONG = ct.LONGER_THAN_MAX_DURATION
REASON_NOT_APPROVED = ct.NOT_APPROVED


@dataclass(frozen=True)
class WaiverDecision:
    applies: bool
    reason: str
    expires_at: datetime | None = None
    approved_by: tuple[str, ...] = ()
    wake_at: datetime | None = None
    """When this decision changes by itself (the expiry of a waiver that applies)."""
    code: str = REASON_APPLIES
    """The `Active` condition's reason."""


def counting_approvers(
    spec: MLTRLWaiverSpec,
    policy: EffectiveWaiverPolicy,
    *,
    owners: frozenset[str],
    now: datetime,
    expires_at: datetime,
) -> tuple[str, ...]:
    """Approvers whose stamped approval counts: named by the policy, not an owner of the
    technology, stamped (time set by the webhook) before now and before expiry."""
    counted = []
    for approval in spec.approvals:
        if not approval.approver or approval.approver in owners or approval.time is None:
            continue
        try:
            at = parse_instant(approval.time)
        except ValueError:
            continue
        if at > now or at >= expires_at:
            continue
        if policy.may_approve(approval.approver, approval.groups):
            counted.append(approval.approver)
    return tuple(dict.fromkeys(counted))


def waiver_applies(
    spec: MLTRLWaiverSpec,
    *,
    technology: str,
    created_at: datetime,
    policy: EffectiveWaiverPolicy,
    owners: frozenset[str] = frozenset(),
    now: datetime,
) -> WaiverDecision:
    """Whether the waiver counts for `technology` at `now`."""
    if spec.technology != technology:
        return WaiverDecision(False, f"it is for {spec.technology}, not {technology}",
                              code=REASON_OTHER_TECHNOLOGY)
    try:
        expires_at = parse_instant(spec.expires_at)
    except ValueError as error:
        return WaiverDecision(False, f"spec.expiresAt: {error}", code=REASON_INVALID_EXPIRY)
    if now >= expires_at:
        return WaiverDecision(False, f"expired at {rfc3339(expires_at)}", expires_at,
                              code=REASON_EXPIRED)
    if expires_at - created_at > policy.max_duration:
        return WaiverDecision(
            False,
            f"runs {format_duration(expires_at - created_at)} from its creation, longer than "
            f"waivers.maxDuration {format_duration(policy.max_duration)} ({policy.label()})",
            expires_at, code=REASON_TOO_LONG,
        )
    approvers = counting_approvers(spec, policy, owners=owners, now=now, expires_at=expires_at)
    if not approvers:
        who = (f"anyone {policy.label()} names in waivers.approvers" if policy.sources
               else "anyone: no matching policy names waiver approvers")
        return WaiverDecision(
            False,
            f"not approved by {who}"
            + (" (owners of the technology may not approve)" if owners else ""),
            expires_at, code=REASON_NOT_APPROVED,
        )
    return WaiverDecision(
        True,
        f"approved by {', '.join(approvers)}; counts until {rfc3339(expires_at)}",
        expires_at, approvers, wake_at=expires_at,
    )


@dataclass(frozen=True)
class WaiverFacts:
    """A stored waiver as the decision needs it."""

    name: str
    spec: MLTRLWaiverSpec
    created_at: datetime


def waiver_facts(body: Mapping[str, Any]) -> WaiverFacts | None:
    """A waiver object as stored; None when it cannot be read (it then counts for nothing,
    and its own status says why)."""
    metadata = body.get("metadata") or {}
    try:
        spec = MLTRLWaiverSpec.model_validate(body.get("spec") or {})
        created_at = parse_instant(str(metadata.get("creationTimestamp")))
    except ValueError:  # pydantic's ValidationError is a ValueError
        return None
    return WaiverFacts(str(metadata.get("name") or ""), spec, created_at)


@dataclass(frozen=True)
class WaiverInForce:
    """A waiver that applies now (`waiver_applies` said so)."""

    name: str
    spec: MLTRLWaiverSpec
    approved_by: tuple[str, ...]
    expires_at: datetime

    def use(self, waived: Sequence[str]) -> WaiverUse:
        return WaiverUse(name=self.name, waived=list(waived),
                         approved_by=list(self.approved_by),
                         expires_at=rfc3339(self.expires_at))


def waivers_in_force(
    waivers: Iterable[WaiverFacts],
    *,
    technology: str,
    policy: EffectiveWaiverPolicy,
    owners: frozenset[str],
    now: datetime,
) -> tuple[WaiverInForce, ...]:
    """The technology's waivers that count at `now`, by name: what reviews, the serving
    gate, the webhooks and the CLI take off the requirements. Each goes through
    `waiver_applies`, so none of them can count a waiver the others would not."""
    found = []
    for facts in sorted(waivers, key=lambda w: w.name):
        decision = waiver_applies(facts.spec, technology=technology, created_at=facts.created_at,
                                  policy=policy, owners=owners, now=now)
        if decision.applies and decision.expires_at is not None:
            found.append(WaiverInForce(facts.name, facts.spec, decision.approved_by,
                                       decision.expires_at))
    return tuple(found)


def waiver_status(
    old: MLTRLWaiverStatus, decision: WaiverDecision, *, generation: int | None, now: datetime
) -> MLTRLWaiverStatus:
    """The status the operator writes: `active`, the message, and the `Active` condition
    (its lastTransitionTime moves only when the answer does)."""
    conditions, _ = set_condition(
        old.conditions, type=ACTIVE, status=decision.applies, reason=decision.code,
        message=decision.reason, generation=generation, now=now,
    )
    return MLTRLWaiverStatus(
        active=decision.applies, message=decision.reason, observed_generation=generation,
        conditions=conditions,
    )


# --- what the waivers that apply take off ------------------------------------------------------


@dataclass(frozen=True)
class WaivedRequirements:
    evidence: tuple[str, ...]
    """Evidence names still required."""
    min_approvals: int
    required_roles: frozenset[str]
    used: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Waiver name -> what it waived here (for the record: every use is recorded)."""


def waive_requirements(
    *,
    level: int,
    evidence: Iterable[str],
    min_approvals: int,
    required_roles: Iterable[str],
    waivers: Sequence[tuple[str, MLTRLWaiverSpec]],
) -> WaivedRequirements:
    """A level's requirements less what the given waivers (those that apply: ask
    `waiver_applies` first) waive at that level."""
    remaining_evidence = list(dict.fromkeys(evidence))
    roles = set(required_roles)
    approvals = min_approvals
    used: dict[str, list[str]] = {}
    for name, spec in waivers:
        waived = spec.waives
        if waived.level != level:
            continue
        for item in waived.evidence:
            if item in remaining_evidence:
                remaining_evidence.remove(item)
                used.setdefault(name, []).append(f"evidence {item}")
        for role in waived.roles:
            if role in roles:
                roles.discard(role)
                used.setdefault(name, []).append(f"role {role}")
        if waived.min_approvals is not None and waived.min_approvals < approvals:
            used.setdefault(name, []).append(
                f"approvals {approvals} -> {waived.min_approvals}"
            )
            approvals = waived.min_approvals
    return WaivedRequirements(
        tuple(remaining_evidence), approvals, frozenset(roles),
        {name: tuple(items) for name, items in used.items()},
    )


def waive_rule(
    rule: LevelRule, level: int, waivers: Sequence[WaiverInForce]
) -> tuple[LevelRule, dict[str, tuple[str, ...]]]:
    """One level's review rule less what the waivers in force waive at that level, and
    which waiver took off what."""
    if not waivers:
        return rule, {}
    waived = waive_requirements(
        level=level, evidence=[e.name for e in rule.evidence], min_approvals=rule.min_approvals,
        required_roles=rule.required_roles, waivers=[(w.name, w.spec) for w in waivers],
    )
    if not waived.used:
        return rule, {}
    kept = frozenset(waived.evidence)
    return LevelRule(
        level=rule.level,
        evidence=tuple(e for e in rule.evidence if e.name in kept),
        min_approvals=waived.min_approvals,
        required_roles=waived.required_roles,
    ), dict(waived.used)


def waived_serving_minimum(
    minimum: int, waivers: Sequence[tuple[str, MLTRLWaiverSpec]]
) -> tuple[int, str | None]:
    """The serving minimum less what the given waivers lower it to, and which waiver did
    (the one granting the lowest level; the first such on a tie)."""
    best: tuple[int, str | None] = (minimum, None)
    for name, spec in waivers:
        lowered = spec.waives.serving_minimum
        if lowered is not None and lowered < best[0]:
            best = (lowered, name)
    return best
