"""MLTRLAuditRecord: the record of every level transition of one technology, kept by the
operator in cluster-scoped objects that outlive the technology and its reviews.

One technology's record is a chain of chunks (`<namespace>.<technology>.<chunk>`); each
entry carries the sha256 of the entry before it, so an edited or removed entry is found by
`mltrl audit verify`. Only the operator's service account may write these objects (the
chart's RBAC gives no one else write access; the admission webhook refuses everyone
else, cluster admins included).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from mltrl_operator.api.common import ApiModel, Level


class AuditEntryKind(StrEnum):
    ENTRY = "entry"
    PROMOTION = "promotion"
    SWITCHBACK = "switchback"
    CHANGE_APPROVAL = "changeApproval"
    RECERTIFICATION = "recertification"
    LAPSE = "lapse"
    WAIVER_USE = "waiverUse"
    ROLLBACK = "rollback"
    DISMISSED_APPROVALS = "dismissedApprovals"
    DELETION = "deletion"


class AuditEvidence(ApiModel):
    """One piece of evidence, as the review presented it when it was applied."""

    name: str
    """The evidence's name."""
    kind: str
    """check, metric or document."""
    passed: bool | None = None
    """For a check: whether it passed."""
    value: float | None = None
    """For a metric: the measured value."""
    uri: str | None = None
    """Where the evidence could be seen."""
    description: str | None = None
    """What the evidence showed (long texts are cut, with the cut marked)."""


class AuditApproval(ApiModel):
    """One reviewer's decision, as stamped on the review when it was applied."""

    reviewer: str
    """The authenticated reviewer."""
    role: str | None = None
    """The role the reviewer approved as."""
    decision: str
    """approve or reject."""
    time: str | None = None
    """When the decision was made (RFC 3339)."""
    comment: str | None = None
    """Why (long texts are cut, with the cut marked)."""


class AuditModel(ApiModel):
    """The model artifact concerned."""

    version: str
    """The model version."""
    storage_uri: str | None = None
    """Where the artifact lives."""


class AuditEntry(ApiModel):
    """One transition of the technology, chained to the entry before it."""

    id: str = Field(min_length=1)
    """A deterministic identifier of the transition: appending the same transition twice
    (an operator restarted mid-write) stores it once."""
    sequence: int = Field(ge=0)
    """The entry's position in the technology's record, from 0."""
    time: str
    """When the transition happened (RFC 3339)."""
    kind: AuditEntryKind
    """entry, promotion, switchback, changeApproval, recertification, lapse, waiverUse,
    rollback, dismissedApprovals or deletion (the MLTechnology object was deleted)."""
    technology_uid: str | None = None
    """The uid of the MLTechnology object at the time: a technology deleted and created
    again with the same name keeps one record, and the uid tells its lives apart."""
    from_level: Level | None = None
    """The level before the transition."""
    to_level: Level | None = None
    """The level after the transition."""
    switchback_type: str | None = None
    """For a switchback: discovery, embedded or review."""
    reason: str = ""
    """Why, in plain words."""
    by: list[str] = Field(default_factory=list)
    """Who decided: the approving reviewers, or mltrl-operator for alerts and timers."""
    review: str | None = None
    """The LevelReview that made the transition."""
    review_type: str | None = None
    """The review's type (promotion, entry, change, recertify), when it has one."""
    alert: str | None = None
    """The alert (alertname/fingerprint) that made the transition."""
    waiver: str | None = None
    """The MLTRLWaiver used."""
    model: AuditModel | None = None
    """The model the technology shipped at the transition (for a rollback: the model now
    served)."""
    replaced_model: AuditModel | None = None
    """For a rollback: the model rolled back from."""
    evidence: list[AuditEvidence] = Field(default_factory=list)
    """The evidence the review presented, copied so that deleting the review loses
    nothing."""
    approvals: list[AuditApproval] = Field(default_factory=list)
    """The review's decisions, copied likewise."""
    details: dict[str, str] = Field(default_factory=dict)
    """Further facts of the transition, by name."""
    previous_hash: str = ""
    """The hash of the entry before this one (empty for the first entry)."""
    hash: str = ""
    """sha256 (hex) of this entry's canonical JSON without this field."""


class MLTRLAuditRecordSpec(ApiModel):
    """One chunk of a technology's record."""

    namespace: str = Field(min_length=1)
    """The technology's namespace."""
    technology: str = Field(min_length=1)
    """The technology's name."""
    chunk: int = Field(ge=0)
    """The chunk's position in the record, from 0; a chunk is closed when the next one
    would exceed the size limit."""
    previous_chunk_hash: str = ""
    """The hash of the last entry of the chunk before (empty for chunk 0)."""
    entries: list[AuditEntry] = Field(default_factory=list)
    """The entries, oldest first."""


class MLTRLAuditRecord(ApiModel):
    """One chunk of a technology's audit record, written only by the operator."""

    spec: MLTRLAuditRecordSpec
    """The chunk."""
