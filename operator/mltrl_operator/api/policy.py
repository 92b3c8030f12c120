"""MLTRLPolicy: what a platform team requires of the technologies in some namespaces."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from mltrl_operator.api.common import ApiModel, Condition, LabelSelector, Level
from mltrl_operator.api.lifecycle import Duration, ModelChangeRule, OnExpiry, WaiverPolicy
from mltrl_operator.api.review import EvidenceKind
from mltrl_operator.api.technology import MonitoringRule


class Enforcement(StrEnum):
    ENFORCE = "enforce"
    AUDIT = "audit"


class OnDemotion(StrEnum):
    STOP = "stop"
    DELETE = "delete"
    KEEP = "keep"


class ServingPolicy(ApiModel):
    """The serving gate for KServe InferenceServices."""

    minimum_level: Level | None = None
    """The lowest effective level at which a technology may be served."""
    enforcement: Enforcement | None = None
    """enforce (ungated InferenceServices are stopped or refused) or audit (only reported)."""
    on_demotion: OnDemotion | None = None
    """What happens to a served technology that falls below the level: stop (KServe's
    serving.kserve.io/stop annotation), delete, or keep (left serving, marked Degraded)."""
    governed: bool | None = None
    """When true, every InferenceService in the matching namespaces must claim a technology
    (label mltrl.dev/technology) whose level passes the gate."""


class EvidenceRequirement(ApiModel):
    """Evidence a review must present."""

    name: str = Field(min_length=1)
    """The evidence name the review must carry."""
    kind: EvidenceKind
    """check (must have passed), metric (must meet the thresholds) or document (needs a uri)."""
    minimum: float | None = None
    """For a metric: the lowest acceptable value."""
    maximum: float | None = None
    """For a metric: the highest acceptable value."""
    description: str | None = None
    """What the evidence is for, shown to reviewers when it is missing."""


class LevelRequirements(ApiModel):
    """What a review must bring to move a technology to one level."""

    level: Level
    """The level these requirements guard: a promotion to this level must meet them."""
    evidence: list[EvidenceRequirement] = Field(default_factory=list)
    """Evidence the review must present."""
    min_approvals: int | None = Field(default=None, ge=0)
    """How many distinct reviewers must approve."""
    required_roles: list[str] = Field(default_factory=list)
    """Roles that must each have approved (e.g. qa, product-owner)."""

    # --- re-certification (issue 15) ---
    valid_for: Duration | None = None
    """How long this level holds after its last review (promotion, change or
    re-certification), e.g. 2160h; unset: forever. The shortest across policies wins."""
    warn_before: Duration | None = None
    """How long before the level lapses a warning event and condition appear (default
    336h, 14 days)."""
    on_expiry: OnExpiry | None = None
    """What happens when the level lapses: warn (condition Certified=False only), stop
    (the serving gate closes) or demote (an embedded switchback to the level below).
    Default warn; the strictest across policies wins (demote over stop over warn)."""


class EntryPolicy(ApiModel):
    """How high a technology may enter without an entry review."""

    max_level: Level | None = None
    """The highest level a new MLTechnology starts at on its own word (spec.entryLevel).
    Above it, the technology starts here, with EntryApproved=False, until an entry review
    (a LevelReview with type entry) is Applied. Default 4; the lowest value across
    matching policies wins."""


class ReviewerBinding(ApiModel):
    """Who holds a review role: the people and groups the policy names for it."""

    role: str = Field(min_length=1)
    """The role (e.g. research-lead, qa, product-owner, sre, ethics)."""
    users: list[str] = Field(default_factory=list)
    """Usernames, as the API server authenticates them, that hold the role."""
    groups: list[str] = Field(default_factory=list)
    """Groups whose members hold the role."""


class AlertPolicy(ApiModel):
    """What monitoring alerts do when a technology has no rule of its own for them."""

    default_actions: list[MonitoringRule] = Field(default_factory=list)
    """Rules tried after the technology's own, first match wins."""


class MLTRLPolicySpec(ApiModel):
    """A platform team's policy. Where several policies match a namespace, the strictest
    value of each field wins."""

    namespace_selector: LabelSelector = Field(default_factory=LabelSelector)
    """The namespaces this policy covers; empty means all."""
    serving: ServingPolicy = Field(default_factory=ServingPolicy)
    """The serving gate."""
    requirements: list[LevelRequirements] = Field(default_factory=list)
    """Per-level review requirements; unset levels fall back to the built-in defaults."""
    separation_of_duties: bool = True
    """When true, no one who owned the technology since its current level was reached may
    approve its promotions."""
    reviewers: list[ReviewerBinding] = Field(default_factory=list)
    """Who holds each review role. An approval counts toward requiredRoles only if the
    approver held the role when approving (the admission webhook stamps who approved).
    Across several policies a role is held only if every policy that binds it grants it;
    a required role that no policy binds cannot be met."""
    dismiss_stale_approvals: bool = True
    """When true, an approval stops counting once what it approved (the review's
    technology, levels, type and evidence, and the technology's spec.model) changes; it
    stays in spec and is listed in status.dismissedApprovals. True if any policy says so."""
    entry: EntryPolicy = Field(default_factory=EntryPolicy)
    """How high technologies may enter without an entry review."""
    allow_level_skipping: bool = False
    """When true, a review may promote more than one level at once."""
    alerts: AlertPolicy = Field(default_factory=AlertPolicy)
    """Default alert actions."""

    # --- levels over time (issue 15) ---
    model_change: list[ModelChangeRule] = Field(default_factory=list)
    """What a new spec.model needs, per level or from a level (default: a change review at
    and above the serving level)."""
    waivers: WaiverPolicy | None = None
    """Who may approve time-bound exceptions, and for how long at most."""


class MLTRLPolicyStatus(ApiModel):
    """Whether the policy is valid and where it applies, written by the operator."""

    namespaces: list[str] = Field(default_factory=list)
    """The namespaces the policy currently covers."""
    observed_generation: int | None = None
    """The metadata.generation the status was computed from."""
    conditions: list[Condition] = Field(default_factory=list)
    """Valid."""


class MLTRLPolicy(ApiModel):
    """A cluster-wide MLTRL policy, written by platform teams."""

    spec: MLTRLPolicySpec
    """The policy."""
    status: MLTRLPolicyStatus | None = None
    """The policy's state, written by the operator."""
