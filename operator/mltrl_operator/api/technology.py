"""MLTechnology: one ML technology (model, data pipeline, module or composition) on its way
through the readiness levels."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from mltrl_operator.api.common import ApiModel, Condition, Level
from mltrl_operator.api.waiver import WaiverUse

HISTORY_LIMIT = 50
KNOWN_GOOD_LIMIT = 10
INCIDENT_LIMIT = 20
SETTLED_ALERT_LIMIT = 200
OWNER_LIMIT = 20


class Phase(StrEnum):
    RESEARCH = "Research"
    PROTOTYPING = "Prototyping"
    PRODUCTIZATION = "Productization"
    DEPLOYMENT = "Deployment"


class AlertAction(StrEnum):
    ROLLBACK = "rollback"
    DEMOTE = "demote"
    RETRAIN = "retrain"
    NOTIFY = "notify"


class TransitionKind(StrEnum):
    ENTRY = "entry"
    PROMOTION = "promotion"
    SWITCHBACK = "switchback"
    # Levels over time (issue 15): records that keep the level, or a lapse that demotes.
    CHANGE = "change"
    RECERTIFICATION = "recertification"
    LAPSE = "lapse"


class SwitchbackType(StrEnum):
    DISCOVERY = "discovery"
    EMBEDDED = "embedded"
    REVIEW = "review"


class ComponentRef(ApiModel):
    """Another MLTechnology this one is composed of."""

    name: str = Field(min_length=1)
    """The component MLTechnology's name."""
    namespace: str | None = None
    """The component's namespace; defaults to this technology's namespace."""


class ModelSpec(ApiModel):
    """The model artifact the technology currently ships."""

    version: str = Field(min_length=1)
    """The model version (any string the team uses: a semver, a registry version, a hash)."""
    storage_uri: str = Field(min_length=1)
    """Where the artifact lives (e.g. s3://bucket/fraud/v7, gs://..., pvc://...)."""
    format: str = Field(min_length=1)
    """The model format KServe serves it with (e.g. sklearn, xgboost, onnx, pytorch)."""
    runtime: str | None = None
    """An explicit KServe ServingRuntime name, when the format alone is not enough."""


class ServingSpec(ApiModel):
    """How the technology is served with KServe once it has reached the required level."""

    enabled: bool = True
    """Whether the operator should serve this technology at all."""
    required_level: Level | None = None
    """A stricter level than the policy's serving minimum, if this technology needs one."""
    inference_service_name: str | None = Field(
        default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    )
    """Name of the InferenceService to create (a DNS-1123 label); defaults to the
    technology's name. It may not name an InferenceService this technology does not own."""
    predictor: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """An InferenceService predictor template (spec.predictor); the operator fills in
    model.modelFormat and model.storageUri from spec.model."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Annotations to put on the InferenceService (e.g. KServe deployment mode)."""


class MonitoringRule(ApiModel):
    """What to do when a monitoring alert about this technology fires."""

    alert_name: str | None = None
    """The Alertmanager alertname this rule answers; empty matches any alert name."""
    matchers: dict[str, str] = Field(default_factory=dict)
    """Further alert labels that must all match exactly."""
    action: AlertAction
    """rollback (serve the previous known-good model), demote (an embedded switchback to
    toLevel), retrain (start the retraining Job) or notify (event and metric only)."""
    to_level: Level | None = None
    """For demote: the level to switch back to (default 4, the paper's 9 -> 4)."""


class MonitoringSpec(ApiModel):
    """How monitoring alerts act on this technology; rules are tried in order."""

    rules: list[MonitoringRule] = Field(default_factory=list)
    """Alert rules, first match wins; with no match the policy's default actions apply."""


class RetrainingSpec(ApiModel):
    """The retraining Job the `retrain` alert action starts."""

    job_template: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """A batch/v1 Job spec (spec.template etc.) to run once per incident."""


class Dataset(ApiModel):
    """A dataset the technology was built or evaluated with."""

    name: str = Field(min_length=1)
    """The dataset's name."""
    version: str = Field(min_length=1)
    """The exact version used (MLTRL asks that dataset versions be named)."""
    uri: str | None = None
    """Where the dataset or its datasheet lives."""


