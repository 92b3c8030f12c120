"""Failed reconciles are tried again with backoff, once per object at a time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mltrl_operator.controllers import technology
from mltrl_operator.controllers.context import OperatorContext
from mltrl_operator.controllers.retries import Retries
from mltrl_operator.controllers.view import ClusterView
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.connection import Connection


async def test_backoff_doubles_up_to_the_cap_and_resets_on_success() -> None:
    retries = Retries(first_delay=0.01, max_delay=0.04)
    delays = []
    for _ in range(4):
        delays.append(retries.delay_for("k"))
        retries.schedule("k", _noop)
        await retries.close()
    assert delays == [0.01, 0.02, 0.04, 0.04]
    retries.succeeded("k")
    assert retries.delay_for("k") == 0.01


async def test_one_pending_retry_per_key() -> None:
    retries = Retries(first_delay=0.01)
    calls: list[str] = []

    async def record() -> None:
        calls.append("ran")

    retries.schedule("k", record)
    retries.schedule("k", record)
    assert retries.pending() == 1
    await asyncio.sleep(0.05)
    assert calls == ["ran"] and retries.pending() == 0


async def _noop() -> None:
    return None


async def test_a_failed_reconcile_is_retried_until_it_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes = [RuntimeError("API server unavailable"), RuntimeError("still down"), None]
    attempts: list[str] = []

    async def flaky(ctx: Any, view: Any, namespace: str, name: str, body: Any = None) -> None:
        attempts.append(f"{namespace}/{name}")
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    monkeypatch.setattr(technology, "reconcile_technology", flaky)
    ctx = OperatorContext(client=KubeClient(Connection(server="http://127.0.0.1:1")))
    ctx.retries = Retries(first_delay=0.01)
    await technology.reconcile_or_retry(ctx, ClusterView(ctx.cache), "ml", "ranker")
    deadline = asyncio.get_running_loop().time() + 5
    while len(attempts) < 3 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    assert attempts == ["ml/ranker"] * 3
    assert ctx.retries.pending() == 0
    assert ctx.retries.delay_for(("MLTechnology", "ml", "ranker")) == 0.01  # reset
    await ctx.client.close()
