"""A receiver in front of an in-process sandbox API server: real API semantics, no kopf."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mltrl_operator.alerts.config import ReceiverConfig, TokenSource
from mltrl_operator.alerts.server import AlertReceiver
from mltrl_operator.api import crdgen
from mltrl_operator.k8s.client import KubeClient
from mltrl_operator.k8s.connection import Connection
from mltrl_operator.k8s.resources import NAMESPACES, TECHNOLOGIES
from mltrl_sandbox.crds import default_crd_documents
from mltrl_sandbox.server import SandboxServer

TOKEN = "s3cret-token"
NAMESPACE = "payments"
NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)

_fingerprints = itertools.count(1)


def technology(name: str = "fraud", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "owner": "alice",
            "entryLevel": 4,
            "monitoring": {
                "rules": [
                    {"alertName": "FraudErrorRateHigh", "action": "rollback"},
                    {"alertName": "FraudDrift", "action": "demote", "toLevel": 4},
                ]
            },
            **spec,
        },
    }


def alert(
    name: str = "FraudErrorRateHigh",
    *,
    status: str = "firing",
    fingerprint: str | None = None,
    starts_at: str = "2026-11-22T11:59:30.123456789Z",
    **labels: str,
) -> dict[str, Any]:
    all_labels = {"alertname": name, "mltrl_technology": "fraud", "namespace": NAMESPACE}
    all_labels.update(labels)
    return {
        "status": status,
        "labels": {k: v for k, v in all_labels.items() if v},
        "annotations": {"summary": "the error rate is above 10%"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-22T12:05:00Z",
        "generatorURL": "http://prometheus.example.com/graph?g0.expr=up",
        "fingerprint": fingerprint or f"{next(_fingerprints):016x}",
    }


def notification(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="FraudErrorRateHigh"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "mltrl-operator",
        "groupLabels": {"alertname": "FraudErrorRateHigh"},
        "commonLabels": {"alertname": "FraudErrorRateHigh"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com",
        "alerts": list(alerts),
    }


@dataclass
class World:
    sandbox: SandboxServer
    kube: KubeClient
    receiver: AlertReceiver
    http: TestClient[Any, Any]

    async def post(
        self, payload: Any, *, token: str | None = TOKEN, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        if "data" not in kwargs:
            kwargs["json"] = payload
        response = await self.http.post("/alerts", headers=headers, **kwargs)
        try:
            body = await response.json()
        except Exception:
            body = await response.text()
        return response.status, body

    async def technology(self, name: str = "fraud") -> dict[str, Any]:
        return await self.kube.get(TECHNOLOGIES, NAMESPACE, name)

    async def incidents(self, name: str = "fraud") -> list[dict[str, Any]]:
        body = await self.technology(name)
        return list((body.get("status") or {}).get("incidents") or [])


@pytest.fixture
async def world() -> AsyncIterator[World]:
    sandbox = SandboxServer(default_crd_documents(None) + crdgen.crd_documents())
    await sandbox.start()
    kube = KubeClient(Connection(server=sandbox.url, token="admin-token"))
    await kube.create(NAMESPACES, None, {"metadata": {"name": NAMESPACE}})
    await kube.create(TECHNOLOGIES, NAMESPACE, technology())
    config = ReceiverConfig(port=0, token=TokenSource(token=TOKEN), policy_cache_seconds=0)
    receiver = AlertReceiver(config, kube, lambda: NOW)
    http: TestClient[Any, Any] = TestClient(TestServer(receiver.app()))
    await http.start_server()
    try:
        yield World(sandbox, kube, receiver, http)
    finally:
        await http.close()
        await kube.close()
        await sandbox.stop()
