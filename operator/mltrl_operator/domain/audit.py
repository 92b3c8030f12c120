"""The audit record: entries, their hash chain, chunking and verification.

A technology's record is a list of chunks; each chunk holds entries, oldest first. Every
entry carries `previousHash`, the sha256 of the entry before it, and `hash`, the sha256 of
its own canonical JSON (without `hash`). So:
- an entry edited in place no longer matches its hash;
- an entry removed breaks the chain (the next entry's previousHash names another entry)
  and leaves a gap in the sequence numbers;
- a chunk removed leaves a gap in the chunk numbers and breaks the chain likewise.
A chain with no secret in it cannot stop someone who rewrites every hash after an edit;
`verify` takes a head hash an auditor noted earlier (`--expect-head`): that entry must
still be in the record, which catches a rewrite or a cut, while the record may have grown;
the admission webhook keeps everyone but the operator from writing at all.

Entries carry deterministic ids: the same transition appended twice is stored once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mltrl_operator.api.audit import (
    AuditApproval,
    AuditEntry,
    AuditEntryKind,
    AuditEvidence,
    AuditModel,
    MLTRLAuditRecordSpec,
)
from mltrl_operator.api.review import LevelReviewSpec
from mltrl_operator.api.technology import (
    LevelTransition,
    ModelSpec,
    ServingRollback,
    TransitionKind,
)
from mltrl_operator.api.waiver import WaiverUse
from mltrl_operator.domain.admission import Requester, Verdict, allow, forbid
from mltrl_operator.domain.durations import parse_instant

CHUNK_LIMIT_BYTES = 256 * 1024
"""A chunk is closed before its entries exceed this: far below etcd's 1.5 MiB object
limit, and small enough that each append (which rewrites the chunk) stays cheap."""
TEXT_LIMIT = 2048
"""Free texts (reasons, descriptions, comments) are cut to this many characters."""
RECORD_LABEL = "mltrl.dev/audit-record"
"""Every chunk of one record carries this label, with `record_key` as its value."""
MAX_NAME = 253
CUT_MARK = "…[cut {} characters]"


# --- names -------------------------------------------------------------------------------


def record_key(namespace: str, technology: str) -> str:
    """A label value (at most 63 characters) naming one technology's record."""
    return hashlib.sha256(f"{namespace}/{technology}".encode()).hexdigest()[:40]


def chunk_name(namespace: str, technology: str, chunk: int) -> str:
    """`<namespace>.<technology>.<chunk>`: readable in `kubectl get mltrlauditrecords`.
    Namespaces hold no dots, so the first segment is always the namespace; names too long
    for an object name use the record key instead of the technology's name."""
    name = f"{namespace}.{technology}.{chunk:04d}"
    if len(name) <= MAX_NAME:
        return name
    return f"{namespace}.{record_key(namespace, technology)}.{chunk:04d}"


def entry_id(*parts: str | int | None) -> str:
    """A short deterministic id from the facts that make a transition unique."""
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- hashing and chaining ----------------------------------------------------------------


