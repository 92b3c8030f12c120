"""List+watch the way kopf does it (aiohttp, resourceVersion, bookmarks, 410 Gone)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from conftest import WIDGET_CRD, crd

from mltrl_sandbox.server import SandboxServer

BASE = "/apis/example.com/v1/namespaces/default/widgets"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.fixture
async def server() -> AsyncIterator[SandboxServer]:
    sandbox = SandboxServer(
        [crd(WIDGET_CRD)], history_limit=10, bookmark_interval=0.3, first_bookmark_delay=0.1
    )
    async with sandbox:
        yield sandbox


@pytest.fixture
async def http(server: SandboxServer) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": "Bearer anything"}
    async with aiohttp.ClientSession(base_url=server.url, headers=headers) as session:
        yield session


def widget(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "labels": labels},
        "spec": {"owner": "o"},
    }


async def create(http: aiohttp.ClientSession, name: str, **labels: str) -> dict[str, Any]:
    async with http.post(BASE, json=widget(name, **labels)) as resp:
        assert resp.status == 201, await resp.text()
        return dict(await resp.json())


async def merge(http: aiohttp.ClientSession, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    headers = {"Content-Type": "application/merge-patch+json"}
    async with http.patch(f"{BASE}/{name}", data=json.dumps(patch), headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())


async def delete(http: aiohttp.ClientSession, name: str) -> None:
    async with http.delete(f"{BASE}/{name}") as resp:
        assert resp.status == 200, await resp.text()


async def list_rv(http: aiohttp.ClientSession) -> str:
    async with http.get(BASE) as resp:
        body = await resp.json()
    assert body["kind"] == "WidgetList"
    return str(body["metadata"]["resourceVersion"])


async def watch(
    http: aiohttp.ClientSession,
    count: int,
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
    **params: str,
) -> list[dict[str, Any]]:
    """The first `count` events of a watch (fewer if the server ends the stream)."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        async with http.get(BASE, params={"watch": "true", **params}, headers=headers) as resp:
            assert resp.status == 200
            async for line in resp.content:
                events.append(json.loads(line))
                if len(events) >= count:
                    break
    return events


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


