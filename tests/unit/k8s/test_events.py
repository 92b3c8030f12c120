"""Events: one object per (object, reason, key); a redo is nothing more, and the same
event happening again is a series on that object (count, lastTimestamp), as kubectl shows."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.connection import Connection
from mltrl_operator.k8s.events import EventRecorder
from mltrl_operator.k8s.resources import EVENTS, NAMESPACES
from mltrl_sandbox.crds import default_crd_documents
from mltrl_sandbox.server import SandboxServer

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 22, 12, 5, 0, tzinfo=UTC)
KUBECTL = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "kubectl"
FRAUD = {"apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTechnology",
         "metadata": {"name": "fraud", "namespace": "payments", "uid": "u-1"}}


@pytest.fixture
async def server() -> AsyncIterator[SandboxServer]:
    async with SandboxServer(default_crd_documents(None)) as running:
        yield running


async def test_a_repeat_is_counted_into_one_event_and_a_redo_is_not(
    server: SandboxServer, tmp_path: Path
) -> None:
    kube = KubeClient(Connection(server=server.url, token="admin-token"))
    try:
        await kube.create(NAMESPACES, None, {"metadata": {"name": "payments"}})
        events = EventRecorder(kube)

        async def post(occurrence: str, now: datetime) -> None:
            await events.record(FRAUD, type="Normal", reason="ServingStarted",
                                message="created InferenceService fraud", now=now,
                                key="create/fraud/-", occurrence=occurrence)

        await post("10", NOW)
        await post("10", NOW)  # the same decision redone after a crash
        [once] = await kube.list(EVENTS, "payments")
        assert (once["count"], once["lastTimestamp"]) == (1, "2026-11-22T12:00:00Z")
        await post("17", LATER)  # created anew after a deletion: the same event again
        await post("17", LATER)
        [twice] = await kube.list(EVENTS, "payments")
        assert twice["metadata"]["name"] == once["metadata"]["name"]
        assert (twice["count"], twice["firstTimestamp"], twice["lastTimestamp"]) == (
            2, "2026-11-22T12:00:00Z", "2026-11-22T12:05:00Z")
        # Without an occurrence, a named event posted again stays what it was.
        await events.record(FRAUD, type="Normal", reason="Promoted", message="level 4 -> 5",
                            now=NOW, key="review/u-2")
        await events.record(FRAUD, type="Normal", reason="Promoted", message="level 4 -> 5",
                            now=LATER, key="review/u-2")
        listed = {e["reason"]: e for e in await kube.list(EVENTS, "payments")}
        assert listed["Promoted"]["count"] == 1
    finally:
        await kube.close()

    # What a user sees: one row, "x2" in LAST SEEN's series count column of kubectl.
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "s",
        "clusters": [{"name": "s", "cluster": {"server": server.url}}],
        "users": [{"name": "u", "user": {"token": "admin-token"}}],
        "contexts": [{"name": "s", "context": {"cluster": "s", "user": "u"}}]}))
    shown = await asyncio.to_thread(
        subprocess.run, [str(KUBECTL), "--kubeconfig", str(config), "get", "events", "-n",
                         "payments", "--field-selector", "reason=ServingStarted"],
        capture_output=True, text=True, check=True)
    [row] = shown.stdout.splitlines()[1:]
    assert "(x2 over " in row and "ServingStarted" in row
