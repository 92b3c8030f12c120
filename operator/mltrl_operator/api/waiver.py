"""MLTRLWaiver: a time-bound, approved exception to some requirements of one technology."""

from __future__ import annotations

from pydantic import Field

from mltrl_operator.api.common import ApiModel, Condition, Level


class WaivedRequirements(ApiModel):
    """What the waiver lets the technology do without. Evidence, minApprovals and roles
    are requirements of one level's reviews (`level`); servingMinimum lowers the serving
    gate."""

    level: Level | None = None
    """The level whose review requirements are waived (needed for evidence, minApprovals
    and roles)."""
    evidence: list[str] = Field(default_factory=list)
    """Evidence names a review of that level may go without."""
    min_approvals: int | None = Field(default=None, ge=0)
    """The approval count that suffices at that level while the waiver applies (only ever
    lowers the policy's count)."""
    roles: list[str] = Field(default_factory=list)
    """Required roles whose approval that level's reviews may go without."""
    serving_minimum: Level | None = None
    """Serve from this level instead of the policy's serving minimum, until expiresAt;
    then the gate closes again at once, as the policy's onDemotion says."""


class WaiverApproval(ApiModel):
    """An approval of the waiver, stamped by the admission webhook."""

    approver: str = ""
    """Who approved (the authenticated user name; the webhook stamps it)."""
    groups: list[str] = Field(default_factory=list)
    """The approver's groups when approving (stamped by the webhook)."""
    time: str | None = None
    """When (RFC 3339; stamped by the webhook)."""
    comment: str | None = None
    """Why."""


class MLTRLWaiverSpec(ApiModel):
    """The exception: which technology, what it waives, why, until when."""

    technology: str = Field(min_length=1)
    """The MLTechnology the waiver is for, in the waiver's namespace."""
    waives: WaivedRequirements
    """The requirements waived."""
    reason: str = Field(min_length=1)
    """Why the exception is needed."""
    ticket: str | None = None
    """A link to the ticket or decision record."""
    expires_at: str = Field(json_schema_extra={"format": "date-time"})
    """When the waiver stops counting (RFC 3339), at most the policy's
    waivers.maxDuration after its creation. At that instant what it allowed is decided
    again."""
    approvals: list[WaiverApproval] = Field(default_factory=list)
    """Approvals by people the policy names in waivers.approvers."""


class MLTRLWaiverStatus(ApiModel):
    """Whether the waiver counts, written by the operator."""

    active: bool = False
    """True while the waiver applies."""
    message: str | None = None
    """Why it applies or not."""
    observed_generation: int | None = None
    """The metadata.generation the status was computed from."""
    conditions: list[Condition] = Field(default_factory=list)
    """Active."""


class WaiverUse(ApiModel):
    """A waiver that helped something (a review, the serving gate): which, for what, and
    until when. Recorded where it helped, and in the audit record."""

    name: str
    """The MLTRLWaiver."""
    waived: list[str] = Field(default_factory=list)
    """What it took off, e.g. `evidence bias-audit`, `servingMinimum 7 -> 5`."""
    approved_by: list[str] = Field(default_factory=list)
    """The approvals that made it count."""
    expires_at: str
    """When it stops counting (RFC 3339)."""
    since: str | None = None
    """For the serving gate: since when the waiver keeps it open (RFC 3339)."""


class MLTRLWaiver(ApiModel):
    """A time-bound exception to a technology's requirements, approved by the people the
    policy names."""

    spec: MLTRLWaiverSpec
    """The exception."""
    status: MLTRLWaiverStatus | None = None
    """Whether it applies, written by the operator."""
