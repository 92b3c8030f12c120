"""A minimal async client for the sandbox's own helpers (KServe's stand-in): the
kubeconfig's current context, JSON requests and one watch stream. Not the operator's
client: the sandbox knows nothing of the operator."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml

Body = dict[str, Any]


class ClientError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text[:300]}")
        self.status = status


def _named(entries: list[Body], name: str, key: str) -> Body:
    for entry in entries:
        if entry.get("name") == name:
            return dict(entry.get(key) or {})
    raise ValueError(f"kubeconfig: no {key} named {name!r}")


class SandboxClient:
    """Talks to one server, with a bearer token and the CA that signed it (if any)."""

    def __init__(self, server: str, token: str = "", ca_pem: str = "") -> None:
        self.server = server
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._ssl: ssl.SSLContext | bool = (
            ssl.create_default_context(cadata=ca_pem) if ca_pem else False
        )
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path) -> SandboxClient:
        """The server, user and CA of the kubeconfig's current context."""
        config = yaml.safe_load(Path(kubeconfig).read_text())
        context = _named(config["contexts"], config["current-context"], "context")
        cluster = _named(config["clusters"], context["cluster"], "cluster")
        user = _named(config["users"], context["user"], "user")
        ca = cluster.get("certificate-authority-data")
        return cls(
            str(cluster["server"]), str(user.get("token") or ""),
            base64.b64decode(ca).decode() if ca else "",
        )

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                base_url=self.server, headers=self._headers,
                connector=aiohttp.TCPConnector(ssl=self._ssl),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, body: Any = None,
        content_type: str = "application/json",
    ) -> Body:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        timeout = aiohttp.ClientTimeout(total=30)
        async with self._open().request(
            method, path, data=data, headers=headers, timeout=timeout
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise ClientError(response.status, text)
            answer: Body = json.loads(text) if text else {}
            return answer

    async def watch(
        self, path: str, resource_version: str | None, timeout_seconds: int = 300
    ) -> AsyncIterator[Body]:
        """One watch stream: {"type", "object"} events until the server ends it."""
        params = {"watch": "true", "timeoutSeconds": str(timeout_seconds)}
        if resource_version:
            params["resourceVersion"] = resource_version
        timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)
        async with self._open().get(path, params=params, timeout=timeout) as response:
            if response.status >= 400:
                raise ClientError(response.status, await response.text())
            async for line in response.content:
                if line.strip():
                    yield json.loads(line)
