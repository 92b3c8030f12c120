"""What each command shows, as plain data: gathered from the cluster, decided by the domain.

Every view is a dict (what `-o json|yaml` prints); the renderers turn them into tables,
words, markdown or HTML. The CLI and the dashboard share these functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from mltrl_operator.api.audit import AuditEntryKind
from mltrl_operator.api.review import ReviewPhase
from mltrl_operator.api.technology import (
    Debrief,
    LevelTransition,
    MLTechnologySpec,
    MLTechnologyStatus,
    TransitionKind,
)
from mltrl_operator.cli.kubectl_mltrl.session import (
    Body,
    PluginError,
    PolicyUnreadable,
    Session,
    explain,
    meta,
    named_reviews,
    review_records,
    review_spec,
    review_status,
    tech_spec,
    tech_status,
    technology_records,
)
from mltrl_operator.domain.audit import Verification, verify
from mltrl_operator.domain.card import Card, CardError, build_card
from mltrl_operator.domain.levels import level_name, phase_of
from mltrl_operator.domain.maturity import assess
from mltrl_operator.domain.owners import stored_owners
from mltrl_operator.domain.policy import EffectivePolicy, NamedPolicy, matching_policies
from mltrl_operator.domain.progress import (
    NextStep,
    PublishedReview,
    current_level,
    next_step,
    published_step,
)
from mltrl_operator.domain.waivers import (
    EffectiveWaiverPolicy,
    WaiverFacts,
    waiver_applies,
    waiver_facts,
)
from mltrl_operator.k8s.audit_store import StoredRecord, read_audit_record
from mltrl_operator.k8s.errors import ApiError

View = dict[str, Any]


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(value: str | None, now: datetime) -> str:
    """kubectl's compact age: 45s, 12m, 5h, 3d."""
    then = _parse_time(value)
    if then is None:
        return "<unknown>"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _at_level_since(status: MLTechnologyStatus | None) -> str | None:
    if status is None or not status.history:
        return None
    return status.history[-1].at


