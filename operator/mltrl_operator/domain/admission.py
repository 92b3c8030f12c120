"""Admission rules: what the webhooks stamp or refuse before anything is stored.

Pure functions of the objects in the request, the requester and a few facts about the
cluster, so every rule is tested without a server. The webhooks (mltrl_operator.webhooks)
read the facts and turn a `Verdict` into an AdmissionReview response.

Choices:
- an approval is identified by its reviewer: one that is byte-for-byte what the stored
  review holds for that reviewer is untouched; any other is new or changed and must be the
  requester's own (unless the requester is in a trusted group, e.g. a CI service account
  recording approvals made elsewhere);
- the mutating webhook fills in an empty reviewer with the requester and stamps the time
  on the requester's new or changed approvals; it never rewrites a name someone typed, so
  a forged name reaches the validating webhook and is refused with a message that says so;
- every new or changed approval also gets `approvedBy` (domain.approvals): the
  requester's username and groups, the time and the digest of the content approved,
  whatever the client sent there; an approval that is not new keeps its stored stamp;
- an approval in a role that a policy binds is refused unless the requester holds it
  (domain.approvals.holds_role, the rule the reconciler counts by); roles no policy binds
  are admitted but count toward no requiredRoles;
- separation of duties refuses everyone who owned the technology since its current level
  was reached (domain.owners), not only spec.owner;
- a review's technology, fromLevel and toLevel are fixed once it carries an approval: an
  approval is given to one transition and may not be moved to another;
- an Applied or Rejected review is a record: its spec cannot change (metadata can);
- an InferenceService that is stopped (`serving.kserve.io/stop: "true"`) serves nothing
  and is always admitted, so stopping is never refused; an update that changes neither the
  spec, the claim nor the stop annotation of a serving InferenceService is admitted with a
  warning when the gate is closed (KServe's own metadata writes), since admission cannot
  stop what already runs: the operator's governance does that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mltrl_operator.api.review import ContentDigest, Decision, LevelReviewSpec, ReviewType
from mltrl_operator.api.technology import MLTechnologySpec
from mltrl_operator.domain.approvals import (
    holds_role,
    make_stamp,
    policy_names,
    review_type,
    role_bound,
)
from mltrl_operator.domain.errors import FieldError
from mltrl_operator.domain.gating import GateAction, GateDecision, foreign_inference_service_action
from mltrl_operator.domain.policy import EffectivePolicy
from mltrl_operator.domain.serving import STOP_ANNOTATION, TECHNOLOGY_LABEL
from mltrl_operator.domain.validation import (
    Key,
    component_key,
    display_key,
    validate_components,
    validate_review_spec,
    validate_technology,
)

JsonPatch = list[dict[str, Any]]

FORBIDDEN = "Forbidden"
INVALID = "Invalid"
BAD_REQUEST = "BadRequest"
_CODES = {FORBIDDEN: 403, INVALID: 422, BAD_REQUEST: 400}

TERMINAL_REVIEW_PHASES = frozenset({"Applied", "Rejected"})
CLAIM_FIELD = f"metadata.labels[{TECHNOLOGY_LABEL}]"
MODEL_FIELD = "spec.predictor.model.storageUri"
FIXED_ONCE_APPROVED = ("technology", "fromLevel", "toLevel", "type", "model")


@dataclass(frozen=True)
class Requester:
    """Who sent the request, as the API server authenticated them."""

    username: str
    groups: frozenset[str] = frozenset()

    def in_any(self, groups: Iterable[str]) -> bool:
        return not self.groups.isdisjoint(groups)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    message: str = ""
    reason: str = FORBIDDEN
    """Forbidden (403), Invalid (422) or BadRequest (400) when refused."""
    warnings: tuple[str, ...] = ()
    patch: JsonPatch = field(default_factory=list)
    """JSON Patch operations a mutating webhook asks for (empty: none)."""

    @property
    def code(self) -> int:
        return _CODES.get(self.reason, 400)


def allow(*warnings: str, patch: JsonPatch | None = None) -> Verdict:
    return Verdict(True, warnings=tuple(warnings), patch=list(patch or []))


def forbid(message: str) -> Verdict:
    return Verdict(False, message, FORBIDDEN)


def refuse(errors: Sequence[FieldError], reason: str = INVALID) -> Verdict:
    """Every error in the API server's style, `path: Type: message`; an error that names
    no type of its own takes the refusal's (Invalid or Forbidden)."""
    typed = [error if error.type else replace(error, type=reason) for error in errors]
    return Verdict(False, "; ".join(str(error) for error in typed), reason)


def policy_label(policy: EffectivePolicy) -> str:
    if not policy.sources:
        return "the built-in default policy"
    label = "policy" if len(policy.sources) == 1 else "policies"
    return f"{label} {', '.join(policy.sources)}"


# --- LevelReview approvals ---------------------------------------------------------------


