"""`kubectl mltrl history`: the audit record (verified with the domain's chain check) when
the user may read it, status.history with a note naming the mltrl-auditor role when not,
and a clear error for a deleted technology whose record the user may not read."""

from __future__ import annotations

from typing import Any, cast

import pytest

from mltrl_operator.api.audit import (
    AuditApproval,
    AuditEntry,
    AuditEntryKind,
    MLTRLAuditRecordSpec,
)
from mltrl_operator.cli.kubectl_mltrl import render, views
from mltrl_operator.cli.kubectl_mltrl.session import PluginError, Session
from mltrl_operator.domain.audit import chain, chunk_body
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.errors import ApiError, NotFound
from mltrl_operator.k8s.resources import ResourceRef

TECH = {
    "metadata": {"name": "fraud", "namespace": "payments", "uid": "u1"},
    "spec": {"owner": "alice", "team": "payments-ml", "entryLevel": 6},
    "status": {"level": 6, "history": [
        {"to": 6, "kind": "entry", "at": "2026-11-22T12:00:00Z", "by": ["alice"]},
    ]},
}


def drafts() -> list[AuditEntry]:
    return [
        AuditEntry(id="e0", sequence=0, time="2026-11-22T12:00:00Z",
                   kind=AuditEntryKind.ENTRY, technology_uid="u1", to_level=6,
                   reason="entered at 6", by=["alice"]),
        AuditEntry(id="e1", sequence=0, time="2026-11-23T09:30:00Z",
                   kind=AuditEntryKind.PROMOTION, technology_uid="u1", from_level=6,
                   to_level=7, reason="review fraud-to-7 applied", by=["bob", "carol"],
                   review="fraud-to-7", review_type="promotion",
                   approvals=[AuditApproval(reviewer="bob", role="qa", decision="approve")]),
        AuditEntry(id="e2", sequence=0, time="2026-11-24T01:00:00Z",
                   kind=AuditEntryKind.SWITCHBACK, technology_uid="u1", from_level=7,
                   to_level=6, switchback_type="embedded", reason="drift alert",
                   by=["mltrl-operator"], alert="ModelDrift/abc"),
        AuditEntry(id="e3", sequence=0, time="2026-11-25T08:00:00Z",
                   kind=AuditEntryKind.DELETION, technology_uid="u1", from_level=6,
                   reason="the MLTechnology was deleted at level 6", by=["mltrl-operator"]),
    ]


def stored_chunk(entries: list[AuditEntry]) -> dict[str, Any]:
    chained: list[AuditEntry] = []
    for draft in entries:
        chained.append(chain(draft, chained[-1] if chained else None))
    spec = MLTRLAuditRecordSpec(namespace="payments", technology="fraud", chunk=0,
                                entries=chained)
    return chunk_body(spec)


class Client:
    """Technologies by name; audit records either listed or refused with 403, as RBAC
    refuses a namespace user the cluster-scoped records."""

    def __init__(self, technologies: list[dict[str, Any]], records: list[dict[str, Any]],
                 may_read_records: bool = True) -> None:
        self.technologies = technologies
        self.records = records
        self.may_read_records = may_read_records

    async def list(self, resource: ResourceRef, namespace: str | None = None,
                   **_: Any) -> list[dict[str, Any]]:
        if resource.plural == "levelreviews":
            return []
        assert resource.plural == "mltrlauditrecords"
        if not self.may_read_records:
            raise ApiError(403, {"reason": "Forbidden", "message":
                                 'mltrlauditrecords.mltrl.dev is forbidden: User "bob" cannot '
                                 'list resource "mltrlauditrecords" at the cluster scope'})
        return self.records

    async def get(self, resource: ResourceRef, namespace: str | None, name: str
                  ) -> dict[str, Any]:
        for body in self.technologies:
            if body["metadata"]["name"] == name:
                return body
        raise NotFound(404, {"message": "not found"})


def session(client: Client) -> Session:
    return Session(cast(KubeClient, client), "payments")


