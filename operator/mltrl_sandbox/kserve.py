"""A stand-in for KServe's controller, for the sandbox only.

There is no KServe (and no Knative, no pods) in the sandbox, so nothing would ever mark an
InferenceService Ready. This loop plays that part: an InferenceService becomes Ready with a
URL, and one carrying KServe's `serving.kserve.io/stop: "true"` annotation becomes
not Ready with reason Stopped. On a real cluster KServe does this and the stand-in is absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from .client import ClientError, SandboxClient

STOP_ANNOTATION = "serving.kserve.io/stop"
DOMAIN = "sandbox.example.com"
INFERENCE_SERVICES = "/apis/serving.kserve.io/v1beta1/inferenceservices"

logger = logging.getLogger(__name__)

# What KServe's install gives namespace viewers and editors through aggregation (its CRD is
# the sandbox's own): with RBAC enforced, an editor can use InferenceServices, as in a
# cluster with KServe installed.
USER_ROLES: list[dict[str, Any]] = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
     "metadata": {"name": f"kserve-{verb}",
                  "labels": {f"rbac.authorization.k8s.io/aggregate-to-{role}": "true"}},
     "rules": [{"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"],
                "verbs": verbs}]}
    for verb, role, verbs in (
        ("view", "view", ["get", "list", "watch"]),
        ("edit", "edit", ["create", "delete", "deletecollection", "patch", "update"]),
    )
]


def simulated_status(body: dict[str, Any], now: str) -> dict[str, Any]:
    metadata = body["metadata"]
    stopped = (metadata.get("annotations") or {}).get(STOP_ANNOTATION) == "true"
    previous = {c.get("type"): c for c in (body.get("status") or {}).get("conditions") or []}
    ready = "False" if stopped else "True"
    reason = "Stopped" if stopped else ""

    def condition(kind: str) -> dict[str, Any]:
        old = previous.get(kind) or {}
        changed = old.get("status") != ready
        entry = {
            "type": kind,
            "status": ready,
            "lastTransitionTime": now if changed else old.get("lastTransitionTime", now),
        }
        if reason:
            entry["reason"] = reason
        return entry

    status: dict[str, Any] = {
        "observedGeneration": metadata.get("generation", 1),
        "conditions": [condition("IngressReady"), condition("PredictorReady"), condition("Ready")],
    }
    if not stopped:
        url = f"http://{metadata['name']}.{metadata['namespace']}.{DOMAIN}"
        status["url"] = url
        status["address"] = {"url": f"{url}/v1/models/{metadata['name']}"}
    return status


def _without_timestamps(status: dict[str, Any]) -> dict[str, Any]:
    return {
        **status,
        "conditions": [
            {key: value for key, value in condition.items() if key != "lastTransitionTime"}
            for condition in status.get("conditions") or []
        ],
    }


def _needs_update(body: dict[str, Any], status: dict[str, Any]) -> bool:
    # Timestamps alone never justify a write.
    return _without_timestamps(body.get("status") or {}) != _without_timestamps(status)


class KServeStandIn:
    def __init__(self, client: SandboxClient) -> None:
        self._client = client

    async def reconcile(self, body: dict[str, Any]) -> None:
        if body["metadata"].get("deletionTimestamp"):
            return
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = simulated_status(body, now)
        if not _needs_update(body, status):
            return
        metadata = body["metadata"]
        path = (f"/apis/serving.kserve.io/v1beta1/namespaces/{metadata['namespace']}"
                f"/inferenceservices/{metadata['name']}/status")
        patch = {"status": {**status, "url": status.get("url"), "address": status.get("address")}}
        with contextlib.suppress(ClientError):
            await self._client.request(
                "PATCH", path, patch, content_type="application/merge-patch+json"
            )

    async def _watch_once(self) -> None:
        listing = await self._client.request("GET", INFERENCE_SERVICES)
        for item in listing.get("items", []):
            await self.reconcile(item)
        version = listing.get("metadata", {}).get("resourceVersion")
        async for event in self._client.watch(INFERENCE_SERVICES, version):
            if event.get("type") in ("ADDED", "MODIFIED"):
                await self.reconcile(event["object"])
            elif event.get("type") == "ERROR":
                return

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                watcher = asyncio.create_task(self._watch_once())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({watcher, stopper}, return_when=asyncio.FIRST_COMPLETED)
                for task in (watcher, stopper):
                    task.cancel()
                # Anything a flaky API server does (--faults) ends this round only.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
                if not stop.is_set():
                    await asyncio.sleep(0.5)
        finally:
            await self._client.close()
