"""The audit record's storage against a real API server's semantics: writers racing on the
same record (resourceVersion preconditions, names already taken) lose nothing and double
nothing, and the record rolls into chunks that kubectl lists and `verify` accepts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mltrl_operator.api.audit import AuditEntry, AuditEntryKind
from mltrl_operator.domain.audit import verify
from mltrl_operator.k8s.audit_store import append_entry, read_audit_record
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.connection import load_connection
from tests.integration.harness import Sandbox

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    cluster = Sandbox(tmp_path_factory.mktemp("audit-store"), kserve=False).start()
    yield cluster
    cluster.stop()


def draft(n: int) -> AuditEntry:
    return AuditEntry(id=f"writer-entry-{n}", sequence=0, time="2026-03-01T10:00:00Z",
                      kind=AuditEntryKind.PROMOTION, reason="x" * 300)


async def append_all(kubeconfig: Path, numbers: range, limit: int) -> None:
    async with KubeClient(load_connection(str(kubeconfig))) as client:
        for n in numbers:
            await append_entry(client, "payments", "fraud", draft(n), limit=limit)


async def race(kubeconfig: Path) -> list[AuditEntry]:
    limit = 4000  # about ten entries a chunk, so the writers also race to open chunks
    await asyncio.gather(
        append_all(kubeconfig, range(0, 30), limit),
        append_all(kubeconfig, range(30, 60), limit),
        append_all(kubeconfig, range(0, 60, 7), limit),  # replays of entries the others add
    )
    async with KubeClient(load_connection(str(kubeconfig))) as client:
        record = await read_audit_record(client, "payments", "fraud")
    assert verify(record.chunks, namespace="payments", technology="fraud").intact
    assert len(record.chunks) >= 5
    return record.entries


def test_racing_writers_lose_nothing_and_double_nothing(sandbox: Sandbox) -> None:
    entries = asyncio.run(race(sandbox.kubeconfig))
    assert sorted(e.id for e in entries) == sorted(f"writer-entry-{n}" for n in range(60))
    assert [e.sequence for e in entries] == list(range(60))
    listed = json.loads(sandbox.kubectl("get", "mltrlaudit", "-o", "json").stdout)["items"]
    names = sorted(item["metadata"]["name"] for item in listed)
    assert names[0] == "payments.fraud.0000" and len(names) >= 5
    assert all(len(json.dumps(item)) < 8000 for item in listed)