async def test_history_reads_the_audit_record_even_after_deletion() -> None:
    view = await views.history(session(Client([], [stored_chunk(drafts())])), "fraud")
    assert view["source"] == "audit record" and view["verified"] is True
    assert view["deleted"] is True and view["note"] is None and not view["findings"]
    assert [(i["kind"], i["from"], i["to"]) for i in view["items"]] == [
        ("entry", None, 6), ("promotion", 6, 7), ("switchback", 7, 6), ("deletion", 6, None)]
    promotion = view["items"][1]
    assert promotion["cause"] == "review fraud-to-7" and promotion["by"] == ["bob", "carol"]
    assert promotion["approvals"][0]["reviewer"] == "bob"
    assert view["items"][2]["cause"] == "alert ModelDrift/abc"
    text = render.history_table(view)
    lines = text.splitlines()
    assert lines[0] == ("Level history of payments/fraud from the audit record (4 entries, "
                        "the technology is deleted).")
    assert lines[1].startswith("Chain verified: every entry matches its hash")
    assert lines[2].split() == ["AT", "FROM", "TO", "KIND", "CAUSE", "BY", "REASON"]
    assert lines[4].split()[:8] == ["2026-11-23T09:30:00Z", "6", "7", "promotion", "review",
                                    "fraud-to-7", "bob,carol", "review"]
    assert "switchback (embedded)" in lines[5] and "alert ModelDrift/abc" in lines[5]
    assert lines[6].split()[:4] == ["2026-11-25T08:00:00Z", "6", "-", "deletion"]


async def test_a_tampered_record_is_flagged() -> None:
    body = stored_chunk(drafts())
    body["spec"]["entries"][1]["by"] = ["mallory"]  # edited after it was recorded
    view = await views.history(session(Client([TECH], [body])), "fraud")
    assert view["source"] == "audit record" and view["verified"] is False
    assert any("content does not match its hash" in f for f in view["findings"])
    text = render.history_table(view)
    assert "TAMPERED: the chain does not verify (1 finding(s))" in text
    assert "chunk 0, entry 1, sequence 1: content does not match its hash" in text


async def test_a_removed_entry_is_flagged() -> None:
    body = stored_chunk(drafts())
    del body["spec"]["entries"][1]
    view = await views.history(session(Client([TECH], [body])), "fraud")
    assert view["verified"] is False
    assert any("previousHash does not match" in f for f in view["findings"])


async def test_without_read_access_history_falls_back_and_names_the_role() -> None:
    client = Client([TECH], [stored_chunk(drafts())], may_read_records=False)
    view = await views.history(session(client), "fraud")
    assert view["source"] == "status.history" and view["verified"] is None
    assert "ask your platform team for the mltrl-auditor role" in view["note"]
    assert "showing status.history instead" in view["note"]
    assert [(i["kind"], i["to"]) for i in view["items"]] == [("entry", 6)]
    assert render.history_table(view).splitlines()[0] == (
        "Level history of payments/fraud from status.history (not the audit record).")


async def test_a_deleted_technology_without_read_access_says_what_to_do() -> None:
    client = Client([], [stored_chunk(drafts())], may_read_records=False)
    with pytest.raises(PluginError) as raised:
        await views.history(session(client), "fraud")
    message = str(raised.value)
    assert 'mltechnology "fraud" not found in namespace "payments"' in message
    assert "ask your platform team for the mltrl-auditor role" in message


async def test_no_record_and_no_technology_is_an_error() -> None:
    with pytest.raises(PluginError, match='no audit record of payments/fraud'):
        await views.history(session(Client([], [])), "fraud")


async def test_no_record_yet_shows_status_history_and_says_so() -> None:
    view = await views.history(session(Client([TECH], [])), "fraud")
    assert view["source"] == "status.history"
    assert view["note"].startswith("no audit record of payments/fraud")


# status.history keeps only the newest changes: here it lost the entry at 6.
AT_7 = {**TECH, "status": {"level": 7, "history": [
    {"from": 6, "to": 7, "kind": "promotion", "at": "2026-11-23T09:30:00Z",
     "review": "fraud-to-7", "by": ["bob", "carol"]}]}}


async def test_the_card_takes_the_levels_reached_from_the_audit_record() -> None:
    record = stored_chunk(drafts()[:2])
    card = await views.card(session(Client([AT_7], [record])), "fraud", None)
    assert card.levels_reached == (6, 7)
    earlier = await views.card(session(Client([AT_7], [record])), "fraud", 6)
    assert earlier.level == 6


async def test_the_card_ignores_a_record_it_may_not_read_or_that_does_not_verify() -> None:
    unreadable = Client([AT_7], [stored_chunk(drafts()[:2])], may_read_records=False)
    assert (await views.card(session(unreadable), "fraud", None)).levels_reached == (7,)
    tampered = stored_chunk(drafts()[:2])
    tampered["spec"]["entries"][0]["toLevel"] = 3
    card = await views.card(session(Client([AT_7], [tampered])), "fraud", None)
    assert card.levels_reached == (7,)