class PolicyCache:
    """One policy read per command; the effective policy per namespace, computed once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._policies: list[NamedPolicy] | None = None
        self._effective: dict[str, EffectivePolicy | None] = {}
        self.unreadable: str | None = None

    async def all(self) -> list[NamedPolicy]:
        if self._policies is None:
            self._policies = await self.session.policies()
        return self._policies

    async def for_namespace(self, namespace: str) -> EffectivePolicy | None:
        """None when the user may not read the policy: callers fall back to what the
        operator published."""
        if namespace not in self._effective:
            try:
                self._effective[namespace] = await self.session.policy_for(
                    namespace, await self.all()
                )
            except PolicyUnreadable as error:
                self.unreadable = str(error)
                self._effective[namespace] = None
        return self._effective[namespace]

    async def governed(self, namespaces: Sequence[str]) -> frozenset[str] | None:
        try:
            policies = await self.all()
            covered = set()
            for namespace in namespaces:
                labels = await self.session.namespace_labels(namespace)
                if matching_policies(policies, labels):
                    covered.add(namespace)
        except PolicyUnreadable as error:
            self.unreadable = str(error)
            return None
        return frozenset(covered)


def _published(bodies: list[Body], technology: str) -> list[PublishedReview]:
    found = []
    for body in bodies:
        spec, status = review_spec(body), review_status(body)
        if spec is None or spec.technology != technology or not _open(status.phase):
            continue
        found.append(PublishedReview(str(meta(body).get("name")), spec.from_level,
                                     spec.to_level, tuple(status.unmet)))
    return found


def step_for(name: str, spec: MLTechnologySpec, status: MLTechnologyStatus | None,
             review_bodies: list[Body], policy: EffectivePolicy | None,
             waiver_bodies: list[Body] | None = None, now: datetime | None = None,
             ) -> NextStep | None:
    """The next step, decided here from the policy (and the technology's waivers, judged
    at `now`) when both can be read, else as the operator published it; both come from
    evaluate_review."""
    if policy is None or waiver_bodies is None:
        return published_step(spec, status, _published(review_bodies, name))
    return next_step(name, spec, status, named_reviews(review_bodies), policy,
                     _waiver_facts(waiver_bodies, name), now)


def _waiver_facts(bodies: list[Body], technology: str) -> list[WaiverFacts]:
    found = (waiver_facts(body) for body in bodies
             if (body.get("spec") or {}).get("technology") == technology)
    return [facts for facts in found if facts is not None]


def waiver_rows(body: Body, bodies: list[Body] | None, policy: EffectivePolicy | None,
                now: datetime) -> list[View]:
    """Each of the technology's waivers and whether it counts now: the operator's one
    decision (domain.waivers.waiver_applies)."""
    name = str(meta(body).get("name"))
    rows = []
    for waiver in bodies or []:
        facts = waiver_facts(waiver)
        if facts is None or facts.spec.technology != name:
            continue
        decision = waiver_applies(
            facts.spec, technology=name, created_at=facts.created_at,
            policy=policy.waivers if policy else EffectiveWaiverPolicy(),
            owners=stored_owners(body), now=now,
        ) if policy is not None else None
        rows.append({
            "name": facts.name,
            "waives": facts.spec.waives.to_wire(),
            "expiresAt": facts.spec.expires_at,
            "counts": decision.applies if decision else
            bool((waiver.get("status") or {}).get("active")),
            "why": decision.reason if decision else
            (waiver.get("status") or {}).get("message") or "not evaluated yet",
        })
    return rows


def _by_namespace(bodies: list[Body]) -> dict[str, list[Body]]:
    grouped: dict[str, list[Body]] = {}
    for body in bodies:
        grouped.setdefault(str(meta(body).get("namespace") or ""), []).append(body)
    return grouped


async def portfolio(session: Session, now: datetime, sort_by: str = "namespace") -> View:
    techs = await session.technologies(session.scope)
    reviews = _by_namespace(await session.reviews(session.scope))
    listed = await session.waivers(session.scope)
    waivers = None if listed is None else _by_namespace(listed)
    policies = PolicyCache(session)
    rows = []
    for body in techs:
        m = meta(body)
        namespace, name = str(m.get("namespace") or ""), str(m.get("name"))
        spec, status = tech_spec(body), tech_status(body)
        level = current_level(spec, status)
        step = step_for(name, spec, status, reviews.get(namespace, []),
                        await policies.for_namespace(namespace),
                        None if waivers is None else waivers.get(namespace, []), now)
        serving = status.serving if status else None
        rows.append({
            "namespace": namespace,
            "name": name,
            "level": level,
            "levelName": level_name(level),
            "phase": str(phase_of(level)),
            "effectiveLevel": status.effective_level if status else None,
            "serving": str(serving.state) if serving else "Unknown",
            "nextLevel": step.level if step else None,
            "needs": len(step.unmet) if step else 0,
            "needsList": list(step.unmet) if step else [],
            "openReview": step.review if step else None,
            "owner": spec.owner,
            "team": spec.team or "",
            "atLevelSince": _at_level_since(status),
            "ageAtLevel": age(_at_level_since(status), now),
            "targetLevel": spec.target_level,
        })
    keys = {
        "namespace": lambda r: (r["namespace"], r["name"]),
        "name": lambda r: (r["name"], r["namespace"]),
        "level": lambda r: (-r["level"], r["namespace"], r["name"]),
        "phase": lambda r: (r["level"], r["namespace"], r["name"]),
        "needs": lambda r: (-r["needs"], r["namespace"], r["name"]),
        "team": lambda r: (r["team"], r["name"]),
        "owner": lambda r: (r["owner"], r["name"]),
        "age": lambda r: (r["atLevelSince"] or "", r["name"]),
    }
    if sort_by not in keys:
        raise PluginError(f"--sort-by must be one of {', '.join(keys)}, not {sort_by!r}")
    rows.sort(key=keys[sort_by])
    return {"kind": "Portfolio", "namespace": session.scope, "items": rows,
            "needsFrom": "operator status" if policies.unreadable else "policy",
            "warning": policies.unreadable}


def _open(phase: ReviewPhase | None) -> bool:
    return phase in (None, ReviewPhase.PENDING, ReviewPhase.APPROVED)


async def technology_status(session: Session, name: str, now: datetime) -> View:
    namespace = session.namespace
    body = await session.technology(name, namespace)
    spec, status = tech_spec(body), tech_status(body)
    review_bodies = [
        r for r in await session.reviews(namespace)
        if (r.get("spec") or {}).get("technology") == name
    ]
    policies = PolicyCache(session)
    policy = await policies.for_namespace(namespace)
    waiver_bodies = await session.waivers(namespace)
    step = step_for(name, spec, status, review_bodies, policy, waiver_bodies, now)
    level = current_level(spec, status)
    serving = status.serving if status else None
    conditions = {c.type: c for c in (status.conditions if status else [])}
    allowed = conditions.get("ServingAllowed")
    reviews = []
    for r in review_bodies:
        rs, rst = review_spec(r), review_status(r)
        reviews.append({
            "name": meta(r).get("name"),
            "from": rs.from_level if rs else None,
            "to": rs.to_level if rs else None,
            "phase": str(rst.phase) if rst.phase else "Unevaluated",
            "unmet": list(rst.unmet),
            "approvedBy": list(rst.approved_by),
            "message": rst.message,
            "open": _open(rst.phase),
        })
    incidents = [
        i.model_dump(by_alias=True, exclude_none=True, mode="json")
        for i in (status.incidents if status else [])
    ]
    return {
        "kind": "TechnologyStatus",
        "namespace": namespace,
        "name": name,
        "owner": spec.owner,
        "team": spec.team,
        "level": level,
        "levelName": level_name(level),
        "phase": str(phase_of(level)),
        "effectiveLevel": status.effective_level if status else None,
        "targetLevel": spec.target_level,
        "atLevelSince": _at_level_since(status),
        "ageAtLevel": age(_at_level_since(status), now),
        "serving": {
            "state": str(serving.state) if serving else "Unknown",
            "allowed": serving.allowed if serving else False,
            "requiredLevel": serving.required_level if serving else None,
            "why": allowed.message if allowed else "the operator has not evaluated it yet",
            "inferenceService": serving.inference_service if serving else None,
            "modelVersion": serving.model_version if serving else None,
            "rollback": serving.rollback.model_dump(by_alias=True, mode="json")
            if serving and serving.rollback else None,
            "waiver": serving.waiver.to_wire() if serving and serving.waiver else None,
        },
        "next": None if step is None else {
            "level": step.level,
            "levelName": level_name(step.level),
            "review": step.review,
            "unmet": list(step.unmet),
            "waived": [w.to_wire() for w in step.waived],
        },
        "reviews": reviews,
        "incidents": incidents,
        "openIncidents": [i for i in incidents if i.get("state") == "Pending"],
        "needsFrom": "operator status" if policies.unreadable else "policy",
        "warning": policies.unreadable,
        "waivers": waiver_rows(body, waiver_bodies, policy, now),
        "expiry": _certification(conditions.get("Certified")),
        "model": {
            "approved": status.approved_model.version if status and status.approved_model
            else None,
            "pending": status.pending_model.model_dump(by_alias=True, mode="json")
            if status and status.pending_model else None,
        },
        "notes": [
            *(["waivers cannot be read with these credentials: the next step is as the "
               "operator published it"] if waiver_bodies is None else []),
        ],
    }


AUDITOR_ROLE = "mltrl-auditor"
AUDIT_SOURCE = "audit record"
STATUS_SOURCE = "status.history"


def _cause(review: str | None, alert: str | None) -> str:
    """What made the change: the review that was applied or the alert that fired."""
    if review:
        return f"review {review}"
    if alert:
        return f"alert {alert}"
    return ""


def audit_items(record: StoredRecord) -> list[View]:
    """The record's entries, oldest first, in the shape every history view shares."""
    items = []
    for entry in record.entries:
        wire = entry.to_wire()
        items.append({
            "at": entry.time,
            "from": entry.from_level,
            "to": entry.to_level,
            "kind": str(entry.kind),
            "switchbackType": entry.switchback_type,
            "cause": _cause(entry.review, entry.alert),
            "review": entry.review,
            "alert": entry.alert,
            "by": list(entry.by),
            "reason": entry.reason,
            **{key: wire[key] for key in ("sequence", "technologyUid", "reviewType", "waiver",
                                          "model", "replacedModel", "evidence", "approvals",
                                          "details")
               if wire.get(key) not in (None, [], {})},
        })
    return items