def canonical_json(entry: AuditEntry) -> bytes:
    """The bytes an entry's hash covers: every field set to a non-default value, except
    `hash`, as compact JSON with sorted keys. Defaults are left out so that a field added
    to the model later does not change the hash of the entries written before it."""
    wire = entry.model_dump(by_alias=True, exclude_defaults=True, mode="json")
    wire.pop("hash", None)
    return json.dumps(
        wire, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(canonical_json(entry)).hexdigest()


def chain(draft: AuditEntry, previous: AuditEntry | None) -> AuditEntry:
    """The draft as the next entry after `previous`: sequence, previousHash and hash set."""
    linked = draft.model_copy(
        update={
            "sequence": 0 if previous is None else previous.sequence + 1,
            "previous_hash": "" if previous is None else previous.hash,
            "hash": "",
        }
    )
    return linked.model_copy(update={"hash": entry_hash(linked)})


def entry_size(entry: AuditEntry) -> int:
    """Bytes the entry takes in a chunk (its JSON, plus a margin for the hash and commas)."""
    return len(canonical_json(entry)) + 96


def chunk_size(entries: Iterable[AuditEntry]) -> int:
    return sum(entry_size(entry) for entry in entries)


@dataclass(frozen=True)
class Placement:
    chunk: int
    """The chunk the entry goes to."""
    opens_chunk: bool
    """True when that chunk does not exist yet."""


def place(last: MLTRLAuditRecordSpec | None, entry: AuditEntry, limit: int) -> Placement:
    """Where the next entry goes: the last chunk while it fits, else a new chunk. An entry
    alone larger than the limit still gets a chunk of its own."""
    if last is None:
        return Placement(0, True)
    if not last.entries or chunk_size(last.entries) + entry_size(entry) <= limit:
        return Placement(last.chunk, False)
    return Placement(last.chunk + 1, True)


def last_entry(chunks: Sequence[MLTRLAuditRecordSpec]) -> AuditEntry | None:
    for chunk in sorted(chunks, key=lambda c: c.chunk, reverse=True):
        if chunk.entries:
            return chunk.entries[-1]
    return None


def contains(chunks: Sequence[MLTRLAuditRecordSpec], id: str) -> bool:
    return any(entry.id == id for chunk in chunks for entry in chunk.entries)


def entries_of(chunks: Sequence[MLTRLAuditRecordSpec]) -> list[AuditEntry]:
    return [entry for chunk in sorted(chunks, key=lambda c: c.chunk) for entry in chunk.entries]


# --- verification ------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a record, located as precisely as the record allows."""

    chunk: int | None
    index: int | None
    """The entry's position inside its chunk."""
    sequence: int | None
    """The entry's sequence number as stored."""
    problem: str

    def __str__(self) -> str:
        where = []
        if self.chunk is not None:
            where.append(f"chunk {self.chunk}")
        if self.index is not None:
            where.append(f"entry {self.index}")
        if self.sequence is not None:
            where.append(f"sequence {self.sequence}")
        return f"{', '.join(where) or 'record'}: {self.problem}"


@dataclass(frozen=True)
class Verification:
    findings: tuple[Finding, ...]
    entries: int
    chunks: int
    head: str
    """The hash of the last entry: note it to detect a rewrite of the whole chain later."""

    @property
    def intact(self) -> bool:
        return not self.findings


def verify(
    chunks: Sequence[MLTRLAuditRecordSpec],
    *,
    namespace: str,
    technology: str,
    expect_head: str | None = None,
) -> Verification:
    findings: list[Finding] = []
    ordered = sorted(chunks, key=lambda c: c.chunk)
    previous: AuditEntry | None = None
    seen_ids: dict[str, int] = {}
    expected_chunk = 0
    count = 0
    for chunk in ordered:
        if chunk.chunk != expected_chunk:
            missing = ", ".join(str(n) for n in range(expected_chunk, chunk.chunk))
            findings.append(Finding(None, None, None, f"chunk {missing} is missing"))
        expected_chunk = chunk.chunk + 1
        if (chunk.namespace, chunk.technology) != (namespace, technology):
            findings.append(Finding(
                chunk.chunk, None, None,
                f"belongs to {chunk.namespace}/{chunk.technology}, not {namespace}/{technology}",
            ))
        previous_hash = previous.hash if previous is not None else ""
        if chunk.previous_chunk_hash != previous_hash:
            findings.append(Finding(
                chunk.chunk, None, None,
                f"previousChunkHash {_short(chunk.previous_chunk_hash)} does not match the "
                f"last entry before it ({_short(previous_hash)})",
            ))
        for index, entry in enumerate(chunk.entries):
            count += 1
            expected_sequence = 0 if previous is None else previous.sequence + 1
            where = (chunk.chunk, index, entry.sequence)
            if entry_hash(entry) != entry.hash:
                findings.append(Finding(
                    *where, f"content does not match its hash (edited after it was recorded; "
                    f"id {entry.id}, {entry.kind} at {entry.time})",
                ))
            if entry.previous_hash != (previous.hash if previous is not None else ""):
                findings.append(Finding(
                    *where, "previousHash does not match the entry before it "
                    f"({_short(entry.previous_hash)} != "
                    f"{_short(previous.hash if previous else '')}): an entry was removed, "
                    "reordered or edited",
                ))
            if entry.sequence != expected_sequence:
                findings.append(Finding(
                    *where, f"expected sequence {expected_sequence}: "
                    + (f"{entry.sequence - expected_sequence} entries missing before it"
                       if entry.sequence > expected_sequence else "entries reordered or repeated"),
                ))
            if entry.id in seen_ids:
                findings.append(Finding(
                    *where, f"id {entry.id} was already recorded at sequence "
                    f"{seen_ids[entry.id]}",
                ))
            seen_ids.setdefault(entry.id, entry.sequence)
            previous = entry
    head = previous.hash if previous is not None else ""
    hashes = {entry.hash for chunk in ordered for entry in chunk.entries}
    if expect_head is not None and expect_head not in hashes:
        findings.append(Finding(
            None, None, None,
            f"no entry has the noted head {_short(expect_head)} (the head is now "
            f"{_short(head)}): the record was rewritten or cut short since that head was noted",
        ))
    return Verification(tuple(findings), count, len(ordered), head)


def _short(digest: str) -> str:
    return digest[:12] if digest else "(none)"


# --- entries from what the operator decided ------------------------------------------------


def clip(text: str | None, limit: int = TEXT_LIMIT) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + CUT_MARK.format(len(text) - limit)


def audit_model(model: ModelSpec | None) -> AuditModel | None:
    if model is None:
        return None
    return AuditModel(version=model.version, storage_uri=model.storage_uri)


def review_evidence(review: LevelReviewSpec) -> list[AuditEvidence]:
    return [
        AuditEvidence(
            name=item.name, kind=str(item.kind), passed=item.passed, value=item.value,
            uri=item.uri, description=clip(item.description),
        )
        for item in review.evidence
    ]


def review_approvals(review: LevelReviewSpec) -> list[AuditApproval]:
    return [
        AuditApproval(
            reviewer=approval.reviewer, role=approval.role, decision=str(approval.decision),
            time=approval.time, comment=clip(approval.comment),
        )
        for approval in review.approvals
    ]


_KINDS = {
    str(TransitionKind.ENTRY): AuditEntryKind.ENTRY,
    str(TransitionKind.PROMOTION): AuditEntryKind.PROMOTION,
    str(TransitionKind.SWITCHBACK): AuditEntryKind.SWITCHBACK,
    # History kinds the integration of issue 15 may add, under their likely names.
    "change": AuditEntryKind.CHANGE_APPROVAL,
    "changeApproval": AuditEntryKind.CHANGE_APPROVAL,
    "recertification": AuditEntryKind.RECERTIFICATION,
    "recertify": AuditEntryKind.RECERTIFICATION,
    "lapse": AuditEntryKind.LAPSE,
}


def _entry_kind(transition: LevelTransition) -> AuditEntryKind:
    """The record's kind for a history kind; one it does not know is told by direction,
    never dropped."""
    known = _KINDS.get(str(transition.kind))
    if known is not None:
        return known
    if transition.from_level is not None and transition.to > transition.from_level:
        return AuditEntryKind.PROMOTION
    if transition.from_level is not None and transition.to < transition.from_level:
        return AuditEntryKind.SWITCHBACK
    return AuditEntryKind.ENTRY if transition.from_level is None else (
        AuditEntryKind.RECERTIFICATION)


def transition_entry(
    transition: LevelTransition,
    *,
    technology_uid: str | None,
    model: ModelSpec | None,
    review: LevelReviewSpec | None = None,
    review_type: str | None = None,
) -> AuditEntry:
    """A draft entry for one history transition (entry, promotion or switchback). The
    review's evidence and approvals are copied when the review is at hand."""
    kind = _entry_kind(transition)
    details: dict[str, Any] = {}
    if transition.debrief is not None:
        details = {
            f"debrief.{key}": clip(value)
            for key, value in transition.debrief.model_dump(by_alias=True).items()
            if value
        }
    return AuditEntry(
        id=entry_id(
            "transition", technology_uid, transition.kind, transition.from_level,
            transition.to, transition.at, transition.review, transition.alert,
        ),
        sequence=0,
        time=transition.at,
        kind=kind,
        technology_uid=technology_uid,
        from_level=transition.from_level,
        to_level=transition.to,
        switchback_type=str(transition.switchback_type) if transition.switchback_type else None,
        reason=clip(transition.reason) or "",
        by=list(transition.by),
        review=transition.review,
        review_type=review_type,
        alert=transition.alert,
        model=audit_model(model),
        evidence=review_evidence(review) if review is not None else [],
        approvals=review_approvals(review) if review is not None else [],
        details={key: str(value) for key, value in details.items()},
    )


def rollback_entry(
    rollback: ServingRollback, *, technology_uid: str | None, level: int | None
) -> AuditEntry:
    """A draft entry for a rollback alert's decision to serve a known-good model."""
    served = rollback.model
    return AuditEntry(
        id=entry_id("rollback", technology_uid, rollback.alert, rollback.at,
                    rollback.replaced_version),
        sequence=0,
        time=rollback.at,
        kind=AuditEntryKind.ROLLBACK,
        technology_uid=technology_uid,
        from_level=level,
        to_level=level,
        reason=(
            f"alert {rollback.alert} rolled back from {rollback.replaced_version} to "
            + (served.version if served else "no model (stopped)")
        ),
        by=["mltrl-operator"],
        alert=rollback.alert,
        model=AuditModel(version=served.version, storage_uri=served.storage_uri)
        if served else None,
        replaced_model=AuditModel(
            version=rollback.replaced_version, storage_uri=rollback.replaced_storage_uri
        ),
    )


def new_transitions(
    before: Sequence[LevelTransition], after: Sequence[LevelTransition]
) -> list[LevelTransition]:
    """The history entries in `after` that `before` does not hold, oldest first. History
    is capped, so entries are matched by content, not position."""
    known = {_transition_key(t) for t in before}
    return [t for t in after if _transition_key(t) not in known]


def _transition_key(transition: LevelTransition) -> tuple[Any, ...]:
    return (transition.kind, transition.from_level, transition.to, transition.at,
            transition.review, transition.alert)


# --- reading stored chunks -----------------------------------------------------------------

CHUNK_LABEL = "mltrl.dev/audit-chunk"


@dataclass(frozen=True)
class ParsedRecord:
    chunks: tuple[MLTRLAuditRecordSpec, ...]
    """The chunks that could be read, in chunk order."""
    unreadable: tuple[Finding, ...]
    """Chunks stored in a shape the model refuses (edited by hand), one finding each."""


def parse_chunks(bodies: Iterable[dict[str, Any]]) -> ParsedRecord:
    """Stored MLTRLAuditRecord objects (as `kubectl get -o json` shows them) -> chunks. A
    chunk that does not parse is reported, never dropped silently."""
    chunks: list[MLTRLAuditRecordSpec] = []
    unreadable: list[Finding] = []
    for body in bodies:
        metadata = body.get("metadata") or {}
        try:
            chunks.append(MLTRLAuditRecordSpec.model_validate(body.get("spec") or {}))
        except ValueError as error:
            label = (metadata.get("labels") or {}).get(CHUNK_LABEL)
            number = int(label) if isinstance(label, str) and label.isdigit() else None
            first = str(error).splitlines()[1:3]
            unreadable.append(Finding(
                number, None, None,
                f"{metadata.get('name')} cannot be read: {' '.join(s.strip() for s in first)}",
            ))
    return ParsedRecord(tuple(sorted(chunks, key=lambda c: c.chunk)), tuple(unreadable))


def chunk_body(spec: MLTRLAuditRecordSpec) -> dict[str, Any]:
    """A new chunk object (apiVersion and kind are added by the client)."""
    return {
        "metadata": {
            "name": chunk_name(spec.namespace, spec.technology, spec.chunk),
            "labels": {
                RECORD_LABEL: record_key(spec.namespace, spec.technology),
                CHUNK_LABEL: str(spec.chunk),
                "app.kubernetes.io/part-of": "mltrl-operator",
            },
        },
        "spec": spec.to_wire(),
    }


def record_selector(namespace: str, technology: str) -> str:
    return f"{RECORD_LABEL}={record_key(namespace, technology)}"


def status_change_drafts(
    *,
    before_history: Sequence[LevelTransition],
    after_history: Sequence[LevelTransition],
    before_rollback: ServingRollback | None,
    after_rollback: ServingRollback | None,
    technology_uid: str | None,
    model: ModelSpec | None,
    level: int | None,
    reviews: dict[str, tuple[LevelReviewSpec, str | None]],
    before_serving_waiver: WaiverUse | None = None,
    after_serving_waiver: WaiverUse | None = None,
    at: str | None = None,
) -> list[AuditEntry]:
    """The entries one stored status change adds to the record: each new history
    transition (with its review's evidence and approvals when the review is at hand, keyed
    by name -> (spec, type)) and the waivers it used, a rollback newly decided, and a
    waiver newly keeping the serving gate open (status.serving.waiver, recorded at its
    `since`, else `at`)."""
    drafts = []
    for transition in new_transitions(before_history, after_history):
        review, review_type = reviews.get(transition.review or "", (None, None))
        drafts.append(transition_entry(
            transition, technology_uid=technology_uid, model=model, review=review,
            review_type=review_type,
        ))
        for use in transition.waivers or []:
            drafts.append(waiver_use_entry(
                waiver=use.name, technology_uid=technology_uid, level=transition.to,
                at=transition.at, used_for=f"review {transition.review or '-'}",
                waived=use.waived, approved_by=use.approved_by, expires_at=use.expires_at,
            ))
    if after_serving_waiver is not None and after_serving_waiver.since:
        at = after_serving_waiver.since  # the use began then: one id, however often asked
    if after_serving_waiver is not None and at is not None and (
            before_serving_waiver is None
            or (before_serving_waiver.name, before_serving_waiver.expires_at)
            != (after_serving_waiver.name, after_serving_waiver.expires_at)):
        drafts.append(waiver_use_entry(
            waiver=after_serving_waiver.name, technology_uid=technology_uid, level=level,
            at=at, used_for="serving", waived=after_serving_waiver.waived,
            approved_by=after_serving_waiver.approved_by,
            expires_at=after_serving_waiver.expires_at,
        ))
    if after_rollback is not None and after_rollback != before_rollback:
        drafts.append(rollback_entry(after_rollback, technology_uid=technology_uid, level=level))
    return drafts


# --- admission ---------------------------------------------------------------------------


def audit_record_verdict(
    requester: Requester, operation: str, name: str, *, operator: str
) -> Verdict:
    """Only the operator's service account creates, changes or deletes audit records.
    Cluster admins included: an auditor must be able to trust that nobody edited the
    record from inside the cluster's API (an admin can still switch the webhook off, which
    is itself visible, and `verify` catches any edit made meanwhile)."""
    if requester.username == operator:
        return allow()
    return forbid(
        f"{name or 'mltrlauditrecords'}: Forbidden: audit records are written only by the "
        f"operator ({operator}); {requester.username or 'an anonymous user'} may not "
        f"{operation.lower()} them"
    )


def deletion_entry(
    *, technology_uid: str | None, level: int | None, at: str, model: ModelSpec | None
) -> AuditEntry:
    """The MLTechnology object was deleted at `level`; its record stays, and a technology
    created again with the same name continues it."""
    return AuditEntry(
        id=entry_id("deletion", technology_uid), sequence=0, time=at,
        kind=AuditEntryKind.DELETION, technology_uid=technology_uid, from_level=level,
        reason="the MLTechnology was deleted" + (f" at level {level}" if level is not None
                                                 else ""),
        by=["mltrl-operator"], model=audit_model(model),
    )


# --- entries that are not level transitions: waiver uses, dismissed approvals --------------


def waiver_use_entry(
    *, waiver: str, technology_uid: str | None, level: int | None, at: str,
    used_for: str, waived: Sequence[str], approved_by: Sequence[str], expires_at: str,
) -> AuditEntry:
    """A waiver helped something (`used_for`: a review's name, or `serving`)."""
    return AuditEntry(
        id=entry_id("waiverUse", technology_uid, waiver, used_for, at),
        sequence=0, time=at, kind=AuditEntryKind.WAIVER_USE, technology_uid=technology_uid,
        from_level=level, to_level=level, waiver=waiver, by=list(approved_by),
        reason=f"waiver {waiver} used for {used_for}: {', '.join(waived)}",
        details={"expiresAt": expires_at, "usedFor": used_for},
    )


def dismissed_approvals_entry(
    *, review_name: str, technology_uid: str | None, at: str,
    dismissed: Sequence[tuple[str, str]], level: int | None,
) -> AuditEntry:
    """Approvals that stopped counting: (reviewer, why) each, e.g. ("bob", "evidence ci
    changed after bob approved"). Named by what was dismissed, not when: the entry is
    appended before the review's status that dismisses them is written, and a redo after
    a crash in between decides the same dismissals, which the record then already has."""
    return AuditEntry(
        id=entry_id("dismissedApprovals", technology_uid, review_name,
                    *(f"{reviewer}: {why}" for reviewer, why in sorted(dismissed))),
        sequence=0, time=at, kind=AuditEntryKind.DISMISSED_APPROVALS,
        technology_uid=technology_uid, from_level=level, to_level=level, review=review_name,
        by=["mltrl-operator"], reason="; ".join(clip(why) or "" for _, why in dismissed),
        details={f"dismissed.{reviewer}": clip(why) or "" for reviewer, why in dismissed},
    )


def recent_drafts(
    *,
    history: Sequence[LevelTransition],
    rollback: ServingRollback | None,
    since: datetime,
    technology_uid: str | None,
    model: ModelSpec | None,
    level: int | None,
    reviews: dict[str, tuple[LevelReviewSpec, str | None]],
    serving_waiver: WaiverUse | None = None,
) -> list[AuditEntry]:
    """The entries for transitions stored since `since`: what an operator that stopped
    between storing a transition and recording it may have left out, a waiver's use for
    serving included. Appending them is safe whether or not they were recorded (their ids
    are deterministic)."""

    def recent(at: str) -> bool:
        try:
            return parse_instant(at) >= since
        except ValueError:
            return False

    return status_change_drafts(
        before_history=[t for t in history if not recent(t.at)],
        after_history=history,
        before_rollback=None,
        after_rollback=rollback if rollback is not None and recent(rollback.at) else None,
        technology_uid=technology_uid, model=model, level=level, reviews=reviews,
        after_serving_waiver=serving_waiver
        if serving_waiver is not None and serving_waiver.since and recent(serving_waiver.since)
        else None,
    )
