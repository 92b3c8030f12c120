"""Waivers: time-bound, approved exceptions to a technology's requirements.

`waiver_applies` is the one decision whether a waiver counts at `now`; the reviews, the
serving gate, the webhooks and the CLI all ask it, so an expired waiver can never count in
one place and not in another (kyverno/kyverno#17473). It stops counting at `expiresAt`
exactly: at that instant and after, it applies to nothing.

`waive_requirements` and `waived_serving_minimum` say what the waivers that apply take
off a level's requirements and off the serving minimum, and which waiver was used for
what, so that every use can be recorded.

`waiver_errors` and `stamp_waiver_approvals` are the admission rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mltrl_operator.api.waiver import MLTRLWaiverSpec, MLTRLWaiverStatus, WaiverApproval
from mltrl_operator.domain import condition_types as ct
from mltrl_operator.domain.admission import JsonPatch, Requester
from mltrl_operator.domain.conditions import set_condition
from mltrl_operator.domain.durations import format_duration, parse_duration, parse_instant
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.policy import NamedPolicy
from mltrl_operator.domain.timefmt import rfc3339

DEFAULT_MAX_DURATION = timedelta(days=30)
FIXED_ONCE_APPROVED = ("technology", "waives", "expiresAt", "reason")


# --- the merged policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class ApproverSet:
    policy: str
    users: frozenset[str]
    groups: frozenset[str]

    def names(self, username: str, groups: Iterable[str]) -> bool:
        return username in self.users or not self.groups.isdisjoint(groups)


@dataclass(frozen=True)
class EffectiveWaiverPolicy:
    max_duration: timedelta = DEFAULT_MAX_DURATION
    approver_sets: tuple[ApproverSet, ...] = ()
    """One per matching policy with a `waivers` block: an approver must be named by each.
    Policies without the block have no say; with none at all, nobody may approve."""
    sources: tuple[str, ...] = ()

    def may_approve(self, username: str, groups: Iterable[str]) -> bool:
        groups = frozenset(groups)
        return bool(self.approver_sets) and all(
            s.names(username, groups) for s in self.approver_sets
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
        max_duration=min(durations, default=DEFAULT_MAX_DURATION),
        approver_sets=tuple(
            ApproverSet(
                name,
                frozenset(u for a in w.approvers for u in a.users),
                frozenset(g for a in w.approvers for g in a.groups),
            )
            for name, w in configured
        ),
        sources=tuple(name for name, _ in configured),
    )


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


# --- admission --------------------------------------------------------------------------------


def _approvals(spec: Mapping[str, Any] | None) -> list[Any]:
    value = (spec or {}).get("approvals")
    return list(value) if isinstance(value, list) else []


def _approver(approval: Any) -> str:
    if isinstance(approval, Mapping) and isinstance(approval.get("approver"), str):
        return str(approval["approver"])
    return ""


def stamp_waiver_approvals(
    old_spec: Mapping[str, Any] | None,
    new_spec: Mapping[str, Any] | None,
    requester: Requester,
    *,
    now: str,
) -> JsonPatch:
    """JSON Patch operations binding every new or changed approval to the requester: an
    empty approver becomes the requester, and the requester's own new approvals get their
    groups and the time now. An approval in someone else's name is left as typed, for
    `waiver_errors` to refuse."""
    old = {_approver(a): a for a in _approvals(old_spec) if _approver(a)}
    patch: JsonPatch = []
    for index, approval in enumerate(_approvals(new_spec)):
        if not isinstance(approval, Mapping):
            continue
        approver = _approver(approval)
        if approver and old.get(approver) == approval:
            continue  # untouched
        if approver and approver != requester.username:
            continue
        stamped = dict(approval)
        stamped.update({"approver": requester.username, "groups": sorted(requester.groups),
                        "time": now})
        patch.append({"op": "replace", "path": f"/spec/approvals/{index}", "value": stamped})
    return patch


def waiver_errors(
    spec: MLTRLWaiverSpec,
    raw_spec: Mapping[str, Any],
    old_raw_spec: Mapping[str, Any] | None,
    *,
    requester: Requester,
    technology_exists: bool,
    policy: EffectiveWaiverPolicy,
    created_at: datetime,
    now: datetime,
    trusted: bool = False,
) -> list[FieldError]:
    """Why a waiver may not be stored as asked, each naming the field and the rule.
    `created_at` is now for a new waiver: its length is measured from its creation."""
    errors: list[FieldError] = []
    if not technology_exists and old_raw_spec is None:
        errors.append(FieldError("spec.technology", f"Not found: no MLTechnology "
                                 f"{spec.technology} in this namespace"))
    if not raw_spec.get("expiresAt"):
        errors.append(FieldError("spec.expiresAt", "Required: a waiver must expire"))
    else:
        try:
            expires_at = parse_instant(spec.expires_at)
        except ValueError as error:
            errors.append(FieldError("spec.expiresAt", f"Invalid: {error}"))
        else:
            if expires_at - created_at > policy.max_duration:
                errors.append(FieldError(
                    "spec.expiresAt",
                    f"Invalid: {rfc3339(expires_at)} is "
                    f"{format_duration(expires_at - created_at)} after the waiver's creation, "
                    f"more than waivers.maxDuration {format_duration(policy.max_duration)} "
                    f"({policy.label() if policy.sources else 'the built-in default'})",
                ))
            if old_raw_spec is None and expires_at <= now:
                errors.append(FieldError("spec.expiresAt", f"Invalid: {rfc3339(expires_at)} "
                                         "has passed"))
    waived = spec.waives
    if not (waived.evidence or waived.roles or waived.min_approvals is not None
            or waived.serving_minimum is not None):
        errors.append(FieldError("spec.waives", "Required: name what is waived (evidence, "
                                 "roles, minApprovals or servingMinimum)"))
    if (waived.evidence or waived.roles or waived.min_approvals is not None) and (
            waived.level is None):
        errors.append(FieldError("spec.waives.level", "Required: evidence, roles and "
                                 "minApprovals are waived for one level"))
    old = {_approver(a): a for a in _approvals(old_raw_spec) if _approver(a)}
    if old and old_raw_spec is not None:
        for key in FIXED_ONCE_APPROVED:
            if raw_spec.get(key) != old_raw_spec.get(key):
                errors.append(FieldError(f"spec.{key}", "Forbidden: fixed once the waiver is "
                                         "approved; remove the approvals first, or create "
                                         "another waiver"))
    for index, approval in enumerate(spec.approvals):
        raw = _approvals(raw_spec)[index]
        if approval.approver and old.get(approval.approver) == raw:
            continue  # untouched since it was stored
        errors.extend(_approval_errors(index, approval, requester, policy, trusted))
    return errors


def _approval_errors(
    index: int,
    approval: WaiverApproval,
    requester: Requester,
    policy: EffectiveWaiverPolicy,
    trusted: bool,
) -> list[FieldError]:
    path = f"spec.approvals[{index}].approver"
    if approval.approver != requester.username and not trusted:
        return [FieldError(path, f"Forbidden: {requester.username} may not approve in "
                           f"{approval.approver or 'nobody'}'s name")]
    own = approval.approver == requester.username
    if own and not set(approval.groups) <= requester.groups:
        return [FieldError(f"spec.approvals[{index}].groups", "Forbidden: an approval carries "
                           "only its approver's own groups (the webhook stamps them)")]
    if not policy.may_approve(approval.approver, approval.groups):
        return [FieldError(path, f"Forbidden: {approval.approver} is not named in "
                           f"waivers.approvers ({policy.label()})")]
    return []