class TRLCard(ApiModel):
    """The technology's TRL card: the living record MLTRL keeps per technology and level."""

    intended_use: str | None = None
    """What the technology is for."""
    unacceptable_uses: list[str] = Field(default_factory=list)
    """Uses the technology must not be put to."""
    datasets: list[Dataset] = Field(default_factory=list)
    """Datasets with versions."""
    caveats: list[str] = Field(default_factory=list)
    """Caveats and known edge cases."""
    assumptions: list[str] = Field(default_factory=list)
    """Key assumptions the technology relies on."""
    ethics_checklist: str | None = None
    """Link to the ethics checklist."""
    requirements: str | None = None
    """Link to the requirements document (with a risk figure per requirement)."""
    verification_and_validation: str | None = None
    """Link to the verification and validation (V&V) document."""
    code: str | None = None
    """Link to the code repository."""
    reviewers: list[str] = Field(default_factory=list)
    """The technology's reviewers (R&D and product)."""


class MLTechnologySpec(ApiModel):
    """The desired state of an ML technology."""

    owner: str = Field(min_length=1)
    """Who is accountable for the technology. Under separation of duties the owner may not
    approve the technology's own level reviews."""
    team: str | None = None
    """The team that develops the technology."""
    description: str | None = None
    """What the technology is, in a sentence or two."""
    entry_level: Level = 0
    """The level the technology starts at (MLTRL: most projects enter at 3 or 4). Above
    the policy's entry.maxLevel it starts at maxLevel until an entry review is Applied.
    Immutable once created. The technology can never be switched back below it."""
    target_level: Level = 9
    """The level the team aims for."""
    components: list[ComponentRef] = Field(default_factory=list)
    """Technologies this one is composed of: its effective level is the lowest of its own
    level and theirs."""
    model: ModelSpec | None = None
    """The model artifact, served through KServe once the level allows it."""
    serving: ServingSpec | None = None
    """How to serve the model with KServe."""
    monitoring: MonitoringSpec | None = None
    """What monitoring alerts do to the technology."""
    retraining: RetrainingSpec | None = None
    """How to retrain the model when an alert asks for it."""
    card: TRLCard | None = None
    """The TRL card fields."""


class LevelTransition(ApiModel):
    """One change of level, as MLTRL asks every promotion and switchback to be recorded."""

    from_level: Level | None = Field(default=None, alias="from")
    """The level before the change (absent for the entry record)."""
    to: Level
    """The level after the change."""
    kind: TransitionKind
    """entry, promotion or switchback; change (a change review approved a new model at
    this level), recertification (a recertify review renewed the level) or lapse (the
    level's certification ran out; to is below from when the policy's onExpiry demoted)."""
    switchback_type: SwitchbackType | None = None
    """For a switchback: discovery, embedded or review."""
    reason: str = ""
    """Why the level changed."""
    review: str | None = None
    """The LevelReview that caused it."""
    alert: str | None = None
    """The monitoring alert (name and fingerprint) that caused it."""
    by: list[str] = Field(default_factory=list)
    """Who decided: the approving reviewers, or the operator for alerts."""
    at: str
    """When the change happened (RFC 3339)."""
    debrief: Debrief | None = None
    """The review's debrief, copied for the record."""
    waivers: list[WaiverUse] | None = None
    """Waivers the review needed: what each took off the level's requirements (issue 15)."""


class Debrief(ApiModel):
    """The four questions MLTRL asks at the end of every level review."""

    accomplished: str | None = None
    """What was accomplished, and by whom."""
    punted: str | None = None
    """What was punted or de-scoped."""
    learned: str | None = None
    """What was learned."""
    technical_debt: str | None = None
    """What technical debt was gained or mitigated."""


class KnownGoodModel(ApiModel):
    """A model version that served while the technology met the required level."""

    version: str
    """The model version."""
    storage_uri: str
    """Where the artifact lives."""
    format: str
    """The model format."""
    runtime: str | None = None
    """The ServingRuntime, if one was named."""
    served_at: str
    """When it first served at the required level (RFC 3339)."""