def record_verification(record: StoredRecord) -> Verification:
    """The domain's verify over the chunks that could be read, with a finding for each
    chunk stored in a shape the model refuses (as `mltrl audit verify` reports them)."""
    checked = verify(record.chunks, namespace=record.namespace, technology=record.technology)
    if not record.parsed.unreadable:
        return checked
    return Verification(record.parsed.unreadable + checked.findings, checked.entries,
                        checked.chunks, checked.head)


def history_items(status: MLTechnologyStatus | None) -> list[View]:
    items = []
    for t in status.history if status else []:
        item = t.model_dump(by_alias=True, exclude_none=True, mode="json")
        item["cause"] = _cause(t.review, t.alert)
        items.append(item)
    return items


async def _status_history(session: Session, name: str, why_not_record: str) -> View:
    """The fallback: the object's own status.history (its newest changes, gone with it)."""
    try:
        body = await session.technology(name)
    except PluginError as error:
        raise PluginError(f"{error}; {why_not_record}") from None
    return {"source": STATUS_SOURCE, "items": history_items(tech_status(body)),
            "verified": None, "findings": [], "head": None,
            "note": f"{why_not_record}; showing status.history instead (the newest changes "
                    "only, and gone when the technology is deleted)"}


async def level_record(session: Session, name: str) -> View:
    """The one source of a technology's level changes, for `history` and the dashboard: the
    audit record, which outlives the technology and is verified with the domain's chain
    check; status.history only when the record cannot be read, saying why.

    The record is cluster-scoped, so RBAC cannot grant a namespace's people the records of
    that namespace only; the chart gives read to the mltrl-auditor role alone, and everyone
    else gets the fallback (docs/audit.md)."""
    namespace = session.namespace
    where = f"{namespace}/{name}"
    try:
        record = await read_audit_record(session.client, namespace, name)
    except ApiError as error:
        if error.status == 403:
            why = (f"you may not read the audit record of {where} (MLTRLAuditRecords are "
                   f"cluster-scoped: ask your platform team for the {AUDITOR_ROLE} role, "
                   "bound with a ClusterRoleBinding)")
        else:
            why = f"cannot read the audit record of {where}: {explain(error)}"
        return await _status_history(session, name, why)
    if not record.bodies:
        return await _status_history(
            session, name, f"no audit record of {where} (the operator writes one when it "
                           "first reconciles a technology)")
    verification = record_verification(record)
    items = audit_items(record)
    return {
        "source": AUDIT_SOURCE,
        "items": items,
        "verified": verification.intact,
        "findings": [str(f) for f in verification.findings],
        "head": verification.head or None,
        "chunks": len(record.bodies),
        "deleted": bool(items) and items[-1]["kind"] == str(AuditEntryKind.DELETION),
        "note": None,
    }


