"""Which approvals count: stamped by the admission webhook, given on the content the review
holds now, by someone the policy binds to the role and who does not own the technology.

One module decides it for the webhook (which stamps and refuses) and for the reconciler
(which counts), so the two cannot drift.

- The stamp (`approvedBy`) is written by the mutating webhook from the request's
  authenticated user: username, groups, time, and a digest of the content approved. An
  approval without a stamp (written while no webhook was called) counts for nothing.
- The content is the review's technology, fromLevel, toLevel and type, each piece of
  evidence, and the technology's spec.model: each part has its own sha256 digest of
  canonical JSON, so a dismissal can name what changed.
- A role is held when every policy that binds the role names the stamped user or one of
  the stamped groups; a role bound by no policy is held by no one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mltrl_operator.api.review import (
    Approval,
    ApprovalStamp,
    ContentDigest,
    Decision,
    DismissedApproval,
    LevelReviewSpec,
    ReviewType,
)
from mltrl_operator.api.technology import ModelSpec
from mltrl_operator.domain.policy import EffectivePolicy

REVIEW_PART = "review"
MODEL_PART = "model"
EVIDENCE_PREFIX = "evidence/"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def review_type(spec: LevelReviewSpec) -> ReviewType:
    """The type written, or the one the levels imply: promotion up, switchback down."""
    if spec.type is not None:
        return spec.type
    return ReviewType.PROMOTION if spec.to_level > spec.from_level else ReviewType.SWITCHBACK


def review_content(spec: LevelReviewSpec, model: ModelSpec | None) -> ContentDigest:
    """What an approval of this review approves, as it stands now."""
    parts = {
        REVIEW_PART: sha256(
            {
                "technology": spec.technology,
                "fromLevel": spec.from_level,
                "toLevel": spec.to_level,
                "type": review_type(spec).value,
            }
        ),
        MODEL_PART: sha256(model.to_wire() if model else None),
    }
    for evidence in spec.evidence:
        parts[EVIDENCE_PREFIX + evidence.name] = sha256(evidence.to_wire())
    return ContentDigest(digest=sha256(parts), parts=parts)


def make_stamp(username: str, groups: Iterable[str], now: str, content: ContentDigest) -> Any:
    """The wire form of the stamp the mutating webhook writes on an approval."""
    return ApprovalStamp(
        username=username, groups=sorted(set(groups)), time=now, content=content
    ).to_wire()


def what_changed(approved: ContentDigest, current: ContentDigest) -> list[str]:
    """Each part that differs, in words: `evidence ci changed`, `the model changed`."""
    changes: list[str] = []
    if approved.parts.get(REVIEW_PART) != current.parts.get(REVIEW_PART):
        changes.append("the review's technology, levels or type changed")
    if approved.parts.get(MODEL_PART) != current.parts.get(MODEL_PART):
        changes.append("the technology's spec.model changed")
    names = sorted(
        {k for k in (*approved.parts, *current.parts) if k.startswith(EVIDENCE_PREFIX)}
    )
    for key in names:
        name = key[len(EVIDENCE_PREFIX):]
        before, now = approved.parts.get(key), current.parts.get(key)
        if before == now:
            continue
        done = "added" if before is None else "removed" if now is None else "changed"
        changes.append(f"evidence {name} {done}")
    if not changes and approved.digest != current.digest:
        changes.append("the approved content changed")
    return changes


def policy_names(policy: EffectivePolicy) -> str:
    if not policy.sources:
        return "the built-in default policy"
    return ("policy " if len(policy.sources) == 1 else "policies ") + ", ".join(policy.sources)


def role_bound(policy: EffectivePolicy, role: str) -> bool:
    return bool(policy.role_grants.get(role))


def holds_role(policy: EffectivePolicy, role: str, username: str, groups: Iterable[str]) -> bool:
    """Every policy that binds the role grants it; no binding, no holder."""
    grants = policy.role_grants.get(role)
    groups = frozenset(groups)
    return bool(grants) and all(grant.grants(username, groups) for grant in grants or ())


@dataclass(frozen=True)
class Judgement:
    counting: tuple[Approval, ...]
    """Approvals that count toward minApprovals."""
    roles: frozenset[str]
    """Roles held, at approval time, by the counting approvals' stamped users."""
    rejections: tuple[Approval, ...]
    """Rejections that count (stamped)."""
    dismissed: tuple[DismissedApproval, ...]
    unheld_claims: tuple[tuple[str, str], ...]
    """(role, reviewer) for counting approvals given in a role their approver does not hold."""
    owner_approvals: tuple[str, ...]
    """Owners (since the current level was reached) whose approval was dismissed."""


def _dismissed(approval: Approval, reason: str) -> DismissedApproval:
    return DismissedApproval(reviewer=approval.reviewer, role=approval.role, reason=reason)


def judge_approvals(
    spec: LevelReviewSpec,
    *,
    owners: frozenset[str],
    model: ModelSpec | None,
    policy: EffectivePolicy,
) -> Judgement:
    """`owners`: everyone who owned the technology since its current level was reached."""
    current = review_content(spec, model)
    upward = review_type(spec) is not ReviewType.SWITCHBACK
    excluded_owners = owners if upward and policy.separation_of_duties else frozenset()
    counting: list[Approval] = []
    rejections: list[Approval] = []
    dismissed: list[DismissedApproval] = []
    roles: set[str] = set()
    unheld: list[tuple[str, str]] = []
    owner_approvals: list[str] = []
    for approval in spec.approvals:
        stamp = approval.approved_by
        if stamp is None:
            dismissed.append(
                _dismissed(approval, "not stamped by the admission webhook: nobody vouches "
                           "for who recorded it")
            )
            continue
        if approval.decision is Decision.REJECT:
            rejections.append(approval)
            continue
        if policy.dismiss_stale_approvals and stamp.content.digest != current.digest:
            changes = "; ".join(what_changed(stamp.content, current))
            dismissed.append(_dismissed(approval, f"{changes} after {approval.reviewer} approved"))
            continue
        owner = next(
            (who for who in (approval.reviewer, stamp.username) if who in excluded_owners), None
        )
        if owner is not None:
            owner_approvals.append(owner)
            dismissed.append(
                _dismissed(approval, f"{owner} owned the technology since its current level "
                           "was reached (separation of duties)")
            )
            continue
        counting.append(approval)
        if holds_role(policy, approval.role, stamp.username, stamp.groups):
            roles.add(approval.role)
        else:
            unheld.append((approval.role, stamp.username))
    return Judgement(
        counting=tuple(counting),
        roles=frozenset(roles),
        rejections=tuple(rejections),
        dismissed=tuple(dismissed),
        unheld_claims=tuple(unheld),
        owner_approvals=tuple(dict.fromkeys(owner_approvals)),
    )


def role_unmet(policy: EffectivePolicy, role: str, claims: Sequence[tuple[str, str]]) -> str:
    """Why a required role is not met, in the words status.unmet uses."""
    if not role_bound(policy, role):
        return f"role {role}: no reviewers bound by {policy_names(policy)}"
    claimed = sorted({who for claimed_role, who in claims if claimed_role == role})
    if claimed:
        return (
            f"role {role}: {', '.join(claimed)} approved as {role} but "
            f"{policy_names(policy)} does not bind them to it"
        )
    return f"needs an approval from a reviewer with role '{role}'"


def stamps_by_reviewer(approvals: Sequence[Any]) -> Mapping[str, Any]:
    return {
        str(a.get("reviewer")): a.get("approvedBy")
        for a in approvals
        if isinstance(a, Mapping) and a.get("reviewer")
    }
