"""LevelReview: the gated review that moves a technology up one level or sends it back."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from mltrl_operator.api.common import ApiModel, Condition, Level
from mltrl_operator.api.technology import Debrief, SwitchbackType
from mltrl_operator.api.waiver import WaiverUse


class EvidenceKind(StrEnum):
    CHECK = "check"
    METRIC = "metric"
    DOCUMENT = "document"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ReviewPhase(StrEnum):
    PENDING = "Pending"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    APPLIED = "Applied"
    INVALID = "Invalid"
    SUPERSEDED = "Superseded"


# Issue 11 adds promotion, switchback and entry; issue 15 adds change and recertify.
class ReviewType(StrEnum):
    PROMOTION = "promotion"
    SWITCHBACK = "switchback"
    ENTRY = "entry"
    CHANGE = "change"
    RECERTIFY = "recertify"


class ReviewedModel(ApiModel):
    """The model a change review approves: it must be the technology's pending model."""

    version: str = Field(min_length=1)
    """spec.model.version of the technology when the change was made."""
    storage_uri: str | None = None
    """spec.model.storageUri, when the version alone is ambiguous."""


class ContentDigest(ApiModel):
    """What an approval approved, as digests (sha256 of canonical JSON)."""

    digest: str
    """The digest of everything below together."""
    parts: dict[str, str] = Field(default_factory=dict)
    """One digest per part (review, evidence/NAME, model), so a dismissal can say what
    changed."""


class ApprovalStamp(ApiModel):
    """Who approved, when, and what: written by the admission webhook from the request's
    authenticated user. Whatever a client sends here is overwritten."""

    username: str
    """The authenticated username of whoever recorded the decision."""
    groups: list[str] = Field(default_factory=list)
    """Their groups at that moment."""
    time: str
    """When the decision was recorded (RFC 3339)."""
    content: ContentDigest
    """What the decision was given on."""


class Evidence(ApiModel):
    """One piece of verification and validation evidence presented at the review."""

    name: str = Field(min_length=1)
    """The evidence's name, as policies require it (e.g. unit-tests, auc, ethics-checklist)."""
    kind: EvidenceKind
    """check (a pass/fail result), metric (a measured value) or document (a link)."""
    passed: bool | None = None
    """For a check: whether it passed."""
    value: float | None = None
    """For a metric: the measured value."""
    uri: str | None = None
    """Where the evidence can be seen (a CI run, a report, a document)."""
    description: str | None = None
    """What the evidence shows."""


class Approval(ApiModel):
    """A reviewer's decision."""

    reviewer: str = Field(min_length=1)
    """Who decided (the authenticated username, stamped by the admission webhook)."""
    role: str = Field(min_length=1)
    """The reviewer's role at this review (e.g. research-lead, qa, product-owner, sre, ethics)."""
    decision: Decision
    """approve or reject."""
    comment: str | None = None
    """Why."""
    time: str | None = None
    """When the decision was made (RFC 3339); stamped by the admission webhook."""
    approved_by: ApprovalStamp | None = None
    """Stamped by the admission webhook: who recorded the decision, with which groups,
    when, and on what content. An approval without it counts for nothing."""


class LevelReviewSpec(ApiModel):
    """A level review: the evidence, the decisions and the debrief."""

    technology: str = Field(min_length=1)
    """The MLTechnology under review, in the review's namespace."""
    type: ReviewType | None = None
    """promotion (up), switchback (down), entry (from the level a technology started at
    to its spec.entryLevel, when that is above the policy's entry.maxLevel), change (a new
    spec.model at the current level: fromLevel = toLevel) or recertify (renews the current
    level before or after it lapses: fromLevel = toLevel). Unset means promotion when
    toLevel is above fromLevel, switchback when below."""
    from_level: Level
    """The technology's level when the review was opened; must equal its current level."""
    to_level: Level
    """The level the review moves the technology to: one up for a promotion (more only where
    the policy allows skipping), or lower for a review switchback."""
    switchback_type: SwitchbackType | None = None
    """For a review that moves down: discovery, embedded or review (the default)."""
    reason: str | None = None
    """Why the review moves the technology (required for switchbacks)."""
    evidence: list[Evidence] = Field(default_factory=list)
    """Verification and validation evidence."""
    approvals: list[Approval] = Field(default_factory=list)
    """Reviewers' decisions; any reject rejects the review."""
    debrief: Debrief | None = None
    """The stage debrief: accomplished, punted, learned, technical debt."""

    # --- levels over time (issue 15) ---
    model: ReviewedModel | None = None
    """For a change review: the new model approved."""


class DismissedApproval(ApiModel):
    """An approval that stays in spec but counts for nothing, and why."""

    reviewer: str
    """The approval's reviewer."""
    role: str
    """The role it was given in."""
    reason: str
    """Why it does not count (e.g. evidence ci changed after bob approved)."""


class LevelReviewStatus(ApiModel):
    """The review's evaluation, written by the operator."""

    phase: ReviewPhase | None = None
    """Pending, Approved, Rejected, Applied, Invalid or Superseded."""
    unmet: list[str] = Field(default_factory=list)
    """Every requirement not yet met, in plain words."""
    approved_by: list[str] = Field(default_factory=list)
    """The distinct reviewers whose approval counts."""
    dismissed_approvals: list[DismissedApproval] = Field(default_factory=list)
    """Approvals that count for nothing, each with the reason."""
    message: str | None = None
    """A summary of the review's state."""
    waivers: list[WaiverUse] = Field(default_factory=list)
    """Waivers that took requirements off this review, what each took off, and until
    when (issue 15). An Applied review keeps the list it was applied with."""
    applied_at: str | None = None
    """When the review moved the technology (RFC 3339)."""
    observed_generation: int | None = None
    """The metadata.generation the status was computed from."""
    conditions: list[Condition] = Field(default_factory=list)
    """Evaluated and Applied."""


class LevelReview(ApiModel):
    """A gated MLTRL level review of one technology."""

    spec: LevelReviewSpec
    """The review."""
    status: LevelReviewStatus | None = None
    """The evaluation, written by the operator."""
