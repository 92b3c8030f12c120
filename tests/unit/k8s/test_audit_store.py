"""Appending to the audit record: chained, chunked, idempotent, and safe when racing."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

from mltrl_operator.api.audit import AuditEntry, AuditEntryKind
from mltrl_operator.domain.audit import RECORD_LABEL, record_key, verify
from mltrl_operator.k8s.audit_store import (
    RecentRecords,
    append_entry,
    open_record,
    read_audit_record,
)
from mltrl_operator.k8s.errors import Conflict, NotFound
from mltrl_operator.k8s.resources import AUDIT_RECORDS, ResourceRef

NS, TECH = "payments", "fraud"


class FakeApi:
    """Cluster-scoped objects with resourceVersions, 409s on stale writes and on names
    taken, and a hook that lets a test slip a competing write in before ours lands."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.versions = itertools.count(1)
        self.before_write: Callable[[], Any] | None = None
        self.writes = 0
        self.gets = 0
        self.lists = 0

    async def list(self, resource: ResourceRef, namespace: str | None = None, *,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
        assert resource == AUDIT_RECORDS and namespace is None and label_selector
        self.lists += 1
        key, _, value = label_selector.partition("=")
        return [copy.deepcopy(o) for o in self.objects.values()
                if o["metadata"]["labels"].get(key) == value]

    async def get(self, resource: ResourceRef, namespace: str | None,
                  name: str) -> dict[str, Any]:
        assert resource == AUDIT_RECORDS and namespace is None
        self.gets += 1
        if name not in self.objects:
            raise NotFound(404, {"reason": "NotFound"})
        return copy.deepcopy(self.objects[name])

    async def _interleave(self) -> None:
        hook, self.before_write = self.before_write, None
        if hook is not None:
            await hook()

    async def create(self, resource: ResourceRef, namespace: str | None,
                     body: dict[str, Any]) -> dict[str, Any]:
        await self._interleave()
        name = body["metadata"]["name"]
        if name in self.objects:
            raise Conflict(409, {"reason": "AlreadyExists"})
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(next(self.versions))
        self.objects[name] = stored
        self.writes += 1
        return copy.deepcopy(stored)

    async def patch(self, resource: ResourceRef, namespace: str | None, name: str,
                    patch: dict[str, Any]) -> dict[str, Any]:
        await self._interleave()
        stored = self.objects[name]
        if patch["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"]:
            raise Conflict(409, {"reason": "Conflict"})
        stored["spec"].update(patch["spec"])
        stored["metadata"]["resourceVersion"] = str(next(self.versions))
        self.writes += 1
        return copy.deepcopy(stored)


def draft(n: int) -> AuditEntry:
    return AuditEntry(id=f"id-{n}", sequence=0, time="2026-03-01T10:00:00Z",
                      kind=AuditEntryKind.PROMOTION, reason="r" * 200)


async def test_appends_chain_roll_into_chunks_and_verify() -> None:
    api = FakeApi()
    for n in range(12):
        await append_entry(api, NS, TECH, draft(n), limit=1500)  # type: ignore[arg-type]
    record = await read_audit_record(api, NS, TECH)  # type: ignore[arg-type]
    assert [e.id for e in record.entries] == [f"id-{n}" for n in range(12)]
    assert [e.sequence for e in record.entries] == list(range(12))
    assert len(record.chunks) > 2
    assert sorted(api.objects)[0] == "payments.fraud.0000"
    assert all(o["metadata"]["labels"][RECORD_LABEL] == record_key(NS, TECH)
               for o in api.objects.values())
    assert verify(record.chunks, namespace=NS, technology=TECH).intact


async def test_a_replayed_entry_is_stored_once() -> None:
    api = FakeApi()
    first = await append_entry(api, NS, TECH, draft(0))  # type: ignore[arg-type]
    await append_entry(api, NS, TECH, draft(1))  # type: ignore[arg-type]
    writes = api.writes
    again = await append_entry(api, NS, TECH, draft(0))  # type: ignore[arg-type]
    assert again == first and api.writes == writes


async def test_a_competing_append_is_kept_and_ours_chains_after_it() -> None:
    api = FakeApi()
    await append_entry(api, NS, TECH, draft(0))  # type: ignore[arg-type]

    async def rival() -> None:
        await append_entry(api, NS, TECH, draft(99))  # type: ignore[arg-type]

    api.before_write = rival
    ours = await append_entry(api, NS, TECH, draft(1))  # type: ignore[arg-type]
    record = await read_audit_record(api, NS, TECH)  # type: ignore[arg-type]
    assert [e.id for e in record.entries] == ["id-0", "id-99", "id-1"]
    assert ours.sequence == 2
    assert verify(record.chunks, namespace=NS, technology=TECH).intact


async def test_two_writers_opening_the_same_chunk_do_not_lose_an_entry() -> None:
    api = FakeApi()

    async def rival() -> None:
        await append_entry(api, NS, TECH, draft(7))  # type: ignore[arg-type]

    api.before_write = rival
    await append_entry(api, NS, TECH, draft(1))  # type: ignore[arg-type]
    record = await read_audit_record(api, NS, TECH)  # type: ignore[arg-type]
    assert [e.id for e in record.entries] == ["id-7", "id-1"]
    assert verify(record.chunks, namespace=NS, technology=TECH).intact


async def test_an_append_never_launders_an_edited_entry() -> None:
    api = FakeApi()
    await append_entry(api, NS, TECH, draft(0))  # type: ignore[arg-type]
    api.objects["payments.fraud.0000"]["spec"]["entries"][0]["reason"] = "edited"
    await append_entry(api, NS, TECH, draft(1))  # type: ignore[arg-type]
    record = await read_audit_record(api, NS, TECH)  # type: ignore[arg-type]
    assert record.entries[0].reason == "edited"
    findings = verify(record.chunks, namespace=NS, technology=TECH).findings
    assert [f.sequence for f in findings] == [0]


async def test_a_new_technology_opens_its_record_in_one_write_and_a_reused_name_continues() -> None:
    api = FakeApi()
    reads = 0
    original = api.list

    async def counting(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        nonlocal reads
        reads += 1
        return await original(*args, **kwargs)

    api.list = counting  # type: ignore[method-assign]
    entry = AuditEntry(id="entry-1", sequence=0, time="2026-03-01T10:00:00Z",
                       kind=AuditEntryKind.ENTRY, to_level=3)
    await append_entry(api, NS, TECH, entry)  # type: ignore[arg-type]
    assert (api.writes, reads) == (1, 0)
    again = entry.model_copy(update={"id": "entry-2"})  # the name re-created: a new uid
    await append_entry(api, NS, TECH, again)  # type: ignore[arg-type]
    record = await read_audit_record(api, NS, TECH)  # type: ignore[arg-type]
    assert [e.id for e in record.entries] == ["entry-1", "entry-2"]
    assert verify(record.chunks, namespace=NS, technology=TECH).intact


async def test_an_append_reads_the_record_by_name_not_by_listing_every_record() -> None:
    """A list by label makes the API server match every technology's record; reading the
    chunks by name costs it the same at 10 technologies as at 50,000."""
    api = FakeApi()
    for n in range(3):
        await append_entry(api, NS, TECH, draft(n))  # type: ignore[arg-type]
    assert (api.lists, api.gets) == (0, 1 + 2 + 2)  # up to the first missing chunk
    assert [e.id for e in (await read_audit_record(api, NS, TECH)).entries] == [  # type: ignore[arg-type]
        "id-0", "id-1", "id-2"]


def entry_draft(n: int) -> AuditEntry:
    return AuditEntry(id=f"entry-{n}", sequence=0, time="2026-03-01T10:00:00Z",
                      kind=AuditEntryKind.ENTRY, reason="entered")


async def test_appends_after_our_own_write_read_nothing_and_still_chain() -> None:
    """An entry then promotions (a start-up): the record as we wrote it stands in for the
    reads, across chunks too, and the stored record is the same as without it."""
    api, recent = FakeApi(), RecentRecords()
    await append_entry(api, NS, TECH, entry_draft(0), recent=recent)  # type: ignore[arg-type]
    for n in range(8):
        await append_entry(api, NS, TECH, draft(n), limit=1500,  # type: ignore[arg-type]
                           recent=recent)
    assert (api.gets, api.lists) == (0, 0)
    record = await read_audit_record(api, NS, TECH)  # type: ignore[arg-type]
    assert [e.id for e in record.entries] == ["entry-0"] + [f"id-{n}" for n in range(8)]
    assert len(record.chunks) > 2
    assert verify(record.chunks, namespace=NS, technology=TECH).intact


async def test_a_write_by_anyone_else_since_ours_is_read_and_chained_after() -> None:
    """The remembered record is a guess: another replica's append since makes our
    conditional write a 409, and the append reads the record as stored."""
    api, recent = FakeApi(), RecentRecords()
    await append_entry(api, NS, TECH, draft(0), recent=recent)  # type: ignore[arg-type]
    await append_entry(api, NS, TECH, draft(99))  # type: ignore[arg-type]  # no memory
    ours = await append_entry(api, NS, TECH, draft(1), recent=recent)  # type: ignore[arg-type]
    record = await read_audit_record(api, NS, TECH)  # type: ignore[arg-type]
    assert [e.id for e in record.entries] == ["id-0", "id-99", "id-1"]
    assert ours.sequence == 2
    assert verify(record.chunks, namespace=NS, technology=TECH).intact
    # ...and a replay of the other writer's entry is found, not appended again.
    writes = api.writes
    await append_entry(api, NS, TECH, draft(99), recent=recent)  # type: ignore[arg-type]
    assert api.writes == writes


async def test_only_the_most_recent_records_are_remembered() -> None:
    api, recent = FakeApi(), RecentRecords()
    recent.LIMIT = 3
    for n in range(5):
        await append_entry(api, NS, f"tech-{n}", entry_draft(n),  # type: ignore[arg-type]
                           recent=recent)
    assert [recent.get(NS, f"tech-{n}") is not None for n in range(5)] == [
        False, False, True, True, True]


async def test_an_entry_and_the_promotion_decided_with_it_open_the_record_in_one_write() -> None:
    """A technology found with its review approved (a start-up) enters and moves in one
    status write; its record opens with both entries, chained, in one create, and the next
    append (remembered) reads nothing."""
    api, recent = FakeApi(), RecentRecords()
    opened = await open_record(api, NS, TECH, [entry_draft(0), draft(1)],  # type: ignore[arg-type]
                               recent=recent)
    assert opened is not None and [e.sequence for e in opened] == [0, 1]
    assert (api.writes, api.gets, api.lists) == (1, 0, 0)
    await append_entry(api, NS, TECH, draft(2), recent=recent)  # type: ignore[arg-type]
    assert (api.writes, api.gets) == (2, 0)
    record = await read_audit_record(api, NS, TECH)  # type: ignore[arg-type]
    assert [e.id for e in record.entries] == ["entry-0", "id-1", "id-2"]
    assert verify(record.chunks, namespace=NS, technology=TECH).intact


async def test_a_record_already_there_is_not_opened_again() -> None:
    """A name used before (or our own create whose answer was lost): nothing written, and
    the caller's appends one by one find or chain each entry."""
    api = FakeApi()
    await append_entry(api, NS, TECH, entry_draft(0))  # type: ignore[arg-type]
    assert await open_record(api, NS, TECH, [entry_draft(1), draft(1)]) is None  # type: ignore[arg-type]
    assert api.writes == 1
    assert await open_record(api, NS, "other", [draft(1), draft(2)]) is None  # type: ignore[arg-type]
    assert await open_record(api, NS, "big", [entry_draft(2), draft(2)], limit=100) is None  # type: ignore[arg-type]
    assert api.writes == 1


async def test_what_is_remembered_leaves_out_managed_fields_and_never_launders_an_edit() -> None:
    """The remembered chunk is the one we stored, less managedFields (an append never sends
    them). An edit of its entries since (someone with write access) moved its
    resourceVersion: our append from memory is a 409, the record is read, and the edited
    entries go back as stored, so verification still finds the edit."""
    api, recent = FakeApi(), RecentRecords()
    api.create = _with_managed_fields(api.create)  # type: ignore[method-assign]
    await append_entry(api, NS, TECH, draft(0), recent=recent)  # type: ignore[arg-type]
    remembered = recent.get(NS, TECH)
    assert remembered is not None
    assert all("managedFields" not in body["metadata"] for body in remembered.bodies)
    [name] = api.objects
    api.objects[name]["spec"]["entries"][0]["reason"] = "edited"
    api.objects[name]["metadata"]["resourceVersion"] = "100"
    writes = api.writes
    await append_entry(api, NS, TECH, draft(1), recent=recent)  # type: ignore[arg-type]
    assert api.writes == writes + 1 and api.gets + api.lists >= 1  # a 409, then a read
    assert api.objects[name]["spec"]["entries"][0]["reason"] == "edited"
    record = await read_audit_record(api, NS, TECH)  # type: ignore[arg-type]
    assert [e.id for e in record.entries] == ["id-0", "id-1"]
    assert not verify(record.chunks, namespace=NS, technology=TECH).intact


def _with_managed_fields(create: Callable[..., Any]) -> Callable[..., Any]:
    async def creating(*args: Any) -> dict[str, Any]:
        stored: dict[str, Any] = await create(*args)
        stored["metadata"]["managedFields"] = [{"manager": "mltrl-operator"}]
        return stored
    return creating
