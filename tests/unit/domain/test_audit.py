"""The audit record's pure parts: hashing, chaining, chunking, verification, entries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mltrl_operator.api.audit import AuditEntry, AuditEntryKind, MLTRLAuditRecordSpec
from mltrl_operator.api.review import LevelReviewSpec
from mltrl_operator.api.technology import (
    KnownGoodModel,
    LevelTransition,
    ModelSpec,
    ServingRollback,
    TransitionKind,
)
from mltrl_operator.api.waiver import WaiverUse
from mltrl_operator.domain.admission import Requester
from mltrl_operator.domain.audit import (
    CHUNK_LABEL,
    RECORD_LABEL,
    audit_record_verdict,
    chain,
    chunk_body,
    chunk_name,
    entry_hash,
    parse_chunks,
    place,
    recent_drafts,
    record_key,
    status_change_drafts,
    verify,
)

NS, TECH = "payments", "fraud-detection"


def draft(n: int, **fields: Any) -> AuditEntry:
    return AuditEntry(
        id=f"id-{n}", sequence=0, time=f"2026-03-0{n % 9 + 1}T10:00:00Z",
        kind=AuditEntryKind.PROMOTION, from_level=n % 9, to_level=n % 9 + 1, reason=f"step {n}",
        **fields,
    )


def record(sizes: list[int]) -> list[MLTRLAuditRecordSpec]:
    """Chunks holding `sizes[i]` chained entries each."""
    chunks, previous, n = [], None, 0
    for index, size in enumerate(sizes):
        entries = []
        start = previous.hash if previous else ""
        for _ in range(size):
            previous = chain(draft(n), previous)
            entries.append(previous)
            n += 1
        chunks.append(MLTRLAuditRecordSpec(
            namespace=NS, technology=TECH, chunk=index, previous_chunk_hash=start,
            entries=entries,
        ))
    return chunks


def problems(chunks: list[MLTRLAuditRecordSpec], **kwargs: Any) -> list[str]:
    return [str(f) for f in verify(chunks, namespace=NS, technology=TECH, **kwargs).findings]


# --- chaining ------------------------------------------------------------------------------


def test_the_first_entry_starts_the_chain_and_each_next_one_names_the_one_before() -> None:
    first = chain(draft(0), None)
    second = chain(draft(1), first)
    assert (first.sequence, first.previous_hash) == (0, "")
    assert (second.sequence, second.previous_hash) == (1, first.hash)
    assert first.hash == entry_hash(first) and len(first.hash) == 64
    assert second.hash != first.hash


def test_the_hash_covers_every_field_but_itself() -> None:
    entry = chain(draft(0, evidence=[{"name": "auc", "kind": "metric", "value": 0.91}]), None)
    for change in ({"reason": "other"}, {"by": ["mallory"]}, {"to_level": 9},
                   {"time": "2026-03-01T10:00:01Z"}, {"previous_hash": "0" * 64}):
        assert entry_hash(entry.model_copy(update=change)) != entry.hash, change
    tampered = entry.model_copy(deep=True)
    tampered.evidence[0].value = 0.99
    assert entry_hash(tampered) != entry.hash
    assert entry_hash(entry.model_copy(update={"hash": "x"})) == entry.hash


def test_the_hash_survives_the_round_trip_through_the_api_server_json() -> None:
    entry = chain(draft(0, evidence=[{"name": "auc", "kind": "metric", "value": 1.0}]), None)
    wire = entry.to_wire()
    wire["evidence"][0]["value"] = 1  # Go's encoder writes a whole float as an integer
    assert entry_hash(AuditEntry.model_validate(wire)) == entry.hash


# --- verification --------------------------------------------------------------------------


def test_an_untouched_record_verifies_and_names_its_head() -> None:
    chunks = record([3, 2, 4])
    result = verify(chunks, namespace=NS, technology=TECH)
    assert result.intact and result.entries == 9 and result.chunks == 3
    assert result.head == chunks[-1].entries[-1].hash
    assert verify([], namespace=NS, technology=TECH).intact


def test_an_edited_entry_is_named_by_chunk_entry_and_sequence() -> None:
    chunks = record([3, 3])
    chunks[1].entries[1] = chunks[1].entries[1].model_copy(update={"reason": "nothing to see"})
    assert problems(chunks) == [
        "chunk 1, entry 1, sequence 4: content does not match its hash (edited after it was "
        "recorded; id id-4, promotion at 2026-03-05T10:00:00Z)"
    ]


def test_a_removed_entry_breaks_the_chain_and_leaves_a_sequence_gap() -> None:
    chunks = record([4])
    del chunks[0].entries[2]
    found = problems(chunks)
    assert len(found) == 2
    assert found[0].startswith("chunk 0, entry 2, sequence 3: previousHash does not match")
    assert found[1] == "chunk 0, entry 2, sequence 3: expected sequence 2: 1 entries missing " \
        "before it"


def test_an_entry_rehashed_after_an_edit_still_breaks_the_link_to_the_next() -> None:
    chunks = record([3])
    edited = chunks[0].entries[1].model_copy(update={"reason": "rewritten", "hash": ""})
    chunks[0].entries[1] = edited.model_copy(update={"hash": entry_hash(edited)})
    assert problems(chunks) == [
        f"chunk 0, entry 2, sequence 2: previousHash does not match the entry before it "
        f"({chunks[0].entries[2].previous_hash[:12]} != {chunks[0].entries[1].hash[:12]}): "
        "an entry was removed, reordered or edited"
    ]


def test_a_removed_chunk_is_named() -> None:
    chunks = record([2, 2, 2])
    del chunks[1]
    found = problems(chunks)
    assert found[0] == "record: chunk 1 is missing"
    assert any("previousChunkHash" in f for f in found)


def test_a_whole_chain_rewritten_is_caught_only_against_a_noted_head() -> None:
    original = record([3])
    head = verify(original, namespace=NS, technology=TECH).head
    forged, previous = [], None
    for entry in original[0].entries[:2]:  # cut short, every hash recomputed
        previous = chain(entry, previous)
        forged.append(previous)
    rewritten = [original[0].model_copy(update={"entries": forged})]
    assert problems(rewritten) == []
    assert problems(rewritten, expect_head=head) == [
        f"record: no entry has the noted head {head[:12]} (the head is now "
        f"{forged[-1].hash[:12]}): the record was rewritten or cut short since that head was "
        "noted"
    ]
    # A record that grew since the head was noted is still intact.
    grown = record([3, 2])
    noted = verify(grown[:1], namespace=NS, technology=TECH).head
    assert problems(grown, expect_head=noted) == []


def test_a_chunk_of_another_technology_and_a_repeated_id_are_found() -> None:
    chunks = record([2])
    chunks[0] = chunks[0].model_copy(update={"technology": "other"})
    assert "belongs to payments/other" in problems(chunks)[0]
    first = chain(draft(0), None)
    again = chain(draft(0), first)
    assert any("id id-0 was already recorded at sequence 0" in p for p in problems(
        [MLTRLAuditRecordSpec(namespace=NS, technology=TECH, chunk=0, entries=[first, again])]
    ))


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data())
def test_any_single_edit_or_removal_is_detected(sizes: list[int], data: st.DataObject) -> None:
    chunks = record(sizes)
    chunk = data.draw(st.integers(0, len(chunks) - 1))
    index = data.draw(st.integers(0, len(chunks[chunk].entries) - 1))
    if data.draw(st.booleans()):
        entry = chunks[chunk].entries[index]
        chunks[chunk].entries[index] = entry.model_copy(update={"reason": entry.reason + "!"})
    else:
        is_last = chunk == len(chunks) - 1 and index == len(chunks[chunk].entries) - 1
        if is_last:
            return  # removing the newest entry is what --expect-head is for (tested above)
        del chunks[chunk].entries[index]
    assert problems(chunks)


# --- chunking and names ----------------------------------------------------------------------


def test_entries_fill_a_chunk_up_to_the_limit_then_open_the_next() -> None:
    assert place(None, chain(draft(0), None), 1000).opens_chunk
    chunks = record([3])
    entry = chain(draft(3), chunks[0].entries[-1])
    assert place(chunks[0], entry, 10**6) == place(chunks[0], entry, 10**6)
    assert not place(chunks[0], entry, 10**6).opens_chunk
    full = place(chunks[0], entry, 600)
    assert (full.chunk, full.opens_chunk) == (1, True)
    empty = chunks[0].model_copy(update={"entries": []})
    assert not place(empty, entry, 1).opens_chunk  # an entry alone always gets a place


def test_chunk_names_are_readable_unique_and_valid_object_names() -> None:
    assert chunk_name(NS, TECH, 3) == "payments.fraud-detection.0003"
    long_name = "t" * 250
    name = chunk_name(NS, long_name, 0)
    assert len(name) <= 253 and name.startswith("payments.") and name.endswith(".0000")
    assert chunk_name(NS, long_name, 0) != chunk_name(NS, "t" * 249, 0)
    assert record_key("a", "b-c") != record_key("a-b", "c") and len(record_key(NS, TECH)) == 40


def test_stored_chunks_parse_and_a_mangled_one_is_reported_not_dropped() -> None:
    good = record([2])[0]
    body = chunk_body(good)
    assert body["metadata"]["labels"][RECORD_LABEL] == record_key(NS, TECH)
    assert body["metadata"]["labels"][CHUNK_LABEL] == "0"
    mangled = {"metadata": {"name": "payments.fraud-detection.0001",
                            "labels": {CHUNK_LABEL: "1"}},
               "spec": {"namespace": NS, "technology": TECH, "chunk": "one", "entries": []}}
    parsed = parse_chunks([mangled, body])
    assert parsed.chunks == (good,)
    (finding,) = parsed.unreadable
    assert finding.chunk == 1 and "payments.fraud-detection.0001 cannot be read" in str(finding)


# --- entries from the operator's decisions ---------------------------------------------------


def transition(**fields: Any) -> LevelTransition:
    base: dict[str, Any] = {"from": 6, "to": 7, "kind": TransitionKind.PROMOTION,
                            "reason": "ready", "review": "to-7", "by": ["bob", "carol"],
                            "at": "2026-03-01T10:00:00Z"}
    return LevelTransition.model_validate({**base, **fields})


def test_a_promotion_copies_the_reviews_evidence_and_approvals() -> None:
    review = LevelReviewSpec.model_validate({
        "technology": TECH, "fromLevel": 6, "toLevel": 7,
        "evidence": [
            {"name": "auc", "kind": "metric", "value": 0.93, "uri": "https://ci/run/7"},
            {"name": "ethics", "kind": "document", "uri": "https://wiki/ethics",
             "description": "x" * 5000},
        ],
        "approvals": [{"reviewer": "bob", "role": "qa", "decision": "approve",
                       "time": "2026-03-01T09:00:00Z"}],
    })
    model = ModelSpec(version="1.4.0", storage_uri="s3://m/1.4.0", format="sklearn")
    (entry,) = status_change_drafts(
        before_history=[], after_history=[transition()], before_rollback=None,
        after_rollback=None, technology_uid="uid-1", model=model, level=7,
        reviews={"to-7": (review, "promotion")},
    )
    assert (entry.kind, entry.from_level, entry.to_level, entry.review) == (
        AuditEntryKind.PROMOTION, 6, 7, "to-7")
    assert entry.review_type == "promotion" and entry.by == ["bob", "carol"]
    assert [(e.name, e.value, e.uri) for e in entry.evidence] == [
        ("auc", 0.93, "https://ci/run/7"), ("ethics", None, "https://wiki/ethics")]
    assert entry.evidence[1].description is not None
    assert entry.evidence[1].description.endswith("…[cut 2952 characters]")
    assert [(a.reviewer, a.role) for a in entry.approvals] == [("bob", "qa")]
    assert entry.model is not None and entry.model.storage_uri == "s3://m/1.4.0"
    assert entry.technology_uid == "uid-1"


def test_only_new_transitions_and_a_new_rollback_make_entries_with_stable_ids() -> None:
    old = transition(**{"from": None, "to": 3, "kind": "entry", "review": None,
                        "at": "2026-02-01T00:00:00Z"})
    demotion = transition(**{"from": 7, "to": 4, "kind": "switchback", "review": None,
                             "switchbackType": "embedded", "alert": "Drift/abc"})
    rollback = ServingRollback(
        model=KnownGoodModel(version="1.3.0", storage_uri="s3://m/1.3.0", format="sklearn",
                             served_at="2026-02-20T00:00:00Z"),
        replaced_version="1.4.0", replaced_storage_uri="s3://m/1.4.0", alert="Errors/def",
        at="2026-03-02T00:00:00Z",
    )
    kwargs: dict[str, Any] = {"technology_uid": "u", "model": None, "level": 4, "reviews": {}}
    drafts = status_change_drafts(before_history=[old], after_history=[old, demotion],
                                  before_rollback=None, after_rollback=rollback, **kwargs)
    assert [d.kind for d in drafts] == [AuditEntryKind.SWITCHBACK, AuditEntryKind.ROLLBACK]
    assert drafts[0].switchback_type == "embedded" and drafts[0].alert == "Drift/abc"
    assert drafts[1].model is not None and drafts[1].model.version == "1.3.0"
    assert drafts[1].replaced_model is not None and drafts[1].replaced_model.version == "1.4.0"
    again = status_change_drafts(before_history=[old], after_history=[old, demotion],
                                 before_rollback=None, after_rollback=rollback, **kwargs)
    assert [d.id for d in again] == [d.id for d in drafts]  # a replay appends nothing new
    assert status_change_drafts(before_history=[old, demotion], after_history=[old, demotion],
                                before_rollback=rollback, after_rollback=rollback,
                                **kwargs) == []


def test_waiver_uses_are_entries_once_per_review_and_once_per_serving_use() -> None:
    use = WaiverUse(name="skip-bias", waived=["evidence bias-audit"], approved_by=["dana"],
                    expires_at="2026-03-09T00:00:00Z")
    promoted = transition(**{"from": 5, "to": 6, "kind": "promotion", "review": "to-6",
                             "at": "2026-03-02T00:00:00Z", "waivers": [use.to_wire()]})
    kwargs: dict[str, Any] = {"technology_uid": "u", "model": None, "level": 6, "reviews": {},
                              "before_rollback": None, "after_rollback": None}
    drafts = status_change_drafts(before_history=[], after_history=[promoted], **kwargs)
    assert [d.kind for d in drafts] == [AuditEntryKind.PROMOTION, AuditEntryKind.WAIVER_USE]
    assert drafts[1].waiver == "skip-bias" and drafts[1].time == "2026-03-02T00:00:00Z"
    assert drafts[1].reason == "waiver skip-bias used for review to-6: evidence bias-audit"
    serving = use.model_copy(update={"waived": ["servingMinimum 6 -> 5"]})
    kwargs = {**kwargs, "before_history": [promoted], "after_history": [promoted]}
    opened = status_change_drafts(after_serving_waiver=serving, at="2026-03-03T00:00:00Z",
                                  **kwargs)
    assert [(d.kind, d.details["usedFor"]) for d in opened] == [
        (AuditEntryKind.WAIVER_USE, "serving")]
    # Since when it keeps the gate open, when status says so: one id however often asked.
    started = serving.model_copy(update={"since": "2026-03-02T12:00:00Z"})
    (first,) = status_change_drafts(after_serving_waiver=started, at="2026-03-05T00:00:00Z",
                                    **kwargs)
    (again,) = status_change_drafts(after_serving_waiver=started, at="2026-03-06T00:00:00Z",
                                    **kwargs)
    assert first.time == "2026-03-02T12:00:00Z" and first.id == again.id
    # A catch-up after a crash between the status write and the append: the same entry.
    (caught,) = recent_drafts(history=[promoted], rollback=None, technology_uid="u",
                              model=None, level=6, reviews={}, serving_waiver=started,
                              since=datetime(2026, 3, 2, 6, tzinfo=UTC))
    assert caught.id == first.id
    # The same waiver keeping the gate open is the same use: nothing new.
    assert status_change_drafts(before_serving_waiver=serving, after_serving_waiver=serving,
                                at="2026-03-04T00:00:00Z", **kwargs) == []


def test_the_same_transition_of_a_recreated_technology_is_a_new_entry() -> None:
    kwargs: dict[str, Any] = {"before_history": [], "after_history": [transition()],
                              "before_rollback": None, "after_rollback": None, "model": None,
                              "level": 7, "reviews": {}}
    (first,) = status_change_drafts(technology_uid="uid-1", **kwargs)
    (second,) = status_change_drafts(technology_uid="uid-2", **kwargs)
    assert first.id != second.id


# --- admission ------------------------------------------------------------------------------

OPERATOR = "system:serviceaccount:mltrl-system:mltrl-operator"


@pytest.mark.parametrize("operation", ["CREATE", "UPDATE", "DELETE"])
@pytest.mark.parametrize("user", ["mallory", "kubernetes-admin", ""])
def test_only_the_operator_writes_the_record(operation: str, user: str) -> None:
    verdict = audit_record_verdict(
        Requester(user, frozenset({"system:masters"})), operation, "payments.x.0000",
        operator=OPERATOR,
    )
    assert not verdict.allowed and verdict.code == 403
    assert verdict.message.startswith(
        "payments.x.0000: Forbidden: audit records are written only by the operator ("
        f"{OPERATOR}); "
    )
    assert f"may not {operation.lower()} them" in verdict.message
    assert audit_record_verdict(Requester(OPERATOR), operation, "x", operator=OPERATOR).allowed


def test_waiver_uses_and_dismissed_approvals_chain_like_the_transitions() -> None:
    from mltrl_operator.domain.audit import dismissed_approvals_entry, waiver_use_entry

    at = "2026-06-01T00:00:00Z"
    drafts = [
        waiver_use_entry(waiver="bias-audit", technology_uid="u", level=7, at=at,
                         used_for="serving", waived=["servingMinimum 7 -> 5"],
                         approved_by=["dana"], expires_at="2026-06-15T00:00:00Z"),
        dismissed_approvals_entry(review_name="fd-to-8", technology_uid="u", at=at, level=7,
                                  dismissed=[("bob", "evidence ci changed after bob approved")]),
    ]
    assert [d.kind for d in drafts] == [
        AuditEntryKind.WAIVER_USE, AuditEntryKind.DISMISSED_APPROVALS]
    assert drafts[0].waiver == "bias-audit" and drafts[0].details["usedFor"] == "serving"
    assert drafts[1].details == {"dismissed.bob": "evidence ci changed after bob approved"}
    assert len({d.id for d in drafts}) == 2
    # Named by what was dismissed, not when: a redo decides the same entry.
    again = dismissed_approvals_entry(
        review_name="fd-to-8", technology_uid="u", at="2026-06-01T00:00:09Z", level=7,
        dismissed=[("bob", "evidence ci changed after bob approved")])
    assert again.id == drafts[1].id
    chunks, previous = [], None
    for item in drafts:
        previous = chain(item, previous)
        chunks.append(previous)
    assert verify([MLTRLAuditRecordSpec(namespace=NS, technology=TECH, chunk=0,
                                        entries=chunks)], namespace=NS, technology=TECH).intact


def test_a_deletion_is_recorded_once_per_life_of_the_technology() -> None:
    from mltrl_operator.domain.audit import deletion_entry

    model = ModelSpec(version="1.4.0", storage_uri="s3://m/1.4.0", format="sklearn")
    first = deletion_entry(technology_uid="u1", level=7, at="2026-03-01T00:00:00Z", model=model)
    replay = deletion_entry(technology_uid="u1", level=7, at="2026-03-01T00:00:05Z", model=model)
    other = deletion_entry(technology_uid="u2", level=3, at="2026-03-01T00:00:00Z", model=None)
    assert first.id == replay.id != other.id
    assert (first.kind, first.from_level, first.to_level) == (AuditEntryKind.DELETION, 7, None)
    assert first.reason == "the MLTechnology was deleted at level 7"
    assert first.model is not None and first.model.version == "1.4.0"


def test_after_a_restart_only_recent_transitions_are_offered_again() -> None:
    from datetime import UTC, datetime

    from mltrl_operator.domain.audit import recent_drafts

    old = transition(**{"from": None, "to": 3, "kind": "entry", "review": None,
                        "at": "2026-03-01T09:00:00Z"})
    fresh = transition(**{"from": 3, "to": 4, "at": "2026-03-01T09:59:00Z", "review": "to-4"})
    rollback = ServingRollback(replaced_version="1.0.0", replaced_storage_uri="s3://m/1.0.0",
                               alert="Errors/f1", at="2026-03-01T09:59:30Z")
    kwargs: dict[str, Any] = {"technology_uid": "u", "model": None, "level": 4, "reviews": {}}
    since = datetime(2026, 3, 1, 9, 45, tzinfo=UTC)
    drafts = recent_drafts(history=[old, fresh], rollback=rollback, since=since, **kwargs)
    assert [(d.kind, d.to_level) for d in drafts] == [
        (AuditEntryKind.PROMOTION, 4), (AuditEntryKind.ROLLBACK, 4)]
    # The same ids as when they were first recorded: appending them again adds nothing.
    first = status_change_drafts(before_history=[old], after_history=[old, fresh],
                                 before_rollback=None, after_rollback=rollback, **kwargs)
    assert [d.id for d in drafts] == [d.id for d in first]
    later = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert recent_drafts(history=[old, fresh], rollback=rollback, since=later, **kwargs) == []


def test_history_kinds_map_to_record_kinds_and_an_unknown_one_by_its_direction() -> None:
    from mltrl_operator.domain.audit import _entry_kind

    def kind_of(kind: str, from_level: int | None, to: int) -> AuditEntryKind:
        return _entry_kind(LevelTransition.model_construct(
            kind=kind, from_level=from_level, to=to, at="2026-03-01T00:00:00Z"))

    assert kind_of("promotion", 3, 4) is AuditEntryKind.PROMOTION
    assert kind_of("switchback", 7, 4) is AuditEntryKind.SWITCHBACK
    assert kind_of("entry", None, 3) is AuditEntryKind.ENTRY
    assert kind_of("change", 7, 7) is AuditEntryKind.CHANGE_APPROVAL
    assert kind_of("recertification", 7, 7) is AuditEntryKind.RECERTIFICATION
    assert kind_of("someday", 5, 6) is AuditEntryKind.PROMOTION
    assert kind_of("someday", 6, 5) is AuditEntryKind.SWITCHBACK
    assert kind_of("someday", 6, 6) is AuditEntryKind.RECERTIFICATION