class ApprovedModel(ApiModel):
    """A model the technology may serve at its level: approved by the review that reached
    or kept the level, or inherited where the policy's modelChange allows it."""

    version: str
    """The model version."""
    storage_uri: str
    """Where the artifact lives."""
    format: str
    """The model format."""
    runtime: str | None = None
    """The ServingRuntime, if one was named."""
    approved_at: str
    """When it was approved (RFC 3339)."""
    how: str
    """How it was approved: the review, or the rule that let it in."""


class PendingModel(ApiModel):
    """A new spec.model that waits for a change review; the approved model serves meanwhile."""

    version: str
    """spec.model.version waiting."""
    storage_uri: str
    """spec.model.storageUri waiting."""
    since: str
    """When the operator first held it (RFC 3339)."""
    reason: str
    """Why it is held, and what serves meanwhile."""


class NextLevel(ApiModel):
    """What is still missing before the technology can move up one level."""

    level: Level
    """The next level."""
    name: str
    """The next level's name."""
    requirements: list[str] = Field(default_factory=list)
    """Every requirement of a review to that level, in plain words."""


class ServingState(StrEnum):
    DISABLED = "Disabled"
    BLOCKED = "Blocked"
    PENDING = "Pending"
    SERVING = "Serving"
    STOPPED = "Stopped"
    DEGRADED = "Degraded"


class ServingRollback(ApiModel):
    """A rollback alert's decision: serve a known-good model instead of spec.model.

    It lasts until spec.model names a different model (version or storageUri) than the
    one it replaced; then the operator serves spec.model again."""

    model: KnownGoodModel | None = None
    """The known-good model served instead of spec.model; absent when no earlier known-good
    model was left, in which case the InferenceService is stopped."""
    replaced_version: str
    """The spec.model version the rollback stands in for."""
    replaced_storage_uri: str
    """The spec.model storageUri the rollback stands in for."""
    alert: str
    """The alert (name/fingerprint) that asked for the rollback."""
    at: str
    """When the operator rolled back (RFC 3339)."""


class ServingStatus(ApiModel):
    """The serving gate and the InferenceService, as the operator last saw them."""

    state: ServingState = ServingState.DISABLED
    """Disabled (no model or serving off), Blocked (level too low), Pending (created, not
    ready), Serving, Stopped (stopped by the operator), or Degraded (kept serving below the
    required level)."""

    allowed: bool = False
    """Whether the technology's effective level meets the required level."""
    required_level: Level | None = None
    """The level serving requires (the stricter of policy and technology)."""
    inference_service: str | None = None
    """The InferenceService's name."""
    url: str | None = None
    """The InferenceService's URL."""
    ready: bool = False
    """Whether the InferenceService reports Ready."""
    model_version: str | None = None
    """The model version the InferenceService serves."""
    stopped: bool = False
    """Whether the operator stopped the InferenceService (serving.kserve.io/stop)."""
    waiver: WaiverUse | None = None
    """The waiver the gate is open by: the level is below the serving minimum, which the
    waiver lowers until its expiresAt (then the gate closes, as onDemotion says)."""
    rollback: ServingRollback | None = None
    """Set by a rollback alert: the model served instead of spec.model, until spec.model
    changes."""


class Incident(ApiModel):
    """A monitoring alert recorded as intent; the reconciler acts on it exactly once."""

    fingerprint: str
    """Alertmanager's fingerprint of the alert."""
    alert_name: str
    """The alert's name."""
    labels: dict[str, str] = Field(default_factory=dict)
    """The alert's labels."""
    starts_at: str
    """When the alert started firing."""
    action: AlertAction
    """The action chosen for it."""
    to_level: Level | None = None
    """For demote: the target level."""
    state: str = "Pending"
    """Pending until acted on, then Acted, Failed or Resolved."""
    message: str = ""
    """What was done, or why not."""
    received_at: str
    """When the operator received the alert."""
    resolved_at: str | None = None
    """When Alertmanager reported the alert resolved."""
    job: str | None = None
    """For retrain: the Job created."""


