"""Writing to reviews as the user: a skeleton, one piece of evidence, one's own decision.

Every write is a JSON patch that touches one list entry and guards it with `test` ops, so
a concurrent writer is never overwritten: a missing list is created only if the object is
still the version read; one's own entry is replaced only if it is still one's own; any
other entry is never touched. A failed guard re-reads and tries again."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mltrl_operator.api.review import (
    Decision,
    EvidenceKind,
    LevelReviewSpec,
    ReviewedModel,
    ReviewPhase,
    ReviewType,
)
from mltrl_operator.api.technology import MLTechnologyStatus, SwitchbackType
from mltrl_operator.cli.kubectl_mltrl.session import (
    Body,
    PluginError,
    PolicyUnreadable,
    Session,
    explain,
    meta,
    review_spec,
    review_status,
    tech_spec,
    tech_status,
)
from mltrl_operator.domain.levels import describe_level
from mltrl_operator.domain.policy import EffectivePolicy
from mltrl_operator.domain.progress import (
    current_level,
    evaluate,
    evidence_entry,
    required_rule,
    skeleton_spec,
)
from mltrl_operator.domain.requirements import describe_requirement
from mltrl_operator.domain.waivers import waiver_facts
from mltrl_operator.k8s.errors import ApiError, Conflict
from mltrl_operator.k8s.resources import REVIEWS

ATTEMPTS = 5
# The evidence the policy asked for when the skeleton was made, in the object itself so
# `kubectl get -o yaml` shows what to fill. A hint for people and for `evidence` (the kind
# of each item); the operator decides from the policy, and status.unmet is the live answer.
REQUIRED_EVIDENCE = "mltrl.dev/required-evidence"
RECORDS = frozenset({ReviewPhase.APPLIED, ReviewPhase.REJECTED})


def upsert_ops(body: Body, field: str, key: str, key_value: str, entry: Body) -> list[Body]:
    """A JSON patch that sets the entry of spec.<field> whose <key> is key_value and touches
    nothing else. Pure, so its guards are tested without a server."""
    spec = body.get("spec") or {}
    items = spec.get(field)
    path = f"/spec/{field}"
    if not items:
        version = meta(body).get("resourceVersion")
        guard = [{"op": "test", "path": "/metadata/resourceVersion", "value": version}]
        if items is None:
            return [*guard, {"op": "add", "path": path, "value": [entry]}]
        return [*guard, {"op": "test", "path": path, "value": []},
                {"op": "add", "path": f"{path}/-", "value": entry}]
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get(key) == key_value:
            return [
                {"op": "test", "path": f"{path}/{index}/{key}", "value": key_value},
                {"op": "replace", "path": f"{path}/{index}", "value": entry},
            ]
    return [
        {"op": "test", "path": f"{path}/{len(items) - 1}", "value": items[-1]},
        {"op": "add", "path": f"{path}/-", "value": entry},
    ]


def _guard_failed(error: ApiError) -> bool:
    text = str(error.body.get("message") or "").lower()
    return isinstance(error, Conflict) or "test" in text or "resourceversion" in text


async def _write_entry(session: Session, name: str, field: str, key: str, key_value: str,
                       entry: Body) -> Body:
    namespace = session.namespace
    for _ in range(ATTEMPTS):
        body = await session.review(name)
        _refuse_records(body, name, namespace)
        ops = upsert_ops(body, field, key, key_value, entry)
        try:
            return await session.json_patch(REVIEWS, namespace, name, ops)
        except ApiError as error:
            if error.status in (409, 422) and _guard_failed(error):
                continue  # someone wrote in between: read again
            raise PluginError(
                f'levelreview "{name}" in namespace "{namespace}" refused the change: '
                f"{explain(error)}"
            ) from None
    raise PluginError(
        f'levelreview "{name}" in namespace "{namespace}" kept changing while writing; '
        "try again"
    )


def _refuse_records(body: Body, name: str, namespace: str) -> None:
    phase = review_status(body).phase
    if phase in RECORDS:
        raise PluginError(
            f'levelreview "{name}" in namespace "{namespace}" is {phase}: it is a record and '
            f"cannot change; open a new review with kubectl mltrl review new "
            f"{(body.get('spec') or {}).get('technology')} -n {namespace}"
        )


async def evidence(session: Session, name: str, evidence_name: str, *, passed: bool | None,
                   value: float | None, uri: str | None, kind: str | None,
                   description: str | None) -> Body:
    body = await session.review(name)
    spec = review_spec(body)
    if spec is None:
        raise PluginError(f'levelreview "{name}" cannot be read; fix it with kubectl edit')
    presented = {e.name: e for e in spec.evidence}
    chosen: EvidenceKind | None = EvidenceKind(kind) if kind else None
    if chosen is None and evidence_name in presented:
        chosen = presented[evidence_name].kind
    if chosen is None and spec.to_level > spec.from_level:
        policy: EffectivePolicy | None
        try:
            policy = await session.policy_for(session.namespace)
        except PolicyUnreadable as error:
            hinted = _required_hint(body).get(evidence_name)
            if hinted is None:
                raise PluginError(
                    f"{error}; without it the kind of '{evidence_name}' is unknown: give "
                    "--kind check, metric or document"
                ) from None
            policy, chosen = None, hinted
        required = None if policy is None else evidence_entry(
            required_rule(spec.technology, spec.from_level, spec.to_level, policy), evidence_name
        )
        chosen = required.kind if required else chosen
        description = description or (required.description if required else None)
    if chosen is None:
        chosen = (EvidenceKind.CHECK if passed is not None
                  else EvidenceKind.METRIC if value is not None else EvidenceKind.DOCUMENT)
    entry: Body = {"name": evidence_name, "kind": str(chosen)}
    previous = presented.get(evidence_name)
    if previous is not None and previous.kind is chosen:
        entry = previous.model_dump(by_alias=True, exclude_none=True, mode="json")
    for field, given in (("passed", passed), ("value", value), ("uri", uri),
                         ("description", description)):
        if given is not None:
            entry[field] = given
    needed = {EvidenceKind.CHECK: "passed", EvidenceKind.METRIC: "value",
              EvidenceKind.DOCUMENT: "uri"}[chosen]
    if needed not in entry:
        flag = {"passed": "--passed or --failed", "value": "--value V", "uri": "--uri U"}[needed]
        raise PluginError(f"evidence '{evidence_name}' is a {chosen}: give {flag}")
    return await _write_entry(session, name, "evidence", "name", evidence_name, entry)


async def decide(session: Session, name: str, *, decision: Decision, role: str,
                 comment: str | None) -> Body:
    me = await session.whoami()
    if me is None:
        raise PluginError(
            "cannot tell who you are (the API server does not answer SelfSubjectReviews); "
            "record the decision with kubectl edit"
        )
    entry: Body = {"reviewer": me, "role": role, "decision": str(decision)}
    if comment:
        entry["comment"] = comment
    return await _write_entry(session, name, "approvals", "reviewer", me, entry)


DEBRIEF_FIELDS = ("accomplished", "punted", "learned", "technicalDebt")


async def debrief(session: Session, name: str, answers: dict[str, str]) -> Body:
    """The stage debrief's four answers; a merge patch of just the answers given, so an
    answer someone else wrote meanwhile stays."""
    given = {key: value for key, value in answers.items() if value}
    if not given:
        raise PluginError("give at least one of --accomplished, --punted, --learned, "
                          "--technical-debt")
    body = await session.review(name)
    _refuse_records(body, name, session.namespace)
    try:
        return await session.client.request(
            "PATCH", REVIEWS.path(session.namespace, name),
            body={"spec": {"debrief": given}}, content_type="application/merge-patch+json",
            params={"fieldManager": "kubectl-mltrl"},
        )
    except ApiError as error:
        raise PluginError(
            f'levelreview "{name}" in namespace "{session.namespace}" refused the debrief: '
            f"{explain(error)}"
        ) from None


def _skeleton_name(technology: str, review: LevelReviewSpec, taken: set[str]) -> str:
    base = f"{technology}-to-{review.to_level}"
    if review.type is ReviewType.CHANGE and review.model is not None:
        version = "".join(c if c.isalnum() or c in ".-" else "-" for c in review.model.version)
        base = f"{technology}-change-{version.lower().strip('.-')}"
    elif review.type is ReviewType.RECERTIFY:
        base = f"{technology}-recertify-{review.to_level}"
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


async def new_review(session: Session, technology: str, to_level: int | None,
                     review_type: str, reason: str | None, name: str | None,
                     dry_run: bool, switchback: str = "review") -> tuple[Body, list[str]]:
    """Creates the skeleton; returns it with the requirements it must meet, in the words of
    status.unmet. Evidence is left for `kubectl mltrl evidence` to fill: an entry without
    its result would make the review Invalid, not Pending."""
    namespace = session.namespace
    body = await session.technology(technology)
    spec, status = tech_spec(body), tech_status(body)
    level = current_level(spec, status)
    keeps = review_type == "recertify" or (review_type == "change" and to_level is None)
    if keeps and to_level is not None and to_level != level:
        raise PluginError(f"--type {review_type} keeps {technology} at level {level}: leave "
                          "out --to")
    target = level if keeps else to_level if to_level is not None else level + 1
    if review_type in ("change", "switchback") and not keeps and target >= level:
        raise PluginError(f"--type {review_type} moves {technology} down: give --to below "
                          f"{level}")
    review = skeleton_spec(technology, level, target)
    if keeps:
        review = _level_keeping(review, review_type, technology, status)
    elif target < level:
        review = review.model_copy(update={"reason": reason or None,
                                           "switchback_type": SwitchbackType(switchback)})
    try:
        policy = await session.policy_for(namespace)
    except PolicyUnreadable:
        # The operator will judge the review; say what it published about the next level.
        return await _create(session, technology, target, name, dry_run, review,
                             _published_needs(status, target))
    # The technology's waivers in force take their requirements off, as the operator will.
    waivers = [facts for body in await session.waivers(namespace) or []
               if (facts := waiver_facts(body)) is not None]
    evaluation = evaluate("", review, technology, spec, status, policy, waivers,
                          datetime.now(UTC))
    if evaluation.errors:
        problems = "; ".join(str(e) for e in evaluation.errors)
        raise PluginError(f"a review of {technology} from level {level} to {target} would be "
                          f"invalid: {problems}")
    lines = list(evaluation.unmet)
    required: list[Body] = []
    if target >= level:
        rule = required_rule(technology, level, target, policy)
        # Evidence a waiver in force takes off is not asked for (the operator will not).
        waived = {item.removeprefix("evidence ") for w in evaluation.waivers
                  for item in w.waived if item.startswith("evidence ")}
        asked = [r for r in rule.evidence if r.name not in waived]
        required = [{"name": r.name, "kind": str(r.kind)} for r in asked]
        lines = [
            f"{describe_requirement(r)}: kubectl mltrl evidence REVIEW {r.name} "
            + {EvidenceKind.CHECK: "--passed --uri URL", EvidenceKind.METRIC: "--value V",
               EvidenceKind.DOCUMENT: "--uri URL"}[r.kind]
            for r in asked
        ] + [u for u in evaluation.unmet if not u.startswith("missing ")] + [
            f"waived: {', '.join(w.waived)} (waiver {w.name} until {w.expires_at})"
            for w in evaluation.waivers
        ]
    return await _create(session, technology, target, name, dry_run, review, lines, required)


def _level_keeping(review: LevelReviewSpec, review_type: str, technology: str,
                   status: MLTechnologyStatus | None) -> LevelReviewSpec:
    """A change review names the technology's pending model; a re-certification names
    none. Both keep the level (domain.review_types)."""
    if review_type == "recertify":
        return review.model_copy(update={"type": ReviewType.RECERTIFY})
    pending = status.pending_model if status else None
    if pending is None:
        raise PluginError(f"{technology} has no model waiting for a change review "
                          "(status.pendingModel is empty)")
    return review.model_copy(update={
        "type": ReviewType.CHANGE,
        "model": ReviewedModel(version=pending.version, storage_uri=pending.storage_uri),
    })


def _required_hint(body: Body) -> dict[str, EvidenceKind]:
    raw = (meta(body).get("annotations") or {}).get(REQUIRED_EVIDENCE)
    try:
        items = json.loads(raw) if raw else []
        return {str(i["name"]): EvidenceKind(i["kind"]) for i in items}
    except (ValueError, TypeError, KeyError):
        return {}


def _published_needs(status: MLTechnologyStatus | None, target: int) -> list[str]:
    if status and status.next_level and status.next_level.level == target:
        return list(status.next_level.requirements)
    return ["(the policy is not readable with your credentials: the review's status.unmet "
            "will say what it needs)"]


async def _create(session: Session, technology: str, target: int, name: str | None,
                  dry_run: bool, review: LevelReviewSpec, lines: list[str],
                  required: list[Body] | None = None) -> tuple[Body, list[str]]:
    namespace = session.namespace
    taken = {str(meta(r).get("name")) for r in await session.reviews(namespace)}
    review_name = name or _skeleton_name(technology, review, taken)
    manifest: Body = {
        "metadata": {"name": review_name, "namespace": namespace,
                     "labels": {"mltrl.dev/technology": technology}},
        "spec": review.to_wire(),
    }
    if required:
        manifest["metadata"]["annotations"] = {
            REQUIRED_EVIDENCE: json.dumps(required, separators=(",", ":"))
        }
    manifest["spec"]["evidence"] = []
    manifest["spec"]["approvals"] = []
    lines = [line.replace("REVIEW", review_name) for line in lines]
    if dry_run:
        return {"apiVersion": REVIEWS.api_version, "kind": REVIEWS.kind, **manifest}, lines
    try:
        created = await session.create(REVIEWS, namespace, manifest)
    except ApiError as error:
        raise PluginError(
            f'cannot create levelreview "{review_name}" in namespace "{namespace}": '
            f"{explain(error)}"
        ) from None
    return created, lines


def describe_target(level: int) -> str:
    return describe_level(level)


def summary(body: Body) -> dict[str, Any]:
    status = review_status(body)
    return {"name": meta(body).get("name"), "phase": str(status.phase or "Unevaluated"),
            "unmet": list(status.unmet)}
