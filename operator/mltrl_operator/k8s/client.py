"""A small async Kubernetes client: exactly the calls the operator makes, nothing more.

It keeps to the API server's etiquette as client-go does: every request has a timeout;
a client-side rate limit (`qps`, `burst`) spreads bursts out; 429 and 5xx answers are
retried with capped, jittered backoff that honours `Retry-After`; a 401 triggers one fresh
login and one retry; lists are paginated with `limit` and `continue`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from mltrl_operator.k8s.connection import Connection
from mltrl_operator.k8s.errors import ApiError, Gone, raise_for
from mltrl_operator.k8s.resources import EVENTS, ResourceRef

Body = dict[str, Any]
Page = tuple[bool, list[Body]]
"""One page of a list: whether the list started over before it, and its items."""

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
FIELD_MANAGER = "mltrl-operator"
PAGE_SIZE = 500

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Etiquette:
    """How hard the client may lean on the API server (`mltrl run --qps/--burst`)."""

    qps: float = 0.0
    """Sustained requests per second; 0 (the default) leaves pacing to the API server's
    Priority and Fairness, whose 429s and Retry-After are honoured. At 10,000
    technologies start-up writes about 40,000 times (docs/benchmarks.md): 50 per second
    would stretch it from 40 s to 14 minutes."""
    burst: int = 100
    """Requests that may go at once after a quiet spell."""
    timeout: float = 30.0
    """Seconds for one request, reading its whole answer."""
    attempts: int = 6
    """Tries of one request answered 429 or 5xx (or not at all) before its error is raised."""
    backoff: float = 0.25
    """First retry's delay; it doubles per attempt, with full jitter, up to `max_backoff`."""
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    """A server's Retry-After is honoured up to this many seconds."""
    in_flight: int = 100
    """Requests sent at once (watches apart); more wait their turn, and `timeout` starts
    when a request is sent, not while it waits. At 10,000 technologies kopf runs thousands
    of handlers at once: counted from the moment they asked, requests timed out in the
    queue, not at the API server, and each retry made the queue longer. 100 is aiohttp's
    default pool and well below kube-apiserver's limits (400 reads, 200 writes)."""