async def test_kopf_style_list_then_watch_from_resource_version(
    http: aiohttp.ClientSession,
) -> None:
    await create(http, "w1")
    rv = await list_rv(http)
    await create(http, "w2")
    await merge(http, "w1", {"spec": {"size": 7}})
    await delete(http, "w2")
    events = await watch(
        http, 4, resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="10"
    )
    assert summary(events[:3]) == [("ADDED", "w2"), ("MODIFIED", "w1"), ("DELETED", "w2")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > int(rv)
    assert events[1]["object"]["spec"]["size"] == 7
    assert events[3]["type"] == "BOOKMARK"
    assert events[3]["object"]["kind"] == "Widget"
    assert int(events[3]["object"]["metadata"]["resourceVersion"]) >= versions[2]


async def test_live_events_arrive_in_order(http: aiohttp.ClientSession) -> None:
    rv = await list_rv(http)

    async def writer() -> None:
        await asyncio.sleep(0.1)
        for i in range(5):
            await create(http, f"live{i}")
        await merge(http, "live0", {"metadata": {"labels": {"x": "y"}}})

    task = asyncio.create_task(writer())
    events = await watch(http, 6, resourceVersion=rv)
    await task
    assert summary(events) == [("ADDED", f"live{i}") for i in range(5)] + [("MODIFIED", "live0")]


async def test_watch_from_zero_starts_with_synthetic_added(http: aiohttp.ClientSession) -> None:
    await create(http, "a")
    await create(http, "b")
    assert summary(await watch(http, 2, resourceVersion="0")) == [("ADDED", "a"), ("ADDED", "b")]
    assert summary(await watch(http, 2)) == [("ADDED", "a"), ("ADDED", "b")]
    async with http.get(BASE, params={"watch": "1", "timeoutSeconds": "1"}) as resp:
        lines = [json.loads(line) async for line in resp.content]
    assert summary(lines) == [("ADDED", "a"), ("ADDED", "b")]


async def test_too_old_resource_version_is_gone(http: aiohttp.ClientSession) -> None:
    rv = await list_rv(http)
    for i in range(15):  # more than the history_limit of 10
        await create(http, f"n{i}")
    (event,) = await watch(http, 1, resourceVersion=rv)
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"
    assert event["object"]["message"].startswith(f"too old resource version: {rv} (")
    fresh = await list_rv(http)
    assert summary(await watch(http, 1, resourceVersion=fresh, allowWatchBookmarks="true"))[0][
        0
    ] == ("BOOKMARK")


async def test_timeout_seconds_ends_the_stream(http: aiohttp.ClientSession) -> None:
    started = time.monotonic()
    events = await watch(
        http, 100, timeout=5.0, resourceVersion=await list_rv(http), timeoutSeconds="1"
    )
    assert events == []
    assert 0.9 <= time.monotonic() - started < 3.0


async def test_selectors_apply_to_watch_events(http: aiohttp.ClientSession) -> None:
    rv = await list_rv(http)
    await create(http, "plain")
    await create(http, "gold", tier="gold")
    await merge(http, "plain", {"metadata": {"labels": {"tier": "gold"}}})
    await merge(http, "gold", {"metadata": {"labels": {"tier": "silver"}}})
    events = await watch(http, 3, resourceVersion=rv, labelSelector="tier=gold")
    # entering the selection is an ADDED, leaving it a DELETED
    assert summary(events) == [("ADDED", "gold"), ("ADDED", "plain"), ("DELETED", "gold")]
    by_name = await watch(http, 2, resourceVersion=rv, fieldSelector="metadata.name=plain")
    assert summary(by_name) == [("ADDED", "plain"), ("MODIFIED", "plain")]


async def test_watch_in_table_form(http: aiohttp.ClientSession) -> None:
    await create(http, "t1")
    (event,) = await watch(http, 1, headers={"Accept": TABLE_ACCEPT})
    assert event["object"]["kind"] == "Table"
    assert [c["name"] for c in event["object"]["columnDefinitions"]][:3] == [
        "Name",
        "Owner",
        "Size",
    ]
    assert event["object"]["rows"][0]["cells"][:3] == ["t1", "o", 3]


async def test_stopping_the_server_ends_open_watches(server: SandboxServer) -> None:
    async with aiohttp.ClientSession(base_url=server.url) as http:
        resp = await http.get(BASE, params={"watch": "true"})
        started = time.monotonic()
        await server.stop()
        async with asyncio.timeout(5):
            rest = await resp.content.read()
        assert rest == b""
        assert time.monotonic() - started < 5
        resp.release()


async def test_every_watcher_gets_the_bytes_the_answer_has(http: aiohttp.ClientSession) -> None:
    """A written object is encoded once for its answer and every watcher's event
    (handlers.WrittenJson): each line is what json.dumps makes of the event, byte for
    byte, with the answer's object in it; a watcher that sees the object leave its
    selection still gets its own DELETED."""
    rv = await list_rv(http)
    lines: dict[str, list[bytes]] = {"all": [], "blue": []}

    async def read(key: str, **params: str) -> None:
        query = {"watch": "true", "resourceVersion": rv, **params}
        async with http.get(BASE, params=query) as resp:
            async for line in resp.content:
                lines[key].append(line)
                if len(lines[key]) >= 3:
                    return

    readers = [asyncio.create_task(read("all")),
               asyncio.create_task(read("blue", labelSelector="color=blue"))]
    await asyncio.sleep(0.1)
    answers = []
    async with http.post(BASE, json=widget("w", color="blue")) as resp:
        answers.append(await resp.read())
    headers = {"Content-Type": "application/merge-patch+json"}
    for patch in ({"spec": {"size": 2}}, {"metadata": {"labels": {"color": "red"}}}):
        async with http.patch(f"{BASE}/w", data=json.dumps(patch), headers=headers) as resp:
            answers.append(await resp.read())
    async with asyncio.timeout(5):
        await asyncio.gather(*readers)

    def line(kind: str, answer: bytes) -> bytes:
        event = {"type": kind, "object": json.loads(answer)}
        return json.dumps(event, separators=(",", ":")).encode() + b"\n"

    kinds = ["ADDED", "MODIFIED", "MODIFIED"]
    assert lines["all"] == [line(k, a) for k, a in zip(kinds, answers, strict=True)]
    assert [json.loads(a) for a in answers] == [json.loads(x)["object"] for x in lines["all"]]
    assert lines["blue"][:2] == lines["all"][:2]
    deleted = json.loads(lines["blue"][2])
    assert deleted["type"] == "DELETED"
    assert deleted["object"]["metadata"]["labels"] == {"color": "blue"}
    assert deleted["object"]["metadata"]["resourceVersion"] == json.loads(
        answers[2])["metadata"]["resourceVersion"]
