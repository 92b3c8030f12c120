"""A small async Kubernetes client: exactly the calls the operator makes, nothing more."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from mltrl_operator.k8s.connection import Connection
from mltrl_operator.k8s.errors import raise_for
from mltrl_operator.k8s.resources import EVENTS, ResourceRef

Body = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
FIELD_MANAGER = "mltrl-operator"


class KubeClient:
    def __init__(self, connection: Connection, *, timeout: float = 30.0) -> None:
        self.connection = connection
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                base_url=self.connection.server,
                headers=self.connection.headers(),
                connector=aiohttp.TCPConnector(ssl=self.connection.ssl_context()),
                timeout=self._timeout,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> Body:
        session = self._ensure_session()
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        async with session.request(
            method, path, data=data, headers=headers, params=params
        ) as response:
            text = await response.text()
            try:
                payload: Any = json.loads(text) if text else {}
            except json.JSONDecodeError:
                payload = {"message": text}
            raise_for(response.status, payload)
            return payload if isinstance(payload, dict) else {"items": payload}

    async def get(self, resource: ResourceRef, namespace: str | None, name: str) -> Body:
        return await self.request("GET", resource.path(namespace, name))

    async def list(
        self,
        resource: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[Body]:
        params = {"labelSelector": label_selector} if label_selector else None
        result = await self.request("GET", resource.path(namespace), params=params)
        return list(result.get("items", []))

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
    async with session.get(resource.path(namespace), params=params, timeout=timeout) as response:
        if response.status >= 400:
            raise_for(response.status, await response.text())
        async for line in response.content:
            if line.strip():
                yield json.loads(line)