class RateLimiter:
    """A token bucket: `burst` requests at once, then `qps` per second."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps = qps
        self.capacity = max(1, burst)
        self._tokens = float(self.capacity)
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.qps <= 0:
            return
        async with self._lock:  # first come, first served
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.qps)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.qps)


RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
# A POST answered 500/502/504 may have been carried out: retrying it could create twice.
# 429 and 503 mean the server turned the request away before doing anything.
RETRIED_FOR_POST = frozenset({429, 503})


def retry_after(headers: Any, cap: float) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        return min(cap, max(0.0, float(value)))
    except ValueError:
        return None  # an HTTP date: the API server never sends one


class KubeClient:
    def __init__(
        self,
        connection: Connection,
        *,
        timeout: float | None = None,
        etiquette: Etiquette | None = None,
    ) -> None:
        self.connection = connection
        etiquette = etiquette or Etiquette()
        if timeout is not None:
            etiquette = Etiquette(**{**etiquette.__dict__, "timeout": timeout})
        self.etiquette = etiquette
        self._timeout = aiohttp.ClientTimeout(total=etiquette.timeout)
        self._limiter = RateLimiter(etiquette.qps, etiquette.burst)
        self._slots = asyncio.Semaphore(max(1, etiquette.in_flight))
        self._session: aiohttp.ClientSession | None = None
        self._session_generation = -1
        self._proxy: str | None = None

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _ensure_session(self) -> aiohttp.ClientSession:
        stale = self._session_generation != self.connection.generation
        if self._session is not None and not self._session.closed and stale:
            # A fresh login may bring a new client certificate: a new TLS context with it.
            asyncio.get_running_loop().create_task(self._session.close())
            self._session = None
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                base_url=self.connection.server,
                # No pool limit: requests are limited by `_slots` (untimed while waiting),
                # and a watch must never wait behind them for a connection.
                connector=aiohttp.TCPConnector(ssl=self.connection.ssl_context(), limit=0),
                timeout=self._timeout,
            )
            self._session_generation = self.connection.generation
            self._proxy = self.connection.effective_proxy()
        return self._session

    def _transport(self) -> dict[str, Any]:
        """Per-request options that come from the kubeconfig's cluster entry."""
        options: dict[str, Any] = {}
        if self._proxy:
            options["proxy"] = self._proxy
        if self.connection.tls_server_name:
            options["server_hostname"] = self.connection.tls_server_name
        return options

    async def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        authorization = await self.connection.authorization()
        return {**extra, "Authorization": authorization} if authorization else dict(extra)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _delay(self, attempt: int, server_says: float | None) -> float:
        e = self.etiquette
        jittered = random.uniform(0, min(e.max_backoff, e.backoff * 2**attempt))
        return max(jittered, server_says) if server_says is not None else jittered

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> Body:
        data = json.dumps(body) if body is not None else None
        extra = {"Content-Type": content_type} if data is not None else {}
        retried = RETRIED_FOR_POST if method == "POST" else RETRIED_STATUSES
        relogged = False
        attempt = 0
        while True:
            await self._limiter.acquire()
            generation = self.connection.generation
            session = self._ensure_session()
            try:
                async with self._slots, session.request(
                    method, path, data=data, headers=await self._headers(extra), params=params,
                    **self._transport(),
                ) as response:
                    status, headers = response.status, response.headers
                    text = await response.text()
            except (aiohttp.ClientConnectionError, TimeoutError) as error:
                # Nothing was answered; a POST may still have been applied, so it is not retried.
                if method == "POST" or attempt + 1 >= self.etiquette.attempts:
                    raise
                logger.debug("%s %s: %r; retrying", method, path, error)
                await asyncio.sleep(self._delay(attempt, None))
                attempt += 1
                continue
            try:
                payload: Any = json.loads(text) if text else {}
            except json.JSONDecodeError:
                payload = {"message": text}
            if status == 401 and not relogged and self.connection.loader is not None:
                relogged = True
                logger.debug("401 from the API server: logging in afresh (%s)",
                            self.connection.context)
                await self.connection.relogin(generation)
                continue
            if status in retried and attempt + 1 < self.etiquette.attempts:
                delay = self._delay(attempt, retry_after(headers, self.etiquette.max_retry_after))
                logger.debug("%s %s: %d; retrying in %.2fs", method, path, status, delay)
                await asyncio.sleep(delay)
                attempt += 1
                continue
            raise_for(status, payload)
            return payload if isinstance(payload, dict) else {"items": payload}

    async def get(self, resource: ResourceRef, namespace: str | None, name: str) -> Body:
        return await self.request("GET", resource.path(namespace, name))

    async def list(
        self,
        resource: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> list[Body]:
        """Every item, a page at a time; a continue token that expired (410) starts over."""
        items: list[Body] = []
        async for restarted, page in self.pages(
            resource, namespace, label_selector=label_selector, page_size=page_size
        ):
            if restarted:
                items.clear()
            items.extend(page)
        return items

    async def pages(
        self,
        resource: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[Page]:
        """The list a page at a time, for a caller that keeps less than every item as
        sent (the cache at start-up). `restarted` True: a continue token expired (410) and
        the list started over, so what earlier pages gave is to be forgotten."""
        restarted = False
        for _ in range(3):
            params = {"limit": str(page_size)}
            if label_selector:
                params["labelSelector"] = label_selector
            try:
                while True:
                    result = await self.request("GET", resource.path(namespace), params=params)
                    yield restarted, result.get("items", [])
                    restarted = False
                    token = (result.get("metadata") or {}).get("continue")
                    if not token:
                        return
                    params = {**params, "continue": str(token)}
            except Gone:
                logger.info("listing %s took longer than the server keeps a continue token; "
                            "listing again", resource.plural)
                restarted = True
        raise ApiError(410, {"reason": "Expired", "message": f"could not list {resource.plural}"})

    async def create(self, resource: ResourceRef, namespace: str | None, body: Body) -> Body:
        body = {"apiVersion": resource.api_version, "kind": resource.kind, **body}
        return await self.request(
            "POST", resource.path(namespace), body=body, params={"fieldManager": FIELD_MANAGER}
        )

    async def patch(
        self,
        resource: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str | None = None,
        content_type: str = MERGE_PATCH,
    ) -> Body:
        path = resource.path(namespace, name) + (f"/{subresource}" if subresource else "")
        return await self.request(
            "PATCH", path, body=patch, content_type=content_type,
            params={"fieldManager": FIELD_MANAGER},
        )

    async def patch_status(
        self,
        resource: ResourceRef,
        namespace: str | None,
        name: str,
        status: Body,
        *,
        resource_version: str | None = None,
    ) -> Body:
        """Replace-by-merge of the status; a resourceVersion makes the write conditional."""
        patch: Body = {"status": status}
        if resource_version:
            patch["metadata"] = {"resourceVersion": resource_version}
        return await self.patch(resource, namespace, name, patch, subresource="status")

    async def delete(self, resource: ResourceRef, namespace: str | None, name: str) -> Body:
        return await self.request(
            "DELETE", resource.path(namespace, name), body={"propagationPolicy": "Background"}
        )

    async def post_event(self, event: Body) -> Body:
        namespace = event["metadata"]["namespace"]
        return await self.create(EVENTS, namespace, event)


async def watch_events(
    client: KubeClient,
    resource: ResourceRef,
    *,
    namespace: str | None = None,
    resource_version: str | None = None,
    timeout_seconds: int = 300,
) -> AsyncIterator[Body]:
    """One watch stream: yields {"type", "object"} events until the server ends it."""
    session = client._ensure_session()
    params = {"watch": "true", "timeoutSeconds": str(timeout_seconds)}
    if resource_version:
        params["resourceVersion"] = resource_version
    timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)
    await client._limiter.acquire()
    async with session.get(
        resource.path(namespace), params=params, timeout=timeout,
        headers=await client._headers({}), **client._transport(),
    ) as response:
        if response.status >= 400:
            raise_for(response.status, await response.text())
        async for line in response.content:
            if line.strip():
                yield json.loads(line)