async def history(session: Session, name: str) -> View:
    record = await level_record(session, name)
    return {
        "kind": "LevelHistory",
        "namespace": session.namespace,
        "name": name,
        **record,
    }


# The record's kind for each history kind (the record calls a change `changeApproval`).
_TRANSITION_KINDS = {str(k): k for k in TransitionKind} | {
    "changeApproval": TransitionKind.CHANGE}


def _certification(certified: Any) -> dict[str, Any] | None:
    """The Certified condition (domain.lifecycle): whether the level still holds."""
    if certified is None:
        return None
    return {"certified": str(certified.status) == "True", "reason": certified.reason,
            "message": certified.message}


def audited_transitions(record: StoredRecord, uid: str) -> list[LevelTransition]:
    """The level changes of this life of the technology (its uid) as the record holds
    them: all of them, where status.history keeps the newest 50."""
    found = []
    for entry in record.entries:
        if (entry.technology_uid != uid or str(entry.kind) not in _TRANSITION_KINDS
                or entry.to_level is None):
            continue
        debrief = {key.removeprefix("debrief."): value for key, value in entry.details.items()
                   if key.startswith("debrief.")}
        found.append(LevelTransition(
            from_level=entry.from_level, to=entry.to_level,
            kind=_TRANSITION_KINDS[str(entry.kind)],
            switchback_type=entry.switchback_type, reason=entry.reason, review=entry.review,
            alert=entry.alert, by=list(entry.by), at=entry.time,
            debrief=Debrief.model_validate(debrief) if debrief else None,
        ))
    return found


async def _card_history(session: Session, name: str, uid: str,
                        status: MLTechnologyStatus | None) -> MLTechnologyStatus | None:
    """The card's levels reached from the audit record when the user may read it and its
    chain verifies; otherwise status.history as it is."""
    if status is None or not uid:
        return status
    try:
        record = await read_audit_record(session.client, session.namespace, name)
    except ApiError:
        return status
    if not record.bodies or not record_verification(record).intact:
        return status
    transitions = audited_transitions(record, uid)
    return status.model_copy(update={"history": transitions}) if transitions else status


async def card(session: Session, name: str, level: int | None) -> Card:
    body = await session.technology(name)
    spec: MLTechnologySpec = tech_spec(body)
    uid = str(meta(body).get("uid") or "")
    status = await _card_history(session, name, uid, tech_status(body))
    reviews = {}
    for r in await session.reviews(session.namespace):
        rs = review_spec(r)
        if rs is not None and rs.technology == name:
            reviews[str(meta(r).get("name"))] = rs
    try:
        return build_card(
            name=name, namespace=session.namespace, uid=uid,
            spec=spec, status=status, reviews=reviews, level=level,
        )
    except CardError as error:
        raise PluginError(f"{error} (in namespace \"{session.namespace}\")") from None


def card_view(value: Card) -> View:
    return {"kind": "TRLCard", **asdict(value), "title": value.title}


async def report(session: Session, grouping: str) -> View:
    techs = technology_records(await session.technologies(session.scope))
    reviews = review_records(await session.reviews(session.scope))
    namespaces = sorted({t.namespace for t in techs})
    policies = PolicyCache(session)
    governed = await policies.governed(namespaces)
    result = assess(techs, reviews, governed, grouping)
    return {"kind": "MaturityReport", "scope": session.scope or "all namespaces",
            **asdict(result), "warning": policies.unreadable}


def now_utc() -> datetime:
    return datetime.now(UTC)
