"""Admission rules of MLTRLWaiver: approvals stamped with the requester (as review
approvals are), and everything a waiver may not be stored as (length, expiry, technology,
approvers), each naming the field and the rule. Whether a stored waiver counts is
domain.waivers.waiver_applies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mltrl_operator.api.waiver import MLTRLWaiverSpec, WaiverApproval
from mltrl_operator.domain.admission import JsonPatch, Requester, approvals_as_sent
from mltrl_operator.domain.durations import format_duration, parse_instant
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.policy import EffectiveWaiverPolicy
from mltrl_operator.domain.timefmt import rfc3339

FIXED_ONCE_APPROVED = ("technology", "waives", "expiresAt", "reason")


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
    old = {_approver(a): a for a in approvals_as_sent(old_spec) if _approver(a)}
    patch: JsonPatch = []
    for index, approval in enumerate(approvals_as_sent(new_spec)):
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
    old = {_approver(a): a for a in approvals_as_sent(old_raw_spec) if _approver(a)}
    if old and old_raw_spec is not None:
        for key in FIXED_ONCE_APPROVED:
            if raw_spec.get(key) != old_raw_spec.get(key):
                errors.append(FieldError(f"spec.{key}", "Forbidden: fixed once the waiver is "
                                         "approved; remove the approvals first, or create "
                                         "another waiver"))
    for index, approval in enumerate(spec.approvals):
        raw = approvals_as_sent(raw_spec)[index]
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
