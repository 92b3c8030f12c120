"""Request-time reads shared by the alert receiver and the webhooks."""

from __future__ import annotations

from typing import Any

import pytest

from mltrl_operator.k8s.errors import NotFound
from mltrl_operator.k8s.lookups import NamespaceLabels, read_policies
from mltrl_operator.k8s.resources import NAMESPACES, POLICIES, ResourceRef


class FakeClient:
    def __init__(self, namespaces: dict[str, dict[str, str]], policies: list[Any]) -> None:
        self.namespaces = namespaces
        self.policies = policies
        self.gets = 0

    async def get(self, resource: ResourceRef, namespace: str | None, name: str) -> Any:
        assert resource == NAMESPACES
        self.gets += 1
        if name not in self.namespaces:
            raise NotFound(404, f"namespaces {name!r} not found")
        return {"metadata": {"name": name, "labels": self.namespaces[name]}}

    async def list(self, resource: ResourceRef) -> list[Any]:
        assert resource == POLICIES
        return self.policies


async def test_labels_are_kept_for_their_time_and_a_missing_namespace_has_none() -> None:
    clock = [100.0]
    client = FakeClient({"payments": {"env": "prod"}}, [])
    labels = NamespaceLabels(client, ttl=2.0, monotonic=lambda: clock[0])  # type: ignore[arg-type]
    name = {"kubernetes.io/metadata.name": "payments"}  # as the API server sets it
    assert await labels.of("payments") == {**name, "env": "prod"}
    client.namespaces["payments"] = {"env": "staging"}
    clock[0] += 1.0
    assert await labels.of("payments") == {**name, "env": "prod"}  # within its two seconds
    clock[0] += 1.5
    assert await labels.of("payments") == {**name, "env": "staging"}
    assert await labels.of("nowhere") == {}
    assert client.gets == 3


async def test_a_policy_that_cannot_be_read_is_skipped_and_the_rest_apply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = FakeClient({}, [
        {"metadata": {"name": "strict"}, "spec": {"serving": {"minimumLevel": 7}}},
        {"metadata": {"name": "broken"}, "spec": {"serving": "yes"}},
    ])
    policies = await read_policies(client)  # type: ignore[arg-type]
    assert [policy.name for policy in policies] == ["strict"]
    assert "MLTRLPolicy broken cannot be read" in caplog.text
