"""The custom resources' Kubernetes identity: names, scope, printer columns."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from mltrl_operator.api.audit import MLTRLAuditRecord
from mltrl_operator.api.common import GROUP, VERSION
from mltrl_operator.api.policy import MLTRLPolicy
from mltrl_operator.api.review import LevelReview
from mltrl_operator.api.technology import MLTechnology
from mltrl_operator.api.waiver import MLTRLWaiver

CATEGORY = "mltrl"


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class Resource:
    model: type[BaseModel]
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    namespaced: bool
    columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)
    categories: tuple[str, ...] = (CATEGORY,)
    """`kubectl get mltrl` lists the kinds in the category."""

    @property
    def group(self) -> str:
        return GROUP

    @property
    def version(self) -> str:
        return VERSION

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")

TECHNOLOGY = Resource(
    model=MLTechnology,
    kind="MLTechnology",
    plural="mltechnologies",
    singular="mltechnology",
    short_names=("mltech",),
    namespaced=True,
    columns=(
        PrinterColumn("Level", ".status.level", "integer", "The current readiness level"),
        PrinterColumn("Phase", ".status.phase", description="The MLTRL phase"),
        PrinterColumn("Target", ".spec.targetLevel", "integer", "The level aimed for"),
        PrinterColumn("Serving", ".status.serving.state", description="The serving state"),
        PrinterColumn(
            "Ready", ".status.conditions[?(@.type=='Ready')].status", description="Ready"
        ),
        AGE,
        PrinterColumn("Level-Name", ".status.levelName", priority=1),
        PrinterColumn("Effective", ".status.effectiveLevel", "integer", priority=1),
        PrinterColumn("Owner", ".spec.owner", priority=1),
        # Levels over time (issue 15), in `-o wide`: the model approved at this level (what
        # serves), a new spec.model waiting for its change review, and the certification.
        PrinterColumn("Approved-Model", ".status.approvedModel.version", priority=1,
                      description="The model approved at the current level"),
        PrinterColumn("Pending-Model", ".status.pendingModel.version", priority=1,
                      description="A new spec.model waiting for its change review"),
        PrinterColumn("Certified", ".status.conditions[?(@.type=='Certified')].reason",
                      priority=1, description="Current, ExpiringSoon or Expired"),
    ),
)

REVIEW = Resource(
    model=LevelReview,
    kind="LevelReview",
    plural="levelreviews",
    singular="levelreview",
    short_names=("lvlreview",),
    namespaced=True,
    columns=(
        PrinterColumn("Technology", ".spec.technology", description="The technology reviewed"),
        PrinterColumn("From", ".spec.fromLevel", "integer"),
        PrinterColumn("To", ".spec.toLevel", "integer"),
        PrinterColumn("Phase", ".status.phase", description="The review's phase"),
        AGE,
        PrinterColumn("Message", ".status.message", priority=1),
    ),
)

POLICY = Resource(
    model=MLTRLPolicy,
    kind="MLTRLPolicy",
    plural="mltrlpolicies",
    singular="mltrlpolicy",
    short_names=("mltrlpolicy",),
    namespaced=False,
    columns=(
        PrinterColumn("Serving-Min", ".spec.serving.minimumLevel", "integer"),
        PrinterColumn("Enforcement", ".spec.serving.enforcement"),
        PrinterColumn("On-Demotion", ".spec.serving.onDemotion"),
        PrinterColumn("Valid", ".status.conditions[?(@.type=='Valid')].status"),
        AGE,
    ),
)

# --- the record and the exceptions (issue 15) ----------------------------------------------
AUDIT_RECORD = Resource(
    model=MLTRLAuditRecord,
    kind="MLTRLAuditRecord",
    plural="mltrlauditrecords",
    singular="mltrlauditrecord",
    short_names=("mltrlaudit",),
    namespaced=False,
    # Not in `kubectl get mltrl`: a team's listing would show every namespace's records.
    categories=(),
    columns=(
        PrinterColumn("Namespace", ".spec.namespace", description="The technology's namespace"),
        PrinterColumn("Technology", ".spec.technology", description="The technology"),
        PrinterColumn("Chunk", ".spec.chunk", "integer", "The chunk's position in the record"),
        AGE,
    ),
)

WAIVER = Resource(
    model=MLTRLWaiver,
    kind="MLTRLWaiver",
    plural="mltrlwaivers",
    singular="mltrlwaiver",
    short_names=("mltrlwaiver", "waiver"),
    namespaced=True,
    columns=(
        PrinterColumn("Technology", ".spec.technology", description="The technology"),
        PrinterColumn("Expires", ".spec.expiresAt", "date", "When the waiver stops counting"),
        PrinterColumn("Active", ".status.active", "boolean", "Whether the waiver applies"),
        AGE,
        PrinterColumn("Reason", ".spec.reason", priority=1),
        PrinterColumn("Ticket", ".spec.ticket", priority=1),
    ),
)

ALL_RESOURCES = (TECHNOLOGY, REVIEW, POLICY, AUDIT_RECORD, WAIVER)
