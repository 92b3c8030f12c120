"""The audit record in the cluster: read a technology's chunks, append one entry.

Appends are safe under concurrency and on retry:
- the entry's id is deterministic, so an append of an id the record already holds is a
  no-op (an operator restarted between its status write and its audit write replays it);
- extending a chunk is a merge patch carrying the chunk's resourceVersion, and opening a
  chunk is a create of a deterministic name, so two writers racing get a 409 and the loser
  reads again and re-chains its entry after the winner's.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from mltrl_operator.api.audit import AuditEntry, AuditEntryKind, MLTRLAuditRecordSpec
from mltrl_operator.domain.audit import (
    CHUNK_LIMIT_BYTES,
    RECORD_LABEL,
    ParsedRecord,
    chain,
    chunk_body,
    chunk_name,
    chunk_size,
    entries_of,
    parse_chunks,
    place,
    record_selector,
)
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import Conflict, NotFound
from mltrl_operator.k8s.resources import AUDIT_RECORDS

MAX_ATTEMPTS = 16
BACKOFF_SECONDS = 0.02
"""After a lost race, wait up to this times the attempt number (jittered) before reading
again, so writers that collided do not collide again in lockstep."""

logger = logging.getLogger(__name__)


class AuditAppendFailed(RuntimeError):
    """The entry could not be appended after several tries (others kept writing)."""


@dataclass(frozen=True)
class StoredRecord:
    """One technology's record as stored: parsed chunks and the objects they came from."""

    namespace: str
    technology: str
    parsed: ParsedRecord
    bodies: tuple[dict[str, Any], ...]

    @property
    def chunks(self) -> tuple[MLTRLAuditRecordSpec, ...]:
        return self.parsed.chunks

    @property
    def entries(self) -> list[AuditEntry]:
        return entries_of(self.parsed.chunks)

    def body_of(self, chunk: int) -> dict[str, Any] | None:
        name = chunk_name(self.namespace, self.technology, chunk)
        return next((b for b in self.bodies if (b.get("metadata") or {}).get("name") == name),
                    None)


class RecentRecords:
    """The records this process wrote last, as its writes stored them, so the next append
    to one (a technology entered, then promoted, as at start-up) needs no read: 2 of the
    3.3 requests per object a start-up made, besides the writes (docs/benchmarks.md).

    Only ever a guess: the write built on it is conditional (the chunk's resourceVersion,
    or the create of the next chunk's name), so if anyone wrote since, it gets a 409 and
    the append reads the record from the API server as before. Bounded: the few most
    recent, which is when the next append to the same record comes (a technology's entry
    and the promotion its review applies, in one reconcile, with at most the work queue's 64
    others under way), and without managedFields, which an append never sends back
    (issue 17)."""

    LIMIT = 256

    def __init__(self) -> None:
        self._records: OrderedDict[tuple[str, str], StoredRecord] = OrderedDict()

    def get(self, namespace: str, technology: str) -> StoredRecord | None:
        return self._records.get((namespace, technology))

    def stored(self, record: StoredRecord, chunk: dict[str, Any]) -> None:
        """`chunk` (an object the API server returned) is now the record's last one."""
        metadata = chunk.get("metadata") or {}
        name = metadata.get("name")
        bodies = [b for b in record.bodies if (b.get("metadata") or {}).get("name") != name]
        bodies.append({**chunk, "metadata": {
            key: value for key, value in metadata.items() if key != "managedFields"
        }})
        key = (record.namespace, record.technology)
        self._records[key] = StoredRecord(record.namespace, record.technology,
                                          parse_chunks(bodies), tuple(bodies))
        self._records.move_to_end(key)
        while len(self._records) > self.LIMIT:
            self._records.popitem(last=False)

    def forget(self, namespace: str, technology: str) -> None:
        self._records.pop((namespace, technology), None)


async def read_audit_record(client: KubeClient, namespace: str, technology: str) -> StoredRecord:
    """Every chunk of the record of `namespace/technology`, whether or not the technology
    still exists. The one read other tools (the CLI, `kubectl mltrl history`) build on."""
    bodies = await client.list(AUDIT_RECORDS, label_selector=record_selector(namespace, technology))
    return StoredRecord(namespace, technology, parse_chunks(bodies), tuple(bodies))


async def _read_by_name(client: KubeClient, namespace: str, technology: str) -> StoredRecord:
    """The record's chunks by name, 0, 1, ... up to the first missing one: what an append
    needs, at a cost to the API server that does not grow with the cluster. A list by label
    selector makes the API server match every technology's record (they are cluster-scoped,
    and kube-apiserver's watch cache filters labels one object at a time): at 10,000
    technologies that was most of the sandbox's CPU at start-up, growing with n^2. A record
    missing a chunk in the middle (deleted: the record was tampered with) reads as ending
    before it here; an append that then collides falls back to the full list."""
    bodies: list[dict[str, Any]] = []
    while True:
        try:
            bodies.append(await client.get(
                AUDIT_RECORDS, None, chunk_name(namespace, technology, len(bodies))
            ))
        except NotFound:
            return StoredRecord(namespace, technology, parse_chunks(bodies), tuple(bodies))