def approvals_as_sent(spec: Mapping[str, Any] | None) -> list[Any]:
    """`spec.approvals` of an object as sent (a review's or a waiver's), [] if not a list."""
    value = (spec or {}).get("approvals")
    return list(value) if isinstance(value, list) else []


def _reviewer(approval: Any) -> str:
    if isinstance(approval, Mapping) and isinstance(approval.get("reviewer"), str):
        return str(approval["reviewer"])
    return ""


def _by_reviewer(approvals: Sequence[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for approval in approvals:
        found.setdefault(_reviewer(approval), approval)
    found.pop("", None)
    return found


def _untouched(approval: Any, old: Mapping[str, Any]) -> bool:
    reviewer = _reviewer(approval)
    return bool(reviewer) and old.get(reviewer) == approval


def stamp_approvals(
    old_spec: Mapping[str, Any] | None,
    new_spec: Mapping[str, Any] | None,
    requester: Requester,
    *,
    trusted: bool,
    now: str,
    content: ContentDigest | None = None,
) -> JsonPatch:
    """JSON Patch operations that bind new or changed approvals to the requester.

    An empty reviewer becomes the requester. The requester's own new or changed approvals
    get the time now, whatever the request said; a trusted requester's approvals for
    others keep a time they carry and get now otherwise. With `content` (what the review
    and the technology's model hold now), every new or changed approval gets the stamp
    `approvedBy`, overwriting whatever the request carried.
    """
    old = _by_reviewer(approvals_as_sent(old_spec))
    patch: JsonPatch = []
    for index, approval in enumerate(approvals_as_sent(new_spec)):
        if not isinstance(approval, Mapping) or _untouched(approval, old):
            continue
        path = f"/spec/approvals/{index}"
        reviewer = _reviewer(approval)
        if not reviewer:
            reviewer = requester.username
            patch.append({"op": "add", "path": f"{path}/reviewer", "value": reviewer})
        stamp = reviewer == requester.username or (trusted and not approval.get("time"))
        if stamp and approval.get("time") != now:
            patch.append({"op": "add", "path": f"{path}/time", "value": now})
        if content is not None:
            patch.append({
                "op": "add", "path": f"{path}/approvedBy",
                "value": make_stamp(requester.username, requester.groups, now, content),
            })
    return patch


@dataclass(frozen=True)
class ReviewFacts:
    """What the review rules need from the cluster."""

    owner: str | None
    """The technology's spec.owner; None when the technology does not exist (yet)."""
    policy: EffectivePolicy
    owners: frozenset[str] = frozenset()
    """Everyone who owned the technology since its current level was reached."""


def _approval_errors(
    spec: LevelReviewSpec,
    wire_approvals: Sequence[Any],
    old_approvals: Sequence[Any],
    requester: Requester,
    trusted: bool,
    facts: ReviewFacts,
) -> list[FieldError]:
    errors: list[FieldError] = []
    old = _by_reviewer(old_approvals)
    new = _by_reviewer(wire_approvals)
    me = requester.username
    promotion = review_type(spec) is not ReviewType.SWITCHBACK
    owners = facts.owners | ({facts.owner} if facts.owner else set())
    for index, (approval, wire) in enumerate(zip(spec.approvals, wire_approvals, strict=False)):
        if _untouched(wire, old):
            continue
        path = f"spec.approvals[{index}]"
        if approval.reviewer != me and not trusted:
            errors.append(
                FieldError(
                    f"{path}.reviewer",
                    f"{me} may not record an approval as '{approval.reviewer}': reviewers "
                    "approve as themselves (leave reviewer empty and it is filled in)",
                    FORBIDDEN,
                )
            )
        stamp = approval.approved_by
        if stamp is not None and stamp.username != me:
            errors.append(
                FieldError(
                    f"{path}.approvedBy",
                    "is written by the admission webhook from the authenticated user; "
                    f"{me} may not set it to {stamp.username}",
                    FORBIDDEN,
                )
            )
        owner = next((who for who in (approval.reviewer, me) if who in owners), None)
        if (
            promotion
            and facts.policy.separation_of_duties
            and owner is not None
            and approval.decision is Decision.APPROVE
        ):
            verb = "owns" if owner == facts.owner else "owned"
            errors.append(
                FieldError(
                    path,
                    f"{owner} {verb} mltech {spec.technology} and may not approve its "
                    f"promotion (separation of duties, {policy_label(facts.policy)}: it "
                    "covers every owner since the current level was reached)",
                    FORBIDDEN,
                )
            )
        if (
            approval.decision is Decision.APPROVE
            and role_bound(facts.policy, approval.role)
            and not holds_role(facts.policy, approval.role, me, requester.groups)
        ):
            errors.append(
                FieldError(
                    f"{path}.role",
                    f"{me} does not hold role {approval.role}: {policy_names(facts.policy)} "
                    "binds it to other users and groups (spec.reviewers)",
                    FORBIDDEN,
                )
            )
    if not trusted:
        for reviewer, approval in old.items():
            if reviewer != me and new.get(reviewer) != approval:
                done = "changed" if reviewer in new else "removed"
                errors.append(
                    FieldError(
                        "spec.approvals",
                        f"{me} may not change or remove {reviewer}'s approval ({done})",
                    )
                )
    return errors


def review_verdict(
    spec: LevelReviewSpec,
    wire_spec: Mapping[str, Any],
    old_wire_spec: Mapping[str, Any] | None,
    old_phase: str | None,
    requester: Requester,
    *,
    trusted: bool,
    facts: ReviewFacts,
) -> Verdict:
    """The validating rules for a LevelReview create (no old spec) or update."""
    if old_wire_spec is not None and old_phase in TERMINAL_REVIEW_PHASES:
        if dict(old_wire_spec) != dict(wire_spec):
            return forbid(
                f"spec: Forbidden: the review is {old_phase}: it records a decision already "
                "taken and its spec cannot change; open a new review"
            )
        return allow()
    if old_wire_spec is not None and approvals_as_sent(old_wire_spec):
        moved = [
            FieldError(
                f"spec.{name}",
                f"cannot change once the review carries approvals (was "
                f"{old_wire_spec.get(name)!r}); open a new review",
            )
            for name in FIXED_ONCE_APPROVED
            if old_wire_spec.get(name) != wire_spec.get(name)
        ]
        if moved:
            return refuse(moved, FORBIDDEN)
    errors = validate_review_spec(spec)
    if errors:
        return refuse(errors)
    problems = _approval_errors(
        spec,
        approvals_as_sent(wire_spec),
        approvals_as_sent(old_wire_spec),
        requester,
        trusted,
        facts,
    )
    return refuse(problems, FORBIDDEN) if problems else allow()


# --- InferenceService serving gate ------------------------------------------------------


def _metadata(body: Mapping[str, Any] | None) -> Mapping[str, Any]:
    value = (body or {}).get("metadata")
    return value if isinstance(value, Mapping) else {}


def claimed_technology(body: Mapping[str, Any] | None) -> str | None:
    labels = _metadata(body).get("labels") or {}
    claimed = labels.get(TECHNOLOGY_LABEL) if isinstance(labels, Mapping) else None
    return str(claimed) if claimed else None


def is_stopped(body: Mapping[str, Any] | None) -> bool:
    annotations = _metadata(body).get("annotations") or {}
    return isinstance(annotations, Mapping) and annotations.get(STOP_ANNOTATION) == "true"


def serving_unchanged(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether an update leaves what is served as it was: same spec, claim and stop state."""
    return (
        old is not None
        and not is_stopped(old)
        and old.get("spec") == new.get("spec")
        and claimed_technology(old) == claimed_technology(new)
    )


def inference_service_verdict(
    body: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    decision: GateDecision | None,
    policy: EffectivePolicy,
    *,
    claim: tuple[GateAction, str] | None = None,
) -> Verdict:
    """`decision` is the claimed technology's gate; None when it claims none or the
    technology does not exist. `claim`, when given, is what domain.claims decided for a
    foreign InferenceService (the gate plus the model it serves)."""
    metadata = _metadata(body)
    name = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}".lstrip("/")
    if is_stopped(body) or metadata.get("deletionTimestamp"):
        return allow()
    action, message = claim or foreign_inference_service_action(
        claimed_technology(body), decision, policy
    )
    if action is GateAction.ALLOW:
        return allow()
    if action is GateAction.WARN:
        return allow(f"InferenceService {name}: {message}")
    if serving_unchanged(old, body):
        return allow(
            f"InferenceService {name} serves below the gate: {message}; this update changes "
            "nothing it serves, and the operator stops it"
        )
    # The field at fault: the claim (none, a missing technology, a level below the gate),
    # or, when the claimed technology passes the gate, the model served.
    passes = decision is not None and decision.allowed and claimed_technology(body) is not None
    field = MODEL_FIELD if passes else CLAIM_FIELD
    return forbid(f"{field}: Forbidden: InferenceService {name} may not serve: {message}")


# --- MLTechnology ------------------------------------------------------------------------


def technology_errors(
    spec: MLTechnologySpec,
    *,
    name: str,
    namespace: str,
    edges: Mapping[Key, Sequence[Key]],
    existing: frozenset[Key],
    old_components: frozenset[Key] = frozenset(),
) -> list[FieldError]:
    """The reconciler's own rules, plus: a newly listed component must exist.

    `edges` and `existing` describe the other technologies; components already listed
    before the update may have gone since, which the ComponentsReady condition reports.
    """
    errors = validate_technology(spec, name=name, namespace=namespace)
    for index, ref in enumerate(spec.components):
        key = component_key(ref, namespace)
        if key != (namespace, name) and key not in existing and key not in old_components:
            errors.append(
                FieldError(
                    f"spec.components[{index}]",
                    f"mltech {display_key(key, namespace)} does not exist",
                )
            )
    errors += validate_components(spec, name=name, namespace=namespace, edges=edges)
    return errors
