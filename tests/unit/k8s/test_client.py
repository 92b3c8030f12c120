"""The client's API etiquette against a small stub API server: retries honouring
Retry-After, one fresh login after a 401, paginated lists, timeouts, a rate limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from mltrl_operator.k8s.client import Etiquette, KubeClient
from mltrl_operator.k8s.connection import Connection
from mltrl_operator.k8s.errors import ApiError, Unauthorized
from mltrl_operator.k8s.resources import TECHNOLOGIES

Answer = Callable[[web.Request], web.Response]
FAST = Etiquette(qps=0, backoff=0.01, max_backoff=0.05, timeout=5)


class Stub:
    """Answers the n-th request with the n-th answer (the last one from then on)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, str, dict[str, str], str | None, float]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path, dict(request.query),
                              request.headers.get("Authorization"), time.monotonic()))
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        result = answer(request)
        if asyncio.iscoroutine(result):
            result = await result
        return result


def status(code: int, **headers: str) -> Answer:
    return lambda _: web.json_response(
        {"kind": "Status", "code": code, "reason": "x", "message": f"said {code}"},
        status=code, headers=headers,
    )


def ok(body: dict[str, Any] | None = None) -> Answer:
    return lambda _: web.json_response(body or {"kind": "Thing"})


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Stub], Any]]:
    runners: list[web.AppRunner] = []

    async def start(stub: Stub) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", stub.handle)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_429_and_503_are_retried_honouring_retry_after(serve: Any) -> None:
    stub = Stub(status(429, **{"Retry-After": "1"}), status(503), ok({"kind": "Done"}))
    async with KubeClient(Connection(await serve(stub)), etiquette=FAST) as client:
        assert (await client.get(TECHNOLOGIES, "ns", "x"))["kind"] == "Done"
    times = [request[4] for request in stub.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.95, "Retry-After: 1 was not honoured"


async def test_retries_give_up_after_the_attempts_with_the_servers_error(serve: Any) -> None:
    stub = Stub(status(503))
    etiquette = Etiquette(qps=0, backoff=0.01, max_backoff=0.02, attempts=3)
    async with KubeClient(Connection(await serve(stub)), etiquette=etiquette) as client:
        with pytest.raises(ApiError, match="said 503"):
            await client.get(TECHNOLOGIES, "ns", "x")
    assert len(stub.requests) == 3


async def test_a_create_answered_500_is_not_retried(serve: Any) -> None:
    """It may have been carried out: creating twice is worse than failing once."""
    stub = Stub(status(500), ok())
    async with KubeClient(Connection(await serve(stub)), etiquette=FAST) as client:
        with pytest.raises(ApiError, match="said 500"):
            await client.create(TECHNOLOGIES, "ns", {"metadata": {"name": "x"}})
    assert len(stub.requests) == 1


async def test_a_401_logs_in_afresh_once_and_retries(serve: Any) -> None:
    stub = Stub(status(401), ok({"kind": "Done"}))
    logins: list[int] = []

    def loader() -> Any:
        from kubernetes.client.configuration import Configuration

        logins.append(1)
        configuration = Configuration(host=url)
        configuration.api_key["BearerToken"] = f"Bearer fresh-{len(logins)}"
        return configuration

    url = await serve(stub)
    connection = Connection(url, token="stale", loader=loader)
    async with KubeClient(connection, etiquette=FAST) as client:
        assert (await client.get(TECHNOLOGIES, "ns", "x"))["kind"] == "Done"
    assert [request[3] for request in stub.requests] == ["Bearer stale", "Bearer fresh-1"]


async def test_a_second_401_is_raised_after_one_fresh_login(serve: Any) -> None:
    stub = Stub(status(401))
    logins: list[int] = []

    def loader() -> Any:
        from kubernetes.client.configuration import Configuration

        logins.append(1)
        configuration = Configuration(host=url)
        configuration.api_key["BearerToken"] = "Bearer still-refused"
        return configuration

    url = await serve(stub)
    async with KubeClient(Connection(url, token="t", loader=loader), etiquette=FAST) as client:
        with pytest.raises(Unauthorized):
            await client.get(TECHNOLOGIES, "ns", "x")
    assert (len(stub.requests), len(logins)) == (2, 1)


async def test_lists_are_paginated_and_start_over_when_the_token_expires(serve: Any) -> None:
    def page(names: list[str], token: str | None) -> Answer:
        metadata = {"continue": token} if token else {}
        return lambda _: web.json_response({
            "kind": "List", "metadata": metadata,
            "items": [{"metadata": {"name": name}} for name in names],
        })

    stub = Stub(page(["a", "b"], "p2"), status(410), page(["a", "b"], "p2"),
                page(["c"], "p3"), page(["d"], None))
    async with KubeClient(Connection(await serve(stub)), etiquette=FAST) as client:
        items = await client.list(TECHNOLOGIES, page_size=2)
    assert [item["metadata"]["name"] for item in items] == ["a", "b", "c", "d"]
    queries = [request[2] for request in stub.requests]
    assert all(query["limit"] == "2" for query in queries)
    assert [query.get("continue") for query in queries] == [None, "p2", None, "p2", "p3"]


async def test_every_request_has_a_timeout(serve: Any) -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({})

    stub = Stub(slow)  # type: ignore[arg-type]
    etiquette = Etiquette(qps=0, timeout=0.3, attempts=2, backoff=0.01)
    started = time.monotonic()
    async with KubeClient(Connection(await serve(stub)), etiquette=etiquette) as client:
        with pytest.raises(TimeoutError):
            await client.get(TECHNOLOGIES, "ns", "x")
    assert len(stub.requests) == 2
    assert time.monotonic() - started < 10


async def test_the_rate_limit_spreads_requests_beyond_the_burst(serve: Any) -> None:
    stub = Stub(ok())
    etiquette = Etiquette(qps=10, burst=2)
    async with KubeClient(Connection(await serve(stub)), etiquette=etiquette) as client:
        await asyncio.gather(*(client.get(TECHNOLOGIES, "ns", "x") for _ in range(6)))
    times = sorted(request[4] for request in stub.requests)
    # Two at once, then one every 100 ms: the sixth no sooner than 0.4 s after the first.
    assert times[-1] - times[0] >= 0.35
