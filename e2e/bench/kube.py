"""The benchmark's own client of the sandbox: plain requests, and watches that timestamp
every event as it arrives, so latencies are measured at the client, never by polling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)
Predicate = Callable[[Obj], bool]

MERGE = "application/merge-patch+json"


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace and self.namespaced:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


TECHNOLOGIES = Resource("mltrl.dev", "v1alpha1", "mltechnologies")
REVIEWS = Resource("mltrl.dev", "v1alpha1", "levelreviews")
ISVCS = Resource("serving.kserve.io", "v1beta1", "inferenceservices")
CONFIGMAPS = Resource("", "v1", "configmaps")


class ApiError(RuntimeError):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text[:500]}")
        self.status = status


class Client:
    def __init__(self, url: str, *, quiet: float = 1.5) -> None:
        self.url = url
        self.quiet = quiet
        self.session = aiohttp.ClientSession(
            base_url=url,
            connector=aiohttp.TCPConnector(limit=64),
            timeout=aiohttp.ClientTimeout(total=60),
            read_bufsize=2**20,
            headers={"Authorization": "Bearer bench"},
        )

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> Obj:
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(
            method, path, data=data, headers=headers, params=params
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise ApiError(response.status, text)
            payload: Obj = json.loads(text) if text else {}
            return payload

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Obj:
        return await self.request("GET", resource.path(namespace, name))

    async def list(self, resource: Resource) -> Obj:
        return await self.request("GET", resource.path())

    async def create(self, resource: Resource, obj: Obj) -> Obj:
        namespace = obj["metadata"].get("namespace")
        return await self.request("POST", resource.path(namespace), obj)

    async def patch(
        self, resource: Resource, namespace: str | None, name: str, patch: Obj,
        subresource: str = "",
    ) -> Obj:
        path = resource.path(namespace, name) + (f"/{subresource}" if subresource else "")
        return await self.request("PATCH", path, patch, MERGE)

    async def stats(self) -> Obj:
        return await self.request("GET", "/sandbox/stats")

    async def reset_stats(self) -> Obj:
        return await self.request("POST", "/sandbox/stats/reset")

    async def settle(self, *, timeout: float = 600.0) -> Obj:
        """Wait until nobody has written for `quiet` seconds; return the stats then."""
        quiet_for = self.quiet
        deadline = time.perf_counter() + timeout
        last = (await self.stats())["total_writes"]
        quiet_since = time.perf_counter()
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
            now = (await self.stats())["total_writes"]
            if now != last:
                last, quiet_since = now, time.perf_counter()
            elif time.perf_counter() - quiet_since >= quiet_for:
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

    client: Client
    resource: Resource
    objects: dict[Key, Obj] = field(default_factory=dict)
    events: int = 0
    _waiters: dict[Key, list[_Waiter]] = field(default_factory=dict)
    _trackers: list[tuple[set[Key], Predicate, asyncio.Future[float]]] = field(
        default_factory=list
    )
    _task: asyncio.Task[None] | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> Watch:
        listing = await self.client.list(self.resource)
        for item in listing.get("items", []):
            self.objects[key_of(item)] = item
        version = listing["metadata"]["resourceVersion"]
        self._task = asyncio.create_task(self._run(version))
        await asyncio.wait_for(self._ready.wait(), timeout=30)
        return self

    async def _run(self, version: str) -> None:
        params = {"watch": "true", "resourceVersion": version, "timeoutSeconds": "86400",
                  "allowWatchBookmarks": "true"}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self.client.session.get(
            self.resource.path(), params=params, timeout=timeout
        ) as response:
            if response.status >= 400:
                raise ApiError(response.status, await response.text())
            self._ready.set()
            async for line in response.content:
                arrived = time.perf_counter()
                if not line.strip():
                    continue
                event = json.loads(line)
                kind = event.get("type")
                if kind == "BOOKMARK":
                    continue
                if kind == "ERROR":
                    raise ApiError(0, json.dumps(event))
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
