"""What the benchmark adds to the operator's own API client (mltrl_operator.k8s.client):
the sandbox's request counters, and watches that timestamp every event as it arrives, so
latencies are measured at the client, never by polling.

Requests go through `KubeClient` (the operator's credentials, retries and Retry-After),
so the benchmark meets the API server exactly as the operator does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mltrl_operator.k8s.client import KubeClient, watch_events
from mltrl_operator.k8s.connection import load_connection
from mltrl_operator.k8s.errors import ApiError
from mltrl_operator.k8s.resources import INFERENCE_SERVICES, ResourceRef

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)
Predicate = Callable[[Obj], bool]

ISVCS = INFERENCE_SERVICES
CONFIGMAPS = ResourceRef("", "v1", "configmaps", "ConfigMap")


class BenchClient(KubeClient):
    """The operator's client, plus the sandbox's own endpoints (its request counters)."""

    def __init__(self, kubeconfig: str, *, quiet: float = 1.5) -> None:
        super().__init__(load_connection(kubeconfig), timeout=60.0)
        self.url = self.connection.server
        self.quiet = quiet

    async def stats(self) -> Obj:
        return await self.request("GET", "/sandbox/stats")

    async def reset_stats(self) -> Obj:
        return await self.request("POST", "/sandbox/stats/reset")

    async def settle(self, *, timeout: float = 600.0) -> Obj:
        """Wait until nobody has written for `quiet` seconds; return the stats then."""
        deadline = time.perf_counter() + timeout
        last = (await self.stats())["total_writes"]
        quiet_since = time.perf_counter()
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
            now = (await self.stats())["total_writes"]
            if now != last:
                last, quiet_since = now, time.perf_counter()
            elif time.perf_counter() - quiet_since >= self.quiet:
                return await self.stats()
        raise TimeoutError(f"writes did not stop within {timeout}s")


def key_of(obj: Obj) -> Key:
    metadata = obj["metadata"]
    return (metadata.get("namespace") or "", metadata["name"])


@dataclass
class _Waiter:
    predicate: Predicate
    future: asyncio.Future[float]


@dataclass
class Watch:
    """A watch on one resource: the latest object per key, waiters and trackers.

    `until(key, predicate)` returns a future resolved with the arrival time
    (time.perf_counter()) of the first event after the call whose object satisfies the
    predicate. `track(keys, predicate)` resolves once every key has satisfied it.
    """

    client: KubeClient
    resource: ResourceRef
    objects: dict[Key, Obj] = field(default_factory=dict)
    events: int = 0
    _waiters: dict[Key, list[_Waiter]] = field(default_factory=dict)
    _trackers: list[tuple[set[Key], Predicate, asyncio.Future[float]]] = field(
        default_factory=list
    )
    _task: asyncio.Task[None] | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> Watch:
        # One unpaginated list: its resourceVersion is where the watch starts.
        listing = await self.client.request("GET", self.resource.path())
        for item in listing.get("items", []):
            self.objects[key_of(item)] = item
        version = listing["metadata"]["resourceVersion"]
        self._task = asyncio.create_task(self._run(version))
        await asyncio.wait_for(self._ready.wait(), timeout=30)
        return self

    async def _run(self, version: str) -> None:
        stream = watch_events(
            self.client, self.resource, resource_version=version, timeout_seconds=86400
        )
        # Every event after `version` is delivered whenever the stream opens: none is missed.
        self._ready.set()
        async for event in stream:
            arrived = time.perf_counter()
            kind = event.get("type")
            if kind == "BOOKMARK":
                continue
            if kind == "ERROR":
                raise ApiError(0, {"message": json.dumps(event)})
            self.events += 1
            obj = event["object"]
            key = key_of(obj)
            if kind == "DELETED":
                self.objects.pop(key, None)
            else:
                self.objects[key] = obj
            self._offer(key, obj, arrived, kind == "DELETED")

    def _offer(self, key: Key, obj: Obj, arrived: float, deleted: bool) -> None:
        waiters = self._waiters.get(key)
        if waiters and not deleted:
            for waiter in list(waiters):
                if not waiter.future.done() and waiter.predicate(obj):
                    waiter.future.set_result(arrived)
                    waiters.remove(waiter)
            if not waiters:
                del self._waiters[key]
        if deleted:
            return
        for pending, predicate, future in self._trackers:
            if key in pending and predicate(obj):
                pending.discard(key)
                if not pending and not future.done():
                    future.set_result(arrived)

    def until(self, key: Key, predicate: Predicate) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(_Waiter(predicate, future))
        return future

    def track(self, keys: set[Key], predicate: Predicate) -> tuple[set[Key], asyncio.Future[float]]:
        """Every key satisfying `predicate` (already, or later); returns the set still
        pending (it shrinks as they arrive) and a future for the last one's arrival."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        pending = {key for key in keys if not (
            key in self.objects and predicate(self.objects[key])
        )}
        if not pending:
            future.set_result(time.perf_counter())
        self._trackers.append((pending, predicate, future))
        return pending, future

    def check(self) -> None:
        """Raise what ended the watch, if it ended."""
        if self._task is not None and self._task.done():
            error = self._task.exception()
            raise RuntimeError(f"the watch on {self.resource.plural} ended: {error!r}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def wait_all(
    futures: list[asyncio.Future[float]], watches: list[Watch], timeout: float, what: str
) -> list[float]:
    """Await the futures; fail with `what` after `timeout`, or when a watch ends."""
    deadline = time.perf_counter() + timeout
    while True:
        if all(f.done() for f in futures):
            return [f.result() for f in futures]
        for watch in watches:
            watch.check()
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            for future in futures:
                future.cancel()
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.wait(
            [f for f in futures if not f.done()], timeout=min(remaining, 0.5)
        )