async def read_all_audit_records(client: KubeClient) -> list[StoredRecord]:
    """Every technology's record in the cluster (one list), ordered by namespace/name."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for body in await client.list(AUDIT_RECORDS):
        key = ((body.get("metadata") or {}).get("labels") or {}).get(RECORD_LABEL, "")
        groups.setdefault(str(key), []).append(body)
    records = []
    for bodies in groups.values():
        parsed = parse_chunks(bodies)
        owner = parsed.chunks[0] if parsed.chunks else None
        namespace, technology = (owner.namespace, owner.technology) if owner else ("?", "?")
        records.append(StoredRecord(namespace, technology, parsed, tuple(bodies)))
    return sorted(records, key=lambda r: (r.namespace, r.technology))


async def append_entry(
    client: KubeClient,
    namespace: str,
    technology: str,
    draft: AuditEntry,
    *,
    limit: int = CHUNK_LIMIT_BYTES,
    recent: RecentRecords | None = None,
) -> AuditEntry:
    """Append `draft` to the record (chained after its last entry) and return the entry as
    stored; if an entry with the draft's id is already there, return that one. With
    `recent`, the record as this process last wrote it stands in for a first read."""
    empty = StoredRecord(namespace, technology, parse_chunks([]), ())
    if draft.kind is AuditEntryKind.ENTRY:
        # Most technologies entering are new names: open the record in one write, no read.
        # A name used before has chunk 0 already (409), and takes the usual path.
        first = chain(draft, None)
        spec = MLTRLAuditRecordSpec(namespace=namespace, technology=technology, chunk=0,
                                    entries=[first])
        try:
            created = await client.create(AUDIT_RECORDS, None, chunk_body(spec))
        except Conflict:
            pass
        else:
            if recent is not None:
                recent.stored(empty, created)
            return first
    collided = False
    remembered = recent.get(namespace, technology) if recent is not None else None
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            await asyncio.sleep(random.uniform(0, BACKOFF_SECONDS * attempt))
        if remembered is not None and not collided:
            record = remembered
        else:
            record = await (read_audit_record if collided else _read_by_name)(
                client, namespace, technology
            )
        existing = next((e for e in record.entries if e.id == draft.id), None)
        if existing is not None:
            return existing
        if record.parsed.unreadable:
            logger.error(
                "the audit record of %s/%s has chunks that cannot be read (%s); appending "
                "after the last readable entry", namespace, technology,
                "; ".join(str(f) for f in record.parsed.unreadable),
            )
        entries = record.entries
        entry = chain(draft, entries[-1] if entries else None)
        last = record.chunks[-1] if record.chunks else None
        placement = place(last, entry, limit)
        try:
            if placement.opens_chunk:
                spec = MLTRLAuditRecordSpec(
                    namespace=namespace, technology=technology, chunk=placement.chunk,
                    previous_chunk_hash=entries[-1].hash if entries else "", entries=[entry],
                )
                written = await client.create(AUDIT_RECORDS, None, chunk_body(spec))
            else:
                assert last is not None
                body = record.body_of(last.chunk)
                version = ((body or {}).get("metadata") or {}).get("resourceVersion")
                if not version:
                    raise Conflict(409, {"message": "chunk without a resourceVersion"})
                # The stored entries byte for byte: an append never launders an edit.
                stored = list(((body or {}).get("spec") or {}).get("entries") or [])
                wire = [*stored, entry.to_wire()]
                written = await client.patch(
                    AUDIT_RECORDS, None, chunk_name(namespace, technology, last.chunk),
                    {"metadata": {"resourceVersion": version}, "spec": {"entries": wire}},
                )
        except Conflict:
            # Someone appended (or opened a chunk) first: read again, every chunk, and re-chain.
            collided = True
            if recent is not None:
                recent.forget(namespace, technology)
            continue
        if recent is not None:
            recent.stored(record, written)
        return entry
    raise AuditAppendFailed(
        f"could not append {draft.kind} {draft.id} to the audit record of "
        f"{namespace}/{technology} in {MAX_ATTEMPTS} attempts"
    )


async def open_record(
    client: KubeClient,
    namespace: str,
    technology: str,
    drafts: list[AuditEntry],
    *,
    limit: int = CHUNK_LIMIT_BYTES,
    recent: RecentRecords | None = None,
) -> list[AuditEntry] | None:
    """A technology's first stored status as its record's first chunk, in one create:
    its entry and what the same write decided with it (a promotion by a review already
    approved when it entered, issue 17). None, with nothing written, when it is not for
    this (the first draft is not an entry, the entries would not fit one chunk) or the
    record exists already (a name used before): the caller appends one by one."""
    if not drafts or drafts[0].kind is not AuditEntryKind.ENTRY:
        return None
    entries: list[AuditEntry] = []
    for draft in drafts:
        entries.append(chain(draft, entries[-1] if entries else None))
    if len({entry.id for entry in entries}) != len(entries) or chunk_size(entries) > limit:
        return None
    spec = MLTRLAuditRecordSpec(namespace=namespace, technology=technology, chunk=0,
                                entries=entries)
    try:
        created = await client.create(AUDIT_RECORDS, None, chunk_body(spec))
    except Conflict:
        return None
    if recent is not None:
        recent.stored(StoredRecord(namespace, technology, parse_chunks([]), ()), created)
    return entries