class SettledAlerts(ApiModel):
    """Alerts handled beyond the incidents kept in status.incidents, so that Alertmanager
    re-sending an old alert is recognised and not acted on twice."""

    keys: list[str] = Field(default_factory=list, max_length=SETTLED_ALERT_LIMIT)
    """`<id>@<startsAt as Unix seconds>` of each alert whose incident was dropped from
    status.incidents or that joined another incident; the id is the first 16 hex digits of
    sha256("<fingerprint>/<startsAt>"). Oldest first, at most 200."""
    horizon: str | None = None
    """The latest startsAt dropped from keys: a firing alert that started at or before it
    and is not in status.incidents is older than anything remembered and is ignored."""
class OwnerRecord(ApiModel):
    """One owner of the technology, as the operator saw spec.owner change."""

    name: str
    """The owner (spec.owner)."""
    since: str
    """When the operator first saw this owner (RFC 3339)."""
    until: str | None = None
    """When the owner was replaced (RFC 3339); absent for the current owner."""
    changed_by: str | None = None
    """Who set spec.owner to this name, as the admission webhook recorded it."""


class EntryStatus(ApiModel):
    """How the technology entered: what it asked for and what it was granted."""

    level: Level
    """spec.entryLevel as first recorded; later edits of the spec do not change it."""
    granted_level: Level
    """The level it started at: spec.entryLevel, or the policy's entry.maxLevel if lower."""
    approved: bool
    """Whether the entry level was reached: at or below maxLevel, or by an entry review."""
    review: str | None = None
    """The entry review that approved it."""


class MLTechnologyStatus(ApiModel):
    """What the operator observed and decided; only the operator writes it."""

    level: Level | None = None
    """The current readiness level. Changes only through level reviews and alerts."""
    level_name: str | None = None
    """The current level's name (e.g. Proof of Concept (PoC) Development)."""
    phase: Phase | None = None
    """Research (0-2), Prototyping (3-5), Productization (6-8) or Deployment (9)."""
    effective_level: Level | None = None
    """The lowest of this technology's level and its components' effective levels."""
    observed_generation: int | None = None
    """The metadata.generation the status was computed from."""
    conditions: list[Condition] = Field(default_factory=list)
    """Ready, ServingAllowed, Serving, Degraded, ComponentsReady."""
    history: list[LevelTransition] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    """The most recent level changes, newest last."""
    known_good_models: list[KnownGoodModel] = Field(
        default_factory=list, max_length=KNOWN_GOOD_LIMIT
    )
    """Models that served at or above the required level, newest last; rollback uses them."""
    next_level: NextLevel | None = None
    """What a review to the next level needs."""
    serving: ServingStatus | None = None
    """The serving gate and InferenceService state."""
    incidents: list[Incident] = Field(default_factory=list, max_length=INCIDENT_LIMIT)
    """Monitoring alerts received and what was done about them, newest last."""
    settled_alerts: SettledAlerts | None = None
    """A compact record of alerts already handled (see SettledAlerts)."""
    entry: EntryStatus | None = None
    """The entry level asked for, the level granted, and whether it was approved."""
    owners: list[OwnerRecord] = Field(default_factory=list, max_length=OWNER_LIMIT)
    """Every owner since the operator first saw the technology, newest last; separation
    of duties covers each one who owned it since its current level was reached."""

    # --- levels over time (issue 15) ---
    approved_model: ApprovedModel | None = None
    """The model approved at the current level: the one served while a new spec.model
    waits for its change review."""
    approved_models: list[ApprovedModel] = Field(
        default_factory=list, max_length=KNOWN_GOOD_LIMIT
    )
    """Models approved before the current one, newest last: returning to one of them (a
    rollback to a known-good model) is not a change."""
    pending_model: PendingModel | None = None
    """A new spec.model waiting for a change review (spec.type change), and why."""


class MLTechnology(ApiModel):
    """An ML technology tracked through the ML Technology Readiness Levels (MLTRL)."""

    spec: MLTechnologySpec
    """The technology's desired state."""
    status: MLTechnologyStatus | None = None
    """The observed state, written by the operator."""


LevelTransition.model_rebuild()
